"""Leaderboard data and rankings on phantom runs of known quality, and on hand-made stores."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from evaluator.datasets.registry import MetricProfile, RankingSpec, load_registry
from evaluator.errors import StoreError
from evaluator.metrics.registry import METRICS
from evaluator.store import ResultRow, Store
from evaluator.workspace import Workspace
from leaderboards.board import compute_leaderboard
from leaderboards.data import load_leaderboard_data, weighted_scheme
from leaderboards.ranking import WeightedRanking, weighted_rank
from leaderboards.statistics import (
    _resample_indices,
    bootstrap_aggregate_ci,
    bootstrap_weighted_ranks,
)
from tests.leaderboards.conftest import PhantomBoard


def _data(board: PhantomBoard):  # type: ignore[no-untyped-def]
    with Store.open(workspace=board.workspace) as db:
        return load_leaderboard_data(board.task, board.split, store=db)


def test_phantom_entries_rank_in_construction_order(phantom_board: PhantomBoard) -> None:
    data = _data(phantom_board)
    assert data.ranking.weights == {"dice": 0.5, "fp_volume_ml": 0.25, "fn_volume_ml": 0.25}
    lb = compute_leaderboard(data, n_resamples=50, seed=0)
    assert list(lb.overall.index) == phantom_board.order
    assert list(lb.overall["rank"]) == [1, 2, 3, 4]
    for metric in ("dice", "cc_dice", "nsd"):
        assert list(lb.per_metric[metric].sort_values("rank_mean").index) == phantom_board.order
    # the perfect entry is perfect on every case
    assert lb.per_metric["dice"].loc["perfect", "mean"] == 1.0
    assert lb.per_metric["hd95"].loc["perfect", "mean"] == 0.0


def test_bootstrap_intervals_are_reproducible_with_a_seed(phantom_board: PhantomBoard) -> None:
    data = _data(phantom_board)
    a = compute_leaderboard(data, n_resamples=40, seed=5)
    b = compute_leaderboard(data, n_resamples=40, seed=5)
    c = compute_leaderboard(data, n_resamples=40, seed=6)
    pd.testing.assert_frame_equal(a.boot_overall, b.boot_overall)
    pd.testing.assert_frame_equal(a.per_metric["dice"], b.per_metric["dice"])
    assert not c.boot_ranks["fn_volume_ml"].equals(a.boot_ranks["fn_volume_ml"])
    half = {
        s: bootstrap_aggregate_ci(data.scores["dice"], seed=s, n_resamples=40, level=0.5)
        for s in (5, 6)
    }
    assert not half[5].equals(half[6])
    dice = a.per_metric["dice"]
    assert ((dice["ci_low"] <= dice["mean"]) & (dice["mean"] <= dice["ci_high"])).all()


def test_standard_vs_cc_pairs_have_kendall_tau(phantom_board: PhantomBoard) -> None:
    lb = compute_leaderboard(_data(phantom_board), n_resamples=20, seed=0)
    pairs = {(c.standard, c.cc): c.tau for c in lb.cc}
    assert set(pairs) >= {("dice", "cc_dice"), ("nsd", "cc_nsd"), ("hd95", "cc_hd95")}
    assert all(-1.0 <= tau <= 1.0 for tau in pairs.values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bootstrap_weighted_ranks_equal_weighted_rank_per_resample(seed: int) -> None:
    """Oracle: rank each resample with weighted_rank itself (ties, NaN and tie-breaks)."""
    rng = np.random.default_rng(seed)
    entries = ["a", "b", "c", "d"]
    dice = pd.DataFrame(rng.choice([0.2, 0.5, 0.8], size=(7, 4)), columns=entries)
    fpv = pd.DataFrame(rng.choice([0.0, 1.0, 3.0], size=(7, 4)), columns=entries)
    dice.iloc[0, 1] = math.nan
    scores = {"dice": dice, "fp_volume_ml": fpv}
    directions = {"dice": True, "fp_volume_ml": False}
    scheme = WeightedRanking({"dice": 0.5, "fp_volume_ml": 0.5}, tiebreak="dice")
    boot = bootstrap_weighted_ranks(scores, directions, scheme, n_resamples=30, seed=seed)
    for b, rows in enumerate(_resample_indices(7, 30, seed)):
        sample = {m: s.iloc[rows].reset_index(drop=True) for m, s in scores.items()}
        expected = weighted_rank(sample, directions, scheme)["rank"].reindex(entries)
        assert list(boot.iloc[b]) == list(expected), f"resample {b}"


def _store_with_runs(tmp_url: str) -> Store:
    """Two entries on three cases; 'b' has no row for case 3; a failed run of 'c'."""
    db = Store.open(tmp_url)
    for entry, values in (("a", [0.9, 0.8, 0.7]), ("b", [0.95, 0.85, None])):
        run = db.create_run(
            name=f"r-{entry}", task="btcv", split="test", parameters={}, entry=entry
        )
        for case, value in zip(("1", "2", "3"), values, strict=True):
            if value is not None:
                rows = [ResultRow(1, "dice", value), ResultRow(1, "hd95", 2.0)]
                db.record_case(run.id, case, rows)
        db.finish_run(run.id)
    failed = db.create_run(name="r-c", task="btcv", split="test", parameters={}, entry="c")
    db.record_case(failed.id, "1", [ResultRow(1, "dice", 1.0)])
    db.finish_run(failed.id, status="failed")
    return db


def test_missing_cases_take_the_worst_value_and_failed_runs_are_left_out(
    workspace: Workspace,
) -> None:
    db = _store_with_runs(f"sqlite:///{workspace.root / 'lb.sqlite'}")
    data = load_leaderboard_data("btcv", "test", store=db)
    assert data.entries == ["a", "b"]
    assert data.scores["dice"].loc["3", "b"] == METRICS["dice"].worst == 0.0
    # a missing HD95 counts with the task's worst value (50 mm), not inf
    assert data.scores["hd95"].loc["3", "b"] == data.worst["hd95"] == 50.0
    lb = compute_leaderboard(data, n_resamples=10, seed=0)
    # b is better on cases 1 and 2 but its missing case 3 costs it the first place
    assert list(lb.overall.index) == ["a", "b"]
    with pytest.raises(StoreError, match="no finished run"):
        load_leaderboard_data("btcv", "fold0", store=db)


def test_degradation_study_runs_never_enter_the_leaderboard(workspace: Workspace) -> None:
    db = _store_with_runs(f"sqlite:///{workspace.root / 'lb.sqlite'}")
    study = db.create_run(
        name="simulate/btcv/test/drop-smallest/n01",
        task="btcv",
        split="test",
        parameters={"simulation": "dataset"},
        kind="study",
    )
    db.record_case(study.id, "1", [ResultRow(1, "dice", 1.0)])
    db.finish_run(study.id)
    assert load_leaderboard_data("btcv", "test", store=db).entries == ["a", "b"]


def test_primary_ranking_is_a_weighted_ranking_with_one_metric() -> None:
    scheme = weighted_scheme(RankingSpec(primary="dice", tiebreak="hd95"))
    assert scheme == WeightedRanking({"dice": 1.0}, tiebreak="hd95")
    dice = pd.DataFrame({"x": [0.8, 0.6], "y": [0.6, 0.8]})  # equal means: HD95 decides
    hd95 = pd.DataFrame({"x": [5.0, 5.0], "y": [1.0, 2.0]})
    out = weighted_rank({"dice": dice, "hd95": hd95}, {"dice": True, "hd95": False}, scheme)
    assert list(out.index) == ["y", "x"]


def test_ranking_configuration_is_validated() -> None:
    with pytest.raises(ValidationError, match="either 'primary'"):
        RankingSpec(primary="dice", weights={"dice": 1.0})
    with pytest.raises(ValidationError, match="either 'primary'"):
        RankingSpec()
    with pytest.raises(ValidationError, match="not among the profile's metrics"):
        MetricProfile(name="p", metrics=("dice",), ranking=RankingSpec(primary="hd95"))
    for profile in load_registry().profiles.values():
        assert profile.ranking is not None
        assert all(m in METRICS for m in profile.ranking.metrics)
