"""AutoPET profile: Dice, FP and FN volume against the official autoPET formulas; negative cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator.evaluate import EvaluationResult, evaluate_run
from evaluator.store import Store
from evaluator.workspace import Workspace

from .conftest import SHAPE, write_label

SPACING = (2.0, 2.0, 3.0)  # x, y, z mm: a voxel is 12 mm^3 = 0.012 ml
VOXEL_ML = 0.012


def _official(gt_path: Path, pred_path: Path) -> dict[str, float]:
    """The autoPET challenge evaluation formulas (nibabel + cc3d, 18-connected components)."""
    import cc3d
    import nibabel as nib

    gt_nii, pred_nii = nib.load(str(gt_path)), nib.load(str(pred_path))
    gt, pred = gt_nii.get_fdata(), pred_nii.get_fdata()
    pixdim = gt_nii.header["pixdim"]
    voxel_vol = pixdim[1] * pixdim[2] * pixdim[3] / 1000

    def false_pix(a: np.ndarray, b: np.ndarray) -> float:
        comps = cc3d.connected_components(a.astype(np.uint8), connectivity=18)
        total = 0
        for idx in range(1, comps.max() + 1):
            comp = comps == idx
            if (comp * b).sum() == 0:
                total += comp.sum()
        return float(total)

    out = {"fp_volume_ml": false_pix(pred, gt) * voxel_vol}
    if gt.sum() == 0:  # autoPET III/IV: negative case, Dice and FN volume undefined
        out["dice"] = math.nan
        out["fn_volume_ml"] = math.nan
    else:
        out["dice"] = 2 * (gt * pred).sum() / (gt.sum() + pred.sum())
        out["fn_volume_ml"] = false_pix(gt, pred) * voxel_vol
    return out


@pytest.fixture
def autopet(tmp_path: Path) -> tuple[Path, Path, dict[str, dict[str, float]]]:
    root = tmp_path / "autopet"
    preds = tmp_path / "preds"
    lesions = root / "FDG-PET-CT-Lesions"
    # positive case: lesion A (27 voxels) half found, lesion B (8 voxels) missed,
    # a 4-voxel false positive blob and one voxel touching A's prediction only by a corner
    ref = np.zeros(SHAPE, dtype=np.uint8)
    ref[2:5, 2:5, 2:5] = 1
    ref[2:4, 10:12, 10:12] = 1
    pred = np.zeros_like(ref)
    pred[2:5, 2:5, 2:4] = 1
    pred[7, 14:16, 2:4] = 1
    pred[5, 5, 4] = 1  # corner neighbour of (4, 4, 3): 26- but not 18-connected
    expected = {
        "PETCT_aaa_0": {
            "dice": 2 * 18 / (23 + 35),
            "fp_volume_ml": 5 * VOXEL_ML,
            "fn_volume_ml": 8 * VOXEL_ML,
        }
    }
    write_label(lesions / "PETCT_aaa" / "s1" / "SEG.nii.gz", ref, spacing=SPACING)
    write_label(preds / "PETCT_aaa_0.nii.gz", pred, spacing=SPACING)
    # negative case with a 6-voxel false positive, negative case with an empty prediction
    empty = np.zeros_like(ref)
    fp = np.zeros_like(ref)
    fp[1:3, 1:4, 1:2] = 1
    for cid, p in (("PETCT_bbb", fp), ("PETCT_ccc", empty)):
        write_label(lesions / cid / "s1" / "SEG.nii.gz", empty, spacing=SPACING)
        write_label(preds / f"{cid}_0.nii.gz", p, spacing=SPACING)
    expected["PETCT_bbb_0"] = {
        "dice": math.nan,
        "fp_volume_ml": 6 * VOXEL_ML,
        "fn_volume_ml": math.nan,
    }
    expected["PETCT_ccc_0"] = {"dice": math.nan, "fp_volume_ml": 0.0, "fn_volume_ml": math.nan}
    return root, preds, expected


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or float(a) == pytest.approx(float(b), rel=1e-6)


def _score(root: Path, preds: Path, workspace: Workspace) -> tuple[EvaluationResult, pd.DataFrame]:
    """Evaluate the AutoPET predictions; return the result and its stored per-case values."""
    result = evaluate_run("autopet", "all", preds, workspace=workspace, data_root=root, workers=1)
    return result, Store.open(result.store_url).results_frame(run_ids=[result.run.id])


def test_volume_metrics_match_known_answers_and_official_formulas(
    autopet: tuple[Path, Path, dict[str, dict[str, float]]], workspace: Workspace
) -> None:
    root, preds, expected = autopet
    _, frame = _score(root, preds, workspace)
    got = {(r.case_id, r.metric): r.value for r in frame.itertuples()}
    for cid, values in expected.items():
        patient = cid.rsplit("_", 1)[0]
        official = _official(
            root / "FDG-PET-CT-Lesions" / patient / "s1" / "SEG.nii.gz", preds / f"{cid}.nii.gz"
        )
        for metric, value in values.items():
            assert _close(official[metric], value), ("oracle", cid, metric)
            assert _close(got[(cid, metric)], value), (cid, metric, got[(cid, metric)])


def test_negative_cases_score_only_the_false_positive_volume(
    autopet: tuple[Path, Path, dict[str, dict[str, float]]], workspace: Workspace
) -> None:
    root, preds, _ = autopet
    result, frame = _score(root, preds, workspace)
    negative = frame[frame["case_id"] != "PETCT_aaa_0"]
    defined = negative.dropna(subset=["value"])
    assert set(defined["metric"]) == {"fp_volume_ml"}
    means = result.summary["means"]["1:lesion"]
    assert means["dice"]["n"] == 1 and means["dice"]["mean"] == pytest.approx(36 / 58)
    assert means["fp_volume_ml"]["n"] == 3
    assert means["fp_volume_ml"]["mean"] == pytest.approx((5 + 6 + 0) * VOXEL_ML / 3)
    assert means["fn_volume_ml"]["n"] == 1
    assert any("autoPET" in line for line in result.summary["conventions"])
    # an empty prediction on a negative case is the correct answer: no error, not penalised
    assert result.summary["error_cases"]["empty"] == []
    assert sum(result.summary["error_counts"].values()) == 0


def test_missing_prediction_on_a_negative_case(
    autopet: tuple[Path, Path, dict[str, dict[str, float]]], workspace: Workspace
) -> None:
    root, preds, _ = autopet
    (preds / "PETCT_bbb_0.nii.gz").unlink()
    result, frame = _score(root, preds, workspace)
    rows = frame[frame["case_id"] == "PETCT_bbb_0"].set_index("metric")["value"]
    assert rows["fp_volume_ml"] == math.inf  # worst value
    assert rows.drop("fp_volume_ml").isna().all()
    assert result.summary["error_counts"]["missing"] == 1
