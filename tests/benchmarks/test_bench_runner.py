"""Container overhead: wall time of a run whose container does (almost) nothing.

The container program exits at once (``hostile.py nothing``: Python start-up only), so the time
measured is the harness's own overhead: staging ``/input``, creating, starting, waiting for and
removing the container, collecting ``/output``. Reported per split for the batch interface (one
container for all cases; goal about 1 s) and per case for the grand-challenge interface (one
container per case). Run with ``pytest tests/benchmarks/test_bench_runner.py --benchmark-only``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evaluator.runner.contract import Resources
from evaluator.runner.local_backend import LocalBackend
from evaluator.runner.run import run_cases
from evaluator.workspace import Workspace
from tests.runner.conftest import (  # noqa: F401  (fixtures)
    docker_backend,
    hostile_manifest,
    make_tiny_btcv,
    test_images,
)

N_CASES = 8
RES = Resources(memory_mb=512, cpus=1.0, pids=64, time_limit_s=30.0, gpus="never")


@pytest.mark.docker
@pytest.mark.parametrize("interface", ["batch", "grand-challenge"])
def test_container_overhead(
    benchmark: Any,
    interface: str,
    tmp_path: Path,
    docker_backend: Any,  # noqa: F811
    test_images: dict[str, str],  # noqa: F811
) -> None:
    tiny = make_tiny_btcv(tmp_path / "data", n=N_CASES)
    workspace = Workspace(tmp_path / "ws").ensure()
    manifest = hostile_manifest(
        test_images["hostile"], "nothing", resources=RES, interface=interface
    )
    counter = iter(range(10**6))

    def once() -> None:
        out = run_cases(
            manifest,
            tiny.cases,
            task=tiny.task,
            run_dir=workspace.runs / f"bench-{next(counter)}",
            backend=docker_backend,
            workspace=workspace,
        )
        assert all(r.ok for r in out.container_runs)

    benchmark.pedantic(once, rounds=3, iterations=1, warmup_rounds=1)
    mean = benchmark.stats.stats.mean
    benchmark.extra_info.update(
        {"cases": N_CASES, "per_split_s": mean, "per_case_s": mean / N_CASES}
    )


def test_local_backend_overhead(benchmark: Any, tmp_path: Path) -> None:
    tiny = make_tiny_btcv(tmp_path / "data", n=N_CASES)
    workspace = Workspace(tmp_path / "ws").ensure()
    manifest = hostile_manifest("sha256:" + "0" * 64, "nothing", resources=RES).model_copy(
        update={"command": ("true",)}
    )
    counter = iter(range(10**6))

    def once() -> None:
        run_cases(
            manifest,
            tiny.cases,
            task=tiny.task,
            run_dir=workspace.runs / f"bench-{next(counter)}",
            backend=LocalBackend(),
            workspace=workspace,
        )

    benchmark.pedantic(once, rounds=3, iterations=1)
    benchmark.extra_info.update({"cases": N_CASES, "per_split_s": benchmark.stats.stats.mean})
