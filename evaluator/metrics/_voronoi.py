"""The exact nearest-component (generalized Voronoi) assignment of CC-Metrics, computed sparsely.

CC-Metrics need, for every prediction voxel, the reference component whose voxels are nearest
(Algorithm 2 of the CC-Metrics chapter: one Euclidean feature transform of the reference, then
the component label at the nearest feature). A full-volume feature transform costs seconds and
gigabytes on a CT volume; the label is only needed where the prediction has voxels. This module
computes it there alone, and breaks ties exactly as ``scipy.ndimage.distance_transform_edt``
does, so the result equals Algorithm 2 voxel for voxel.

The tie rule of scipy's feature transform (Maurer et al. 2003, ``ni_morphology.c``:
``_ComputeFT`` / ``_VoronoiFT``) follows from its structure: it runs one pass along axis 0, then
along axis 1 over the partial results, and so on up to the last axis; within a pass, on equal
squared distances it keeps the candidate of the lower coordinate along that axis, and a candidate
is only dropped from the lower envelope when it is strictly worse everywhere. Among all features
at the minimal squared distance it therefore returns the one with the smallest last-axis
coordinate, then the smallest coordinate along the axis before it, and so on, i.e. the smallest
Fortran-order flat index. Squared distances are compared as scipy computes them in float64:
``sum over axes j in order of ((f_j - x_j) * s_j) ** 2``.

The nearest reference voxel of a voxel outside the reference is always a surface voxel (an
interior voxel has a face neighbour that is strictly closer), so the search runs on the
reference surface only: a KD-tree in millimetres finds the candidates, those within a relative
band of 1e-9 of the nearest distance are recomputed with scipy's arithmetic, and the rule above
picks one.

Many points (a false-positive slab of millions of voxels) are first assigned block by block:
the points are grouped into boxes of a few millimetres; for a box with centre ``c`` and
half-diagonal ``r``, every nearest seed of every point in the box lies within ``d1 + 2 r`` of
``c`` (``d1``: the distance from ``c`` to its nearest seed; triangle inequality), so if all seeds
in that ball belong to one component, each point of the box gets that component, ties included.
Boxes that fail the test are tried again with smaller boxes; the points left over take the
per-point path above. The result is the same, only the number of KD-tree queries changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial import cKDTree

from evaluator.errors import MetricInputError
from evaluator.typing import BoolArray, FloatArray, IntArray

__all__ = ["BLOCK_MIN_POINTS", "flat_coords", "nearest_component"]

#: Relative width of the band of KD-tree distances treated as possible ties.
_TIE_BAND = 1e-9
#: Candidates fetched per ambiguous voxel before falling back to a radius query.
_K_TIES = 16
#: Points assigned per KD-tree query batch.
_CHUNK = 1 << 20
#: From this many points on, boxes of points are assigned at once where that is certain.
BLOCK_MIN_POINTS = 50_000
#: Fewest points of a box for the box assignment to try it.
_BOX_MIN_FILL = 8
#: Box edge lengths (mm) tried in turn by the box assignment.
_BLOCK_EDGES_MM = (32.0, 16.0, 8.0, 4.0)


def flat_coords(flat: IntArray, shape: Sequence[int]) -> IntArray:
    """Coordinates ``(m, ndim)`` (int32) of C-order flat indices, one axis at a time.

    Equals ``np.stack(np.unravel_index(flat, shape), axis=1)`` with a third of its peak memory.

    Examples
    --------
    >>> flat_coords(np.array([0, 5, 11]), (3, 4)).tolist()
    [[0, 0], [1, 1], [2, 3]]
    """
    out = np.empty((flat.size, len(shape)), dtype=np.int32)
    stride = 1
    for axis in range(len(shape) - 1, -1, -1):
        out[:, axis] = (flat // stride) % shape[axis]
        stride *= int(shape[axis])
    return out


def _scipy_sq_distance(cand: IntArray, points: IntArray, spacing: Sequence[float]) -> np.ndarray:
    """Squared distances computed exactly as scipy's feature transform does (float64, axis order).

    `cand` has shape ``(m, k, ndim)``, `points` ``(m, ndim)``; returns ``(m, k)``.
    """
    acc = np.zeros(cand.shape[:2], dtype=np.float64)
    for j, s in enumerate(spacing):
        t = (cand[:, :, j] - points[:, None, j]).astype(np.float64) * float(s)
        acc = acc + t * t
    return acc


def _resolve(
    points: IntArray,
    cand_idx: IntArray,
    valid: BoolArray,
    seeds: IntArray,
    seed_keys: IntArray,
    spacing: Sequence[float],
) -> IntArray:
    """Index into `seeds` of scipy's choice among the valid candidates of each point."""
    safe = np.where(valid, cand_idx, 0)
    d2 = _scipy_sq_distance(seeds[safe], points, spacing)
    d2[~valid] = np.inf
    tied = d2 == d2.min(axis=1, keepdims=True)
    keys = np.where(tied, seed_keys[safe], np.iinfo(np.int64).max)
    return np.asarray(safe[np.arange(safe.shape[0]), keys.argmin(axis=1)])


