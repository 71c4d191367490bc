"""clDice, topology precision and sensitivity: an oracle of the paper's equations, hand counts,
edge cases from the registry, the pipeline, and a mutant that swaps the two ratios."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage
from skimage.morphology import skeletonize
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.errors import MetricInputError, UnknownMetricError
from evaluator.metrics.api import compute_metrics
from evaluator.metrics.registry import EDGE_CASES, METRICS, OPT_IN_KINDS, VOXEL_METRICS
from evaluator.metrics.topology import (
    TOPOLOGY_FORMULAS,
    TOPOLOGY_METRICS,
    SkeletonCounts,
    cldice,
    skeleton,
    skeleton_counts,
    topology_metrics,
    topology_precision,
    topology_sensitivity,
    topology_value,
)

FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "cldice": cldice,
    "topology_precision": topology_precision,
    "topology_sensitivity": topology_sensitivity,
}


def oracle(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Shit et al. 2021, eq. 1-3, on the whole image: Tprec, Tsens and their harmonic mean."""
    skel_p, skel_r = skeletonize(pred), skeletonize(ref)
    assert skel_p.any() and skel_r.any(), "oracle cases need non-empty skeletons"
    tprec = float(np.sum(skel_p & ref)) / float(np.sum(skel_p))
    tsens = float(np.sum(skel_r & pred)) / float(np.sum(skel_r))
    harmonic = 0.0 if tprec + tsens == 0 else 2 * tprec * tsens / (tprec + tsens)
    return {"cldice": harmonic, "topology_precision": tprec, "topology_sensitivity": tsens}


