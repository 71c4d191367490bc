"""Cases with broken reference data (error class ``dataset``) are left out of every ranking."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from evaluator.store import CaseError, ResultRow, Store
from evaluator.workspace import Workspace
from leaderboards.board import compute_leaderboard
from leaderboards.data import load_leaderboard_data
from leaderboards.site import entry_slug, publish_leaderboard

NAN = math.nan
#: Entry -> dice per case "1", "2", "3"; None: the entry has no row of the case. Case "2" has
#: broken reference data: entries "a" and "b" recorded a dataset error (NaN rows) and "c" has
#: nothing. Were case "2" scored with the worst value (0 for "c"), "c" would rank last; without
#: it "c" is best.
DICE: dict[str, list[float | None]] = {
    "a": [0.9, NAN, 0.9],
    "b": [0.8, NAN, 0.8],
    "c": [0.95, None, 0.95],
}
BROKEN = "2"


@pytest.fixture
def store_url(workspace: Workspace) -> str:
    url = f"sqlite:///{workspace.root / 'lb.sqlite'}"
    with Store.open(url) as db:
        for entry, values in DICE.items():
            run = db.create_run(
                name=f"r-{entry}", task="btcv", split="test", parameters={}, entry=entry
            )
            for case, value in zip(("1", "2", "3"), values, strict=True):
                if value is None:
                    continue
                rows = [ResultRow(1, "dice", value), ResultRow(1, "hd95", 2.0 if value else NAN)]
                error = None
                if case == BROKEN:
                    error = CaseError("dataset", f"reference of case {case} cannot be read")
                db.record_case(run.id, case, rows, error=error)
            db.finish_run(run.id)
    return url


def test_dataset_error_cases_leave_cases_and_score_matrices(store_url: str) -> None:
    with Store.open(store_url) as db:
        data = load_leaderboard_data("btcv", "test", store=db)
    assert data.entries == ["a", "b", "c"]
    assert data.cases == ["1", "3"]
    assert data.excluded_cases == {BROKEN: "dataset"}
    for metric, matrix in data.scores.items():
        assert list(matrix.index) == ["1", "3"], metric
        assert not matrix.isna().any().any(), metric  # nobody got NaN, nobody got the worst
    assert data.scores["dice"]["c"].tolist() == [0.95, 0.95]
    assert BROKEN not in set(data.results["case"])
    lb = compute_leaderboard(data, n_resamples=10, seed=0)
    assert list(lb.overall.index) == ["c", "a", "b"]
    pd.testing.assert_series_equal(
        lb.per_metric["dice"]["mean"],
        pd.Series({"c": 0.95, "a": 0.9, "b": 0.8}, name="mean"),
        check_names=False,
        check_index_type=False,
        check_exact=False,
    )


def test_the_task_page_names_the_excluded_cases(store_url: str, workspace: Workspace) -> None:
    index = publish_leaderboard(
        "btcv", "test", workspace=workspace, out=workspace.root / "site", store=store_url,
        n_resamples=10,
    )  # fmt: skip
    board = index.parent / "btcv--test"
    page = (board / "index.html").read_text()
    assert "1 case not scorable because of dataset errors: 2." in page
    assert "2 cases" in page  # the two cases that are ranked
    payload = json.loads((board / "downloads" / "leaderboard.json").read_text())
    assert payload["cases"] == ["1", "3"]
    assert payload["excluded_cases"] == {BROKEN: "dataset"}
    assert [r["entry"] for r in payload["overall"]] == ["c", "a", "b"]
    results = pd.read_csv(board / "downloads" / "results.csv", dtype={"case": str})
    assert set(results["case"]) == {"1", "3"}
    entry_page = (board / "entries" / f"{entry_slug('a')}.html").read_text()
    assert "dataset errors: 2." in entry_page
    assert ">dataset<" in entry_page  # the error class stays listed on the entry's page
