"""Fold-wise mean ± standard deviation of entries evaluated on the cross-validation folds.

Papers that train one model per fold report a metric as the mean over the folds of the per-fold
mean, ± the standard deviation over the folds (APEX, Table 2; MultiTalent, Table 2). For a task
with ``k`` folds (``split.folds`` in ``datasets.yaml``; splits ``fold0`` ... ``fold{k-1}``, the
validation cases of each fold, see :mod:`evaluator.datasets.splits`), :func:`fold_summary` reads
every fold's leaderboard exactly as the fold's own board does
(:func:`leaderboards.data.load_leaderboard_data`: each entry's latest finished run per fold,
missing cases at the metric's worst value, broken reference cases left out), takes each entry's
mean over the fold's cases (NaN-aware, as the board's mean), and summarises the ``k`` per-fold
means of every entry that has a run on *every* fold: their mean and their sample standard
deviation (``n - 1`` in the denominator, numpy's ``std(ddof=1)``, R's ``sd``). Entries with
runs on only some folds are listed with the folds they lack, not summarised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evaluator.datasets.registry import Registry, load_registry
from evaluator.errors import StoreError

if TYPE_CHECKING:
    from evaluator.store import Store
    from leaderboards.data import LeaderboardData

__all__ = ["FoldSummary", "fold_names", "fold_summary", "summarise_folds"]


@dataclass(frozen=True)
class FoldSummary:
    """Fold-wise summary of a task.

    Attributes
    ----------
    task : str
    folds : tuple of str
        The task's fold splits, ``("fold0", ..., "fold{k-1}")``.
    metrics : tuple of str
        Metrics ranked on every fold's board.
    per_fold : pandas.DataFrame
        Index ``(entry, fold)``; one column per metric: the entry's mean over the fold's cases.
        Complete entries only.
    table : pandas.DataFrame
        Index entry (complete entries, in order of first appearance); columns ``<metric>_mean``
        and ``<metric>_std`` per metric, and ``n_folds``.
    left_out : dict
        Entry -> why it is not summarised (the folds it has no finished run on).
    """

    task: str
    folds: tuple[str, ...]
    metrics: tuple[str, ...]
    per_fold: pd.DataFrame
    table: pd.DataFrame
    left_out: dict[str, str] = field(default_factory=dict)


def fold_names(folds: int) -> tuple[str, ...]:
    """Split names of ``folds`` cross-validation folds.

    Examples
    --------
    >>> fold_names(3)
    ('fold0', 'fold1', 'fold2')
    """
    return tuple(f"fold{k}" for k in range(folds))


def summarise_folds(
    per_fold_means: pd.DataFrame, folds: tuple[str, ...]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Mean ± sample SD over folds of per-fold means; entries lacking a fold are left out.

    Parameters
    ----------
    per_fold_means
        Index ``(entry, fold)``; one column per metric.
    folds
        Every fold an entry needs.

    Returns
    -------
    (pandas.DataFrame, dict)
        The summary (index entry; ``<metric>_mean``, ``<metric>_std``, ``n_folds``) and the
        entries left out with the reason.

    Examples
    --------
    >>> idx = pd.MultiIndex.from_tuples(
    ...     [("a", "fold0"), ("a", "fold1"), ("b", "fold0")], names=["entry", "fold"])
    >>> table, left = summarise_folds(pd.DataFrame({"dice": [0.6, 0.8, 0.5]}, index=idx),
    ...                               ("fold0", "fold1"))
    >>> table.round(4).to_dict("records"), left
    ([{'dice_mean': 0.7, 'dice_std': 0.1414, 'n_folds': 2}], {'b': 'no finished run on fold1'})
    """
    metrics = list(per_fold_means.columns)
    rows: dict[str, dict[str, float]] = {}
    left_out: dict[str, str] = {}
    entries = list(dict.fromkeys(per_fold_means.index.get_level_values("entry")))
    for entry in entries:
        part = per_fold_means.xs(entry, level="entry")
        missing = [f for f in folds if f not in part.index]
        if missing:
            left_out[entry] = f"no finished run on {', '.join(missing)}"
            continue
        values = part.loc[list(folds)]
        row: dict[str, float] = {}
        for metric in metrics:
            column = values[metric].to_numpy(dtype=float)
            row[f"{metric}_mean"] = float(np.mean(column))
            row[f"{metric}_std"] = float(np.std(column, ddof=1)) if column.size > 1 else np.nan
        row["n_folds"] = len(folds)
        rows[entry] = row
    columns = [f"{m}_{s}" for m in metrics for s in ("mean", "std")] + ["n_folds"]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    table["n_folds"] = table["n_folds"].astype(int)
    table.index.name = "entry"
    return table, left_out


def fold_summary(
    store: Store, task: str, *, registry: Registry | None = None
) -> FoldSummary | None:
    """Fold-wise mean ± SD of every entry with a finished run on every fold of ``task``.

    Parameters
    ----------
    store
        An open results store.
    task
        Task name (``datasets.yaml``); its ``split.folds`` gives the folds.
    registry
        Task registry; default :func:`evaluator.datasets.registry.load_registry`.

    Returns
    -------
    FoldSummary or None
        None when no fold of the task has a finished leaderboard run.
    """
    from leaderboards.data import RANKED_KINDS, load_leaderboard_data

    reg = registry or load_registry()
    folds = fold_names(reg.task(task).split.folds)
    stored = {r.split for r in store.list_runs(task=task, status="finished", kind=RANKED_KINDS)}
    boards: dict[str, LeaderboardData] = {}
    for fold in folds:
        if fold not in stored:
            continue
        try:
            boards[fold] = load_leaderboard_data(task, fold, store=store, registry=reg)
        except StoreError:
            continue  # only degradation-study runs, or no rankable metric, on this fold
    if not boards:
        return None
    metrics = tuple(
        m
        for m in next(iter(boards.values())).metrics
        if all(m in b.metrics for b in boards.values())
    )
    records = []
    for fold, board in boards.items():
        for entry in board.entries:
            means = {m: float(board.scores[m][entry].mean()) for m in metrics}
            records.append({"entry": entry, "fold": fold, **means})
    per_fold = pd.DataFrame.from_records(records, columns=["entry", "fold", *metrics])
    per_fold = per_fold.set_index(["entry", "fold"])
    table, left_out = summarise_folds(per_fold, folds)
    complete = per_fold.index.get_level_values("entry").isin(list(table.index))
    return FoldSummary(task, folds, metrics, per_fold[complete], table, left_out)