def random_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Blobs and tube-like ridges (2D for even seeds, 3D for odd), the prediction perturbed."""
    rng = np.random.default_rng(seed)
    ndim = 2 if seed % 2 == 0 else 3
    shape = (48, 56) if ndim == 2 else (20, 24, 28)
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0)
    ref = np.abs(noise) < 0.25 * noise.std() if seed % 4 < 2 else noise > 0.5 * noise.std()
    pred = np.roll(ref, int(rng.integers(-2, 3)), axis=int(rng.integers(0, ndim)))
    pred = pred ^ (rng.random(shape) < 0.02)
    if seed % 3 == 0:
        pred = ndimage.binary_erosion(pred)
    return pred, ref


# ------------------------------------------------------------------ the independent oracle


@pytest.mark.parametrize("seed", range(8), ids=lambda s: f"seed{s}")
def test_equals_the_oracle_on_random_masks(seed: int) -> None:
    pred, ref = random_pair(seed)
    want = oracle(pred, ref)
    assert topology_metrics(pred, ref) == pytest.approx(want, rel=1e-12)
    for name, func in FUNCTIONS.items():
        assert func(pred, ref) == pytest.approx(want[name], rel=1e-12), name
    assert 0.0 < want["cldice"] < 1.0  # not a trivial case


@pytest.mark.parametrize("seed", range(4), ids=lambda s: f"seed{s}")
def test_skeleton_is_scikit_image_s_for_masks_it_does_not_erase(seed: int) -> None:
    pred, ref = random_pair(seed)
    for mask in (pred, ref):
        assert np.array_equal(skeleton(mask), skeletonize(mask))
        assert np.array_equal(skeleton(mask.astype(np.int16) * 3), skeletonize(mask))


# ------------------------------------------------------------------ hand-counted cases


def gapped_tube_2d() -> tuple[np.ndarray, np.ndarray]:
    """A straight tube one pixel wide (10 px); the prediction misses 2 px and adds a false
    4-px branch. Lines one pixel wide are their own skeletons."""
    ref = np.zeros((9, 12), bool)
    ref[3, 1:11] = True
    pred = ref.copy()
    pred[3, 5:7] = False
    pred[6, 2:6] = True
    return pred, ref


def gapped_tube_3d() -> tuple[np.ndarray, np.ndarray]:
    """A 3 x 3 voxel rod along z (12 slices); the prediction misses 2 slices and adds a false
    3 x 3 rod of 4 slices. The skeleton of each rod is its centre line, end to end."""
    ref = np.zeros((14, 9, 12), bool)
    ref[1:13, 3:6, 3:6] = True
    pred = ref.copy()
    pred[6:8] = False
    pred[2:6, 3:6, 8:11] = True
    return pred, ref


#: name -> (pred, ref), |S(P)|, |S(P) ∩ R|, |S(R)|, |S(R) ∩ P| counted by hand.
HAND = {
    "tube_2d_gap_and_false_branch": (gapped_tube_2d, SkeletonCounts(12, 8, 10, 8)),
    "rod_3d_gap_and_false_rod": (gapped_tube_3d, SkeletonCounts(14, 10, 12, 10)),
}


def check_hand_case(name: str) -> None:
    make, counts = HAND[name]
    pred, ref = make()
    tprec = counts.pred_skeleton_in_ref / counts.pred_skeleton
    tsens = counts.ref_skeleton_in_pred / counts.ref_skeleton
    assert tprec != tsens  # asymmetric: a swap of the two ratios cannot pass
    assert topology_precision(pred, ref) == pytest.approx(tprec)
    assert topology_sensitivity(pred, ref) == pytest.approx(tsens)
    assert cldice(pred, ref) == pytest.approx(2 * tprec * tsens / (tprec + tsens))
    # the roles swap with the arguments; clDice is symmetric
    assert topology_precision(ref, pred) == pytest.approx(tsens)
    assert topology_sensitivity(ref, pred) == pytest.approx(tprec)
    assert cldice(ref, pred) == pytest.approx(cldice(pred, ref))


@pytest.mark.parametrize("name", list(HAND))
def test_hand_counted(name: str) -> None:
    make, counts = HAND[name]
    pred, ref = make()
    assert skeleton_counts(pred, ref) == counts
    check_hand_case(name)


def test_hand_counted_values() -> None:
    pred, ref = gapped_tube_2d()  # Tprec 8/12, Tsens 8/10
    assert topology_metrics(pred, ref) == pytest.approx(
        {"cldice": 8 / 11, "topology_precision": 2 / 3, "topology_sensitivity": 0.8}
    )
    pred, ref = gapped_tube_3d()  # Tprec 10/14, Tsens 10/12
    assert cldice(pred, ref) == pytest.approx(2 * (5 / 7) * (5 / 6) / (5 / 7 + 5 / 6))


def test_rod_skeleton_is_its_centre_line() -> None:
    """What the 3D hand count relies on."""
    _, ref = gapped_tube_3d()
    assert np.argwhere(skeleton(ref)).tolist() == [[z, 4, 4] for z in range(1, 13)]


def test_perfect_and_disjoint() -> None:
    _, ref = gapped_tube_3d()
    assert topology_metrics(ref, ref) == dict.fromkeys(TOPOLOGY_METRICS, 1.0)
    far = np.roll(ref, 6, axis=2)  # beside it, not touching
    assert not (far & ref).any()
    assert topology_metrics(far, ref) == dict.fromkeys(TOPOLOGY_METRICS, 0.0)


# ------------------------------------------------------------------ mutant


def test_a_swap_of_precision_and_sensitivity_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hand cases fail when the two formulas trade places (a mutant of the module)."""
    precision = TOPOLOGY_FORMULAS["topology_precision"]
    sensitivity = TOPOLOGY_FORMULAS["topology_sensitivity"]
    monkeypatch.setitem(TOPOLOGY_FORMULAS, "topology_precision", sensitivity)
    monkeypatch.setitem(TOPOLOGY_FORMULAS, "topology_sensitivity", precision)
    for name in HAND:
        with pytest.raises(AssertionError):
            check_hand_case(name)


# ------------------------------------------------------------------ edge cases


@pytest.mark.parametrize("name", TOPOLOGY_METRICS)
@pytest.mark.parametrize("ndim", [2, 3])
def test_edge_cases_follow_the_registry(name: str, ndim: int) -> None:
    empty = np.zeros((7,) * ndim, np.uint8)
    some = empty.copy()
    some[(slice(1, 5),) * ndim] = 1
    row = EDGE_CASES[name]
    assert (row.both_empty, row.ref_empty, row.pred_empty) == (1.0, 0.0, 0.0)
    for pred, ref, table in (
        (empty, empty, row.both_empty),
        (some, empty, row.ref_empty),
        (empty, some, row.pred_empty),
    ):
        direct = FUNCTIONS[name](pred, ref)
        piped = compute_metrics(pred, ref, spacing=(1.0,) * ndim, metrics=[name]).values[1]
        assert direct == piped[name] == table


