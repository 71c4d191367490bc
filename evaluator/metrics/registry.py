"""The metric registry: one row per metric name, and the edge-case table, as pure data.

:data:`METRICS` is the single list of metric names that the CLI, the evaluation pipeline and the
leaderboards use (unit, ranking direction, best and worst value). :data:`EDGE_CASES` states, for
every metric, the value returned when both masks are empty, when only the reference is empty and
when only the prediction is empty; each metric function applies its own row, so a direct call and
:func:`evaluator.metrics.api.compute_metrics` give the same answer. A value of ``None`` in the
table means "no special case: the metric's formula is well defined and applies" (counts and
volumes). Importing this module imports nothing heavy and computes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "EDGE_CASES",
    "METRICS",
    "VOXEL_METRICS",
    "EdgeCase",
    "MetricKind",
    "MetricSpec",
    "conventions_markdown",
    "edge_value",
]

MetricKind: TypeAlias = Literal["overlap", "surface", "lesion", "cc", "instance"]

INF = math.inf
NAN = math.nan


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the registry.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"hd95"`` or ``"cc_dice"``.
    unit : str
        ``""`` (dimensionless, in [0, 1]), ``"mm"``, ``"ml"`` or ``"count"``.
    higher_is_better : bool
        Ranking direction.
    needs_spacing : bool
        Whether the value depends on the voxel spacing.
    kind : {"overlap", "surface", "lesion", "cc", "instance"}
        Module family that computes it.
    best, worst : float
        Best and worst possible values (``worst`` is used for failed or missing cases; ``inf``
        for unbounded distances, ``nan`` where no bound exists, e.g. counts).
    description : str
        One-line definition, printed in the docs table.
    """

    name: str
    unit: str
    higher_is_better: bool
    needs_spacing: bool
    kind: MetricKind
    best: float
    worst: float
    description: str


@dataclass(frozen=True)
class EdgeCase:
    """Values of one metric for empty inputs (``None``: the formula applies unchanged).

    Attributes
    ----------
    both_empty : float or None
        Prediction and reference are both empty.
    ref_empty : float or None
        Reference empty, prediction not empty.
    pred_empty : float or None
        Prediction empty, reference not empty.
    """

    both_empty: float | None
    ref_empty: float | None
    pred_empty: float | None


def _spec(
    name: str,
    unit: str,
    higher: bool,
    spacing: bool,
    kind: MetricKind,
    best: float,
    worst: float,
    description: str,
) -> MetricSpec:
    return MetricSpec(name, unit, higher, spacing, kind, best, worst, description)


