"""Runs scored on different case sets are never ranked together; the board says which it left out.

The issue's reproduction: the same predictions scored before and after the test set changed got
different ranks, because the board ranked the union of the cases and filled the cases a run did
not score with worst values.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluator.store import ResultRow, Store
from evaluator.workspace import Workspace
from leaderboards.board import compute_leaderboard
from leaderboards.data import load_leaderboard_data
from leaderboards.site import publish_leaderboard
from tests.leaderboards.official_stores import (
    btcv_board,
    btcv_reference,
    score_btcv_entry,
    write_btcv_case,
)


def test_runs_on_another_case_set_are_left_out_and_named(tmp_path: Path) -> None:
    # 'before' scores the reference itself on cases 0001-0003 ...
    board = btcv_board(tmp_path, entries=("before",))
    # ... then the data gains a case (the test set changed) and the same predictions, plus a
    # fourth one, are scored again as 'after'; 'shifted' is scored on the new set too
    write_btcv_case(board, "0004", btcv_reference(3))
    score_btcv_entry(board, "after", tmp_path / "preds" / "after", kind="perfect")
    score_btcv_entry(board, "shifted", tmp_path / "preds" / "shifted")
    with Store.open(workspace=board.workspace) as db:
        runs = {r.name: r for r in db.list_runs(task="btcv")}
        data = load_leaderboard_data("btcv", "all", store=db)
    before, after = runs["btcv-before"], runs["btcv-after"]
    assert before.parameters["case_set"] != after.parameters["case_set"]
    assert data.entries == ["after", "shifted"]
    assert data.cases == ["0001", "0002", "0003", "0004"]
    assert list(data.left_out) == ["btcv-before"]
    reason = data.left_out["btcv-before"]
    assert before.parameters["case_set"] in reason and after.parameters["case_set"] in reason
    assert "3 cases" in reason and "4 cases" in reason and "'btcv-shifted'" in reason
    lb = compute_leaderboard(data, n_resamples=20, seed=0)
    assert list(lb.overall.index) == ["after", "shifted"]
    assert lb.per_metric["dice"].loc["after", "mean"] == 1.0  # no case filled with worst values
    index = publish_leaderboard(
        "btcv", "all", workspace=board.workspace, out=tmp_path / "site", n_resamples=20
    )
    folder = index.parent / "btcv--all"
    page = (folder / "index.html").read_text()
    assert "Run btcv-before is not ranked: scored on other cases" in page
    payload = json.loads((folder / "downloads" / "leaderboard.json").read_text())
    assert payload["left_out_runs"] == {"btcv-before": reason}


def test_runs_without_a_case_set_form_a_set_of_their_own(workspace: Workspace) -> None:
    """Runs of old stores have no case set: ranked together when the latest run has none
    either, left out when it has one."""
    url = f"sqlite:///{workspace.root / 'lb.sqlite'}"
    with Store.open(url) as db:
        for entry, parameters in (
            ("old-a", {}),
            ("old-b", {}),
            ("new", {"case_set": "sha256:0123456789abcdef", "n_cases": 2}),
        ):
            run = db.create_run(
                name=f"r-{entry}", task="btcv", split="test", parameters=parameters, entry=entry
            )
            for case in ("1", "2"):
                db.record_case(run.id, case, [ResultRow(1, "dice", 0.5), ResultRow(1, "hd95", 1.0)])
            db.finish_run(run.id)
            if entry == "old-b":
                assert load_leaderboard_data("btcv", "test", store=db).entries == [
                    "old-a",
                    "old-b",
                ]
        data = load_leaderboard_data("btcv", "test", store=db)
    assert data.entries == ["new"]
    assert set(data.left_out) == {"r-old-a", "r-old-b"}
    assert "no recorded case set" in data.left_out["r-old-a"]


@pytest.mark.parametrize("finish_order", [("x", "y"), ("y", "x")])
def test_the_most_recently_finished_run_decides(
    workspace: Workspace, finish_order: tuple[str, str]
) -> None:
    url = f"sqlite:///{workspace.root / 'lb.sqlite'}"
    with Store.open(url) as db:
        ids = {}
        for entry in ("x", "y"):
            run = db.create_run(
                name=f"r-{entry}",
                task="btcv",
                split="test",
                parameters={"case_set": f"sha256:{entry * 16}", "n_cases": 1},
                entry=entry,
            )
            db.record_case(run.id, "1", [ResultRow(1, "dice", 0.5), ResultRow(1, "hd95", 1.0)])
            ids[entry] = run.id
        for entry in finish_order:
            db.finish_run(ids[entry])
        data = load_leaderboard_data("btcv", "test", store=db)
    assert data.entries == [finish_order[-1]]
    assert list(data.left_out) == [f"r-{finish_order[0]}"]
