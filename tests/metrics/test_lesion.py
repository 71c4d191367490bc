"""Lesion-level metrics: named hand-computed cases, edge cases from the registry, and independent
oracles (scipy.ndimage labelling with per-component loops, the official autoPET formulas and the
BraTS 2023 lesion-wise Dice re-implemented here from their published scripts)."""

from __future__ import annotations

import math

import cc3d
import numpy as np
import pytest
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from evaluator.errors import MetricInputError, UnknownMetricError
from evaluator.metrics import lesion
from evaluator.metrics.lesion import (
    LESION_METRICS,
    fn_volume_ml,
    fp_volume_ml,
    label_components,
    lesion_dice,
    lesion_metrics,
    lesion_table,
)
from evaluator.metrics.registry import EDGE_CASES

# ----------------------------------------------------------------------------------------------
# Independent oracles
# ----------------------------------------------------------------------------------------------


def _structure(ndim: int, connectivity: int) -> np.ndarray:
    rank = {4: 1, 6: 1, 8: 2, 18: 2, 26: 3}[connectivity]
    return ndimage.generate_binary_structure(ndim, rank)


def _scipy_label(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    labels, n = ndimage.label(mask, structure=_structure(mask.ndim, connectivity))
    return labels, int(n)


def _components(mask: np.ndarray, connectivity: int) -> list[np.ndarray]:
    labels, n = _scipy_label(mask, connectivity)
    return [labels == i for i in range(1, n + 1)]


def oracle_lesion(pred, ref, connectivity, match):
    """Per-component loops over full-size masks; Hungarian matching for IoU > 0.5."""
    gts = _components(ref, connectivity)
    prs = _components(pred, connectivity)
    inter = np.array([[np.sum(g & p) for p in prs] for g in gts], dtype=float).reshape(
        len(gts), len(prs)
    )
    union = np.array([[np.sum(g | p) for p in prs] for g in gts], dtype=float).reshape(
        len(gts), len(prs)
    )
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    # Hungarian on IoU, keeping only pairs with IoU > 0.5
    rows, cols = linear_sum_assignment(-iou) if iou.size else ([], [])
    matched = [(r, c) for r, c in zip(rows, cols, strict=True) if iou[r, c] > 0.5]
    tp_iou = len(matched)
    if match == "iou_0.5":
        tp, fp, fn = tp_iou, len(prs) - tp_iou, len(gts) - tp_iou
    else:
        tp = int(np.sum(inter.sum(axis=1) > 0)) if gts else 0
        fp = int(np.sum(inter.sum(axis=0) == 0)) if gts else len(prs)
        fn = len(gts) - tp
    out = {"lesion_tp": tp, "lesion_fp": fp, "lesion_fn": fn}
    if gts and prs:
        out["lesion_precision"] = tp / (tp + fp) if tp + fp else 0.0
        out["lesion_recall"] = tp / (tp + fn)
        out["lesion_f1"] = 2 * tp / (2 * tp + fp + fn)
        fp_i, fn_i = len(prs) - tp_iou, len(gts) - tp_iou
        sq = float(np.mean([iou[r, c] for r, c in matched])) if matched else 0.0
        rq = tp_iou / (tp_iou + fp_i / 2 + fn_i / 2)
        out.update(sq=sq, rq=rq, pq=sq * rq)
    return out


def official_false_pos_pix(gt_array, pred_array):
    """autoPET ``false_pos_pix`` (lab-midas/autoPET val_script.py; same in autoPET II-IV)."""
    pred_conn_comp = cc3d.connected_components(pred_array, connectivity=18)
    false_pos = 0
    for idx in range(1, pred_conn_comp.max() + 1):
        comp_mask = np.isin(pred_conn_comp, idx)
        if (comp_mask * gt_array).sum() == 0:
            false_pos = false_pos + comp_mask.sum()
    return false_pos


def official_false_neg_pix(gt_array, pred_array):
    """autoPET ``false_neg_pix``."""
    gt_conn_comp = cc3d.connected_components(gt_array, connectivity=18)
    false_neg = 0
    for idx in range(1, gt_conn_comp.max() + 1):
        comp_mask = np.isin(gt_conn_comp, idx)
        if (comp_mask * pred_array).sum() == 0:
            false_neg = false_neg + comp_mask.sum()
    return false_neg


def official_voxel_vol(spacing_zyx):
    """autoPET ``nii2numpy``: pixdim[1] * pixdim[2] * pixdim[3] / 1000, pixdim in (x, y, z)."""
    sz, sy, sx = spacing_zyx
    return sx * sy * sz / 1000


def official_brats_lesion_dice(pred, gt, dil_factor, thresh_mm3, spacing_zyx=(1.0, 1.0, 1.0)):
    """BraTS 2023 ``get_lesion_wise_score`` + aggregation (rachitsaluja/BraTS-2023-Metrics),
    Dice part, on arrays. ``dil_factor=0`` skips the dilations (scipy would dilate to
    convergence with ``iterations=0``)."""
    sx, sy, sz = spacing_zyx[::-1]
    structure = ndimage.generate_binary_structure(gt.ndim, 2)
    conn = 26 if gt.ndim == 3 else 8

    def dilate(a):
        if dil_factor == 0:
            return a.astype(bool)
        return ndimage.binary_dilation(a, structure=structure, iterations=dil_factor)

    gt_cc = cc3d.connected_components(gt, connectivity=conn)
    pred_cc = cc3d.connected_components(pred, connectivity=conn)
    gt_dil_cc = cc3d.connected_components(dilate(gt), connectivity=conn)
    combined = np.zeros_like(gt_dil_cc)
    for comp in range(1, int(gt_dil_cc.max()) + 1):
        tmp = (gt_dil_cc == comp).astype(gt_dil_cc.dtype) * gt_cc
        np.place(tmp, tmp > 0, comp)
        combined += tmp
    tps, pairs = [], []
    for comp in range(1, int(combined.max()) + 1):
        g = combined == comp
        gd = dilate(g)
        inter_cc = np.unique(pred_cc * gd)
        inter_cc = inter_cc[inter_cc != 0]
        tps.extend(inter_cc.tolist())
        p = np.isin(pred_cc, inter_cc)
        dice = 2.0 * np.logical_and(p, g).sum() / (p.sum() + g.sum())
        pairs.append((np.sum(g) * sx * sy * sz, dice))
    fp = np.unique(pred_cc[np.isin(pred_cc, [*tps, 0], invert=True)])
    kept = [d for v, d in pairs if v > thresh_mm3]
    denom = len(kept) + len(fp)
    return 1.0 if denom == 0 else float(np.sum(kept)) / denom


# ----------------------------------------------------------------------------------------------
# Generated cases (seeded)
# ----------------------------------------------------------------------------------------------


def _ellipsoids(rng, shape, n, max_r, min_r=0.6):
    grid = np.indices(shape, dtype=float)
    mask = np.zeros(shape, bool)
    for _ in range(n):
        centre = [rng.uniform(-1, s) for s in shape]  # may sit on or beyond the border
        radii = rng.uniform(min_r, max_r, size=len(shape))
        dist = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True))
        mask |= dist <= 1.0
    return mask


