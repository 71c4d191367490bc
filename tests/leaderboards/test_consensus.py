"""Consensus rankings across tasks: hand-computed methods, bootstrap stability, the page."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from evaluator.workspace import Workspace
from leaderboards.board import BoardRanking
from leaderboards.consensus import (
    CONSENSUS_METHODS,
    bootstrap_consensus,
    consensus_table,
    cross_task_consensus,
    sharing_tasks,
    task_ranks,
)
from leaderboards.ranking import aggregate_then_rank
from leaderboards.statistics import bootstrap_ranks
from tests.leaderboards.conftest import HOSTILE


def _board(ranks: dict[str, int]) -> pd.Series:
    return pd.Series(ranks, name="rank")


#: Three boards. "extra" ran on t1 only and is ranked first there: among the compared entries
#: a, b, c, d the ranks on t1 close its gap (a 1, b 2, c 3, d 4). t2 ties a and c.
BOARDS = {
    "t1": _board({"extra": 1, "a": 2, "b": 3, "c": 4, "d": 5}),
    "t2": _board({"b": 1, "a": 2, "c": 2, "d": 4}),
    "t3": _board({"c": 1, "d": 2, "b": 3, "a": 4}),
}


def test_hand_computed_fixture_per_task_ranks() -> None:
    ranks = task_ranks(BOARDS)
    assert ranks.missing == {"extra": ["t2", "t3"]}
    assert ranks.ranks.to_dict("index") == {
        "a": {"t1": 1, "t2": 2, "t3": 4},
        "b": {"t1": 2, "t2": 1, "t3": 3},
        "c": {"t1": 3, "t2": 2, "t3": 1},
        "d": {"t1": 4, "t2": 4, "t3": 2},
    }
    assert ranks.board_ranks.loc["a", "t1"] == 2  # the board's own rank, "extra" ahead


def test_hand_computed_fixture_consensus() -> None:
    table = consensus_table(task_ranks(BOARDS).ranks)
    # mean of the ranks (ties: minimum rank):
    #   a (1 + 2 + 4) / 3 = 7/3, b (2 + 1 + 3) / 3 = 2, c (3 + 2 + 1) / 3 = 2,
    #   d (4 + 4 + 2) / 3 = 10/3  ->  b, c tie at 1; a 3; d 4
    assert table["score_mean"].to_dict() == pytest.approx(
        {"a": 7 / 3, "b": 2.0, "c": 2.0, "d": 10 / 3}
    )
    assert table["rank_mean"].to_dict() == {"a": 3, "b": 1, "c": 1, "d": 4}
    # median of the ranks: a median(1, 2, 4) = 2, b median(2, 1, 3) = 2,
    #   c median(3, 2, 1) = 2, d median(4, 4, 2) = 4  ->  a, b, c tie at 1; d 4
    assert table["score_median"].to_dict() == {"a": 2.0, "b": 2.0, "c": 2.0, "d": 4.0}
    assert table["rank_median"].to_dict() == {"a": 1, "b": 1, "c": 1, "d": 4}
    # euclidean (relations' mean relation scored by generalized ranks): the tie of a and c on
    # t2 (ranks 2 and 3) counts as 2.5 each:
    #   a (1 + 2.5 + 4) / 3 = 2.5, b (2 + 1 + 3) / 3 = 2, c (3 + 2.5 + 1) / 3 = 6.5/3,
    #   d (4 + 4 + 2) / 3 = 10/3  ->  b 1, c 2, a 3, d 4
    assert table["score_euclidean"].to_dict() == pytest.approx(
        {"a": 2.5, "b": 2.0, "c": 6.5 / 3, "d": 10 / 3}
    )
    assert table["rank_euclidean"].to_dict() == {"a": 3, "b": 1, "c": 2, "d": 4}
    assert list(table.index) == ["b", "c", "a", "d"]  # sorted by the euclidean rank


#: The hand-computed consensus ranks of :data:`BOARDS` (see the test above).
HAND_RANKS = {
    "mean": {"a": 3, "b": 1, "c": 1, "d": 4},
    "median": {"a": 1, "b": 1, "c": 1, "d": 4},
    "euclidean": {"a": 3, "b": 1, "c": 2, "d": 4},
}


@pytest.mark.parametrize("method", list(HAND_RANKS))
def test_a_bootstrap_sample_is_ranked_by_the_method(method: str) -> None:
    # two samples: the boards themselves, then every task reversed (d first, a last)
    reverse = {"a": 4, "b": 3, "c": 2, "d": 1, "extra": 5}
    boot = {t: pd.DataFrame([b.to_dict(), reverse]) for t, b in BOARDS.items()}
    stability = bootstrap_consensus(boot, task_ranks(BOARDS).ranks, method)
    assert stability.boot.iloc[0].to_dict() == HAND_RANKS[method]
    assert stability.boot.iloc[1].to_dict() == {"a": 4, "b": 3, "c": 2, "d": 1}
    assert stability.taus[0] == pytest.approx(1.0)


def _relations_euclidean(ranks: pd.DataFrame) -> pd.Series:
    """Independent oracle: relations' "euclidean" consensus as R computes it, written out.

    Incidence of a task's ranking I_t[x, y] = rank_t(x) <= rank_t(y) (``as.relation``); the
    consensus incidence is the mean over tasks; the score ``(n + 1 + colSums - rowSums) / 2``
    (``relation_scores(..., decreasing = FALSE)``).
    """
    values = ranks.to_numpy(dtype=float)  # entries x tasks
    n = values.shape[0]
    incidence = np.mean(
        [np.less_equal.outer(values[:, t], values[:, t]) for t in range(values.shape[1])], axis=0
    )
    return pd.Series((n + 1 + incidence.sum(axis=0) - incidence.sum(axis=1)) / 2, index=ranks.index)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_euclidean_equals_the_relations_package_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ranks = pd.DataFrame(
        rng.integers(1, 4, size=(6, 4)), index=[f"e{i}" for i in range(6)]
    )  # many ties
    table = consensus_table(ranks)
    oracle = _relations_euclidean(ranks)
    assert table["score_euclidean"].reindex(oracle.index).to_numpy() == pytest.approx(
        oracle.to_numpy()
    )


def _boot(scores: dict[str, pd.DataFrame], seed: int, n: int = 200) -> dict[str, pd.DataFrame]:
    return {
        t: bootstrap_ranks(s, higher_is_better=True, n_resamples=n, seed=seed + k)
        for k, (t, s) in enumerate(sorted(scores.items()))
    }


def _scores(seed: int) -> dict[str, pd.DataFrame]:
    """Three tasks, 12 cases: "best" far ahead, "x" and "y" indistinguishable."""
    rng = np.random.default_rng(seed)
    return {
        t: pd.DataFrame(
            {
                "best": 0.9 + rng.normal(0, 0.01, 12),
                "x": 0.5 + rng.normal(0, 0.1, 12),
                "y": 0.5 + rng.normal(0, 0.1, 12),
            }
        )
        for t in ("t1", "t2", "t3")
    }


@pytest.mark.parametrize("method", list(CONSENSUS_METHODS))
def test_bootstrap_is_seeded_and_a_dominant_entry_is_stable(method: str) -> None:
    scores = _scores(0)
    full = task_ranks(
        {t: aggregate_then_rank(s, higher_is_better=True)["rank"] for t, s in scores.items()}
    ).ranks
    first = bootstrap_consensus(_boot(scores, 5), full, method)
    again = bootstrap_consensus(_boot(scores, 5), full, method)
    other = bootstrap_consensus(_boot(scores, 6), full, method)
    pd.testing.assert_frame_equal(first.boot, again.boot)
    np.testing.assert_array_equal(first.taus, again.taus)
    assert not first.boot.equals(other.boot)
    assert first.frequencies.loc["best", 1] == 1.0
    assert first.frequencies.sum(axis=1).to_numpy() == pytest.approx(1.0)
    # x and y swap places on many samples: their frequencies are spread, tau below 1
    assert 0.05 < first.frequencies.loc["x", 2] < 0.95
    summary = first.tau_summary()
    assert summary["q1"] <= summary["median"] <= summary["q3"] <= 1.0
    assert summary["q1"] < 1.0


def test_bootstrap_taus_against_the_full_consensus() -> None:
    full = pd.DataFrame({"t1": [1, 2, 3], "t2": [1, 2, 3]}, index=["a", "b", "c"])
    boot = {
        # sample 0: the full order; sample 1: a and c swapped on both tasks; sample 2: b first
        "t1": pd.DataFrame({"a": [1, 3, 2], "b": [2, 2, 1], "c": [3, 1, 3]}),
        "t2": pd.DataFrame({"a": [1, 3, 2], "b": [2, 2, 1], "c": [3, 1, 3]}),
    }
    stability = bootstrap_consensus(boot, full, "mean")
    assert stability.boot.to_dict("list") == {"a": [1, 3, 2], "b": [2, 2, 1], "c": [3, 1, 3]}
    # tau: identical order 1; reversed -1; one swapped pair of three: (2 - 1) / 3
    assert stability.taus.tolist() == pytest.approx([1.0, -1.0, 1 / 3])
    assert stability.frequencies.loc["a"].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3])


def test_cross_task_consensus_needs_two_tasks_of_one_split() -> None:
    empty = pd.DataFrame(columns=["a"], dtype=int)
    ranking = BoardRanking(
        pd.DataFrame({"rank": [1]}, index=["a"]), empty, None, pd.DataFrame(), empty
    )
    boards = {"t1": SimpleNamespace(split="test"), "t2": SimpleNamespace(split="val")}
    with pytest.raises(ValueError, match="two tasks of one split"):
        cross_task_consensus(boards, rankings={"t1": ranking, "t2": ranking})  # type: ignore[arg-type]
    same = {"t1": SimpleNamespace(split="test"), "t2": SimpleNamespace(split="test")}
    result = cross_task_consensus(same, rankings={"t1": ranking, "t2": ranking})  # type: ignore[arg-type]
    assert result.unstable_tasks == ["t1", "t2"] and result.stability == {}


def test_the_largest_set_of_tasks_with_two_common_entries_is_compared() -> None:
    # d shares only z; once d is out, z is on c alone, and c shares only y: out too
    compared, left = sharing_tasks({"a": "xy", "b": "xy", "c": "yz", "d": "zw"})
    assert (compared, left) == (["a", "b"], ["c", "d"])
    assert sharing_tasks({"a": "xyz", "b": "xyz", "c": "xyz"}) == (["a", "b", "c"], [])
    assert sharing_tasks({"a": "xy"}) == ([], ["a"])
    # each task shares two entries with another, but only b is on all three: the pair with
    # the most common entries (a and h: x, s, b) is compared, btcv is left out
    boards = {"a": "xsbg", "h": "xsb", "btcv": "bg"}
    assert sharing_tasks(boards) == (["a", "h"], ["btcv"])
    # three tasks with two common entries beat two tasks with three
    assert sharing_tasks({"a": "pqr", "b": "pqr", "c": "pq"}) == (["a", "b", "c"], [])


@pytest.mark.parametrize("seed", range(30))
def test_the_choice_of_tasks_equals_a_search_over_every_subset(seed: int) -> None:
    from itertools import combinations

    rng = np.random.default_rng(seed)
    boards = {
        f"t{i}": {f"e{j}" for j in range(6) if rng.random() < 0.5}
        for i in range(int(rng.integers(2, 7)))
    }
    best: tuple[int, int, list[str]] | None = None
    for size in range(len(boards), 1, -1):
        for group in combinations(sorted(boards), size):
            common = len(set.intersection(*(boards[t] for t in group)))
            key = (size, common)
            if common >= 2 and (best is None or key > best[:2]):
                best = (size, common, list(group))
    expected = best[2] if best is not None else []
    assert sharing_tasks(boards)[0] == expected


# -- the page, from a real SQLite store -------------------------------------------------------

TASKS = ("autopet-phantom", "autopet-nnunet-phantom")
#: Entry -> quality; "solo" runs on the first task only.
ENTRIES = {"strong": 1.0, "weak": 0.3, HOSTILE: 0.6, "solo": 0.8}


@pytest.fixture(scope="module")
def cross_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two AutoPET phantom tasks (native and nnU-Net layout) sharing three entries, one of them
    hostile; a site folder listing both boards."""
    from evaluator.datasets.phantoms import write_phantoms
    from evaluator.evaluate import evaluate_run
    from evaluator.simulate.degraded import write_degraded_predictions
    from leaderboards.site import publish_cross_task

    root = tmp_path_factory.mktemp("cross")
    ws = Workspace(root / "ws").ensure()
    write_phantoms("autopet", workspace=ws, cases=4)
    write_phantoms("autopet", workspace=ws, cases=4, layout="nnunet")
    for task in TASKS:
        for number, (entry, quality) in enumerate(ENTRIES.items()):
            if entry == "solo" and task != TASKS[0]:
                continue
            pred = write_degraded_predictions(
                task, "all", root / "preds" / f"{task}-{number}", workspace=ws, seed=1,
                quality=quality,
            )  # fmt: skip
            evaluate_run(
                task, "all", pred, workspace=ws, workers=1, entry=entry, run_name=f"{task}-{number}"
            )
    out = root / "site"
    out.mkdir()
    listing = [
        {
            "task": task,
            "split": "all",
            "dataset": "phantom",
            "path": f"{task}--all/index.html",
            "entries": 3,
            "cases": 4,
            "leader": "strong",
            "published": "2024-01-01 00:00",
        }
        for task in TASKS
    ]
    (out / "site.json").write_text(json.dumps(listing))
    page = publish_cross_task(out, workspace=ws, n_resamples=30, seed=0, workers=1)
    assert page == out / "cross-task.html"
    return out


