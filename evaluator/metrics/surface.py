"""Surface metrics from one surface-distance computation: HD, HD95, ASSD, NSD, Boundary IoU.

Definitions follow MONAI 1.6 (``monai.metrics``), in millimetres with the given voxel spacing:

* the **surface** of a mask is the set of its voxels removed by one binary erosion with the
  6-connected cross (4-connected in 2D), with zero padding at the image border, so an object
  touching the border has its border voxels on its surface (MONAI ``get_mask_edges``);
* **surface distances** are, for every surface voxel of one mask, the Euclidean distance (mm,
  voxel centres scaled by the spacing) to the nearest surface voxel of the other mask (MONAI
  ``get_surface_distance``, KD-tree path);
* ``hd`` is the larger of the two directed maxima, ``hd95`` the larger of the two directed 95th
  percentiles (linear interpolation, as ``torch.quantile``/``numpy.percentile``), ``assd`` the mean
  of both directions' distances pooled (MONAI ``compute_average_surface_distance(symmetric=True)``),
  ``nsd`` the share of both surfaces' voxels within the tolerance of the other surface (MONAI
  ``compute_surface_dice`` without sub-voxels);
* ``boundary_iou`` follows Cheng et al. 2021 (see :func:`boundary_iou`).

Everything runs on the bounding box of ``pred | ref``, so small objects in large volumes are
cheap. Empty masks follow :data:`evaluator.metrics.registry.EDGE_CASES`. Arrays are ``(z, y, x)``
or ``(y, x)``; `spacing` is in the same axis order, in millimetres.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from scipy.spatial import cKDTree

from evaluator.errors import MetricInputError, UnknownMetricError
from evaluator.metrics.overlap import check_pair
from evaluator.metrics.registry import edge_value
from evaluator.typing import BoolArray, FloatArray, IntArray, Spacing

__all__ = [
    "BAND_KDTREE_MAX_VOXELS",
    "BOUNDARY_DILATION_RATIO",
    "SURFACE_METRICS",
    "SurfaceDistances",
    "assd",
    "boundary_band",
    "boundary_iou",
    "bounding_box",
    "check_spacing",
    "hd",
    "hd95",
    "image_diagonal_mm",
    "nsd",
    "surface_distances",
    "surface_mask",
    "surface_metrics",
]

#: Boundary IoU band width as a fraction of the image diagonal (Cheng et al. 2021).
BOUNDARY_DILATION_RATIO = 0.02


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


def _padded_strides(shape: Sequence[int]) -> list[int]:
    return [int(np.prod(shape[a + 1 :], dtype=np.int64)) for a in range(len(shape))]


class _Padded:
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
    """

    def __init__(self, idx: IntArray, shape: tuple[int, ...], blocks: int = 1) -> None:
        self.shape = shape  # padded shape
        self.idx = np.asarray(idx, dtype=np.int64)
        self.strides = _padded_strides(shape)
        self.blocks = int(blocks)
        self.block_size = int(np.prod(shape, dtype=np.int64))
        self._components: dict[int, tuple[IntArray, int]] = {}
        self._table: BoolArray | None = None

    @classmethod
    def from_mask(cls, mask: BoolArray) -> _Padded:
        """Grid of a boolean mask (one pass over the mask)."""
        return cls.from_flat(np.flatnonzero(mask), mask.shape)

    @classmethod
    def from_flat(cls, flat: IntArray, shape: Sequence[int]) -> _Padded:
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
    ) -> _Padded:
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
        if self.blocks > 1:  # a table of every block could be large: binary search instead
            if self.idx.size == 0:
                return np.zeros(np.shape(query), dtype=bool)
            pos = np.minimum(np.searchsorted(self.idx, query), self.idx.size - 1)
            return cast(BoolArray, self.idx[pos] == query)
        if self._table is None:
            self._table = np.zeros(self.block_size, dtype=bool)
            self._table[self.idx] = True
        return cast(BoolArray, self._table[query])

    def position(self, query: IntArray) -> IntArray:
        """Position in ``idx`` of each padded flat index of `query` (all must be foreground)."""
        return cast(IntArray, np.searchsorted(self.idx, query))

    def surface_flags(self) -> BoolArray:
        """For each foreground voxel: does it have a 6- (2D: 4-) neighbour outside the mask?"""
        inside = np.ones(self.idx.size, dtype=bool)
        for step in self.strides:
            inside &= self.contains(self.idx + step)
            inside &= self.contains(self.idx - step)
        return ~inside

    def surface(self) -> IntArray:
        """Flat indices of the surface voxels (:func:`surface_mask`)."""
        return self.idx[self.surface_flags()]

    def outer(self) -> IntArray:
        """Flat indices of the background voxels with a 6- (2D: 4-) neighbour in the mask."""
        near = np.concatenate([self.idx + sgn * step for step in self.strides for sgn in (1, -1)])
        return np.unique(near[~self.contains(near)])

    def grid_coords(self, flat_idx: IntArray) -> IntArray:
        """Unpadded voxel coordinates ``(n, ndim)`` (int64) of padded flat indices."""
        out = np.empty((flat_idx.size, len(self.shape)), dtype=np.int64)
        for axis, step in enumerate(self.strides):
            out[:, axis] = (flat_idx // step) % self.shape[axis] - 1
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
        """Component number (1..n, raster order) of every voxel of ``idx``, and n (cached)."""
        if connectivity not in self._components:
            from evaluator.metrics._voronoi import label_sparse

            self._components[connectivity] = label_sparse(self, connectivity)
        return self._components[connectivity]


def surface_mask(mask: Any) -> BoolArray:
    """Surface voxels: `mask` minus its erosion by the 6- (2D: 4-) connected cross.

    The image border counts as background (zero padding), as in MONAI's ``get_mask_edges``.

    Parameters
    ----------
    mask : array_like
        2D or 3D mask (see :func:`evaluator.metrics.overlap.as_mask`).

    Returns
    -------
    numpy.ndarray of bool
        Same shape as `mask`; empty where `mask` is empty.

    Examples
    --------
    >>> m = np.zeros((5, 5), bool); m[1:4, 1:4] = True
    >>> int(surface_mask(m).sum())   # a 3x3 square: all but its centre
    8
    >>> int(surface_mask(np.ones((3, 3))).sum())   # touching the border: the border is background
    8
    """
    m, _ = check_pair(mask, mask)
    out = np.zeros(m.shape, dtype=bool)
    grid = _Padded.from_mask(m)
    out.ravel()[grid.unpadded_flat(grid.surface())] = True
    return out


def _directed(src: IntArray, dst: IntArray, grid: _Padded, spacing: Spacing) -> FloatArray:
    """Distance (mm) from every voxel of `src` to the nearest voxel of `dst`.

    Both are sorted flat indices of the same padded grid, `dst` non-empty. Voxels in both sets
    get 0 without a query.
    """
    out = np.zeros(src.size, dtype=np.float64)
    todo = ~np.isin(src, dst, assume_unique=True)
    if todo.any():
        tree = cKDTree(grid.coords_mm(dst, spacing), leafsize=32)
        out[todo] = tree.query(grid.coords_mm(src[todo], spacing), k=1)[0]
    return out


@dataclass(frozen=True)
class SurfaceDistances:
    """Directed surface distances of a prediction/reference pair, in millimetres.

    Attributes
    ----------
    pred_to_ref : numpy.ndarray of float64, shape (n_pred,)
        For each prediction surface voxel, the distance to the nearest reference surface voxel;
        ``inf`` for every voxel when the reference is empty.
    ref_to_pred : numpy.ndarray of float64, shape (n_ref,)
        The same from the reference surface to the prediction surface.
    """

    pred_to_ref: FloatArray
    ref_to_pred: FloatArray

    @property
    def n_pred(self) -> int:
        """Number of prediction surface voxels."""
        return int(self.pred_to_ref.size)

    @property
    def n_ref(self) -> int:
        """Number of reference surface voxels."""
        return int(self.ref_to_pred.size)

    def _edge(self, name: str) -> float | None:
        return edge_value(name, self.n_pred == 0, self.n_ref == 0)

    def hd(self) -> float:
        """Hausdorff distance (mm): the larger directed maximum."""
        edge = self._edge("hd")
        if edge is not None:
            return edge
        return float(max(self.pred_to_ref.max(), self.ref_to_pred.max()))

    def hd95(self) -> float:
        """95th-percentile Hausdorff distance (mm): the larger directed 95th percentile."""
        edge = self._edge("hd95")
        if edge is not None:
            return edge
        return float(
            max(np.percentile(self.pred_to_ref, 95.0), np.percentile(self.ref_to_pred, 95.0))
        )

    def assd(self) -> float:
        """Average symmetric surface distance (mm): mean of both directions pooled."""
        edge = self._edge("assd")
        if edge is not None:
            return edge
        total = float(self.pred_to_ref.sum() + self.ref_to_pred.sum())
        return total / (self.n_pred + self.n_ref)

    def nsd(self, tolerance_mm: float) -> float:
        """Normalised surface distance (surface Dice) at `tolerance_mm` (distances <= tolerance)."""
        if not (math.isfinite(tolerance_mm) and tolerance_mm >= 0):
            raise MetricInputError(f"NSD tolerance {tolerance_mm!r} mm must be finite and >= 0")
        edge = self._edge("nsd")
        if edge is not None:
            return edge
        good = np.count_nonzero(self.pred_to_ref <= tolerance_mm) + np.count_nonzero(
            self.ref_to_pred <= tolerance_mm
        )
        return float(good) / (self.n_pred + self.n_ref)


def _pair_grids(pred: Any, ref: Any, spacing: Sequence[float]) -> tuple[_Padded, _Padded, Spacing]:
    """Validate a pair and store both masks sparsely on the padded image grid."""
    p, r = check_pair(pred, ref)
    sp = check_spacing(spacing, p.ndim)
    return _Padded.from_mask(p), _Padded.from_mask(r), sp


def _distances(grid_p: _Padded, grid_r: _Padded, sp: Spacing) -> SurfaceDistances:
    surf_p, surf_r = grid_p.surface(), grid_r.surface()
    if surf_p.size == 0 or surf_r.size == 0:
        return SurfaceDistances(np.full(surf_p.size, np.inf), np.full(surf_r.size, np.inf))
    return SurfaceDistances(
        _directed(surf_p, surf_r, grid_p, sp), _directed(surf_r, surf_p, grid_p, sp)
    )


def surface_distances(pred: Any, ref: Any, *, spacing: Sequence[float]) -> SurfaceDistances:
    """Directed surface distances between two masks, in millimetres.

    Parameters
    ----------
    pred, ref : array_like
        Masks of equal 2D/3D shape.
    spacing : sequence of float
        Voxel size per array axis, mm.

    Returns
    -------
    SurfaceDistances
        Distance arrays in ``np.argwhere`` order of each surface (within the crop of
        ``pred | ref``); a direction towards an empty mask holds ``inf`` values.

    Examples
    --------
    >>> a = np.zeros((1, 6), bool); a[0, 1] = True
    >>> b = np.zeros((1, 6), bool); b[0, 4] = True
    >>> surface_distances(a, b, spacing=(1.0, 0.5)).pred_to_ref.tolist()
    [1.5]
    """
    grid_p, grid_r, sp = _pair_grids(pred, ref, spacing)
    return _distances(grid_p, grid_r, sp)


def hd(pred: Any, ref: Any, *, spacing: Sequence[float]) -> float:
    """Hausdorff distance between the mask surfaces, mm.

    Returns 0.0 if both masks are empty, ``inf`` if exactly one is.

    Examples
    --------
    >>> ref = np.zeros((3, 8), bool); ref[1, 2:5] = True
    >>> hd(np.roll(ref, 1, axis=1), ref, spacing=(1.0, 0.7))   # shifted by one voxel along x
    0.7
    """
    return surface_distances(pred, ref, spacing=spacing).hd()


def hd95(pred: Any, ref: Any, *, spacing: Sequence[float]) -> float:
    """95th-percentile Hausdorff distance, mm.

    The larger of the two directed 95th percentiles, each by linear interpolation between
    order statistics (``numpy.percentile``'s default, as ``torch.quantile`` in MONAI), not the
    95th percentile of the pooled distances. Empty masks as :func:`hd`.

    Examples
    --------
    >>> ref = np.zeros((3, 8), bool); ref[1, 2:5] = True
    >>> hd95(ref, ref, spacing=(1.0, 1.0))
    0.0
    """
    return surface_distances(pred, ref, spacing=spacing).hd95()


def assd(pred: Any, ref: Any, *, spacing: Sequence[float]) -> float:
    """Average symmetric surface distance, mm.

    The mean over the distances of both directions pooled (a direction with more surface voxels
    weighs more), as MONAI's ``compute_average_surface_distance(symmetric=True)``; empty masks
    as :func:`hd`.

    Examples
    --------
    >>> a = np.zeros((1, 6), bool); a[0, 1] = True
    >>> b = np.zeros((1, 6), bool); b[0, 4] = True
    >>> assd(a, b, spacing=(1.0, 2.0))
    6.0
    """
    return surface_distances(pred, ref, spacing=spacing).assd()


def nsd(pred: Any, ref: Any, *, spacing: Sequence[float], tolerance_mm: float) -> float:
    """Normalised surface distance (surface Dice) at `tolerance_mm`, in [0, 1].

    Share of the surface voxels of both masks whose distance to the other surface is at most
    `tolerance_mm`. Returns 1.0 if both masks are empty, 0.0 if exactly one is.

    Examples
    --------
    >>> a = np.zeros((1, 6), bool); a[0, 1:3] = True
    >>> b = np.zeros((1, 6), bool); b[0, 2:4] = True
    >>> nsd(a, b, spacing=(1.0, 1.0), tolerance_mm=0.5)
    0.5
    """
    return surface_distances(pred, ref, spacing=spacing).nsd(tolerance_mm)


def image_diagonal_mm(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """Length of the image diagonal, ``sqrt(sum((n_i * s_i)**2))``, mm.

    Examples
    --------
    >>> image_diagonal_mm((3, 4), (1.0, 1.0))
    5.0
    """
    return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing, strict=True))))


