"""Integrity against hostile entries: each attack is a real container, each ends named and contained.

Every test runs the hostile image (``tests/runner/images/hostile``) through the same path as
``ccbench run`` (:func:`run_entry`: reap, stage, sandboxed container, capped ``/output``, copy-out,
ingestion, scoring into the store) on three tiny cases and checks the guarantee it is named after:
a named per-case error or refusal, the other cases scored, nothing written outside the workspace,
no reference data in any score, no container or scratch folder left behind.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from evaluator.errors import SubmissionError
from evaluator.runner.contract import Manifest, load_manifest, write_manifest
from evaluator.runner.run import RunOutcome, run_entry
from evaluator.store import Store
from evaluator.workspace import Workspace

from .conftest import HOSTILE_TAG, SPACING, TIGHT, TinyDataset, hostile_manifest

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("leftover_check")]


def _run(
    manifest: Manifest, tiny: TinyDataset, workspace: Workspace, backend: Any
) -> tuple[RunOutcome, pd.DataFrame, pd.DataFrame]:
    """``ccbench run`` on every case: the outcome, the stored errors and the stored results."""
    submissions = workspace.root / "submissions"
    write_manifest(manifest, submissions)
    out = run_entry(
        manifest.name,
        task="btcv-phantom",
        split="all",
        workspace=workspace,
        backend=backend,
        submissions_dir=submissions,
        data_root=tiny.root,
        workers=1,
    )
    with Store.open(workspace=workspace) as db:
        run_id = out.evaluation.run.id
        errors = db.errors_frame(run_ids=[run_id])
        results = db.results_frame(run_ids=[run_id])
        assert db.get_run(run_id).status == "finished"
    assert not any(workspace.tmp.iterdir()), "scratch folders left behind"
    return out, errors, results


def _classes(errors: pd.DataFrame) -> dict[str, str]:
    return dict(zip(errors["case_id"], errors["error_class"], strict=True))


def _dice(results: pd.DataFrame) -> dict[str, float]:
    rows = results[(results["metric"] == "dice") & (results["label"] == 1)]
    return dict(zip(rows["case_id"], rows["value"], strict=True))


@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_headers_pointing_at_the_reference_score_nothing(
    where: str,
    tiny: TinyDataset,
    workspace: Workspace,
    docker_backend: Any,
    test_images: dict[str, str],
) -> None:
    reference = tiny.root / "label" / "label0001.nii.gz"
    target = str(reference) if where == "absolute" else os.path.relpath(reference, workspace.runs)
    manifest = hostile_manifest(test_images["hostile"], "pointer", args=(target,))
    _, errors, results = _run(manifest, tiny, workspace, docker_backend)
    classes = _classes(errors)
    # .nrrd is not accepted at all; .mha naming another file (the reference, /dev/zero) is unsafe
    assert classes == {"0001": "container", "0002": "unsafe", "0003": "unsafe"}
    assert "0001.nrrd" in errors.set_index("case_id").loc["0001", "message"]
    assert "ElementDataFile" in errors.set_index("case_id").loc["0002", "message"]
    assert set(_dice(results).values()) == {0.0}  # worst values: nothing was read through them


def test_huge_label_value_is_a_label_error_not_an_allocation(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    manifest = hostile_manifest(test_images["hostile"], "bigint")
    _, errors, results = _run(manifest, tiny, workspace, docker_backend)
    assert set(_classes(errors).values()) == {"label"}
    assert all("2147483647" in m for m in errors["message"])
    assert set(_dice(results).values()) == {0.0}


def test_decompression_bomb_is_refused_from_its_header(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    roomy = TIGHT.model_copy(update={"output_mb": 4, "time_limit_s": 10.0})
    manifest = hostile_manifest(test_images["hostile"], "bomb", resources=roomy)
    out, errors, _ = _run(manifest, tiny, workspace, docker_backend)
    assert sorted(out.predictions) == ["0001", "0002", "0003"], out.case_errors
    assert set(_classes(errors).values()) == {"geometry"}
    assert all("(1024, 1024, 1024)" in m and "nothing was decoded" in m for m in errors["message"])


def test_container_output_is_private_to_the_organiser(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    from leaderboards.site import publish_leaderboard

    manifest = hostile_manifest(test_images["hostile"], "leak")
    out, errors, _ = _run(manifest, tiny, workspace, docker_backend)
    leaked = next(ln for ln in out.container_runs[0].log.splitlines() if ln.startswith("LEAK "))
    secret = leaked[5:200]
    assert errors.empty
    with Store.open(workspace=workspace) as db:  # the organiser still has the log
        assert any(secret in msg for _, _, msg in db.logs(out.evaluation.run.id))
    from typer.testing import CliRunner

    from evaluator.cli import app

    shown = CliRunner().invoke(
        app, ["logs", out.evaluation.run.name, "--workspace", str(workspace.root)]
    )
    assert shown.exit_code == 0 and secret in shown.output.replace("\n", "")
    site = publish_leaderboard(
        "btcv-phantom", "all", workspace=workspace, out=workspace.root / "site", n_resamples=20,
        show_images=False,
    ).parent  # fmt: skip
    assert not list(site.rglob("gallery*")), "test images published without --show-images"
    published = [p for p in site.rglob("*") if p.is_file()]
    assert published
    for path in published:
        data = path.read_bytes()
        assert secret.encode() not in data, path
        assert str(tiny.root).encode() not in data, path
        assert str(workspace.root).encode() not in data, path


def test_nested_paths_cannot_escape_the_output_cap(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    manifest = hostile_manifest(test_images["hostile"], "deepnest")
    out, errors, _ = _run(manifest, tiny, workspace, docker_backend)
    run = out.container_runs[0]
    assert run.status == "output_cap", run.log
    depth = int(run.log.split("stopped at depth ")[1].split(",")[0])
    written = int(run.log.split("stopped at depth ")[1].split(", ")[1].split()[0])
    assert depth * 201 > 4096 or written <= 3  # past PATH_MAX, or stopped by the cap
    assert written <= 3  # 3 cases x 1 MiB, however deep
    assert set(_classes(errors).values()) == {"container"}


def test_empty_files_and_folders_hit_the_file_cap(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    start = time.monotonic()
    manifest = hostile_manifest(test_images["hostile"], "manyfiles")
    out, _, _ = _run(manifest, tiny, workspace, docker_backend)
    run = out.container_runs[0]
    count = int(run.log.split("stopped after ")[1].split()[0])
    assert count <= TIGHT.output_files * 3 + 16
    assert "No space left" in run.log and run.status == "output_cap"
    assert "file limit" in run.reason
    assert time.monotonic() - start < 30  # no minutes of clean-up


def test_fast_writes_stop_at_the_cap_not_at_the_next_poll(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    manifest = hostile_manifest(test_images["hostile"], "fastfill")
    out, _, _ = _run(manifest, tiny, workspace, docker_backend)
    run = out.container_runs[0]
    written = int(run.log.split("stopped after ")[1].split()[0])
    assert written <= 3 and "No space left" in run.log
    assert run.status == "output_cap" and run.details["output_enforcement"] == "tmpfs"


def test_setuid_outputs_land_as_plain_harness_files(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    manifest = hostile_manifest(test_images["hostile"], "setuid")
    out, errors, results = _run(manifest, tiny, workspace, docker_backend)
    assert sorted(out.predictions) == ["0001", "0002", "0003"] and errors.empty
    for path in out.predictions.values():
        st = path.stat()
        assert stat.S_IMODE(st.st_mode) == 0o644, oct(st.st_mode)
        assert st.st_uid == os.getuid()
    assert all(v > 0 for v in _dice(results).values())


def test_markup_and_escapes_in_logs_and_names_do_not_reach_the_terminal(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    from typer.testing import CliRunner

    from evaluator.cli import app

    manifest = hostile_manifest(test_images["hostile"], "markup")
    submissions = workspace.root / "submissions"
    write_manifest(manifest, submissions)
    result = CliRunner().invoke(
        app,
        [
            "run", manifest.name, "--task", "btcv-phantom", "--split", "all",
            "--submissions", str(submissions), "--data-root", str(tiny.root),
            "--workspace", str(workspace.root),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "\x1b[2J" not in result.output and "\x1b]0;" not in result.output
    # the container ran to the end; its odd file name is listed as text, markup not applied
    assert "3/3 with a prediction" in result.output
    assert "[bold red][link=x]evil.nii.gz" in result.output


def test_orphaned_container_is_removed_when_the_run_is_killed(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    patient = TIGHT.model_copy(update={"time_limit_s": 120.0})
    manifest = hostile_manifest(test_images["hostile"], "loop", resources=patient)
    submissions = workspace.root / "submissions"
    write_manifest(manifest, submissions)
    proc = subprocess.Popen(
        [
            sys.executable, "-c", "from evaluator.cli import main; main()", "run", manifest.name,
            "--task",
            "btcv-phantom", "--split", "all", "--submissions", str(submissions),
            "--data-root", str(tiny.root), "--workspace", str(workspace.root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    label = {"label": f"ccbench.entry={manifest.name}"}
    try:
        deadline = time.monotonic() + 60
        while not docker_backend.client.containers.list(filters=label):
            assert time.monotonic() < deadline, "the container never started"
            assert proc.poll() is None, "ccbench run ended early"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its whole process group
        proc.wait(timeout=10)
        killed = time.monotonic()
        while docker_backend.client.containers.list(all=True, filters=label):
            assert time.monotonic() - killed < 15, "container outlived its run"
            time.sleep(0.2)
        while any(workspace.tmp.iterdir()):
            assert time.monotonic() - killed < 15, "scratch folder outlived its run"
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_next_run_reaps_orphans_whose_watchdog_died_too(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    from evaluator.runner.docker_backend import sandbox_kwargs
    from evaluator.runner.outputs import open_scratch

    # An orphan as a killed run leaves it when nothing cleaned up: a container labelled with a
    # dead owner, and a scratch folder whose owner.json names that owner.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    owner = f"{os.uname().nodename}:{int(dead.stdout)}:1"
    kwargs = sandbox_kwargs(
        TIGHT, label="split", file_cap_bytes=2**20, extra_labels={"ccbench.owner": owner}
    )
    kwargs["labels"]["ccbench.entry"] = "hostile-orphan"
    orphan = docker_backend.client.containers.create(
        test_images["hostile"], command=["loop"], **kwargs
    )
    orphan.start()
    with open_scratch(workspace.tmp, token="orphan", cap_bytes=2**20, max_files=8,
                      uid=os.getuid(), gid=os.getgid()) as box:  # fmt: skip
        (box.root / "owner.json").write_text(json.dumps({"owner": owner, "token": "orphan"}))
        stale = box.root
        # a new run starts: it reaps before its first container
        manifest = hostile_manifest(test_images["hostile"], "good")
        _run(manifest, tiny, workspace, docker_backend)
        names = {c.name for c in docker_backend.client.containers.list(all=True)}
        assert orphan.name not in names
        assert not stale.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gc_inputs", {"CT": "../../../../../x"}),
        ("gc_inputs", {"CT": "/abs"}),
        ("gc_output", "../../../x"),
        ("gc_output", "/tmp/x"),
        ("name", "../../escape"),
    ],
)
def test_manifest_fields_that_become_paths_are_refused_at_load(
    field: str, value: Any, tmp_path: Path
) -> None:
    raw = {
        "name": "bad",
        "image": HOSTILE_TAG,
        "image_digest": "sha256:" + "0" * 64,
        "tasks": ["btcv-phantom"],
        "interface": "grand-challenge",
        field: value,
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SubmissionError, match=field):
        load_manifest(path, submissions_dir=tmp_path)
    with pytest.raises(Exception, match=r"pattern|slug"):
        Manifest(**raw)
    assert not (tmp_path.parent / "x").exists() and not Path("/tmp/x").exists()


def test_gpu_probe_runs_inside_the_sandbox(
    docker_backend: Any, test_images: dict[str, str]
) -> None:
    from evaluator.runner.docker_backend import DockerBackend

    backend = DockerBackend(docker_backend.client)
    has_gpu = backend.gpus_available(test_images["hostile"])
    kw = backend.probe_kwargs
    assert kw["network_mode"] == "none" and kw["read_only"] is True
    assert kw["cap_drop"] == ["ALL"] and "no-new-privileges" in kw["security_opt"]
    assert not kw["user"].startswith("0:") and kw["pids_limit"] <= 16
    assert kw["mem_limit"] == "256m" and "volumes" not in kw
    assert kw["entrypoint"][:2] == ["/bin/sh", "-c"]  # a harness command, not the image's own
    assert (backend.gpu_report != "none") is has_gpu
    probes = docker_backend.client.containers.list(all=True, filters={"label": "ccbench.probe"})
    assert not probes


def test_reference_off_its_image_grid_is_a_dataset_error_for_everyone(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    # the organiser's label 0002 has another spacing than its CT: not the entry's fault
    label = tiny.root / "label" / "label0002.nii.gz"
    img = sitk.ReadImage(str(label))
    img.SetSpacing(tuple(s * 1.5 for s in SPACING))
    sitk.WriteImage(img, str(label))
    manifest = hostile_manifest(test_images["hostile"], "good")
    _, errors, results = _run(manifest, tiny, workspace, docker_backend)
    assert _classes(errors) == {"0002": "dataset"}
    assert "not scorable" in errors["message"].iloc[0]
    dice = _dice(results)
    assert pd.isna(dice["0002"]) and dice["0001"] > 0 and dice["0003"] > 0


def test_a_flood_of_container_output_costs_bounded_memory_and_disk(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    import tracemalloc

    roomy = TIGHT.model_copy(update={"time_limit_s": 60.0})
    manifest = hostile_manifest(test_images["hostile"], "logbomb", resources=roomy, args=("256",))
    tracemalloc.start()
    try:
        out, errors, _ = _run(manifest, tiny, workspace, docker_backend)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    log = out.container_runs[0].log
    assert out.container_runs[0].ok and errors.empty  # 256 MiB printed, every case scored
    assert len(log) < 70_000 and "bytes cut" in log and log.rstrip().endswith("the last line")
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB of Python memory for the log"


def test_links_and_special_outputs_are_unsafe_errors(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    manifest = hostile_manifest(test_images["hostile"], "links")
    _, errors, results = _run(manifest, tiny, workspace, docker_backend)
    assert _classes(errors) == {"0001": "unsafe", "0002": "unsafe", "0003": "unsafe"}
    assert set(_dice(results).values()) == {0.0}
