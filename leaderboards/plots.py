"""Leaderboard figures (matplotlib, Agg backend), each written as PNG and SVG side by side.

Entries appear in the order of the task's overall ranking, each with one fixed colour in every
figure. Standard metrics are orange and their CC counterparts blue, as in the degradation-study
figures (:mod:`evaluator.simulate.plots`). Every figure labels both axes of each panel (image
panels excepted) and explains its marks in a legend or colour bar. Non-finite per-case values
(an infinite HD95 of an empty prediction, say) cannot be drawn; a plot says how many it left
out. matplotlib is imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluator.metrics.registry import METRICS
from evaluator.simulate.plots import CC_COLOUR, STANDARD_COLOUR

if TYPE_CHECKING:
    import pandas as pd

    from evaluator.workspace import Workspace
    from leaderboards.board import Leaderboard

__all__ = [
    "FigureJob",
    "GalleryCase",
    "draw_figures",
    "entry_colours",
    "gallery_cases",
    "metric_title",
    "plot_blob",
    "plot_dot_box",
    "plot_podium",
    "plot_rank_blob",
    "plot_rank_heatmap",
    "plot_significance_map",
    "plot_slice_gallery",
    "plot_std_vs_cc",
    "plot_tau_bootstrap",
]

_PALETTE = (
    "#1b9e77",
    "#d95f02",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#e6ab02",
    "#a6761d",
    "#666666",
    "#1f78b4",
    "#b15928",
)


def metric_title(metric: str) -> str:
    """Axis label of a metric: its name, direction and unit.

    Examples
    --------
    >>> metric_title("hd95")
    'hd95 (mm, lower is better)'
    >>> metric_title("cc_dice")
    'cc_dice (higher is better)'
    """
    spec = METRICS[metric]
    direction = "higher is better" if spec.higher_is_better else "lower is better"
    unit = f"{spec.unit}, " if spec.unit and spec.unit != "count" else ""
    return f"{metric} ({unit}{direction})"


def entry_colours(entries: Sequence[str]) -> dict[str, str]:
    """One colour per entry, stable for a given entry order.

    Examples
    --------
    >>> entry_colours(["a", "b"])
    {'a': '#1b9e77', 'b': '#d95f02'}
    """
    return {e: _PALETTE[i % len(_PALETTE)] for i, e in enumerate(entries)}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _write(fig: Any, stem: Path) -> list[Path]:
    """Save as ``stem.png`` (150 dpi) and ``stem.svg``, then close the figure.

    Both files are cut to one tight bounding box, measured once (``bbox_inches="tight"`` on
    each save would lay the figure out twice more: a quarter of the publishing time).
    """
    plt = _pyplot()
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.set_dpi(150)
    fig.draw_without_rendering()
    box = fig.get_tightbbox().padded(plt.rcParams["savefig.pad_inches"])
    written = []
    for suffix, dpi in ((".png", 150), (".svg", None)):
        path = stem.with_suffix(suffix)
        fig.savefig(path, dpi=dpi, bbox_inches=box)
        written.append(path)
    plt.close(fig)
    return written


@dataclass(frozen=True)
class FigureJob:
    """One figure to draw: a plotting function of this module by name, and its arguments."""

    function: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


def _draw(job: tuple[int, FigureJob, tuple[str, ...]]) -> tuple[int, list[Path]]:
    """Draw one figure (in a worker process, which first activates the user metrics the board
    knows); its index comes back with its files."""
    index, figure, user_metrics = job
    if user_metrics:
        from evaluator.metrics.plugins import activate

        activate(user_metrics, entry_points=False)
    return index, globals()[figure.function](*figure.args, **figure.kwargs)


def _figure_failure(
    job: tuple[int, FigureJob, tuple[str, ...]], failure: Any
) -> tuple[int, list[Path]]:
    from evaluator.errors import ExecutorError

    raise ExecutorError(f"drawing {job[1].function} failed: {failure.message}")


def draw_figures(jobs: Sequence[FigureJob], *, workers: int | None = None) -> list[list[Path]]:
    """Draw figures, in parallel: the files of each job, in the order of ``jobs``.

    Figures are independent and matplotlib draws on one core, so a board's 20-40 figures are
    shared among ``workers`` processes (default: one per CPU, at most 4); ``workers=1`` draws
    them here, in this process.
    """
    import os

    from evaluator.executor import WorkerLimits, default_memory_mb, run_jobs
    from evaluator.metrics.plugins import active_refs

    count = min(workers or min(os.cpu_count() or 1, 4), len(jobs))
    if count <= 1:
        return [_draw((i, job, ()))[1] for i, job in enumerate(jobs)]
    limits = WorkerLimits(memory_mb=default_memory_mb(count), time_s=None)
    refs = active_refs()
    todo = [(i, job, refs) for i, job in enumerate(jobs)]
    found = dict(run_jobs(todo, _draw, workers=count, limits=limits, on_failure=_figure_failure))
    return [found[i] for i in range(len(jobs))]


def _short(name: str, limit: int = 18) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


#: The x-axis label of the figures with one position per entry.
_ENTRY_AXIS = "entry (in overall rank order, best first)"


def _side_legend(ax: Any, handles: list[Any], **kwargs: Any) -> Any:
    """A legend of ``handles`` to the right of ``ax``, outside the data."""
    return ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        fontsize=8,
        **kwargs,
    )


def plot_dot_box(lb: Leaderboard, metric: str, stem: Path) -> list[Path]:
    """Per-case values of one metric: a box per entry with every case as a dot.

    Entries are ordered by the overall ranking (best on the left); the box shows quartiles and
    median, whiskers 1.5 IQR, the diamond the mean (explained by a legend). Returns the PNG and
    SVG paths.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    plt = _pyplot()
    scores = lb.data.scores[metric]
    order = list(lb.overall.index)
    colours = entry_colours(order)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.3 * len(order) + 2), 4.0))
    rng = np.random.default_rng(0)
    left_out = 0
    for i, entry in enumerate(order):
        values = scores[entry].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        left_out += int(np.sum(~np.isfinite(values) & ~np.isnan(values)))
        if finite.size:
            ax.boxplot(
                finite,
                positions=[i],
                widths=0.55,
                showfliers=False,
                patch_artist=True,
                boxprops={"facecolor": colours[entry], "alpha": 0.25},
                medianprops={"color": "black"},
            )
            jitter = rng.uniform(-0.15, 0.15, finite.size)
            ax.scatter(i + jitter, finite, s=22, color=colours[entry], zorder=3, edgecolor="white")
            ax.scatter([i], [finite.mean()], marker="D", s=36, color="black", zorder=4)
    ax.set_xticks(range(len(order)), [_short(e) for e in order], rotation=20, ha="right")
    ax.set_xlabel(_ENTRY_AXIS)
    ax.set_ylabel(metric_title(metric))
    title = f"{lb.data.task} / {lb.data.split}: {metric} per case"
    if left_out:
        title += f" ({left_out} infinite values not shown)"
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    _side_legend(
        ax,
        [
            Patch(facecolor="#999999", alpha=0.4, edgecolor="black", label="quartiles, median"),
            Line2D([], [], color="black", label="whiskers: 1.5 IQR"),
            Line2D([], [], marker="o", linestyle="", color="#999999", label="one case"),
            Line2D([], [], marker="D", linestyle="", color="black", label="mean"),
        ],
    )
    return _write(fig, stem)