def _case(seed: int, ndim: int):
    rng = np.random.default_rng(seed)
    shape = (14, 24, 26) if ndim == 3 else (40, 44)
    ref = _ellipsoids(rng, shape, int(rng.integers(1, 8)), 5.0, 1.2)
    # shift, erode or dilate, add lesions and sprinkle single voxels
    pred = np.roll(ref, int(rng.integers(-1, 2)), axis=-1)
    morph = rng.random()
    if morph < 0.15:
        pred = ndimage.binary_erosion(pred)
    elif morph < 0.3:
        pred = ndimage.binary_dilation(pred)
    pred |= _ellipsoids(rng, shape, int(rng.integers(0, 4)), 3.0)
    noise = rng.choice([0.0, 0.0005, 0.003])
    pred[rng.random(shape) < noise] = True
    ref[rng.random(shape) < noise / 2] = True
    if rng.random() < 0.08:
        pred[:] = False
    if rng.random() < 0.08:
        ref[:] = False
    spacing = tuple(float(s) for s in rng.choice([0.7, 1.0, 1.5, 3.0, 2.5], size=ndim))
    return pred, ref, spacing


SEEDS_3D = list(range(30))
SEEDS_2D = list(range(100, 115))


def _cases():
    for seed in SEEDS_3D:
        yield pytest.param(seed, 3, id=f"3d-seed{seed}")
    for seed in SEEDS_2D:
        yield pytest.param(seed, 2, id=f"2d-seed{seed}")


# ----------------------------------------------------------------------------------------------
# Oracle comparisons
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "ndim"), list(_cases()))
@pytest.mark.parametrize("match", ["any_overlap", "iou_0.5"])
def test_counts_and_ratios_match_loop_oracle(seed, ndim, match):
    pred, ref, spacing = _case(seed, ndim)
    conn = 26 if ndim == 3 else 8
    expected = oracle_lesion(pred, ref, conn, match)
    got = lesion_metrics(pred, ref, spacing=spacing, match=match)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name


