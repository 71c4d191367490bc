"""Bootstrap statistics over cases: rank distributions, rank confidence intervals, metric CIs.

Resampling is over cases (rows of a case x entry score matrix, see
:func:`leaderboards.ranking.score_matrix`), with replacement, seeded: the same matrix, method,
number of resamples and seed give the same numbers.
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
    "bootstrap_ranks",
    "bootstrap_weighted_ranks",
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
        ranks = rankdata(_signed(agg, higher_is_better), method="min", axis=1).astype(int)
    elif method == "rank_then_mean":
        per_case = rankdata(
            _signed(values, higher_is_better), method="average", axis=1
        )  # (cases, E)
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
        Index entry; columns ``estimate`` (the aggregate on all cases), ``ci_low``, ``ci_high``.

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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low = np.nanquantile(boot, tail, axis=0)
        high = np.nanquantile(boot, 1.0 - tail, axis=0)
    estimate = _aggregate(values[None, ...], aggregate)[0]
    out = pd.DataFrame({"estimate": estimate, "ci_low": low, "ci_high": high}, index=scores.columns)
    out.index.name = "entry"
    return out


def _signed(agg: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Aggregates turned into 'lower is better' keys, NaN last."""
    signed = -agg if higher_is_better else agg
    return np.where(np.isnan(signed), np.inf, signed)


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
    from scipy.stats import rankdata

    first = per_metric_scores[scheme.tiebreak]
    idx = _resample_indices(first.shape[0], n_resamples, seed)
    total = sum(scheme.weights.values())
    score = np.zeros((n_resamples, first.shape[1]))
    for metric, weight in scheme.weights.items():
        values = per_metric_scores[metric].to_numpy(dtype=float)
        agg = _signed(_aggregate(values[idx], scheme.aggregate), directions[metric])
        score = score + rankdata(agg, method="min", axis=1) * (weight / total)
    tie = _aggregate(first.to_numpy(dtype=float)[idx], scheme.aggregate)
    tie = _signed(tie, directions[scheme.tiebreak])
    # better[b, i, j]: entry j is ahead of entry i in resample b
    better = (score[:, None, :] < score[:, :, None]) | (
        (score[:, None, :] == score[:, :, None]) & (tie[:, None, :] < tie[:, :, None])
    )
    ranks = 1 + better.sum(axis=2)
    return pd.DataFrame(ranks.astype(int), columns=first.columns)