def plot_rank_heatmap(lb: Leaderboard, stem: Path) -> list[Path]:
    """Entry x metric heatmap of aggregate-then-rank (mean) ranks, the overall rank first."""
    plt = _pyplot()
    order = list(lb.overall.index)
    columns = ["overall", *lb.data.metrics]
    ranks = np.array(
        [
            [
                lb.overall.loc[e, "rank"],
                *[lb.per_metric[m].loc[e, "rank_mean"] for m in lb.data.metrics],
            ]
            for e in order
        ],
        dtype=float,
    )
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(columns) + 2.5), 0.5 * len(order) + 1.8))
    image = ax.imshow(ranks, cmap="viridis_r", vmin=1, vmax=max(2, len(order)), aspect="auto")
    for (row, col), value in np.ndenumerate(ranks):
        shade = "white" if value > (len(order) + 1) / 2 else "black"
        ax.text(col, row, f"{int(value)}", ha="center", va="center", color=shade, fontsize=9)
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(order)), [_short(e) for e in order])
    ax.axvline(0.5, color="white", linewidth=3)
    ax.set_xlabel("metric (overall: the board's ranking; metrics ranked by their mean)")
    ax.set_ylabel(_ENTRY_AXIS)
    ax.set_title(f"{lb.data.task} / {lb.data.split}: rank per metric (1 = best)")
    bar = fig.colorbar(image, ax=ax, label="rank (1 = best)", fraction=0.04)
    bar.set_ticks(range(1, max(2, len(order)) + 1))
    return _write(fig, stem)


