"""Figures of the degradation studies (matplotlib, Agg backend; PNG and SVG side by side).

Colours are fixed so that every figure reads the same way: standard metrics orange, their
CC-Metrics counterpart blue (as in Figures 30-33 of the CC-Metrics chapter), other metrics
(PQ, Lesion Dice) green, per-component values as thin dashed black lines. The metrics of one
panel are also told apart by line width, dash and marker (:func:`metric_style`): where their
values coincide, the first is drawn widest and lowest, so every line stays visible. Every panel
labels both axes; each figure's legend explains its lines. matplotlib is imported inside the
functions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from evaluator.simulate._toy_table import PRED_COMPONENTS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CC_COLOUR",
    "OTHER_COLOUR",
    "STANDARD_COLOUR",
    "metric_colour",
    "metric_pairs",
    "metric_style",
    "plot_dataset_study",
    "plot_toy_study",
    "value_label",
]

STANDARD_COLOUR = "#e8710a"
CC_COLOUR = "#1a73e8"
OTHER_COLOUR = "#188038"
_DASHES = ("--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)))
#: Line width, dash, marker and marker size of the k-th metric of a panel (cycled).
_STYLES = (
    (4.8, "-", "o", 8.0),
    (2.4, "-", "s", 5.0),
    (1.4, (0, (3, 1.5)), "^", 4.5),
    (1.0, "-.", "D", 3.5),
)
#: A per-component name of the toy table: the radius of the reference sphere, in voxels.
_SPHERE = re.compile(r"r=(?P<radius>[0-9.]+)")


def _label(metric: str) -> str:
    from evaluator.metrics.registry import METRICS

    spec = METRICS.get(metric)
    return spec.axis_label if spec is not None else metric


def metric_style(k: int) -> dict[str, Any]:
    """Line keywords of the ``k``-th metric drawn in one panel (besides its colour).

    Earlier metrics are drawn wider, with larger markers and below later ones, so a line whose
    values coincide with another's still shows as a border around it.

    Examples
    --------
    >>> metric_style(0)["linewidth"] > metric_style(1)["linewidth"] > metric_style(2)["linewidth"]
    True
    >>> metric_style(0)["zorder"] < metric_style(1)["zorder"]
    True
    """
    width, dash, marker, size = _STYLES[k % len(_STYLES)]
    return {
        "linewidth": width,
        "linestyle": dash,
        "marker": marker,
        "markersize": size,
        "zorder": 3 + k,
    }


def value_label(metrics: Sequence[str]) -> str:
    """The y-axis label of a panel showing ``metrics``: what their values are, in which unit.

    Examples
    --------
    >>> value_label(["dice", "cc_dice"])
    'score (1 = perfect, higher is better)'
    >>> value_label(["hd95", "cc_hd95"])
    'distance (mm, lower is better)'
    >>> value_label(["dice", "hd95"])
    'value (see legend for units)'
    """
    from evaluator.metrics.registry import METRICS

    specs = [METRICS[m] for m in metrics if m in METRICS]
    units = {s.unit for s in specs}
    if len(specs) != len(metrics) or len(units) != 1:
        return "value (see legend for units)"
    unit = units.pop()
    direction = "higher" if all(s.higher_is_better for s in specs) else "lower"
    if not unit and all(s.best == 1.0 for s in specs):
        return f"score (1 = perfect, {direction} is better)"
    kind = {"mm": "distance", "ml": "volume", "count": "count"}.get(unit, "value")
    return f"{kind} ({unit + ', ' if unit and unit != 'count' else ''}{direction} is better)"


def _component_label(metric: str, component: str) -> str:
    """Legend label of a per-component line: ``r=50`` names the sphere of radius 50 voxels.

    Examples
    --------
    >>> _component_label("cc_dice", "r=50"), _component_label("cc_dice", "component 4")
    ('CC-Dice of the r = 50 vox sphere', 'CC-Dice of component 4')
    """
    match = _SPHERE.fullmatch(component)
    what = f"the r = {match['radius']} vox sphere" if match else component
    return f"{_label(metric)} of {what}"


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


def _figure(n_rows: int, n_cols: int, *, sharey: Literal["row"] | bool = False) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(4.6 * n_cols + 0.4, 3.3 * n_rows + 1.2),
        squeeze=False,
        sharey=sharey,
        layout="constrained",
    )
    return fig, axes


def _close(fig: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def _finish_axis(ax: Any, title: str, xlabel: str, ylabel: str, *, legend: bool) -> None:
    """Title, both axis labels, integer x ticks, a light grid and (``legend``) a legend of the
    panel's own lines."""
    from matplotlib.ticker import MaxNLocator

    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=8, framealpha=0.85)