#: Masks with up to this many voxels get their boundary band from KD-tree queries; larger ones
#: from one Euclidean distance transform per connected component (see :func:`_band`).
BAND_KDTREE_MAX_VOXELS = 100_000


def _ray_bound(grid: _Padded, spacing: Spacing) -> FloatArray:
    """An upper bound (mm) of each mask voxel's distance to the complement.

    Walking from a voxel of component A along axis j, the first voxel not in A lies at most one
    step beyond A's bounding box, and it is in the complement (a face neighbour of A in the
    mask would belong to A). Without a cached labelling the bounding box of the mask (of each
    block) is used (the same argument with A = the mask).
    """
    coords = grid.grid_coords(grid.idx)
    labels = next(iter(grid._components.values()), None)
    if grid.blocks > 1:  # each block is a mask of its own
        labels = (grid.idx // grid.block_size, grid.blocks - 1)
    if labels is None:
        lo = coords.min(axis=0)[None, :]
        hi = coords.max(axis=0)[None, :]
    else:
        lab, n = labels
        lo = np.empty_like(coords)
        hi = np.empty_like(coords)
        for axis in range(coords.shape[1]):  # one-dimensional ufunc.at is the fast path
            low = np.full(n + 1, np.iinfo(np.int64).max, dtype=np.int64)
            high = np.full(n + 1, -1, dtype=np.int64)
            np.minimum.at(low, lab, coords[:, axis])
            np.maximum.at(high, lab, coords[:, axis])
            lo[:, axis], hi[:, axis] = low[lab], high[lab]
    steps = np.minimum(coords - lo, hi - coords) + 1
    return cast(FloatArray, (steps * np.asarray(spacing, dtype=np.float64)).min(axis=1))


def _band(grid: _Padded, spacing: Spacing, width_mm: float) -> IntArray:
    """Flat indices (sorted) of the boundary band of a padded mask (see :func:`boundary_band`).

    The distance from a mask voxel ``v`` of component A to the complement is attained at a
    background voxel with a face neighbour in A, inside A's bounding box plus one voxel (a step
    from a nearer candidate towards ``v`` is strictly closer, and clamping onto that box never
    increases a distance). Small masks therefore query a KD-tree over those background voxels
    (up to `width_mm` only); large ones run ``scipy.ndimage.distance_transform_edt`` on each
    component's padded bounding box, so the cost follows the objects, not the image.
    """
    if grid.idx.size == 0:
        return grid.idx
    if grid.idx.size <= BAND_KDTREE_MAX_VOXELS:
        keep = grid.surface_flags() | (_ray_bound(grid, spacing) <= width_mm)
        todo = np.flatnonzero(~keep)
        if todo.size:
            tree = cKDTree(grid.coords_mm(grid.outer(), spacing), leafsize=32)
            bound = float(np.nextafter(width_mm, np.inf))
            query = grid.coords_mm(grid.idx[todo], spacing)
            keep[todo] = tree.query(query, k=1, distance_upper_bound=bound)[0] <= width_mm
        return grid.idx[keep]
    from scipy import ndimage

    labels, n = grid.components(26 if len(grid.shape) == 3 else 8)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(1, n + 2))
    coords = grid.grid_coords(grid.idx)
    parts = [grid.surface()]
    for k in range(n):
        members = order[bounds[k] : bounds[k + 1]]
        pts = coords[members]
        lo = pts.min(axis=0) - 1
        component = np.zeros(tuple((pts.max(axis=0) - lo + 2).tolist()), dtype=bool)
        local = tuple((pts - lo).T)
        component[local] = True
        dist = ndimage.distance_transform_edt(component, sampling=spacing)
        parts.append(grid.idx[members[dist[local] <= width_mm]])
    return np.unique(np.concatenate(parts))