def plot_blob(lb: Leaderboard, stem: Path, *, boot: pd.DataFrame | None = None) -> list[Path]:
    """Blob plot of bootstrap rank distributions (challengeR style).

    For each entry (x, in overall rank order) a disc at every rank it took on the bootstrap
    samples, its area proportional to how often; the black cross is the median rank and the line
    the 95% interval (explained by a legend). ``boot`` defaults to the overall ranking's
    bootstrap.
    """
    ranks = lb.boot_overall if boot is None else boot
    return plot_rank_blob(
        ranks,
        list(lb.overall.index),
        stem,
        title=f"{lb.data.task} / {lb.data.split}: rank stability ({len(ranks)} bootstrap samples)",
        xlabel=_ENTRY_AXIS,
        reference="rank = overall rank",
    )


def plot_rank_blob(
    ranks: pd.DataFrame,
    order: Sequence[str],
    stem: Path,
    *,
    title: str,
    xlabel: str,
    reference: str,
) -> list[Path]:
    """Blob plot of resample x entry ranks: per entry (x, in ``order``, best first) a disc at
    every rank it took, its area proportional to how often; the black cross is the median rank,
    the line the central 95% of ranks, the dotted diagonal (labelled ``reference``) the rank of
    the position in ``order``."""
    from matplotlib.lines import Line2D

    plt = _pyplot()
    order = list(order)
    colours = entry_colours(order)
    n = len(order)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * n + 2), max(3.5, 0.6 * n + 2)))
    for i, entry in enumerate(order):
        freq = ranks[entry].value_counts(normalize=True)
        ax.scatter(
            [i] * len(freq),
            freq.index,
            s=900 * freq.to_numpy(),
            color=colours[entry],
            alpha=0.75,
            edgecolor="black",
            linewidth=0.5,
        )
        low, high = ranks[entry].quantile([0.025, 0.975], interpolation="nearest")
        ax.vlines(i, low, high, color="black", linewidth=1.2)
        ax.scatter([i], [ranks[entry].median()], marker="x", color="black", s=50, zorder=4)
    ax.plot([0, n - 1], [1, n], color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(range(n), [_short(e) for e in order], rotation=20, ha="right")
    ax.set_yticks(range(1, n + 1))
    ax.set_ylim(n + 0.6, 0.4)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rank on bootstrap samples (1 = best)")
    _side_legend(
        ax,
        [
            Line2D(
                [],
                [],
                marker="o",
                linestyle="",
                color="#999999",
                markeredgecolor="black",
                markersize=9,
                label="area: share of samples\nwith this rank",
            ),
            Line2D([], [], marker="x", linestyle="", color="black", label="median rank"),
            Line2D([], [], color="black", label="central 95% of ranks"),
            Line2D([], [], color="grey", linestyle=":", label=reference),
        ],
    )
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return _write(fig, stem)


#: Where a point's label may go, in points from the point to the label's lower left corner,
#: in the order tried: the four diagonals, the four sides, the diagonals farther out.
_LABEL_OFFSETS = (
    (5, 4),
    (5, -12),
    (-12, 4),
    (-12, -12),
    (7, -4),
    (-14, -4),
    (-3, 8),
    (-3, -16),
    (14, 12),
    (14, -20),
    (-22, 12),
    (-22, -20),
)


def _place_labels(ax: Any, labels: list[tuple[float, float, str]], **text: Any) -> list[Any]:
    """Annotate each ``(x, y, text)`` beside its point, at the first of :data:`_LABEL_OFFSETS`
    where it overlaps no label placed before it (the last offset when every one does).

    Returns the annotations. The axes' limits must be final (they fix where the points are).
    """
    renderer = ax.figure.canvas.get_renderer()
    placed: list[Any] = []
    notes = []
    for x, y, label in labels:
        for offset in _LABEL_OFFSETS:
            note = ax.annotate(label, (x, y), xytext=offset, textcoords="offset points", **text)
            box = note.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed) or offset == _LABEL_OFFSETS[-1]:
                break
            note.remove()
        placed.append(box)
        notes.append(note)
    return notes


