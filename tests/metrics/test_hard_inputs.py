"""Hard inputs in small: many components, a false-positive slab, speckle (issue 18).

The fast paths for these inputs (box assignment of the Voronoi regions, per-segment surface
statistics, band distance transforms only where the bound leaves voxels open) are checked here
against the straightforward computations: Algorithm 1 of CC-Metrics literally
(:func:`tests.metrics.test_cc.algorithm1`), the per-point Voronoi assignment and the scalar
:class:`~evaluator.metrics.surface.SurfaceDistances`. The timing benchmark of the full-sized
cases is ``tests/benchmarks/test_bench_hard.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from evaluator.metrics.cc import CC_METRICS, cc_metrics, voronoi_regions
from evaluator.metrics.surface import SurfaceDistances, segment_statistics
from tests.metrics.test_cc import algorithm1


def _one_voxel_pair(seed: int, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One-voxel reference lesions on a step-3 lattice; hits, shifted hits, misses and FPs."""
    rng = np.random.default_rng(seed)
    sites = tuple((n - 1) // 3 for n in shape)
    flat = rng.choice(int(np.prod(sites)), 90, replace=False)
    points = np.stack(np.unravel_index(flat, sites), axis=1) * 3 + 1
    ref = np.zeros(shape, bool)
    ref[tuple(points[:60].T)] = True
    kind = rng.random(60)
    pred = np.zeros(shape, bool)
    pred[tuple(points[:60][kind < 0.5].T)] = True
    pred[tuple((points[:60][(kind >= 0.5) & (kind < 0.75)] + [0, 0, 1]).T)] = True
    pred[tuple(points[60:].T)] = True
    return pred, ref


def _slab_pair(seed: int) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """A few blobs as reference; the prediction: them dilated, plus a slab and some speckle."""
    rng = np.random.default_rng(seed)
    shape = (12, 30, 28)
    ref = ndimage.binary_dilation(rng.random(shape) < 0.003, iterations=1)
    pred = ndimage.binary_dilation(ref) | (rng.random(shape) < 0.01)
    pred[5:8] = True
    spacing = tuple(float(s) for s in rng.choice([0.7, 1.0, 2.5, 3.0], size=3))
    return pred, ref, spacing


@pytest.mark.parametrize("seed", range(3))
def test_many_one_voxel_components_equal_algorithm1(seed: int) -> None:
    pred, ref = _one_voxel_pair(seed, (16, 26, 28))
    spacing = (3.0, 0.98, 0.98)
    got = cc_metrics(pred, ref, spacing=spacing, nsd_tolerance_mm=1.0, worst_distance_mm=50.0)
    expected = algorithm1(pred, ref, spacing, 1.0, 50.0)
    assert got.n_components == 60
    for name in CC_METRICS:
        np.testing.assert_allclose(got.per_component[name], expected[name], rtol=1e-12)


@pytest.mark.parametrize("seed", range(2))
def test_slab_box_assignment_equals_algorithm1(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every prediction goes through the box assignment (threshold 0), same numbers."""
    monkeypatch.setattr("evaluator.metrics._voronoi.BLOCK_MIN_POINTS", 0)
    pred, ref, spacing = _slab_pair(seed)
    got = cc_metrics(pred, ref, spacing=spacing, nsd_tolerance_mm=1.5, worst_distance_mm=45.0)
    expected = algorithm1(pred, ref, spacing, 1.5, 45.0)
    for name in CC_METRICS:
        np.testing.assert_allclose(got.per_component[name], expected[name], rtol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_box_assignment_equals_the_point_path(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Voronoi labels of every voxel: the box path (threshold 0) equals the per-point path,
    and, in voxel units (integer distances, exact ties), scipy's feature transform."""
    _, ref, spacing = _slab_pair(seed)
    everywhere = np.ones_like(ref)
    for mode in ("mm", "voxel"):
        monkeypatch.setattr("evaluator.metrics._voronoi.BLOCK_MIN_POINTS", 10**12)
        points = voronoi_regions(ref, spacing=spacing, mode=mode, where=everywhere)
        monkeypatch.setattr("evaluator.metrics._voronoi.BLOCK_MIN_POINTS", 0)
        boxes = voronoi_regions(ref, spacing=spacing, mode=mode, where=everywhere)
        assert np.array_equal(boxes, points), mode
    assert np.array_equal(boxes, voronoi_regions(ref, spacing=spacing, mode="voxel"))


@pytest.mark.parametrize("seed", range(5))
def test_segment_statistics_equal_the_scalar_reductions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = rng.choice([1, 1, 2, 3, 7, 8, 9, 130, 300], size=40)
    bounds = np.concatenate(([0], np.cumsum(lengths)))
    distances = rng.random(int(bounds[-1])) * rng.uniform(0.5, 40.0)
    distances[rng.random(distances.size) < 0.2] = 0.0
    segments = rng.permutation(40)[:25]
    got = segment_statistics(distances, bounds, segments, nsd_tolerance_mm=3.0)
    for i, k in enumerate(segments.tolist()):
        part = distances[bounds[k] : bounds[k + 1]]
        sd = SurfaceDistances(part, part)  # both directions the same slice
        assert got.count[i] == part.size
        assert got.maximum[i] == sd.hd()
        assert got.p95[i] == sd.hd95()
        assert got.total[i] == part.sum()
        assert got.within[i] == np.count_nonzero(part <= 3.0)


def test_segment_statistics_refuse_an_empty_segment() -> None:
    from evaluator.errors import MetricInputError

    with pytest.raises(MetricInputError, match="non-empty"):
        segment_statistics(np.zeros(2), np.array([0, 0, 2]), np.array([0, 1]), nsd_tolerance_mm=1.0)


def _dense_band(mask: np.ndarray, spacing: tuple[float, ...], width: float) -> np.ndarray:
    """The band straight from its definition: surface, or scipy's EDT of the padded mask <= width."""
    from evaluator.metrics.surface import surface_mask

    edt = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=spacing)
    inner = tuple(slice(1, -1) for _ in mask.shape)
    return mask & (surface_mask(mask) | (edt[inner] <= width))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("labelled", [False, True])
@pytest.mark.parametrize("kdtree_max", [0, 10**9])
def test_band_equals_the_dense_definition(
    seed: int, labelled: bool, kdtree_max: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both band paths (distance transform per component: threshold 0; KD-tree), with and
    without a cached labelling (run-wise boxes of the bound), on blobs, a slab and speckle."""
    from evaluator.metrics._grid import SparseGrid
    from evaluator.metrics.surface import band_indices

    monkeypatch.setattr("evaluator.metrics.surface.BAND_KDTREE_MAX_VOXELS", kdtree_max)
    pred, _, spacing = _slab_pair(seed)
    pred[:, :2] = True  # a face on the image border
    width = float(np.random.default_rng(seed).uniform(0.5, 8.0))
    grid = SparseGrid.from_mask(pred)
    if labelled:
        grid.components(26)
    got = np.zeros(pred.shape, bool)
    got.ravel()[grid.unpadded_flat(band_indices(grid, spacing, width))] = True
    assert np.array_equal(got, _dense_band(pred, spacing, width))


def test_band_of_a_multi_block_grid_is_each_blocks_band(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks are masks of their own: their surfaces and bands never see the other blocks."""
    from evaluator.metrics._grid import SparseGrid
    from evaluator.metrics.surface import band_indices, surface_mask

    monkeypatch.setattr("evaluator.metrics.surface.BAND_KDTREE_MAX_VOXELS", 0)
    pred, _, spacing = _slab_pair(1)
    coords = np.argwhere(pred)
    blocks = (coords[:, 2] >= 14).astype(np.int64) + 1  # two halves that touch, blocks 1 and 2
    grid = SparseGrid.from_coords(coords, pred.shape, blocks)
    band = band_indices(grid, spacing, 4.0)
    flags = grid.surface_flags()
    for b in (1, 2):
        half = np.zeros(pred.shape, bool)
        half[tuple(coords[blocks == b].T)] = True
        mine = band[band // grid.block_size == b]
        got = np.zeros(pred.shape, bool)
        got[tuple(grid.grid_coords(mine).T)] = True
        assert np.array_equal(got, _dense_band(half, spacing, 4.0)), b
        surface = np.zeros(pred.shape, bool)
        in_block = grid.idx // grid.block_size == b
        surface[tuple(grid.grid_coords(grid.idx[in_block & flags]).T)] = True
        assert np.array_equal(surface, surface_mask(half)), b


def test_one_component_shares_bands_and_distances_with_the_surface_metrics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A single reference component (an organ): the CC-Metrics use the whole masks' band and
    surface distances, computed once per call, and still equal Algorithm 1."""
    import evaluator.metrics.surface as surface
    from evaluator.metrics.api import compute_metrics

    calls = {"band": 0, "distances": 0}
    band, distances = surface._band, surface._distances

    def counted_band(*args: object) -> np.ndarray:
        calls["band"] += 1
        return band(*args)  # type: ignore[arg-type]

    def counted_distances(*args: object) -> surface.SurfaceDistances:
        calls["distances"] += 1
        return distances(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(surface, "_band", counted_band)
    monkeypatch.setattr(surface, "_distances", counted_distances)
    ref = np.zeros((10, 24, 22), bool)
    ref[2:8, 4:18, 5:17] = True
    ref[4:6, 8:12, 8:12] = False  # a hole: still one component
    pred = np.roll(ref, 2, axis=2) | (np.random.default_rng(3).random(ref.shape) < 0.01)
    spacing = (2.5, 0.8, 0.8)
    names = ("hd", "hd95", "assd", "nsd", "boundary_iou", *CC_METRICS)
    got = compute_metrics(
        pred.astype(np.uint8), ref.astype(np.uint8), spacing=spacing, metrics=names
    )
    assert calls == {"band": 2, "distances": 1}
    expected = algorithm1(pred, ref, spacing, 1.0, 50.0)
    values = got.values[1]
    for name in CC_METRICS:
        np.testing.assert_allclose(values[name], expected[name][0], rtol=1e-12)
    for name in ("hd", "hd95", "assd", "boundary_iou"):
        assert values[name] == values[f"cc_{name}"], name
