"""Official challenge scores against re-implementations of the official evaluation code.

HECKTOR 2022: ``notebooks/evaluate_segmentation2022.ipynb`` of voreille/hecktor computes, per
case, the Dice of each label with SimpleITK's LabelOverlapMeasuresImageFilter and the volumes
with LabelStatisticsImageFilter times the voxel volume (mm³), then TP = Dice * (|P| + |R|) / 2
and DSCagg = 2 * sum TP / sum (|P| + |R|) per label; the final score is the mean of GTVp and GTVn.
The re-implementation below follows those steps with the same SimpleITK filters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from evaluator.evaluate import evaluate_run
from evaluator.workspace import Workspace

from .conftest import write_label


def _official_hecktor(pairs: list[tuple[Path, Path]]) -> dict[str, float]:
    """The official notebook's aggregated Dice (its functions, restated)."""

    def volumes(im: sitk.Image) -> tuple[float, float]:
        spacing = im.GetSpacing()
        voxvol = spacing[0] * spacing[1] * spacing[2]
        stats = sitk.LabelStatisticsImageFilter()
        stats.Execute(im, im)
        counts = [stats.GetCount(k) if stats.HasLabel(k) else 0 for k in (1, 2)]
        return counts[0] * voxvol, counts[1] * voxvol

    tps: dict[int, list[float]] = {1: [], 2: []}
    sums: dict[int, list[float]] = {1: [], 2: []}
    for gt_path, pred_path in pairs:
        gt = sitk.Cast(sitk.ReadImage(str(gt_path)), sitk.sitkUInt8)
        pred = sitk.Cast(sitk.ReadImage(str(pred_path)), sitk.sitkUInt8)
        overlap = sitk.LabelOverlapMeasuresImageFilter()
        overlap.Execute(gt, pred)
        gt_vols, pred_vols = volumes(gt), volumes(pred)
        for k in (1, 2):
            vol_sum = gt_vols[k - 1] + pred_vols[k - 1]
            present = vol_sum > 0
            dice = overlap.GetDiceCoefficient(k) if present else 0.0
            tps[k].append(dice * vol_sum / 2)
            sums[k].append(vol_sum)
    agg = {k: 2 * np.sum(tps[k]) / np.sum(sums[k]) for k in (1, 2)}
    return {
        "GTVp": float(agg[1]),
        "GTVn": float(agg[2]),
        "mean": float(np.mean(list(agg.values()))),
    }


def _case(root: Path, preds: Path, cid: str, ref: np.ndarray, pred: np.ndarray, mm: float) -> None:
    write_label(root / "labelsTr" / f"{cid}.nii.gz", ref, spacing=(mm, mm, mm))
    write_label(preds / f"{cid}.nii.gz", pred, spacing=(mm, mm, mm))


def _evaluate(root: Path, preds: Path, ws: Workspace) -> dict[str, float]:
    result = evaluate_run("hecktor", "all", preds, workspace=ws, data_root=root, workers=1)
    agg = result.summary["aggregates"]
    return {
        "GTVp": agg["1:GTVp:aggregated_dice"],
        "GTVn": agg["2:GTVn:aggregated_dice"],
        "mean": agg["0:mean:aggregated_dice"],
    }


def test_issue_reproduction_two_spacings(tmp_path: Path, workspace: Workspace) -> None:
    """Case A at 1 mm: a 10^3 reference, 500 voxels of it predicted; case B at 2 mm: perfect.

    Volume-weighted (official): 2 (500 + 8000) / (1500 + 16000) = 0.9714; voxel counts would
    give 2 (500 + 1000) / (1500 + 2000) = 0.8571.
    """
    root, preds = tmp_path / "hecktor", tmp_path / "preds"
    ref = np.zeros((14, 14, 14), dtype=np.uint8)
    ref[2:12, 2:12, 2:12] = 1
    half = np.zeros_like(ref)
    half[2:7, 2:12, 2:12] = 1
    _case(root, preds, "CHUM-001", ref, half, 1.0)
    _case(root, preds, "CHUM-002", ref, ref, 2.0)
    ours = _evaluate(root, preds, workspace)
    official = _official_hecktor(
        [
            (root / "labelsTr" / f"{c}.nii.gz", preds / f"{c}.nii.gz")
            for c in ("CHUM-001", "CHUM-002")
        ]
    )
    assert official["GTVp"] == pytest.approx(2 * 8500 / 17500)
    assert ours["GTVp"] == pytest.approx(official["GTVp"], rel=1e-12)
    assert ours["GTVp"] == pytest.approx(0.9714, abs=1e-4)


@pytest.mark.parametrize("seed", range(4))
def test_aggregated_dice_equals_the_official_code(
    seed: int, tmp_path: Path, workspace: Workspace
) -> None:
    """Random GTVp/GTVn cases on six different grids (anisotropic spacings), some labels absent on
    one side or both."""
    rng = np.random.default_rng(seed)
    root, preds = tmp_path / "hecktor", tmp_path / "preds"
    pairs = []
    for i in range(6):
        shape = tuple(int(v) for v in rng.integers(8, 16, size=3))
        spacing = tuple(float(v) for v in rng.choice([0.5, 0.98, 1.0, 2.0, 3.0, 3.27], size=3))
        ref = np.zeros(shape, dtype=np.uint8)
        pred = np.zeros(shape, dtype=np.uint8)
        for label in (1, 2):
            if rng.random() < 0.8:
                lo = rng.integers(0, 4, size=3)
                ref[tuple(slice(a, a + int(rng.integers(2, 5))) for a in lo)] = label
            if rng.random() < 0.8:
                lo = rng.integers(0, 4, size=3)
                pred[tuple(slice(a, a + int(rng.integers(2, 5))) for a in lo)] = label
        cid = f"CHUP-{i:03d}"
        write_label(root / "labelsTr" / f"{cid}.nii.gz", ref, spacing=spacing)
        write_label(preds / f"{cid}.nii.gz", pred, spacing=spacing)
        pairs.append((root / "labelsTr" / f"{cid}.nii.gz", preds / f"{cid}.nii.gz"))
    ours = _evaluate(root, preds, workspace)
    official = _official_hecktor(pairs)
    for key in ("GTVp", "GTVn", "mean"):
        assert ours[key] == pytest.approx(official[key], rel=1e-9), key
