"""Boards of the evaluation protocols beyond one run per entry: click budgets and few-shot subsets.

**Interactive entries** (``ccbench run`` of an entry with ``prompts: clicks``; see
:mod:`evaluator.runner.interactive`) store one run per click budget ``k = 0..N``, tagged with
the series they belong to. For each entry, :func:`interactive_summary` takes its most recent
complete series (every budget finished) and computes, as autoPET IV's
``evaluation_metrics.py`` does, per case the area under each metric-vs-clicks curve (the
trapezoidal rule over ``k = 0, 1, ..., N``, so an area lies in ``[0, N]`` for Dice) and the value
at the last budget, then their means over the cases (NaN-aware: Dice is undefined on a case
without lesions). Values are first capped at the board's worst value
(:func:`leaderboards.data.leaderboard_worst`, as the main ranking counts them), so a failed case
counts as the worst volume seen, never as an infinite area. Areas are comparable only between
series of the same protocol (largest budget ``N`` and click mode): entries are ranked within
each protocol, by the mean area under the Dice curve, ties broken by the Dice at the last budget.
An entry whose latest series is incomplete is listed as left out. The curves are the means over
the cases at each budget.

**Few-shot runs** (``ccbench run --shots k``) record the subset an entry was adapted on;
:func:`shots_summary` groups the board's entries by it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from evaluator.store import RunInfo, Store
    from leaderboards.data import LeaderboardData

__all__ = [
    "CLICK_METRICS",
    "InteractiveSummary",
    "click_auc",
    "interactive_summary",
    "plot_click_curves",
    "shots_summary",
]

#: The metrics of autoPET IV's interactive evaluation (Dice, false-positive and false-negative
#: volume), each summarised by its area under the curve and its final value.
CLICK_METRICS = ("dice", "fp_volume_ml", "fn_volume_ml")


def click_auc(values: Any, budgets: Any | None = None) -> float:
    """Area under a metric-vs-clicks curve: the trapezoidal rule over the budgets.

    Parameters
    ----------
    values
        The metric at each budget, in budget order.
    budgets
        The budgets [default: ``0, 1, ..., len(values) - 1``, as autoPET IV].

    Returns
    -------
    float
        NaN when any value is NaN (e.g. Dice of a case without lesions) or with fewer than two
        budgets.

    Examples
    --------
    >>> click_auc([0.0, 0.5, 1.0])
    1.0
    >>> click_auc([0.2, 0.4], budgets=[0, 10])
    3.0
    """
    y = np.asarray(values, dtype=float)
    x = np.arange(y.size, dtype=float) if budgets is None else np.asarray(budgets, dtype=float)
    if y.size < 2 or np.isnan(y).any():
        return float("nan")
    return float(np.trapezoid(y, x))


@dataclass(frozen=True)
class InteractiveSummary:
    """The interactive entries of a task and split.

    Attributes
    ----------
    metrics : tuple of str
        Of :data:`CLICK_METRICS`, those scored.
    curves : pandas.DataFrame
        Columns ``entry, budget`` and one per metric: the mean over the cases at that budget.
    table : pandas.DataFrame
        Index entry, grouped by protocol (``budgets``, ``click_mode``) and ranked within it
        (``rank``, best first); columns ``<metric>_auc`` and ``<metric>_final`` (means over the
        cases), ``budgets``, ``cases``, ``click_mode``, ``series``.
    per_case : pandas.DataFrame
        Columns ``entry, case`` and ``<metric>_auc``, ``<metric>_final`` per case.
    left_out : dict
        Entry -> why it is not in the table (its latest series is incomplete).
    """

    metrics: tuple[str, ...]
    curves: pd.DataFrame
    table: pd.DataFrame
    per_case: pd.DataFrame
    left_out: dict[str, str] = field(default_factory=dict)


def _protocol(run: RunInfo) -> dict[str, Any]:
    value = run.parameters.get("protocol")
    return value if isinstance(value, dict) else {}


def _complete_series(runs: list[RunInfo]) -> dict[str, list[RunInfo]]:
    """Entry -> the runs of its most recent series in which every budget finished."""
    return _series_of(runs)[0]


def _series_of(runs: list[RunInfo]) -> tuple[dict[str, list[RunInfo]], dict[str, str]]:
    """:func:`_complete_series`, and entry -> why its latest series is not used (a fold
    model's series outside its own fold is not the entry's, :func:`leaderboards.data.of_board`)."""
    from leaderboards.data import of_board

    series: dict[tuple[str, str], dict[int, RunInfo]] = {}
    size: dict[tuple[str, str], int] = {}
    for run in runs:  # oldest first
        p = _protocol(run)
        if "series" not in p or run.status != "finished" or not of_board(run):
            continue
        key = (run.entry or run.name, str(p["series"]))
        series.setdefault(key, {})[int(p["budget"])] = run
        size[key] = int(p["budgets"])
    chosen: dict[str, list[RunInfo]] = {}
    latest: dict[str, tuple[str, int, int]] = {}
    for key, by_budget in series.items():  # in order of first appearance: later series win
        latest[key[0]] = (key[1], len(by_budget), size[key] + 1)
        if sorted(by_budget) == list(range(size[key] + 1)):
            chosen[key[0]] = [by_budget[k] for k in sorted(by_budget)]
    left_out = {}
    for entry, (name, done, total) in latest.items():
        used = chosen.get(entry)
        if used is None or _protocol(used[0])["series"] != name:
            instead = f"; the board shows its series {_protocol(used[0])['series']}" if used else ""
            left_out[entry] = f"series {name} has {done} of {total} budgets finished{instead}"
    return chosen, left_out


def interactive_summary(store: Store, task: str, split: str) -> InteractiveSummary | None:
    """Curves and areas of every entry with a complete click series (module doc); None if no
    entry has one."""
    from evaluator.datasets.registry import load_registry
    from evaluator.metrics.registry import METRICS
    from leaderboards.data import RANKED_KINDS, leaderboard_worst
    from leaderboards.ranking import clip_to_worst

    chosen, left_out = _series_of(store.list_runs(task=task, split=split, kind=RANKED_KINDS))
    if not chosen:
        return None
    run_of = {
        r.id: (entry, int(_protocol(r)["budget"])) for entry, rs in chosen.items() for r in rs
    }
    results = store.results_frame(run_ids=list(run_of))
    results = results[results["metric"].isin(CLICK_METRICS)]
    if results.empty:
        return None
    results = results.assign(
        entry=results["run_id"].map(lambda i: run_of[i][0]),
        budget=results["run_id"].map(lambda i: run_of[i][1]),
    )
    registry = load_registry()
    profile = registry.profile(registry.task(task))
    for metric in CLICK_METRICS:  # the board's worst value, as the main ranking counts a case
        rows = results["metric"] == metric
        if rows.any():
            worst = leaderboard_worst(profile, metric, results.loc[rows, "value"])
            results.loc[rows, "value"] = clip_to_worst(
                results.loc[rows, "value"], worst, higher_is_better=METRICS[metric].higher_is_better
            )
    # one value per case and budget: the mean over the task's labels
    per_budget = (
        results.groupby(["entry", "case_id", "budget", "metric"])["value"]
        .mean()
        .unstack("metric")
        .reset_index()
    )
    metrics = tuple(m for m in CLICK_METRICS if m in per_budget.columns)
    rows = []
    for (entry, case), frame in per_budget.groupby(["entry", "case_id"], sort=False):
        frame = frame.sort_values("budget")
        row: dict[str, Any] = {"entry": entry, "case": case}
        for m in metrics:
            row[f"{m}_auc"] = click_auc(frame[m].to_numpy(), frame["budget"].to_numpy())
            row[f"{m}_final"] = float(frame[m].iloc[-1])
        rows.append(row)
    per_case = pd.DataFrame(rows)
    table = per_case.groupby("entry").agg(
        {
            c: lambda s: float(np.nanmean(s)) if s.notna().any() else np.nan
            for c in per_case.columns[2:]
        }
    )
    table["cases"] = per_case.groupby("entry")["case"].nunique()
    first = {e: _protocol(rs[0]) for e, rs in chosen.items()}
    table["budgets"] = [int(first[e]["budgets"]) for e in table.index]
    table["click_mode"] = [str(first[e].get("click_mode", "")) for e in table.index]
    table["series"] = [str(first[e]["series"]) for e in table.index]
    key = [c for c in ("dice_auc", "dice_final") if c in table.columns]
    table = table.assign(_name=table.index).sort_values(
        ["budgets", "click_mode", *key, "_name"],
        ascending=[True, True, *[False] * len(key), True],
        na_position="last",
    )
    table["rank"] = table.groupby(["budgets", "click_mode"]).cumcount() + 1
    table = table.drop(columns="_name")
    curves = per_budget.groupby(["entry", "budget"])[list(metrics)].mean().reset_index()
    return InteractiveSummary(
        metrics=metrics, curves=curves, table=table, per_case=per_case, left_out=left_out
    )


def plot_click_curves(summary: InteractiveSummary, stem: Path) -> list[Path]:
    """One panel per metric: each entry's mean over the cases against the click budget.

    Returns the PNG and SVG written (``stem.png``, ``stem.svg``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evaluator.metrics.registry import METRICS

    fig, axes = plt.subplots(
        1, len(summary.metrics), figsize=(4.2 * len(summary.metrics), 3.4), squeeze=False
    )
    for ax, metric in zip(axes[0], summary.metrics, strict=True):
        for entry in summary.table.index:
            curve = summary.curves[summary.curves["entry"] == entry]
            auc = summary.table.loc[entry, f"{metric}_auc"]
            ax.plot(
                curve["budget"], curve[metric], marker="o", ms=3, label=f"{entry} (AUC {auc:.2f})"
            )
        spec = METRICS.get(metric)
        ax.set_xlabel("clicks of each kind")
        ax.set_ylabel(spec.axis_label if spec is not None else metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Interactive entries: mean over the cases at each click budget", fontsize=10)
    fig.tight_layout()
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for path in out:
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return out


def shots_summary(data: LeaderboardData) -> pd.DataFrame | None:
    """The board's entries grouped by the few-shot subset they were adapted on.

    Returns
    -------
    pandas.DataFrame or None
        Columns ``shots, entry`` and the mean over the cases of each ranked metric, sorted by
        ``shots`` then entry; None when no entry recorded ``--shots``.
    """
    shots = {e: _protocol(r).get("shots") for e, r in data.runs.items()}
    if not any(k is not None for k in shots.values()):
        return None
    rows = []
    for entry, k in shots.items():
        row: dict[str, Any] = {
            "shots": "full data" if k is None else f"{int(k)}-shot",
            "entry": entry,
        }
        for metric in data.metrics:
            scores = data.scores[metric]
            row[metric] = float(np.nanmean(scores[entry])) if entry in scores else np.nan
        row["_k"] = np.inf if k is None else int(k)
        rows.append(row)
    frame = pd.DataFrame(rows).sort_values(["_k", "entry"]).drop(columns="_k")
    return frame.reset_index(drop=True)