@pytest.mark.parametrize("connectivity", [6, 18])
def test_other_connectivities_match_loop_oracle(connectivity):
    for seed in range(8):
        pred, ref, spacing = _case(seed, 3)
        expected = oracle_lesion(pred, ref, connectivity, "iou_0.5")
        got = lesion_metrics(pred, ref, spacing=spacing, connectivity=connectivity, match="iou_0.5")
        for name, value in expected.items():
            assert got[name] == pytest.approx(value, abs=1e-12), (seed, name)


@pytest.mark.parametrize("seed", SEEDS_3D)
def test_autopet_volumes_equal_official_formula(seed):
    pred, ref, spacing = _case(seed, 3)
    got = lesion_metrics(pred, ref, spacing=spacing, metrics=["fp_volume_ml", "fn_volume_ml"])
    voxel_vol = official_voxel_vol(spacing)
    fp_official = official_false_pos_pix(ref.astype(float), pred.astype(float)) * voxel_vol
    fn_official = official_false_neg_pix(ref.astype(float), pred.astype(float)) * voxel_vol
    # same integer count times the same float64 voxel volume: bit-identical
    assert got["fp_volume_ml"] == fp_official
    assert got["fn_volume_ml"] == fn_official


def test_autopet_volumes_from_nifti_header_within_float32_rounding(tmp_path):
    """End to end as the official script reads it (nibabel, float32 pixdim)."""
    nib = pytest.importorskip("nibabel")
    pred, ref, _ = _case(3, 3)
    spacing_xyz = (0.97, 1.36, 3.27)
    affine = np.diag([*spacing_xyz, 1.0])
    # nibabel arrays are (x, y, z); ours are (z, y, x)
    nib.save(nib.Nifti1Image(ref.T.astype(np.uint8), affine), tmp_path / "gt.nii.gz")
    nib.save(nib.Nifti1Image(pred.T.astype(np.uint8), affine), tmp_path / "pred.nii.gz")
    gt_nii = nib.load(tmp_path / "gt.nii.gz")
    pixdim = gt_nii.header["pixdim"]
    voxel_vol = pixdim[1] * pixdim[2] * pixdim[3] / 1000
    gt_arr = gt_nii.get_fdata()
    pred_arr = nib.load(tmp_path / "pred.nii.gz").get_fdata()
    fp_official = official_false_pos_pix(gt_arr, pred_arr) * voxel_vol
    fn_official = official_false_neg_pix(gt_arr, pred_arr) * voxel_vol
    spacing_zyx = tuple(float(s) for s in gt_nii.header.get_zooms()[::-1])
    assert fp_volume_ml(pred, ref, spacing=spacing_zyx) == pytest.approx(fp_official, rel=1e-6)
    assert fn_volume_ml(pred, ref, spacing=spacing_zyx) == pytest.approx(fn_official, rel=1e-6)


@pytest.mark.parametrize("seed", SEEDS_3D[:20])
@pytest.mark.parametrize(
    ("dilation", "min_volume_ml"), [(0, 0.0), (1, 0.0), (1, 0.002), (3, 0.05), (2, 0.01)]
)
def test_lesion_dice_equals_official_brats(seed, dilation, min_volume_ml):
    pred, ref, spacing = _case(seed, 3)
    if not pred.any() or not ref.any():
        pytest.skip("empty masks follow the registry, checked in test_edge_cases")
    expected = official_brats_lesion_dice(
        pred.astype(np.uint8), ref.astype(np.uint8), dilation, min_volume_ml * 1000, spacing
    )
    got = lesion_dice(pred, ref, spacing=spacing, dilation=dilation, min_volume_ml=min_volume_ml)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("seed", SEEDS_2D[:8])
def test_lesion_dice_2d_equals_official_brats_analogue(seed):
    pred, ref, spacing = _case(seed, 2)
    if not pred.any() or not ref.any():
        pytest.skip("empty masks follow the registry")
    for dilation in (0, 2):
        expected = official_brats_lesion_dice(
            pred.astype(np.uint8), ref.astype(np.uint8), dilation, 0.0, (*spacing, 1.0)
        )
        assert lesion_dice(pred, ref, spacing=spacing, dilation=dilation) == pytest.approx(
            expected, rel=1e-12
        )


