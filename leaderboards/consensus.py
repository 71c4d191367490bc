"""Consensus ranking across tasks (challengeR's ``consensus``) and its bootstrap stability.

An entry (a submission) can run on several tasks; each task's board ranks it by the task's own
scheme (:func:`leaderboards.board.board_ranking`: the official run-level score, or the profile's
weighted ranks). A consensus ranking aggregates those per-task ranks into one ranking, as
challengeR's ``consensus(ranking, method = ...)`` does (Wiesenfarth et al., Sci Rep 11:2369,
2021). Only entries ranked on *every* task considered are compared (challengeR's relation
ensemble needs one common set of algorithms); the others are listed with the tasks they lack.

Per-task ranks. An entry's rank on a task is its rank on that task's board among the compared
entries: 1 + the number of compared entries the board ranks strictly ahead of it, so ties share
the best rank (``ties.method = "min"``, as challengeR ranks). It equals the board's own rank
when every entry of the board is compared; else the order and the ties are the board's, the
gaps left by the other entries closed.

Methods (:data:`CONSENSUS_METHODS`), each giving a score per entry (lower is better) that is
then ranked with ties sharing the best rank (challengeR's report ranks the consensus with
``rank(..., ties.method = "min")``):

``mean``
    The mean of the per-task ranks (ties as ranked: the minimum rank).
``median``
    The median of the per-task ranks (ties as ranked; with an even number of tasks the mean of
    the two middle ranks, as R's ``median``): the median-rank (Borda-like) aggregation.
``euclidean``
    challengeR's ``consensus(method = "euclidean")``, i.e. ``relations::relation_consensus``
    with method ``"euclidean"`` on the ensemble of the tasks' rankings, scored by
    ``relation_scores(cons, decreasing = FALSE)``. Each task's ranking becomes a weak order
    with incidence ``I_t[x, y] = rank_t(x) <= rank_t(y)`` (``as.relation`` of a numeric
    vector); the ``"euclidean"`` consensus is "the (unrestricted) mean of the ensemble,
    minimizing sum_t d(R_t, R)^2 with d the Euclidean distance over all (possibly fuzzy)
    relations", i.e. the fuzzy relation ``I = mean_t I_t``; its generalized rank score is
    ``(n + 1 + colSums(I)[x] - rowSums(I)[x]) / 2``. For one task, ``colSums - rowSums`` is
    (entries strictly ahead of x) - (entries strictly behind x), ties cancelling, so the score
    is ``mean_t`` of x's *average* rank on task t (``ties.method = "average"``): the mean rank
    with ties averaged, as challengeR's documentation states. It differs from ``mean`` only
    where a task has ties. Sources: challengeR ``R/consensus.R``
    (https://github.com/wiesenfa/challengeR), relations ``man/consensus.Rd``, ``R/consensus.R``
    (``.relation_consensus_euclidean``), ``R/scores.R`` (``.incidence_scores_ranks``) and
    ``R/relation.R`` (``as.relation.numeric``) (https://github.com/cran/relations).

Stability (:func:`bootstrap_consensus`): the cases of each task are resampled with replacement
(one resample per task, shared by all its entries, independent between tasks), each task's board
ranking is recomputed on its resample and the consensus on those rankings; per entry, the share
of resamples giving each consensus rank, and Kendall's tau between each resample's consensus and
the full-data one (its median and interquartile range), as challengeR's ``stability`` analysis of
a ``bootstrap.ranked.list``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from leaderboards.board import BoardRanking
    from leaderboards.data import LeaderboardData

__all__ = [
    "CONSENSUS_METHODS",
    "ConsensusMethod",
    "ConsensusSpec",
    "ConsensusStability",
    "CrossTaskConsensus",
    "TaskRanks",
    "bootstrap_consensus",
    "consensus",
    "consensus_scores",
    "consensus_table",
    "cross_task_consensus",
    "rank_among",
    "sharing_tasks",
    "task_ranks",
]

ConsensusMethod = Literal["mean", "median", "euclidean"]


def _rank_min(keys: np.ndarray) -> np.ndarray:
    """Ranks along the last axis, lower key first, ties sharing the minimum rank."""
    from scipy.stats import rankdata

    return rankdata(keys, method="min", axis=-1).astype(int)


def _mean_rank(ranks: np.ndarray) -> np.ndarray:
    return ranks.mean(axis=-2)


def _median_rank(ranks: np.ndarray) -> np.ndarray:
    return np.median(ranks, axis=-2)


def _euclidean(ranks: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(ranks, method="average", axis=-1).mean(axis=-2)


@dataclass(frozen=True)
class ConsensusSpec:
    """One consensus method: its name, how the page describes it, and its score function.

    ``score`` maps per-task ranks of shape ``(..., tasks, entries)`` to one score per entry,
    shape ``(..., entries)``, lower is better.
    """

    name: str
    description: str
    score: Callable[[np.ndarray], np.ndarray]


#: Consensus method name -> its spec; one row per method (the page, the CSV and the tests
#: iterate over it).
CONSENSUS_METHODS: dict[str, ConsensusSpec] = {
    spec.name: spec
    for spec in (
        ConsensusSpec("mean", "mean of the per-task ranks (ties: minimum rank)", _mean_rank),
        ConsensusSpec("median", "median of the per-task ranks (ties: minimum rank)", _median_rank),
        ConsensusSpec(
            "euclidean",
            'challengeR\'s consensus(method = "euclidean"): mean of the per-task ranks with '
            "ties given their average rank",
            _euclidean,
        ),
    )
}


def _spec(method: str) -> ConsensusSpec:
    spec = CONSENSUS_METHODS.get(method)
    if spec is None:
        raise ValueError(
            f"unknown consensus method {method!r} (use {', '.join(CONSENSUS_METHODS)})"
        )
    return spec


def rank_among(ranks: pd.Series, entries: list[str]) -> pd.Series:
    """A board's ranks restricted to ``entries``: 1 + the number of them ranked strictly ahead.

    Examples
    --------
    >>> board = pd.Series({"x": 1, "a": 2, "b": 2, "c": 4})
    >>> rank_among(board, ["a", "b", "c"]).to_dict()
    {'a': 1, 'b': 1, 'c': 3}
    """
    sub = ranks.reindex(entries).to_numpy(dtype=float)
    return pd.Series(_rank_min(sub), index=pd.Index(entries, name="entry"))


@dataclass(frozen=True)
class TaskRanks:
    """Each compared entry's rank per task.

    Attributes
    ----------
    ranks : pandas.DataFrame
        Index entry (the entries ranked on every task, sorted by name), one column per task:
        the rank among the compared entries (:func:`rank_among`), int.
    board_ranks : pandas.DataFrame
        Same shape: the rank on the task's board itself.
    missing : dict
        Entry ranked on some tasks only -> the tasks it lacks (those entries are not ranked).
    """

    ranks: pd.DataFrame
    board_ranks: pd.DataFrame
    missing: dict[str, list[str]] = field(default_factory=dict)


def sharing_tasks(entries: Mapping[str, Iterable[str]]) -> tuple[list[str], list[str]]:
    """The tasks of one split that are ranked together, and those left out.

    A consensus compares the entries ranked on *every* compared task, so one task that shares
    little with the others (a 2D task beside three 3D ones) would empty it. The compared tasks
    are the largest set of tasks whose boards have at least two entries in common; among sets
    of that size, the one with the most common entries, then the first in name order. Such a
    set is the set of tasks holding some pair of entries, so the search tries every pair
    (quadratic in the entries, linear in the tasks).

    Parameters
    ----------
    entries
        Task -> the entries on its board.

    Returns
    -------
    (list of str, list of str)
        The tasks compared and the tasks left out, each sorted; ``([], all tasks)`` when no two
        tasks have two entries in common.

    Examples
    --------
    >>> sharing_tasks({"a": ["x", "y", "z"], "b": ["x", "y"], "c": ["y", "x"], "d": ["w"]})
    (['a', 'b', 'c'], ['d'])
    >>> sharing_tasks({"a": ["x", "y"], "b": ["x", "z"]})
    ([], ['a', 'b'])
    """
    boards = {task: set(names) for task, names in entries.items()}
    names = sorted(set().union(*boards.values())) if boards else []
    best: tuple[int, int, list[str]] | None = None
    # a set of tasks shares two entries iff it lies within the tasks holding some pair of
    # entries; the largest such sets are those very sets, so trying every pair finds the answer
    for pair in combinations(names, 2):
        tasks = sorted(t for t, held in boards.items() if set(pair) <= held)
        if len(tasks) < 2:
            continue
        common = len(set.intersection(*(boards[t] for t in tasks)))
        key = (len(tasks), common)
        if best is None or key > best[:2] or (key == best[:2] and tasks < best[2]):
            best = (len(tasks), common, tasks)
    compared = best[2] if best is not None else []
    return compared, sorted(set(entries) - set(compared))


def task_ranks(rankings: Mapping[str, pd.Series]) -> TaskRanks:
    """Per-task ranks of the entries ranked on every task, from each board's ranking.

    Parameters
    ----------
    rankings
        Task -> the board's ranks (index entry, 1 = best), e.g.
        ``board_ranking(data).overall["rank"]``.

    Returns
    -------
    TaskRanks

    Examples
    --------
    >>> t = task_ranks({"t1": pd.Series({"a": 1, "b": 2}),
    ...                 "t2": pd.Series({"new": 1, "b": 2, "a": 3})})
    >>> t.ranks.to_dict("index"), t.missing
    ({'a': {'t1': 1, 't2': 2}, 'b': {'t1': 2, 't2': 1}}, {'new': ['t1']})
    >>> int(t.board_ranks.loc["a", "t2"])  # the board's own rank
    3
    """
    tasks = list(rankings)
    every = sorted({str(e) for r in rankings.values() for e in r.index})
    common = [e for e in every if all(e in rankings[t].index for t in tasks)]
    missing = {
        e: [t for t in tasks if e not in rankings[t].index] for e in every if e not in common
    }
    ranks = pd.DataFrame({t: rank_among(rankings[t], common) for t in tasks}, index=common)
    board = pd.DataFrame({t: rankings[t].reindex(common).astype(int) for t in tasks}, index=common)
    for frame in (ranks, board):
        frame.index.name, frame.columns.name = "entry", "task"
    return TaskRanks(ranks.astype(int), board.astype(int), missing)


def consensus_scores(ranks: np.ndarray, method: ConsensusMethod | str) -> np.ndarray:
    """Consensus scores (lower is better) of per-task ranks, for any number of leading axes.

    Parameters
    ----------
    ranks
        Shape ``(..., tasks, entries)``: each task's ranks of the entries (1 = best).
    method
        A name of :data:`CONSENSUS_METHODS`.

    Returns
    -------
    numpy.ndarray
        Shape ``(..., entries)``, float.

    Examples
    --------
    >>> r = np.array([[1, 1, 3], [2, 1, 3]])  # two tasks; entry 0 and 1 tie on the first
    >>> consensus_scores(r, "mean").tolist(), consensus_scores(r, "euclidean").tolist()
    ([1.5, 1.0, 3.0], [1.75, 1.25, 3.0])
    >>> consensus_scores(r, "borda")
    Traceback (most recent call last):
    ...
    ValueError: unknown consensus method 'borda' (use mean, median, euclidean)
    """
    return np.asarray(_spec(method).score(np.asarray(ranks, dtype=float)), dtype=float)


def consensus(ranks: pd.DataFrame, method: ConsensusMethod | str) -> pd.DataFrame:
    """The consensus ranking of an entry x task table of ranks by one method.

    Returns
    -------
    pandas.DataFrame
        Index entry; columns ``score`` (lower is better) and ``rank`` (1 = best, ties share the
        minimum rank); sorted by rank, then entry.

    Examples
    --------
    >>> r = pd.DataFrame({"t1": [1, 2, 3], "t2": [2, 1, 3]}, index=["a", "b", "c"])
    >>> consensus(r, "mean").to_dict("index")
    {'a': {'score': 1.5, 'rank': 1}, 'b': {'score': 1.5, 'rank': 1}, 'c': {'score': 3.0, 'rank': 3}}
    """
    scores = consensus_scores(ranks.to_numpy(dtype=float).T, method)
    out = pd.DataFrame({"score": scores, "rank": _rank_min(scores)}, index=ranks.index)
    out.index.name = "entry"
    return out.sort_values(["rank", "entry"])


def consensus_table(ranks: pd.DataFrame) -> pd.DataFrame:
    """Every method of :data:`CONSENSUS_METHODS` side by side.

    Returns
    -------
    pandas.DataFrame
        Index entry; per method ``score_<method>`` and ``rank_<method>``; sorted by the
        ``euclidean`` rank (challengeR's), then entry.

    Examples
    --------
    >>> r = pd.DataFrame({"t1": [1, 2], "t2": [1, 2]}, index=["a", "b"])
    >>> list(consensus_table(r).columns)[:2], consensus_table(r)["rank_median"].to_dict()
    (['score_mean', 'rank_mean'], {'a': 1, 'b': 2})
    """
    columns: dict[str, pd.Series] = {}
    for method in CONSENSUS_METHODS:
        result = consensus(ranks, method)
        columns[f"score_{method}"] = result["score"]
        columns[f"rank_{method}"] = result["rank"]
    table = pd.DataFrame(columns).reindex(ranks.index)
    table.index.name = "entry"
    return table.sort_values(["rank_euclidean", "entry"])


@dataclass(frozen=True)
class ConsensusStability:
    """Bootstrap distribution of one consensus method's ranking.

    Attributes
    ----------
    method : str
        The consensus method.
    boot : pandas.DataFrame
        One row per resample, one column per entry: consensus ranks.
    frequencies : pandas.DataFrame
        Index entry, columns the ranks 1..n: the share of resamples giving the entry that rank
        (each row sums to 1).
    taus : numpy.ndarray
        Kendall's tau (tau-b) between each resample's consensus ranks and the full-data ones
        (NaN where either ranking ties every entry).
    """

    method: str
    boot: pd.DataFrame
    frequencies: pd.DataFrame
    taus: np.ndarray

    def tau_summary(self) -> dict[str, float]:
        """Median, first and third quartile of the defined taus (NaN when none is defined).

        Examples
        --------
        >>> s = ConsensusStability("mean", pd.DataFrame(), pd.DataFrame(),
        ...                        np.array([1.0, 0.5, 1.0, 0.0, np.nan]))
        >>> s.tau_summary()
        {'median': 0.75, 'q1': 0.375, 'q3': 1.0}
        """
        defined = self.taus[~np.isnan(self.taus)]
        if defined.size == 0:
            return {"median": float("nan"), "q1": float("nan"), "q3": float("nan")}
        q1, median, q3 = np.quantile(defined, [0.25, 0.5, 0.75])
        return {"median": float(median), "q1": float(q1), "q3": float(q3)}


def _kendall_rows(boot: np.ndarray, full: np.ndarray) -> np.ndarray:
    from scipy.stats import kendalltau

    if full.size < 2:
        return np.full(boot.shape[0], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a constant ranking: NaN
        return np.array([kendalltau(row, full).statistic for row in boot], dtype=float)


def bootstrap_consensus(
    boot_ranks: Mapping[str, pd.DataFrame],
    ranks: pd.DataFrame,
    method: ConsensusMethod | str,
) -> ConsensusStability:
    """The consensus on every bootstrap resample of the tasks' rankings, and its stability.

    Parameters
    ----------
    boot_ranks
        Task -> resample x entry ranks of the task's board ranking on resamples of its cases
        (:attr:`leaderboards.board.BoardRanking.boot`); the same number of resamples for every
        task, columns including every entry of ``ranks``. Row ``b`` of every task forms
        bootstrap sample ``b``.
    ranks
        The full-data entry x task ranks (:attr:`TaskRanks.ranks`): its entries are compared
        (each resample's board ranks are restricted to them as :func:`rank_among` does).
    method
        A name of :data:`CONSENSUS_METHODS`.

    Returns
    -------
    ConsensusStability

    Examples
    --------
    >>> ranks = pd.DataFrame({"t1": [1, 2], "t2": [1, 2]}, index=["a", "b"])
    >>> boot = {"t1": pd.DataFrame({"a": [1, 1, 2], "b": [2, 2, 1]}),
    ...         "t2": pd.DataFrame({"a": [1, 2, 2], "b": [2, 1, 1]})}
    >>> s = bootstrap_consensus(boot, ranks, "mean")
    >>> s.boot.to_dict("list"), s.frequencies.loc["a"].tolist(), s.taus.tolist()
    ({'a': [1, 1, 2], 'b': [2, 1, 1]}, [0.666..., 0.333...], [1.0, nan, -1.0])
    """
    entries = list(ranks.index)
    tasks = list(ranks.columns)
    sizes = {len(boot_ranks[t]) for t in tasks}
    if len(sizes) != 1:
        raise ValueError(f"every task needs the same number of resamples, got {sorted(sizes)}")
    stacked = np.stack(
        [_rank_min(boot_ranks[t][entries].to_numpy(dtype=float)) for t in tasks], axis=1
    )  # (resamples, tasks, entries)
    boot = _rank_min(consensus_scores(stacked, method))
    full = consensus(ranks, method)["rank"].reindex(entries).to_numpy()
    n = len(entries)
    frequencies = pd.DataFrame(
        [[float(np.mean(boot[:, j] == r)) for r in range(1, n + 1)] for j in range(n)],
        index=pd.Index(entries, name="entry"),
        columns=pd.Index(range(1, n + 1), name="rank"),
    )
    return ConsensusStability(
        method=str(method),
        boot=pd.DataFrame(boot, columns=entries),
        frequencies=frequencies,
        taus=_kendall_rows(boot, full),
    )


@dataclass(frozen=True)
class CrossTaskConsensus:
    """The consensus of one split name's boards across tasks.

    Attributes
    ----------
    split : str
        The split name shared by the tasks.
    tasks : list of str
        The tasks, sorted.
    ranks : TaskRanks
        Per-task ranks of the compared entries, and the entries left out.
    table : pandas.DataFrame
        :func:`consensus_table` of ``ranks.ranks``.
    stability : dict
        Method -> :class:`ConsensusStability`; empty when some task's ranking has no
        bootstrap (a run-level score without per-case values, e.g. COCO AP).
    unstable_tasks : list of str
        The tasks without a bootstrap.
    n_resamples, seed : int
        Bootstrap settings; task ``k`` (in ``tasks`` order) is resampled with seed ``seed + k``.
    """

    split: str
    tasks: list[str]
    ranks: TaskRanks
    table: pd.DataFrame
    stability: dict[str, ConsensusStability]
    unstable_tasks: list[str]
    n_resamples: int
    seed: int


def cross_task_consensus(
    boards: Mapping[str, LeaderboardData],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    rankings: Mapping[str, BoardRanking] | None = None,
) -> CrossTaskConsensus:
    """Rank each task's board, then the consensus over the tasks and its bootstrap stability.

    Parameters
    ----------
    boards
        Task -> its loaded board (:func:`leaderboards.data.load_leaderboard_data`), all of one
        split name.
    n_resamples
        Bootstrap resamples per task (1000 by default).
    seed
        Task ``k`` of the sorted tasks draws its resamples with seed ``seed + k``, so that the
        resamples of different tasks are independent (they hold different cases) and the same
        boards and seed give the same numbers.
    rankings
        Task -> its board ranking (:func:`leaderboards.board.board_ranking`) when already
        computed with those seeds; default: computed here.

    Returns
    -------
    CrossTaskConsensus

    Raises
    ------
    ValueError
        With fewer than two tasks, or boards of different split names.
    """
    from leaderboards.board import board_ranking

    tasks = sorted(boards)
    splits = sorted({boards[t].split for t in tasks})
    if len(tasks) < 2 or len(splits) != 1:
        raise ValueError(
            f"a consensus needs at least two tasks of one split, got tasks {tasks} "
            f"of splits {splits}"
        )
    ranked = {
        t: rankings[t]
        if rankings is not None
        else board_ranking(boards[t], n_resamples=n_resamples, seed=seed + k)
        for k, t in enumerate(tasks)
    }
    per_task = task_ranks({t: ranked[t].overall["rank"] for t in tasks})
    unstable = [t for t in tasks if len(ranked[t].boot) == 0]
    stability: dict[str, ConsensusStability] = {}
    if not unstable and len(per_task.ranks) >= 2:
        boot = {t: ranked[t].boot for t in tasks}
        stability = {m: bootstrap_consensus(boot, per_task.ranks, m) for m in CONSENSUS_METHODS}
    return CrossTaskConsensus(
        split=splits[0],
        tasks=tasks,
        ranks=per_task,
        table=consensus_table(per_task.ranks),
        stability=stability,
        unstable_tasks=unstable,
        n_resamples=n_resamples,
        seed=seed,
    )
