"""The shared sparse grid: connectivity checks, the cached labelling, the re-exported names."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from evaluator.errors import MetricInputError
from evaluator.metrics import _grid, lesion, surface
from evaluator.metrics._grid import (
    CONNECTIVITIES,
    SparseGrid,
    check_connectivity,
    label_sparse,
    structure,
)


@pytest.mark.parametrize("ndim", [2, 3])
def test_structure_has_one_element_per_connectivity(ndim: int) -> None:
    """Each valid connectivity is the neighbour count of its structuring element."""
    for conn in CONNECTIVITIES[ndim]:
        assert check_connectivity(conn, ndim) == conn
        assert int(structure(ndim, conn).sum()) - 1 == conn


@pytest.mark.parametrize(("ndim", "conn"), [(2, 6), (2, 26), (3, 4), (3, 8), (1, 2), (4, 26)])
def test_invalid_connectivity_fails_the_same_way_everywhere(ndim: int, conn: int) -> None:
    """The check, the structuring element and the labelling reject the same values."""
    message = f"connectivity {conn} is not valid for a {ndim}D image"
    with pytest.raises(MetricInputError, match=message):
        check_connectivity(conn, ndim)
    with pytest.raises(MetricInputError, match=message):
        structure(ndim, conn)


def test_cached_components_reports_what_components_computed() -> None:
    mask = np.zeros((6, 7), bool)
    mask[0, 0] = mask[1, 1] = mask[4, 2:6] = True
    grid = SparseGrid.from_mask(mask)
    assert grid.cached_components() is None
    labels, n = grid.components(4)
    cached = grid.cached_components()
    assert cached is not None and cached[1] == n == 3
    np.testing.assert_array_equal(cached[0], labels)
    grid.components(8)  # a second labelling does not replace the first one reported
    cached = grid.cached_components()
    assert cached is not None and cached[1] == 3


@pytest.mark.parametrize("seed", range(4))
def test_label_sparse_on_a_multi_block_grid_equals_scipy_per_block(seed: int) -> None:
    rng = np.random.default_rng(seed)
    masks = [rng.random((5, 6, 7)) < 0.15 for _ in range(3)]
    coords = np.concatenate([np.argwhere(m) for m in masks])
    blocks = np.concatenate([np.full(int(m.sum()), k) for k, m in enumerate(masks)])
    grid = SparseGrid.from_coords(coords, (5, 6, 7), blocks)
    labels, n = label_sparse(grid, 26)
    block_of = grid.idx // grid.block_size
    offset = 0
    for k, m in enumerate(masks):
        expected, n_k = ndimage.label(m, structure=structure(3, 26))
        got = labels[block_of == k]
        np.testing.assert_array_equal(got - offset, expected[m])
        offset += n_k
    assert n == offset


def test_metric_modules_re_export_the_shared_names() -> None:
    """Users' imports from surface.py and lesion.py keep working, with the same objects."""
    for name in ("check_spacing", "bounding_box", "image_diagonal_mm"):
        assert getattr(surface, name) is getattr(_grid, name)
        assert name in surface.__all__
    assert lesion.default_connectivity is _grid.default_connectivity
    assert "default_connectivity" in lesion.__all__


def _partition_grid(seed: int, blocks: int = 4) -> tuple[SparseGrid, list[np.ndarray]]:
    """A random 3D mask cut into disjoint parts (as ``pred ∩ R_k``), one block per part."""
    rng = np.random.default_rng(seed)
    mask = rng.random((6, 7, 8)) < 0.6
    part = rng.integers(1, blocks, size=mask.shape)  # block 0 stays empty, as in cc.py
    coords = np.argwhere(mask)
    grid = SparseGrid.from_coords(coords, mask.shape, part[mask])
    return grid, [mask & (part == k) for k in range(blocks)]


def _binary_search_contains(grid: SparseGrid, query: np.ndarray) -> np.ndarray:
    pos = np.minimum(np.searchsorted(grid.idx, query), grid.idx.size - 1)
    return np.asarray(grid.idx[pos] == query)


@pytest.mark.parametrize("seed", range(4))
def test_owner_table_of_disjoint_blocks_equals_binary_search(seed: int) -> None:
    """Lookups and surfaces from the owner table equal the binary search and scipy per block."""
    grid, masks = _partition_grid(seed)
    assert grid.owner_table() is not None
    query = np.arange(grid.blocks * grid.block_size)
    np.testing.assert_array_equal(grid.contains(query), _binary_search_contains(grid, query))
    flags = grid.surface_flags()
    block_of = grid.idx // grid.block_size
    for k, m in enumerate(masks):
        eroded = ndimage.binary_erosion(m, structure=ndimage.generate_binary_structure(3, 1))
        np.testing.assert_array_equal(flags[block_of == k], (m & ~eroded)[m])


@pytest.mark.parametrize("seed", range(3))
def test_owner_table_falls_back_to_binary_search(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Too large a table, or blocks sharing a voxel: no table, the same answers."""
    grid, _ = _partition_grid(seed)
    query = np.arange(grid.blocks * grid.block_size)
    flags = grid.surface_flags()
    monkeypatch.setattr(_grid, "OWNER_TABLE_MAX_BYTES", 0)
    small, _ = _partition_grid(seed)
    assert small.owner_table() is None
    np.testing.assert_array_equal(small.contains(query), grid.contains(query))
    np.testing.assert_array_equal(small.surface_flags(), flags)
    monkeypatch.undo()
    rng = np.random.default_rng(seed)
    mask = rng.random((5, 6, 7)) < 0.4
    coords = np.argwhere(mask)
    both = SparseGrid.from_coords(  # the same voxels in blocks 0 and 1
        np.concatenate([coords, coords]), mask.shape, np.repeat([0, 1], len(coords))
    )
    assert both.owner_table() is None
    query = np.arange(both.blocks * both.block_size)
    np.testing.assert_array_equal(both.contains(query), _binary_search_contains(both, query))
    one = SparseGrid.from_mask(mask).surface_flags()
    np.testing.assert_array_equal(both.surface_flags(), np.concatenate([one, one]))


def test_grid_coords_of_a_multi_block_grid_equals_unravel() -> None:
    grid, _ = _partition_grid(0)
    expected = np.stack(np.unravel_index(grid.idx, (grid.blocks, *grid.shape))[1:], axis=1) - 1
    np.testing.assert_array_equal(grid.grid_coords(grid.idx), expected)
