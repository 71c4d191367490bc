"""Phantom data + degraded predictions: `evaluate` equals calling the metrics directly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from evaluator.datasets.base import open_dataset
from evaluator.datasets.registry import load_registry
from evaluator.evaluate import evaluate_run, make_plan
from evaluator.metrics.api import compute_metrics
from evaluator.simulate.degraded import write_degraded_predictions
from evaluator.store import Store
from evaluator.workspace import Workspace


@pytest.fixture
def phantom_ws(workspace: Workspace) -> Workspace:
    from evaluator.datasets.phantoms import write_phantoms

    write_phantoms("hecktor", workspace=workspace, cases=3)
    return workspace


def test_degraded_predictions_are_deterministic_and_graded(
    phantom_ws: Workspace, tmp_path: Path
) -> None:
    a = write_degraded_predictions(
        "hecktor-phantom", "all", tmp_path / "a", workspace=phantom_ws, seed=3, quality=0.5
    )
    b = write_degraded_predictions(
        "hecktor-phantom", "all", tmp_path / "b", workspace=phantom_ws, seed=3, quality=0.5
    )
    perfect = write_degraded_predictions(
        "hecktor-phantom", "all", tmp_path / "p", workspace=phantom_ws, seed=3, quality=1.0
    )
    dataset = open_dataset("hecktor-phantom", workspace=phantom_ws)
    for cid in dataset.case_ids():
        ref_img = dataset.case(cid).read_label()
        ref = sitk.GetArrayFromImage(ref_img)
        arr_a = sitk.GetArrayFromImage(sitk.ReadImage(str(a / f"{cid}.nii.gz")))
        arr_b = sitk.GetArrayFromImage(sitk.ReadImage(str(b / f"{cid}.nii.gz")))
        img_p = sitk.ReadImage(str(perfect / f"{cid}.nii.gz"))
        assert np.array_equal(arr_a, arr_b)
        assert np.array_equal(sitk.GetArrayFromImage(img_p), ref)
        assert img_p.GetSpacing() == ref_img.GetSpacing()
    good = evaluate_run("hecktor-phantom", "all", perfect, workspace=phantom_ws, workers=1)
    bad = evaluate_run("hecktor-phantom", "all", a, workspace=phantom_ws, workers=1)
    assert good.summary["aggregates"]["0:mean:aggregated_dice"] == 1.0
    assert bad.summary["aggregates"]["0:mean:aggregated_dice"] < 1.0


def test_evaluate_equals_direct_metrics_on_phantoms(phantom_ws: Workspace, tmp_path: Path) -> None:
    pred = write_degraded_predictions(
        "hecktor-phantom", "all", tmp_path / "pred", workspace=phantom_ws, seed=7, quality=0.4
    )
    result = evaluate_run("hecktor-phantom", "all", pred, workspace=phantom_ws, workers=1)
    reg = load_registry()
    profile = reg.profile("hecktor")
    plan = make_plan(reg.task("hecktor-phantom"), profile)
    frame = Store.open(result.store_url).results_frame(run_ids=[result.run.id])
    got = {(r.case_id, r.label, r.metric): r.value for r in frame.itertuples()}
    dataset = open_dataset("hecktor-phantom", workspace=phantom_ws)
    for cid in dataset.case_ids():
        ref_img = dataset.case(cid).read_label()
        direct = compute_metrics(
            sitk.GetArrayFromImage(sitk.ReadImage(str(pred / f"{cid}.nii.gz"))),
            sitk.GetArrayFromImage(ref_img),
            spacing=tuple(reversed(ref_img.GetSpacing())),
            metrics=plan.metrics,
            labels=[1, 2],
            connectivity=26,
            nsd_tolerance_mm=profile.params["nsd_tolerance_mm"],
            cc_worst_distance_mm=profile.params["cc_worst_distance_mm"],
        )
        for label, values in direct.values.items():
            for metric, value in values.items():
                stored = got[(cid, label, metric)]
                assert (math.isnan(value) and math.isnan(stored)) or stored == pytest.approx(value)
