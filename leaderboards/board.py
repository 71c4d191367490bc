"""A computed leaderboard: the configured ranking, every ranking method per metric, statistics.

:func:`compute_leaderboard` turns :class:`~leaderboards.data.LeaderboardData` into the tables the
site shows: the task's official score (:mod:`leaderboards.official`); the overall ranking, which
is the official ranking where the challenge ranks by a run-level score (HECKTOR's aggregated
Dice, ChestXDet's COCO mAP) and else the profile's ranking (primary metric with tie-break, or
the weighted mean of per-metric ranks), with bootstrap rank intervals; per metric the mean (with its 95% bootstrap
interval), the median, and the ranks of aggregate-then-rank (mean and median), rank-then-aggregate
and the test-based ranking; and the standard-vs-CC comparison with Kendall's tau.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from leaderboards.data import LeaderboardData, cc_pairs, weighted_scheme
from leaderboards.official import OfficialScore, official_score
from leaderboards.ranking import (
    aggregate_then_rank,
    kendall_tau,
    rank_then_aggregate,
    test_based_rank,
    weighted_rank,
)
from leaderboards.statistics import (
    bootstrap_aggregate_ci,
    bootstrap_ranks,
    bootstrap_weighted_ranks,
    rank_stability,
)

__all__ = ["BoardRanking", "CCComparison", "Leaderboard", "board_ranking", "compute_leaderboard"]


@dataclass(frozen=True)
class CCComparison:
    """One standard metric next to its CC counterpart.

    Attributes
    ----------
    standard, cc : str
        Metric names, e.g. ``"dice"`` and ``"cc_dice"``.
    table : pandas.DataFrame
        Index entry; columns ``<standard>``, ``rank_<standard>``, ``<cc>``, ``rank_<cc>`` (mean
        over cases and its aggregate-then-rank rank), sorted by the standard rank.
    tau : float
        Kendall's tau between the two rankings (NaN with fewer than two entries).
    """

    standard: str
    cc: str
    table: pd.DataFrame
    tau: float


@dataclass(frozen=True)
class Leaderboard:
    """Rankings and statistics of one task and split.

    Attributes
    ----------
    data : LeaderboardData
        What it was computed from.
    overall : pandas.DataFrame
        The board's ranking (rank heatmap, entry pages, downloads). Index entry, sorted by
        ``rank``; columns ``score``, ``tiebreak``, ``rank`` and the bootstrap summary
        (``median_rank``, ``rank_low``, ``rank_high``, ``p_first``; NaN without a bootstrap).
        The official ranking (:attr:`OfficialScore.ranking`) where the official score is a
        run-level aggregate; else ``profile_overall``.
    boot_overall : pandas.DataFrame
        Resample x entry ranks of the overall ranking (no rows without a bootstrap).
    per_metric : dict
        Metric -> index entry; columns ``mean``, ``ci_low``, ``ci_high``, ``median``,
        ``rank_mean``, ``rank_median``, ``rank_then_mean`` (mean per-case rank),
        ``rank_rank_then_mean``, ``wins`` (significant Wilcoxon wins), ``rank_test_based``.
    boot_ranks : dict
        Metric -> resample x entry ranks of the mean (aggregate-then-rank) ranking.
    cc : list of CCComparison
        Standard vs CC rankings.
    n_resamples, seed : int
        Bootstrap settings.
    alpha : float
        Significance level of the test-based ranking.
    official : OfficialScore or None
        The task's official table and ranking (None when its profile names none).
    profile_overall : pandas.DataFrame or None
        The profile's ranking over per-case metrics: the
        :func:`~leaderboards.ranking.weighted_rank` columns (``rank_<metric>``, ``score``,
        ``tiebreak``, ``rank``) and the bootstrap summary. The same frame as ``overall`` unless
        the official ranking is run-level.
    boot_profile : pandas.DataFrame or None
        Resample x entry ranks of ``profile_overall``.
    """

    data: LeaderboardData
    overall: pd.DataFrame
    boot_overall: pd.DataFrame
    per_metric: dict[str, pd.DataFrame]
    boot_ranks: dict[str, pd.DataFrame]
    cc: list[CCComparison]
    n_resamples: int
    seed: int
    alpha: float
    official: OfficialScore | None = None
    profile_overall: pd.DataFrame | None = None
    boot_profile: pd.DataFrame | None = None

    @property
    def ranked_officially(self) -> bool:
        """Whether ``overall`` is the official run-level ranking (not the profile's)."""
        return self.official is not None and self.official.run_level


def _metric_table(
    scores: pd.DataFrame,
    *,
    higher_is_better: bool,
    n_resamples: int,
    seed: int,
    alpha: float,
) -> pd.DataFrame:
    ci = bootstrap_aggregate_ci(scores, n_resamples=n_resamples, seed=seed)
    by_mean = aggregate_then_rank(scores, higher_is_better=higher_is_better)
    by_median = aggregate_then_rank(scores, higher_is_better=higher_is_better, aggregate="median")
    by_case = rank_then_aggregate(scores, higher_is_better=higher_is_better)
    by_test = test_based_rank(scores, higher_is_better=higher_is_better, alpha=alpha)
    table = pd.DataFrame(
        {
            "mean": ci["estimate"],
            "ci_low": ci["ci_low"],
            "ci_high": ci["ci_high"],
            "median": by_median["score"],
            "rank_mean": by_mean["rank"],
            "rank_median": by_median["rank"],
            "rank_then_mean": by_case["score"],
            "rank_rank_then_mean": by_case["rank"],
            "wins": by_test["score"],
            "rank_test_based": by_test["rank"],
        }
    )
    table.index.name = "entry"
    return table.sort_values("rank_mean")


@dataclass(frozen=True)
class BoardRanking:
    """A board's overall ranking and its bootstrap, without the per-metric tables.

    Attributes
    ----------
    overall : pandas.DataFrame
        As :attr:`Leaderboard.overall`: the official run-level ranking where the task's official
        score is one, else the profile's ranking; index entry, sorted by ``rank``.
    boot : pandas.DataFrame
        As :attr:`Leaderboard.boot_overall`: resample x entry ranks (no rows where the official
        run-level score has no bootstrap, e.g. COCO AP).
    official : OfficialScore or None
        The task's official score.
    profile_overall, boot_profile : pandas.DataFrame
        The profile's ranking and its bootstrap (the same frames as ``overall`` and ``boot``
        unless the official ranking is run-level).
    """

    overall: pd.DataFrame
    boot: pd.DataFrame
    official: OfficialScore | None
    profile_overall: pd.DataFrame
    boot_profile: pd.DataFrame


def board_ranking(data: LeaderboardData, *, n_resamples: int = 1000, seed: int = 0) -> BoardRanking:
    """The ranking a board leads with, and its bootstrap, exactly as :func:`compute_leaderboard`.

    Parameters
    ----------
    data
        Loaded by :func:`leaderboards.data.load_leaderboard_data`.
    n_resamples, seed
        Bootstrap resamples over cases and their seed (one resample of the cases is shared by
        every entry and metric).

    Returns
    -------
    BoardRanking
    """
    directions = data.directions()
    scheme = weighted_scheme(data.ranking)
    overall = weighted_rank(data.scores, directions, scheme)
    boot_overall = bootstrap_weighted_ranks(
        data.scores, directions, scheme, n_resamples=n_resamples, seed=seed
    )
    overall = overall.join(rank_stability(boot_overall))
    profile_overall, boot_profile = overall, boot_overall
    official = official_score(data, n_resamples=n_resamples, seed=seed)
    if official is not None and official.ranking is not None:
        overall = official.ranking
        boot_overall = (
            official.boot
            if official.boot is not None
            else pd.DataFrame(columns=list(data.entries), dtype=int)
        )
    return BoardRanking(overall, boot_overall, official, profile_overall, boot_profile)


def compute_leaderboard(
    data: LeaderboardData,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Leaderboard:
    """Compute every ranking and bootstrap statistic of a leaderboard.

    Parameters
    ----------
    data
        Loaded by :func:`leaderboards.data.load_leaderboard_data`.
    n_resamples
        Bootstrap resamples over cases (1000 by default).
    seed
        Seed of the bootstrap; the same data and seed give the same intervals.
    alpha
        Significance level of the test-based ranking (one-sided Wilcoxon signed-rank).

    Returns
    -------
    Leaderboard
    """
    directions = data.directions()
    ranked = board_ranking(data, n_resamples=n_resamples, seed=seed)
    per_metric: dict[str, pd.DataFrame] = {}
    boot: dict[str, pd.DataFrame] = {}
    for metric in data.metrics:
        scores = data.scores[metric]
        per_metric[metric] = _metric_table(
            scores,
            higher_is_better=directions[metric],
            n_resamples=n_resamples,
            seed=seed,
            alpha=alpha,
        )
        boot[metric] = bootstrap_ranks(
            scores, higher_is_better=directions[metric], n_resamples=n_resamples, seed=seed
        )
    comparisons = []
    for std, cc in cc_pairs(data.metrics):
        a, b = per_metric[std], per_metric[cc]
        table = pd.DataFrame(
            {
                std: a["mean"],
                f"rank_{std}": a["rank_mean"],
                cc: b["mean"],
                f"rank_{cc}": b["rank_mean"],
            }
        ).sort_values(f"rank_{std}")
        table.index.name = "entry"
        tau = kendall_tau(a["rank_mean"], b["rank_mean"])
        comparisons.append(CCComparison(std, cc, table, tau))
    return Leaderboard(
        data=data,
        overall=ranked.overall,
        boot_overall=ranked.boot,
        per_metric=per_metric,
        boot_ranks=boot,
        cc=comparisons,
        n_resamples=n_resamples,
        seed=seed,
        alpha=alpha,
        official=ranked.official,
        profile_overall=ranked.profile_overall,
        boot_profile=ranked.boot_profile,
    )
