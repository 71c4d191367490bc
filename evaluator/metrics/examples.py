"""Two user metrics, as a package of yours would declare them (:mod:`evaluator.metrics.plugins`).

The demo and the README use them to show what ccbench does with a metric it did not know:
``ccbench simulate dataset --metric evaluator.metrics.examples:volume_error_ml`` scores it on every
degraded case, ranks it beside the built-ins and reports which degradations it sees. A package
registers the same functions for every evaluation with an entry point::

    [project.entry-points."ccbench.metrics"]
    volume_error_ml = "evaluator.metrics.examples:volume_error_ml"
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evaluator.metrics.plugins import user_metric
from evaluator.typing import BoolArray

__all__ = ["component_count_error", "volume_error_ml"]


@user_metric(
    name="volume_error_ml",
    unit="ml",
    higher_is_better=False,
    best=0.0,
    worst=float("inf"),
    both_empty=0.0,
    ref_empty=None,
    pred_empty=None,
    description="absolute difference of the predicted and reference volumes",
    title="volume error",
)
def volume_error_ml(pred: BoolArray, ref: BoolArray, *, spacing: Sequence[float]) -> float:
    """``| |P| - |R| |`` in ml (blind to where the voxels are).

    Examples
    --------
    >>> ref = np.zeros((2, 10, 10), bool); ref[0, :5, :2] = True
    >>> volume_error_ml(ref[::-1], ref, spacing=(10.0, 10.0, 10.0))
    0.0
    >>> volume_error_ml(np.zeros_like(ref), ref, spacing=(10.0, 10.0, 10.0))
    10.0
    """
    voxel_ml = float(np.prod(spacing)) / 1000.0
    return abs(int(np.count_nonzero(pred)) - int(np.count_nonzero(ref))) * voxel_ml


@user_metric(
    name="component_count_error",
    unit="count",
    higher_is_better=False,
    best=0.0,
    worst=float("inf"),
    both_empty=0.0,
    ref_empty=None,
    pred_empty=None,
    description="absolute difference of the numbers of connected components (full connectivity)",
    title="component count error",
    needs_spacing=False,
)
def component_count_error(pred: BoolArray, ref: BoolArray, *, spacing: Sequence[float]) -> float:
    """``| #components(P) - #components(R) |`` (blind to their sizes and places).

    Examples
    --------
    >>> ref = np.zeros((1, 5, 5), bool); ref[0, 0, 0] = ref[0, 4, 4] = True
    >>> component_count_error(ref[:, ::-1], ref, spacing=(1.0, 1.0, 1.0))
    0.0
    >>> component_count_error(np.zeros_like(ref), ref, spacing=(1.0, 1.0, 1.0))
    2.0
    """
    from evaluator.metrics.lesion import label_components

    del spacing  # counts do not depend on the voxel size
    return float(abs(label_components(pred)[1] - label_components(ref)[1]))
