"""Tests written against the mutants that survived mutation testing of the published numbers.

Mutation testing (issue 12) changed one operator, constant, default or branch at a time in
``leaderboards/`` (ranking, statistics, board, official, comparisons, folds, data) and in the
summary code of ``evaluator/evaluate.py``; each test below fails on at least one such change
that the rest of the suite let through. The expected values are computed independently: by
hand, by enumerating the exact signed-rank distribution, or by the normal approximation written
out (R's ``wilcox.test``), never by calling the code under test a second way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from leaderboards.comparisons import EXACT_BELOW, paired_tests, signed_rank_p
from leaderboards.ranking import (
    WeightedRanking,
    aggregate_then_rank,
    kendall_tau,
    rank_entries,
    rank_then_aggregate,
    score_matrix,
    weighted_rank,
)
from leaderboards.ranking import test_based_rank as significance_rank
from leaderboards.statistics import (
    _quantile,
    bootstrap_aggregate_ci,
    bootstrap_aggregated_dice,
    bootstrap_aggregates,
    bootstrap_ranks,
    bootstrap_weighted_ranks,
    rank_samples,
    rank_stability,
)

INF, NAN = math.inf, math.nan


# --------------------------------------------------------------------------------------------
# signed-rank oracle: exact distribution by enumeration, normal approximation by the formula
# --------------------------------------------------------------------------------------------


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) of ``values``."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size)
    sorted_values = values[order]
    i = 0
    while i < values.size:
        j = i
        while j + 1 < values.size and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _oracle_p(diff: Sequence[float], alternative: str) -> float:
    """p of the signed-rank test by the module rules: zeros dropped; exact (by enumerating the
    2^n sign patterns' rank sums) below 50 distinct |d|; else normal with tie and continuity
    correction. Infinite differences rank above every finite one and tie with each other."""
    d = np.asarray(diff, dtype=float)
    d = d[d != 0]
    n = d.size
    if n == 0:
        return 1.0
    magnitude = np.where(np.isinf(d), np.inf, np.abs(d))
    r = _ranks(magnitude)
    t_plus = float(r[d > 0].sum())
    distinct = np.unique(magnitude).size == n
    if n < 50 and distinct:
        # number of sign patterns per rank sum (ranks 1..n)
        counts = np.zeros(n * (n + 1) // 2 + 1)
        counts[0] = 1
        for k in range(1, n + 1):
            counts[k:] = counts[k:] + counts[:-k].copy()
        probs = counts / 2.0**n
        t = round(t_plus)
        upper = probs[t:].sum()  # P(T+ >= t)
        lower = probs[: t + 1].sum()  # P(T+ <= t)
        if alternative == "greater":
            return float(upper)
        if alternative == "less":
            return float(lower)
        return float(min(1.0, 2 * min(upper, lower)))
    _, tie_counts = np.unique(magnitude, return_counts=True)
    mean = n * (n + 1) / 4
    var = n * (n + 1) * (2 * n + 1) / 24 - float(np.sum(tie_counts**3 - tie_counts)) / 48
    sd = math.sqrt(var)
    if alternative == "greater":
        return float(norm.sf((t_plus - mean - 0.5) / sd))
    if alternative == "less":
        return float(norm.cdf((t_plus - mean + 0.5) / sd))
    z = (abs(t_plus - mean) - 0.5) / sd
    return float(min(1.0, 2 * norm.sf(z)))


#: Differences on which the module's rules matter (exact vs approximation, zeros, ties, inf).
DIFFERENCES = {
    # 6 distinct: exact (p = 2/64); the normal approximation gives 0.0296
    "exact": [-1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    # two zeros dropped (Wilcoxon), the rest distinct: exact on 7; 'pratt' would rank the zeros
    "zeros": [0.0, 0.0, -3.0, 1.0, 2.0, 4.0, 5.0, 6.0, 7.0],
    # tied magnitudes: normal approximation with tie correction, never the exact table
    "ties": [-14.0, -14.0, -8.0, 3.0, 7.0, 11.0, 17.0, 21.0, 22.0, 24.0, 26.0],
    # 49 distinct: still exact
    "n49": [float(k) if k not in (3, 8, 20, 31) else -float(k) for k in range(1, 50)],
    # 50 distinct: the approximation (R switches at 50)
    "n50": [float(k) if k not in (3, 8, 20, 31, 44) else -float(k) for k in range(1, 51)],
    # infinite differences: the largest, tied with each other
    "inf": [INF, INF, -1.0, 2.0, 3.0, 4.0, 0.0],
    # one non-zero difference
    "single": [0.0, 0.0, 3.0],
}


@pytest.mark.parametrize("name", sorted(DIFFERENCES))
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_signed_rank_p_equals_the_oracle(name: str, alternative: str) -> None:
    diff = DIFFERENCES[name]
    assert signed_rank_p(diff, alternative=alternative) == pytest.approx(  # type: ignore[arg-type]
        _oracle_p(diff, alternative), rel=1e-9
    )


def test_signed_rank_p_default_is_two_sided_and_exact_below_fifty() -> None:
    diff = DIFFERENCES["exact"]
    assert signed_rank_p(diff) == pytest.approx(_oracle_p(diff, "two-sided"), rel=1e-12)
    assert EXACT_BELOW == 50


@pytest.mark.parametrize("name", sorted(DIFFERENCES))
def test_test_based_win_flips_exactly_at_the_oracle_p(name: str) -> None:
    """Entry 'a' (= the differences) against 'b' (= 0): a win exactly when p < alpha, with
    p by the oracle; an alpha just above p gives the win, one just below does not."""
    diff = np.asarray(DIFFERENCES[name], dtype=float)
    scores = pd.DataFrame({"a": diff, "b": np.zeros(diff.size)})
    p = _oracle_p(diff, "greater")
    above = significance_rank(scores, higher_is_better=True, alpha=p * 1.001)
    below = significance_rank(scores, higher_is_better=True, alpha=p * 0.999)
    assert above["score"]["a"] == 1 and below["score"]["a"] == 0
    # lower is better: 'b' wins against 'a' by the same test
    p_less = _oracle_p(-diff, "less")
    low = significance_rank(scores, higher_is_better=False, alpha=p_less * 1.001)
    assert low["score"]["b"] == 1


def test_test_based_rank_default_alpha_is_five_percent() -> None:
    """Four positive distinct differences: exact one-sided p = 1/16 = 0.0625, no win at 5%."""
    scores = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0] * 4})
    assert significance_rank(scores, higher_is_better=True)["score"].to_dict() == {"a": 0, "b": 0}
    assert significance_rank(scores, higher_is_better=True, alpha=0.07)["score"]["a"] == 1


def test_infinite_difference_beside_only_zero_finite_differences() -> None:
    """Finite differences all zero, infinite ones present: the infinite ones stay non-zero
    (ranked above the zeros), so 'a' (lower is better) wins on 5 infinite HD95 of 'b'."""
    a = [1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    b = [1.0, 1.0, INF, INF, INF, INF, INF]
    scores = pd.DataFrame({"a": a, "b": b})
    p = _oracle_p([-1.0] * 5, "less")  # five tied differences: the approximation
    out = significance_rank(scores, higher_is_better=False, alpha=p * 1.001)
    assert out["score"].to_dict() == {"a": 1, "b": 0}


# --------------------------------------------------------------------------------------------
# ranking.py
# --------------------------------------------------------------------------------------------


def test_score_matrix_sorts_entries_and_cases_by_default() -> None:
    df = pd.DataFrame(
        {
            "entry": ["b", "a", "b", "a"],
            "case": ["c2", "c2", "c1", "c1"],
            "metric": "dice",
            "value": [0.1, 0.2, 0.3, 0.4],
        }
    )
    out = score_matrix(df, "dice", worst=0.0)
    assert list(out.columns) == ["a", "b"] and list(out.index) == ["c1", "c2"]
    assert out.to_dict() == {"a": {"c1": 0.4, "c2": 0.2}, "b": {"c1": 0.3, "c2": 0.1}}


def test_aggregate_then_rank_default_is_the_mean() -> None:
    """Mean ranks a first (0.6 vs 0.5), the median b (0.5 vs 0.4)."""
    s = pd.DataFrame({"a": [0.4, 0.4, 1.0], "b": [0.5, 0.5, 0.5]})
    out = aggregate_then_rank(s, higher_is_better=True)
    assert out["rank"].to_dict() == {"a": 1, "b": 2}
    assert out["score"].to_dict() == pytest.approx({"a": 0.6, "b": 0.5})


@pytest.mark.parametrize("method", ["mean", "median", "rank_then_mean", "test_based"])
def test_rank_entries_dispatches_by_name(method: str) -> None:
    s = pd.DataFrame({"a": [0.4, 0.4, 1.0, 0.9], "b": [0.5, 0.5, 0.5, 0.5], "c": [0.1] * 4})
    out = rank_entries(s, higher_is_better=True, method=method)  # type: ignore[arg-type]
    if method in ("mean", "median"):
        expected = aggregate_then_rank(s, higher_is_better=True, aggregate=method)  # type: ignore[arg-type]
    elif method == "rank_then_mean":
        expected = rank_then_aggregate(s, higher_is_better=True)
    else:
        expected = significance_rank(s, higher_is_better=True)
    pd.testing.assert_frame_equal(out, expected)
    with pytest.raises(ValueError, match="unknown ranking method"):
        rank_entries(s, higher_is_better=True, method="best")  # type: ignore[arg-type]


def test_weighted_rank_score_is_the_weighted_mean_rank_with_weights_not_summing_to_one() -> None:
    """Weights 2 and 2: the score is the plain mean of the two ranks."""
    dice = pd.DataFrame({"a": [0.9, 0.8], "b": [0.7, 0.6], "c": [0.5, 0.4]})
    hd95 = pd.DataFrame({"a": [9.0, 9.0], "b": [1.0, 1.0], "c": [5.0, 5.0]})
    scheme = WeightedRanking({"dice": 2.0, "hd95": 2.0}, tiebreak="dice")
    out = weighted_rank({"dice": dice, "hd95": hd95}, {"dice": True, "hd95": False}, scheme)
    # dice ranks a1 b2 c3; hd95 ranks b1 c2 a3 -> a 2, b 1.5, c 2.5
    assert out["score"].to_dict() == pytest.approx({"a": 2.0, "b": 1.5, "c": 2.5})
    assert out["rank"].to_dict() == {"b": 1, "a": 2, "c": 3}


def test_weighted_rank_median_aggregate_breaks_ties_on_the_median() -> None:
    """One metric, aggregate median: a and b tie on their median rank (both median 0.5 on
    'x') and the tie-break is the median of 'y': a 0.2 (mean 0.5) vs b 0.3 (mean 0.3),
    higher is better -> b first on the median, a on the mean."""
    x = pd.DataFrame({"a": [0.5, 0.5, 0.5], "b": [0.5, 0.5, 0.5]})
    y = pd.DataFrame({"a": [0.2, 0.2, 1.1], "b": [0.3, 0.3, 0.3]})
    scheme = WeightedRanking({"x": 1.0}, tiebreak="y", aggregate="median")
    out = weighted_rank({"x": x, "y": y}, {"x": True, "y": True}, scheme)
    assert out["tiebreak"].to_dict() == pytest.approx({"a": 0.2, "b": 0.3})
    assert out["rank"].to_dict() == {"b": 1, "a": 2}
    by_mean = weighted_rank(
        {"x": x, "y": y}, {"x": True, "y": True}, WeightedRanking({"x": 1.0}, tiebreak="y")
    )
    assert by_mean["rank"].to_dict() == {"a": 1, "b": 2}  # the default aggregate is the mean


def test_weighted_rank_nan_tiebreak_ranks_after_numbers_lower_is_better() -> None:
    """Equal weighted ranks; the tie-break (lower is better) of 'a' is undefined (NaN): 'a'
    ranks after 'b' although 0 < 0.3 would put a number in its place first."""
    x = pd.DataFrame({"a": [1.0, 1.0], "b": [1.0, 1.0]})
    t = pd.DataFrame({"a": [NAN, NAN], "b": [0.3, 0.3]})
    scheme = WeightedRanking({"x": 1.0}, tiebreak="t")
    out = weighted_rank({"x": x, "t": t}, {"x": True, "t": False}, scheme)
    assert out["rank"].to_dict() == {"b": 1, "a": 2}


def test_kendall_tau_of_two_entries_and_of_partly_shared_entries() -> None:
    assert kendall_tau(pd.Series({"x": 1, "y": 2}), pd.Series({"x": 2, "y": 1})) == -1.0
    assert kendall_tau(pd.Series({"x": 1, "y": 2}), pd.Series({"x": 1, "y": 2})) == 1.0
    one = kendall_tau(pd.Series({"x": 1}), pd.Series({"x": 1}))
    assert isinstance(one, float) and math.isnan(one)
    # only the shared entries are compared: x, y, z (w and v are not in both)
    a = pd.Series({"x": 1, "y": 2, "z": 3, "w": 4})
    b = pd.Series({"v": 9, "z": 1, "y": 2, "x": 3})
    assert kendall_tau(a, b) == pytest.approx(-1.0)


# --------------------------------------------------------------------------------------------
# statistics.py
# --------------------------------------------------------------------------------------------


def _close_entries() -> pd.DataFrame:
    """Three entries close enough that every bootstrap statistic depends on the resamples,
    with means and medians that order them differently."""
    rng = np.random.default_rng(7)
    base = rng.uniform(0.3, 0.9, 12)
    return pd.DataFrame(
        {
            "a": base + rng.normal(0, 0.08, 12),
            "b": np.where(np.arange(12) < 7, base + 0.05, base - 0.2),
            "c": base + rng.normal(0.01, 0.08, 12),
        }
    )


def _resamples(n_cases: int, n_resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n_cases, size=(n_resamples, n_cases))


@pytest.mark.parametrize("method", ["mean", "median", "rank_then_mean", "test_based"])
def test_bootstrap_ranks_are_the_method_on_every_resample(method: str) -> None:
    s = _close_entries()
    boot = bootstrap_ranks(s, higher_is_better=True, method=method, n_resamples=15, seed=3)  # type: ignore[arg-type]
    for row, sample in zip(boot.itertuples(index=False), _resamples(12, 15, 3), strict=True):
        expected = rank_entries(
            s.iloc[sample].reset_index(drop=True),
            higher_is_better=True,
            method=method,  # type: ignore[arg-type]
        )["rank"]
        assert list(row) == expected.reindex(s.columns).tolist()


def test_bootstrap_defaults_are_mean_1000_resamples_seed_0_and_95_percent() -> None:
    s = _close_entries()
    default = bootstrap_ranks(s, higher_is_better=True)
    assert default.shape == (1000, 3)
    pd.testing.assert_frame_equal(
        default, bootstrap_ranks(s, higher_is_better=True, method="mean", n_resamples=1000, seed=0)
    )
    assert not default.equals(bootstrap_ranks(s, higher_is_better=True, n_resamples=1000, seed=1))
    assert not default.equals(
        bootstrap_ranks(s, higher_is_better=True, method="median", n_resamples=1000, seed=0)
    )
    pd.testing.assert_frame_equal(rank_stability(default), rank_stability(default, level=0.95))
    assert not rank_stability(default).equals(rank_stability(default, level=0.5))

    ci = bootstrap_aggregate_ci(s)
    explicit = bootstrap_aggregate_ci(s, aggregate="mean", n_resamples=1000, seed=0, level=0.95)
    pd.testing.assert_frame_equal(ci, explicit)
    for other in (
        bootstrap_aggregate_ci(s, aggregate="median"),
        bootstrap_aggregate_ci(s, n_resamples=1001),
        bootstrap_aggregate_ci(s, seed=1),
        bootstrap_aggregate_ci(s, level=0.9),
    ):
        assert not ci.equals(other)

    agg = bootstrap_aggregates(s)
    assert agg.shape == (1000, 3)
    pd.testing.assert_frame_equal(
        agg, bootstrap_aggregates(s, aggregate="mean", n_resamples=1000, seed=0)
    )
    assert not agg.equals(bootstrap_aggregates(s, seed=1))
    assert not agg.equals(bootstrap_aggregates(s, aggregate="median"))

    scheme = WeightedRanking({"dice": 1.0}, tiebreak="dice")
    weighted = bootstrap_weighted_ranks({"dice": s}, {"dice": True}, scheme)
    assert weighted.shape == (1000, 3)
    pd.testing.assert_frame_equal(
        weighted,
        bootstrap_weighted_ranks({"dice": s}, {"dice": True}, scheme, n_resamples=1000, seed=0),
    )
    assert not weighted.equals(
        bootstrap_weighted_ranks({"dice": s}, {"dice": True}, scheme, n_resamples=1000, seed=1)
    )

    inter = {1: s * 10.0}
    vol = {1: s * 0.0 + 25.0}
    dsc = bootstrap_aggregated_dice(inter, vol)
    assert dsc.shape == (1000, 3)
    pd.testing.assert_frame_equal(
        dsc, bootstrap_aggregated_dice(inter, vol, n_resamples=1000, seed=0)
    )
    assert not dsc.equals(bootstrap_aggregated_dice(inter, vol, n_resamples=1000, seed=1))


def test_rank_samples_tiebreak_is_higher_is_better_by_default() -> None:
    samples = pd.DataFrame({"a": [0.5], "b": [0.5]})
    tie = pd.DataFrame({"a": [1.0], "b": [2.0]})
    out = rank_samples(samples, higher_is_better=True, tiebreak=tie)
    assert out.iloc[0].to_dict() == {"a": 2, "b": 1}


def test_quantile_and_interval_of_an_entry_without_values_are_nan() -> None:
    """An entry with no defined value (Dice on negative cases only) has a NaN interval; the
    others are unaffected."""
    q = _quantile(np.array([[1.0, NAN], [3.0, NAN]]), 0.5)
    assert q[0] == 2.0 and math.isnan(q[1])
    # one value: every quantile is that value; q = 1: the largest, q = 0: the smallest
    assert _quantile(np.array([[5.0]]), 0.975).tolist() == [5.0]
    column = np.array([[3.0], [1.0], [2.0], [NAN]])
    assert _quantile(column, 1.0).tolist() == [3.0]
    assert _quantile(column, 0.0).tolist() == [1.0]
    s = pd.DataFrame({"a": [0.2, 0.4, 0.6], "none": [NAN, NAN, NAN]})
    ci = bootstrap_aggregate_ci(s, n_resamples=50, seed=0)
    assert ci.loc["none"].isna().all()
    assert ci.loc["a", "ci_low"] <= ci.loc["a", "estimate"] <= ci.loc["a", "ci_high"]


# --------------------------------------------------------------------------------------------
# comparisons.py
# --------------------------------------------------------------------------------------------


def test_paired_tests_by_hand_with_holm_and_the_alpha_boundary() -> None:
    """Against 'lead': 'b' below on 5 cases (exact two-sided p = 2/32), 'c' equal (p = 1),
    'd' without a shared case (NaN, left out of Holm's count), 'e' above on 6 cases."""
    s = pd.DataFrame(
        {
            "lead": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
            "b": [0.8, 0.6, 0.4, 0.2, 0.0, NAN],
            "c": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
            "d": [NAN] * 6,
            "e": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        }
    )
    t = paired_tests(s, "lead")
    assert list(t.index) == ["b", "c", "d", "e"]
    assert t["n"].tolist() == [5, 6, 0, 6]
    assert t.loc["b", "mean_difference"] == pytest.approx(-0.3)
    assert t.loc["c", "mean_difference"] == 0.0
    assert math.isnan(t.loc["d", "mean_difference"]) and math.isnan(t.loc["d", "p"])
    assert t.loc["e", "mean_difference"] == pytest.approx(0.35)
    p_b, p_e = 2 / 32, 2 / 64
    assert t["p"].tolist()[:2] == pytest.approx([p_b, 1.0])
    assert t.loc["e", "p"] == pytest.approx(p_e)
    # Holm over the three defined p-values: e (smallest) x 3, b x 2, c x 1, made monotone
    assert t.loc["e", "p_holm"] == pytest.approx(3 * p_e)
    assert t.loc["b", "p_holm"] == pytest.approx(2 * p_b)
    assert t.loc["c", "p_holm"] == 1.0 and math.isnan(t.loc["d", "p_holm"])
    assert t["significant"].tolist() == [False, False, False, False]  # default alpha 0.05
    at = paired_tests(s, "lead", alpha=3 * p_e)  # p_holm == alpha is significant
    assert at["significant"].tolist() == [False, False, False, True]
    assert paired_tests(s, "lead", alpha=0.1)["significant"].tolist() == [
        False,
        False,
        False,
        True,
    ]
    with pytest.raises(Exception, match="not an entry"):
        paired_tests(s, "zz")


def test_pairwise_significance_orientation_and_direction() -> None:
    from leaderboards.comparisons import pairwise_significance

    s = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0], "b": [0.0] * 5, "c": [NAN] * 5})
    p = pairwise_significance(s, higher_is_better=True)
    assert p.loc["a", "b"] == pytest.approx(1 / 32)  # a above b on every case
    assert p.loc["b", "a"] == pytest.approx(1.0)
    assert math.isnan(p.loc["a", "a"]) and math.isnan(p.loc["a", "c"])
    q = pairwise_significance(s, higher_is_better=False)
    assert q.loc["b", "a"] == pytest.approx(1 / 32) and q.loc["a", "b"] == pytest.approx(1.0)
    assert (p.index.name, p.columns.name) == ("entry", "compared_with")