def plot_std_vs_cc(
    lb: Leaderboard, standard: str, cc: str, stem: Path, *, n_label: int = 4
) -> list[Path]:
    """Per case and entry: the standard metric (x) against its CC counterpart (y).

    The diagonal is agreement. The ``n_label`` points farthest from it are numbered on the plot
    (points at one spot share one number; the numbers are placed so that none overlaps
    another, :func:`_place_labels`) and listed beside it with their case and entry, so no case
    id is printed over another; the entries' colours are in a legend beside the plot. Points
    with a non-finite coordinate are left out (counted in the title).
    """
    from matplotlib.lines import Line2D

    plt = _pyplot()
    order = list(lb.overall.index)
    colours = entry_colours(order)
    a, b = lb.data.scores[standard], lb.data.scores[cc]
    fig, ax = plt.subplots(figsize=(3.9, 3.9))
    points: list[tuple[float, float, float, str, str]] = []
    for entry in order:
        x, y = a[entry].to_numpy(dtype=float), b[entry].to_numpy(dtype=float)
        keep = np.isfinite(x) & np.isfinite(y)
        ax.scatter(x[keep], y[keep], s=26, color=colours[entry], label=_short(entry), alpha=0.85)
        points += [
            (float(abs(xi - yi)), float(xi), float(yi), str(case), str(entry))
            for xi, yi, case, k in zip(x, y, a.index, keep, strict=True)
            if k
        ]
    finite = [v for p in points for v in p[1:3]]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="x = y")
    spots: dict[tuple[float, float], list[str]] = {}
    notes = []
    for number, (_, x0, y0, case, entry) in enumerate(sorted(points, reverse=True)[:n_label], 1):
        spots.setdefault((x0, y0), []).append(str(number))
        notes.append(f"{number}: {_short(case, 24)} ({_short(entry)})")
    ax.set_xlabel(metric_title(standard), color=STANDARD_COLOUR)
    ax.set_ylabel(metric_title(cc), color=CC_COLOUR)
    dropped = a.size - len(points)
    title = f"{standard} vs {cc} per case"
    if dropped:
        title += f" ({dropped} undefined or infinite left out)"
    ax.set_title(title)
    entries = _side_legend(ax, ax.get_legend_handles_labels()[0], title="entry")
    if notes:
        ax.add_artist(entries)
        blank = [Line2D([], [], linestyle="")] * len(notes)
        ax.legend(
            blank,
            notes,
            title="largest disagreements",
            loc="upper left",
            bbox_to_anchor=(-0.2, -0.17),
            ncols=2,
            frameon=False,
            fontsize=8,
            handlelength=0,
            handletextpad=0,
        )
    ax.grid(alpha=0.3)
    fig.canvas.draw()  # the final axis limits, which place the points
    labels = [(x0, y0, ",".join(numbers)) for (x0, y0), numbers in spots.items()]
    _place_labels(ax, labels, fontsize=8, fontweight="bold")
    return _write(fig, stem)


