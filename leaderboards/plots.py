"""Leaderboard figures (matplotlib, Agg backend), each written as PNG and SVG side by side.

Entries appear in the order of the task's overall ranking, each with one fixed colour in every
figure. Standard metrics are orange and their CC counterparts blue, as in the degradation-study
figures (:mod:`evaluator.simulate.plots`). Non-finite per-case values (an infinite HD95 of an
empty prediction, say) cannot be drawn; a plot says how many it left out. matplotlib is imported
inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
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
    "GalleryCase",
    "entry_colours",
    "gallery_cases",
    "metric_title",
    "plot_blob",
    "plot_dot_box",
    "plot_rank_heatmap",
    "plot_slice_gallery",
    "plot_std_vs_cc",
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
    """Save as ``stem.png`` (150 dpi) and ``stem.svg``, then close the figure."""
    plt = _pyplot()
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, dpi in ((".png", 150), (".svg", None)):
        path = stem.with_suffix(suffix)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        written.append(path)
    plt.close(fig)
    return written


def _short(name: str, limit: int = 18) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def plot_dot_box(lb: Leaderboard, metric: str, stem: Path) -> list[Path]:
    """Per-case values of one metric: a box per entry with every case as a dot.

    Entries are ordered by the overall ranking (best on the left); the box shows quartiles and
    median, whiskers 1.5 IQR, the diamond the mean. Returns the PNG and SVG paths.
    """
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
    ax.set_ylabel(metric_title(metric))
    title = f"{lb.data.task} / {lb.data.split}: {metric} per case"
    if left_out:
        title += f" ({left_out} infinite values not shown)"
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
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
    ax.set_title(f"{lb.data.task} / {lb.data.split}: rank per metric (1 = best)")
    fig.colorbar(image, ax=ax, label="rank", fraction=0.04)
    return _write(fig, stem)


def plot_blob(lb: Leaderboard, stem: Path, *, boot: pd.DataFrame | None = None) -> list[Path]:
    """Blob plot of bootstrap rank distributions (challengeR style).

    For each entry (x, in overall rank order) a disc at every rank it took on the bootstrap
    samples, its area proportional to how often; the black cross is the median rank and the line
    the 95% interval. ``boot`` defaults to the overall ranking's bootstrap.
    """
    plt = _pyplot()
    ranks = lb.boot_overall if boot is None else boot
    order = list(lb.overall.index)
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
    ax.set_ylabel("rank on bootstrap samples (1 = best)")
    ax.set_title(
        f"{lb.data.task} / {lb.data.split}: rank stability ({len(ranks)} bootstrap samples)"
    )
    ax.grid(axis="y", alpha=0.3)
    return _write(fig, stem)


def plot_std_vs_cc(
    lb: Leaderboard, standard: str, cc: str, stem: Path, *, n_label: int = 4
) -> list[Path]:
    """Per case and entry: the standard metric (x) against its CC counterpart (y).

    The diagonal is agreement; the ``n_label`` points farthest from it are labelled with their
    case id. Points with a non-finite coordinate are left out (counted in the title).
    """
    plt = _pyplot()
    order = list(lb.overall.index)
    colours = entry_colours(order)
    a, b = lb.data.scores[standard], lb.data.scores[cc]
    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    points: list[tuple[float, float, float, str]] = []
    for entry in order:
        x, y = a[entry].to_numpy(dtype=float), b[entry].to_numpy(dtype=float)
        keep = np.isfinite(x) & np.isfinite(y)
        ax.scatter(x[keep], y[keep], s=26, color=colours[entry], label=_short(entry), alpha=0.85)
        points += [
            (float(abs(xi - yi)), float(xi), float(yi), str(case))
            for xi, yi, case, k in zip(x, y, a.index, keep, strict=True)
            if k
        ]
    finite = [v for p in points for v in p[1:3]]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    for _, x0, y0, case in sorted(points, reverse=True)[:n_label]:
        ax.annotate(case, (x0, y0), xytext=(4, 4), textcoords="offset points", fontsize=8)
    ax.set_xlabel(metric_title(standard), color=STANDARD_COLOUR)
    ax.set_ylabel(metric_title(cc), color=CC_COLOUR)
    dropped = a.size - len(points)
    title = f"{standard} vs {cc} per case"
    if dropped:
        title += f" ({dropped} undefined or infinite left out)"
    ax.set_title(title)
    ax.legend(fontsize=8, frameon=False, loc="best")
    ax.grid(alpha=0.3)
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
    visible; 2D cases (ChestXDet) are shown as they are. The prediction is read from the run's
    prediction folder (``parameters["pred"]`` of the run), the images from the data root the runs
    were scored against. Returns ``[]`` when no prediction or image can be found (e.g. the run
    folder was deleted) or the task is 2D with instance predictions.
    """
    from evaluator.datasets.base import label_array, open_dataset
    from evaluator.errors import CCBenchError, DatasetNotFoundError
    from evaluator.evaluate import find_predictions
    from evaluator.ingest import read_prediction

    if lb.data.spec.dims != 3 or standard not in lb.data.scores or cc not in lb.data.scores:
        return []
    import SimpleITK as sitk

    # The data the runs were scored against (``--data-root`` of ``ccbench evaluate``), if any.
    recorded = next(
        (r.parameters["data_root"] for r in lb.data.runs.values() if r.parameters.get("data_root")),
        None,
    )
    try:
        dataset = open_dataset(
            lb.data.spec,
            workspace=workspace,
            data_root=None if recorded is None else Path(recorded),
        )
    except DatasetNotFoundError:
        return []  # the images are gone: no gallery, the rest of the site stands
    channel = next(
        (c for c in lb.data.spec.channels if c.upper() in ("PET", "PT")), lb.data.spec.channels[0]
    )
    panels = []
    for item in gallery_cases(lb, standard=standard, cc=cc, n=n):
        pred_dir = lb.data.runs[item.entry].parameters.get("pred")
        if not pred_dir:
            continue
        pred_file = find_predictions(Path(pred_dir), [item.case]).get(item.case)
        if not isinstance(pred_file, Path):
            continue
        case = dataset.case(item.case)
        ref_img = case.read_label()
        try:  # through the same checks as scoring: a prediction is untrusted input
            pred_img = read_prediction(
                pred_file, what=f"prediction {item.case}", expected_size=ref_img.GetSize()
            )
            pred = label_array(pred_img, labels=lb.data.spec.labels, what="prediction") > 0
        except CCBenchError:
            continue
        image = sitk.GetArrayFromImage(case.read_channel(channel)).astype(float)
        ref = label_array(ref_img, labels=lb.data.spec.labels, what=f"reference {item.case}") > 0
        spacing = ref_img.GetSpacing()  # (x, y, z)
        panels.append((item, image, ref, pred, spacing[2] / spacing[0]))
    if not panels:
        return []
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.8), squeeze=False)
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
    fig.suptitle("reference (green) vs prediction (red), coronal MIP", fontsize=10)
    return _write(fig, stem)
