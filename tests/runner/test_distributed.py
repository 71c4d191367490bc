"""``ccbench run --scheduler``: containers on a Dask cluster of two worker processes.

Each worker is its own process (a Dask nanny restarts it when it dies) with its own scratch
folder; jobs carry their inputs, so nothing but the Docker engine is shared. Oracle: the rows a
local run of the same entry stores (:func:`tests.store_helpers.stored_rows`), and the threshold
baseline's fixed rule computed with numpy.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evaluator.datasets.registry import load_registry
from evaluator.errors import ExecutorError, SubmissionError
from evaluator.processes import Owner
from evaluator.runner.contract import ContainerRun, Manifest, Resources
from evaluator.runner.distributed import (
    InputBundle,
    RemoteResult,
    accept_result,
    job_resources,
    run_cases_dask,
)
from evaluator.runner.run import RunOutcome, run_entry
from evaluator.runner.submissions import submit_image
from evaluator.runner.units import Unit, plan_units
from evaluator.workspace import Workspace

from ..store_helpers import stored_rows
from .conftest import BASELINE_TAG, TinyDataset, hostile_manifest, make_tiny_btcv
from .test_run import FAST, _autopet_cases, _check_predictions, _expected_btcv

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("leftover_check")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Two worker processes, one thread each, scratch under their own folders."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            protocol="tcp",
            dashboard_address=None,
            local_directory=str(tmp_path_factory.mktemp("dask")),
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        cluster.client = client
        yield cluster


def _submit(subs: Path, backend: Any) -> None:
    submit_image(
        BASELINE_TAG,
        name="test-threshold",
        tasks=["btcv-phantom"],
        team="ccbench",
        resources=FAST,
        submissions_dir=subs,
        backend=backend,
    )


def _slow(digest: str, seconds: int) -> Manifest:
    """A good entry that sleeps ``seconds`` first (hostile image, mode ``slowgood``)."""
    return hostile_manifest(
        digest,
        "slowgood",
        args=(str(seconds),),
        resources=Resources(
            memory_mb=256, cpus=1.0, pids=64, time_limit_s=2.0 * seconds, gpus="never"
        ),
    )


def _on_cluster(
    manifest: Manifest, tiny: TinyDataset, workspace: Workspace, cluster: Any, **kw: Any
) -> RunOutcome:
    """``run_cases_dask`` of ``manifest`` on the tiny cases, one case per job."""
    return run_cases_dask(
        manifest,
        tiny.cases,
        task=tiny.task,
        run_dir=workspace.runs / manifest.name,
        scheduler=cluster.scheduler_address,
        workspace=workspace,
        **{"shard_size": 1, **kw},
    )


def local_and_remote(
    root: Path, workspace: Workspace, backend: Any, scheduler: str
) -> tuple[TinyDataset, RunOutcome]:
    """The threshold baseline on four tiny cases, run locally, then on ``scheduler`` one case
    per container; the remote run, after checking that it stored exactly the local run's rows."""
    tiny = make_tiny_btcv(root / "btcv", n=4)
    subs = root / "submissions"
    _submit(subs, backend)
    common: dict[str, Any] = dict(
        task="btcv-phantom",
        split="all",
        workspace=workspace,
        submissions_dir=subs,
        data_root=tiny.root,
        workers=1,
    )
    local = run_entry("test-threshold", backend=backend, **common)
    remote = run_entry("test-threshold", scheduler=scheduler, shard_size=1, **common)
    assert remote.case_errors == {} and remote.dataset_errors == {}
    assert all(r.ok for r in remote.container_runs)
    assert stored_rows(remote.evaluation.store_url, remote.name) == stored_rows(
        local.evaluation.store_url, local.name
    )
    assert remote.provenance["image_digest"] == local.provenance["image_digest"]
    return tiny, remote


