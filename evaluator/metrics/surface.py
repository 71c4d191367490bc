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
from evaluator.metrics._grid import SparseGrid, bounding_box, check_spacing, image_diagonal_mm
from evaluator.metrics.overlap import check_pair
from evaluator.metrics.registry import edge_value
from evaluator.typing import BoolArray, FloatArray, IntArray, Spacing

__all__ = [
    "BAND_KDTREE_MAX_VOXELS",
    "BOUNDARY_DILATION_RATIO",
    "SURFACE_METRICS",
    "SegmentStatistics",
    "SurfaceDistances",
    "assd",
    "band_indices",
    "boundary_band",
    "boundary_iou",
    "bounding_box",
    "check_spacing",
    "directed_distances",
    "grid_surface_distances",
    "hd",
    "hd95",
    "image_diagonal_mm",
    "nsd",
    "segment_statistics",
    "surface_distances",
    "surface_mask",
    "surface_metrics",
]

#: Boundary IoU band width as a fraction of the image diagonal (Cheng et al. 2021).
BOUNDARY_DILATION_RATIO = 0.02


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
    grid = SparseGrid.from_mask(m)
    out.ravel()[grid.unpadded_flat(grid.surface())] = True
    return out


def directed_distances(
    src: IntArray, dst: IntArray, grid: SparseGrid, spacing: Spacing
) -> FloatArray:
    """Distance (mm) from every voxel of `src` to the nearest voxel of `dst`.

    The directed half of :func:`surface_distances`, on voxel sets of a sparse grid; with grids
    of several blocks (:meth:`~evaluator.metrics._grid.SparseGrid.from_coords`) every voxel
    only meets voxels of its own block.

    Parameters
    ----------
    src, dst : numpy.ndarray of int64, shape (n,) and (k,)
        Sorted padded flat indices in the grid of `grid` (for surface distances: the
        :meth:`~evaluator.metrics._grid.SparseGrid.surface` of two grids of the same shape);
        `dst` must not be empty.
    grid : SparseGrid
        A grid of that padded shape and block layout (it converts indices to millimetres).
    spacing : tuple of float
        Voxel size per axis, mm (validated).

    Returns
    -------
    numpy.ndarray of float64, shape (n,)
        Euclidean distance between voxel centres, mm; 0 for voxels in both sets (no query).

    Examples
    --------
    >>> from evaluator.metrics._grid import SparseGrid
    >>> a = np.zeros((1, 6), bool); a[0, 1] = True
    >>> b = np.zeros((1, 6), bool); b[0, 4] = True
    >>> grid_a, grid_b = SparseGrid.from_mask(a), SparseGrid.from_mask(b)
    >>> directed_distances(grid_a.idx, grid_b.idx, grid_a, (1.0, 0.5)).tolist()
    [1.5]
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

    def nsd(self, nsd_tolerance_mm: float) -> float:
        """Normalised surface distance (surface Dice): share of distances <= `nsd_tolerance_mm`."""
        if not (math.isfinite(nsd_tolerance_mm) and nsd_tolerance_mm >= 0):
            raise MetricInputError(f"NSD tolerance {nsd_tolerance_mm!r} mm must be finite and >= 0")
        edge = self._edge("nsd")
        if edge is not None:
            return edge
        good = np.count_nonzero(self.pred_to_ref <= nsd_tolerance_mm) + np.count_nonzero(
            self.ref_to_pred <= nsd_tolerance_mm
        )
        return float(good) / (self.n_pred + self.n_ref)


@dataclass(frozen=True)
class SegmentStatistics:
    """Per-segment summaries of one array of directed surface distances (mm).

    Segment ``k`` is ``distances[bounds[k]:bounds[k + 1]]`` (one component's surface voxels);
    each field holds one value per requested segment, computed on the segment's slice exactly as
    :class:`SurfaceDistances` computes it on a whole array (bit for bit).

    Attributes
    ----------
    count : numpy.ndarray of int64
        Number of surface voxels.
    maximum : numpy.ndarray of float64
        Largest distance, mm (``max``).
    p95 : numpy.ndarray of float64
        95th percentile, mm (``numpy.percentile``, linear interpolation).
    total : numpy.ndarray of float64
        Sum of the distances, mm (``ndarray.sum``, numpy's pairwise summation).
    within : numpy.ndarray of int64
        Number of distances at most the tolerance.
    """

    count: IntArray
    maximum: FloatArray
    p95: FloatArray
    total: FloatArray
    within: IntArray


def segment_statistics(
    distances: FloatArray, bounds: IntArray, segments: IntArray, *, nsd_tolerance_mm: float
) -> SegmentStatistics:
    """Max, 95th percentile, sum and count within a tolerance of many segments at once.

    Segments of equal length are gathered into one 2-D array and reduced along its rows, so the
    cost is one pass over the distances plus one call per distinct segment length (never one per
    segment), and every value equals the one-dimensional reduction of the segment's slice.

    Parameters
    ----------
    distances : numpy.ndarray of float64, shape (n,)
        Distances (mm), segment after segment.
    bounds : numpy.ndarray of int, shape (n_segments + 1,)
        Segment ``k`` is ``distances[bounds[k]:bounds[k + 1]]``.
    segments : numpy.ndarray of int, shape (m,)
        The segments to summarise; each must be non-empty.
    nsd_tolerance_mm : float
        Tolerance of :attr:`SegmentStatistics.within`, mm.

    Returns
    -------
    SegmentStatistics
        One value per entry of `segments`, in its order.

    Examples
    --------
    >>> d = np.array([1.0, 3.0, 0.5, 2.0, 2.0, 4.0])
    >>> s = segment_statistics(d, np.array([0, 2, 6]), np.array([1, 0]), nsd_tolerance_mm=2.0)
    >>> s.count.tolist(), s.maximum.tolist(), s.total.tolist(), s.within.tolist()
    ([4, 2], [4.0, 3.0], [8.5, 4.0], [3, 1])
    """
    m = int(segments.size)
    starts = np.asarray(bounds, dtype=np.int64)[segments]
    lengths = np.asarray(bounds, dtype=np.int64)[segments + 1] - starts
    out = SegmentStatistics(
        lengths,
        np.empty(m, dtype=np.float64),
        np.empty(m, dtype=np.float64),
        np.empty(m, dtype=np.float64),
        np.empty(m, dtype=np.int64),
    )
    if m == 0:
        return out
    if int(lengths.min()) < 1:
        raise MetricInputError("segment_statistics: every requested segment must be non-empty")
    order = np.argsort(lengths, kind="stable")
    cuts = np.flatnonzero(np.diff(lengths[order])) + 1
    for rows in np.split(order, cuts):
        length = int(lengths[rows[0]])
        block = distances[starts[rows][:, None] + np.arange(length)]
        out.maximum[rows] = block.max(axis=1)
        out.p95[rows] = np.percentile(block, 95.0, axis=1)
        out.total[rows] = block.sum(axis=1)
        out.within[rows] = np.count_nonzero(block <= nsd_tolerance_mm, axis=1)
    return out


def _pair_grids(
    pred: Any, ref: Any, spacing: Sequence[float]
) -> tuple[SparseGrid, SparseGrid, Spacing]:
    """Validate a pair and store both masks sparsely on the padded image grid."""
    p, r = check_pair(pred, ref)
    sp = check_spacing(spacing, p.ndim)
    return SparseGrid.from_mask(p), SparseGrid.from_mask(r), sp


def grid_surface_distances(
    grid_p: SparseGrid, grid_r: SparseGrid, spacing: Spacing
) -> SurfaceDistances:
    """:func:`surface_distances` of two sparsely stored masks of one padded grid (one block each).

    Computed once per pair of grid objects and spacing, and kept with `grid_p`
    (:meth:`~evaluator.metrics._grid.SparseGrid.memo`): the surface metrics and the CC-Metrics
    of a single-component reference share it. `spacing` must be validated; do not modify the
    returned arrays.

    Examples
    --------
    >>> a = np.zeros((1, 6), bool); a[0, 1] = True
    >>> b = np.zeros((1, 6), bool); b[0, 4] = True
    >>> grid_a, grid_b = SparseGrid.from_mask(a), SparseGrid.from_mask(b)
    >>> grid_surface_distances(grid_a, grid_b, (1.0, 0.5)).ref_to_pred.tolist()
    [1.5]
    """
    # The entry holds grid_r itself, so its id cannot be reused while the entry exists.
    key = ("surface_distances", id(grid_r), tuple(spacing))
    return grid_p.memo(key, lambda: (grid_r, _distances(grid_p, grid_r, spacing)))[1]


def _distances(grid_p: SparseGrid, grid_r: SparseGrid, sp: Spacing) -> SurfaceDistances:
    surf_p, surf_r = grid_p.surface(), grid_r.surface()
    if surf_p.size == 0 or surf_r.size == 0:
        return SurfaceDistances(np.full(surf_p.size, np.inf), np.full(surf_r.size, np.inf))
    return SurfaceDistances(
        directed_distances(surf_p, surf_r, grid_p, sp),
        directed_distances(surf_r, surf_p, grid_p, sp),
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


def nsd(pred: Any, ref: Any, *, spacing: Sequence[float], nsd_tolerance_mm: float) -> float:
    """Normalised surface distance (surface Dice) at `nsd_tolerance_mm`, in [0, 1].

    Share of the surface voxels of both masks whose distance to the other surface is at most
    `nsd_tolerance_mm` (required: the tolerance is a choice, like the spacing). Returns 1.0 if
    both masks are empty, 0.0 if exactly one is.

    Examples
    --------
    >>> a = np.zeros((1, 6), bool); a[0, 1:3] = True
    >>> b = np.zeros((1, 6), bool); b[0, 2:4] = True
    >>> nsd(a, b, spacing=(1.0, 1.0), nsd_tolerance_mm=0.5)
    0.5
    """
    return surface_distances(pred, ref, spacing=spacing).nsd(nsd_tolerance_mm)


#: Masks with up to this many voxels get their boundary band from KD-tree queries; larger ones
#: from one Euclidean distance transform per connected component (see :func:`band_indices`).
BAND_KDTREE_MAX_VOXELS = 100_000


def _ray_bound(
    grid: SparseGrid, spacing: Spacing, labels: tuple[IntArray, int] | None = None
) -> FloatArray:
    """An upper bound (mm) of each mask voxel's distance to the complement.

    Walking from a voxel of component A along axis j, the first voxel not in A lies at most one
    step beyond A's bounding box, and it is in the complement (a face neighbour of A in the
    mask would belong to A). `labels` (component number per voxel of ``grid.idx``, and their
    number) gives the components; without it a cached labelling, else the bounding box of the
    mask (of each block) is used (the same argument with A = the mask). The boxes come from the
    runs of the mask (consecutive flat indices: one row, one component), not from every voxel.
    """
    idx = grid.idx
    if idx.size == 0:
        return np.zeros(0, dtype=np.float64)
    # Runs (consecutive flat indices) lie in one row of one component: every axis but the
    # last is constant along a run, so only the last axis needs per-voxel work.
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    first = np.concatenate(([0], breaks))
    last = np.concatenate((breaks - 1, [idx.size - 1]))
    run_lo, run_hi = grid.grid_coords(idx[first]), grid.grid_coords(idx[last])
    if labels is None:
        labels = grid.cached_components()
        if grid.blocks > 1:  # each block is a mask of its own
            labels = (idx // grid.block_size, grid.blocks - 1)
    if labels is None:
        lo = np.broadcast_to(run_lo.min(axis=0), run_lo.shape)
        hi = np.broadcast_to(run_hi.max(axis=0), run_hi.shape)
    else:
        lab, n = labels
        run_label = lab[first]
        low = np.full((n + 1, run_lo.shape[1]), np.iinfo(np.int64).max, dtype=np.int64)
        high = np.full((n + 1, run_lo.shape[1]), -1, dtype=np.int64)
        for axis in range(run_lo.shape[1]):  # one-dimensional ufunc.at is the fast path
            column_lo, column_hi = low[:, axis].copy(), high[:, axis].copy()
            np.minimum.at(column_lo, run_label, run_lo[:, axis])
            np.maximum.at(column_hi, run_label, run_hi[:, axis])
            low[:, axis], high[:, axis] = column_lo, column_hi
        lo, hi = low[run_label], high[run_label]
    scale = np.asarray(spacing, dtype=np.float64)
    # per run: the bound along the axes but the last (inf in 1-D)
    across = ((np.minimum(run_lo - lo, hi - run_lo)[:, :-1] + 1) * scale[:-1]).min(
        axis=1, initial=np.inf
    )
    lengths = last - first + 1
    x = idx - np.repeat(idx[first] - run_lo[:, -1], lengths)  # last-axis coordinate per voxel
    along = np.minimum(x - np.repeat(lo[:, -1], lengths), np.repeat(hi[:, -1], lengths) - x)
    return cast(FloatArray, np.minimum(np.repeat(across, lengths), (along + 1) * scale[-1]))


def _edt_at(mask: BoolArray, points: IntArray, spacing: Spacing) -> FloatArray:
    """``scipy.ndimage.distance_transform_edt(mask, sampling=spacing)`` at `points` only.

    The feature transform runs on the whole of `mask`, but distances are only computed at the
    points ``(m, ndim)``, with scipy's own arithmetic (float64 coordinate differences times the
    spacing, squared, summed in axis order, square root), so every value equals scipy's bit for
    bit at a fraction of the cost (scipy computes distances for every voxel in numpy).
    """
    from scipy import ndimage

    feature = ndimage.distance_transform_edt(
        mask, sampling=spacing, return_distances=False, return_indices=True
    )
    at = tuple(points.T)
    total = np.zeros(points.shape[0], dtype=np.float64)
    for axis, step in enumerate(spacing):
        delta = (feature[axis][at] - points[:, axis]).astype(np.float64) * float(step)
        total = total + delta * delta
    return cast(FloatArray, np.sqrt(total))


def band_indices(grid: SparseGrid, spacing: Spacing, width_mm: float) -> IntArray:
    """Flat indices (sorted) of the boundary band of a sparsely stored mask.

    The band of :func:`boundary_band` (the surface plus the voxels within `width_mm` of the
    complement), as padded flat indices of `grid`; each block of a multi-block grid is a mask
    of its own.

    The distance from a mask voxel ``v`` of component A to the complement is attained at a
    background voxel with a face neighbour in A, inside A's bounding box plus one voxel (a step
    from a nearer candidate towards ``v`` is strictly closer, and clamping onto that box never
    increases a distance). Small masks therefore query a KD-tree over those background voxels
    (up to `width_mm` only); large ones run ``scipy.ndimage.distance_transform_edt`` on each
    component's padded bounding box, so the cost follows the objects, not the image. A
    labelling cached on `grid` (:meth:`~evaluator.metrics._grid.SparseGrid.cached_components`)
    tightens the bound that spares most KD-tree queries. The band is kept with `grid`
    (:meth:`~evaluator.metrics._grid.SparseGrid.memo`), so the surface metrics and the
    CC-Metrics of one call compute it once; do not modify the returned array.

    Parameters
    ----------
    grid : SparseGrid
        The mask.
    spacing : tuple of float
        Voxel size per axis, mm (validated).
    width_mm : float
        Band width, mm.

    Returns
    -------
    numpy.ndarray of int64
        Sorted subset of ``grid.idx``; empty for an empty mask.

    Examples
    --------
    >>> from evaluator.metrics._grid import SparseGrid
    >>> m = np.zeros((7, 7), bool); m[1:6, 1:6] = True
    >>> grid = SparseGrid.from_mask(m)
    >>> band = band_indices(grid, (1.0, 1.0), 2.0)
    >>> band.size, grid.grid_coords(np.setdiff1d(grid.idx, band)).tolist()   # all but the centre
    (24, [[3, 3]])
    """
    return grid.memo(
        ("band", tuple(spacing), float(width_mm)), lambda: _band(grid, spacing, width_mm)
    )


def _band(grid: SparseGrid, spacing: Spacing, width_mm: float) -> IntArray:
    """:func:`band_indices`, computed."""
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
    labels, n = grid.components(26 if len(grid.shape) == 3 else 8)
    keep = grid.surface_flags() | (_ray_bound(grid, spacing, (labels, n)) <= width_mm)
    # Only components with a voxel the bound leaves open need a distance transform, so many
    # small components (speckle) cost one vectorised pass, not one transform each.
    open_voxels = np.flatnonzero(~keep)
    if open_voxels.size == 0:
        return grid.idx[keep]
    deep = np.unique(labels[open_voxels])
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(1, n + 2))
    coords = grid.grid_coords(grid.idx)
    for k in deep.tolist():
        members = order[bounds[k - 1] : bounds[k]]
        pts = coords[members]
        lo = pts.min(axis=0) - 1
        component = np.zeros(tuple((pts.max(axis=0) - lo + 2).tolist()), dtype=bool)
        component[tuple((pts - lo).T)] = True
        todo = members[~keep[members]]
        keep[todo] = _edt_at(component, coords[todo] - lo, spacing) <= width_mm
    return grid.idx[keep]


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
    grid = SparseGrid.from_mask(mask)
    out = np.zeros(mask.shape, dtype=bool)
    out.ravel()[grid.unpadded_flat(band_indices(grid, spacing, width_mm))] = True
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


def _boundary_iou(grid_p: SparseGrid, grid_r: SparseGrid, sp: Spacing, width_mm: float) -> float:
    edge = edge_value("boundary_iou", grid_p.idx.size == 0, grid_r.idx.size == 0)
    if edge is not None:
        return edge
    band_p = band_indices(grid_p, sp, width_mm)
    band_r = band_indices(grid_r, sp, width_mm)
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
    nsd_tolerance_mm: float = 1.0,
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
    nsd_tolerance_mm : float
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
    >>> surface_metrics(a, b, spacing=(1.0, 2.0), metrics=["hd", "nsd"], nsd_tolerance_mm=6.0)
    {'hd': 6.0, 'nsd': 1.0}
    """
    unknown = [m for m in metrics if m not in SURFACE_METRICS]
    if unknown:
        raise UnknownMetricError(f"{unknown} are not surface metrics {SURFACE_METRICS}")
    grid_p, grid_r, sp = _pair_grids(pred, ref, spacing)
    diag = image_diagonal_mm(np.shape(pred), sp) if diagonal_mm is None else float(diagonal_mm)
    return _surface_values(grid_p, grid_r, sp, metrics, nsd_tolerance_mm, dilation_ratio * diag)


def _surface_values(
    grid_p: SparseGrid,
    grid_r: SparseGrid,
    spacing: Spacing,
    metrics: Sequence[str],
    nsd_tolerance_mm: float,
    band_mm: float,
) -> dict[str, float]:
    """:func:`surface_metrics` on sparse grids (validated names; `band_mm`: Boundary IoU width)."""
    out: dict[str, float] = {}
    dists = None
    if set(metrics) - {"boundary_iou"}:
        dists = grid_surface_distances(grid_p, grid_r, spacing)
    for name in metrics:
        if name == "boundary_iou":
            out[name] = _boundary_iou(grid_p, grid_r, spacing, band_mm)
        elif dists is not None:
            out[name] = dists.nsd(nsd_tolerance_mm) if name == "nsd" else getattr(dists, name)()
    return out