def test_cross_task_page_is_written_linked_and_escaped(cross_site: Path) -> None:
    html = (cross_site / "cross-task.html").read_text()
    index = (cross_site / "index.html").read_text()
    assert 'href="cross-task.html"' in index
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "solo</span>" not in html and "solo &mdash; lacks autopet-nnunet-phantom" in html
    for method in CONSENSUS_METHODS:
        assert f"<th>{method} rank</th>" in html
    for name in ("plots/consensus-all.png", "plots/consensus-all.svg"):
        assert (cross_site / "cross-task" / name).is_file()
        assert f"cross-task/{name}" in html
    table = pd.read_csv(cross_site / "cross-task" / "downloads" / "consensus-all.csv")
    assert set(table["entry"]) == {"strong", "weak", HOSTILE}  # names from the store
    strong = table.set_index("entry").loc["strong"]
    assert strong["rank_euclidean"] == 1 and strong["p_at_rank_euclidean"] == 1.0
    frequencies = pd.read_csv(
        cross_site / "cross-task" / "downloads" / "consensus-all-bootstrap.csv"
    )
    assert set(frequencies["method"]) == set(CONSENSUS_METHODS)


def test_no_shared_split_removes_the_page(cross_site: Path, tmp_path: Path) -> None:
    from leaderboards.site import publish_cross_task

    out = tmp_path / "site"
    out.mkdir()
    listing = json.loads((cross_site / "site.json").read_text())[:1]
    (out / "site.json").write_text(json.dumps(listing))
    (out / "cross-task.html").write_text("stale")
    ws = Workspace(tmp_path / "ws").ensure()
    assert publish_cross_task(out, workspace=ws) is None
    assert not (out / "cross-task.html").exists()
    assert "cross-task.html" not in (out / "index.html").read_text()
