"""Standard metrics, CC-Metrics, lesion/instance metrics and COCO mask AP.

The registry (:data:`METRICS`, :data:`EDGE_CASES`) is pure data and imported eagerly;
:func:`compute_metrics` and :class:`CaseMetrics` are loaded on first use, so importing the package
for the registry alone does not import scipy.

Examples
--------
>>> from evaluator.metrics import METRICS
>>> METRICS["hd95"].unit, METRICS["hd95"].higher_is_better
('mm', False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evaluator.metrics.registry import EDGE_CASES, METRICS, VOXEL_METRICS, EdgeCase, MetricSpec

if TYPE_CHECKING:
    from evaluator.metrics.api import CaseMetrics, compute_metrics

__all__ = [
    "EDGE_CASES",
    "METRICS",
    "VOXEL_METRICS",
    "CaseMetrics",
    "EdgeCase",
    "MetricSpec",
    "compute_metrics",
]


def __getattr__(name: str) -> Any:
    if name in ("CaseMetrics", "compute_metrics"):
        from evaluator.metrics import api

        return getattr(api, name)
    raise AttributeError(f"module 'evaluator.metrics' has no attribute {name!r}")