_ROWS: tuple[tuple[MetricSpec, EdgeCase], ...] = (
    # ---- overlap (evaluator.metrics.overlap) ----
    (
        _spec("dice", "", True, False, "overlap", 1.0, 0.0, "2|P∩R| / (|P|+|R|)"),
        EdgeCase(1.0, 0.0, 0.0),
    ),
    (
        _spec("iou", "", True, False, "overlap", 1.0, 0.0, "|P∩R| / |P∪R| (Jaccard)"),
        EdgeCase(1.0, 0.0, 0.0),
    ),
    # ---- surface (evaluator.metrics.surface) ----
    (
        _spec(
            "hd",
            "mm",
            False,
            True,
            "surface",
            0.0,
            INF,
            "Hausdorff distance: max of both directed maxima of surface-voxel distances",
        ),
        EdgeCase(0.0, INF, INF),
    ),
    (
        _spec(
            "hd95",
            "mm",
            False,
            True,
            "surface",
            0.0,
            INF,
            "max of the two directed 95th percentiles (linear interpolation) of surface distances",
        ),
        EdgeCase(0.0, INF, INF),
    ),
    (
        _spec(
            "assd",
            "mm",
            False,
            True,
            "surface",
            0.0,
            INF,
            "mean of all surface distances of both directions pooled (MONAI symmetric ASD)",
        ),
        EdgeCase(0.0, INF, INF),
    ),
    (
        _spec(
            "nsd",
            "",
            True,
            True,
            "surface",
            1.0,
            0.0,
            "surface Dice: share of surface voxels of both masks within the tolerance (mm) of the other surface",
        ),
        EdgeCase(1.0, 0.0, 0.0),
    ),
    (
        _spec(
            "boundary_iou",
            "",
            True,
            True,
            "surface",
            1.0,
            0.0,
            "IoU of the boundary bands: mask voxels within d = 2% of the image diagonal (mm) of the complement",
        ),
        EdgeCase(1.0, 0.0, 0.0),
    ),
    # ---- lesion level (evaluator.metrics.lesion) ----
    (
        _spec("lesion_tp", "count", True, False, "lesion", NAN, NAN, "matched reference lesions"),
        EdgeCase(None, None, None),
    ),
    (
        _spec(
            "lesion_fp", "count", False, False, "lesion", 0.0, NAN, "unmatched predicted lesions"
        ),
        EdgeCase(None, None, None),
    ),
    (
        _spec(
            "lesion_fn", "count", False, False, "lesion", 0.0, NAN, "unmatched reference lesions"
        ),
        EdgeCase(None, None, None),
    ),
    (
        _spec("lesion_precision", "", True, False, "lesion", 1.0, 0.0, "TP / (TP + FP)"),
        EdgeCase(1.0, 0.0, 0.0),
    ),
    (
        _spec("lesion_recall", "", True, False, "lesion", 1.0, 0.0, "TP / (TP + FN)"),
        EdgeCase(1.0, 0.0, 0.0),
    ),
    (
        _spec("lesion_f1", "", True, False, "lesion", 1.0, 0.0, "2 TP / (2 TP + FP + FN)"),
        EdgeCase(1.0, 0.0, 0.0),
    ),
    (
        _spec("pq", "", True, False, "lesion", 1.0, 0.0, "panoptic quality SQ x RQ (IoU > 0.5)"),
        EdgeCase(1.0, 0.0, 0.0),
    ),
    (
        _spec("sq", "", True, False, "lesion", 1.0, 0.0, "mean IoU of matched lesion pairs"),
        EdgeCase(1.0, 0.0, 0.0),
    ),
    (
        _spec("rq", "", True, False, "lesion", 1.0, 0.0, "TP / (TP + FP/2 + FN/2)"),
        EdgeCase(1.0, 0.0, 0.0),
    ),
    (
        _spec(
            "lesion_dice",
            "",
            True,
            False,
            "lesion",
            1.0,
            0.0,
            "BraTS lesion-wise Dice: sum of per-lesion Dice / (reference lesions + FP lesions)",
        ),
        EdgeCase(1.0, 0.0, 0.0),
    ),
    (
        _spec(
            "fp_volume_ml",
            "ml",
            False,
            True,
            "lesion",
            0.0,
            INF,
            "autoPET: volume of predicted 18-connected components with no reference overlap",
        ),
        EdgeCase(0.0, None, 0.0),
    ),
    (
        _spec(
            "fn_volume_ml",
            "ml",
            False,
            True,
            "lesion",
            0.0,
            INF,
            "autoPET: volume of reference 18-connected components with no predicted overlap",
        ),
        EdgeCase(0.0, 0.0, None),
    ),
    # ---- CC-Metrics (evaluator.metrics.cc) ----
    (
        _spec("cc_dice", "", True, True, "cc", 1.0, 0.0, "Dice per Voronoi region, averaged"),
        EdgeCase(1.0, 0.0, 0.0),
    ),
    (
        _spec("cc_iou", "", True, True, "cc", 1.0, 0.0, "IoU per Voronoi region, averaged"),
        EdgeCase(1.0, 0.0, 0.0),
    ),
    (
        _spec("cc_nsd", "", True, True, "cc", 1.0, 0.0, "NSD per Voronoi region, averaged"),
        EdgeCase(1.0, 0.0, 0.0),
    ),
    (
        _spec(
            "cc_boundary_iou",
            "",
            True,
            True,
            "cc",
            1.0,
            0.0,
            "Boundary IoU per Voronoi region, averaged",
        ),
        EdgeCase(1.0, 0.0, 0.0),
    ),
    (
        _spec(
            "cc_hd",
            "mm",
            False,
            True,
            "cc",
            0.0,
            50.0,
            "HD per Voronoi region, averaged; a missed component scores the worst distance",
        ),
        EdgeCase(0.0, 50.0, 50.0),
    ),
    (
        _spec(
            "cc_hd95",
            "mm",
            False,
            True,
            "cc",
            0.0,
            50.0,
            "HD95 per Voronoi region, averaged; a missed component scores the worst distance",
        ),
        EdgeCase(0.0, 50.0, 50.0),
    ),
    (
        _spec(
            "cc_assd",
            "mm",
            False,
            True,
            "cc",
            0.0,
            50.0,
            "ASSD per Voronoi region, averaged; a missed component scores the worst distance",
        ),
        EdgeCase(0.0, 50.0, 50.0),
    ),
    # ---- instances (evaluator.metrics.coco) ----
    (
        _spec("coco_ap", "", True, False, "instance", 1.0, 0.0, "COCO mask AP@[.5:.95]"),
        EdgeCase(NAN, 0.0, 0.0),
    ),
    (
        _spec("coco_ap50", "", True, False, "instance", 1.0, 0.0, "COCO mask AP at IoU 0.5"),
        EdgeCase(NAN, 0.0, 0.0),
    ),
    (
        _spec("coco_ap75", "", True, False, "instance", 1.0, 0.0, "COCO mask AP at IoU 0.75"),
        EdgeCase(NAN, 0.0, 0.0),
    ),
)