def boundary_band(mask: BoolArray, *, spacing: Spacing, width_mm: float) -> BoolArray:
    """Boundary band of `mask`: its surface plus its voxels within `width_mm` of the complement.

    Distances are Euclidean between voxel centres, mm; everything outside the array counts as
    complement. `mask` must be boolean; `spacing` already validated.

    Examples
    --------
    >>> m = np.zeros((7, 7), bool); m[1:6, 1:6] = True
    >>> int(boundary_band(m, spacing=(1.0, 1.0), width_mm=2.0).sum())   # all but the centre
    24
    """
    grid = _Padded.from_mask(mask)
    out = np.zeros(mask.shape, dtype=bool)
    out.ravel()[grid.unpadded_flat(_band(grid, spacing, width_mm))] = True
    return out


def boundary_iou(
    pred: Any,
    ref: Any,
    *,
    spacing: Sequence[float],
    diagonal_mm: float | None = None,
    dilation_ratio: float = BOUNDARY_DILATION_RATIO,
) -> float:
    """Boundary IoU (Cheng et al. 2021), in [0, 1], in millimetres.

    The boundary band of a mask M is ``{v in M : EDT(v) <= d} ∪ surface(M)``, where EDT is the
    Euclidean distance (mm, with `spacing`) from the voxel centre to the nearest voxel centre not
    in M (voxels outside the image count as not in M, as Cheng's zero padding), ``d =
    dilation_ratio * diagonal_mm`` and ``surface`` is :func:`surface_mask` (so the band is never
    thinner than one voxel, as Cheng's ``max(dilation, 1)``). The result is
    ``|B(P) ∩ B(R)| / |B(P) ∪ B(R)|``.

    Parameters
    ----------
    pred, ref : array_like
        Masks of equal 2D/3D shape.
    spacing : sequence of float
        Voxel size per axis, mm.
    diagonal_mm : float, optional
        Image diagonal, mm; default: that of `pred`'s grid (:func:`image_diagonal_mm`). Pass the
        full image's diagonal when calling on a crop.
    dilation_ratio : float
        Band width as a fraction of the diagonal (0.02 in the paper).

    Returns
    -------
    float
        1.0 if both masks are empty, 0.0 if exactly one is.

    Examples
    --------
    >>> a = np.zeros((10, 10), bool); a[2:6, 2:6] = True
    >>> boundary_iou(a, a, spacing=(1.0, 1.0))
    1.0
    >>> b = np.roll(a, 1, axis=0)
    >>> round(boundary_iou(a, b, spacing=(1.0, 1.0)), 4)   # 1-voxel rings, 6 of 18 shared
    0.3333
    """
    grid_p, grid_r, sp = _pair_grids(pred, ref, spacing)
    shape = tuple(np.shape(pred))
    diag = image_diagonal_mm(shape, sp) if diagonal_mm is None else float(diagonal_mm)
    return _boundary_iou(grid_p, grid_r, sp, dilation_ratio * diag)


