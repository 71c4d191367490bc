"""Infinite values (HD95 of an empty side): every statistic stays defined and right; the board
caps them at the task's worst value, and the raw ``inf`` stays in the per-case results.

One test per statistic with ``inf`` in its input, each against an oracle: numpy over the same
seeded resamples (bootstrap CI, bootstrap ranks), hand-computed ranks (rank-then-aggregate,
weighted ranking), scipy's Wilcoxon on the differences with ``inf`` replaced by a value larger
than every finite one (test-based ranking).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator.store import Store
from leaderboards.board import compute_leaderboard
from leaderboards.data import load_leaderboard_data
from leaderboards.ranking import (
    WeightedRanking,
    aggregate_then_rank,
    rank_then_aggregate,
    weighted_rank,
)
from leaderboards.ranking import test_based_rank as significance_rank
from leaderboards.site import publish_leaderboard
from leaderboards.statistics import (
    bootstrap_aggregate_ci,
    bootstrap_ranks,
    bootstrap_weighted_ranks,
)
from tests.leaderboards.official_stores import Board, btcv_board

INF, NAN = math.inf, math.nan


def _indices(n_cases: int, n_resamples: int, seed: int) -> np.ndarray:
    """The bootstrap's resamples, restated: rows drawn with replacement by a seeded generator."""
    return np.random.default_rng(seed).integers(0, n_cases, size=(n_resamples, n_cases))


def _hd95(seed: int) -> pd.DataFrame:
    """Lower is better; ``a`` finite, ``b`` inf on two cases, ``c`` inf on one and NaN on one."""
    rng = np.random.default_rng(seed)
    scores = pd.DataFrame(rng.uniform(1, 20, size=(8, 3)), columns=["a", "b", "c"])
    scores.loc[[1, 5], "b"] = INF
    scores.loc[3, "c"] = INF
    scores.loc[6, "c"] = NAN
    return scores


def _quantile_oracle(values: np.ndarray, q: float) -> float:
    """Linear interpolation between order statistics; equal neighbours give themselves."""
    ordered = np.sort(values[~np.isnan(values)])
    position = q * (ordered.size - 1)
    lo = int(np.floor(position))
    hi = min(lo + 1, ordered.size - 1)
    if position == lo or ordered[lo] == ordered[hi]:
        return float(ordered[lo])
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (position - lo))


@pytest.mark.parametrize("seed", [0, 1])
def test_bootstrap_ci_with_infinite_values(seed: int) -> None:
    scores = _hd95(seed)
    ci = bootstrap_aggregate_ci(scores, n_resamples=400, seed=seed)
    idx = _indices(len(scores), 400, seed)
    for entry in scores:
        values = scores[entry].to_numpy()
        means = np.array([np.nanmean(values[rows]) for rows in idx])
        assert ci.loc[entry, "ci_low"] == pytest.approx(_quantile_oracle(means, 0.025))
        assert ci.loc[entry, "ci_high"] == pytest.approx(_quantile_oracle(means, 0.975))
    assert not ci.isna().any().any()  # never inf - inf = nan
    assert ci.loc["b", "estimate"] == INF and ci.loc["b", "ci_high"] == INF
    assert math.isfinite(ci.loc["a", "ci_high"])
    # the finite column is numpy's own percentile
    a = np.array([np.mean(scores["a"].to_numpy()[rows]) for rows in idx])
    assert ci.loc["a", "ci_low"] == pytest.approx(np.quantile(a, 0.025), rel=1e-12)