#: Every metric ccbench computes, by name.
METRICS: dict[str, MetricSpec] = {spec.name: spec for spec, _ in _ROWS}
#: Values for empty inputs, by metric name.
EDGE_CASES: dict[str, EdgeCase] = {spec.name: edge for spec, edge in _ROWS}
#: Metrics computed from two voxel masks (all but the instance metrics): the CLI default set.
VOXEL_METRICS: tuple[str, ...] = tuple(n for n, s in METRICS.items() if s.kind != "instance")


def edge_value(name: str, pred_empty: bool, ref_empty: bool) -> float | None:
    """The edge-case value of metric `name`, or ``None`` when the formula applies.

    Parameters
    ----------
    name : str
        Metric name (key of :data:`EDGE_CASES`).
    pred_empty, ref_empty : bool
        Whether the prediction / the reference mask is empty.

    Returns
    -------
    float or None
        The table value for this emptiness pattern; ``None`` when neither mask is empty or the
        table says the formula applies.

    Examples
    --------
    >>> edge_value("dice", True, True), edge_value("hd95", True, False)
    (1.0, inf)
    >>> edge_value("dice", False, False) is None
    True
    """
    row = EDGE_CASES[name]
    if pred_empty and ref_empty:
        return row.both_empty
    if ref_empty:
        return row.ref_empty
    if pred_empty:
        return row.pred_empty
    return None


def _fmt(value: float | None) -> str:
    if value is None:
        return "formula"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf"
    return f"{value:g}"


def conventions_markdown() -> str:
    """The conventions table of ``docs/metrics.md``, generated from the registry.

    Returns
    -------
    str
        A markdown table with one row per metric: name, unit, direction, definition and the three
        edge-case values (``formula`` where no special case applies).

    Examples
    --------
    >>> conventions_markdown().splitlines()[2].startswith("| `dice` |")
    True
    """
    lines = [
        "| metric | unit | better | definition | both empty | ref empty | pred empty |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, spec in METRICS.items():
        edge = EDGE_CASES[name]
        unit = spec.unit or "-"
        direction = "higher" if spec.higher_is_better else "lower"
        text = spec.description.replace("|", "\\|")
        lines.append(
            f"| `{name}` | {unit} | {direction} | {text} | {_fmt(edge.both_empty)} "
            f"| {_fmt(edge.ref_empty)} | {_fmt(edge.pred_empty)} |"
        )
    return "\n".join(lines) + "\n"