def test_bootstrap_tau_of_one_entry_is_nan() -> None:
    from leaderboards.comparisons import bootstrap_tau

    one = pd.DataFrame({"x": [1, 1, 1]})
    out = bootstrap_tau(one, one)
    assert out.shape == (3,) and np.isnan(out).all()
    a = pd.DataFrame({"x": [1, 2], "y": [2, 1], "z": [3, 3]})
    b = pd.DataFrame({"z": [3, 1], "y": [1, 2], "x": [2, 3]})  # columns aligned by name
    from scipy.stats import kendalltau

    expected = [kendalltau(a.iloc[k], b[a.columns].iloc[k]).statistic for k in range(2)]
    assert bootstrap_tau(a, b).tolist() == pytest.approx(expected)


def test_holm_of_one_p_value_is_that_p_value() -> None:
    from leaderboards.comparisons import holm

    assert holm([0.3]).tolist() == [0.3]
    assert holm([NAN, 0.02]).tolist()[1] == 0.02
    assert np.isnan(holm([NAN, NAN])).all()


def test_bootstrap_tau_of_two_entries() -> None:
    from leaderboards.comparisons import bootstrap_tau

    a = pd.DataFrame({"x": [1, 1, 1], "y": [2, 2, 1]})
    b = pd.DataFrame({"x": [2, 1, 1], "y": [1, 2, 2]})
    assert bootstrap_tau(a, b).tolist()[:2] == [-1.0, 1.0]
    assert math.isnan(bootstrap_tau(a, b)[2])  # 'a' ties both entries on the last resample


