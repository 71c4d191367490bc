"""Bootstrap statistics over cases: rank distributions, rank confidence intervals, metric CIs.

Resampling is over cases (rows of a case x entry score matrix, see
:func:`leaderboards.ranking.score_matrix`), with replacement, seeded: the same matrix, method,
number of resamples and seed give the same numbers.

Infinite values (a raw HD95 of an empty prediction) keep every statistic defined: ``inf`` ranks
after every finite value and ties with ``inf``, NaN (undefined) ranks after ``inf``, and interval
bounds are quantiles that never compute ``inf - inf`` (a published leaderboard caps values at the
task's worst value before they get here, see :func:`leaderboards.ranking.clip_to_worst`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from leaderboards.ranking import RankingMethod, WeightedRanking, rank_entries

__all__ = [
    "bootstrap_aggregate_ci",
    "bootstrap_aggregated_dice",
    "bootstrap_aggregates",
    "bootstrap_ranks",
    "bootstrap_weighted_ranks",
    "rank_samples",
    "rank_stability",
]


def _resample_indices(n_cases: int, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_cases, size=(n_resamples, n_cases))


def _aggregate(values: np.ndarray, aggregate: Literal["mean", "median"]) -> np.ndarray:
    """Aggregate (resamples, cases, entries) over cases, ignoring NaN (all-NaN -> NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if aggregate == "mean":
            return np.nanmean(values, axis=1)
        return np.nanmedian(values, axis=1)


def bootstrap_ranks(
    scores: pd.DataFrame,
    *,
    higher_is_better: bool,
    method: RankingMethod = "mean",
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Rank the entries on ``n_resamples`` bootstrap samples of the cases.

    Parameters
    ----------
    scores
        Case x entry matrix of one metric.
    higher_is_better
        Direction of the metric.
    method
        Ranking method (see :func:`leaderboards.ranking.rank_entries`).
    n_resamples
        Number of bootstrap samples (1000 by default).
    seed
        Seed of the resampling.

    Returns
    -------
    pandas.DataFrame
        One row per resample, one column per entry, integer ranks (1 = best).

    Examples
    --------
    >>> s = pd.DataFrame({"a": [0.9, 0.8, 0.85], "b": [0.5, 0.6, 0.55]})
    >>> r = bootstrap_ranks(s, higher_is_better=True, n_resamples=50, seed=1)
    >>> r.shape, bool((r["a"] == 1).all())
    ((50, 2), True)
    """
    from scipy.stats import rankdata

    values = scores.to_numpy(dtype=float)
    idx = _resample_indices(values.shape[0], n_resamples, seed)
    if method in ("mean", "median"):
        agg = _aggregate(values[idx], method)  # (B, E)
        ranks = _rank_rows(_signed(agg, higher_is_better))
    elif method == "rank_then_mean":
        # the per-case ranks of rank_then_aggregate itself (inf before NaN, ties averaged)
        per_case = scores.rank(
            axis=1, ascending=not higher_is_better, method="average", na_option="bottom"
        ).to_numpy(dtype=float)  # (cases, E)
        mean_rank = per_case[idx].mean(axis=1)
        ranks = rankdata(mean_rank, method="min", axis=1).astype(int)
    else:
        rows = [
            rank_entries(
                scores.iloc[sample].reset_index(drop=True),
                higher_is_better=higher_is_better,
                method=method,
            )["rank"].reindex(scores.columns)
            for sample in idx
        ]
        ranks = np.asarray(rows, dtype=int)
    return pd.DataFrame(ranks, columns=scores.columns)


def rank_stability(boot_ranks: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Summarise bootstrap rank distributions per entry.

    Returns
    -------
    pandas.DataFrame
        Index entry; columns ``median_rank``, ``rank_low``, ``rank_high`` (the central ``level``
        interval of the bootstrap ranks), ``p_first`` (share of resamples ranking it first).

    Examples
    --------
    >>> br = pd.DataFrame({"a": [1, 1, 2, 1], "b": [2, 2, 1, 2]})
    >>> float(rank_stability(br).loc["a", "p_first"])
    0.75
    """
    tail = (1.0 - level) / 2.0
    out = pd.DataFrame(
        {
            "median_rank": boot_ranks.median(axis=0),
            "rank_low": boot_ranks.quantile(tail, axis=0, interpolation="lower"),
            "rank_high": boot_ranks.quantile(1.0 - tail, axis=0, interpolation="higher"),
            "p_first": (boot_ranks == 1).mean(axis=0),
        }
    )
    out.index.name = "entry"
    return out


def bootstrap_aggregate_ci(
    scores: pd.DataFrame,
    *,
    aggregate: Literal["mean", "median"] = "mean",
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Percentile-bootstrap confidence intervals of each entry's aggregate over cases.

    Returns
    -------
    pandas.DataFrame
        Index entry; columns ``estimate`` (the aggregate on all cases), ``ci_low``, ``ci_high``
        (percentiles of the resampled aggregates, see :func:`_quantile`). With infinite values
        the bounds are infinite or finite, never NaN; NaN only where an entry has no value at
        all.

    Examples
    --------
    >>> s = pd.DataFrame({"a": [0.2, 0.4, 0.6, 0.8]})
    >>> ci = bootstrap_aggregate_ci(s, n_resamples=200, seed=3)
    >>> bool(ci.loc["a", "ci_low"] <= 0.5 <= ci.loc["a", "ci_high"])
    True
    """
    values = scores.to_numpy(dtype=float)
    idx = _resample_indices(values.shape[0], n_resamples, seed)
    boot = _aggregate(values[idx], aggregate)
    tail = (1.0 - level) / 2.0
    low = _quantile(boot, tail)
    high = _quantile(boot, 1.0 - tail)
    estimate = _aggregate(values[None, ...], aggregate)[0]
    out = pd.DataFrame({"estimate": estimate, "ci_low": low, "ci_high": high}, index=scores.columns)
    out.index.name = "entry"
    return out


def _signed(agg: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Aggregates turned into 'lower is better' keys (NaN stays NaN: last in :func:`_rank_rows`)."""
    return -agg if higher_is_better else agg


def _rank_rows(keys: np.ndarray, tie: np.ndarray | None = None) -> np.ndarray:
    """Rank each row of 'lower is better' keys: 1 + the number of entries strictly ahead.

    Ties share the minimum rank; ``inf`` ties with ``inf`` and NaN ranks after every number
    (as :func:`leaderboards.ranking.rank`). ``tie``: keys of the same shape that break ties of
    ``keys`` the same way.

    Examples
    --------
    >>> inf, nan = float("inf"), float("nan")
    >>> _rank_rows(np.array([[2.0, inf, nan, inf, 1.0]])).tolist()
    [[2, 3, 5, 3, 1]]
    >>> _rank_rows(np.array([[1.0, 1.0, 0.0]]), tie=np.array([[5.0, 3.0, 9.0]])).tolist()
    [[3, 2, 1]]
    """

    def ahead(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nan = np.isnan(k)
        mine, theirs = k[:, :, None], k[:, None, :]
        # [b, i, j]: entry j is ahead of / level with entry i in row b
        strictly = (theirs < mine) | (nan[:, :, None] & ~nan[:, None, :])
        level = (theirs == mine) | (nan[:, :, None] & nan[:, None, :])
        return strictly, level

    better, level = ahead(np.asarray(keys, dtype=float))
    if tie is not None:
        tie_better, _ = ahead(np.asarray(tie, dtype=float))
        better = better | (level & tie_better)
    return (1 + better.sum(axis=2)).astype(int)


def _quantile(samples: np.ndarray, q: float) -> np.ndarray:
    """The ``q`` quantile of each column, NaN ignored, without ever computing ``inf - inf``.

    Linear interpolation between order statistics (numpy's default method); where both
    neighbours are equal (two infinities) or the position is exact, the neighbour itself.
    All-NaN columns give NaN.

    Examples
    --------
    >>> inf = float("inf")
    >>> _quantile(np.array([[1.0, 1.0], [2.0, inf], [3.0, inf]]), 0.975).tolist()
    [2.95, inf]
    >>> _quantile(np.array([[1.0], [inf]]), 0.0).tolist()
    [1.0]
    """
    out = np.full(samples.shape[1], np.nan)
    for j in range(samples.shape[1]):
        column = samples[:, j]
        ordered = np.sort(column[~np.isnan(column)])
        if ordered.size == 0:
            continue
        position = q * (ordered.size - 1)
        lo = int(np.floor(position))
        hi = min(lo + 1, ordered.size - 1)
        fraction = position - lo
        a, b = ordered[lo], ordered[hi]
        out[j] = a if fraction == 0 or a == b else a + (b - a) * fraction
    return out


def bootstrap_weighted_ranks(
    per_metric_scores: Mapping[str, pd.DataFrame],
    directions: Mapping[str, bool],
    scheme: WeightedRanking,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Bootstrap the multi-metric ranking of :func:`leaderboards.ranking.weighted_rank`.

    Every resample draws one set of cases (rows, with replacement) and uses it for all metrics,
    so the metrics of a resample describe the same cases. On each resample the entries are ranked
    exactly as :func:`~leaderboards.ranking.weighted_rank` ranks them on all cases: per-metric
    aggregate-then-rank ranks (ties share the minimum rank, NaN last), their weighted mean, ties
    broken by the tie-break metric's aggregate.

    Parameters
    ----------
    per_metric_scores
        Metric -> case x entry matrix; the same cases (rows) and entries (columns) in each.
    directions
        Metric -> higher_is_better.
    scheme
        Weights, tie-break metric and aggregate.
    n_resamples, seed
        Number of bootstrap samples and the seed of the resampling.

    Returns
    -------
    pandas.DataFrame
        One row per resample, one column per entry, integer ranks (1 = best).

    Examples
    --------
    >>> dice = pd.DataFrame({"a": [0.9, 0.8, 0.7], "b": [0.5, 0.4, 0.6]})
    >>> scheme = WeightedRanking({"dice": 1.0}, tiebreak="dice")
    >>> r = bootstrap_weighted_ranks({"dice": dice}, {"dice": True}, scheme, n_resamples=20)
    >>> r.shape, bool((r["a"] == 1).all())
    ((20, 2), True)
    """
    first = per_metric_scores[scheme.tiebreak]
    idx = _resample_indices(first.shape[0], n_resamples, seed)
    total = sum(scheme.weights.values())
    score = np.zeros((n_resamples, first.shape[1]))
    for metric, weight in scheme.weights.items():
        values = per_metric_scores[metric].to_numpy(dtype=float)
        agg = _signed(_aggregate(values[idx], scheme.aggregate), directions[metric])
        score = score + _rank_rows(agg) * (weight / total)
    tie = _aggregate(first.to_numpy(dtype=float)[idx], scheme.aggregate)
    tie = _signed(tie, directions[scheme.tiebreak])
    return pd.DataFrame(_rank_rows(score, tie=tie), columns=first.columns)


def rank_samples(
    samples: pd.DataFrame,
    *,
    higher_is_better: bool,
    tiebreak: pd.DataFrame | None = None,
    tiebreak_higher_is_better: bool = True,
) -> pd.DataFrame:
    """Rank the entries on each row of a sample x entry table of scores.

    Ties share the minimum rank unless ``tiebreak`` (same shape) separates them; NaN ranks last,
    ``inf`` ties with ``inf``. Used for run-level scores (HECKTOR's aggregated Dice): one row is
    the point estimate, or one bootstrap resample.

    Returns
    -------
    pandas.DataFrame
        Same index and columns, integer ranks (1 = best).

    Examples
    --------
    >>> dsc = pd.DataFrame({"a": [0.8, 0.7], "b": [0.8, 0.9], "c": [0.5, float("nan")]})
    >>> hd95 = pd.DataFrame({"a": [4.0, 4.0], "b": [9.0, 9.0], "c": [1.0, 1.0]})
    >>> rank_samples(dsc, higher_is_better=True, tiebreak=hd95,
    ...              tiebreak_higher_is_better=False).to_dict("list")
    {'a': [1, 2], 'b': [2, 1], 'c': [3, 3]}
    """
    keys = _signed(samples.to_numpy(dtype=float), higher_is_better)
    tie = (
        None
        if tiebreak is None
        else _signed(tiebreak.to_numpy(dtype=float), tiebreak_higher_is_better)
    )
    return pd.DataFrame(_rank_rows(keys, tie=tie), index=samples.index, columns=samples.columns)


def bootstrap_aggregated_dice(
    intersection: Mapping[int, pd.DataFrame],
    volume: Mapping[int, pd.DataFrame],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """HECKTOR 2022's aggregated Dice recomputed on bootstrap resamples of the cases.

    On each resample (the same seeded case indices as every other bootstrap of this module) and
    for each label, DSCagg = 2 * sum |P ∩ R| / sum (|P| + |R|) over the resampled cases (a case
    drawn twice counts twice); the score is the mean over the labels whose summed volume is
    positive (a label with none is undefined and left out, as ``ccbench evaluate`` does).

    Parameters
    ----------
    intersection, volume
        Label -> case x entry matrix of the per-case ``agg_intersection_mm3`` (|P ∩ R|) and
        ``agg_volume_mm3`` (|P| + |R|), mm³; the same cases (rows) and entries (columns) in
        each.
    n_resamples, seed
        Number of bootstrap samples and the seed of the resampling.

    Returns
    -------
    pandas.DataFrame
        One row per resample, one column per entry: the mean DSCagg over labels (NaN where no
        label has volume).

    Examples
    --------
    >>> inter = {1: pd.DataFrame({"a": [10.0, 0.0]})}
    >>> vol = {1: pd.DataFrame({"a": [20.0, 30.0]})}
    >>> boot = bootstrap_aggregated_dice(inter, vol, n_resamples=200, seed=0)
    >>> sorted(set(boot["a"].round(3)))  # both cases, case 0 twice, case 1 twice
    [0.0, 0.4, 1.0]
    """
    labels = list(intersection)
    first = intersection[labels[0]]
    idx = _resample_indices(first.shape[0], n_resamples, seed)
    per_label = []
    for label in labels:
        inter = intersection[label].to_numpy(dtype=float)[idx].sum(axis=1)  # (B, E)
        vol = volume[label].to_numpy(dtype=float)[idx].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_label.append(np.where(vol > 0, 2.0 * inter / vol, np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        score = np.nanmean(np.stack(per_label), axis=0)
    return pd.DataFrame(score, columns=first.columns)


def bootstrap_aggregates(
    scores: pd.DataFrame,
    *,
    aggregate: Literal["mean", "median"] = "mean",
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Each entry's aggregate over cases on every bootstrap resample (NaN ignored).

    The resamples are those of every other function of this module with the same seed, so a
    score and its tie-break resampled separately still describe the same cases.

    Returns
    -------
    pandas.DataFrame
        One row per resample, one column per entry.

    Examples
    --------
    >>> s = pd.DataFrame({"a": [1.0, float("inf"), 3.0]})
    >>> boot = bootstrap_aggregates(s, aggregate="median", n_resamples=100, seed=0)
    >>> boot.shape, bool(boot["a"].isna().any())
    ((100, 1), False)
    """
    values = scores.to_numpy(dtype=float)
    idx = _resample_indices(values.shape[0], n_resamples, seed)
    return pd.DataFrame(_aggregate(values[idx], aggregate), columns=scores.columns)
