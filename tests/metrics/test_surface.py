"""Surface metrics against MONAI, a brute-force cdist oracle and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import cdist

from evaluator.errors import MetricInputError
from evaluator.metrics.registry import EDGE_CASES
from evaluator.metrics.surface import (
    assd,
    boundary_iou,
    bounding_box,
    hd,
    hd95,
    image_diagonal_mm,
    nsd,
    surface_distances,
    surface_mask,
)

# ---------------------------------------------------------------------------------------------
# seeded generators of mask pairs
# ---------------------------------------------------------------------------------------------


def _ellipsoids(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    grid = np.indices(shape, dtype=float)
    out = np.zeros(shape, bool)
    for _ in range(n):
        centre = [rng.uniform(-1, s) for s in shape]  # may sit on / beyond the border
        radii = [rng.uniform(0.6, max(1.0, s / 3)) for s in shape]
        d = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True))
        out |= d <= 1.0
    return out


def _blobs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=rng.uniform(1.0, 2.5))
    return noise > np.quantile(noise, rng.uniform(0.6, 0.95))


def _single_voxel(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, bool)
    out[tuple(int(rng.integers(0, s)) for s in shape)] = True
    return out


def make_pair(
    seed: int, max_side: int | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """A random non-empty (pred, ref, spacing) case: 2D or 3D, often anisotropic."""
    rng = np.random.default_rng(seed)
    ndim = 2 if seed % 3 == 0 else 3
    top = max_side or (30 if ndim == 3 else 60)
    shape = tuple(int(rng.integers(6, top)) for _ in range(ndim))
    kind = seed % 5

    def one() -> np.ndarray:
        if kind == 0:
            return _blobs(rng, shape)
        if kind == 1:
            return _single_voxel(rng, shape)
        return _ellipsoids(rng, shape, int(rng.integers(1, 4)))

    ref = one()
    while not ref.any():
        ref = one()
    choice = rng.integers(0, 3)
    if choice == 0:  # shifted / perturbed copy of the reference
        pred = np.roll(ref, tuple(int(v) for v in rng.integers(-2, 3, ndim)), tuple(range(ndim)))
        pred ^= rng.random(shape) < 0.02
    elif choice == 1:
        pred = ndimage.binary_dilation(ref, iterations=int(rng.integers(1, 3)))
    else:
        pred = one()
    if not pred.any():
        pred = _single_voxel(rng, shape)
    spacing = tuple(float(v) for v in rng.choice([0.5, 0.8, 1.0, 1.5, 2.5, 3.0], ndim))
    if seed % 4 == 0:
        spacing = (1.0,) * ndim
    return pred, ref, spacing


SEEDS = list(range(60))

# ---------------------------------------------------------------------------------------------
# MONAI oracle
# ---------------------------------------------------------------------------------------------


def _monai_values(
    pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, ...], tol: float
) -> dict[str, float]:
    import torch
    from monai.metrics import (
        compute_average_surface_distance,
        compute_hausdorff_distance,
        compute_surface_dice,
    )

    p = torch.from_numpy(pred[None, None].astype(np.float32))
    r = torch.from_numpy(ref[None, None].astype(np.float32))
    sp = list(spacing)
    return {
        "hd": float(compute_hausdorff_distance(p, r, include_background=True, spacing=sp)),
        "hd95": float(
            compute_hausdorff_distance(p, r, include_background=True, percentile=95, spacing=sp)
        ),
        "assd": float(
            compute_average_surface_distance(
                p, r, include_background=True, symmetric=True, spacing=sp
            )
        ),
        "nsd": float(compute_surface_dice(p, r, [tol], include_background=True, spacing=sp)),
    }


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
def test_matches_monai(seed: int) -> None:
    pred, ref, spacing = make_pair(seed)
    tol = [0.5, 1.0, 2.0, 3.0][seed % 4]
    expected = _monai_values(pred, ref, spacing, tol)
    dists = surface_distances(pred, ref, spacing=spacing)
    got = {"hd": dists.hd(), "hd95": dists.hd95(), "assd": dists.assd(), "nsd": dists.nsd(tol)}
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-6, abs=1e-6), name
    # the thin functions give the same numbers as the shared computation
    assert hd(pred, ref, spacing=spacing) == got["hd"]
    assert hd95(pred, ref, spacing=spacing) == got["hd95"]
    assert assd(pred, ref, spacing=spacing) == got["assd"]
    assert nsd(pred, ref, spacing=spacing, nsd_tolerance_mm=tol) == got["nsd"]


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("seed", SEEDS[:20], ids=lambda s: f"seed{s}")
def test_surface_mask_matches_monai_edges(seed: int) -> None:
    from monai.metrics.utils import get_mask_edges

    pred, ref, _ = make_pair(seed)
    edges_pred, edges_ref = get_mask_edges(pred, ref, crop=False)
    np.testing.assert_array_equal(surface_mask(pred), edges_pred)
    np.testing.assert_array_equal(surface_mask(ref), edges_ref)


# ---------------------------------------------------------------------------------------------
# brute-force oracle (independent of MONAI and of the KD-tree)
# ---------------------------------------------------------------------------------------------


def _brute_surface(mask: np.ndarray) -> np.ndarray:
    """Surface by definition: a voxel with a 6-(4-)neighbour outside the mask or the image."""
    padded = np.pad(mask, 1)
    inner = np.ones_like(mask)
    for axis in range(mask.ndim):
        for step in (-1, 1):
            inner &= np.roll(padded, step, axis=axis)[tuple(slice(1, -1) for _ in mask.shape)]
    return mask & ~inner


@pytest.mark.parametrize("seed", range(100, 130), ids=lambda s: f"seed{s}")
def test_matches_brute_force_cdist(seed: int) -> None:
    pred, ref, spacing = make_pair(seed)
    sp, sr = _brute_surface(pred), _brute_surface(ref)
    np.testing.assert_array_equal(surface_mask(pred), sp)
    pts_p = np.argwhere(sp) * np.asarray(spacing)
    pts_r = np.argwhere(sr) * np.asarray(spacing)
    d = cdist(pts_p, pts_r)
    d_pr, d_rp = d.min(axis=1), d.min(axis=0)
    both = np.concatenate([d_pr, d_rp])
    assert hd(pred, ref, spacing=spacing) == pytest.approx(max(d_pr.max(), d_rp.max()), abs=1e-9)
    assert hd95(pred, ref, spacing=spacing) == pytest.approx(
        max(np.percentile(d_pr, 95), np.percentile(d_rp, 95)), abs=1e-9
    )
    assert assd(pred, ref, spacing=spacing) == pytest.approx(both.mean(), abs=1e-9)
    assert nsd(pred, ref, spacing=spacing, nsd_tolerance_mm=1.5) == pytest.approx(
        np.mean(both <= 1.5), abs=1e-12
    )


# ---------------------------------------------------------------------------------------------
# named hand-computed and analytic cases
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_shifted_by_one_voxel(axis: int) -> None:
    """A box shifted by one voxel along an axis: HD = HD95 = spacing along that axis."""
    spacing = (2.0, 0.7, 1.3)
    ref = np.zeros((12, 12, 12), bool)
    ref[3:8, 4:9, 2:9] = True
    pred = np.roll(ref, 1, axis=axis)
    assert hd(pred, ref, spacing=spacing) == pytest.approx(spacing[axis])
    assert hd95(pred, ref, spacing=spacing) == pytest.approx(spacing[axis])
    # NSD with a tolerance just below the shift: only the side faces (distance 0) count
    assert nsd(pred, ref, spacing=spacing, nsd_tolerance_mm=spacing[axis] * 0.99) < 1.0
    assert nsd(pred, ref, spacing=spacing, nsd_tolerance_mm=spacing[axis] * 1.001) == 1.0


def test_two_single_voxels_analytic() -> None:
    """Two voxels at a known offset: every distance equals the Euclidean offset in mm."""
    spacing = (3.0, 0.5, 0.8)
    a = np.zeros((10, 10, 10), bool)
    b = np.zeros_like(a)
    a[1, 2, 3] = True
    b[4, 6, 8] = True
    expected = math.sqrt((3 * 3.0) ** 2 + (4 * 0.5) ** 2 + (5 * 0.8) ** 2)
    for f in (hd, hd95, assd):
        assert f(a, b, spacing=spacing) == pytest.approx(expected)
    assert nsd(a, b, spacing=spacing, nsd_tolerance_mm=expected) == 1.0
    assert nsd(a, b, spacing=spacing, nsd_tolerance_mm=expected - 1e-6) == 0.0


def test_concentric_squares_asymmetric_hd() -> None:
    """Inner 3x3 square inside a 7x7 square (1 mm pixels): pred->ref max 2, ref->pred max 2*sqrt2."""
    ref = np.zeros((9, 9), bool)
    ref[1:8, 1:8] = True
    pred = np.zeros_like(ref)
    pred[3:6, 3:6] = True
    dists = surface_distances(pred, ref, spacing=(1.0, 1.0))
    assert dists.pred_to_ref.max() == pytest.approx(2.0)
    assert dists.ref_to_pred.max() == pytest.approx(2 * math.sqrt(2))
    assert dists.hd() == pytest.approx(2 * math.sqrt(2))
    assert dists.n_pred == 8 and dists.n_ref == 24


def test_object_filling_the_image_has_its_border_as_surface() -> None:
    full = np.ones((4, 5, 6), bool)
    assert surface_mask(full).sum() == full.size - 2 * 3 * 4


# ---------------------------------------------------------------------------------------------
# edge cases and bad input
# ---------------------------------------------------------------------------------------------

SURFACE_FUNCS = {
    "hd": lambda p, r, sp: hd(p, r, spacing=sp),
    "hd95": lambda p, r, sp: hd95(p, r, spacing=sp),
    "assd": lambda p, r, sp: assd(p, r, spacing=sp),
    "nsd": lambda p, r, sp: nsd(p, r, spacing=sp, nsd_tolerance_mm=1.0),
    "boundary_iou": lambda p, r, sp: boundary_iou(p, r, spacing=sp),
}


def _same(a: float, b: float | None) -> bool:
    assert b is not None
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("name", sorted(SURFACE_FUNCS))
@pytest.mark.parametrize("ndim", [2, 3])
def test_edge_cases_follow_registry(name: str, ndim: int) -> None:
    empty = np.zeros((5,) * ndim, bool)
    full = empty.copy()
    full[(2,) * ndim] = True
    row = EDGE_CASES[name]
    sp = (1.0,) * ndim
    assert _same(SURFACE_FUNCS[name](empty, empty, sp), row.both_empty)
    assert _same(SURFACE_FUNCS[name](full, empty, sp), row.ref_empty)
    assert _same(SURFACE_FUNCS[name](empty, full, sp), row.pred_empty)


@pytest.mark.parametrize(
    ("pred", "ref", "spacing", "match"),
    [
        (np.zeros((3, 3)), np.zeros((3, 4)), (1, 1), "shape"),
        (np.zeros((3, 3)), np.zeros((3, 3)), (1, 1, 1), "spacing"),
        (np.zeros((3, 3)), np.zeros((3, 3)), (1, 0), "positive"),
        (np.full((3, 3), np.nan), np.zeros((3, 3)), (1, 1), "NaN"),
        (np.full((3, 3), 0.5), np.zeros((3, 3)), (1, 1), "non-integer"),
        (np.zeros(3), np.zeros(3), (1,), "2D or 3D"),
    ],
)
def test_bad_input_raises(pred: np.ndarray, ref: np.ndarray, spacing: tuple, match: str) -> None:
    with pytest.raises(MetricInputError, match=match):
        hd95(pred, ref, spacing=spacing)


def test_bounding_box_empty_and_margin() -> None:
    assert bounding_box(np.zeros((3, 3), bool)) is None
    m = np.zeros((5, 5, 5), bool)
    m[0, 2, 4] = True
    assert bounding_box(m, margin=1) == (slice(0, 2), slice(1, 4), slice(3, 5))


# ---------------------------------------------------------------------------------------------
# Boundary IoU against a brute-force oracle on the full (small) image
# ---------------------------------------------------------------------------------------------


def _brute_boundary_iou(
    pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, ...], width: float
) -> float:
    """Band by definition: voxel-centre distance to the nearest non-mask voxel of the padded
    image (cdist), plus the 6-connected surface; IoU of the two bands."""

    def band(mask: np.ndarray) -> np.ndarray:
        padded = np.pad(mask, 1)
        inside = np.argwhere(padded) * np.asarray(spacing)
        outside = np.argwhere(~padded) * np.asarray(spacing)
        near = cdist(inside, outside).min(axis=1) <= width
        out = np.zeros_like(padded)
        out[tuple(np.argwhere(padded)[near].T)] = True
        return out[tuple(slice(1, -1) for _ in mask.shape)] | _brute_surface(mask)

    bp, br = band(pred), band(ref)
    return float((bp & br).sum() / (bp | br).sum())


@pytest.mark.parametrize("path", ["kdtree", "edt"])
@pytest.mark.parametrize("seed", range(200, 225), ids=lambda s: f"seed{s}")
def test_boundary_iou_matches_brute_force(
    seed: int, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both band algorithms (KD-tree for small masks, per-component EDT for large) are exact."""
    limit = 10**9 if path == "kdtree" else 0
    monkeypatch.setattr("evaluator.metrics.surface.BAND_KDTREE_MAX_VOXELS", limit)
    pred, ref, spacing = make_pair(seed, max_side=16 if seed % 3 else 40)
    # the paper's width on this grid, and wider bands (odd factors: no ties at the width)
    width = [
        0.02 * image_diagonal_mm(pred.shape, spacing),
        1.37 * max(spacing),
        2.93 * max(spacing),
    ]
    for w in width:
        got = boundary_iou(pred, ref, spacing=spacing, diagonal_mm=w / 0.02)
        assert got == pytest.approx(_brute_boundary_iou(pred, ref, spacing, w), abs=1e-12), w


