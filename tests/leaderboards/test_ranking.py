from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leaderboards.ranking import (
    WeightedRanking,
    aggregate_then_rank,
    kendall_tau,
    rank_then_aggregate,
    score_matrix,
    weighted_rank,
)
from leaderboards.ranking import test_based_rank as significance_rank
from leaderboards.statistics import bootstrap_aggregate_ci, bootstrap_ranks, rank_stability


def _entries_of_known_quality(
    seed: int, n_cases: int = 40, step: float = 0.08, noise: float = 0.01
) -> pd.DataFrame:
    """Dice of four entries whose quality is ordered by construction: e0 > e1 > e2 > e3."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.5, 0.9, n_cases)
    return pd.DataFrame(
        {f"e{k}": np.clip(base - step * k + rng.normal(0, noise, n_cases), 0, 1) for k in range(4)}
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", ["mean", "median", "rank_then_mean", "test_based"])
def test_constructed_order_is_recovered(seed: int, method: str) -> None:
    scores = _entries_of_known_quality(seed)
    if method in ("mean", "median"):
        out = aggregate_then_rank(scores, higher_is_better=True, aggregate=method)  # type: ignore[arg-type]
    elif method == "rank_then_mean":
        out = rank_then_aggregate(scores, higher_is_better=True)
    else:
        out = significance_rank(scores, higher_is_better=True)
    assert list(out.index) == ["e0", "e1", "e2", "e3"]
    assert out["rank"].tolist() == [1, 2, 3, 4]


def test_lower_is_better_direction() -> None:
    scores = _entries_of_known_quality(5)
    error = 1.0 - scores  # e0 has the smallest error
    assert list(aggregate_then_rank(error, higher_is_better=False).index) == [
        "e0",
        "e1",
        "e2",
        "e3",
    ]
    assert list(aggregate_then_rank(error, higher_is_better=True).index) == ["e3", "e2", "e1", "e0"]


def test_ties_share_minimum_rank() -> None:
    scores = pd.DataFrame({"a": [0.5, 0.7], "b": [0.7, 0.5], "c": [0.1, 0.1]})
    out = aggregate_then_rank(scores, higher_is_better=True)
    assert out.loc["a", "rank"] == out.loc["b", "rank"] == 1
    assert out.loc["c", "rank"] == 3


def test_test_based_counts_wins_like_brute_force() -> None:
    from scipy.stats import wilcoxon

    scores = _entries_of_known_quality(7, n_cases=15)
    scores["e1"] = scores["e0"] + np.random.default_rng(3).normal(0, 0.02, 15)  # e0 ~ e1
    out = significance_rank(scores, higher_is_better=True, alpha=0.05)
    for a in scores:
        wins = sum(
            wilcoxon(scores[a] - scores[b], alternative="greater").pvalue < 0.05
            for b in scores
            if b != a
        )
        assert out.loc[a, "score"] == wins


def test_missing_case_takes_worst_value() -> None:
    df = pd.DataFrame(
        {
            "entry": ["a", "a", "b"],
            "case": ["c1", "c2", "c1"],
            "metric": "hd95",
            "value": [1.0, np.nan, 2.0],
        }
    )
    m = score_matrix(df, "hd95", worst=373.0)
    assert m.loc["c2", "b"] == 373.0  # missing: worst
    assert np.isnan(m.loc["c2", "a"])  # present but undefined: stays NaN


def test_autopet_weighted_scheme_with_dice_tiebreak() -> None:
    # a: best Dice, worst FP volume; b: the opposite; c: middle on both.
    dice = pd.DataFrame({"a": [0.9, 0.9], "b": [0.7, 0.7], "c": [0.8, 0.8]})
    fpv = pd.DataFrame({"a": [9.0, 9.0], "b": [1.0, 1.0], "c": [5.0, 5.0]})
    fnv = pd.DataFrame({"a": [1.0, 1.0], "b": [9.0, 9.0], "c": [5.0, 5.0]})
    scheme = WeightedRanking(
        {"dice": 0.5, "fp_volume_ml": 0.25, "fn_volume_ml": 0.25}, tiebreak="dice"
    )
    out = weighted_rank(
        {"dice": dice, "fp_volume_ml": fpv, "fn_volume_ml": fnv},
        {"dice": True, "fp_volume_ml": False, "fn_volume_ml": False},
        scheme,
    )
    # by hand: a = .5*1 + .25*3 + .25*1 = 1.5; b = .5*3 + .25*1 + .25*3 = 2.5; c = 2.0
    assert out["score"].to_dict() == pytest.approx({"a": 1.5, "b": 2.5, "c": 2.0})
    assert out["rank"].to_dict() == {"a": 1, "c": 2, "b": 3}


def test_kendall_tau_identical_and_reversed() -> None:
    r = pd.Series({"x": 1, "y": 2, "z": 3, "w": 4})
    assert kendall_tau(r, r) == pytest.approx(1.0)
    assert kendall_tau(r, 5 - r) == pytest.approx(-1.0)


@pytest.mark.parametrize("method", ["mean", "median", "rank_then_mean", "test_based"])
def test_bootstrap_is_reproducible_with_seed(method: str) -> None:
    scores = _entries_of_known_quality(11, n_cases=12, step=0.02, noise=0.05)
    n = 20 if method == "test_based" else 300
    a = bootstrap_ranks(scores, higher_is_better=True, method=method, n_resamples=n, seed=4)  # type: ignore[arg-type]
    b = bootstrap_ranks(scores, higher_is_better=True, method=method, n_resamples=n, seed=4)  # type: ignore[arg-type]
    c = bootstrap_ranks(scores, higher_is_better=True, method=method, n_resamples=n, seed=5)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(a, b)
    assert a.shape == (n, 4)
    if method != "test_based":
        assert not a.equals(c)
    stab = rank_stability(a)
    assert stab["p_first"].sum() >= 1.0  # ties may share first place
    assert stab.loc["e0", "median_rank"] <= stab.loc["e3", "median_rank"]


def test_bootstrap_matches_loop_over_resamples() -> None:
    scores = _entries_of_known_quality(13, n_cases=10)
    fast = bootstrap_ranks(scores, higher_is_better=True, method="mean", n_resamples=25, seed=2)
    idx = np.random.default_rng(2).integers(0, 10, size=(25, 10))
    for row, sample in enumerate(idx):
        slow = aggregate_then_rank(scores.iloc[sample], higher_is_better=True)["rank"]
        assert fast.iloc[row].to_dict() == slow.reindex(scores.columns).to_dict()


def test_aggregate_ci_covers_and_shrinks() -> None:
    rng = np.random.default_rng(0)
    small = pd.DataFrame({"a": rng.normal(0.7, 0.1, 10)})
    large = pd.DataFrame({"a": rng.normal(0.7, 0.1, 400)})
    ci_small = bootstrap_aggregate_ci(small, seed=1)
    ci_large = bootstrap_aggregate_ci(large, seed=1)
    width = lambda ci: float(ci.loc["a", "ci_high"] - ci.loc["a", "ci_low"])  # noqa: E731
    assert width(ci_large) < width(ci_small)
    assert ci_large.loc["a", "ci_low"] < 0.7 < ci_large.loc["a", "ci_high"]