def test_two_workers_store_exactly_the_rows_of_a_local_run(
    tmp_path: Path,
    workspace: Workspace,
    docker_backend: Any,
    test_images: dict[str, str],
    cluster: Any,
) -> None:
    tiny, remote = local_and_remote(tmp_path, workspace, docker_backend, cluster.scheduler_address)
    _check_predictions(remote.predictions, _expected_btcv(tiny))
    # one container per shard, on both workers, each in its own scratch folder
    runs = remote.container_runs
    assert [r.label for r in runs] == [f"shard-{i:03d}" for i in range(4)]
    assert all(r.ok for r in runs)
    workers = {r.details["worker"] for r in runs}
    assert workers == set(cluster.scheduler_info["workers"])
    folders = {Path(r.details["scratch"]).parent for r in runs}
    assert len(folders) == 2 and not any(f.is_relative_to(workspace.root) for f in folders)
    assert not any(f.exists() and any(f.iterdir()) for f in folders)  # scratch removed
    assert remote.provenance["scheduler"] == cluster.scheduler_address


def test_jobs_carry_their_inputs_not_paths(tmp_path: Path, workspace: Workspace) -> None:
    """No shared folder: a job names no path of the coordinator's data or workspace."""
    from evaluator.runner.distributed import _jobs

    tiny = make_tiny_btcv(tmp_path / "btcv", n=2)
    m = Manifest(name="m", image="i", image_digest="sha256:" + "0" * 64, tasks=("btcv-phantom",))
    units = plan_units(m, ["0001", "0002"], task=tiny.task, shard_size=1)
    outcome = RunOutcome("r", "m", "btcv-phantom", "all", "batch", tmp_path, ["0001", "0002"])
    stage = workspace.tmp / "stage"
    stage.mkdir(parents=True)
    by_id = {c.case_id: c for c in tiny.cases}
    jobs = list(_jobs(units, by_id, stage, tiny.task, None, outcome, m, "docker", "transfer"))
    assert [job.unit.case_ids for job in jobs] == [("0001",), ("0002",)]
    for job in jobs:
        assert job.inputs.folder is None
        names = {rel for rel, _ in job.inputs.files}
        assert "cases.json" in names and any(n.endswith(".nii.gz") for n in names)
        blob = pickle.dumps(job)
        for path in (tiny.root, workspace.root, tmp_path):
            assert str(path).encode() not in blob
    assert not any(stage.iterdir())  # staged folders removed once packed
    # the bundle recreates the staged layout, and refuses paths that climb out
    target = tmp_path / "inputs"
    target.mkdir()
    jobs[0].inputs.materialise(target)
    assert (target / "cases.json").is_file() and (target / "0001").is_dir()
    with pytest.raises(ExecutorError, match="refusing"):
        InputBundle(files=(("../escape", b"x"),)).materialise(target)


def test_grand_challenge_jobs_give_the_local_predictions(
    tmp_path: Path,
    workspace: Workspace,
    docker_backend: Any,
    test_images: dict[str, str],
    cluster: Any,
) -> None:
    cases, expected = _autopet_cases(tmp_path / "autopet", n=3)
    manifest = Manifest(
        name="test-threshold-gc",
        image=BASELINE_TAG,
        image_digest=test_images["baseline"],
        interface="grand-challenge",
        tasks=("autopet-phantom",),
        resources=FAST,
    )
    task = load_registry().task("autopet-phantom")
    ticks: list[tuple[int, int | None, str]] = []
    outcome = run_cases_dask(
        manifest,
        cases,
        task=task,
        run_dir=workspace.runs / "gc",
        scheduler=cluster.scheduler_address,
        workspace=workspace,
        progress=lambda *tick: ticks.append(tick),
    )
    assert outcome.case_errors == {}
    _check_predictions(outcome.predictions, expected)
    assert [r.label for r in outcome.container_runs] == [c.case_id for c in cases]
    assert ticks[0] == (0, 3, "") and sorted(t[0] for t in ticks[1:]) == [1, 2, 3]
    assert {t[2] for t in ticks[1:]} == {f"{c.case_id}: ok" for c in cases}


