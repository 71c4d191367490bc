"""The sparse voxel grid, connectivity and component labelling shared by the metric families.

Surface metrics (:mod:`evaluator.metrics.surface`), lesion metrics
(:mod:`evaluator.metrics.lesion`), CC-Metrics (:mod:`evaluator.metrics.cc` and its Voronoi
assignment :mod:`evaluator.metrics._voronoi`) and the one-pass entry point
(:mod:`evaluator.metrics.api`) all work on the same representation of a mask: its foreground
voxels as sorted flat indices into the image padded with one zero voxel per side
(:class:`SparseGrid`), labelled into connected components once per connectivity
(:func:`label_sparse`, cached on the grid). This module holds that representation and the small
geometry checks around it, so that every metric family imports it and none imports another to
get it.

Dependency rule: this module imports nothing from :mod:`evaluator.metrics` (only
:mod:`evaluator.errors` and :mod:`evaluator.typing`); ``tests/test_import_graph.py`` keeps the
import graph free of cycles.

Arrays are ``(z, y, x)`` or ``(y, x)``; spacings are in the same axis order, in millimetres.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
from scipy import ndimage

from evaluator.errors import MetricInputError
from evaluator.typing import BoolArray, Connectivity, FloatArray, IntArray, Spacing

_T = TypeVar("_T")

__all__ = [
    "CONNECTIVITIES",
    "OWNER_TABLE_MAX_BYTES",
    "Components",
    "SparseGrid",
    "bounding_box",
    "check_connectivity",
    "check_spacing",
    "default_connectivity",
    "grid_components",
    "image_diagonal_mm",
    "label_sparse",
    "sparse_components",
    "structure",
]

#: Valid component connectivities per number of dimensions, by increasing rank (face, edge,
#: corner neighbours).
CONNECTIVITIES: dict[int, tuple[Connectivity, ...]] = {2: (4, 8), 3: (6, 18, 26)}


# ---------------------------------------------------------------------------------------------
# geometry checks
# ---------------------------------------------------------------------------------------------


def check_spacing(spacing: Sequence[float], ndim: int) -> Spacing:
    """Validate a voxel spacing and return it as a tuple of floats (mm, array axis order).

    Raises
    ------
    MetricInputError
        Wrong length, or a value that is not a finite positive number.

    Examples
    --------
    >>> check_spacing([1, 2, 3.5], 3)
    (1.0, 2.0, 3.5)
    """
    try:
        values = tuple(float(s) for s in spacing)
    except (TypeError, ValueError) as err:
        raise MetricInputError(f"spacing {spacing!r} is not a sequence of numbers") from err
    if len(values) != ndim:
        raise MetricInputError(f"spacing {values} has {len(values)} values for a {ndim}D image")
    if not all(math.isfinite(s) and s > 0 for s in values):
        raise MetricInputError(f"spacing {values} mm must be finite and positive")
    return values


def bounding_box(mask: BoolArray, margin: int = 0) -> tuple[slice, ...] | None:
    """Slices of the bounding box of `mask`, widened by `margin` voxels and clipped to the image.

    Returns ``None`` for an empty mask.

    Examples
    --------
    >>> m = np.zeros((4, 5), bool); m[1, 2] = m[2, 3] = True
    >>> bounding_box(m, margin=1)
    (slice(0, 4, None), slice(1, 5, None))
    """
    slices = []
    for axis in range(mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=others))
        if hits.size == 0:
            return None
        lo = max(int(hits[0]) - margin, 0)
        hi = min(int(hits[-1]) + 1 + margin, mask.shape[axis])
        slices.append(slice(lo, hi))
    return tuple(slices)


def image_diagonal_mm(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """Length of the image diagonal, ``sqrt(sum((n_i * s_i)**2))``, mm.

    Examples
    --------
    >>> image_diagonal_mm((3, 4), (1.0, 1.0))
    5.0
    """
    return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing, strict=True))))


# ---------------------------------------------------------------------------------------------
# connectivity
# ---------------------------------------------------------------------------------------------


def default_connectivity(ndim: int) -> Connectivity:
    """The default component connectivity: 26 in 3D, 8 in 2D.

    Examples
    --------
    >>> default_connectivity(3), default_connectivity(2)
    (26, 8)
    """
    return 26 if ndim == 3 else 8


def check_connectivity(connectivity: int | None, ndim: int) -> Connectivity:
    """Validate a component connectivity for an `ndim`-dimensional image (``None``: the default).

    Parameters
    ----------
    connectivity : {4, 8} in 2D, {6, 18, 26} in 3D, or None
        ``None`` gives :func:`default_connectivity`.
    ndim : int
        Number of image dimensions.

    Returns
    -------
    int
        The connectivity.

    Raises
    ------
    MetricInputError
        The connectivity is not one of :data:`CONNECTIVITIES` for `ndim`.

    Examples
    --------
    >>> check_connectivity(None, 3), check_connectivity(4, 2)
    (26, 4)
    """
    if connectivity is None:
        return default_connectivity(ndim)
    if connectivity not in CONNECTIVITIES.get(ndim, ()):
        raise MetricInputError(
            f"connectivity {connectivity} is not valid for a {ndim}D image "
            f"(use one of {CONNECTIVITIES.get(ndim, ())})"
        )
    return cast(Connectivity, connectivity)


def structure(ndim: int, connectivity: int | None) -> BoolArray:
    """The scipy structuring element of a connectivity (default 26 in 3D, 8 in 2D).

    Raises
    ------
    MetricInputError
        The connectivity does not fit the number of dimensions (:func:`check_connectivity`).

    Examples
    --------
    >>> int(structure(3, None).sum()), int(structure(2, 4).sum())
    (27, 5)
    """
    conn = check_connectivity(connectivity, ndim)
    rank = CONNECTIVITIES[ndim].index(conn) + 1
    return np.asarray(ndimage.generate_binary_structure(ndim, rank))


# ---------------------------------------------------------------------------------------------
# the sparse grid
# ---------------------------------------------------------------------------------------------


#: Largest owner table (bytes) :meth:`SparseGrid.contains` builds for a grid of several blocks;
#: larger grids use binary searches.
OWNER_TABLE_MAX_BYTES = 1 << 30


def _padded_strides(shape: Sequence[int]) -> list[int]:
    return [int(np.prod(shape[a + 1 :], dtype=np.int64)) for a in range(len(shape))]


class SparseGrid:
    """A mask on its grid padded with one zero voxel per side, stored sparsely.

    ``idx`` holds the sorted flat indices (C order) of the foreground voxels in the padded grid
    (so ``np.argwhere`` order of the unpadded mask). Neighbour lookups are gathers at
    ``idx + step``, so every cost grows with the number of foreground voxels, never with the
    grid; the padding ring keeps neighbour offsets from wrapping across rows.
    Connected-component labellings are cached per connectivity (:meth:`components`), so all
    metrics of one pair share them.

    With ``blocks > 1`` the grid holds several independent masks at once (mask ``b`` at flat
    indices ``b * block_size + i``, see :meth:`from_coords`): neighbours never cross blocks,
    and :meth:`coords_mm` adds a coordinate ``b * (2 * diagonal + 1)``, so a nearest-neighbour
    search only ever finds voxels of the same mask.

    Parameters
    ----------
    idx : numpy.ndarray of int, shape (m,)
        Sorted flat indices of the foreground voxels in the padded grid.
    shape : tuple of int
        Shape of the padded grid (the image shape plus 2 per axis).
    blocks : int
        Number of masks held (see above).

    Examples
    --------
    >>> m = np.zeros((3, 4), bool); m[0, 1] = m[2, 2:4] = True
    >>> grid = SparseGrid.from_mask(m)
    >>> grid.shape, grid.idx.tolist(), grid.image_shape
    ((5, 6), [8, 21, 22], (3, 4))
    >>> bool((grid.dense() == m).all())
    True
    """

    def __init__(self, idx: IntArray, shape: tuple[int, ...], blocks: int = 1) -> None:
        self.shape = shape  # padded shape
        self.idx = np.asarray(idx, dtype=np.int64)
        self.strides = _padded_strides(shape)
        self.blocks = int(blocks)
        self.block_size = int(np.prod(shape, dtype=np.int64))
        self._components: dict[int, tuple[IntArray, int]] = {}
        self._table: BoolArray | None = None
        self._owners: tuple[np.ndarray | None] | None = None
        self._memo: dict[tuple[Any, ...], Any] = {}

    @classmethod
    def from_mask(cls, mask: BoolArray) -> SparseGrid:
        """Grid of a boolean mask (one pass over the mask)."""
        return cls.from_flat(np.flatnonzero(mask), mask.shape)

    @classmethod
    def from_flat(cls, flat: IntArray, shape: Sequence[int]) -> SparseGrid:
        """Grid of sorted C-order flat indices into an unpadded image of `shape`."""
        padded = tuple(int(n) + 2 for n in shape)
        steps = _padded_strides(padded)
        flat = np.asarray(flat, dtype=np.int64)
        if flat.size == 0:
            return cls(flat, padded)
        # The voxels of a run (consecutive indices within one row) share one shift to the
        # padded grid, so the coordinates are only computed at run starts.
        row = int(shape[-1])
        start = np.flatnonzero(np.diff(flat, prepend=flat[0] - 2) != 1)
        length = np.diff(np.append(start, flat.size))
        x0 = flat[start] % row
        wraps = x0 + length > row  # a run of flat indices running on into the next row
        if wraps.any():
            cuts = [
                np.arange(a + row - x, a + n, row)
                for a, x, n in zip(start[wraps], x0[wraps], length[wraps], strict=True)
            ]
            start = np.union1d(start, np.concatenate(cuts))
            length = np.diff(np.append(start, flat.size))
        first = flat[start]
        shift = np.full(start.size, sum(steps), dtype=np.int64) - first  # the +1 of every axis
        rest = first
        for axis in range(len(shape) - 1, 0, -1):
            rest, digit = np.divmod(rest, int(shape[axis]))
            shift += digit * steps[axis]
        shift += rest * steps[0]
        return cls(flat + np.repeat(shift, length), padded)

    @classmethod
    def from_coords(
        cls, coords: IntArray, shape: Sequence[int], blocks: IntArray | None = None
    ) -> SparseGrid:
        """Grid of voxel coordinates ``(m, ndim)`` (any order, no repeats) in `shape`.

        `blocks` (``(m,)``, non-negative) puts each voxel into that block (one mask each).
        """
        padded = tuple(int(n) + 2 for n in shape)
        flat = np.zeros(coords.shape[0], dtype=np.int64)
        for axis, step in enumerate(_padded_strides(padded)):
            flat += (coords[:, axis].astype(np.int64) + 1) * step
        if blocks is None or blocks.size == 0:
            return cls(np.sort(flat), padded)
        size = int(np.prod(padded, dtype=np.int64))
        return cls(np.sort(flat + blocks.astype(np.int64) * size), padded, int(blocks.max()) + 1)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of the unpadded image."""
        return tuple(n - 2 for n in self.shape)

    def contains(self, query: IntArray) -> BoolArray:
        """Whether each padded flat index in `query` is a foreground voxel.

        A lookup in a flat boolean table of the padded grid, built on first use (only the pages
        around the foreground are written).
        """
        if self.blocks > 1:
            if self.idx.size == 0:
                return np.zeros(np.shape(query), dtype=bool)
            owners = self.owner_table()
            if owners is not None:
                block, local = np.divmod(query, self.block_size)
                return cast(BoolArray, owners[local] == block + 1)
            # blocks overlap or the table would be too large: binary search instead
            pos = np.minimum(np.searchsorted(self.idx, query), self.idx.size - 1)
            return cast(BoolArray, self.idx[pos] == query)
        if self._table is None:
            self._table = np.zeros(self.block_size, dtype=bool)
            self._table[self.idx] = True
        return cast(BoolArray, self._table[query])

    def owner_table(self) -> np.ndarray | None:
        """Block number + 1 of the voxel at each flat index of one block, 0 for background.

        Only defined for a grid of several blocks whose masks are disjoint crops of one image
        (no flat index of a block is foreground in another, as the parts ``pred ∩ R_k`` of a
        partition); ``None`` otherwise, and when the table would exceed
        :data:`OWNER_TABLE_MAX_BYTES`. Built on first use (only the pages around the
        foreground are written), it turns :meth:`contains` into one gather per lookup.

        Examples
        --------
        >>> coords = np.array([[0, 0], [0, 1], [1, 1]])
        >>> grid = SparseGrid.from_coords(coords, (2, 2), np.array([1, 2, 2]))
        >>> grid.owner_table().reshape(grid.shape)[1:-1, 1:-1].tolist()
        [[2, 3], [0, 3]]
        >>> SparseGrid.from_coords(coords[[0, 0]], (2, 2), np.array([0, 1])).owner_table() is None
        True
        """
        if self._owners is None:
            dtype = np.min_scalar_type(self.blocks)
            table: np.ndarray | None = None
            if self.block_size * dtype.itemsize <= OWNER_TABLE_MAX_BYTES:
                block, local = np.divmod(self.idx, self.block_size)
                owner = (block + 1).astype(dtype)
                table = np.zeros(self.block_size, dtype=dtype)
                table[local] = owner
                if not np.array_equal(table[local], owner):  # two blocks share a voxel
                    table = None
            self._owners = (table,)
        return self._owners[0]

    def position(self, query: IntArray) -> IntArray:
        """Position in ``idx`` of each padded flat index of `query` (all must be foreground)."""
        return cast(IntArray, np.searchsorted(self.idx, query))

    def surface_flags(self) -> BoolArray:
        """For each foreground voxel: does it have a 6- (2D: 4-) neighbour outside the mask?"""
        inside = np.ones(self.idx.size, dtype=bool)
        if self.idx.size == 0:
            return inside
        # along the last axis (step 1) the sorted indices themselves tell: no lookup needed
        run_on = np.diff(self.idx) == 1
        inside[:-1] &= run_on
        inside[1:] &= run_on
        inside[[0, -1]] = False
        owners = self.owner_table() if self.blocks > 1 else None
        if owners is not None:  # the neighbours of a voxel lie in its own block
            block, local = np.divmod(self.idx, self.block_size)
            owner = (block + 1).astype(owners.dtype)
            for step in self.strides[:-1]:
                inside &= owners[local + step] == owner
                inside &= owners[local - step] == owner
            return ~inside
        for step in self.strides[:-1]:
            inside &= self.contains(self.idx + step)
            inside &= self.contains(self.idx - step)
        return ~inside

    def surface(self) -> IntArray:
        """Flat indices of the surface voxels (:func:`evaluator.metrics.surface.surface_mask`)."""
        return self.idx[self.surface_flags()]

    def outer(self) -> IntArray:
        """Flat indices of the background voxels with a 6- (2D: 4-) neighbour in the mask."""
        near = np.concatenate([self.idx + sgn * step for step in self.strides for sgn in (1, -1)])
        return np.unique(near[~self.contains(near)])

    def grid_coords(self, flat_idx: IntArray) -> IntArray:
        """Unpadded voxel coordinates ``(n, ndim)`` (int64) of padded flat indices."""
        out = np.empty((flat_idx.size, len(self.shape)), dtype=np.int64)
        rest = np.asarray(flat_idx, dtype=np.int64)
        for axis in range(len(self.shape) - 1, -1, -1):  # the block number is what remains
            rest, digit = np.divmod(rest, self.shape[axis])
            np.subtract(digit, 1, out=out[:, axis])
        return out

    def unpadded_flat(self, flat_idx: IntArray) -> IntArray:
        """C-order flat indices in the unpadded image of padded flat indices."""
        return cast(
            IntArray, np.ravel_multi_index(tuple(self.grid_coords(flat_idx).T), self.image_shape)
        )

    def coords_mm(self, flat_idx: IntArray, spacing: Spacing) -> FloatArray:
        """Voxel-centre coordinates (mm) of flat indices; shape ``(n, ndim)``, with one more
        column (the block, far apart) when the grid holds several blocks."""
        mm = self.grid_coords(flat_idx).astype(np.float64) * np.asarray(spacing, np.float64)
        if self.blocks == 1:
            return mm
        far = 2.0 * image_diagonal_mm(self.shape, spacing) + 1.0
        block = (flat_idx // self.block_size).astype(np.float64) * far
        return np.concatenate((mm, block[:, None]), axis=1)

    def dense(self) -> BoolArray:
        """The unpadded mask as a dense boolean array."""
        out = np.zeros(self.image_shape, dtype=bool)
        out.ravel()[self.unpadded_flat(self.idx)] = True
        return out

    def components(self, connectivity: int) -> tuple[IntArray, int]:
        """Component number (1..n, raster order) of every voxel of ``idx``, and n (cached).

        Computed by :func:`label_sparse` on first use for each connectivity.
        """
        if connectivity not in self._components:
            self._components[connectivity] = label_sparse(self, connectivity)
        return self._components[connectivity]

    def memo(self, key: tuple[Any, ...], make: Callable[[], _T]) -> _T:
        """``make()``, computed once per `key` for this grid and kept with it.

        Lets metric families that meet the same grid in one call (the Boundary IoU band of
        the surface metrics and of the CC-Metrics, say) share a result. The value is shared:
        callers must not modify it.

        Examples
        --------
        >>> grid = SparseGrid.from_mask(np.array([[1, 0, 1]], bool))
        >>> calls = []
        >>> grid.memo(("size",), lambda: calls.append(1) or grid.idx.size)
        2
        >>> grid.memo(("size",), lambda: calls.append(1) or grid.idx.size), len(calls)
        (2, 1)
        """
        if key not in self._memo:
            self._memo[key] = make()
        return cast(_T, self._memo[key])

    def cached_components(self) -> tuple[IntArray, int] | None:
        """A labelling :meth:`components` has already computed, without computing one.

        Returns
        -------
        tuple of (numpy.ndarray of int64, int) or None
            ``(labels, n)`` of the first connectivity labelled so far (labels of shape
            ``(m,)``, one per voxel of ``idx``); ``None`` when nothing is cached yet.

        Examples
        --------
        >>> grid = SparseGrid.from_mask(np.array([[1, 0, 1]], bool))
        >>> grid.cached_components() is None
        True
        >>> _ = grid.components(8)
        >>> labels, n = grid.cached_components()
        >>> labels.tolist(), n
        ([1, 2], 2)
        """
        return next(iter(self._components.values()), None)


# ---------------------------------------------------------------------------------------------
# component labelling
# ---------------------------------------------------------------------------------------------


def _row_links(grid: SparseGrid, connectivity: int | None) -> list[tuple[int, int]]:
    """(flat step to a later neighbouring row, reach along the last axis) of a connectivity.

    Rows are lines along the last axis; two runs in rows ``step`` apart are connected when
    their intervals, widened by ``reach`` (0 or 1) voxels, overlap.
    """
    struct = structure(len(grid.shape), connectivity)
    links: dict[int, int] = {}
    for offset in np.argwhere(struct) - 1:
        step = int(np.dot(offset[:-1], grid.strides[:-1]))
        if step > 0:
            links[step] = max(links.get(step, 0), abs(int(offset[-1])))
    return sorted(links.items())


def label_sparse(grid: SparseGrid, connectivity: int | None = None) -> tuple[IntArray, int]:
    """Connected components of a sparsely stored mask, numbered as ``scipy.ndimage.label``.

    Works on runs (maximal lines of consecutive voxels along the last axis): runs in
    neighbouring rows whose intervals overlap (widened by one voxel where the connectivity
    allows diagonal steps) are joined with binary searches in the sorted run starts and ends,
    ``scipy.sparse.csgraph.connected_components`` labels the run graph, and components are
    renumbered ``1..n`` in raster (C) order of their first voxel. Cost: O(m + r log r) for m
    foreground voxels in r runs, independent of the image size.

    Parameters
    ----------
    grid : SparseGrid
        The mask (sorted flat indices in its padded grid).
    connectivity : {4, 8} in 2D, {6, 18, 26} in 3D, optional
        Default 26 in 3D, 8 in 2D.

    Returns
    -------
    labels : numpy.ndarray of int64, shape (m,)
        Component number of each voxel of ``grid.idx``.
    n : int
        Number of components.

    Raises
    ------
    MetricInputError
        The connectivity does not fit the number of dimensions.

    Examples
    --------
    >>> m = np.array([[0, 1, 0, 0], [0, 0, 0, 1], [1, 1, 0, 1]], bool)
    >>> labels, n = label_sparse(SparseGrid.from_mask(m))
    >>> labels.tolist(), n
    ([1, 2, 3, 3, 2], 3)
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    links = _row_links(grid, connectivity)
    idx = grid.idx
    m = int(idx.size)
    if m == 0:
        return np.zeros(0, dtype=np.int64), 0
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    first = np.concatenate(([0], breaks))  # position in idx of each run's first voxel
    starts = idx[first]
    ends = idx[np.concatenate((breaks - 1, [m - 1]))]
    n_runs = int(starts.size)
    sources: list[IntArray] = []
    targets: list[IntArray] = []
    for step, reach in links:
        lo = np.searchsorted(ends, starts + step - reach)  # first run ending at or after lo
        hi = np.searchsorted(starts, ends + step + reach, side="right")  # past the last one
        count = np.maximum(hi - lo, 0)
        if not count.any():
            continue
        src = np.repeat(np.arange(n_runs), count)
        within = np.arange(src.size) - np.repeat(np.cumsum(count) - count, count)
        sources.append(src)
        targets.append(np.repeat(lo, count) + within)
    if sources:
        src_all = np.concatenate(sources)
        graph = coo_matrix(
            (np.ones(src_all.size, dtype=np.int8), (src_all, np.concatenate(targets))),
            shape=(n_runs, n_runs),
        )
        n, raw = connected_components(graph, directed=False)
    else:
        n, raw = n_runs, np.arange(n_runs)
    # Renumber in raster order of each component's first run (runs are sorted).
    first_run = np.full(n, n_runs, dtype=np.int64)
    np.minimum.at(first_run, raw, np.arange(n_runs, dtype=np.int64))
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(first_run, kind="stable")] = np.arange(1, n + 1)
    return np.repeat(rank[raw], np.diff(np.concatenate((first, [m])))), int(n)


@dataclass(frozen=True)
class Components:
    """Connected components of a mask, stored sparsely (voxel coordinates only).

    Components are numbered ``1..n`` in raster (C) order of their first voxel, exactly as
    ``scipy.ndimage.label`` numbers them.

    Attributes
    ----------
    shape : tuple of int
        Shape of the labelled image.
    coords : numpy.ndarray of int64, shape (n_voxels, ndim)
        Foreground voxels, grouped by component (component 1 first), raster order within one.
    offsets : numpy.ndarray of int64, shape (n + 1,)
        Component ``k`` owns ``coords[offsets[k - 1]:offsets[k]]``.
    surface_coords : numpy.ndarray of int64, shape (n_surface, ndim)
        Surface voxels (6-/4-connected erosion, zero border;
        :func:`evaluator.metrics.surface.surface_mask`) of all components; empty unless
        requested.
    surface_labels : numpy.ndarray of int64, shape (n_surface,)
        Component number of each surface voxel.
    """

    shape: tuple[int, ...]
    coords: IntArray
    offsets: IntArray
    surface_coords: IntArray
    surface_labels: IntArray

    @property
    def n(self) -> int:
        """Number of components."""
        return int(self.offsets.size - 1)

    @property
    def sizes(self) -> IntArray:
        """Voxel count of each component, shape ``(n,)``."""
        return np.diff(self.offsets)

    @property
    def labels(self) -> IntArray:
        """Component number of each voxel of :attr:`coords`, shape ``(n_voxels,)``."""
        return np.repeat(np.arange(1, self.n + 1, dtype=np.int64), self.sizes)

    def voxels(self, k: int) -> IntArray:
        """Coordinates of component `k` (1-based), shape ``(size_k, ndim)``."""
        return self.coords[self.offsets[k - 1] : self.offsets[k]]


def grid_components(
    grid: SparseGrid, connectivity: int | None = None, *, surfaces: bool = False
) -> Components:
    """:class:`Components` of a sparsely stored mask (labelling shared via the grid's cache).

    Examples
    --------
    >>> m = np.zeros((3, 5), bool); m[0, 0] = m[2, 2:5] = True
    >>> grid_components(SparseGrid.from_mask(m)).sizes.tolist()
    [1, 3]
    """
    ndim = len(grid.shape)
    conn = default_connectivity(ndim) if connectivity is None else int(connectivity)
    labels, n = grid.components(conn)
    order = np.argsort(labels, kind="stable")
    offsets = np.concatenate(([0], np.cumsum(np.bincount(labels, minlength=n + 1)[1:])))
    coords = grid.grid_coords(grid.idx[order])
    if surfaces:
        flags = grid.surface_flags()
        surf_coords = grid.grid_coords(grid.idx[flags])
        surf_labels = labels[flags]
    else:
        surf_coords = np.zeros((0, ndim), dtype=np.int64)
        surf_labels = np.zeros(0, dtype=np.int64)
    return Components(grid.image_shape, coords, offsets.astype(np.int64), surf_coords, surf_labels)


def sparse_components(
    mask: BoolArray, *, connectivity: int | None = None, surfaces: bool = False
) -> Components:
    """Label the connected components of `mask` from its foreground voxels only.

    The cost follows the objects rather than the image size (one pass to find the foreground,
    then :func:`label_sparse`). The numbering equals ``scipy.ndimage.label`` with the same
    connectivity.

    Parameters
    ----------
    mask : numpy.ndarray of bool
        2D ``(y, x)`` or 3D ``(z, y, x)`` mask.
    connectivity : {4, 8} in 2D, {6, 18, 26} in 3D, optional
        Default 26 in 3D, 8 in 2D.
    surfaces : bool
        Also collect the surface voxels of every component.

    Returns
    -------
    Components

    Examples
    --------
    >>> m = np.array([[0, 1, 0, 0], [0, 0, 0, 1], [1, 1, 0, 1]], bool)
    >>> c = sparse_components(m)
    >>> c.n, c.sizes.tolist(), c.voxels(2).tolist()
    (3, [1, 2, 2], [[1, 3], [2, 3]])
    """
    structure(mask.ndim, connectivity)  # validates the connectivity, even for an empty mask
    return grid_components(SparseGrid.from_mask(mask), connectivity, surfaces=surfaces)
