"""Ranking entries of a task: aggregate-then-rank, rank-then-aggregate, test-based, multi-metric.

All functions take a *score matrix*: a :class:`pandas.DataFrame` with one row per case and one
column per entry, holding one metric's per-case values (missing and failed cases already replaced
by the metric's worst value, see :func:`score_matrix`). Ranks are 1 = best; ties share the best
(minimum) rank, as in challengeR.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "RANKING_METHODS",
    "RankingMethod",
    "WeightedRanking",
    "aggregate_then_rank",
    "clip_to_worst",
    "kendall_tau",
    "rank",
    "rank_entries",
    "rank_then_aggregate",
    "score_matrix",
    "test_based_rank",
    "weighted_rank",
]

RankingMethod = Literal["mean", "median", "rank_then_mean", "test_based"]


def score_matrix(
    results: pd.DataFrame,
    metric: str,
    *,
    entries: Sequence[str] | None = None,
    cases: Sequence[str] | None = None,
    worst: float,
) -> pd.DataFrame:
    """Pivot long-format results into a case x entry matrix for one metric.

    Parameters
    ----------
    results
        Long format with columns ``entry``, ``case``, ``metric``, ``value`` (one row per value; if a
        case has several rows for an entry and metric, e.g. one per label, their mean is used).
    metric
        The metric (column value of ``metric``) to pivot.
    entries, cases
        Rows and columns to keep; default: all present. An entry without a value for a case
        (missing prediction, failed run) gets ``worst``.
    worst
        Worst-case score of the metric (``METRICS[metric].worst``); NaN values in ``results`` are
        *not* replaced (they are undefined by convention, e.g. Dice on a negative case) unless the
        case is missing altogether.

    Returns
    -------
    pandas.DataFrame
        Index ``case``, columns ``entry``, float values.

    Examples
    --------
    >>> df = pd.DataFrame({"entry": ["a", "a", "b"], "case": ["1", "2", "1"],
    ...                    "metric": "dice", "value": [0.9, 0.8, 0.7]})
    >>> score_matrix(df, "dice", worst=0.0).to_dict()
    {'a': {'1': 0.9, '2': 0.8}, 'b': {'1': 0.7, '2': 0.0}}
    """
    sub = results[results["metric"] == metric]
    table = sub.pivot_table(
        index="case", columns="entry", values="value", aggfunc="mean", dropna=False
    )
    present = sub.groupby(["case", "entry"]).size().unstack("entry")
    entry_list = list(entries) if entries is not None else sorted(sub["entry"].unique())
    case_list = list(cases) if cases is not None else sorted(sub["case"].unique())
    table = table.reindex(index=case_list, columns=entry_list)
    present = present.reindex(index=case_list, columns=entry_list)
    table = table.mask(present.isna(), worst)
    table.index.name, table.columns.name = "case", "entry"
    return table.astype(float)


def clip_to_worst(values: pd.Series, worst: float, *, higher_is_better: bool) -> pd.Series:
    """Values worse than ``worst`` replaced by ``worst``; NaN (undefined) stays NaN.

    A leaderboard counts every case at worst with the task's declared worst value
    (:func:`evaluator.evaluate.ranking_worst`): an infinite HD95 (one side empty) counts as,
    e.g., 50 mm in means, intervals and ranks, while the store keeps the raw ``inf``.

    Parameters
    ----------
    values
        Values of one metric.
    worst
        The worst value counted; ``inf`` (lower is better) or ``-inf`` leaves the values as they
        are.
    higher_is_better
        Direction of the metric: values below ``worst`` (higher is better) or above it (lower
        is better) are replaced.

    Returns
    -------
    pandas.Series
        Same index, float values.

    Examples
    --------
    >>> hd95 = pd.Series([3.0, float("inf"), float("nan"), 70.0])
    >>> clip_to_worst(hd95, 50.0, higher_is_better=False).tolist()
    [3.0, 50.0, nan, 50.0]
    >>> clip_to_worst(pd.Series([0.5, -1.0]), 0.0, higher_is_better=True).tolist()
    [0.5, 0.0]
    """
    numbers = values.astype(float)
    worse = numbers < worst if higher_is_better else numbers > worst
    return numbers.mask(worse, float(worst))


def rank(values: pd.Series, *, higher_is_better: bool) -> pd.Series:
    """Rank values, 1 = best, ties share the minimum rank, NaN ranks last.

    Examples
    --------
    >>> rank(pd.Series({"a": 0.5, "b": 0.9, "c": 0.5}), higher_is_better=True).to_dict()
    {'a': 2, 'b': 1, 'c': 2}
    """
    ranks = values.rank(ascending=not higher_is_better, method="min", na_option="bottom")
    return ranks.astype(int)


def aggregate_then_rank(
    scores: pd.DataFrame, *, higher_is_better: bool, aggregate: Literal["mean", "median"] = "mean"
) -> pd.DataFrame:
    """Aggregate each entry over cases (NaN-aware), then rank the aggregates.

    Returns
    -------
    pandas.DataFrame
        Index entry; columns ``score`` (the aggregate) and ``rank``; sorted by rank.

    Examples
    --------
    >>> s = pd.DataFrame({"a": [0.9, 0.7], "b": [0.6, 0.8]})
    >>> aggregate_then_rank(s, higher_is_better=True)["rank"].to_dict()
    {'a': 1, 'b': 2}
    """
    agg = scores.mean(axis=0) if aggregate == "mean" else scores.median(axis=0)
    out = pd.DataFrame({"score": agg, "rank": rank(agg, higher_is_better=higher_is_better)})
    out.index.name = "entry"
    return out.sort_values(["rank", "score"], ascending=[True, not higher_is_better])


def rank_then_aggregate(scores: pd.DataFrame, *, higher_is_better: bool) -> pd.DataFrame:
    """Rank entries within each case (ties averaged), then rank the mean rank across cases.

    Cases where a value is NaN rank that entry last for the case.

    Examples
    --------
    >>> s = pd.DataFrame({"a": [0.9, 0.7, 0.9], "b": [0.6, 0.8, 0.5]})
    >>> rank_then_aggregate(s, higher_is_better=True)["score"].round(3).to_dict()
    {'a': 1.333, 'b': 1.667}
    """
    per_case = scores.rank(
        axis=1, ascending=not higher_is_better, method="average", na_option="bottom"
    )
    mean_rank = per_case.mean(axis=0)
    out = pd.DataFrame({"score": mean_rank, "rank": rank(mean_rank, higher_is_better=False)})
    out.index.name = "entry"
    return out.sort_values(["rank", "score"])


def _paired_differences(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Paired differences ``x - y`` for a signed-rank test, with infinite values ranked.

    Equal values (``inf`` and ``inf`` included) differ by 0, never ``inf - inf = nan``; a
    difference with one infinite side keeps its sign and is larger in size than every finite
    difference, all of them tied (the signed-rank test reads only signs and ranks).

    Examples
    --------
    >>> inf = float("inf")
    >>> _paired_differences(np.array([1.0, inf, inf, 2.0]), np.array([3.0, inf, 1.0, inf]))
    array([-2.,  0.,  5., -5.])
    """
    with np.errstate(invalid="ignore"):  # inf - inf, replaced by 0 below
        diff = np.where(x == y, 0.0, x - y)
    infinite = np.isinf(diff)
    if infinite.any():
        finite = np.abs(diff[~infinite])
        largest = 2.0 * (float(finite.max()) if finite.size else 0.0) + 1.0
        diff = np.where(infinite, np.sign(diff) * largest, diff)
    return diff


