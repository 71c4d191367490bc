"""Time to write the phantom datasets (skipped by default; run with ``--benchmark-only``).

``pytest tests/datasets/test_phantoms_benchmark.py --benchmark-only -s`` prints and stores
(``extra_info``) the seconds per case of each task at the default size, and of one AutoPET case
at the real size (400 x 400 x 326 voxels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evaluator.datasets.phantoms import phantom_tasks, write_phantoms
from evaluator.workspace import Workspace


@pytest.mark.parametrize("task", phantom_tasks())
def test_bench_small(benchmark: Any, task: str, tmp_path: Path) -> None:
    result = benchmark.pedantic(
        write_phantoms,
        args=(task,),
        kwargs={"workspace": Workspace(tmp_path), "seed": 0, "progress": False},
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info["seconds_per_case"] = result.seconds / result.cases
    print(f"\n{task}: {result.cases} cases, {result.seconds / result.cases:.2f} s per case")


def test_bench_autopet_full_size(benchmark: Any, tmp_path: Path) -> None:
    result = benchmark.pedantic(
        write_phantoms,
        args=("autopet",),
        kwargs={
            "workspace": Workspace(tmp_path),
            "cases": 1,
            "size": "full",
            "seed": 0,
            "progress": False,
        },
        rounds=1,
        iterations=1,
    )
    assert result.size == (400, 400, 326)
    benchmark.extra_info["seconds_per_case"] = result.seconds
    print(f"\nautopet full size: {result.seconds:.1f} s per case")