@pytest.mark.parametrize("seed", SEEDS_3D[:10])
@pytest.mark.parametrize("match", ["any_overlap", "iou_0.5"])
def test_lesion_table_matches_loop_oracle(seed, match):
    pred, ref, spacing = _case(seed, 3)
    table = lesion_table(pred, ref, spacing=spacing, match=match)
    labels, n = label_components(ref)
    pred_labels, _ = label_components(pred)
    assert list(table["lesion"]) == list(range(1, n + 1))
    voxel_ml = math.prod(spacing) / 1000
    for row in table.itertuples():
        g = labels == row.lesion
        touching = np.unique(pred_labels[g & pred])
        union_pred = np.isin(pred_labels, touching[touching > 0])
        assert row.voxels == g.sum()
        assert row.volume_ml == pytest.approx(g.sum() * voxel_ml, rel=1e-12)
        assert row.n_pred == touching.size
        inter = np.sum(g & union_pred)
        assert row.dice == pytest.approx(2 * inter / (g.sum() + union_pred.sum()), abs=1e-12)
        assert row.iou == pytest.approx(inter / np.sum(g | union_pred), abs=1e-12)
        ious = [np.sum(g & (pred_labels == k)) / np.sum(g | (pred_labels == k)) for k in touching]
        assert row.best_iou == pytest.approx(max(ious, default=0.0), abs=1e-12)
        expected_hit = touching.size > 0 if match == "any_overlap" else row.best_iou > 0.5
        assert row.detected == expected_hit
    got = lesion_metrics(pred, ref, spacing=spacing, match=match, metrics=["lesion_tp"])
    assert got["lesion_tp"] == table["detected"].sum()


# ----------------------------------------------------------------------------------------------
# Named hand-computed cases
# ----------------------------------------------------------------------------------------------


def _vol(shape=(5, 6, 12)):
    return np.zeros(shape, bool)


def test_split_lesion_three_pieces():
    """One 1x1x9 lesion, predicted as three 1x1x2 pieces inside it."""
    ref, pred = _vol(), _vol()
    ref[2, 2, 1:10] = True
    pred[2, 2, 1:3] = pred[2, 2, 4:6] = pred[2, 2, 7:9] = True
    any_ = lesion_metrics(pred, ref, spacing=(1, 1, 1), match="any_overlap")
    assert (any_["lesion_tp"], any_["lesion_fp"], any_["lesion_fn"]) == (1, 0, 0)
    assert any_["lesion_f1"] == 1.0
    iou = lesion_metrics(pred, ref, spacing=(1, 1, 1), match="iou_0.5")
    # each piece has IoU 2/9: no match, three FPs, one FN
    assert (iou["lesion_tp"], iou["lesion_fp"], iou["lesion_fn"]) == (0, 3, 1)
    assert iou["pq"] == iou["sq"] == iou["rq"] == 0.0
    # BraTS: one lesion, Dice 2*6/(9+6) = 0.8, no FP
    assert any_["lesion_dice"] == pytest.approx(0.8)


def test_one_blob_covers_two_lesions():
    ref, pred = _vol(), _vol()
    ref[2, 2, 1:3] = ref[2, 2, 5:7] = True
    pred[2, 2, 0:8] = True
    got = lesion_metrics(pred, ref, spacing=(1, 1, 1), match="any_overlap")
    assert (got["lesion_tp"], got["lesion_fp"], got["lesion_fn"]) == (2, 0, 0)
    got = lesion_metrics(pred, ref, spacing=(1, 1, 1), match="iou_0.5")
    assert (got["lesion_tp"], got["lesion_fp"], got["lesion_fn"]) == (0, 1, 2)
    # BraTS: both lesions detected by the blob, each Dice 2*2/(2+8) = 0.4
    assert got["lesion_dice"] == pytest.approx(0.4)


def test_iou_exactly_one_half_is_not_a_match():
    ref, pred = _vol(), _vol()
    ref[1, 1, 1:3] = True
    pred[1, 1, 1] = True  # IoU = 1/2
    assert lesion_metrics(pred, ref, spacing=(1, 1, 1), match="iou_0.5")["lesion_tp"] == 0
    pred[1, 1, 3] = True  # IoU = 2/3 (pred 1:4 is one component)
    pred[1, 1, 2] = True
    assert lesion_metrics(pred, ref, spacing=(1, 1, 1), match="iou_0.5")["lesion_tp"] == 1


