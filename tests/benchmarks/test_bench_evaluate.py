"""Throughput of ``ccbench evaluate`` and per-case scoring time against the file-reading floor.

Run with ``pytest tests/benchmarks/test_bench_evaluate.py --benchmark-only -s``. Each benchmark
prints and stores (``extra_info``) cases per second, the mean per-case time inside the worker
(read + validate + score + nothing else), the time needed just to read the reference and the
prediction with SimpleITK, and their ratio (goal: at most 2). Two sizes: the small phantoms of
the tests (about 0.5 million voxels, where fixed per-call costs dominate) and real-sized ones
(``size="full"``: AutoPET 400x400x326, BTCV 512x512x128 with 13 organs; writing them takes
about a minute).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import SimpleITK as sitk

from evaluator.datasets.base import open_dataset
from evaluator.evaluate import evaluate_run
from evaluator.scoring import CaseOutcome
from evaluator.simulate.degraded import write_degraded_predictions
from evaluator.workspace import Workspace

CASES = {"small": 4, "full": 2}
TASKS = {"small": ("hecktor", "btcv", "autopet"), "full": ("btcv", "autopet")}


def _write(root: Path, size: str) -> dict[str, tuple[Workspace, Path]]:
    from evaluator.datasets.phantoms import write_phantoms

    ws = Workspace(root).ensure()
    out = {}
    for task in TASKS[size]:
        write_phantoms(task, workspace=ws, cases=CASES[size], size=size)
        pred = write_degraded_predictions(
            f"{task}-phantom", "all", ws.root / f"pred-{task}", workspace=ws, seed=1, quality=0.6
        )
        out[task] = (ws, pred)
    return out


@pytest.fixture(scope="module")
def phantoms(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], dict[str, tuple[Workspace, Path]]]:
    """Phantoms per size, written on first use (only the sizes that a selected test needs)."""
    written: dict[str, dict[str, tuple[Workspace, Path]]] = {}

    def get(size: str) -> dict[str, tuple[Workspace, Path]]:
        if size not in written:
            written[size] = _write(tmp_path_factory.mktemp(f"bench-{size}"), size)
        return written[size]

    return get


def _read_floor(ws: Workspace, task: str, pred: Path) -> float:
    """Mean seconds per case to read the reference label and the prediction file."""
    dataset = open_dataset(f"{task}-phantom", workspace=ws)
    times = []
    for cid in dataset.case_ids():
        start = time.perf_counter()
        sitk.GetArrayFromImage(sitk.ReadImage(str(dataset.case(cid).label)))
        sitk.GetArrayFromImage(sitk.ReadImage(str(pred / f"{cid}.nii.gz")))
        times.append(time.perf_counter() - start)
    return statistics.mean(times)


@pytest.mark.parametrize(
    ("size", "task"), [(size, task) for size in ("small", "full") for task in TASKS[size]]
)
def test_bench_evaluate(
    benchmark: Any,
    phantoms: Callable[[str], dict[str, tuple[Workspace, Path]]],
    size: str,
    task: str,
    tmp_path: Path,
) -> None:
    ws, pred = phantoms(size)[task]
    outcomes: list[CaseOutcome] = []
    rounds = iter(range(1000))

    def once() -> None:
        outcomes.clear()
        evaluate_run(
            f"{task}-phantom",
            "all",
            pred,
            workspace=ws,
            workers=1,
            run_name=f"bench-{task}-{next(rounds)}",
            store=f"sqlite:///{tmp_path / 'bench.sqlite'}",
            on_case=lambda outcome, _done, _total: outcomes.append(outcome),
        )

    benchmark.pedantic(once, rounds=2, iterations=1, warmup_rounds=0)
    floor = _read_floor(ws, task, pred)
    per_case = statistics.mean(o.seconds for o in outcomes)
    read_validate = statistics.mean(o.read_seconds for o in outcomes)
    info = {
        "cases_per_second": CASES[size] / benchmark.stats.stats.mean,
        "per_case_s": per_case,
        "read_and_validate_s": read_validate,
        "read_floor_s": floor,
        "ratio_to_floor": per_case / floor,
    }
    benchmark.extra_info.update(info)
    print(size, task, {k: round(v, 4) for k, v in info.items()})
    assert len(outcomes) == CASES[size]
