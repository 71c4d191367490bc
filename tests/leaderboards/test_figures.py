"""Every figure the site shows can be read: labelled axes, a legend, labels that do not overlap.

The figures are caught as matplotlib draws them (``Figure.savefig``), from a whole publish of
the phantom board (every leaderboard figure) and from the degradation-study plots, which the
site copies from the store.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from leaderboards.site import publish_leaderboard
from tests.leaderboards.conftest import PhantomBoard


@contextmanager
def _catch_figures() -> Iterator[list[Any]]:
    """The figures saved inside the block, each once, in the order they were first saved."""
    from matplotlib.figure import Figure

    figures: list[Any] = []
    save = Figure.savefig

    def catch(self: Any, *args: Any, **kwargs: Any) -> Any:
        if all(f is not self for f in figures):
            figures.append(self)
        return save(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Figure, "savefig", catch)
        yield figures


@pytest.fixture
def drawn() -> Iterator[list[Any]]:
    """The figures saved while the test runs."""
    with _catch_figures() as figures:
        yield figures


def _name(fig: Any) -> str:
    titles = [fig.get_suptitle(), *(ax.get_title() for ax in fig.axes)]
    return " / ".join([t for t in titles if t][:2])


def _unreadable(fig: Any) -> list[str]:
    """What a reader of ``fig`` cannot tell: a data axis without a label (on it or on an axis
    it shares), a figure without a legend or colour bar. Image panels (axis off) and colour
    bars need no axis labels."""
    faults = []
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison or hasattr(ax, "_colorbar"):
            continue
        for axis, shared in (("x", ax.get_shared_x_axes()), ("y", ax.get_shared_y_axes())):
            if not any(getattr(s, f"get_{axis}label")() for s in shared.get_siblings(ax)):
                faults.append(f"{_name(fig)}: panel {ax.get_title()!r} has no {axis} label")
    keyed = fig.legends or any(ax.get_legend() is not None for ax in fig.axes)
    if not keyed and not any(hasattr(ax, "_colorbar") for ax in fig.axes):
        faults.append(f"{_name(fig)}: no legend or colour bar")
    return faults


@pytest.fixture(scope="module")
def published(
    phantom_board: PhantomBoard, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[Any]]:
    """The phantom board published once, with every figure drawn for it."""
    with _catch_figures() as figures:
        index = publish_leaderboard(
            phantom_board.task,
            phantom_board.split,
            workspace=phantom_board.workspace,
            out=tmp_path_factory.mktemp("figures"),
            n_resamples=20,
            workers=1,  # drawn here, where the figures are caught
        )
    return index.parent / f"{phantom_board.task}--{phantom_board.split}", figures


def test_every_board_figure_has_labelled_axes_and_a_legend(
    published: tuple[Path, list[Any]],
) -> None:
    board, figures = published
    assert len(figures) == len(list((board / "plots").glob("*.png")))  # one per published PNG
    faults = [fault for fig in figures for fault in _unreadable(fig)]
    assert faults == []


def _check_scatter_labels(fig: Any) -> None:
    """The numbered points of a standard-vs-CC scatter: numbers 1..n, no case id on the plot,
    no two labels overlapping, every number listed beside the plot with its case."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Annotation

    ax = fig.axes[0]
    notes = [t for t in ax.texts if isinstance(t, Annotation)]
    assert notes, _name(fig)
    assert all(re.fullmatch(r"\d+(,\d+)*", n.get_text()) for n in notes)  # no case ids
    numbers = sorted(int(k) for n in notes for k in n.get_text().split(","))
    assert numbers == list(range(1, len(numbers) + 1))
    renderer = FigureCanvasAgg(fig).get_renderer()  # the figure was closed after saving
    boxes = [n.get_window_extent(renderer) for n in notes]
    for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2):
        assert not a.overlaps(b), (_name(fig), notes[i].get_text(), notes[j].get_text())
    listed = [t.get_text() for child in ax.get_children() if hasattr(child, "get_texts")
              for t in child.get_texts()]  # fmt: skip
    assert all(any(t.startswith(f"{k}: ") for t in listed) for k in numbers), listed


def test_scatter_numbers_its_outliers_without_overlap(published: tuple[Path, list[Any]]) -> None:
    _, figures = published
    scatters = [f for f in figures if re.search(r" vs cc_\w+ per case", _name(f))]
    assert scatters
    for fig in scatters:
        _check_scatter_labels(fig)


