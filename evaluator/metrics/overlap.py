"""Overlap metrics from one TP/FP/FN count: Dice and IoU.

All functions take two masks of the same shape (2D ``(y, x)`` or 3D ``(z, y, x)``), boolean or
integer/float with 0 = background (any non-zero value is foreground). Empty inputs follow the
rows of :data:`evaluator.metrics.registry.EDGE_CASES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from evaluator.errors import MetricInputError, UnknownMetricError
from evaluator.metrics.registry import edge_value
from evaluator.typing import BoolArray

__all__ = [
    "OVERLAP_FORMULAS",
    "OverlapCounts",
    "as_mask",
    "check_pair",
    "dice",
    "iou",
    "overlap_counts",
    "overlap_value",
]


def as_mask(array: Any, *, name: str = "mask") -> BoolArray:
    """Validate one mask and return it as a boolean array (no copy if already boolean).

    Parameters
    ----------
    array : array_like
        Boolean, integer or float array with 2 or 3 dimensions; non-zero means foreground.
    name : str
        Used in error messages (``"prediction"``, ``"reference"``).

    Returns
    -------
    numpy.ndarray of bool
        Same shape as `array`.

    Raises
    ------
    MetricInputError
        Wrong number of dimensions, NaN/inf values, or non-integer values in a float array.

    Examples
    --------
    >>> as_mask(np.array([[0, 2], [1, 0]])).tolist()
    [[False, True], [True, False]]
    """
    arr = np.asarray(array)
    if arr.ndim not in (2, 3):
        raise MetricInputError(f"{name}: expected a 2D or 3D array, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise MetricInputError(f"{name}: contains NaN or infinite values")
        if not np.array_equal(arr, np.round(arr)):
            raise MetricInputError(f"{name}: contains non-integer label values")
    elif arr.dtype.kind not in "iu":
        raise MetricInputError(f"{name}: unsupported dtype {arr.dtype} (need bool or integer)")
    return arr != 0


def check_pair(pred: Any, ref: Any) -> tuple[BoolArray, BoolArray]:
    """Validate a prediction/reference pair and return both as boolean masks.

    Raises
    ------
    MetricInputError
        Shapes differ, or either mask is invalid (see :func:`as_mask`).

    Examples
    --------
    >>> p, r = check_pair(np.zeros((2, 2), bool), np.ones((2, 2), int))
    >>> p.dtype, int(r.sum())
    (dtype('bool'), 4)
    """
    p = as_mask(pred, name="prediction")
    r = as_mask(ref, name="reference")
    if p.shape != r.shape:
        raise MetricInputError(f"prediction shape {p.shape} does not match reference {r.shape}")
    return p, r


class OverlapCounts(NamedTuple):
    """Voxel counts of a prediction/reference pair."""

    tp: int
    fp: int
    fn: int

    @property
    def pred_empty(self) -> bool:
        """Whether the prediction has no foreground voxel."""
        return self.tp + self.fp == 0

    @property
    def ref_empty(self) -> bool:
        """Whether the reference has no foreground voxel."""
        return self.tp + self.fn == 0


def overlap_counts(pred: Any, ref: Any) -> OverlapCounts:
    """True-positive, false-positive and false-negative voxel counts.

    Examples
    --------
    >>> overlap_counts(np.array([1, 1, 0, 0])[None], np.array([0, 1, 1, 0])[None])
    OverlapCounts(tp=1, fp=1, fn=1)
    """
    p, r = check_pair(pred, ref)
    n_pred = int(np.count_nonzero(p))
    n_ref = int(np.count_nonzero(r))
    tp = int(np.count_nonzero(p & r)) if n_pred and n_ref else 0
    return OverlapCounts(tp, n_pred - tp, n_ref - tp)


#: Overlap metric name -> its formula on ``(tp, fp, fn)`` voxel counts (non-empty case); the
#: names are the ``overlap`` family of :data:`~evaluator.metrics.registry.METRICS`.
OVERLAP_FORMULAS: dict[str, Callable[[int, int, int], float]] = {
    "dice": lambda tp, fp, fn: 2.0 * tp / (2.0 * tp + fp + fn),
    "iou": lambda tp, fp, fn: tp / (tp + fp + fn),
}


def overlap_value(name: str, counts: OverlapCounts) -> float:
    """Value of overlap metric `name` (``"dice"`` or ``"iou"``) from counts, edge cases applied.

    Examples
    --------
    >>> overlap_value("dice", OverlapCounts(tp=1, fp=1, fn=0))
    0.6666666666666666
    >>> overlap_value("iou", OverlapCounts(0, 0, 0))
    1.0
    >>> overlap_value("hd95", OverlapCounts(1, 0, 0))
    Traceback (most recent call last):
    ...
    evaluator.errors.UnknownMetricError: 'hd95' is not an overlap metric (known: dice, iou)
    """
    formula = OVERLAP_FORMULAS.get(name)
    if formula is None:
        raise UnknownMetricError(
            f"{name!r} is not an overlap metric (known: {', '.join(OVERLAP_FORMULAS)})"
        )
    edge = edge_value(name, counts.pred_empty, counts.ref_empty)
    if edge is not None:
        return edge
    return formula(*counts)


def dice(pred: Any, ref: Any) -> float:
    """Dice coefficient ``2|P∩R| / (|P| + |R|)``, in [0, 1].

    Parameters
    ----------
    pred, ref : array_like
        Masks of equal shape (see :func:`as_mask`).

    Returns
    -------
    float
        1.0 if both masks are empty; 0.0 if exactly one is empty.

    Examples
    --------
    >>> dice(np.array([[1, 1, 0]]), np.array([[0, 1, 1]]))
    0.5
    >>> dice(np.zeros((2, 2)), np.zeros((2, 2)))
    1.0
    """
    return overlap_value("dice", overlap_counts(pred, ref))


def iou(pred: Any, ref: Any) -> float:
    """Intersection over union (Jaccard index) ``|P∩R| / |P∪R|``, in [0, 1].

    Inputs and empty-mask values as :func:`dice`; ``iou = dice / (2 - dice)``.

    Examples
    --------
    >>> round(iou(np.array([[1, 1, 0]]), np.array([[0, 1, 1]])), 4)
    0.3333
    """
    return overlap_value("iou", overlap_counts(pred, ref))
