"""Topology metrics from one skeleton per mask: clDice, topology precision and sensitivity.

Definitions follow Shit et al., "clDice - a Novel Topology-Preserving Loss Function for Tubular
Structure Segmentation" (CVPR 2021), with ``S(X)`` the skeleton of mask ``X``, ``P`` the
prediction and ``L`` the reference:

* ``topology_precision`` ``Tprec = |S(P) ∩ L| / |S(P)|``: the share of the predicted centreline
  that lies inside the reference;
* ``topology_sensitivity`` ``Tsens = |S(L) ∩ P| / |S(L)|``: the share of the reference
  centreline that the prediction covers;
* ``cldice`` ``2 Tprec Tsens / (Tprec + Tsens)``, their harmonic mean (0 when both are 0).

The paper's reference code names the two ratios the other way round; ccbench follows the
paper's equations. Skeletons are scikit-image's :func:`skimage.morphology.skeletonize` with its
default method: Zhang-Suen thinning in 2D, Lee's 3D thinning in 3D. The voxel spacing plays no
part (the ratios count voxels). Each mask is skeletonized on its own bounding box, which gives
the skeleton of the whole image voxel for voxel (both thinnings treat the outside of the image
as background), so small objects in large volumes are cheap.

Lee's thinning deletes some tiny 3D objects entirely (a 2x2x2 cube has an empty skeleton). When
the skeleton of a non-empty mask is empty, the mask itself is its skeleton
(:func:`skeleton`); so a skeleton is empty exactly when its mask is, and empty masks follow
:data:`evaluator.metrics.registry.EDGE_CASES` (1 if both are empty, 0 if one is). Arrays are
``(z, y, x)`` or ``(y, x)``, boolean or integer with 0 = background.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

import numpy as np

from evaluator.errors import UnknownMetricError
from evaluator.metrics._grid import SparseGrid
from evaluator.metrics.overlap import as_mask, check_pair
from evaluator.metrics.registry import edge_value
from evaluator.typing import BoolArray, IntArray

__all__ = [
    "TOPOLOGY_FORMULAS",
    "TOPOLOGY_METRICS",
    "SkeletonCounts",
    "cldice",
    "grid_skeleton",
    "grid_skeleton_counts",
    "skeleton",
    "skeleton_counts",
    "topology_metrics",
    "topology_precision",
    "topology_sensitivity",
    "topology_value",
]


class SkeletonCounts(NamedTuple):
    """Voxel counts of the two skeletons of a prediction/reference pair.

    Attributes
    ----------
    pred_skeleton : int
        ``|S(P)|``, voxels of the prediction's skeleton.
    pred_skeleton_in_ref : int
        ``|S(P) ∩ L|``.
    ref_skeleton : int
        ``|S(L)|``, voxels of the reference's skeleton.
    ref_skeleton_in_pred : int
        ``|S(L) ∩ P|``.
    """

    pred_skeleton: int
    pred_skeleton_in_ref: int
    ref_skeleton: int
    ref_skeleton_in_pred: int

    @property
    def pred_empty(self) -> bool:
        """Whether the prediction is empty (its skeleton is empty exactly then)."""
        return self.pred_skeleton == 0

    @property
    def ref_empty(self) -> bool:
        """Whether the reference is empty (its skeleton is empty exactly then)."""
        return self.ref_skeleton == 0

    @property
    def precision(self) -> float:
        """``Tprec = |S(P) ∩ L| / |S(P)|`` (non-empty prediction)."""
        return self.pred_skeleton_in_ref / self.pred_skeleton

    @property
    def sensitivity(self) -> float:
        """``Tsens = |S(L) ∩ P| / |S(L)|`` (non-empty reference)."""
        return self.ref_skeleton_in_pred / self.ref_skeleton


def _harmonic(precision: float, sensitivity: float) -> float:
    total = precision + sensitivity
    return 0.0 if total == 0 else 2.0 * precision * sensitivity / total


#: Topology metric name -> its formula on :class:`SkeletonCounts` (both masks non-empty); the
#: names are the ``topology`` family of :data:`~evaluator.metrics.registry.METRICS`.
TOPOLOGY_FORMULAS: dict[str, Callable[[SkeletonCounts], float]] = {
    "cldice": lambda c: _harmonic(c.precision, c.sensitivity),
    "topology_precision": lambda c: c.precision,
    "topology_sensitivity": lambda c: c.sensitivity,
}

#: Metrics of :func:`topology_metrics`.
TOPOLOGY_METRICS: tuple[str, ...] = tuple(TOPOLOGY_FORMULAS)


def _skeletonize(mask: BoolArray) -> BoolArray:
    """scikit-image's skeleton of a non-empty mask, or the mask itself if thinning erased it."""
    from skimage.morphology import skeletonize

    skel = np.asarray(skeletonize(mask), dtype=bool)
    return skel if skel.any() else mask


