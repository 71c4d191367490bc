"""The sparse Voronoi assignment equals Algorithm 2 (one scipy feature transform) voxel for voxel."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from evaluator.errors import MetricInputError
from evaluator.metrics import _voronoi
from evaluator.metrics._grid import SparseGrid, label_sparse, sparse_components, structure
from evaluator.metrics._voronoi import nearest_component
from evaluator.metrics.cc import voronoi_regions

SPACINGS = {
    "unit": None,  # filled per dimension
    "dyadic": (2.0, 0.5, 1.0),
    "integer": (3.0, 1.0, 2.0),
    "ct_like": (0.9765625, 0.9765625, 3.27),
    "irregular": (0.7, 1.3, 2.11),
}
CONNECTIVITIES = {2: (4, 8), 3: (6, 18, 26)}


def _spacing(kind: str, ndim: int) -> tuple[float, ...]:
    values = SPACINGS[kind]
    return (1.0,) * ndim if values is None else tuple(values[-ndim:])


def algorithm2(ref: np.ndarray, spacing: tuple[float, ...], connectivity: int) -> np.ndarray:
    """The oracle: label components, one EDT with indices, label at the nearest feature."""
    rank = {4: 1, 8: 2, 6: 1, 18: 2, 26: 3}[connectivity]
    lab, _ = ndimage.label(ref, structure=ndimage.generate_binary_structure(ref.ndim, rank))
    idx = ndimage.distance_transform_edt(
        ~ref, sampling=spacing, return_distances=False, return_indices=True
    )
    return np.asarray(lab[tuple(idx)])


def _random_ref(rng: np.random.Generator, ndim: int) -> np.ndarray:
    shape = tuple(int(n) for n in rng.integers(5, 16, size=ndim))
    return rng.random(shape) < rng.uniform(0.01, 0.12)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("seed", range(12))
def test_sparse_components_equal_scipy_label(ndim: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for conn in CONNECTIVITIES[ndim]:
        mask = _random_ref(rng, ndim)
        expected, n = ndimage.label(mask, structure=structure(ndim, conn))
        comps = sparse_components(mask, connectivity=conn, surfaces=True)
        assert comps.n == n
        got = np.zeros(mask.shape, dtype=np.int64)
        got[tuple(comps.coords.T)] = comps.labels
        np.testing.assert_array_equal(got, expected)
        assert comps.sizes.tolist() == np.bincount(expected.ravel())[1:].tolist()
        # surfaces: voxels removed by a cross erosion with zero border
        cross = ndimage.generate_binary_structure(ndim, 1)
        surface = mask & ~ndimage.binary_erosion(mask, structure=cross, border_value=0)
        got_surface = np.zeros(mask.shape, dtype=np.int64)
        got_surface[tuple(comps.surface_coords.T)] = comps.surface_labels
        np.testing.assert_array_equal(got_surface, np.where(surface, expected, 0))


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("seed", range(10))
def test_label_sparse_equals_scipy_label_on_dense_masks(ndim: int, seed: int) -> None:
    """Dense masks (long runs, many diagonal contacts) stress the run linking."""
    rng = np.random.default_rng(100 + seed)
    for conn in CONNECTIVITIES[ndim]:
        shape = tuple(int(n) for n in rng.integers(1, 24, size=ndim))
        mask = rng.random(shape) < rng.uniform(0.2, 0.7)
        expected, n = ndimage.label(mask, structure=structure(ndim, conn))
        grid = SparseGrid.from_mask(mask)
        labels, got_n = label_sparse(grid, conn)
        assert got_n == n
        got = np.zeros(mask.shape, dtype=np.int64)
        got.ravel()[grid.unpadded_flat(grid.idx)] = labels
        np.testing.assert_array_equal(got, expected)


def test_label_sparse_diagonal_chains() -> None:
    """A 3D diagonal chain is one component with 26- and 18- (no), 6-connectivity (no)."""
    chain = np.zeros((5, 5, 5), bool)
    chain[np.arange(5), np.arange(5), np.arange(5)] = True
    counts = {c: label_sparse(SparseGrid.from_mask(chain), c)[1] for c in (6, 18, 26)}
    assert counts == {6: 5, 18: 5, 26: 1}
    steps = np.zeros((4, 4, 4), bool)
    steps[np.arange(4), np.arange(4), 0] = True  # edge neighbours: 18 and 26 join them
    counts = {c: label_sparse(SparseGrid.from_mask(steps), c)[1] for c in (6, 18, 26)}
    assert counts == {6: 4, 18: 1, 26: 1}


def test_label_sparse_keeps_blocks_apart() -> None:
    """Blocks of one grid are separate masks: equal voxels in two blocks never join."""
    coords = np.array([[0, 0], [0, 1], [0, 0], [0, 1], [2, 2]])
    grid = SparseGrid.from_coords(coords, (3, 3), np.array([0, 0, 1, 1, 1]))
    labels, n = label_sparse(grid, 8)
    assert n == 3 and labels.tolist() == [1, 1, 2, 2, 3]


def test_empty_mask_has_no_components() -> None:
    comps = sparse_components(np.zeros((3, 4, 5), bool), surfaces=True)
    assert comps.n == 0 and comps.coords.shape == (0, 3)
    assert label_sparse(SparseGrid.from_mask(np.zeros((4, 4), bool)))[1] == 0


@pytest.mark.parametrize("spacing_kind", list(SPACINGS))
@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_regions_equal_algorithm2_on_random_references(
    seed: int, ndim: int, spacing_kind: str
) -> None:
    rng = np.random.default_rng(1000 + seed)
    ref = _random_ref(rng, ndim)
    spacing = _spacing(spacing_kind, ndim)
    conn = CONNECTIVITIES[ndim][seed % len(CONNECTIVITIES[ndim])]
    where = np.ones(ref.shape, bool)
    got = voronoi_regions(ref, spacing=spacing, connectivity=conn, where=where)
    if not ref.any():
        assert not got.any()
        return
    np.testing.assert_array_equal(got, algorithm2(ref, spacing, conn))


def _lattice_ref(shape: tuple[int, ...], step: tuple[int, ...]) -> np.ndarray:
    """Single-voxel components on a regular lattice: most voxels are equidistant to several."""
    ref = np.zeros(shape, bool)
    ref[tuple(slice(0, n, s) for n, s in zip(shape, step, strict=True))] = True
    return ref


TIE_CASES = {
    "lattice_3d_unit": (_lattice_ref((9, 10, 11), (4, 4, 4)), (1.0, 1.0, 1.0)),
    "lattice_3d_uneven": (_lattice_ref((9, 12, 10), (2, 6, 4)), (1.0, 1.0, 1.0)),
    "lattice_3d_aniso": (_lattice_ref((9, 12, 10), (4, 2, 4)), (1.0, 2.0, 1.0)),
    "lattice_3d_ct": (_lattice_ref((10, 12, 12), (3, 4, 4)), (3.0, 0.75, 0.75)),
    "lattice_2d_unit": (_lattice_ref((17, 15), (4, 2)), (1.0, 1.0)),
    "lattice_2d_irregular": (_lattice_ref((17, 15), (4, 4)), (0.7, 0.7)),
}


@pytest.mark.parametrize("case", list(TIE_CASES))
def test_regions_equal_algorithm2_on_equidistant_lattices(case: str) -> None:
    ref, spacing = TIE_CASES[case]
    conn = 26 if ref.ndim == 3 else 8
    got = voronoi_regions(ref, spacing=spacing, where=np.ones(ref.shape, bool))
    np.testing.assert_array_equal(got, algorithm2(ref, spacing, conn))


def test_pythagorean_tie_goes_to_the_lower_last_axis_coordinate() -> None:
    # (0, 3, 4) and (0, 5, 0) away from the query voxel: both at distance 5.
    ref = np.zeros((1, 12, 12), bool)
    ref[0, 3 + 3, 2 + 4] = True  # offset (3, 4): last-axis coordinate 6
    ref[0, 3 + 5, 2] = True  # offset (5, 0): last-axis coordinate 2 -> wins
    point = np.array([[0, 3, 2]])
    comps = sparse_components(ref, surfaces=True)
    got = nearest_component(
        point, comps.surface_coords, comps.surface_labels, spacing=(1.0, 1.0, 1.0), shape=ref.shape
    )
    oracle = algorithm2(ref, (1.0, 1.0, 1.0), 26)[0, 3, 2]
    assert got.tolist() == [oracle]
    assert comps.voxels(int(oracle)).tolist() == [[0, 8, 2]]


def test_more_ties_than_fetched_candidates() -> None:
    """30 voxels at squared distance 9 from the centre: more than one KD-tree batch of ties."""
    grid = np.indices((9, 9, 9)) - 4
    ref = (grid**2).sum(axis=0) == 9
    centre = np.zeros_like(ref)
    centre[4, 4, 4] = True
    for conn in (6, 26):
        got = voronoi_regions(ref, spacing=(1.0, 1.0, 1.0), connectivity=conn, where=centre)
        assert got[4, 4, 4] == algorithm2(ref, (1.0, 1.0, 1.0), conn)[4, 4, 4]


@pytest.mark.parametrize("case", ["lattice_3d_unit", "lattice_3d_ct", "lattice_2d_unit"])
def test_radius_fallback_equals_algorithm2(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    """With two candidates per batch nearly every tie takes the radius-query path."""
    monkeypatch.setattr(_voronoi, "_K_TIES", 2)
    ref, spacing = TIE_CASES[case]
    got = voronoi_regions(ref, spacing=spacing, where=np.ones(ref.shape, bool))
    np.testing.assert_array_equal(got, algorithm2(ref, spacing, 26 if ref.ndim == 3 else 8))


def test_two_plates_midplane_goes_to_the_lower_plate() -> None:
    ref = np.zeros((9, 6, 6), bool)
    ref[1] = ref[7] = True
    regions = voronoi_regions(ref, spacing=(1.0, 1.0, 1.0))
    assert (regions[:5] == 1).all() and (regions[5:] == 2).all()  # plane 4 is equidistant
    np.testing.assert_array_equal(regions, algorithm2(ref, (1.0, 1.0, 1.0), 26))


@pytest.mark.parametrize("seed", range(4))
def test_full_map_equals_sparse_path(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = _random_ref(rng, 3)
    where = rng.random(ref.shape) < 0.3
    sparse = voronoi_regions(ref, spacing=(1.0, 2.0, 0.5), where=where)
    full = voronoi_regions(ref, spacing=(1.0, 2.0, 0.5))
    np.testing.assert_array_equal(sparse, np.where(where, full, 0))


def test_voxel_mode_ignores_spacing() -> None:
    # voxel distances: (2, 3) -> A is 13 away, B 16; in mm with spacing (3, 1): A 45, B 16.
    ref = np.zeros((5, 9), bool)
    ref[0, 0] = True  # A
    ref[2, 7] = True  # B
    point = np.zeros_like(ref)
    point[2, 3] = True
    assert voronoi_regions(ref, spacing=(3.0, 1.0), mode="voxel", where=point)[2, 3] == 1
    assert voronoi_regions(ref, spacing=(3.0, 1.0), mode="mm", where=point)[2, 3] == 2


def test_invalid_connectivity_and_missing_seeds() -> None:
    with pytest.raises(MetricInputError, match="connectivity 6 is not valid for a 2D image"):
        structure(2, 6)
    with pytest.raises(MetricInputError, match="no seed voxels"):
        nearest_component(
            np.zeros((1, 2), np.int64),
            np.zeros((0, 2), np.int64),
            np.zeros(0, np.int64),
            spacing=(1.0, 1.0),
            shape=(2, 2),
        )
