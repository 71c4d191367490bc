"""`ccbench evaluate` through the CLI, killed with SIGKILL and resumed; the Dask paths."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.evaluate import evaluate_run
from evaluator.store import Store
from evaluator.workspace import Workspace

from ..conftest import processes_with_env
from ..store_helpers import stored_rows
from .conftest import Dataset

# Runs `ccbench evaluate` in a fresh interpreter with every case slowed down by 0.4 s, so the
# test can kill it half-way; nothing else differs from the console script.
# Slows every case down so that the run can be killed half-way. score_case imports
# compute_metrics when it runs, so patching the module attribute reaches it (also in forked
# workers); evaluate.score_case itself is bound as a default argument and cannot be patched.
SLOW_CLI = """
import sys
from evaluator.cli import main
main(sys.argv[1:])
"""
#: Imported by every Python process started with it on PYTHONPATH, the scoring workers
#: included (they are forked from a fresh forkserver process): each case takes 0.4 s longer.
SLOW_SITE = """
import time
import evaluator.metrics.api as api
compute = api.compute_metrics
def slow(*args, **kwargs):
    time.sleep(0.4)
    return compute(*args, **kwargs)
api.compute_metrics = slow
"""


def _slow_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a CLI subprocess whose cases each take 0.4 s longer."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SLOW_SITE)
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "COLUMNS": "200", "PYTHONPATH": path}


def _args(ds: Dataset, ws: Path, store: str, *extra: str) -> list[str]:
    return [
        "evaluate",
        "--task",
        ds.task,
        "--split",
        "all",
        "--pred",
        str(ds.preds),
        "--data-root",
        str(ds.root),
        "--workers",
        "1",
        "--store",
        store,
        "--workspace",
        str(ws),
        *extra,
    ]


def test_cli_evaluate_prints_and_writes(hecktor: Dataset, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    out = tmp_path / "out"
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    result = CliRunner().invoke(app, [*_args(hecktor, ws, url), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "GTVn" in result.output and "aggregated_dice" in result.output
    assert "4/4 scored" in result.output
    assert (out / "results.csv").is_file() and (out / "summary.json").is_file()
    again = CliRunner().invoke(app, [*_args(hecktor, ws, url), "--out", str(out)])
    assert again.exit_code == 0 and "0 now, 4 from the store" in again.output


def test_cli_reports_a_missing_predictions_folder(hecktor: Dataset, tmp_path: Path) -> None:
    args = _args(hecktor, tmp_path / "ws", f"sqlite:///{tmp_path / 's.sqlite'}")
    args[args.index("--pred") + 1] = str(tmp_path / "nowhere")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "error:" in result.output and "nowhere" in result.output


def test_sigkill_mid_run_then_resume_gives_the_clean_rows(hecktor: Dataset, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    clean_url = f"sqlite:///{tmp_path / 'clean.sqlite'}"
    url = f"sqlite:///{tmp_path / 'killed.sqlite'}"
    assert CliRunner().invoke(app, _args(hecktor, ws, clean_url)).exit_code == 0

    marker = f"CCBENCH_TEST_MARKER=evaluate-{os.getpid()}-{time.time_ns()}"
    env = {**_slow_env(tmp_path), "CCBENCH_TEST_MARKER": marker[20:]}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLI, *_args(hecktor, ws, url)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    name = "hecktor-all-preds"
    completed = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if Path(url.removeprefix("sqlite:///")).exists():
                store = Store.open(url)
                run = store.find_run(name)
                completed = 0 if run is None else len(store.completed_cases(run.id))
                store.close()
                if completed >= 2:
                    break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10  # its scoring workers (and their forkserver) die with it
    while left := processes_with_env(marker):
        assert time.monotonic() < deadline, f"workers outlived ccbench evaluate: {left}"
        time.sleep(0.1)
    store = Store.open(url)
    run = store.find_run(name)
    assert run is not None and run.status == "running"
    assert 2 <= len(store.completed_cases(run.id)) < 4

    resumed = CliRunner().invoke(app, _args(hecktor, ws, url))
    assert resumed.exit_code == 0, resumed.output
    assert "4/4 scored" in resumed.output
    assert stored_rows(url, name) == stored_rows(clean_url, name)


def test_dask_cluster_gives_the_local_rows(hecktor: Dataset, workspace: Workspace) -> None:
    from distributed import LocalCluster

    local = evaluate_run(
        "hecktor", "all", hecktor.preds, workspace=workspace, data_root=hecktor.root, workers=1
    )
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, protocol="tcp", dashboard_address=None
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        remote = evaluate_run(
            "hecktor",
            "all",
            hecktor.preds,
            workspace=workspace,
            data_root=hecktor.root,
            scheduler=cluster.scheduler_address,
            run_name="dask",
        )
    assert remote.scored == 4
    assert stored_rows(local.store_url, local.run.name) == stored_rows(remote.store_url, "dask")


def test_scheduler_local_gives_the_pool_rows(hecktor: Dataset, tmp_path: Path) -> None:
    """`--scheduler local --workers 2` (a Dask cluster started for the call) stores exactly the
    rows of the default local pool, and leaves no worker process behind."""
    import psutil

    ws = tmp_path / "ws"
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    pool = CliRunner().invoke(app, _args(hecktor, ws, url))
    assert pool.exit_code == 0, pool.output
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    args = [*_args(hecktor, ws, url), "--scheduler", "local", "--run-name", "dask-local"]
    args[args.index("--workers") + 1] = "2"
    local = CliRunner().invoke(app, args)
    assert local.exit_code == 0, local.output
    assert "4/4 scored" in local.output
    assert stored_rows(url, "dask-local") == stored_rows(url, "hecktor-all-preds")
    deadline = time.monotonic() + 10
    while left := {p.pid for p in psutil.Process().children(recursive=True)} - before:
        assert time.monotonic() < deadline, f"Dask workers outlived the call: {left}"
        time.sleep(0.1)


def test_unreachable_scheduler_is_a_clean_error(hecktor: Dataset, workspace: Workspace) -> None:
    import dask

    from evaluator.errors import CCBenchError

    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(CCBenchError, match="Dask scheduler"),
    ):
        evaluate_run(
            "hecktor",
            "all",
            hecktor.preds,
            workspace=workspace,
            data_root=hecktor.root,
            scheduler="tcp://127.0.0.1:9",
        )


def test_run_name_that_would_leave_the_workspace_is_refused(
    hecktor: Dataset, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    outside = tmp_path / "outside"
    for name in (f"../../{outside.name}/x", str(outside / "x"), ".hidden", "a/b"):
        args = [*_args(hecktor, ws, f"sqlite:///{tmp_path / 's.sqlite'}"), "--run-name", name]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1, result.output
        assert "run name" in result.output and "Traceback" not in result.output
    assert not outside.exists()
    assert not (ws / "runs").exists() or not any((ws / "runs").iterdir())


def test_same_run_started_twice_waits_then_resumes(hecktor: Dataset, tmp_path: Path) -> None:
    """Two `ccbench evaluate` with one run name at once: both succeed, one waits for the other,
    and the store holds exactly the rows of a single clean run."""
    ws = tmp_path / "ws"
    clean_url = f"sqlite:///{tmp_path / 'clean.sqlite'}"
    url = f"sqlite:///{tmp_path / 'twice.sqlite'}"
    assert CliRunner().invoke(app, _args(hecktor, ws, clean_url)).exit_code == 0
    env = _slow_env(tmp_path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SLOW_CLI, *_args(hecktor, ws, url)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    waited = [err for _, err in outputs if "is being scored by process" in err]
    assert len(waited) == 1, outputs
    assert stored_rows(url, "hecktor-all-preds") == stored_rows(clean_url, "hecktor-all-preds")
