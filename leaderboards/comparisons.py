"""Paired comparisons of entries and of rankings, as challenge reports show them.

* :func:`paired_tests`: every entry against one other entry (the overall leader, or a chosen
  reference entry) on one metric: the mean per-case difference and a two-sided Wilcoxon
  signed-rank test, the p-values Holm-corrected (:func:`holm`) across the entries compared.
* :func:`pairwise_significance`: the one-sided test of every ordered pair of entries, i.e. the
  pairwise results the test-based ranking (:func:`leaderboards.ranking.test_based_rank`)
  counts; drawn as challengeR's significance map.
* :func:`podium_ranks`: every entry's rank on every case, placed on the podium by challengeR's
  podium plot.
* :func:`bootstrap_tau`: Kendall's tau between two rankings on every bootstrap sample of the
  cases (the samples of :func:`leaderboards.statistics.bootstrap_ranks`).

The signed-rank test is applied in one way everywhere (:func:`signed_rank_p`):

- a case where either entry has no value (NaN) is left out; equal values, two infinite worst
  values included, are a zero difference;
- zero differences are dropped before ranking (Wilcoxon's rule, scipy's ``zero_method="wilcox"``,
  as R's ``wilcox.test``);
- the exact null distribution is used with fewer than 50 non-zero differences whose absolute
  values are all distinct; otherwise the normal approximation with tie and continuity
  correction. This is the rule of the test-based ranking. (R's ``wilcox.test`` also falls back
  to the approximation when a zero difference was dropped; this does not, so that the two
  tables of a board never disagree.)
- without any non-zero difference (identical values on every case) p = 1: no evidence of a
  difference. Without any case with both values, p is NaN and the comparison is left out of
  Holm's correction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from evaluator.errors import StoreError

if TYPE_CHECKING:
    from leaderboards.board import Leaderboard

__all__ = [
    "EXACT_BELOW",
    "Comparisons",
    "PairedTests",
    "bootstrap_tau",
    "check_reference_entry",
    "compute_comparisons",
    "holm",
    "paired_differences",
    "paired_tests",
    "pairwise_significance",
    "podium_ranks",
    "signed_rank_p",
]

#: The exact signed-rank distribution is used below this many non-zero differences (without
#: ties), as R's ``wilcox.test`` and the test-based ranking.
EXACT_BELOW = 50

Alternative = Literal["two-sided", "greater", "less"]


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (Holm 1979; R's ``p.adjust(p, "holm")``).

    The ``i``-th smallest of ``m`` p-values is multiplied by ``m - i + 1``; the products are
    made non-decreasing in that order (running maximum) and capped at 1. A hypothesis is rejected
    at level ``alpha`` when its adjusted p-value is ``<= alpha``, which is exactly Holm's
    step-down procedure. NaN p-values stay NaN and are not counted in ``m`` (as R's default).

    Parameters
    ----------
    pvalues
        Unadjusted p-values in [0, 1], any order; NaN allowed.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, float, same shape and order as ``pvalues``.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, 0.005]).round(4).tolist()
    [0.03, 0.06, 0.06, 0.02]
    >>> holm([0.5, float("nan"), 0.01]).tolist()
    [0.5, nan, 0.02]
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    defined = ~np.isnan(p)
    m = int(defined.sum())
    if m == 0:
        return out
    values = p[defined]
    order = np.argsort(values, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * values[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    out[defined] = adjusted
    return out


def signed_rank_p(
    differences: Sequence[float] | np.ndarray, *, alternative: Alternative = "two-sided"
) -> float:
    """p-value of the Wilcoxon signed-rank test of paired differences (module rules).

    Parameters
    ----------
    differences
        Paired differences ``x - y`` (no NaN). ``±inf`` is allowed: such differences rank above
        every finite one and tie with each other, as in the test-based ranking.
    alternative
        ``"two-sided"``, ``"greater"`` (``x`` tends to be larger) or ``"less"``.

    Returns
    -------
    float
        In (0, 1]; 1.0 when every difference is zero (or there is none).

    Examples
    --------
    >>> signed_rank_p([1.0, 2.0, 3.0, 4.0, 5.0])  # exact: 2 / 2**5
    0.0625
    >>> signed_rank_p([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], alternative="greater")  # zero dropped
    0.03125
    >>> signed_rank_p([0.0, 0.0])
    1.0
    """
    from scipy.stats import wilcoxon

    diff = np.asarray(differences, dtype=float)
    nonzero = diff[diff != 0]
    if nonzero.size == 0:
        return 1.0
    ties = np.unique(np.abs(nonzero)).size < nonzero.size
    exact = nonzero.size < EXACT_BELOW and not ties
    result = wilcoxon(
        nonzero,
        alternative=alternative,
        zero_method="wilcox",
        method="exact" if exact else "approx",
        correction=not exact,
    )
    return float(result.pvalue)


def paired_differences(scores: pd.DataFrame, entry: str, against: str) -> np.ndarray:
    """Per-case differences ``entry - against`` on the cases where both have a value.

    Equal values (two infinite worst values included) give 0, never NaN.

    Examples
    --------
    >>> s = pd.DataFrame({"a": [0.5, float("inf"), float("nan")], "b": [0.25, float("inf"), 1.0]})
    >>> paired_differences(s, "a", "b").tolist()
    [0.25, 0.0]
    """
    a = scores[entry].to_numpy(dtype=float)
    b = scores[against].to_numpy(dtype=float)
    both = ~np.isnan(a) & ~np.isnan(b)
    a, b = a[both], b[both]
    with np.errstate(invalid="ignore"):
        return np.where(a == b, 0.0, a - b)


def paired_tests(scores: pd.DataFrame, against: str, *, alpha: float = 0.05) -> pd.DataFrame:
    """Every other entry against ``against``: mean difference, Wilcoxon p, Holm-adjusted p.

    Parameters
    ----------
    scores
        Case x entry matrix of one metric (:func:`leaderboards.ranking.score_matrix`).
    against
        The entry every other entry is compared with (a column of ``scores``).
    alpha
        Level at which an adjusted p-value counts as significant (``p_holm <= alpha``).

    Returns
    -------
    pandas.DataFrame
        Index entry (every column but ``against``, in column order); columns ``n`` (cases with
        both values), ``mean_difference`` (mean of ``entry - against`` over those cases, in the
        metric's unit), ``p`` (two-sided signed-rank test), ``p_holm`` (Holm-adjusted across the
        entries compared) and ``significant`` (bool).

    Examples
    --------
    >>> s = pd.DataFrame({"lead": [0.9, 0.8, 0.7, 0.6, 0.5, 0.9],
    ...                   "b": [0.1, 0.2, 0.3, 0.4, 0.45, 0.0],
    ...                   "c": [0.9, 0.8, 0.7, 0.6, 0.5, 0.9]})
    >>> t = paired_tests(s, "lead")
    >>> t["p"].round(4).tolist(), t["p_holm"].round(4).tolist(), t["significant"].tolist()
    ([0.0312, 1.0], [0.0625, 1.0], [False, False])
    """
    if against not in scores.columns:
        raise StoreError(
            f"'{against}' is not an entry of this leaderboard "
            f"(entries: {', '.join(map(str, scores.columns))})"
        )
    others = [e for e in scores.columns if e != against]
    n, mean, p = [], [], []
    for entry in others:
        diff = paired_differences(scores, entry, against)
        n.append(diff.size)
        mean.append(float(np.mean(diff)) if diff.size else np.nan)
        p.append(signed_rank_p(diff) if diff.size else np.nan)
    adjusted = holm(p)
    with np.errstate(invalid="ignore"):
        significant = adjusted <= alpha
    out = pd.DataFrame(
        {
            "n": np.asarray(n, dtype=int),
            "mean_difference": mean,
            "p": p,
            "p_holm": adjusted,
            "significant": significant,
        },
        index=pd.Index(others, name="entry"),
    )
    return out


def pairwise_significance(scores: pd.DataFrame, *, higher_is_better: bool) -> pd.DataFrame:
    """One-sided signed-rank p-values of every ordered pair: is the row entry better?

    The test of the row entry against the column entry, in the metric's better direction
    (``"greater"`` for higher-is-better metrics); ``p < alpha`` is a win of the row entry in
    the test-based ranking (:func:`leaderboards.ranking.test_based_rank`), so the number of
    significant cells of a row is that entry's ``wins``.

    Returns
    -------
    pandas.DataFrame
        Entry x entry (rows and columns in the order of ``scores.columns``), NaN on the
        diagonal and where two entries share no case.

    Examples
    --------
    >>> s = pd.DataFrame({"a": [0.9, 0.8, 0.7, 0.6, 0.5, 0.9], "b": [0.1, 0.2, 0.3, 0.4, 0.45, 0.0]})
    >>> pairwise_significance(s, higher_is_better=True).round(4).to_dict()
    {'a': {'a': nan, 'b': 1.0}, 'b': {'a': 0.0156, 'b': nan}}
    """
    alternative: Alternative = "greater" if higher_is_better else "less"
    entries = list(scores.columns)
    p = pd.DataFrame(np.nan, index=pd.Index(entries), columns=pd.Index(entries))
    for a in entries:
        for b in entries:
            if a == b:
                continue
            diff = paired_differences(scores, a, b)
            if diff.size:
                p.loc[a, b] = signed_rank_p(diff, alternative=alternative)
    p.index.name, p.columns.name = "entry", "compared_with"
    return p


def podium_ranks(scores: pd.DataFrame, *, higher_is_better: bool) -> pd.DataFrame:
    """Rank of every entry on every case (1 = best; ties share the minimum rank; NaN last).

    Examples
    --------
    >>> s = pd.DataFrame({"a": [0.9, 0.5], "b": [0.7, 0.5], "c": [0.8, float("nan")]})
    >>> podium_ranks(s, higher_is_better=True).to_dict("list")
    {'a': [1, 1], 'b': [3, 1], 'c': [2, 3]}
    """
    ranks = scores.rank(axis=1, ascending=not higher_is_better, method="min", na_option="bottom")
    return ranks.astype(int)


def bootstrap_tau(boot_a: pd.DataFrame, boot_b: pd.DataFrame) -> np.ndarray:
    """Kendall's tau-b between two rankings on every bootstrap sample.

    Parameters
    ----------
    boot_a, boot_b
        Resample x entry ranks of two metrics, drawn on the *same* resamples (the same seed and
        number of cases, as :func:`leaderboards.statistics.bootstrap_ranks` does for every
        metric of a board); the columns of ``boot_b`` are aligned to ``boot_a``'s.

    Returns
    -------
    numpy.ndarray
        One tau per resample (scipy's ``kendalltau``, variant b, which adjusts for ties); NaN
        where either ranking ties every entry, and everywhere with fewer than two entries.

    Examples
    --------
    >>> a = pd.DataFrame({"x": [1, 1, 1], "y": [2, 2, 1], "z": [3, 3, 1]})
    >>> b = pd.DataFrame({"x": [1, 3, 1], "y": [2, 2, 2], "z": [3, 1, 3]})
    >>> bootstrap_tau(a, b).tolist()
    [1.0, -1.0, nan]
    """
    x = boot_a.to_numpy(dtype=float)
    y = boot_b[boot_a.columns].to_numpy(dtype=float)
    n = x.shape[1]
    if n < 2:
        return np.full(x.shape[0], np.nan)
    i, j = np.triu_indices(n, k=1)
    sx = np.sign(x[:, i] - x[:, j])
    sy = np.sign(y[:, i] - y[:, j])
    pairs = i.size
    untied_x = pairs - np.sum(sx == 0, axis=1)
    untied_y = pairs - np.sum(sy == 0, axis=1)
    denominator = np.sqrt(untied_x.astype(float) * untied_y)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = np.sum(sx * sy, axis=1) / denominator
    return np.where(denominator > 0, tau, np.nan)


@dataclass(frozen=True)
class PairedTests:
    """The entries of one metric compared with one entry (see :func:`paired_tests`).

    Attributes
    ----------
    metric : str
    against : str
        The entry compared with.
    role : str
        ``"leader"`` (rank 1 of the board's overall ranking) or ``"reference"`` (chosen).
    table : pandas.DataFrame
        :func:`paired_tests`' table, rows in overall rank order.
    """

    metric: str
    against: str
    role: Literal["leader", "reference"]
    table: pd.DataFrame


@dataclass(frozen=True)
class Comparisons:
    """A board's paired comparisons, significance maps and bootstrap taus.

    Attributes
    ----------
    leader : str
        Rank 1 of the overall ranking.
    reference : str or None
        The chosen reference entry.
    alpha : float
        Level of the tests (the board's).
    paired : list of PairedTests
        Per ranked metric: against the leader, then against the reference entry (if any).
    significance : dict
        Metric -> :func:`pairwise_significance` p-values, rows and columns in the order of the
        metric's test-based ranking (most wins first, ties by mean rank).
    tau : dict
        ``(standard, cc)`` -> bootstrap taus (:func:`bootstrap_tau`) of the board's CC pairs.
    """

    leader: str
    reference: str | None
    alpha: float
    paired: list[PairedTests]
    significance: dict[str, pd.DataFrame]
    tau: dict[tuple[str, str], np.ndarray]


def check_reference_entry(
    reference_entry: str | None, entries: Sequence[str], *, task: str, split: str
) -> None:
    """Refuse a reference entry that is not an entry of the board.

    Raises
    ------
    StoreError
        Naming the entries there are.

    Examples
    --------
    >>> check_reference_entry("b", ["a", "b"], task="t", split="test")
    >>> check_reference_entry("x", ["a", "b"], task="t", split="test")
    Traceback (most recent call last):
    ...
    evaluator.errors.StoreError: reference entry 'x' is not an entry of task 't', split 'test' (entries: a, b)
    """
    if reference_entry is not None and reference_entry not in entries:
        raise StoreError(
            f"reference entry '{reference_entry}' is not an entry of task '{task}', split "
            f"'{split}' (entries: {', '.join(map(str, entries))})"
        )


def compute_comparisons(lb: Leaderboard, *, reference_entry: str | None = None) -> Comparisons:
    """Paired tests against the leader (and ``reference_entry``), significance maps, taus.

    Every ranked metric of the board is compared; the tests use the board's ``alpha``; the taus
    come from the board's bootstrap ranks (``lb.boot_ranks``, one seed for every metric).

    Raises
    ------
    StoreError
        When ``reference_entry`` is not an entry of the board.
    """
    data = lb.data
    order = [str(e) for e in lb.overall.index]
    leader = order[0]
    check_reference_entry(reference_entry, order, task=data.task, split=data.split)
    directions = data.directions()
    paired: list[PairedTests] = []
    significance: dict[str, pd.DataFrame] = {}
    comparators: list[tuple[str, Literal["leader", "reference"]]] = [(leader, "leader")]
    if reference_entry is not None:
        comparators.append((reference_entry, "reference"))
    for metric in data.metrics:
        scores = data.scores[metric][order]
        for against, role in comparators:
            table = paired_tests(scores, against, alpha=lb.alpha)
            paired.append(PairedTests(metric, against, role, table))
        by_tests = lb.per_metric[metric].sort_values(
            ["rank_test_based", "rank_mean"], kind="stable"
        )
        ranked = [str(e) for e in by_tests.index]
        significance[metric] = pairwise_significance(
            scores[ranked], higher_is_better=directions[metric]
        )
    tau = {
        (c.standard, c.cc): bootstrap_tau(lb.boot_ranks[c.standard], lb.boot_ranks[c.cc])
        for c in lb.cc
    }
    return Comparisons(leader, reference_entry, lb.alpha, paired, significance, tau)