def test_panoptic_quality_hand_computed():
    """GT A (5 voxels) predicted by 4 voxels inside it (IoU 0.8); GT B missed; one FP."""
    ref, pred = _vol(), _vol()
    ref[1, 1, 0:5] = True
    ref[3, 4, 8:10] = True
    pred[1, 1, 0:4] = True
    pred[4, 0, 10:12] = True
    got = lesion_metrics(pred, ref, spacing=(1, 1, 1), metrics=["pq", "sq", "rq"])
    assert got["sq"] == pytest.approx(0.8)
    assert got["rq"] == pytest.approx(1 / (1 + 0.5 + 0.5))
    assert got["pq"] == pytest.approx(0.4)


def test_corner_neighbours_connectivity():
    """Two voxels touching at a corner: one 26-connected component, two 18-connected ones."""
    ref, pred = _vol(), _vol()
    ref[1, 1, 1] = True
    pred[1, 1, 1] = pred[2, 2, 2] = True
    assert label_components(pred)[1] == 1
    assert label_components(pred, connectivity=18)[1] == 2
    got = lesion_metrics(pred, ref, spacing=(2.0, 1.0, 0.5), metrics=["lesion_fp", "fp_volume_ml"])
    # lesion_fp uses 26-connectivity (no FP); autoPET uses 18 (the corner voxel is an FP)
    assert got == {"lesion_fp": 0.0, "fp_volume_ml": 0.001}


def test_autopet_volumes_hand_computed():
    ref, pred = _vol(), _vol()
    ref[0, 0, 0:3] = True  # missed: 3 voxels
    ref[3, 3, 3:5] = True  # hit
    pred[3, 3, 4:7] = True  # touches the second lesion: not FP
    pred[4, 5, 10:12] = True  # FP: 2 voxels
    spacing = (3.0, 0.5, 2.0)  # 3 mm^3 per voxel
    assert fn_volume_ml(pred, ref, spacing=spacing) == pytest.approx(0.009)
    assert fp_volume_ml(pred, ref, spacing=spacing) == pytest.approx(0.006)


def test_brats_dilation_merges_and_detects_nearby():
    """Two lesions two voxels apart merge under dilation 1; a prediction one voxel away from a
    lesion counts as its detection instead of an FP."""
    ref, pred = _vol(), _vol()
    ref[2, 2, 1:3] = True
    ref[2, 2, 4:6] = True  # gap of one voxel at x = 3
    pred[2, 2, 7] = True  # one voxel gap from x = 5
    assert lesion_dice(pred, ref, spacing=(1, 1, 1)) == 0.0  # no overlap: 2 FN + 1 FP
    # dilation 1: one merged lesion (4 voxels) and the prediction inside its dilation
    assert lesion_dice(pred, ref, spacing=(1, 1, 1), dilation=1) == 0.0  # Dice 0, no FP
    got_tbl = official_brats_lesion_dice(pred.astype(np.uint8), ref.astype(np.uint8), 1, 0.0)
    assert got_tbl == 0.0
    pred[2, 2, 5] = True
    pred[2, 2, 6] = True
    # merged lesion of 4 voxels, prediction 5..7 (3 voxels), overlap 1: 2/7
    assert lesion_dice(pred, ref, spacing=(1, 1, 1), dilation=1) == pytest.approx(2 / 7)
    # minimum volume: leaving the lesion out leaves nothing to score -> 1 (BraTS: 0/0 -> 1)
    assert lesion_dice(pred, ref, spacing=(1, 1, 1), dilation=1, min_volume_ml=0.004) == 1.0


def test_2d_default_is_8_connectivity():
    ref = np.zeros((5, 5), bool)
    ref[1, 1] = ref[2, 2] = True
    pred = ref.copy()
    assert lesion_metrics(pred, ref, spacing=(1, 1), metrics=["lesion_tp"])["lesion_tp"] == 1
    four = lesion_metrics(pred, ref, spacing=(1, 1), metrics=["lesion_tp"], connectivity=4)
    assert four["lesion_tp"] == 2


def test_label_components_matches_scipy():
    for seed in range(5):
        _, ref, _ = _case(seed, 3)
        for conn in (6, 18, 26):
            assert label_components(ref, connectivity=conn)[1] == _scipy_label(ref, conn)[1]


