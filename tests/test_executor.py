"""The scoring executor with real worker processes: memory cap, time limit, crashes, lifeline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from evaluator.errors import CCBenchError
from evaluator.executor import (
    JobFailure,
    WorkerLimits,
    execute,
    run_jobs,
    threads_per_worker,
)

from .conftest import processes_with_env


def behave(job: tuple[str, int]) -> tuple[str, int]:
    """A job that does what its first item says (the worker imports it from this module)."""
    what, value = job
    if what == "allocate":  # value bytes, touched
        block = np.ones(value, dtype=np.uint8)
        return what, int(block[-1])
    if what == "sleep":
        time.sleep(value)
    elif what == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif what == "raise":
        raise CCBenchError(f"bad job {value}")
    return what, value


def vm_size(_: object) -> int:
    """The worker's address-space size, bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")


def thread_caps(_: object) -> tuple[int, str]:
    """SimpleITK's default thread count and ``OMP_NUM_THREADS`` in the worker."""
    import SimpleITK as sitk

    return sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(), os.environ["OMP_NUM_THREADS"]


def _failed(job: tuple[str, int], failure: JobFailure) -> tuple[str, str]:
    return job[0], failure.kind


def test_one_bad_job_never_loses_the_others() -> None:
    base = next(run_jobs([0], vm_size, workers=1, on_failure=lambda j, f: 0))
    cap_mb = base // 2**20 + 256
    jobs = [
        ("ok", 1),
        ("allocate", 2**30),  # 1 GiB: past the cap
        ("ok", 2),
        ("sleep", 30),  # past the time limit
        ("segfault", 0),
        ("ok", 3),
        ("allocate", 2**20),  # fits
    ]
    limits = WorkerLimits(memory_mb=cap_mb, time_s=3.0)
    start = time.monotonic()
    got = sorted(map(str, run_jobs(jobs, behave, workers=2, limits=limits, on_failure=_failed)))
    assert got == sorted(
        map(
            str,
            [
                ("ok", 1),
                ("allocate", "memory"),
                ("ok", 2),
                ("sleep", "time"),
                ("segfault", "crash"),
                ("ok", 3),
                ("allocate", 1),
            ],
        )
    )
    assert time.monotonic() - start < 20  # the sleeper was killed at its limit


def test_an_exception_of_the_job_reaches_the_caller() -> None:
    with pytest.raises(CCBenchError, match="bad job 7"):
        list(run_jobs([("ok", 1), ("raise", 7)], behave, workers=1, on_failure=_failed))


CHILD = """
import sys, time
from evaluator.executor import run_jobs
from tests.test_executor import behave
print("started", flush=True)
for _ in run_jobs([("sleep", 60)] * 4, behave, workers=2, on_failure=lambda j, f: None):
    pass
"""


def test_workers_die_with_their_coordinator() -> None:
    marker = f"CCBENCH_TEST_MARKER=lifeline-{os.getpid()}-{time.time_ns()}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD], env=env, cwd=root, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    deadline = time.monotonic() + 30
    while len(processes_with_env(marker)) < 4:  # coordinator, forkserver, two workers
        assert time.monotonic() < deadline, processes_with_env(marker)
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while left := processes_with_env(marker):
        assert time.monotonic() < deadline, f"processes outlived the coordinator: {left}"
        time.sleep(0.1)


@pytest.mark.parametrize("scheduler", [None, "local"])
def test_workers_share_the_cpus_in_threads(scheduler: str | None) -> None:
    """Two workers (pool or local Dask cluster) cap SimpleITK, OpenMP and BLAS at half the CPUs
    each, so two workers never start twice the machine's CPUs in threads."""
    share = threads_per_worker(2)
    got = list(execute([0, 1], thread_caps, workers=2, scheduler=scheduler, on_failure=_failed))
    assert got == [(share, str(share))] * 2


def test_local_dask_cluster_gives_the_pool_results() -> None:
    """The same results, and this process's environment (which a Dask nanny changes) as before."""
    environ = dict(os.environ)
    jobs = [("ok", 1), ("allocate", 2**20), ("sleep", 0), ("ok", 2)]
    pool = run_jobs(jobs, behave, workers=2, on_failure=_failed)
    local = execute(jobs, behave, workers=2, scheduler="local", on_failure=_failed)
    assert sorted(map(str, local)) == sorted(map(str, pool))
    assert dict(os.environ) == environ


def test_a_job_that_kills_its_dask_workers_is_a_failure() -> None:
    """As on the pool, a job whose worker dies becomes ``on_failure``'s result (once the cluster
    gives up retrying it), not an exception that stops the other jobs' caller."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        got = list(
            execute([("segfault", 0)], behave, workers=1, scheduler="local", on_failure=_failed)
        )
    assert got == [("segfault", "crash")]