@dataclass(frozen=True)
class GalleryCase:
    """One (entry, case) of the slice gallery with its standard and CC score."""

    entry: str
    case: str
    standard: float
    cc: float


def gallery_cases(
    lb: Leaderboard, *, standard: str = "dice", cc: str = "cc_dice", n: int = 4
) -> list[GalleryCase]:
    """The ``n`` (entry, case) pairs where ``standard`` and ``cc`` disagree most.

    Pairs with a NaN or infinite value are skipped; ties are ordered by entry and case.
    """
    a, b = lb.data.scores[standard], lb.data.scores[cc]
    pairs = []
    for entry in a.columns:
        for case in a.index:
            x, y = float(a.loc[case, entry]), float(b.loc[case, entry])
            if math.isfinite(x) and math.isfinite(y):
                pairs.append((-abs(x - y), entry, case, x, y))
    pairs.sort()
    return [GalleryCase(e, c, x, y) for _, e, c, x, y in pairs[:n]]


def _projection(array: np.ndarray, axis: int, *, mask: bool) -> np.ndarray:
    return np.asarray(array.any(axis=axis) if mask else array.max(axis=axis))


def plot_slice_gallery(
    lb: Leaderboard,
    stem: Path,
    *,
    workspace: Workspace,
    standard: str = "dice",
    cc: str = "cc_dice",
    n: int = 4,
) -> list[Path]:
    """Reference (green) and prediction (red) contours on the image, where Dice and CC-Dice
    disagree most (as in Fig. 34 of the CC-Metrics chapter).

    3D cases are shown as a coronal maximum-intensity projection of the PET/PT channel (the
    first channel when there is none) with the projected masks' contours, so every lesion is
    visible; 2D cases (ChestXDet) are shown as they are. Only paths recorded in the store are
    opened: the prediction from the run's ``predictions`` artifact, the images from its ``data``
    artifact (:attr:`LeaderboardData.artifacts`). Returns ``[]`` when no prediction or image can
    be found (e.g. the run folder was deleted, or a wave-1 run recorded no data root) or the task
    is 2D with instance predictions.
    """
    from matplotlib.lines import Line2D

    from leaderboards.cases import CaseLoader, display_channel

    if lb.data.spec.dims != 3 or standard not in lb.data.scores or cc not in lb.data.scores:
        return []
    channel = display_channel(lb.data.spec.channels)
    loader = CaseLoader(lb.data, workspace)
    panels = []
    for item in gallery_cases(lb, standard=standard, cc=cc, n=n):
        volumes = loader.load(item.entry, item.case)
        if volumes is None:
            continue
        spacing = volumes.spacing  # (z, y, x)
        panels.append(
            (
                item,
                volumes.image,
                volumes.reference > 0,
                volumes.prediction > 0,
                spacing[0] / spacing[2],
            )
        )
    if not panels:
        return []
    plt = _pyplot()
    # each panel as tall as its projection (z voxels x spacing ratio over x voxels), no padding
    ratio = max(img.shape[0] * aspect / img.shape[2] for _, img, _, _, aspect in panels)
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(3.4 * len(panels), 3.4 * min(max(ratio, 0.4), 2.0) + 1.3),
        squeeze=False,
        layout="constrained",
    )
    for ax, (item, image, ref, pred, aspect) in zip(axes[0], panels, strict=True):
        mip = _projection(image, 1, mask=False)
        ax.imshow(mip, cmap="gray_r", origin="lower", aspect=aspect)
        for mask, colour in ((ref, "#00c000"), (pred, "#e00000")):
            proj = _projection(mask, 1, mask=True).astype(float)
            if proj.any():
                ax.contour(proj, levels=[0.5], colors=colour, linewidths=1.2, origin="lower")
        ax.set_title(
            f"{_short(item.case, 22)}\n{_short(item.entry)}: "
            f"{standard} {item.standard:.2f}, {cc} {item.cc:.2f}",
            fontsize=9,
        )
        ax.set_axis_off()
    fig.suptitle(
        f"Where {standard} and {cc} disagree most: coronal maximum-intensity projection of the "
        f"{channel} image",
        fontsize=10,
    )
    fig.legend(
        handles=[
            Line2D([], [], color="#00c000", label="reference contour"),
            Line2D([], [], color="#e00000", label="prediction contour"),
        ],
        loc="outside lower center",
        ncols=2,
        frameon=False,
        fontsize=9,
    )
    return _write(fig, stem)