@pytest.mark.parametrize("method", ["mean", "median", "rank_then_mean"])
def test_bootstrap_ranks_with_infinite_values(method: str) -> None:
    """Oracle: the point ranking itself (pandas: inf after finite, NaN after inf) per resample."""
    scores = _hd95(3)
    scores.loc[:, "d"] = scores["b"]  # b and d tie on every resample
    scores.loc[:, "e"] = NAN  # undefined except on case 0: NaN aggregates rank after inf ones
    scores.loc[0, "e"] = 0.5
    boot = bootstrap_ranks(
        scores,
        higher_is_better=False,
        method=method,  # type: ignore[arg-type]
        n_resamples=60,
        seed=2,
    )
    for b, rows in enumerate(_indices(len(scores), 60, 2)):
        sample = scores.iloc[rows].reset_index(drop=True)
        if method == "rank_then_mean":
            per_case = scores.rank(axis=1, method="average", na_option="bottom")
            mean_rank = per_case.iloc[rows].mean()
            expected = mean_rank.rank(method="min").astype(int)
        else:
            expected = aggregate_then_rank(
                sample,
                higher_is_better=False,
                aggregate=method,  # type: ignore[arg-type]
            )["rank"]
        assert boot.iloc[b].to_dict() == expected.reindex(scores.columns).to_dict(), b
    assert (boot["b"] == boot["d"]).all()


def test_rank_then_aggregate_with_infinite_values() -> None:
    """Hand-computed: case 1: a 1, c 2, b 3; case 2: c 1, a and b tie (inf) 2.5;
    case 3: b 1, c (inf) 2, a (NaN) 3. Means a 6.5/3, b 6.5/3, c 5/3."""
    scores = pd.DataFrame({"a": [1.0, INF, NAN], "b": [INF, INF, 2.0], "c": [2.0, 3.0, INF]})
    out = rank_then_aggregate(scores, higher_is_better=False)
    assert out["score"].to_dict() == pytest.approx({"a": 6.5 / 3, "b": 6.5 / 3, "c": 5 / 3})
    assert out["rank"].to_dict() == {"c": 1, "a": 2, "b": 2}


