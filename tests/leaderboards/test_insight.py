"""Metric insight on a board: the sensitivity panel, the disagreement explorer and its case views.

Oracles: the study's own ``sensitivity.csv`` for the panel's numbers, a per-case ranking computed
here from the store's raw rows for the explorer, the store's per-component rows and an
independent ``ccbench metrics`` scoring of the files (:func:`evaluator.metrics.files.score_files`)
for the case views' component tables.
"""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator.datasets.base import open_dataset
from evaluator.metrics.api import COMPONENT_FIELD
from evaluator.metrics.files import score_files
from evaluator.metrics.registry import METRICS
from evaluator.store import Store
from leaderboards.board import compute_leaderboard
from leaderboards.data import load_leaderboard_data
from leaderboards.explorer import case_slug
from leaderboards.sensitivity import metric_range, sensitivity_context
from leaderboards.site import publish_leaderboard

from .conftest import PhantomBoard, StudiedBoard, copy_store


class _Tables(HTMLParser):
    """Every ``<table>`` of a page: its id, classes and rows of (text, data-value) cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self._cell: list[str] | None = None
        self._value: str | None = None
        self.h1 = ""
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.tables.append({"id": a.get("id"), "class": a.get("class") or "", "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell, self._value = [], a.get("data-value")
        elif tag == "h1":
            self._in_h1 = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            self.tables[-1]["rows"][-1].append((text, self._value))
            self._cell = None
        elif tag == "h1":
            self._in_h1 = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_h1:
            self.h1 += data


def tables(page: Path) -> _Tables:
    parser = _Tables()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def table(page: Path, key: str) -> list[list[tuple[str, str | None]]]:
    """The rows of the table whose id or class is ``key``."""
    found = [t for t in tables(page).tables if t["id"] == key or key in t["class"].split()]
    assert len(found) == 1, (page, key, len(found))
    return found[0]["rows"]


@pytest.fixture(scope="module")
def board_dir(studied_board: StudiedBoard, tmp_path_factory: pytest.TempPathFactory) -> Path:
    board = studied_board.board
    out = tmp_path_factory.mktemp("insight-site")
    publish_leaderboard(
        board.task, board.split, workspace=board.workspace, out=out, store=studied_board.url,
        n_resamples=20,
    )  # fmt: skip
    return out / f"{board.task}--{board.split}"


@pytest.fixture(scope="module")
def ranked(studied_board: StudiedBoard) -> tuple[str, ...]:
    board = studied_board.board
    with Store.open(studied_board.url) as db:
        return load_leaderboard_data(board.task, board.split, store=db).metrics


def _delta(value: float) -> str:
    """The panel's notation, written here independently: sign, 3 significant digits."""
    if math.isinf(value):
        return "+∞" if value > 0 else "−∞"
    return f"{value:+.3g}".replace("-", "−")


def test_the_panel_shows_the_study_numbers_for_every_ranked_metric(
    board_dir: Path, studied_board: StudiedBoard, ranked: tuple[str, ...]
) -> None:
    study = pd.read_csv(studied_board.sensitivity_csv)
    study = study[study["op"] == "drop"].set_index("metric")
    rows = table(board_dir / "index.html", "sensitivity-panel")
    header = [text for text, _ in rows[1]]
    assert header == ["smallest", "largest"]
    body = {r[0][0].removesuffix(" yours"): r[1:] for r in rows[2:]}
    titles = {m: METRICS[m].title or m for m in ranked}
    assert set(body) == set(titles.values())  # one row per ranked metric, no other
    checked = 0
    for metric, title in titles.items():
        for (text, _), order in zip(body[title], ("smallest", "largest"), strict=True):
            d1, dmax = study.loc[metric, f"{order}_n1"], study.loc[metric, f"{order}_nmax"]
            assert text.endswith(f"{_delta(d1)} · {_delta(dmax)}"), (metric, order, text)
            # the verdict against the rule, worked out here for the bounded metrics
            span = {"": 1.0, "mm": 50.0}.get(METRICS[metric].unit)
            if span is not None and math.isfinite(METRICS[metric].worst):
                share = abs(d1) / span
                word = "sees" if share >= 0.05 else "barely sees" if share >= 0.005 else "ignores"
                assert text.startswith(word), (metric, order, text, share)
                checked += 1
    assert checked >= 2 * 10
    page = (board_dir / "sensitivity.html").read_text()
    assert "sensitivity-all" in page and "simulation_" in page  # the curves moved here


