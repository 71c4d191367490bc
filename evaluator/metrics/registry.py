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
    "OPT_IN_KINDS",
    "VOXEL_METRICS",
    "EdgeCase",
    "MetricKind",
    "MetricSpec",
    "conventions_markdown",
    "edge_value",
]

#: ``user``: a metric declared with :func:`evaluator.metrics.plugins.user_metric` (added to
#: :data:`METRICS` when activated, never at import).
MetricKind: TypeAlias = Literal[
    "overlap", "surface", "topology", "lesion", "cc", "instance", "user"
]

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
    kind : {"overlap", "surface", "topology", "lesion", "cc", "instance", "user"}
        Module family that computes it (``user``: :mod:`evaluator.metrics.plugins`).
    best, worst : float
        Best and worst possible values (``worst`` is used for failed or missing cases; ``inf``
        for unbounded distances, ``nan`` where no bound exists, e.g. counts).
    description : str
        One-line definition, printed in the docs table.
    title : str
        Name shown on plots (``"HD95"``, ``"CC-Dice"``); empty: the registry key.
    """

    name: str
    unit: str
    higher_is_better: bool
    needs_spacing: bool
    kind: MetricKind
    best: float
    worst: float
    description: str
    title: str = ""

    @property
    def axis_label(self) -> str:
        """The title with the unit for mm and ml, e.g. ``"CC-HD95 (mm)"``.

        Examples
        --------
        >>> METRICS["cc_hd95"].axis_label, METRICS["lesion_tp"].axis_label
        ('CC-HD95 (mm)', 'lesion_tp')
        """
        unit = f" ({self.unit})" if self.unit in ("mm", "ml") else ""
        return (self.title or self.name) + unit


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


_Row: TypeAlias = tuple[MetricSpec, EdgeCase]


def _score(name: str, kind: MetricKind, spacing: bool, description: str, title: str = "") -> _Row:
    """A score in [0, 1], higher is better: 1 if both masks are empty, 0 if one is."""
    spec = MetricSpec(name, "", True, spacing, kind, 1.0, 0.0, description, title)
    return spec, EdgeCase(1.0, 0.0, 0.0)


def _distance(name: str, kind: MetricKind, worst: float, description: str, title: str = "") -> _Row:
    """A distance in mm, lower is better: 0 if both masks are empty, `worst` if one is."""
    spec = MetricSpec(name, "mm", False, True, kind, 0.0, worst, description, title)
    return spec, EdgeCase(0.0, worst, worst)


def _count(name: str, higher: bool, description: str) -> _Row:
    """A lesion count: the formula holds for empty masks too (0 lesions)."""
    best = math.nan if higher else 0.0
    spec = MetricSpec(name, "count", higher, False, "lesion", best, math.nan, description)
    return spec, EdgeCase(None, None, None)


def _volume(name: str, edge: EdgeCase, description: str) -> _Row:
    """An autoPET volume in ml, lower is better."""
    return MetricSpec(name, "ml", False, True, "lesion", 0.0, INF, description), edge


def _coco(name: str, description: str) -> _Row:
    """COCO mask AP: NaN for a class absent from both (pycocotools' -1), 0 if one side is empty."""
    spec = MetricSpec(name, "", True, False, "instance", 1.0, 0.0, description)
    return spec, EdgeCase(NAN, 0.0, 0.0)


_MISSED = "; a missed component scores the worst distance"

_ROWS: tuple[_Row, ...] = (
    # overlap (evaluator.metrics.overlap)
    _score("dice", "overlap", False, "2|P∩R| / (|P|+|R|)", "Dice"),
    _score("iou", "overlap", False, "|P∩R| / |P∪R| (Jaccard)", "IoU"),
    # surface (evaluator.metrics.surface)
    _distance("hd", "surface", INF, "larger of the two directed maxima of surface distances", "HD"),
    _distance(
        "hd95", "surface", INF, "larger of the two directed 95th percentiles (linear)", "HD95"
    ),
    _distance("assd", "surface", INF, "mean of both directions' surface distances, pooled", "ASSD"),
    _score(
        "nsd",
        "surface",
        True,
        "share of both surfaces within the tolerance (mm) of the other",
        "Surface Dice",
    ),
    _score(
        "boundary_iou",
        "surface",
        True,
        "IoU of the bands within 2% of the diagonal (mm)",
        "Boundary IoU",
    ),
    # topology (evaluator.metrics.topology): S(X) is the skeleton of X (clDice, Shit et al. 2021)
    _score(
        "cldice",
        "topology",
        False,
        "2 Tprec Tsens / (Tprec + Tsens) (clDice); scored only when named",
        "clDice",
    ),
    _score("topology_precision", "topology", False, "Tprec = |S(P)∩R| / |S(P)|", "Tprec"),
    _score("topology_sensitivity", "topology", False, "Tsens = |S(R)∩P| / |S(R)|", "Tsens"),
    # lesion level (evaluator.metrics.lesion)
    _count("lesion_tp", True, "matched reference lesions"),
    _count("lesion_fp", False, "unmatched predicted lesions"),
    _count("lesion_fn", False, "unmatched reference lesions"),
    _score("lesion_precision", "lesion", False, "TP / (TP + FP)"),
    _score("lesion_recall", "lesion", False, "TP / (TP + FN)"),
    _score("lesion_f1", "lesion", False, "2 TP / (2 TP + FP + FN)"),
    _score("pq", "lesion", False, "panoptic quality SQ x RQ (IoU > 0.5)", "PQ"),
    _score("sq", "lesion", False, "mean IoU of matched lesion pairs"),
    _score("rq", "lesion", False, "TP / (TP + FP/2 + FN/2)"),
    _score(
        "lesion_dice",
        "lesion",
        False,
        "BraTS: sum of lesion Dice / (lesions + FP lesions)",
        "Lesion Dice",
    ),
    _volume(
        "fp_volume_ml",
        EdgeCase(0.0, None, 0.0),
        "autoPET: predicted 18-connected components without reference overlap",
    ),
    _volume(
        "fn_volume_ml",
        EdgeCase(0.0, 0.0, None),
        "autoPET: reference 18-connected components without predicted overlap",
    ),
    # CC-Metrics (evaluator.metrics.cc); spacing matters through the regions in mm
    _score("cc_dice", "cc", True, "Dice per Voronoi region, averaged", "CC-Dice"),
    _score("cc_iou", "cc", True, "IoU per Voronoi region, averaged", "CC-IoU"),
    _score("cc_nsd", "cc", True, "NSD per Voronoi region, averaged", "CC-Surface Dice"),
    _score(
        "cc_boundary_iou",
        "cc",
        True,
        "Boundary IoU per Voronoi region, averaged",
        "CC-Boundary IoU",
    ),
    _distance("cc_hd", "cc", 50.0, "HD per Voronoi region, averaged" + _MISSED, "CC-HD"),
    _distance("cc_hd95", "cc", 50.0, "HD95 per Voronoi region, averaged" + _MISSED, "CC-HD95"),
    _distance("cc_assd", "cc", 50.0, "ASSD per Voronoi region, averaged" + _MISSED, "CC-ASSD"),
    # instances (evaluator.metrics.coco)
    _coco("coco_ap", "COCO mask AP@[.5:.95]"),
    _coco("coco_ap50", "COCO mask AP at IoU 0.5"),
    _coco("coco_ap75", "COCO mask AP at IoU 0.75"),
)

#: Every metric ccbench computes, by name.
METRICS: dict[str, MetricSpec] = {spec.name: spec for spec, _ in _ROWS}
#: Values for empty inputs, by metric name.
EDGE_CASES: dict[str, EdgeCase] = {spec.name: edge for spec, edge in _ROWS}
#: Families computed only when named (``--metrics cldice``), never by default: skeletonizing a
#: large 3D organ takes seconds (topology metrics of a full-size BTCV phantom case: about 5 s,
#: 3-4.5 s of it for the liver; BTCV's profile metrics: about 1 s; see docs/metrics.md).
OPT_IN_KINDS: tuple[MetricKind, ...] = ("topology",)
#: Metrics computed from two voxel masks, but the opt-in families (:data:`OPT_IN_KINDS`): the
#: CLI default set.
VOXEL_METRICS: tuple[str, ...] = tuple(
    n for n, s in METRICS.items() if s.kind != "instance" and s.kind not in OPT_IN_KINDS
)


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
        A markdown table with one row per metric: name, unit, direction, whether the value
        depends on the voxel spacing, definition and the three edge-case values (``formula``
        where no special case applies).

    Examples
    --------
    >>> conventions_markdown().splitlines()[2].startswith("| `dice` |")
    True
    """
    lines = [
        "| metric | unit | better | spacing | definition | both empty | ref empty | pred empty |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, spec in METRICS.items():
        edge = EDGE_CASES[name]
        unit = spec.unit or "-"
        direction = "higher" if spec.higher_is_better else "lower"
        text = spec.description.replace("|", "\\|")
        lines.append(
            f"| `{name}` | {unit} | {direction} | {'yes' if spec.needs_spacing else 'no'} "
            f"| {text} | {_fmt(edge.both_empty)} "
            f"| {_fmt(edge.ref_empty)} | {_fmt(edge.pred_empty)} |"
        )
    return "\n".join(lines) + "\n"