def skeleton(mask: Any) -> BoolArray:
    """The skeleton ``S(X)`` of a mask (one voxel wide centrelines), as the metrics use it.

    Parameters
    ----------
    mask : array_like
        2D ``(y, x)`` or 3D ``(z, y, x)`` mask; non-zero is foreground.

    Returns
    -------
    numpy.ndarray of bool
        Same shape: :func:`skimage.morphology.skeletonize` (Zhang-Suen in 2D, Lee in 3D), or
        the mask itself when thinning leaves nothing of a non-empty mask (tiny 3D blobs).

    Raises
    ------
    MetricInputError
        An invalid mask (see :func:`evaluator.metrics.overlap.as_mask`).

    Examples
    --------
    >>> line = np.zeros((3, 7), bool); line[1, 1:6] = True  # one voxel wide: its own skeleton
    >>> bool((skeleton(line) == line).all())
    True
    >>> bar = np.zeros((5, 9), bool); bar[1:4, 1:8] = True  # 3 x 7 voxels
    >>> skeleton(bar).astype(int)[1:4, 1:8].tolist()  # Zhang-Suen is not symmetric
    [[0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 0]]
    >>> cube = np.zeros((4, 4, 4), bool); cube[1:3, 1:3, 1:3] = True
    >>> int(skeleton(cube).sum())  # Lee's thinning erases it: the cube is its own skeleton
    8
    """
    return grid_skeleton(SparseGrid.from_mask(as_mask(mask))).dense()


def grid_skeleton(grid: SparseGrid) -> SparseGrid:
    """:func:`skeleton` of a sparsely stored mask (one block), on the same padded grid.

    Thinning runs on the mask's bounding box only. Computed once per grid and kept with it
    (:meth:`~evaluator.metrics._grid.SparseGrid.memo`); do not modify the result.

    Examples
    --------
    >>> bar = np.zeros((5, 9), bool); bar[1:4, 1:8] = True
    >>> grid_skeleton(SparseGrid.from_mask(bar)).idx.size
    6
    """
    return grid.memo(("skeleton",), lambda: _grid_skeleton(grid))


def _grid_skeleton(grid: SparseGrid) -> SparseGrid:
    if grid.idx.size == 0:
        return SparseGrid(grid.idx, grid.shape)
    coords = grid.grid_coords(grid.idx)
    lo = coords.min(axis=0)
    crop = np.zeros(tuple((coords.max(axis=0) - lo + 1).tolist()), dtype=bool)
    crop[tuple((coords - lo).T)] = True
    found = cast(IntArray, np.argwhere(_skeletonize(crop)) + lo)
    return SparseGrid.from_coords(found, grid.image_shape)


def grid_skeleton_counts(grid_p: SparseGrid, grid_r: SparseGrid) -> SkeletonCounts:
    """:func:`skeleton_counts` of two sparsely stored masks of one padded grid (one block each).

    Examples
    --------
    >>> ref = np.zeros((3, 9), bool); ref[1, 1:8] = True
    >>> pred = ref.copy(); pred[1, 4] = False
    >>> grid_skeleton_counts(SparseGrid.from_mask(pred), SparseGrid.from_mask(ref))
    SkeletonCounts(pred_skeleton=6, pred_skeleton_in_ref=6, ref_skeleton=7, ref_skeleton_in_pred=6)
    """
    skel_p = grid_skeleton(grid_p).idx
    skel_r = grid_skeleton(grid_r).idx
    p_in_r = int(np.count_nonzero(grid_r.contains(skel_p))) if grid_r.idx.size else 0
    r_in_p = int(np.count_nonzero(grid_p.contains(skel_r))) if grid_p.idx.size else 0
    return SkeletonCounts(int(skel_p.size), p_in_r, int(skel_r.size), r_in_p)


def skeleton_counts(pred: Any, ref: Any) -> SkeletonCounts:
    """Skeleton sizes and overlaps of a prediction/reference pair (:class:`SkeletonCounts`).

    Parameters
    ----------
    pred, ref : array_like
        Masks of equal 2D/3D shape (see :func:`evaluator.metrics.overlap.as_mask`).

    Returns
    -------
    SkeletonCounts
        ``|S(P)|``, ``|S(P) ∩ L|``, ``|S(L)|`` and ``|S(L) ∩ P|``, voxels.

    Raises
    ------
    MetricInputError
        Shapes differ, or either mask is invalid.

    Examples
    --------
    >>> ref = np.zeros((3, 9), bool); ref[1, 1:8] = True
    >>> skeleton_counts(np.roll(ref, 1, axis=1), ref)  # shifted by one voxel
    SkeletonCounts(pred_skeleton=7, pred_skeleton_in_ref=6, ref_skeleton=7, ref_skeleton_in_pred=6)
    """
    p, r = check_pair(pred, ref)
    return grid_skeleton_counts(SparseGrid.from_mask(p), SparseGrid.from_mask(r))