def _boundary_iou(grid_p: _Padded, grid_r: _Padded, sp: Spacing, width_mm: float) -> float:
    edge = edge_value("boundary_iou", grid_p.idx.size == 0, grid_r.idx.size == 0)
    if edge is not None:
        return edge
    band_p = _band(grid_p, sp, width_mm)
    band_r = _band(grid_r, sp, width_mm)
    inter = int(np.isin(band_p, band_r, assume_unique=True).sum())
    return inter / (band_p.size + band_r.size - inter)


#: Metrics of :func:`surface_metrics`.
SURFACE_METRICS: tuple[str, ...] = ("hd", "hd95", "assd", "nsd", "boundary_iou")


def surface_metrics(
    pred: Any,
    ref: Any,
    *,
    spacing: Sequence[float],
    metrics: Sequence[str] = SURFACE_METRICS,
    tolerance_mm: float = 1.0,
    diagonal_mm: float | None = None,
    dilation_ratio: float = BOUNDARY_DILATION_RATIO,
) -> dict[str, float]:
    """Any set of surface metrics of one pair, sharing one crop, one padding and one surface.

    Parameters
    ----------
    pred, ref : array_like
        Masks of equal 2D/3D shape.
    spacing : sequence of float
        Voxel size per array axis, mm.
    metrics : sequence of str
        Names from :data:`SURFACE_METRICS`.
    tolerance_mm : float
        NSD tolerance, mm.
    diagonal_mm, dilation_ratio
        As :func:`boundary_iou`.

    Returns
    -------
    dict of str to float
        Same values as the single-metric functions, in the requested order.

    Raises
    ------
    UnknownMetricError
        A name not in :data:`SURFACE_METRICS`.

    Examples
    --------
    >>> a = np.zeros((1, 6), bool); a[0, 1] = True
    >>> b = np.zeros((1, 6), bool); b[0, 4] = True
    >>> surface_metrics(a, b, spacing=(1.0, 2.0), metrics=["hd", "nsd"], tolerance_mm=6.0)
    {'hd': 6.0, 'nsd': 1.0}
    """
    unknown = [m for m in metrics if m not in SURFACE_METRICS]
    if unknown:
        raise UnknownMetricError(f"{unknown} are not surface metrics {SURFACE_METRICS}")
    grid_p, grid_r, sp = _pair_grids(pred, ref, spacing)
    diag = image_diagonal_mm(np.shape(pred), sp) if diagonal_mm is None else float(diagonal_mm)
    return _surface_values(grid_p, grid_r, sp, metrics, tolerance_mm, dilation_ratio * diag)


def _surface_values(
    grid_p: _Padded,
    grid_r: _Padded,
    spacing: Spacing,
    metrics: Sequence[str],
    tolerance_mm: float,
    band_mm: float,
) -> dict[str, float]:
    """:func:`surface_metrics` on sparse grids (validated names; `band_mm`: Boundary IoU width)."""
    out: dict[str, float] = {}
    dists = _distances(grid_p, grid_r, spacing) if set(metrics) - {"boundary_iou"} else None
    for name in metrics:
        if name == "boundary_iou":
            out[name] = _boundary_iou(grid_p, grid_r, spacing, band_mm)
        elif dists is not None:
            out[name] = dists.nsd(tolerance_mm) if name == "nsd" else getattr(dists, name)()
    return out