# --------------------------------------------------------------------------------------------
# folds.py
# --------------------------------------------------------------------------------------------


def test_summarise_three_folds_mean_and_sample_sd() -> None:
    from leaderboards.folds import summarise_folds

    folds = ("fold0", "fold1", "fold2")
    idx = pd.MultiIndex.from_tuples(
        [("a", f) for f in folds] + [("b", "fold0"), ("b", "fold2")], names=["entry", "fold"]
    )
    per_fold = pd.DataFrame(
        {"dice": [0.1, 0.2, 0.9, 0.5, 0.5], "hd95": [3.0, 6.0, 9.0, 1, 1]}, index=idx
    )
    table, left_out = summarise_folds(per_fold, folds)
    assert list(table.index) == ["a"]
    assert table.loc["a", "dice_mean"] == pytest.approx(0.4)  # not the median 0.2
    assert table.loc["a", "dice_std"] == pytest.approx(math.sqrt((0.09 + 0.04 + 0.25) / 2))
    assert table.loc["a", "hd95_mean"] == pytest.approx(6.0)
    assert table.loc["a", "hd95_std"] == pytest.approx(3.0)
    assert table.loc["a", "n_folds"] == 3
    assert left_out == {"b": "no finished run on fold1"}


def test_fold_summary_takes_the_mean_over_a_folds_cases(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Three cases per fold: fold0 Dice 0.1, 0.2, 0.9 (mean 0.4, median 0.2), the other
    folds 0.5 on every case: per-fold means 0.4, 0.5, 0.5, 0.5, 0.5."""
    from evaluator.store import ResultRow, Store
    from leaderboards.folds import fold_summary

    with Store.open(f"sqlite:///{tmp_path / 'f.sqlite'}") as db:
        for k in range(5):
            run = db.create_run(
                name=f"a-{k}", task="btcv", split=f"fold{k}", parameters={}, entry="a"
            )
            values = (0.1, 0.2, 0.9) if k == 0 else (0.5, 0.5, 0.5)
            for c, dice in enumerate(values):
                rows = [ResultRow(1, "dice", dice), ResultRow(1, "hd95", 2.0)]
                if k == 0:  # a metric only fold0 holds is not summarised
                    rows.append(ResultRow(1, "assd", 1.0))
                db.record_case(run.id, f"{k}-{c}", rows)
            db.finish_run(run.id)
        summary = fold_summary(db, "btcv")
    assert summary is not None
    assert summary.metrics == ("dice", "hd95")
    per_fold = summary.per_fold.xs("a", level="entry")["dice"]
    assert per_fold.tolist() == pytest.approx([0.4, 0.5, 0.5, 0.5, 0.5])
    assert summary.table.loc["a", "dice_mean"] == pytest.approx(0.48)


def test_test_based_win_needs_p_strictly_below_alpha() -> None:
    """Four positive distinct differences: exact one-sided p = 1/16, exactly representable;
    at alpha = 1/16 the test does not reject (p < alpha, as R's wilcox.test decision)."""
    scores = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0] * 4})
    assert significance_rank(scores, higher_is_better=True, alpha=1 / 16)["score"]["a"] == 0