def test_a_worker_killed_mid_run_costs_a_retry_not_a_row(
    tmp_path: Path,
    workspace: Workspace,
    docker_backend: Any,
    test_images: dict[str, str],
    cluster: Any,
) -> None:
    tiny = make_tiny_btcv(tmp_path / "btcv", n=4)
    manifest = _slow(test_images["hostile"], 3)
    pids = cluster.client.run(os.getpid)
    killed: list[str] = []  # the killed worker's owner label

    def kill_one() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for container in docker_backend.client.containers.list(
                filters={"label": "ccbench.run", "status": "running"}
            ):
                owner = Owner.parse(container.labels["ccbench.owner"])
                if owner.pid in pids.values():
                    os.kill(owner.pid, signal.SIGKILL)
                    killed.append(container.labels["ccbench.owner"])
                    return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_one)
    killer.start()
    outcome = _on_cluster(manifest, tiny, workspace, cluster)
    killer.join()
    assert killed, "no worker was running a container"
    assert outcome.case_errors == {}, outcome.case_errors
    assert sorted(outcome.predictions) == [c.case_id for c in tiny.cases]
    assert len(outcome.container_runs) == 4  # one absorbed result per shard: nothing doubled
    assert all(r.ok for r in outcome.container_runs)
    dead = Owner.parse(killed[0]).pid
    assert dead not in {r.details["pid"] for r in outcome.container_runs}
    # the killed worker's container went with it (its watchdog); its scratch folder too
    assert not docker_backend.client.containers.list(
        all=True, filters={"label": f"ccbench.owner={killed[0]}"}
    )


def _unit(**kw: Any) -> Unit:
    base = dict(
        label="shard-000",
        case_ids=("a", "b"),
        layout="batch",
        time_limit_s=1.0,
        box_bytes=100,
        max_files=10,
        file_bytes=8,
    )
    return Unit(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        (
            RemoteResult(
                ContainerRun("x", "ok", "", 0, 0.0), {"c": "c.nii.gz"}, {"c.nii.gz": b"1"}
            ),
            "another job",
        ),
        (
            RemoteResult(
                ContainerRun("x", "ok", "", 0, 0.0), {"a": "../a.nii.gz"}, {"../a.nii.gz": b"1"}
            ),
            "named",
        ),
        (
            RemoteResult(ContainerRun("x", "ok", "", 0, 0.0), {"a": "a.txt"}, {"a.txt": b"1"}),
            "named",
        ),
        (
            RemoteResult(
                ContainerRun("x", "ok", "", 0, 0.0), {"a": "a.mha"}, {"a.mha": b"123456789"}
            ),
            "cap",
        ),
        (
            RemoteResult(ContainerRun("x", "ok", "", 0, 0.0), {"a": "a.mha"}, {"b.mha": b"1"}),
            "no prediction",
        ),
        ("not a result", "not a result"),
    ],
)
def test_what_a_worker_returns_is_checked(tmp_path: Path, result: Any, problem: str) -> None:
    with pytest.raises(ExecutorError, match=problem):
        accept_result(_unit(), result, tmp_path / "predictions")
    assert not (tmp_path / "predictions").exists() or not any((tmp_path / "predictions").iterdir())
    assert not (tmp_path / "a.nii.gz").exists()


def test_gpu_entries_ask_for_gpu_workers() -> None:
    def entry(gpus: Any) -> Manifest:
        return Manifest(
            name="m",
            image="i",
            image_digest="sha256:" + "0" * 64,
            tasks=("btcv",),
            resources=Resources(gpus=gpus),
        )

    gpu_worker = {"tcp://a:1": {"resources": {"GPU": 1}}, "tcp://b:1": {"resources": {}}}
    cpu_only = {"tcp://b:1": {"resources": {}}}
    assert job_resources(entry(2), gpu_worker) == {"GPU": 2.0}
    assert job_resources(entry("all"), gpu_worker) == {"GPU": 1.0}
    assert job_resources(entry("auto"), gpu_worker) == {"GPU": 1.0}
    assert job_resources(entry("auto"), cpu_only) is None
    assert job_resources(entry("never"), gpu_worker) is None
    with pytest.raises(SubmissionError, match="--resources GPU=1"):
        job_resources(entry(1), cpu_only)