def topology_value(name: str, counts: SkeletonCounts) -> float:
    """Value of topology metric `name` from skeleton counts, edge cases applied.

    Examples
    --------
    >>> topology_value("topology_precision", SkeletonCounts(4, 4, 5, 3))
    1.0
    >>> topology_value("cldice", SkeletonCounts(4, 4, 5, 3))
    0.75
    >>> topology_value("cldice", SkeletonCounts(0, 0, 0, 0))
    1.0
    >>> topology_value("dice", SkeletonCounts(1, 1, 1, 1))
    Traceback (most recent call last):
    ...
    evaluator.errors.UnknownMetricError: 'dice' is not a topology metric (known: cldice, topology_precision, topology_sensitivity)
    """
    formula = TOPOLOGY_FORMULAS.get(name)
    if formula is None:
        raise UnknownMetricError(
            f"{name!r} is not a topology metric (known: {', '.join(TOPOLOGY_FORMULAS)})"
        )
    edge = edge_value(name, counts.pred_empty, counts.ref_empty)
    if edge is not None:
        return edge
    return formula(counts)


def topology_metrics(
    pred: Any, ref: Any, *, metrics: Sequence[str] = TOPOLOGY_METRICS
) -> dict[str, float]:
    """Any set of topology metrics of one pair, sharing one skeleton per mask.

    Parameters
    ----------
    pred, ref : array_like
        Masks of equal 2D/3D shape.
    metrics : sequence of str
        Names from :data:`TOPOLOGY_METRICS`.

    Returns
    -------
    dict of str to float
        Same values as the single-metric functions, in the requested order.

    Raises
    ------
    UnknownMetricError
        A name not in :data:`TOPOLOGY_METRICS`.
    MetricInputError
        Shapes differ, or either mask is invalid.

    Examples
    --------
    >>> ref = np.zeros((3, 9), bool); ref[1, 1:8] = True
    >>> pred = ref.copy(); pred[1, 4] = False
    >>> {k: round(v, 4) for k, v in topology_metrics(pred, ref).items()}
    {'cldice': 0.9231, 'topology_precision': 1.0, 'topology_sensitivity': 0.8571}
    """
    unknown = [m for m in metrics if m not in TOPOLOGY_FORMULAS]
    if unknown:
        raise UnknownMetricError(f"{unknown} are not topology metrics {TOPOLOGY_METRICS}")
    counts = skeleton_counts(pred, ref)
    return {name: topology_value(name, counts) for name in metrics}


def cldice(pred: Any, ref: Any) -> float:
    """clDice ``2 Tprec Tsens / (Tprec + Tsens)`` (Shit et al. 2021), in [0, 1].

    Parameters
    ----------
    pred, ref : array_like
        Masks of equal 2D/3D shape (see :func:`evaluator.metrics.overlap.as_mask`).

    Returns
    -------
    float
        Harmonic mean of :func:`topology_precision` and :func:`topology_sensitivity` (0 when
        both are 0); 1.0 if both masks are empty, 0.0 if exactly one is.

    Examples
    --------
    >>> ref = np.zeros((3, 9), bool); ref[1, 1:8] = True
    >>> pred = ref.copy(); pred[1, 4] = False  # a one-voxel gap in a straight tube
    >>> round(cldice(pred, ref), 4)  # 2 * 1 * 6/7 / (1 + 6/7) = 12/13
    0.9231
    >>> cldice(np.zeros((2, 2)), np.zeros((2, 2)))
    1.0
    """
    return topology_value("cldice", skeleton_counts(pred, ref))


def topology_precision(pred: Any, ref: Any) -> float:
    """Topology precision ``Tprec = |S(P) ∩ L| / |S(P)|``, in [0, 1].

    Inputs as :func:`cldice`; 1.0 if both masks are empty, 0.0 if exactly one is.

    Examples
    --------
    >>> ref = np.zeros((5, 9), bool); ref[1, 1:8] = True  # a tube, one voxel wide
    >>> pred = ref.copy(); pred[3, 1:5] = True  # and a false 4-voxel branch beside it
    >>> topology_precision(pred, ref), topology_precision(ref, pred)  # 7 / 11, 7 / 7
    (0.6363636363636364, 1.0)
    """
    return topology_value("topology_precision", skeleton_counts(pred, ref))


def topology_sensitivity(pred: Any, ref: Any) -> float:
    """Topology sensitivity ``Tsens = |S(L) ∩ P| / |S(L)|``, in [0, 1].

    Inputs as :func:`cldice`; 1.0 if both masks are empty, 0.0 if exactly one is.

    Examples
    --------
    >>> ref = np.zeros((3, 9), bool); ref[1, 1:8] = True
    >>> pred = ref.copy(); pred[1, 4] = False  # a one-voxel gap: 6 of 7 centreline voxels
    >>> round(topology_sensitivity(pred, ref), 4)
    0.8571
    """
    return topology_value("topology_sensitivity", skeleton_counts(pred, ref))