def test_based_rank(
    scores: pd.DataFrame, *, higher_is_better: bool, alpha: float = 0.05
) -> pd.DataFrame:
    """Test-based ranking: count significant pairwise wins (one-sided Wilcoxon signed-rank).

    For every ordered pair (A, B), A wins when the Wilcoxon signed-rank test of the paired per-case
    differences A - B (one-sided, in the better direction; zero differences dropped; cases with
    NaN in either entry left out) rejects at level ``alpha``: exact below 50 pairs without tied
    differences, else the normal approximation with continuity correction, as R's
    ``wilcox.test``. Entries are ranked by the number of
    wins (more is better), as challengeR's ``testBased`` ranking. Infinite values are ranked,
    not subtracted (:func:`_paired_differences`): ``inf`` against ``inf`` is no difference, and
    every difference with one infinite side ties as the largest.

    Returns
    -------
    pandas.DataFrame
        Index entry; columns ``score`` (number of significant wins) and ``rank``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = pd.DataFrame({"good": 0.9 + rng.normal(0, 0.01, 30), "bad": 0.5 + rng.normal(0, 0.01, 30)})
    >>> test_based_rank(s, higher_is_better=True)["score"].to_dict()
    {'good': 1, 'bad': 0}
    """
    from scipy.stats import wilcoxon

    wins = pd.Series(0, index=scores.columns, dtype=int)
    alternative = "greater" if higher_is_better else "less"
    for a, b in itertools.permutations(scores.columns, 2):
        pair = scores[[a, b]].dropna()
        diff = _paired_differences(pair[a].to_numpy(dtype=float), pair[b].to_numpy(dtype=float))
        if np.count_nonzero(diff) == 0:
            continue
        nonzero = diff[diff != 0]
        # as R's wilcox.test (challengeR): exact below 50 pairs without ties, else the normal
        # approximation with continuity correction (scipy's "auto" would run a slow
        # permutation test on tied bootstrap samples)
        ties = np.unique(np.abs(nonzero)).size < nonzero.size
        exact = nonzero.size < 50 and not ties
        p = wilcoxon(
            diff,
            alternative=alternative,
            zero_method="wilcox",
            method="exact" if exact else "approx",
            correction=not exact,
        ).pvalue
        if p < alpha:
            wins[a] += 1
    out = pd.DataFrame({"score": wins, "rank": rank(wins.astype(float), higher_is_better=True)})
    out.index.name = "entry"
    return out.sort_values(["rank"])


