"""Figures of the degradation studies (matplotlib, Agg backend; PNG and SVG side by side).

Colours are fixed so that every figure reads the same way: standard metrics orange, their
CC-Metrics counterpart blue (as in Figures 30-33 of the CC-Metrics chapter), other metrics
(PQ, Lesion Dice) green, per-component values as thin dashed black lines. matplotlib is imported
inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from evaluator.simulate._toy_table import PRED_COMPONENTS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CC_COLOUR",
    "OTHER_COLOUR",
    "STANDARD_COLOUR",
    "metric_colour",
    "metric_pairs",
    "plot_dataset_study",
    "plot_toy_study",
]

STANDARD_COLOUR = "#e8710a"
CC_COLOUR = "#1a73e8"
OTHER_COLOUR = "#188038"
_DASHES = ("--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)))


def _label(metric: str) -> str:
    from evaluator.metrics.registry import METRICS

    spec = METRICS.get(metric)
    return spec.axis_label if spec is not None else metric


def metric_colour(metric: str, metrics: Sequence[str]) -> str:
    """Blue for a CC metric, orange for a metric whose CC variant is also shown, else green.

    Examples
    --------
    >>> metric_colour("cc_dice", ["dice", "cc_dice"]) == CC_COLOUR
    True
    >>> metric_colour("dice", ["dice", "cc_dice"]) == STANDARD_COLOUR
    True
    >>> metric_colour("pq", ["dice", "cc_dice", "pq"]) == OTHER_COLOUR
    True
    """
    if metric.startswith("cc_"):
        return CC_COLOUR
    return STANDARD_COLOUR if f"cc_{metric}" in metrics else OTHER_COLOUR


def metric_pairs(metrics: Sequence[str]) -> list[tuple[str, ...]]:
    """Group metrics into panels: ``(m, cc_m)`` when both are present, else ``(m,)``.

    Examples
    --------
    >>> metric_pairs(["dice", "hd95", "cc_dice", "pq", "cc_hd95"])
    [('dice', 'cc_dice'), ('hd95', 'cc_hd95'), ('pq',)]
    """
    panels: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for metric in metrics:
        if metric in seen:
            continue
        base = metric[3:] if metric.startswith("cc_") else metric
        group = tuple(m for m in (base, f"cc_{base}") if m in metrics)
        panels.append(group)
        seen.update(group)
    return panels


def _save(fig: Any, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=110, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


def _figure(n_rows: int, n_cols: int) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(4.2 * n_cols, 3.4 * n_rows), squeeze=False, constrained_layout=True
    )
    return fig, axes


def _close(fig: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def _finish_axis(ax: Any, title: str, xlabel: str, *, title_size: int) -> None:
    """Title, x label, integer x ticks, light grid and a small legend of one panel."""
    from matplotlib.ticker import MaxNLocator

    ax.set_title(title, fontsize=title_size)
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _finish_figure(fig: Any, stem: Path, title: str) -> list[Path]:
    """Add the optional figure title, save PNG + SVG at ``stem`` and close the figure."""
    if title:
        fig.suptitle(title, fontsize=11)
    paths = _save(fig, stem)
    _close(fig)
    return paths


def plot_toy_study(table: pd.DataFrame, stem: Path, *, title: str = "") -> list[Path]:
    """One toy study: one panel per variant, each metric per step, per-component values dashed.

    Steps where the number of predicted components changes (a component vanishes, two
    predictions merge) are marked by a dotted vertical line.

    Parameters
    ----------
    table
        Rows of one study (columns of :data:`evaluator.simulate.toy.TOY_COLUMNS`).
    stem
        Output path without suffix; ``.png`` and ``.svg`` are written.
    title
        Figure title.

    Returns
    -------
    list of Path
        The PNG and the SVG.
    """
    variants = list(dict.fromkeys(table["variant"]))
    metrics = [
        m
        for m in dict.fromkeys(table.loc[table["component"] == "", "metric"])
        if m != PRED_COMPONENTS
    ]
    fig, axes = _figure(1, len(variants))
    for ax, variant in zip(axes[0], variants, strict=True):
        rows = table[table["variant"] == variant]
        counts = rows[rows["metric"] == PRED_COMPONENTS].sort_values("step")
        for prev, (_, row) in zip(counts["value"], counts.iloc[1:].iterrows(), strict=False):
            if row["value"] != prev:
                ax.axvline(row["step"], color="grey", linestyle=":", linewidth=1)
                ax.annotate(
                    f"{int(prev)}→{int(row['value'])} comp.",
                    (row["step"], 1.0),
                    xycoords=("data", "axes fraction"),
                    fontsize=7,
                    color="grey",
                    rotation=90,
                    ha="right",
                    va="top",
                )
        for metric in metrics:
            line = rows[(rows["metric"] == metric) & (rows["component"] == "")]
            ax.plot(
                line["step"],
                line["value"],
                marker="o",
                markersize=3,
                color=metric_colour(metric, metrics),
                label=_label(metric),
            )
        parts = rows[rows["component"] != ""]
        groups = parts.groupby(["metric", "component"], sort=False)
        for k, ((metric, component), line) in enumerate(groups):
            ax.plot(
                line["step"],
                line["value"],
                linestyle=_DASHES[k % len(_DASHES)],
                linewidth=0.9,
                color="black",
                alpha=0.6,
                label=f"{_label(str(metric))} {component}",
            )
        _finish_axis(ax, f"{variant}", "degradation step", title_size=10)
    return _finish_figure(fig, stem, title)


def plot_dataset_study(summary: pd.DataFrame, stem: Path, *, title: str = "") -> list[Path]:
    """A dataset study: median and 25-75th percentile band per ``n``, one panel per metric pair.

    Parameters
    ----------
    summary
        Columns ``order``, ``n``, ``metric``, ``median``, ``q25``, ``q75``, ``cases`` (one row per
        order, n and metric), from :func:`evaluator.simulate.dataset.summarize`.
    stem
        Output path without suffix; ``.png`` and ``.svg`` are written.
    title
        Figure title.

    Returns
    -------
    list of Path
        The PNG and the SVG. One row of panels per order (smallest, largest), one panel per
        metric that has a CC variant (standard orange, CC blue; all metrics when none has), so
        the figure stays readable; every number is in the CSVs.
    """
    present = set(summary["order"])
    from evaluator.metrics.registry import METRICS
    from evaluator.simulate.operators import Order

    orders = [o for o in get_args(Order) if o in present]
    orders += sorted(present - set(orders))
    rank = {name: i for i, name in enumerate(METRICS)}
    metrics = sorted(
        dict.fromkeys(summary["metric"]),
        key=lambda m: (rank.get(m[3:] if m.startswith("cc_") else m, len(rank)), m),
    )
    panels = [group for group in metric_pairs(metrics) if len(group) == 2] or metric_pairs(metrics)
    fig, axes = _figure(len(orders), len(panels))
    for r, order in enumerate(orders):
        rows = summary[summary["order"] == order]
        for c, group in enumerate(panels):
            ax = axes[r][c]
            for metric in group:
                line = rows[rows["metric"] == metric].sort_values("n")
                colour = metric_colour(metric, metrics)
                ax.fill_between(line["n"], line["q25"], line["q75"], color=colour, alpha=0.2)
                ax.plot(
                    line["n"],
                    line["median"],
                    marker="o",
                    markersize=3,
                    color=colour,
                    label=_label(metric),
                )
            panel = f"{' vs '.join(_label(m) for m in group)}: {order}"
            _finish_axis(ax, panel, f"n ({order} components)", title_size=9)
    return _finish_figure(fig, stem, title)