def test_bootstrap_aggregated_dice_is_the_mean_over_three_labels() -> None:
    inter = {k: pd.DataFrame({"a": [v, v]}) for k, v in ((1, 1.0), (2, 2.0), (3, 9.0))}
    vol = {k: pd.DataFrame({"a": [10.0, 10.0]}) for k in (1, 2, 3)}
    boot = bootstrap_aggregated_dice(inter, vol, n_resamples=5, seed=0)
    assert boot["a"].tolist() == pytest.approx([(0.2 + 0.4 + 1.8) / 3] * 5)
    # a summed volume below 1 mm3 is a volume, not an empty label
    small = bootstrap_aggregated_dice(
        {1: pd.DataFrame({"a": [0.1, 0.1]})}, {1: pd.DataFrame({"a": [0.25, 0.25]})}, n_resamples=3
    )
    assert small["a"].tolist() == pytest.approx([0.8] * 3)


def test_bootstrap_weighted_ranks_with_unequal_weights() -> None:
    """The autoPET weights (0.5, 0.25, 0.25): every resample ranked as weighted_rank ranks the
    resampled cases (equal weights would hide an inverted weighting)."""
    rng = np.random.default_rng(11)
    n = 8
    dice = pd.DataFrame({e: rng.uniform(0.3, 0.9, n) for e in "abcd"})
    fpv = pd.DataFrame({e: rng.uniform(0.0, 5.0, n) for e in "abcd"})
    fnv = pd.DataFrame({e: rng.uniform(0.0, 5.0, n) for e in "abcd"})
    scores = {"dice": dice, "fp_volume_ml": fpv, "fn_volume_ml": fnv}
    directions = {"dice": True, "fp_volume_ml": False, "fn_volume_ml": False}
    scheme = WeightedRanking(
        {"dice": 0.5, "fp_volume_ml": 0.25, "fn_volume_ml": 0.25}, tiebreak="dice"
    )
    boot = bootstrap_weighted_ranks(scores, directions, scheme, n_resamples=30, seed=5)
    for row, sample in zip(boot.itertuples(index=False), _resamples(n, 30, 5), strict=True):
        resampled = {m: s.iloc[sample].reset_index(drop=True) for m, s in scores.items()}
        expected = weighted_rank(resampled, directions, scheme)["rank"].reindex(list("abcd"))
        assert list(row) == expected.tolist()