def test_thinning_never_empties_a_2d_mask_but_can_a_3d_one() -> None:
    """Zhang-Suen keeps something of every non-empty 2D mask; Lee's 3D thinning erases a
    2 x 2 x 2 cube, which then is its own skeleton, so edge cases stay tied to the masks."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        mask = rng.random((8, 8)) < rng.uniform(0.05, 0.9)
        if mask.any():
            assert skeletonize(mask).any()
    cube = np.zeros((4, 4, 8), bool)
    cube[1:3, 1:3, 1:3] = True
    assert not skeletonize(cube).any()
    assert np.array_equal(skeleton(cube), cube)
    assert topology_metrics(cube, cube) == dict.fromkeys(TOPOLOGY_METRICS, 1.0)
    rod = np.zeros((4, 4, 8), bool)
    rod[1:3, 1:3, 1:7] = True  # the cube lies inside a rod whose skeleton does exist
    assert topology_precision(cube, rod) == 1.0
    assert 0.0 < topology_sensitivity(cube, rod) < 1.0
    for pred, ref in ((cube, np.zeros_like(cube)), (np.zeros_like(cube), cube)):
        assert topology_metrics(pred, ref) == dict.fromkeys(TOPOLOGY_METRICS, 0.0)


def test_both_ratios_zero_give_cldice_zero() -> None:
    assert topology_value("cldice", SkeletonCounts(3, 0, 4, 0)) == 0.0


def test_bad_input() -> None:
    with pytest.raises(MetricInputError, match="does not match"):
        cldice(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(MetricInputError, match="2D or 3D"):
        skeleton(np.zeros(5))
    with pytest.raises(UnknownMetricError, match="not topology metrics"):
        topology_metrics(np.zeros((3, 3)), np.zeros((3, 3)), metrics=["dice"])


# ------------------------------------------------------------------ registry and pipeline


def test_registry_rows_and_opt_in() -> None:
    family = [n for n, s in METRICS.items() if s.kind == "topology"]
    assert (
        family == list(TOPOLOGY_METRICS) == ["cldice", "topology_precision", "topology_sensitivity"]
    )
    assert "topology" in OPT_IN_KINDS and not set(TOPOLOGY_METRICS) & set(VOXEL_METRICS)
    for name in TOPOLOGY_METRICS:
        spec = METRICS[name]
        assert (spec.unit, spec.higher_is_better, spec.needs_spacing) == ("", True, False)


@pytest.mark.parametrize("seed", range(4), ids=lambda s: f"seed{s}")
def test_pipeline_per_label_equals_direct_calls(seed: int) -> None:
    pred_a, ref_a = random_pair(seed)
    pred_b, ref_b = random_pair(seed + 2)  # same parity: same shape
    ref = np.where(ref_b, 2, np.where(ref_a, 1, 0)).astype(np.uint8)
    pred = np.where(pred_a, 1, np.where(pred_b, 2, 0)).astype(np.uint8)
    names = ["dice", *TOPOLOGY_METRICS, "hd95"]
    spacing = (2.0,) + (0.7,) * (ref.ndim - 1)
    res = compute_metrics(pred, ref, spacing=spacing, metrics=names)
    assert sorted(res.values) == [1, 2]
    for label, values in res.values.items():
        assert list(values) == names
        p, r = pred == label, ref == label
        for name in TOPOLOGY_METRICS:
            assert values[name] == FUNCTIONS[name](p, r), (label, name)
            assert values[name] == pytest.approx(oracle(p, r)[name], rel=1e-12)


def test_pipeline_is_crop_invariant() -> None:
    pred, ref = gapped_tube_3d()
    small = compute_metrics(pred, ref, spacing=(1.0, 1.0, 1.0), metrics=TOPOLOGY_METRICS)
    pad = [(3, 9), (0, 5), (7, 0)]
    large = compute_metrics(
        np.pad(pred, pad), np.pad(ref, pad), spacing=(1.0, 1.0, 1.0), metrics=TOPOLOGY_METRICS
    )
    assert small.values == large.values
    # an object touching the image border: the thinning treats the outside as background
    assert cldice(pred[3:], ref[3:]) == pytest.approx(oracle(pred[3:], ref[3:])["cldice"])


def test_cli_scores_them_by_name(tmp_path: Path) -> None:
    pred, ref = gapped_tube_3d()
    paths = []
    for name, array in (("pred", pred), ("ref", ref)):
        path = tmp_path / f"{name}.nii.gz"
        sitk.WriteImage(sitk.GetImageFromArray(array.astype(np.uint8)), str(path))
        paths.append(str(path))
    result = CliRunner().invoke(app, ["metrics", *paths, "--metrics", "cldice,topology_sensitivity", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    values = json.loads(result.stdout)["values"]["1"]
    assert values == {"cldice": cldice(pred, ref), "topology_sensitivity": 10 / 12}
    default = CliRunner().invoke(app, ["metrics", *paths, "--json"])
    assert default.exit_code == 0, default.output
    assert not set(json.loads(default.stdout)["values"]["1"]) & set(TOPOLOGY_METRICS)
