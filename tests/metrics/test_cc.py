"""CC-Metrics: hand-computed cases, Algorithm 1 on full regions, and the ccmetrics package."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from evaluator.errors import MetricInputError, UnknownMetricError
from evaluator.metrics import cc
from evaluator.metrics.cc import CC_METRICS, cc_metrics, voronoi_regions
from evaluator.metrics.overlap import dice, iou
from evaluator.metrics.registry import EDGE_CASES
from evaluator.metrics.surface import (
    boundary_iou,
    image_diagonal_mm,
    surface_distances,
)

# MONAI (inside ccmetrics) warns about empty predictions and deprecated arguments.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

ONE_D = (1.0, 1.0)


def _row(*spans: tuple[int, int], width: int = 16) -> np.ndarray:
    """A (1, width) mask with the given half-open spans set."""
    m = np.zeros((1, width), bool)
    for lo, hi in spans:
        m[0, lo:hi] = True
    return m


# ---------------------------------------------------------------- named hand-computed cases


def test_two_lesions_one_missed() -> None:
    ref = _row((1, 3), (10, 12))
    pred = _row((1, 3))
    r = cc_metrics(pred, ref, spacing=ONE_D)
    assert r.per_component["cc_dice"] == [1.0, 0.0]
    assert r.per_component["cc_iou"] == [1.0, 0.0]
    assert r.per_component["cc_hd"] == [0.0, 50.0]
    assert r.per_component["cc_hd95"] == [0.0, 50.0]
    assert r.per_component["cc_assd"] == [0.0, 50.0]
    assert r.per_component["cc_nsd"] == [1.0, 0.0]
    assert r.per_component["cc_boundary_iou"] == [1.0, 0.0]
    assert r.means["cc_dice"] == 0.5 and r.means["cc_hd95"] == 25.0
    assert r.sizes == [2, 2] and r.detected == [True, False] and r.n_components == 2


def test_false_positive_goes_to_the_nearest_lesion_region() -> None:
    # lesions [1,3) and [10,12); a stray voxel at 8 is nearer to the second (2 vs 6 voxels).
    ref = _row((1, 3), (10, 12))
    pred = _row((1, 3), (10, 12), (8, 9))
    r = cc_metrics(pred, ref, spacing=(1.0, 0.5), metrics=("cc_dice", "cc_hd", "cc_iou"))
    assert r.per_component["cc_dice"] == [1.0, 2 * 2 / (2 * 2 + 1)]
    assert r.per_component["cc_iou"] == [1.0, 2 / 3]
    assert r.per_component["cc_hd"] == [0.0, 2 * 0.5]  # 2 voxels of 0.5 mm


def test_worst_distance_is_configurable_and_replaces_only_undefined_values() -> None:
    ref = _row((1, 3), (10, 12), width=80)
    pred = _row((1, 3), (70, 71), width=80)  # a stray voxel in lesion 2's region
    r = cc_metrics(pred, ref, spacing=ONE_D, metrics=("cc_hd",), worst_distance_mm=30.0)
    assert r.per_component["cc_hd"] == [0.0, 60.0]  # lesion voxel 10 to 70: not capped at 30
    r = cc_metrics(_row((1, 3), width=80), ref, spacing=ONE_D, worst_distance_mm=30.0)
    assert r.per_component["cc_hd"] == [0.0, 30.0]


@pytest.mark.parametrize("name", CC_METRICS)
def test_empty_reference_gives_one_entry(name: str) -> None:
    empty = np.zeros((4, 5, 6), bool)
    pred = empty.copy()
    pred[1, 2, 3] = True
    both = cc_metrics(empty, empty, spacing=(1.0, 1.0, 1.0), metrics=(name,))
    assert both.per_component[name] == [EDGE_CASES[name].both_empty]
    only_pred = cc_metrics(pred, empty, spacing=(1.0, 1.0, 1.0), metrics=(name,))
    expected = EDGE_CASES[name].ref_empty
    assert only_pred.per_component[name] == [expected]
    assert only_pred.means[name] == expected and only_pred.n_components == 0


@pytest.mark.parametrize("name", CC_METRICS)
def test_empty_prediction_equals_the_registry_row(name: str) -> None:
    ref = _row((1, 3), (10, 12))
    r = cc_metrics(np.zeros_like(ref), ref, spacing=ONE_D, metrics=(name,))
    assert r.means[name] == EDGE_CASES[name].pred_empty
    assert len(r.per_component[name]) == 2


def test_thin_functions_equal_cc_metrics() -> None:
    rng = np.random.default_rng(5)
    ref = ndimage.binary_opening(rng.random((12, 14, 16)) < 0.2)
    pred = ndimage.binary_dilation(ref) & (rng.random(ref.shape) < 0.9)
    sp = (2.0, 1.0, 0.5)
    full = cc_metrics(pred, ref, spacing=sp, nsd_tolerance_mm=1.5, worst_distance_mm=40.0)
    funcs: dict[str, Callable[..., float]] = {
        "cc_dice": cc.cc_dice,
        "cc_iou": cc.cc_iou,
        "cc_boundary_iou": cc.cc_boundary_iou,
    }
    for name, func in funcs.items():
        assert func(pred, ref, spacing=sp) == full.means[name]
    assert cc.cc_nsd(pred, ref, spacing=sp, nsd_tolerance_mm=1.5) == full.means["cc_nsd"]
    for name, func in {"cc_hd": cc.cc_hd, "cc_hd95": cc.cc_hd95, "cc_assd": cc.cc_assd}.items():
        assert func(pred, ref, spacing=sp, worst_distance_mm=40.0) == full.means[name]
    for name, values in full.per_component.items():
        assert full.means[name] == pytest.approx(np.mean(values), abs=0)


@pytest.mark.parametrize("seed", range(3))
def test_single_component_equals_the_standard_metric(seed: int) -> None:
    """With one reference component the region is the whole image: CC-X == X."""
    rng = np.random.default_rng(seed)
    ref = np.zeros((14, 15, 16), bool)
    ref[4:9, 3:10, 5:12] = True
    pred = ndimage.binary_dilation(np.roll(ref, 1, axis=2)) & (rng.random(ref.shape) < 0.95)
    pred[0, 0, 0] = True  # a far false positive, still in the only region
    sp = (3.0, 0.8, 0.8)
    r = cc_metrics(pred, ref, spacing=sp, nsd_tolerance_mm=1.0)
    sd = surface_distances(pred, ref, spacing=sp)
    assert r.means["cc_dice"] == dice(pred, ref)
    assert r.means["cc_iou"] == iou(pred, ref)
    assert r.means["cc_hd"] == sd.hd() and r.means["cc_hd95"] == sd.hd95()
    assert r.means["cc_assd"] == pytest.approx(sd.assd(), rel=1e-12)
    assert r.means["cc_nsd"] == sd.nsd(1.0)
    assert r.means["cc_boundary_iou"] == boundary_iou(pred, ref, spacing=sp)


def test_two_dimensional_images_are_supported() -> None:
    ref = np.zeros((20, 20), bool)
    ref[2:6, 2:6] = True
    ref[12:15, 14:18] = True
    pred = np.roll(ref, 1, axis=0)
    r = cc_metrics(pred, ref, spacing=(0.5, 0.5))
    assert r.n_components == 2
    assert r.per_component["cc_hd"] == [0.5, 0.5]
    assert r.per_component["cc_dice"] == [2 * 12 / 32, 2 * 8 / 24]


# ---------------------------------------------------------------- Algorithm 1, literally


def algorithm1(
    pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, ...], tol: float, worst: float
) -> dict[str, list[float]]:
    """Full-image regions from one EDT, then each metric on full-size masks per region."""
    lab, n = ndimage.label(ref, structure=np.ones((3,) * ref.ndim))
    idx = ndimage.distance_transform_edt(
        ~ref, sampling=spacing, return_distances=False, return_indices=True
    )
    regions = lab[tuple(idx)]
    diag = image_diagonal_mm(ref.shape, spacing)
    out: dict[str, list[float]] = {m: [] for m in CC_METRICS}
    for k in range(1, n + 1):
        p, r = pred & (regions == k), lab == k
        sd = surface_distances(p, r, spacing=spacing)
        missed = not p.any()
        out["cc_dice"].append(dice(p, r))
        out["cc_iou"].append(iou(p, r))
        out["cc_nsd"].append(sd.nsd(tol))
        out["cc_boundary_iou"].append(boundary_iou(p, r, spacing=spacing, diagonal_mm=diag))
        out["cc_hd"].append(worst if missed else sd.hd())
        out["cc_hd95"].append(worst if missed else sd.hd95())
        out["cc_assd"].append(worst if missed else sd.assd())
    return out


def _blobs(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    """`n` random ellipsoids (some touching, some at the border) plus single voxels."""
    grid = np.indices(shape, dtype=np.float64)
    mask = np.zeros(shape, bool)
    for _ in range(n):
        centre = rng.uniform(-1, np.array(shape) + 1)
        radii = rng.uniform(0.6, 3.5, size=len(shape))
        dist = sum(((g - c) / rad) ** 2 for g, c, rad in zip(grid, centre, radii, strict=True))
        mask |= dist <= 1.0
    mask |= rng.random(shape) < 0.002
    return mask


def _degrade(rng: np.random.Generator, ref: np.ndarray) -> np.ndarray:
    op = rng.integers(0, 3)
    pred = (
        ndimage.binary_dilation(ref)
        if op == 0
        else ndimage.binary_erosion(ref)
        if op == 1
        else np.roll(ref, int(rng.integers(1, 3)), axis=int(rng.integers(0, ref.ndim)))
    )
    pred = pred & ~(rng.random(ref.shape) < 0.1)
    return pred | (rng.random(ref.shape) < 0.004)


@pytest.mark.parametrize("seed", range(10))
def test_mm_mode_equals_algorithm1_on_anisotropic_images(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ndim = 2 if seed % 3 == 0 else 3
    shape = (30, 34) if ndim == 2 else (14, 16, 18)
    ref = _blobs(rng, shape, 6)
    pred = _degrade(rng, ref)
    sp = tuple(float(s) for s in rng.choice([0.5, 0.8, 1.0, 2.0, 3.27], size=ndim))
    got = cc_metrics(pred, ref, spacing=sp, nsd_tolerance_mm=1.2, worst_distance_mm=45.0)
    expected = algorithm1(pred, ref, sp, 1.2, 45.0)
    for name in CC_METRICS:
        np.testing.assert_allclose(got.per_component[name], expected[name], rtol=1e-12)


# ---------------------------------------------------------------- the ccmetrics package


@pytest.fixture
def ccmetrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """The ccmetrics package, imported here only (importing it turns off torch autograd)."""
    torch = pytest.importorskip("torch")
    grad = torch.is_grad_enabled()
    ccm = pytest.importorskip("CCMetrics")
    base = pytest.importorskip("CCMetrics.CC_base")
    # ccmetrics calls gc.collect() once per component; results do not depend on it.
    monkeypatch.setattr(base, "gc", SimpleNamespace(collect=lambda: 0))
    yield ccm
    torch.set_grad_enabled(grad)


def _ccmetrics_values(
    ccm: Any, pred: np.ndarray, ref: np.ndarray, tol: float, worst: float
) -> dict[str, np.ndarray]:
    metrics = {
        "cc_dice": ccm.CCDiceMetric(),
        "cc_hd": ccm.CCHausdorffDistanceMetric(metric_worst_score=worst),
        "cc_hd95": ccm.CCHausdorffDistance95Metric(metric_worst_score=worst),
        "cc_nsd": ccm.CCSurfaceDiceMetric(class_thresholds=[tol]),
        "cc_assd": ccm.CCSurfaceDistanceMetric(symmetric=True, metric_worst_score=worst),
    }

    def onehot(m: np.ndarray) -> np.ndarray:
        return np.stack([~m, m])[None].astype(np.float32)

    out = {}
    for name, metric in metrics.items():
        metric(onehot(pred), onehot(ref))
        out[name] = metric.cc_aggregate(mode="overall").reshape(-1).double().numpy()
    return out


def _assert_equal_to_ccmetrics(got: cc.CCResult, theirs: dict[str, np.ndarray]) -> None:
    assert got.per_component["cc_dice"] == theirs["cc_dice"].tolist()  # float64 both: exact
    # ccmetrics (MONAI) stores distances in float32: HD is the same float32 number.
    np.testing.assert_array_equal(
        np.float32(got.per_component["cc_hd"]), theirs["cc_hd"].astype(np.float32)
    )
    for name in ("cc_hd95", "cc_assd", "cc_nsd"):  # float32 quantile / mean / ratio
        np.testing.assert_allclose(got.per_component[name], theirs[name], rtol=1e-6, atol=1e-6)
    for name, values in theirs.items():
        assert got.means[name] == pytest.approx(float(np.mean(values)), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_equals_ccmetrics_at_unit_spacing(ccmetrics: Any, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    ref = _blobs(rng, (12, 14, 16), 4)
    pred = _degrade(rng, ref)
    got = cc_metrics(pred, ref, spacing=(1.0, 1.0, 1.0), nsd_tolerance_mm=1.0)
    _assert_equal_to_ccmetrics(got, _ccmetrics_values(ccmetrics, pred, ref, 1.0, 50.0))


@pytest.mark.parametrize("seed", range(3))
def test_voxel_mode_equals_ccmetrics_on_anisotropic_images(ccmetrics: Any, seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    ref = _blobs(rng, (12, 14, 16), 4)
    pred = _degrade(rng, ref)
    got = cc_metrics(
        pred, ref, spacing=(3.0, 0.7, 0.7), mode="voxel", nsd_tolerance_mm=2.0, worst_distance_mm=30
    )
    _assert_equal_to_ccmetrics(got, _ccmetrics_values(ccmetrics, pred, ref, 2.0, 30.0))


def test_equidistant_predictions_equal_ccmetrics(ccmetrics: Any) -> None:
    """A prediction bridge whose middle voxels are equidistant from two lesions."""
    ref = np.zeros((9, 11, 13), bool)
    ref[2:5, 3:6, 1:4] = True
    ref[2:5, 3:6, 9:12] = True  # mirror image along the last axis: plane x=6 is equidistant
    ref[7, 9, 6] = True  # a single voxel equidistant in y/z from others
    pred = np.zeros_like(ref)
    pred[3, 2:9, 2:11] = True
    pred[5:9, 7, 6] = True
    got = cc_metrics(pred, ref, spacing=(1.0, 1.0, 1.0))
    _assert_equal_to_ccmetrics(got, _ccmetrics_values(ccmetrics, pred, ref, 1.0, 50.0))
    regions = voronoi_regions(ref, spacing=(1.0, 1.0, 1.0))
    assert regions[3, 4, 6] == 1  # the tie goes to the component with the lower x


def test_empty_reference_equals_ccmetrics(ccmetrics: Any) -> None:
    empty = np.zeros((5, 6, 7), bool)
    pred = empty.copy()
    pred[2, 2, 2] = True
    for p in (empty, pred):
        got = cc_metrics(p, empty, spacing=(1.0, 1.0, 1.0))
        _assert_equal_to_ccmetrics(got, _ccmetrics_values(ccmetrics, p, empty, 1.0, 50.0))


def test_regions_equal_ccmetrics_space_separation(ccmetrics: Any) -> None:
    from CCMetrics.space_separation import compute_voronoi_regions_fast

    rng = np.random.default_rng(7)
    for _ in range(3):
        ref = _blobs(rng, (10, 12, 14), 5)
        expected = compute_voronoi_regions_fast(ref)
        got = voronoi_regions(ref, spacing=(2.0, 1.0, 1.0), mode="voxel")
        np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------- bad input


def test_bad_input_raises_named_errors() -> None:
    ref = _row((1, 3))
    with pytest.raises(MetricInputError, match="does not match reference"):
        cc_metrics(np.zeros((1, 5), bool), ref, spacing=ONE_D)
    with pytest.raises(UnknownMetricError, match="not CC-Metrics: dice"):
        cc_metrics(ref, ref, spacing=ONE_D, metrics=("dice",))
    with pytest.raises(MetricInputError, match="mode 'mm3'"):
        cc_metrics(ref, ref, spacing=ONE_D, mode="mm3")  # type: ignore[arg-type]
    with pytest.raises(MetricInputError, match="connectivity 26 is not valid for a 2D"):
        cc_metrics(ref, ref, spacing=ONE_D, connectivity=26)
    with pytest.raises(MetricInputError, match="NaN"):
        cc_metrics(np.full(ref.shape, np.nan), ref, spacing=ONE_D)
    with pytest.raises(MetricInputError, match="tolerance"):
        cc_metrics(ref, ref, spacing=ONE_D, nsd_tolerance_mm=-1.0)
    with pytest.raises(MetricInputError, match="worst distance"):
        cc_metrics(ref, ref, spacing=ONE_D, worst_distance_mm=float("inf"))
    with pytest.raises(MetricInputError, match="spacing"):
        cc_metrics(ref, ref, spacing=(1.0,))


def test_diagonal_option_lets_a_crop_give_the_full_image_values() -> None:
    rng = np.random.default_rng(11)
    ref = np.zeros((20, 40, 40), bool)
    ref[5:9, 10:16, 10:18] = ref[12:15, 25:30, 22:27] = True
    pred = np.roll(ref, 1, axis=2) & (rng.random(ref.shape) < 0.9)
    spacing = (2.0, 0.8, 0.8)
    full = cc_metrics(pred, ref, spacing=spacing, metrics=("cc_boundary_iou", "cc_dice"))
    box = (slice(4, 16), slice(9, 31), slice(9, 29))
    diagonal = image_diagonal_mm(ref.shape, spacing)
    crop = cc_metrics(
        pred[box],
        ref[box],
        spacing=spacing,
        metrics=("cc_boundary_iou", "cc_dice"),
        diagonal_mm=diagonal,
    )
    assert crop.per_component == full.per_component
    plain = cc_metrics(pred[box], ref[box], spacing=spacing, metrics=("cc_boundary_iou",))
    assert plain.per_component != full.per_component  # a smaller diagonal, a thinner band
    with pytest.raises(MetricInputError, match="diagonal"):
        cc_metrics(pred, ref, spacing=spacing, diagonal_mm=float("nan"))