def nearest_component(
    points: IntArray,
    seeds: IntArray,
    seed_labels: IntArray,
    *,
    spacing: Sequence[float],
    shape: Sequence[int],
) -> IntArray:
    """Label of the nearest seed voxel of each point, with scipy's feature-transform tie rule.

    Parameters
    ----------
    points : numpy.ndarray of int, shape (m, ndim)
        Voxel coordinates to assign (typically prediction voxels outside the reference).
    seeds : numpy.ndarray of int, shape (n, ndim), n >= 1
        Candidate voxels (the reference surface voxels suffice for points outside the reference).
    seed_labels : numpy.ndarray of int, shape (n,)
        Component number of each seed.
    spacing : sequence of float
        Distance weights per axis (mm; ones for voxel units), as scipy's ``sampling``.
    shape : sequence of int
        Image shape (orders seeds for the tie rule).

    Returns
    -------
    numpy.ndarray of int64, shape (m,)
        ``seed_labels`` of the seed scipy's ``distance_transform_edt(..., return_indices=True)``
        would return for each point.

    Examples
    --------
    >>> seeds = np.array([[0, 0], [0, 4]]); pts = np.array([[0, 1], [0, 2], [0, 3]])
    >>> nearest_component(pts, seeds, np.array([1, 2]), spacing=(1.0, 1.0), shape=(1, 5)).tolist()
    [1, 1, 2]
    """
    m = int(points.shape[0])
    out = np.zeros(m, dtype=np.int64)
    if m == 0:
        return out
    if seeds.shape[0] == 0:
        raise MetricInputError("nearest_component: no seed voxels to assign points to")
    scale = np.asarray(spacing, dtype=np.float64)
    tree = cKDTree(seeds.astype(np.float64) * scale, leafsize=32)
    todo: IntArray = np.arange(m)
    if m >= BLOCK_MIN_POINTS:
        todo = _assign_blocks(out, points, tree, seed_labels, scale, shape)
    # Seeds ordered for the tie rule: smallest Fortran-order flat index wins.
    keys = np.ravel_multi_index(tuple(seeds.T), tuple(shape), order="F").astype(np.int64)
    for lo in range(0, todo.size, _CHUNK):  # bounded memory for very large predictions
        part = todo[lo : lo + _CHUNK]
        out[part] = seed_labels[_nearest_seed(tree, points[part], seeds, keys, spacing)]
    return out