@pytest.mark.parametrize("step", [0.0, 0.002, 0.01])
def test_scatter_labels_of_crowded_points_do_not_overlap(
    drawn: list[Any], tmp_path: Path, step: float
) -> None:
    """Four entries whose largest disagreements lie on one spot (step 0) or a hair apart."""
    from types import SimpleNamespace

    from leaderboards.plots import plot_std_vs_cc

    entries = ["a", "b", "c", "d"]
    cases = ["c1", "c2", "c3"]
    dice = pd.DataFrame(
        [[0.1 + step * k for k in range(4)], [0.5] * 4, [0.7] * 4], index=cases, columns=entries
    )
    cc = pd.DataFrame(
        [[0.9 + step * k for k in range(4)], [0.55] * 4, [0.7] * 4], index=cases, columns=entries
    )
    lb = SimpleNamespace(
        overall=pd.DataFrame(index=entries),
        data=SimpleNamespace(scores={"dice": dice, "cc_dice": cc}),
    )
    plot_std_vs_cc(lb, "dice", "cc_dice", tmp_path / "scatter")  # type: ignore[arg-type]
    (fig,) = drawn
    _check_scatter_labels(fig)


def _metric_lines(ax: Any, labels: set[str]) -> list[Any]:
    return sorted(
        (ln for ln in ax.get_lines() if ln.get_label() in labels), key=lambda ln: ln.get_zorder()
    )


def test_toy_figures_name_the_spheres_and_show_every_line(drawn: list[Any], tmp_path: Path) -> None:
    from evaluator.metrics.registry import METRICS
    from evaluator.simulate.plots import plot_toy_study
    from evaluator.simulate.toy import TOY_STUDIES, run_toy_study

    scale = 0.1
    for name in ("lesion_dice_pitfall", "hd95_erode"):
        plot_toy_study(run_toy_study(name, scale=scale), tmp_path / name, title=name)
    pitfall, erode = drawn
    assert [f for fig in drawn for f in _unreadable(fig)] == []
    # hd95_erode: one dashed line per reference sphere, named by its radius in voxels
    legend = " ".join(t.get_text() for t in erode.legends[0].get_texts())
    for sphere in TOY_STUDIES["hd95_erode"].geometry.scaled(scale).spheres:
        assert f"r = {sphere.radius:g} vox" in legend, legend
    assert "radius" in erode.get_suptitle()
    assert erode.axes[0].get_xlabel() == "amount of degradation (voxels)"
    # the pitfall: where Dice, CC-Dice and Lesion Dice coincide, each line still shows, as a
    # wider line under a narrower one, with its own marker
    labels = {METRICS[m].axis_label for m in TOY_STUDIES["lesion_dice_pitfall"].metrics}
    separate = next(ax for ax in pitfall.axes if ax.get_title().endswith("separate"))
    lines = _metric_lines(separate, labels)
    assert {ln.get_label() for ln in lines} == labels
    values = np.array([ln.get_ydata() for ln in lines], dtype=float)
    assert np.ptp(values, axis=0).max() < 0.01  # they do coincide on the plot
    widths = [ln.get_linewidth() for ln in lines]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == len(widths)
    assert len({ln.get_marker() for ln in lines}) == len(lines)


def test_dataset_figure_pairs_each_metric_with_its_cc_variant(
    drawn: list[Any], tmp_path: Path
) -> None:
    from evaluator.simulate.plots import plot_dataset_study

    rows = [
        {"order": order, "n": n, "metric": metric, "median": v, "q25": v, "q75": v, "cases": 4}
        for order in ("smallest", "largest")
        for n in range(4)
        for metric, v in (("dice", 1 - n / 8), ("cc_dice", 1 - n / 4), ("hd95", n), ("cc_hd95", 2 * n))
    ]  # fmt: skip
    plot_dataset_study(pd.DataFrame(rows), tmp_path / "drop", title="drop")
    (fig,) = drawn
    assert _unreadable(fig) == []
    grid = [
        (ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start) for ax in fig.axes
    ]
    assert sorted(grid) == [(0, 0), (0, 1), (1, 0), (1, 1)]  # metric pairs x orders
    assert [ax.get_title() for ax in fig.axes] == [
        "Dice vs CC-Dice: smallest first",
        "Dice vs CC-Dice: largest first",
        "HD95 (mm) vs CC-HD95 (mm): smallest first",
        "HD95 (mm) vs CC-HD95 (mm): largest first",
    ]
    assert fig.axes[0].get_ylabel().startswith("score") and "mm" in fig.axes[2].get_ylabel()