def plot_significance_map(
    lb: Leaderboard, metric: str, pvalues: pd.DataFrame, stem: Path, *, alpha: float
) -> list[Path]:
    """challengeR's significance map: is the row entry significantly better than the column?

    ``pvalues`` is :func:`leaderboards.comparisons.pairwise_significance` (one-sided Wilcoxon
    signed-rank, row better than column), rows and columns in the metric's test-based order. A
    dark cell is a significant win of the row entry (``p < alpha``), the test-based ranking's
    ``wins`` are the dark cells of a row; with up to 12 entries each cell shows its p-value.
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    plt = _pyplot()
    entries = [str(e) for e in pvalues.index]
    n = len(entries)
    p = pvalues.to_numpy(dtype=float)
    cells = np.where(np.isnan(p), np.nan, (p < alpha).astype(float))
    colours = ("#e8eef4", "#2c5d8a")
    side = max(3.6, 0.62 * n + 2.6)
    fig, ax = plt.subplots(figsize=(side + 1.8, side))
    ax.imshow(
        np.ma.masked_invalid(cells), cmap=ListedColormap(colours), vmin=0, vmax=1, aspect="equal"
    )
    for row in range(n):
        ax.add_patch(
            plt.Rectangle((row - 0.5, row - 0.5), 1, 1, facecolor="white", edgecolor="#999999")
        )
        if n <= 12:
            for col in range(n):
                if row != col and not np.isnan(p[row, col]):
                    shade = "white" if cells[row, col] == 1 else "black"
                    text = f"{p[row, col]:.2g}" if p[row, col] >= 0.001 else "<.001"
                    ax.text(col, row, text, ha="center", va="center", color=shade, fontsize=8)
    labels = [_short(e) for e in entries]
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("compared with (column)")
    ax.set_ylabel("entry (row)")
    ax.spines[["top", "right"]].set_visible(True)
    ax.set_title(f"{metric}: one-sided Wilcoxon signed-rank, \u03b1 = {alpha:g}", fontsize=10)
    legend = [
        Patch(facecolor=colours[1], label=f"row better than column (p < {alpha:g})"),
        Patch(facecolor=colours[0], label="not significant"),
    ]
    ax.legend(
        handles=legend, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8
    )
    return _write(fig, stem)


def plot_podium(lb: Leaderboard, metric: str, ranks: pd.DataFrame, stem: Path) -> list[Path]:
    """challengeR's podium plot of one metric.

    Each podium place (x, 1 = best) is split into one column per entry (entries in overall
    rank order, each in its colour). For every case, each entry's value (y) is drawn in its
    column on the podium place of the rank it took on that case (``ranks``, from
    :func:`leaderboards.comparisons.podium_ranks`); the values of one case are joined by a grey
    line, as in challengeR. Below, bars give the share of the cases with a value of the entry
    on which it took each place. Undefined (NaN) values are left out of both panels; infinite
    values are left out of the upper one (counted in the title).
    """
    plt = _pyplot()
    scores = lb.data.scores[metric]
    order = [str(e) for e in lb.overall.index]
    colours = entry_colours(order)
    n = len(order)
    width = 1.0 / (n + 1)
    fig, (top, bottom) = plt.subplots(
        2,
        1,
        figsize=(max(5.0, 1.1 * n + 2.5), 5.6),
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1]},
    )

    def x_of(place: int, column: int) -> float:
        return place - 0.5 + (column + 1) * width

    hidden = 0
    for case in scores.index:
        xs, ys = [], []
        for column, entry in enumerate(order):
            value = float(scores.loc[case, entry])
            if not math.isfinite(value):
                hidden += int(not math.isnan(value))
                continue
            xs.append(x_of(int(ranks.loc[case, entry]), column))
            ys.append(value)
        line = sorted(zip(xs, ys, strict=True))
        if len(line) > 1:
            top.plot(*zip(*line, strict=True), color="#9a9a9a", linewidth=0.6, zorder=1)
    for column, entry in enumerate(order):
        values = scores[entry].to_numpy(dtype=float)
        keep = np.isfinite(values)
        places = ranks[entry].to_numpy(dtype=int)[keep]
        top.scatter(
            [x_of(int(r), column) for r in places],
            values[keep],
            s=22,
            color=colours[entry],
            edgecolor="white",
            linewidth=0.4,
            zorder=3,
            label=_short(entry),
        )
        taken = ranks[entry].to_numpy(dtype=int)[~np.isnan(values)]  # cases it has a value on
        share = [float(np.mean(taken == place)) if taken.size else 0.0 for place in range(1, n + 1)]
        bottom.bar(
            [x_of(place, column) for place in range(1, n + 1)],
            share,
            width=width * 0.9,
            color=colours[entry],
        )
    for place in range(1, n):
        for ax in (top, bottom):
            ax.axvline(place + 0.5, color="#cccccc", linewidth=0.8)
    top.set_ylabel(metric_title(metric))
    title = f"{lb.data.task} / {lb.data.split}: podium of {metric} ({len(scores)} cases)"
    if hidden:
        title += f", {hidden} infinite values not shown"
    top.set_title(title, fontsize=10)
    top.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    top.grid(axis="y", alpha=0.3)
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("share of cases")
    bottom.set_xticks(range(1, n + 1), [f"place {p}" for p in range(1, n + 1)])
    bottom.set_xlim(0.5, n + 0.5)
    bottom.set_xlabel("podium place (rank on the case, 1 = best)")
    return _write(fig, stem)


def plot_tau_bootstrap(
    taus: dict[tuple[str, str], np.ndarray],
    observed: dict[tuple[str, str], float],
    stem: Path,
    *,
    title: str,
) -> list[Path]:
    """Bootstrap distributions of Kendall's tau, one panel per (standard, CC) metric pair.

    A histogram of the taus of the bootstrap samples (NaN samples, where a ranking ties every
    entry, are counted in the panel title), the observed tau as a solid line and the central
    95% of the samples as dashed lines.
    """
    plt = _pyplot()
    pairs = list(taus)
    n_cols = min(3, len(pairs))
    n_rows = -(-len(pairs) // n_cols)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(3.6 * n_cols + 0.4, 3.0 * n_rows + 0.6),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    for ax in axes.flat[len(pairs) :]:
        ax.set_visible(False)
    bins = np.linspace(-1.0, 1.0, 41)
    for ax, pair in zip(axes.flat, pairs, strict=False):
        values = np.asarray(taus[pair], dtype=float)
        defined = values[~np.isnan(values)]
        ax.hist(defined, bins=bins, color=CC_COLOUR, alpha=0.75, edgecolor="white")
        tau = observed[pair]
        if math.isfinite(tau):
            ax.axvline(
                tau, color=STANDARD_COLOUR, linewidth=2, label=f"observed \u03c4 = {tau:.2f}"
            )
        if defined.size:
            low, high = np.quantile(defined, [0.025, 0.975])
            for edge, label in ((low, "central 95% of samples"), (high, None)):
                ax.axvline(edge, color="black", linestyle="--", linewidth=1, label=label)
        ax.set_xlim(-1.05, 1.05)
        ax.set_xlabel("Kendall's \u03c4 on a bootstrap sample")
        label = f"{pair[0]} vs {pair[1]}"
        undefined = values.size - defined.size
        if undefined:
            label += f"\n({undefined} samples with every entry tied left out)"
        ax.set_title(label, fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, frameon=False, loc="upper left")
        ax.grid(axis="y", alpha=0.3)
    for row in axes:
        row[0].set_ylabel("bootstrap samples")
    fig.suptitle(title, fontsize=10)
    return _write(fig, stem)