def _finish_figure(
    fig: Any, stem: Path, title: str, *, note: str = "", legend_of: Any = ()
) -> list[Path]:
    """One legend under the panels for the lines of the axes ``legend_of`` (each label once),
    the optional title with ``note`` below it; save PNG + SVG at ``stem``, close the figure."""
    seen: dict[str, Any] = {}
    for ax in legend_of:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(
            list(seen.values()),
            list(seen),
            loc="outside lower center",
            ncols=min(3, len(seen)),
            fontsize=9,
            frameon=False,
        )
    heading = "\n".join(t for t in (title, note) if t)
    if heading:
        fig.suptitle(heading, fontsize=11)
    paths = _save(fig, stem)
    _close(fig)
    return paths


def plot_toy_study(table: pd.DataFrame, stem: Path, *, title: str = "") -> list[Path]:
    """One toy study: one panel per variant, each metric against the amount of degradation.

    The x axis is the amount of the study's degradation in voxels (erosion, dilation or shift;
    the table's ``amount``); the y axis the metrics' values. Per-component values of a CC
    metric are thin dashed black lines, one per reference sphere, named by the sphere's radius
    in voxels (``r = 50 vox``; the toy volumes have 1 mm voxels), drawn over the metrics' lines.
    Amounts at which the number of predicted components changes (a component vanishes, two
    predictions merge) are marked by a dotted vertical line. One legend under the panels
    explains every line.

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
    parts = table[table["component"] != ""]
    per_metric = list(dict.fromkeys(parts["metric"]))
    fig, axes = _figure(1, len(variants))
    for ax, variant in zip(axes[0], variants, strict=True):
        rows = table[table["variant"] == variant]
        counts = rows[rows["metric"] == PRED_COMPONENTS].sort_values("step")
        for prev, (_, row) in zip(counts["value"], counts.iloc[1:].iterrows(), strict=False):
            if row["value"] != prev:
                ax.axvline(row["amount"], color="grey", linestyle=":", linewidth=1)
                ax.annotate(
                    f"{int(prev)}→{int(row['value'])} comp.",
                    (row["amount"], 1.0),
                    xycoords=("data", "axes fraction"),
                    fontsize=8,
                    color="grey",
                    rotation=90,
                    ha="right",
                    va="top",
                )
        for k, metric in enumerate(metrics):
            line = rows[(rows["metric"] == metric) & (rows["component"] == "")]
            ax.plot(
                line["amount"],
                line["value"],
                color=metric_colour(metric, metrics),
                label=_label(metric),
                **metric_style(k),
            )
        groups = rows[rows["component"] != ""].groupby(["metric", "component"], sort=False)
        for k, ((metric, component), line) in enumerate(groups):
            ax.plot(
                line["amount"],
                line["value"],
                linestyle=_DASHES[k % len(_DASHES)],
                linewidth=1.2,
                color="black",
                alpha=0.7,
                zorder=10,  # thin: on top of the metrics' wide lines
                label=_component_label(str(metric), str(component)),
            )
        _finish_axis(
            ax,
            f"variant: {variant}",
            "amount of degradation (voxels)",
            value_label([*metrics, *per_metric]),
            legend=False,
        )
    note = ""
    if len(parts):
        note = "black: the CC metric in each reference sphere's region (r: radius in 1 mm voxels)"
    return _finish_figure(fig, stem, title, note=note, legend_of=axes.flat)


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
        The PNG and the SVG. One row of panels per metric that has a CC variant (standard
        orange, CC blue; all metrics when none has), one column per order (smallest, largest),
        the panels of a row on one y scale, so that the figure stays readable at its drawn size
        and the two orders compare side by side; every number is in the CSVs.
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
    fig, axes = _figure(len(panels), len(orders), sharey="row")
    for c, order in enumerate(orders):
        rows = summary[summary["order"] == order]
        for r, group in enumerate(panels):
            ax = axes[r][c]
            for k, metric in enumerate(group):
                line = rows[rows["metric"] == metric].sort_values("n")
                colour = metric_colour(metric, metrics)
                ax.fill_between(line["n"], line["q25"], line["q75"], color=colour, alpha=0.18)
                ax.plot(
                    line["n"], line["median"], color=colour, label=_label(metric), **metric_style(k)
                )
            _finish_axis(
                ax,
                f"{' vs '.join(_label(m) for m in group)}: {order} first",
                f"n: components changed per case, {order} first",
                value_label(group) if c == 0 else "",
                legend=True,
            )
    note = "line: median over (case, label) pairs; band: 25th to 75th percentile"
    return _finish_figure(fig, stem, title, note=note)
