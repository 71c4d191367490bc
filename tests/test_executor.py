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
from evaluator.executor import JobFailure, WorkerLimits, run_jobs

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