#: Ranking method name (``ranking.method`` in datasets.yaml, :data:`RankingMethod`) -> the
#: function ranking a (cases x entries) score matrix; one row per method.
RANKING_METHODS: dict[str, Callable[..., pd.DataFrame]] = {
    "mean": functools.partial(aggregate_then_rank, aggregate="mean"),
    "median": functools.partial(aggregate_then_rank, aggregate="median"),
    "rank_then_mean": rank_then_aggregate,
    "test_based": test_based_rank,
}


def rank_entries(
    scores: pd.DataFrame, *, higher_is_better: bool, method: RankingMethod
) -> pd.DataFrame:
    """Rank entries with one method of :data:`RANKING_METHODS`, by name.

    Examples
    --------
    >>> s = pd.DataFrame({"a": [0.9, 0.8], "b": [0.5, 0.6]})
    >>> rank_entries(s, higher_is_better=True, method="median")["rank"].to_dict()
    {'a': 1, 'b': 2}
    >>> rank_entries(s, higher_is_better=True, method="best")
    Traceback (most recent call last):
    ...
    ValueError: unknown ranking method 'best' (use mean, median, rank_then_mean, test_based)
    """
    function = RANKING_METHODS.get(method)
    if function is None:
        raise ValueError(f"unknown ranking method {method!r} (use {', '.join(RANKING_METHODS)})")
    return function(scores, higher_is_better=higher_is_better)


