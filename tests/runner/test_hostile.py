"""The hostile-container suite: real containers that misbehave, each contained and reported.

Every test runs the hostile image (``tests/runner/images/hostile``) in one mode on three tiny
cases with tight limits (256 MiB, 64 processes, 3 s per case, 1 MiB output per case), then checks
that the harness stopped it on time, said why per case, left no container or scratch folder
behind, and still works (the next test runs the next container).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from evaluator.evaluate import EvaluationResult, evaluate_run
from evaluator.runner.contract import Resources
from evaluator.runner.docker_backend import UNPRIVILEGED_UID
from evaluator.runner.run import RunOutcome, run_cases
from evaluator.store import Store
from evaluator.workspace import Workspace

from .conftest import TIGHT, TinyDataset, hostile_manifest

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("leftover_check")]


def _run(
    mode: str,
    tiny: TinyDataset,
    workspace: Workspace,
    backend: Any,
    images: dict[str, str],
    *,
    n_cases: int = 3,
    resources: Resources = TIGHT,
) -> RunOutcome:
    manifest = hostile_manifest(images["hostile"], mode, resources=resources)
    outcome = run_cases(
        manifest,
        tiny.cases[:n_cases],
        task=tiny.task,
        run_dir=workspace.runs / mode,
        backend=backend,
        workspace=workspace,
    )
    assert sorted([*outcome.predictions, *outcome.case_errors]) == sorted(
        c.case_id for c in tiny.cases[:n_cases]
    ), "every case needs a prediction or a reason"
    assert not any(workspace.tmp.iterdir()), "scratch folders left behind"
    return outcome


def _score_with_errors(
    out: RunOutcome, tiny: TinyDataset, workspace: Workspace, **options: Any
) -> tuple[EvaluationResult, pd.DataFrame]:
    """Score a run's predictions; return the result and its stored case errors."""
    result = evaluate_run(
        "btcv-phantom",
        "all",
        out.run_dir / "predictions",
        workspace=workspace,
        data_root=tiny.root,
        workers=1,
        **options,
    )
    db = Store.open(result.store_url)
    try:
        return result, db.errors_frame(run_ids=[result.run.id])
    finally:
        db.close()


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_sandbox_as_seen_from_inside(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    out = _run("inspect", tiny, workspace, docker_backend, test_images)
    info = json.loads(out.container_runs[0].log.strip().splitlines()[-1])
    expected_uid = UNPRIVILEGED_UID if os.getuid() == 0 else os.getuid()
    assert info["uid"] == expected_uid != 0
    assert info["home"] == "/tmp"
    assert info["omp"] == "1"  # cpus=1.0
    assert int(info["cap_eff"], 16) == 0  # every capability dropped
    assert info["no_new_privs"] == "1"
    assert info["interfaces"] == ["lo"]  # --network none
    assert "ro" in info["mounts"]["/"]["options"]
    assert "ro" in info["mounts"]["/input"]["options"]
    assert "rw" in info["mounts"]["/output"]["options"] and info["output_writable"]
    assert info["mounts"]["/tmp"]["type"] == "tmpfs"
    assert "size=16384k" in info["mounts"]["/tmp"]["options"]
    assert sorted(out.predictions) == ["0001", "0002", "0003"]
    assert (out.run_dir / "logs" / "split.log").read_text() == out.container_runs[0].log


def test_network_is_unreachable(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    out = _run("network", tiny, workspace, docker_backend, test_images)
    run = out.container_runs[0]
    assert run.status == "exit" and run.exit_code == 3, run.log
    assert "REACHABLE" not in run.log and run.log.count("blocked") == 3
    assert all("exited with code 3" in why for why in out.case_errors.values())


def test_writes_outside_output_are_refused(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    before = _digest(tiny.root)
    out = _run("escape", tiny, workspace, docker_backend, test_images)
    run = out.container_runs[0]
    assert run.status == "ok", run.log  # exit code 4 would mean a write got through
    assert "escape: 6/6 blocked" in run.log
    assert _digest(tiny.root) == before  # the dataset (mounted read-only, hard-linked) is intact


def test_fork_bomb_is_capped_and_killed(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    start = time.monotonic()
    out = _run("forkbomb", tiny, workspace, docker_backend, test_images, n_cases=1)
    run = out.container_runs[0]
    assert run.status == "timeout"
    children = int(run.log.split("fork failed after ")[1].split()[0])
    assert children < TIGHT.pids
    assert time.monotonic() - start < TIGHT.time_limit_s + 5
    assert "timed out after 3 s" in out.case_errors["0001"]


def test_sigterm_ignoring_loop_is_killed_on_time(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    start = time.monotonic()
    out = _run("loop", tiny, workspace, docker_backend, test_images, n_cases=1)
    elapsed = time.monotonic() - start
    assert out.container_runs[0].status == "timeout"
    assert TIGHT.time_limit_s <= elapsed < TIGHT.time_limit_s + 5
    assert "killed" in out.case_errors["0001"]


def test_endless_allocation_is_oom_killed(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    out = _run("memory", tiny, workspace, docker_backend, test_images)
    run = out.container_runs[0]
    assert run.status == "oom" and run.details["oom_killed"], run.log
    reported = [int(line.split()[1]) for line in run.log.splitlines() if line.startswith("memory:")]
    assert max(reported, default=0) <= TIGHT.memory_mb
    assert all("out of memory" in why for why in out.case_errors.values())


def test_huge_files_hit_the_output_cap(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    out = _run("hugefile", tiny, workspace, docker_backend, test_images)
    run = out.container_runs[0]
    assert run.status == "output_cap", run.log
    # the kernel stops the writes: the capped /output (3 cases x 1 MiB) or the per-file limit
    written = [int(x.split(" stopped after ")[1].split()[0]) for x in run.log.splitlines()]
    assert sum(written) <= 3 and ("No space left" in run.log or "File too large" in run.log)
    assert all("output" in why and "cap" in why for why in out.case_errors.values())
    assert not any((out.run_dir / "predictions").iterdir())


def test_tmp_is_size_capped_and_writable(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    roomy = TIGHT.model_copy(update={"output_mb": 64})
    out = _run("tmpfill", tiny, workspace, docker_backend, test_images, resources=roomy)
    run = out.container_runs[0]
    assert run.status == "ok"
    written = int(run.log.split("stopped after ")[1].split()[0])
    assert written <= TIGHT.tmp_mb and "No space left" in run.log
    assert sorted(out.predictions) == ["0001", "0002", "0003"]


def test_links_and_odd_names_are_rejected(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    out = _run("links", tiny, workspace, docker_backend, test_images)
    assert out.predictions == {}
    assert "symbolic link (to '/etc/passwd')" in out.case_errors["0001"]
    assert "symbolic link (to '../input/" in out.case_errors["0002"]
    assert "not a regular file" in out.case_errors["0003"]
    assert any("..hidden.nii.gz" in r for r in out.rejected)
    assert any("/output/passwd" in r for r in out.rejected)


def test_crash_keeps_what_was_written(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    out = _run("crash", tiny, workspace, docker_backend, test_images)
    assert sorted(out.predictions) == ["0001"]
    assert out.case_errors["0002"].startswith("container exited with code 7: crash: wrote")


def test_nothing_written(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    auto = TIGHT.model_copy(update={"gpus": "auto"})  # tried, never required
    out = _run("nothing", tiny, workspace, docker_backend, test_images, resources=auto)
    assert out.container_runs[0].ok and out.predictions == {}
    has_gpu = docker_backend.gpus_available(test_images["hostile"])
    assert out.container_runs[0].details["gpus"] is has_gpu
    assert all(why.startswith("no output file") for why in out.case_errors.values())


def test_container_failure_is_the_recorded_reason(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    out = _run("network", tiny, workspace, docker_backend, test_images)  # exits 3, writes nothing
    assert out.case_errors and out.predictions == {}
    result, frame = _score_with_errors(out, tiny, workspace, case_errors=out.case_errors)
    assert set(frame["error_class"]) == {"container"}
    for case_id, message in zip(frame["case_id"], frame["message"], strict=True):
        assert out.case_errors[case_id] in message
    assert result.summary["error_counts"]["container"] == len(frame) == 3


@pytest.mark.parametrize(
    ("mode", "error_class"),
    [("malformed", "undecodable"), ("geometry", "geometry"), ("nan", "nan")],
)
def test_bad_outputs_are_scored_as_failures(
    mode: str,
    error_class: str,
    tiny: TinyDataset,
    workspace: Workspace,
    docker_backend: Any,
    test_images: dict[str, str],
) -> None:
    out = _run(mode, tiny, workspace, docker_backend, test_images)
    assert out.container_runs[0].ok and len(out.predictions) == 3
    _, frame = _score_with_errors(out, tiny, workspace)
    assert sorted(frame["case_id"]) == ["0001", "0002", "0003"]
    assert set(frame["error_class"]) == {error_class}


def test_ctrl_c_removes_container_and_scratch(
    tiny: TinyDataset,
    workspace: Workspace,
    docker_backend: Any,
    test_images: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import evaluator.runner.docker_backend as module

    started: list[str] = []

    def interrupted(wait_once: Any, kill: Any, **_: Any) -> Any:
        started.extend(c.name for c in docker_backend.client.containers.list())
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "supervise", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run("loop", tiny, workspace, docker_backend, test_images)
    assert started, "the container should have been running when Ctrl-C came"
    names = {c.name for c in docker_backend.client.containers.list(all=True)}
    assert not names & set(started)
    assert not any(workspace.tmp.iterdir())