def _wins_oracle(scores: pd.DataFrame, alpha: float) -> dict[str, int]:
    """Wilcoxon (scipy) on differences with inf replaced: equal values differ by 0, one
    infinite side by +-M, M larger than every finite difference (a rank test sees only ranks)."""
    from scipy.stats import wilcoxon

    wins = dict.fromkeys(scores.columns, 0)
    for a in scores:
        for b in scores:
            if a == b:
                continue
            pair = scores[[a, b]].dropna()
            x, y = pair[a].to_numpy(), pair[b].to_numpy()
            finite = np.isfinite(x) & np.isfinite(y)
            big = 1e6 * (1 + np.abs(x[finite] - y[finite]).max(initial=0))
            with np.errstate(invalid="ignore"):  # inf - inf, not used
                diff = np.where(
                    x == y, 0.0, np.where(finite, x - y, np.where(np.isinf(x), big, -big))
                )
            nonzero = diff[diff != 0]
            if nonzero.size == 0:
                continue
            exact = nonzero.size < 50 and np.unique(np.abs(nonzero)).size == nonzero.size
            p = wilcoxon(
                diff,
                alternative="less",
                method="exact" if exact else "approx",
                correction=not exact,
            ).pvalue
            wins[a] += bool(p < alpha)
    return wins


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_test_based_rank_with_infinite_values(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 14
    good = rng.uniform(1, 3, n)
    scores = pd.DataFrame(
        {"good": good, "bad": good + rng.uniform(2, 4, n), "worst": good + rng.uniform(5, 9, n)}
    )
    scores.loc[[0, 4, 9], "worst"] = INF  # inf against finite: the largest differences
    scores.loc[[4], "bad"] = INF  # inf against inf: no difference
    out = significance_rank(scores, higher_is_better=False, alpha=0.05)
    assert out["score"].to_dict() == _wins_oracle(scores, 0.05)
    assert out["score"].to_dict() == {"good": 2, "bad": 1, "worst": 0}
    assert list(out.index) == ["good", "bad", "worst"]


def test_weighted_rank_with_infinite_values() -> None:
    """Hand-computed: Dice ranks a 1, b 2, c 3 (means .9, .8, .7); HD95 means a inf, b 3,
    c inf: ranks b 1, a 2, c 2 (tie). Weighted 0.5/0.5: a 1.5, b 1.5, c 2.5; a and b tie
    and Dice breaks it for a."""
    dice = pd.DataFrame({"a": [0.9, 0.9], "b": [0.8, 0.8], "c": [0.7, 0.7]})
    hd95 = pd.DataFrame({"a": [1.0, INF], "b": [3.0, 3.0], "c": [INF, INF]})
    scores = {"dice": dice, "hd95": hd95}
    directions = {"dice": True, "hd95": False}
    scheme = WeightedRanking({"dice": 0.5, "hd95": 0.5}, tiebreak="dice")
    out = weighted_rank(scores, directions, scheme)
    assert out["rank_hd95"].to_dict() == {"a": 2, "b": 1, "c": 2}
    assert out["score"].to_dict() == {"a": 1.5, "b": 1.5, "c": 2.5}
    assert out["rank"].to_dict() == {"a": 1, "b": 2, "c": 3}
    # with the tie-break on HD95 instead: a's mean is inf, b's 3: b first
    by_hd95 = WeightedRanking({"dice": 0.5, "hd95": 0.5}, tiebreak="hd95")
    assert weighted_rank(scores, directions, by_hd95)["rank"].to_dict() == {"b": 1, "a": 2, "c": 3}
    # and its bootstrap ranks every resample as weighted_rank does
    boot = bootstrap_weighted_ranks(scores, directions, by_hd95, n_resamples=30, seed=1)
    for b, rows in enumerate(_indices(2, 30, 1)):
        sample = {m: s.iloc[rows].reset_index(drop=True) for m, s in scores.items()}
        expected = weighted_rank(sample, directions, by_hd95)["rank"]
        assert boot.iloc[b].to_dict() == expected.to_dict(), b


@pytest.fixture(scope="module")
def btcv(tmp_path_factory: pytest.TempPathFactory) -> Board:
    return btcv_board(tmp_path_factory.mktemp("btcv-inf"))


def test_the_board_caps_infinite_values_and_keeps_the_raw_ones(btcv: Board) -> None:
    with Store.open(workspace=btcv.workspace) as db:
        data = load_leaderboard_data("btcv", "all", store=db)
    raw = data.results[data.results["metric"] == "hd95"]
    assert np.isinf(raw["value"]).sum() >= 4  # no-spleen: 3 cases; missing-case: 13 labels
    assert data.worst["hd95"] == data.worst["assd"] == 50.0
    for metric, matrix in data.scores.items():
        assert np.isfinite(matrix.to_numpy()).all(), metric
    # a per-case value is the mean over labels of the capped values: no-spleen's spleen counts
    # as 50 mm next to a perfect liver (0 mm) and 11 absent organs (0 mm)
    assert data.scores["hd95"].loc["0001", "no-spleen"] == pytest.approx(50.0 / 13)
    assert (data.scores["hd95"]["missing-case"].loc["0002"]) == 50.0
    lb = compute_leaderboard(data, n_resamples=100, seed=0)
    for metric, table in lb.per_metric.items():
        values = table[["mean", "ci_low", "ci_high", "median"]].to_numpy()
        assert np.isfinite(values).all(), metric
    # tie-breaks now work: the entries are told apart on HD95
    assert lb.per_metric["hd95"]["rank_mean"].nunique() > 1


def test_the_page_prints_no_broken_interval_and_no_infinite_mean(
    btcv: Board, tmp_path: Path
) -> None:
    index = publish_leaderboard(
        "btcv", "all", workspace=btcv.workspace, out=tmp_path, n_resamples=50
    )
    page = (index.parent / "btcv--all" / "index.html").read_text()
    assert not re.search(r"–\s*–", page)  # "x – –": an interval with an undefined bound
    for table in re.findall(r'<table class="sortable metric-table">.*?</table>', page, re.S):
        for row in re.findall(r"<tr><td class=\"text\">.*?</tr>", table, re.S):
            cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
            mean, interval = cells[1], cells[2]
            assert re.fullmatch(r"\d+\.\d+", mean), row
            assert re.fullmatch(r"\d+\.\d+ – \d+\.\d+", interval), row
    assert "∞" not in page.split('id="ranking"')[1].split("</table>")[0]
    assert "50.00 mm" in page  # the worst value is stated