@dataclass(frozen=True)
class WeightedRanking:
    """A multi-metric ranking: weighted mean of per-metric ranks, ties broken by one metric.

    The autoPET scheme is ``WeightedRanking({"dice": 0.5, "fp_volume_ml": 0.25,
    "fn_volume_ml": 0.25}, tiebreak="dice")``.
    """

    weights: Mapping[str, float]
    tiebreak: str
    aggregate: Literal["mean", "median"] = "mean"


def weighted_rank(
    per_metric_scores: Mapping[str, pd.DataFrame],
    directions: Mapping[str, bool],
    scheme: WeightedRanking,
) -> pd.DataFrame:
    """Rank entries by the weighted mean of their per-metric aggregate-then-rank ranks.

    Parameters
    ----------
    per_metric_scores
        Metric -> case x entry score matrix (same entries in each).
    directions
        Metric -> higher_is_better.
    scheme
        Weights per metric and the tie-breaking metric.

    Returns
    -------
    pandas.DataFrame
        Index entry; one ``rank_<metric>`` column per metric, ``score`` (the weighted rank),
        ``tiebreak`` (aggregate of the tie-break metric) and the final ``rank``.

    Examples
    --------
    >>> dice = pd.DataFrame({"a": [0.9, 0.8], "b": [0.7, 0.6]})
    >>> fpv = pd.DataFrame({"a": [5.0, 1.0], "b": [0.0, 0.0]})
    >>> scheme = WeightedRanking({"dice": 0.5, "fp_volume_ml": 0.5}, tiebreak="dice")
    >>> out = weighted_rank({"dice": dice, "fp_volume_ml": fpv},
    ...                     {"dice": True, "fp_volume_ml": False}, scheme)
    >>> out["rank"].to_dict()  # equal weighted ranks (1.5 each): the tie-break on Dice decides
    {'a': 1, 'b': 2}
    """
    total = sum(scheme.weights.values())
    table = pd.DataFrame()
    score = None
    for metric, weight in scheme.weights.items():
        ranked = aggregate_then_rank(
            per_metric_scores[metric],
            higher_is_better=directions[metric],
            aggregate=scheme.aggregate,
        )
        table[f"rank_{metric}"] = ranked["rank"]
        part = ranked["rank"].astype(float) * (weight / total)
        score = part if score is None else score.add(part, fill_value=0.0)
    if score is None:
        raise ValueError("a weighted ranking needs at least one metric")
    tie = per_metric_scores[scheme.tiebreak]
    tie_agg = tie.mean(axis=0) if scheme.aggregate == "mean" else tie.median(axis=0)
    table["score"] = score
    table["tiebreak"] = tie_agg
    tie_sign = -1.0 if directions[scheme.tiebreak] else 1.0
    order = pd.DataFrame({"score": score, "tie": tie_sign * tie_agg}).sort_values(["score", "tie"])
    # a NaN tie-break aggregate (no defined value) ranks after every number, as in
    # aggregate_then_rank; infinite aggregates compare as numbers (inf ties with inf)
    keys = [
        (float(s), math.isnan(t), 0.0 if math.isnan(t) else float(t))
        for s, t in zip(order["score"], order["tie"], strict=True)
    ]
    final = pd.Series(
        [1 + sum(1 for other in keys if other < key) for key in keys], index=order.index, dtype=int
    )
    table["rank"] = final
    table.index.name = "entry"
    return table.sort_values("rank")


def kendall_tau(a: pd.Series, b: pd.Series) -> float:
    """Kendall's tau between two rankings of the same entries (NaN when fewer than two entries).

    Examples
    --------
    >>> kendall_tau(pd.Series({"x": 1, "y": 2, "z": 3}), pd.Series({"x": 1, "y": 3, "z": 2}))
    0.333...
    """
    from scipy.stats import kendalltau

    common = a.index.intersection(b.index)
    if len(common) < 2:
        return float("nan")
    return float(kendalltau(a[common].to_numpy(), b[common].to_numpy()).statistic)