def _assign_blocks(
    out: IntArray,
    points: IntArray,
    tree: cKDTree,
    seed_labels: IntArray,
    scale: FloatArray,
    shape: Sequence[int],
) -> IntArray:
    """Assign the points of every box whose seeds near enough share one label (module notes).

    Writes the labels of the assigned points into `out` and returns the indices of the points
    left over, for the per-point path. Box edges per level: about :data:`_BLOCK_EDGES_MM` mm,
    a power of two in voxels along each axis.
    """
    seeds_mm = np.asarray(tree.data)
    size = np.asarray(shape, dtype=np.int64)
    # A box is at most about 1.5 edge_mm along each axis, its centre at most one box outside
    # the image: every ball radius below is under extent + 4 * edge_mm * ndim.
    extent = float(np.linalg.norm(size * scale)) + 4.0 * max(_BLOCK_EDGES_MM) * size.size
    far = 2.0 * extent + 1.0  # labels this far apart: a ball never reaches another label
    labelled = cKDTree(np.column_stack((seeds_mm, seed_labels * far)), leafsize=32)
    todo = np.arange(points.shape[0])
    for edge_mm in _BLOCK_EDGES_MM:
        edge = np.maximum(1, 2 ** np.rint(np.log2(edge_mm / scale))).astype(np.int64)
        if todo.size < BLOCK_MIN_POINTS or int(edge.prod()) < 8:
            break
        counts = size // edge + 1
        block = np.zeros(todo.size, dtype=np.int64)
        for axis in range(size.size):
            block = block * counts[axis] + points[todo, axis] // edge[axis]
        # a box costs three queries: only boxes holding more points than that are tried
        occupied = np.flatnonzero(np.bincount(block, minlength=int(counts.prod())) >= _BOX_MIN_FILL)
        if occupied.size == 0:
            continue
        corner = np.stack(np.unravel_index(occupied, tuple(counts)), axis=1) * edge
        centre = (corner + (edge - 1) / 2.0) * scale
        radius = 0.5 * float(np.linalg.norm((edge - 1) * scale))
        dist, nearest = tree.query(centre, k=1)
        label = seed_labels[nearest]
        ball = (dist + 2.0 * radius) * (1.0 + _TIE_BAND) + 1e-9
        every = tree.query_ball_point(centre, ball, return_length=True)
        same = labelled.query_ball_point(
            np.column_stack((centre, label * far)), ball, return_length=True
        )
        block_label = np.zeros(int(counts.prod()), dtype=np.int64)  # 0: not certified
        block_label[occupied] = np.where(every == same, label, 0)
        got = block_label[block]
        done = got > 0
        out[todo[done]] = got[done]
        todo = todo[~done]
    return todo


def _nearest_seed(
    tree: cKDTree, points: IntArray, seeds: IntArray, keys: IntArray, spacing: Sequence[float]
) -> IntArray:
    """Index into `seeds` of scipy's nearest feature for each point (see the module notes)."""
    n_seeds = seeds.shape[0]
    pts_mm = points.astype(np.float64) * np.asarray(spacing, dtype=np.float64)
    if n_seeds == 1:
        return np.zeros(points.shape[0], dtype=np.int64)
    dist, idx = tree.query(pts_mm, k=2)
    out = np.asarray(idx[:, 0], dtype=np.int64)
    band = dist[:, 0] * (1.0 + _TIE_BAND) + 1e-12
    amb = np.flatnonzero(dist[:, 1] <= band)
    if amb.size == 0:
        return out
    kk = min(_K_TIES, n_seeds)
    dist_k, idx_k = tree.query(pts_mm[amb], k=kk)
    band_k = band[amb][:, None]
    valid = dist_k <= band_k
    out[amb] = _resolve(points[amb], idx_k, valid, seeds, keys, spacing)
    if kk < n_seeds:
        for row in np.flatnonzero(valid[:, -1]):
            # More than kk candidates in the band: take every seed within it.
            within = np.asarray(tree.query_ball_point(pts_mm[amb[row]], r=float(band_k[row, 0])))
            everything = np.ones((1, within.size), dtype=bool)
            pick = _resolve(points[amb[row]][None], within[None], everything, seeds, keys, spacing)
            out[amb[row]] = pick[0]
    return out