def test_cli_run_on_the_cluster(
    tmp_path: Path,
    workspace: Workspace,
    docker_backend: Any,
    test_images: dict[str, str],
    cluster: Any,
) -> None:
    from typer.testing import CliRunner

    from evaluator.cli import app

    tiny = make_tiny_btcv(tmp_path / "btcv", n=2)
    subs = tmp_path / "submissions"
    _submit(subs, docker_backend)
    args = ["run", "test-threshold", "-t", "btcv-phantom", "-s", "all", "--data-root"]
    args += [str(tiny.root), "--submissions", str(subs), "-w", str(workspace.root), "--quiet"]
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, [*args, "--scheduler", cluster.scheduler_address]
    )
    assert result.exit_code == 0, result.output
    assert "2/2 with a prediction" in result.output
    assert cluster.scheduler_address in result.output
    assert "shard-000" in result.output and "shard-001" in result.output

    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        unreachable = CliRunner().invoke(app, [*args, "--scheduler", "tcp://127.0.0.1:9"])
    assert unreachable.exit_code != 0
    assert "Dask scheduler" in unreachable.output and "Traceback" not in unreachable.output


def test_a_worker_without_the_image_stops_the_run_before_anything_runs(
    tmp_path: Path, workspace: Workspace, docker_backend: Any, cluster: Any
) -> None:
    """The cluster's fault is never charged to the entry: nothing runs, nothing is stored."""
    tiny = make_tiny_btcv(tmp_path / "btcv", n=2)
    missing = Manifest(
        name="test-missing",
        image=BASELINE_TAG,
        image_digest="sha256:" + "1" * 64,
        tasks=("btcv-phantom",),
        resources=FAST,
    )
    with pytest.raises(ExecutorError, match=r"2 of 2 workers cannot run entry test-missing"):
        _on_cluster(missing, tiny, workspace, cluster)
    assert not (workspace.runs / missing.name / "predictions").exists()


def test_an_interrupted_run_leaves_no_container_running(
    tmp_path: Path,
    workspace: Workspace,
    docker_backend: Any,
    test_images: dict[str, str],
    cluster: Any,
) -> None:
    import _thread

    from evaluator.runner.distributed import COORDINATOR_LABEL

    tiny = make_tiny_btcv(tmp_path / "btcv", n=2)
    manifest = _slow(test_images["hostile"], 180)
    interrupted: list[float] = []

    def all_ours() -> list[Any]:
        return docker_backend.client.containers.list(all=True, filters={"label": COORDINATOR_LABEL})

    earlier = {c.id for c in all_ours()}  # another test's containers are not this run's

    def ours() -> list[Any]:
        return [c for c in all_ours() if c.id not in earlier]

    def interrupt_once_both_run() -> None:
        deadline = time.monotonic() + 150  # a loaded machine may take long to start both
        while time.monotonic() < deadline:
            if len([c for c in ours() if c.status == "running"]) == 2:
                interrupted.append(time.monotonic())
                _thread.interrupt_main()
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=interrupt_once_both_run)
    # Ctrl-C raises KeyboardInterrupt here whatever handler an earlier test left installed
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        watcher.start()
        with pytest.raises(KeyboardInterrupt):
            _on_cluster(manifest, tiny, workspace, cluster)
        watcher.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert interrupted, "the two containers never ran at the same time"
    assert not ours()  # removed on every worker, long before their 180 s were up
    assert time.monotonic() - interrupted[0] < 40
    # the workers are free again for the next run
    assert cluster.client.submit(sum, [1, 2], pure=False).result(timeout=30) == 3


def test_a_job_sends_back_a_bounded_number_of_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evaluator.runner import distributed
    from evaluator.runner.outputs import CollectedOutputs

    sizes = {"a": 40, "b": 50, "c": 30}
    for name, size in sizes.items():
        (tmp_path / f"{name}.nii.gz").write_bytes(b"x" * size)
    got = CollectedOutputs(predictions={c: tmp_path / f"{c}.nii.gz" for c in sizes})
    monkeypatch.setattr(distributed, "MAX_RESULT_BYTES", 75)
    files = distributed._bounded_files(got)
    assert sorted(files) == ["a.nii.gz", "c.nii.gz"]  # in case order, b would pass the bound
    assert sorted(got.predictions) == ["a", "c"]
    assert "exceed" in got.errors["b"] and "--shard-size" in got.errors["b"]
