"""How long the full dataset study takes per case, and the toy studies at a reduced scale.

The full dataset study of one case is every operator (drop, enlarge, insert, erode) for both
orders (smallest, largest) at ``n = 0..10``, every metric of the AutoPET profile: 88 degraded
predictions scored with 17 metrics. It runs on the AutoPET phantom at its default ``small``
size (96 x 96 x 80 voxels, 2 mm) for the case with the most lesions. Run with
``pytest tests/benchmarks/test_bench_simulate.py --benchmark-only -s``; the seconds per case
(and per degraded prediction) are printed and kept in ``extra_info``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from evaluator.datasets.base import Case, open_dataset
from evaluator.datasets.registry import load_registry
from evaluator.evaluate import make_plan
from evaluator.simulate.dataset import (
    DATASET_OPERATIONS,
    ORDERS,
    DatasetStudy,
    StudyJob,
    simulate_case,
)
from evaluator.simulate.toy import run_toy_studies
from evaluator.workspace import Workspace

N_MAX = 10


@pytest.fixture(scope="module")
def busiest_case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    from evaluator.datasets.phantoms import write_phantoms

    ws = Workspace(tmp_path_factory.mktemp("bench-sim")).ensure()
    write_phantoms("autopet", workspace=ws, cases=4)
    cases = list(open_dataset("autopet-phantom", workspace=ws).cases())

    def lesions(case: Case) -> int:
        ref = sitk.GetArrayFromImage(case.read_label()) > 0
        return int(ndimage.label(ref, structure=np.ones((3, 3, 3)))[1])

    return max(cases, key=lesions)


def test_full_dataset_study_per_case(benchmark: Any, busiest_case: Case) -> None:
    reg = load_registry()
    spec = reg.task("autopet-phantom")
    plan = make_plan(spec, reg.profile(spec))
    jobs = [
        StudyJob(
            busiest_case,
            plan,
            DatasetStudy("autopet-phantom", "all", op, order, n_max=N_MAX),
            tuple(range(N_MAX + 1)),
        )
        for op in DATASET_OPERATIONS
        for order in ORDERS
    ]

    def study() -> int:
        return sum(1 for job in jobs for rows in simulate_case(job).rows.values() if rows)

    scored = benchmark.pedantic(study, rounds=1, iterations=1)
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info.update(
        {
            "seconds_per_case": seconds,
            "predictions": scored,
            "seconds_per_prediction": seconds / scored,
        }
    )
    print(
        f"\nfull dataset study, case {busiest_case.case_id}: {seconds:.1f} s per case, "
        f"{scored} degraded predictions, {seconds / scored:.3f} s each"
    )
    assert scored == len(jobs) * (N_MAX + 1)


def test_toy_studies_at_quarter_scale(benchmark: Any, tmp_path: Path) -> None:
    result = benchmark.pedantic(
        run_toy_studies, args=(tmp_path,), kwargs={"scale": 0.25, "plots": False}, rounds=1
    )
    benchmark.extra_info.update({f"seconds_{k}": v for k, v in result.seconds.items()})
    print("\ntoy studies at scale 0.25:", {k: round(v, 1) for k, v in result.seconds.items()})