# ----------------------------------------------------------------------------------------------
# Edge cases: every lesion metric applies its registry row
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LESION_METRICS)
def test_edge_cases(name):
    empty = _vol()
    some = _vol()
    some[1, 1, 1:4] = True  # 3 voxels, one lesion
    spacing = (2.0, 1.0, 1.0)
    row = EDGE_CASES[name]
    formula = {  # what the formula gives where the table says None
        ("both", "lesion_tp"): 0,
        ("both", "lesion_fp"): 0,
        ("both", "lesion_fn"): 0,
        ("ref", "lesion_tp"): 0,
        ("ref", "lesion_fp"): 1,
        ("ref", "lesion_fn"): 0,
        ("ref", "fp_volume_ml"): 0.006,
        ("pred", "lesion_tp"): 0,
        ("pred", "lesion_fp"): 0,
        ("pred", "lesion_fn"): 1,
        ("pred", "fn_volume_ml"): 0.006,
    }
    for key, pred, ref, table in (
        ("both", empty, empty, row.both_empty),
        ("ref", some, empty, row.ref_empty),
        ("pred", empty, some, row.pred_empty),
    ):
        expected = formula[(key, name)] if table is None else table
        direct = getattr(lesion, name)
        kwargs = (
            {"spacing": spacing} if name in ("lesion_dice", "fp_volume_ml", "fn_volume_ml") else {}
        )
        for match in ("any_overlap", "iou_0.5"):
            got = lesion_metrics(pred, ref, spacing=spacing, metrics=[name], match=match)[name]
            assert got == pytest.approx(expected), (key, match)
        assert direct(pred, ref, **kwargs) == pytest.approx(expected), key


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


def test_errors_name_the_problem():
    a = _vol()
    with pytest.raises(MetricInputError, match="shape"):
        lesion_metrics(a, np.zeros((5, 6, 11), bool), spacing=(1, 1, 1))
    with pytest.raises(MetricInputError, match="connectivity 8"):
        lesion_metrics(a, a, spacing=(1, 1, 1), connectivity=8)
    with pytest.raises(MetricInputError, match="connectivity 26"):
        label_components(np.zeros((4, 4)), connectivity=26)
    with pytest.raises(MetricInputError, match="match rule"):
        lesion_metrics(a, a, spacing=(1, 1, 1), match="iou")  # type: ignore[arg-type]
    with pytest.raises(UnknownMetricError, match="lesion_foo"):
        lesion_metrics(a, a, spacing=(1, 1, 1), metrics=["lesion_foo"])
    with pytest.raises(MetricInputError, match="NaN"):
        lesion_metrics(np.full((2, 2), np.nan), np.zeros((2, 2)), spacing=(1, 1))
    with pytest.raises(MetricInputError, match="spacing"):
        lesion_metrics(a, a, spacing=(1, 1))
    with pytest.raises(MetricInputError, match="dilation"):
        lesion_dice(a, a, spacing=(1, 1, 1), dilation=-1)


def test_integer_label_inputs_are_masks():
    ref = _vol().astype(np.uint8)
    ref[1, 1, 1:3] = 2
    assert lesion_metrics(ref, ref, spacing=(1, 1, 1), metrics=["pq"]) == {"pq": 1.0}


def test_label_components_correct_where_cc3d_bool_input_is_not():
    """cc3d 4.1 labels the background voxel of this boolean row; ours must not."""
    row = np.array([[1, 0, 0, 1, 0]], dtype=bool)
    labels, n = label_components(row)
    assert n == 2
    assert labels.tolist() == [[1, 0, 0, 2, 0]]
    rng = np.random.default_rng(7)
    for _ in range(300):
        shape = tuple(int(s) for s in rng.integers(1, 8, size=int(rng.integers(2, 4))))
        m = rng.random(shape) < 0.4
        conn = 8 if m.ndim == 2 else 26
        labels, n = label_components(m, connectivity=conn)
        expected, n_expected = _scipy_label(m, conn)
        assert n == n_expected
        assert not labels[~m].any()
        assert len(set(zip(labels[m].tolist(), expected[m].tolist(), strict=True))) == n


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_label_components_numbered_in_raster_order_as_scipy(ndim: int, seed: int) -> None:
    """Not only the count: every label equals scipy's (raster order of first voxels), 2D too."""
    rng = np.random.default_rng(seed)
    for conn in {2: (4, 8), 3: (6, 18, 26)}[ndim]:
        mask = rng.random(tuple(int(n) for n in rng.integers(3, 20, size=ndim))) < 0.3
        labels, n = label_components(mask, connectivity=conn)
        expected, n_expected = _scipy_label(mask, conn)
        assert n == n_expected
        np.testing.assert_array_equal(labels, expected)