def test_cc_dice_sees_a_dropped_small_lesion_that_dice_barely_sees(
    board_dir: Path, studied_board: StudiedBoard
) -> None:
    """The thesis's point on this board's own data: the phantoms have several lesions, so one
    small lesion is a small share of the voxels but a large share of the components."""
    study = pd.read_csv(studied_board.sensitivity_csv).set_index(["op", "metric"])
    dice = abs(study.loc[("drop", "dice"), "smallest_n1"])
    cc_dice = abs(study.loc[("drop", "cc_dice"), "smallest_n1"])
    assert cc_dice > 5 * dice
    rows = {r[0][0]: r[1:] for r in table(board_dir / "index.html", "sensitivity-panel")[2:]}
    assert rows["CC-Dice"][0][0].startswith("sees")
    assert not rows["Dice"][0][0].startswith("sees")


def test_a_board_without_a_study_says_how_to_run_one(phantom_board: PhantomBoard) -> None:
    with Store.open(workspace=phantom_board.workspace) as db:
        data = load_leaderboard_data(phantom_board.task, phantom_board.split, store=db)
    assert data.sensitivity is None
    context = sensitivity_context(compute_leaderboard(data, n_resamples=10))
    assert context == {
        "available": False,
        "command": "ccbench simulate dataset --task autopet-phantom --split all",
    }


def _case_means(db: Store, metric: str) -> pd.DataFrame:
    """Case x entry means over labels of the raw rows, capped at the metric's worst value."""
    frame = db.results_frame()
    runs = {r.id: r.entry for r in db.list_runs(kind=("entry", "baseline"))}
    frame = frame[frame["metric"] == metric].assign(entry=lambda f: f["run_id"].map(runs))
    spec = METRICS[metric]
    values = frame["value"].astype(float)
    worst = 50.0 if spec.unit == "mm" else spec.worst
    capped = values.clip(upper=worst) if not spec.higher_is_better else values
    return frame.assign(value=capped).pivot_table("value", "case_id", "entry", aggfunc="mean")


def test_the_explorer_lists_the_largest_rank_disagreements_first(
    board_dir: Path, studied_board: StudiedBoard
) -> None:
    with Store.open(studied_board.url) as db:
        dice, cc_dice = _case_means(db, "dice"), _case_means(db, "cc_dice")
    rank_a = dice.rank(axis=1, method="min", ascending=False)
    rank_b = cc_dice.rank(axis=1, method="min", ascending=False)
    gap = (rank_b - rank_a).abs().stack()
    rows = next(
        t["rows"]
        for t in tables(board_dir / "index.html").tables
        if "explorer-table" in t["class"].split() and t["rows"][0][2][0] == "dice"
    )[1:]
    assert rows, "no disagreement listed"
    shown = [(int(r[4][0]), int(r[5][0]), r[0][0], r[1][0]) for r in rows]
    firsts = [abs(b - a) for a, b, _, _ in shown]
    assert firsts == sorted(firsts, reverse=True)
    assert firsts[0] == int(gap.max())
    for a, b, case, entry in shown:  # every listed rank is the rank computed here
        assert (a, b) == (int(rank_a.loc[case, entry]), int(rank_b.loc[case, entry]))