def test_boundary_iou_wide_band_equals_iou_and_diagonal_override() -> None:
    """When d exceeds every object's half-width, the band is the whole mask: Boundary IoU = IoU."""
    a = np.zeros((20, 20), bool)
    a[4:9, 4:9] = True
    b = np.zeros_like(a)
    b[6:11, 5:10] = True
    iou_ab = (a & b).sum() / (a | b).sum()
    assert boundary_iou(a, b, spacing=(1.0, 1.0), diagonal_mm=500.0) == pytest.approx(iou_ab)
    assert image_diagonal_mm(a.shape, (1.0, 1.0)) == pytest.approx(20 * math.sqrt(2))


# ---------------------------------------------------------------------------------------------
# the sparse grid: distance bound of the boundary band, several masks in one grid
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("labelled", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_ray_bound_never_below_the_distance_to_the_complement(seed: int, labelled: bool) -> None:
    from evaluator.metrics._grid import SparseGrid
    from evaluator.metrics.surface import _ray_bound

    rng = np.random.default_rng(seed)
    mask = ndimage.binary_dilation(rng.random((9, 14, 12)) < 0.04, iterations=2)
    spacing = (2.5, 0.8, 1.1)
    grid = SparseGrid.from_mask(mask)
    if labelled:
        grid.components(26)
    exact = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    assert np.all(_ray_bound(grid, spacing) >= exact[mask] - 1e-9)


def test_blocks_of_one_grid_are_separate_masks() -> None:
    """Surfaces, distances and bands per block equal those of each mask on its own."""
    from evaluator.metrics._grid import SparseGrid
    from evaluator.metrics.surface import band_indices, directed_distances

    rng = np.random.default_rng(3)
    spacing = (1.5, 1.0, 0.7)
    masks = [ndimage.binary_dilation(rng.random((8, 9, 10)) < 0.03) for _ in range(3)]
    others = [ndimage.binary_dilation(rng.random((8, 9, 10)) < 0.03) for _ in range(3)]
    for m in masks + others:
        m[4, 4, 4] = True  # never empty
    blocks = np.concatenate([np.full(int(m.sum()), k) for k, m in enumerate(masks)])
    grid_a = SparseGrid.from_coords(
        np.concatenate([np.argwhere(m) for m in masks]), (8, 9, 10), blocks
    )
    blocks_b = np.concatenate([np.full(int(m.sum()), k) for k, m in enumerate(others)])
    grid_b = SparseGrid.from_coords(
        np.concatenate([np.argwhere(m) for m in others]), (8, 9, 10), blocks_b
    )
    surf_a, surf_b = grid_a.surface(), grid_b.surface()
    to_b = directed_distances(surf_a, surf_b, grid_a, spacing)
    band = band_indices(grid_a, spacing, 2.0)
    for k, (m, o) in enumerate(zip(masks, others, strict=True)):
        in_k = surf_a // grid_a.block_size == k
        expected = surface_distances(m, o, spacing=spacing).pred_to_ref
        np.testing.assert_allclose(to_b[in_k], expected, rtol=1e-12)
        single = SparseGrid.from_mask(m)
        np.testing.assert_array_equal(
            band[band // grid_a.block_size == k] % grid_a.block_size,
            band_indices(single, spacing, 2.0),
        )
