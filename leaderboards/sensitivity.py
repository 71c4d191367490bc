"""What each ranked metric sees: the dataset studies' reactions, summarised for a board.

``ccbench simulate dataset`` degrades the references of a task's own cases (drop, insert,
enlarge, erode the n smallest or largest lesions) and measures how far each metric's median moves
from the perfect prediction (:func:`evaluator.simulate.dataset.sensitivity_table`). A board
shows, next to its ranking, one verdict per ranked metric and degradation, from the change caused
by editing ONE lesion (``n = 1``), relative to the metric's range:

- **sees**: the median moves by at least :data:`SEES` (5%) of the range;
- **barely sees**: by at least :data:`BARELY` (0.5%), less than 5%;
- **ignores**: by less than 0.5%.

The range of a bounded metric is ``|worst - best|`` (1 for Dice, 50 mm for the CC distances);
of an unbounded one (HD95 in mm, volumes in ml) the largest distance from the best value that any
entry reached on a case of the board (the scale its ranking works on). A change towards the
better value (a degradation that improves the metric) is flagged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from evaluator.metrics.registry import METRICS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BARELY",
    "SEES",
    "SensitivityCell",
    "Verdict",
    "metric_range",
    "sensitivity_context",
    "verdict",
    "verdicts",
]

Verdict: TypeAlias = Literal["sees", "barely sees", "ignores", "no data"]
#: Share of the metric's range from which a change counts as seen.
SEES = 0.05
#: Share of the range from which a change counts as barely seen.
BARELY = 0.005


@dataclass(frozen=True)
class SensitivityCell:
    """One metric's reaction to one degradation (operator, order) on the board's data.

    Attributes
    ----------
    metric, op, order : str
        What was degraded and measured.
    delta_1, delta_max : float
        Median change from the perfect prediction with 1 and with ``n_max`` components edited
        (metric units; NaN where not measured).
    relative : float
        ``|delta_1|`` over the metric's range.
    verdict : {"sees", "barely sees", "ignores", "no data"}
        From ``relative`` (:data:`SEES`, :data:`BARELY`).
    improves : bool
        The degradation moved the metric towards its better value.
    """

    metric: str
    op: str
    order: str
    delta_1: float
    delta_max: float
    relative: float
    verdict: Verdict
    improves: bool


def metric_range(metric: str, board_values: Any = None) -> float:
    """The span a change of ``metric`` is measured against (see the module doc).

    Parameters
    ----------
    metric
        A metric name.
    board_values
        The metric's per-case values on the board (any array-like); used for a metric
        without a finite worst value: the largest distance from the best value any entry
        reached.

    Examples
    --------
    >>> metric_range("dice"), metric_range("cc_hd95"), metric_range("fp_volume_ml", [0.5, 12.0])
    (1.0, 50.0, 12.0)
    >>> math.isnan(metric_range("hd95")), math.isnan(metric_range("not_importable_here"))
    (True, True)
    """
    spec = METRICS.get(metric)
    if spec is None:  # a user metric this process does not know: no known range
        return math.nan
    best = 0.0 if math.isnan(spec.best) else spec.best
    if math.isfinite(spec.worst):
        return abs(spec.worst - best)
    if board_values is None:
        return math.nan
    import numpy as np

    values = np.asarray(board_values, dtype=float)
    values = np.abs(values[np.isfinite(values)] - best)
    return float(values.max()) if values.size and values.max() > 0 else math.nan


def verdict(delta: float, span: float) -> tuple[Verdict, float]:
    """The verdict and the relative change of a median change ``delta`` over ``span``.

    Examples
    --------
    >>> verdict(-0.2, 1.0), verdict(-0.004, 1.0)[0], verdict(0.0001, 1.0)[0]
    (('sees', 0.2), 'ignores', 'ignores')
    >>> verdict(2.0, 50.0)[0], verdict(float("nan"), 1.0)[0], verdict(float("inf"), 50.0)[0]
    ('barely sees', 'no data', 'sees')
    """
    if math.isnan(delta) or not span > 0:
        return "no data", math.nan
    relative = abs(delta) / span if math.isfinite(delta) else math.inf
    if relative >= SEES:
        return "sees", relative
    if relative >= BARELY:
        return "barely sees", relative
    return "ignores", relative


def verdicts(
    table: pd.DataFrame, metrics: tuple[str, ...], spans: dict[str, float]
) -> list[SensitivityCell]:
    """One cell per metric of ``metrics`` (in that order) and (operator, order) of ``table``.

    Parameters
    ----------
    table
        :func:`evaluator.simulate.dataset.sensitivity_table` of the board's task and split.
    metrics
        The board's ranked metrics; ones the studies did not score get ``no data`` cells.
    spans
        Each metric's range (:func:`metric_range`); a metric without one gets ``no data``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"op": ["drop", "drop"], "metric": ["dice", "cc_dice"],
    ...     "smallest_n1": [-0.003, -0.2], "largest_n1": [-0.5, -0.2],
    ...     "smallest_nmax": [-0.01, -0.6], "largest_nmax": [-0.9, -0.6]})
    >>> spans = {"dice": 1.0, "cc_dice": 1.0}
    >>> [(c.metric, c.order, c.verdict) for c in verdicts(t, ("dice", "cc_dice"), spans)]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('dice', 'smallest', 'ignores'), ('dice', 'largest', 'sees'),
     ('cc_dice', 'smallest', 'sees'), ('cc_dice', 'largest', 'sees')]
    """
    ops = list(dict.fromkeys(table["op"]))
    cells = []
    for metric in metrics:
        rows = table[table["metric"] == metric].set_index("op")
        span = spans.get(metric, math.nan)
        spec = METRICS.get(metric)
        better = 0.0 if spec is None else 1.0 if spec.higher_is_better else -1.0
        for op in ops:
            for order in ("smallest", "largest"):
                if op in rows.index:
                    d1 = float(rows.loc[op, f"{order}_n1"])
                    dmax = float(rows.loc[op, f"{order}_nmax"])
                else:
                    d1 = dmax = math.nan
                word, relative = verdict(d1, span)
                improves = word in ("sees", "barely sees") and d1 * better > 0
                cells.append(SensitivityCell(metric, op, order, d1, dmax, relative, word, improves))
    return cells


def _delta(value: float) -> str:
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "+∞" if value > 0 else "−∞"
    return f"{value:+.3g}".replace("-", "−")


def sensitivity_context(board: Any, *, metrics: tuple[str, ...] | None = None) -> dict[str, Any]:
    """What the board's pages show of the studies: the panel (ranked metrics) and the page.

    Parameters
    ----------
    board
        A :class:`leaderboards.board.Leaderboard`.
    metrics
        Metrics to show (default: the board's ranked metrics).

    Returns
    -------
    dict
        ``available`` (False: no study; ``command`` says how to run one), ``columns`` (the
        operator and order of each cell), ``rows`` (per metric: its cells with verdict, class
        and the changes at ``n = 1`` and ``n = n_max``), ``n_max``, ``cases``, ``studies``.
    """
    data = board.data
    command = f"ccbench simulate dataset --task {data.task} --split {data.split}"
    stored = data.sensitivity
    if stored is None:
        return {"available": False, "command": command}
    shown = metrics if metrics is not None else data.metrics
    spans = {
        m: metric_range(m, data.scores[m].to_numpy() if m in data.scores else None) for m in shown
    }
    cells = verdicts(stored.table, shown, spans)
    columns = list(dict.fromkeys((c.op, c.order) for c in cells))
    rows = []
    for metric in shown:
        mine = [c for c in cells if c.metric == metric]
        spec = METRICS.get(metric)
        counts = {w: sum(c.verdict == w for c in mine) for w in ("sees", "barely sees", "ignores")}
        rows.append(
            {
                "name": metric,
                "title": metric if spec is None else spec.title or metric,
                "user": spec is None or spec.kind == "user",
                "unknown": spec is None,
                "summary": ", ".join(f"{w} {n}" for w, n in counts.items() if n),
                "cells": [
                    {
                        "verdict": c.verdict,
                        "css": c.verdict.replace(" ", "-"),
                        "improves": c.improves,
                        "d1": _delta(c.delta_1),
                        "dmax": _delta(c.delta_max),
                        "relative": "–" if math.isnan(c.relative) else f"{c.relative:.1%}",
                    }
                    for c in mine
                ],
            }
        )
    return {
        "available": True,
        "command": command,
        "columns": [{"op": op, "order": order} for op, order in columns],
        "ops": list(dict.fromkeys(op for op, _ in columns)),
        "rows": rows,
        "n_max": stored.n_max,
        "cases": stored.cases,
        "studies": len(stored.studies),
        "sees": f"{SEES:.0%}",
        "barely": f"{BARELY:.1%}",
    }