def test_case_views_list_the_stored_components(
    board_dir: Path, studied_board: StudiedBoard
) -> None:
    views = sorted((board_dir / "cases").glob("*.html"))
    assert views, "no case view written"
    board = studied_board.board
    with Store.open(studied_board.url) as db:
        comps = db.components_frame()
        runs = {r.id: r for r in db.list_runs(kind=("entry", "baseline"))}
        comps["entry"] = comps["run_id"].map(lambda i: runs[i].entry)
    for view in views:
        page = tables(view)
        case, entry = (part.strip() for part in page.h1.split("/", 1))
        assert view.stem == case_slug(entry, case)
        stored = comps[(comps["entry"] == entry) & (comps["case_id"] == case)]
        shown = table(view, "components")
        header = [text for text, _ in shown[0]]
        cc = header[5:]
        assert cc and all(m.startswith("cc_") for m in cc)
        fields = stored[stored["metric"].str.startswith(COMPONENT_FIELD)]
        info = fields.pivot_table("value", "component", "metric")
        assert len(shown) - 1 == len(info)
        for row in shown[1:]:
            k = int(row[0][0]) - 1
            assert int(row[1][0]) == info.loc[k, COMPONENT_FIELD + "voxels"]
            assert float(row[2][1]) == pytest.approx(info.loc[k, COMPONENT_FIELD + "volume_ml"])
            detected = bool(info.loc[k, COMPONENT_FIELD + "detected"])
            assert row[4][0] == ("yes" if detected else "no (missed)")
            for m, (_, raw) in zip(cc, row[5:], strict=True):
                value = stored[(stored["metric"] == m) & (stored["component"] == k)]["value"]
                assert float(raw) == pytest.approx(float(value.iloc[0]))
        images = sorted((board_dir / "cases" / "img").glob(f"{view.stem}-l1-c*-axial.png"))
        assert len(images) == min(len(info), 12)
        assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in images)
    # the stored records against an independent scoring of the same files
    view = views[0]
    case, entry = (part.strip() for part in tables(view).h1.split("/", 1))
    run = next(r for r in runs.values() if r.entry == entry)
    pred = next(Path(run.parameters["pred"]).glob(f"{case}.*"))
    label = open_dataset(board.task, workspace=board.workspace).case(case).label
    assert label is not None
    oracle = score_files(pred, label, metrics=["cc_dice"], labels=None, connectivity=None)
    rows = table(view, "components")[1:]
    assert len(rows) == len(oracle.components[1])
    for row, comp in zip(rows, oracle.components[1], strict=True):
        assert int(row[1][0]) == comp.voxels
        assert row[4][0].startswith("yes" if comp.detected else "no")
        assert comp.centre_mm is not None
        shown_mm = [float(v) for v in re.findall(r"-?\d+\.\d", row[3][0])]
        assert np.allclose(shown_mm, comp.centre_mm, atol=0.051)


def test_metric_range_of_an_unbounded_metric_is_the_largest_value_reached() -> None:
    assert metric_range("fp_volume_ml", [0.5, 12.5, float("inf"), float("nan")]) == 12.5
    assert metric_range("dice", [0.3]) == 1.0
    assert math.isnan(metric_range("hd95", [0.0, 0.0]))  # no scale: no verdict


def test_a_board_never_imports_what_the_store_names(
    phantom_board: PhantomBoard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store (shared, or written by someone else) names a module as a run's user metric: the
    board reports the metric as unknown and never imports the module."""
    imported = tmp_path / "imported"
    (tmp_path / "trapmod.py").write_text(f"open({str(imported)!r}, 'w').write('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    url = copy_store(phantom_board, tmp_path / "shared.sqlite")
    with Store.open(url) as db:
        for run in db.list_runs(task=phantom_board.task):
            parameters = {**run.parameters, "user_metrics": ["trapmod:metric"]}
            db.update_run(run.id, parameters=parameters)
    with Store.open(url) as db:
        data = load_leaderboard_data(phantom_board.task, phantom_board.split, store=db)
    assert not imported.exists()
    assert "trapmod:metric" in data.unranked
    assert "neither registered here nor named" in data.unranked["trapmod:metric"]
