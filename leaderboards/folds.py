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
deviation (``n - 1`` in the denominator, numpy's ``std(ddof=1)``, R's ``sd``). A run-level
score of the task's profile (COCO mask mAP, aggregated Dice: ``RUN_AGGREGATES``) enters as the
run's own value over all labels, so ChestXDet's mAP gets its mean ± SD over folds as in APEX's
Table 3.1. Entries with runs on only some folds are listed with the folds they lack, not
summarised.

On a slice task (``slices:`` in ``datasets.yaml``, :mod:`evaluator.datasets.slices`) each case
is one axial slice of a patient. The per-fold mean over slices weighs a patient by its number of
slices; :attr:`FoldSummary.patient_table` is the same summary with the slices of each patient
averaged first (the patient of a slice from its case id, :func:`evaluator.datasets.slices.slice_patient`),
then the patients, so that every patient counts once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evaluator.datasets.registry import RUN_AGGREGATES, Registry, load_registry
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
        The run-level scores of the task's profile every fold run has (COCO mAP, aggregated
        Dice), then the metrics ranked on every fold's board.
    per_fold : pandas.DataFrame
        Index ``(entry, fold)``; one column per metric: the entry's mean over the fold's cases.
        Complete entries only.
    table : pandas.DataFrame
        Index entry (complete entries, in order of first appearance); columns ``<metric>_mean``
        and ``<metric>_std`` per metric, and ``n_folds``.
    left_out : dict
        Entry -> why it is not summarised (the folds it has no finished run on).
    test_table : pandas.DataFrame or None
        The same summary of the fold models on the held-out ``test`` split (``ccbench run
        --folds all --split test``: each fold's model scored on the test cases), as APEX's
        "TEST" columns; None when no entry has such runs.
    test_left_out : dict
        Entry -> the folds whose model has no finished test run.
    per_patient : pandas.DataFrame or None
        Slice tasks only: index ``(entry, fold, patient)`` (``fold`` is ``fold<k>`` or
        ``test/fold<k>``), one column per metric: the mean over the patient's slices. None on
        other tasks.
    patient_table, patient_test_table : pandas.DataFrame or None
        Slice tasks only: :attr:`table` and :attr:`test_table` with each fold's mean taken over
        patients (each the mean of its slices) instead of over slices.
    """

    task: str
    folds: tuple[str, ...]
    metrics: tuple[str, ...]
    per_fold: pd.DataFrame
    table: pd.DataFrame
    left_out: dict[str, str] = field(default_factory=dict)
    test_table: pd.DataFrame | None = None
    test_left_out: dict[str, str] = field(default_factory=dict)
    per_patient: pd.DataFrame | None = None
    patient_table: pd.DataFrame | None = None
    patient_test_table: pd.DataFrame | None = None


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
    from leaderboards.data import RANKED_KINDS, load_leaderboard_data, run_fold

    reg = registry or load_registry()
    spec = reg.task(task)
    folds = fold_names(spec.split.folds)
    finished = store.list_runs(task=task, status="finished", kind=RANKED_KINDS)
    stored = {r.split for r in finished}
    boards: dict[str, LeaderboardData] = {}
    tests: dict[str, LeaderboardData] = {}
    test_folds = {run_fold(r) for r in finished if r.split == "test"} - {None}
    for k, fold in enumerate(folds):
        try:
            if fold in stored:
                boards[fold] = load_leaderboard_data(task, fold, store=store, registry=reg)
            if k in test_folds:
                tests[fold] = load_leaderboard_data(task, "test", store=store, registry=reg, fold=k)
        except StoreError:
            continue  # only degradation-study runs, or no rankable metric, on this fold
    if not boards:
        return None
    first = next(iter(boards.values()))
    metrics = tuple(m for m in first.metrics if all(m in b.metrics for b in boards.values()))
    run_level = tuple(
        m
        for m in (first.profile.metrics if first.profile is not None else ())
        if m in RUN_AGGREGATES and all(m in set(b.aggregates["metric"]) for b in boards.values())
    )
    metrics = (*run_level, *metrics)
    per_fold = _per_fold_means(boards, metrics)
    table, left_out = summarise_folds(per_fold, folds)
    complete = per_fold.index.get_level_values("entry").isin(list(table.index))
    test_table, test_left_out = _summarise_tests(tests, metrics, folds)
    summary = FoldSummary(
        task, folds, metrics, per_fold[complete], table, left_out, test_table, test_left_out
    )
    if spec.slices is None:
        return summary
    patients = _per_patient_means(boards, metrics)
    test_patients = _per_patient_means(tests, metrics)
    return replace(
        summary,
        per_patient=pd.concat(
            [patients, test_patients.rename(index=lambda f: f"test/{f}", level="fold")]
        ),
        patient_table=summarise_folds(_over_patients(patients), folds)[0],
        patient_test_table=_summarise_tests(
            tests, metrics, folds, means=_over_patients(test_patients)
        )[0],
    )


def _summarise_tests(
    tests: dict[str, LeaderboardData],
    metrics: tuple[str, ...],
    folds: tuple[str, ...],
    *,
    means: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame | None, dict[str, str]]:
    """The fold models' test summary (None when there is no test run) and who is left out."""
    if not tests:
        return None, {}
    table, left_out = summarise_folds(
        _per_fold_means(tests, metrics) if means is None else means, folds
    )
    return (table if len(table) else None), left_out


def _per_fold_means(boards: dict[str, LeaderboardData], metrics: tuple[str, ...]) -> pd.DataFrame:
    """Index ``(entry, fold)``: each entry's mean over the fold board's cases, per metric; a
    run-level aggregate (COCO mAP, aggregated Dice) is the run's own value over all labels."""
    from leaderboards.official import run_values

    records = []
    for fold, board in boards.items():
        runs = {m: run_values(board, m)[0] for m in metrics if m in RUN_AGGREGATES}
        for entry in board.entries:
            means = {m: float(board.scores[m][entry].mean()) for m in metrics if m in board.scores}
            means |= {m: float(values.get(entry, np.nan)) for m, values in runs.items()}
            records.append({"entry": entry, "fold": fold, **means})
    per_fold = pd.DataFrame.from_records(records, columns=["entry", "fold", *metrics])
    return per_fold.set_index(["entry", "fold"])


def _per_patient_means(
    boards: dict[str, LeaderboardData], metrics: tuple[str, ...]
) -> pd.DataFrame:
    """Index ``(entry, fold, patient)``: each entry's mean over a patient's slices, per metric.

    Slices are grouped by the patient their case id names; the mean skips NaN as the board's
    mean does (a missing slice already counts at the metric's worst value in the board).
    """
    from evaluator.datasets.slices import slice_patient

    parts = []
    for fold, board in boards.items():
        for m in (m for m in metrics if m in board.scores):  # per-case metrics only
            frame = board.scores[m]
            patient = [slice_patient(str(c)) or str(c) for c in frame.index]
            long = frame.groupby(patient).mean().rename_axis("patient").reset_index()
            long = long.melt(id_vars="patient", var_name="entry", value_name="value")
            parts.append(long.assign(fold=fold, metric=m))
    if not parts:
        index = pd.MultiIndex.from_tuples([], names=["entry", "fold", "patient"])
        return pd.DataFrame(columns=list(metrics), index=index, dtype=float)
    long = pd.concat(parts).set_index(["entry", "fold", "patient", "metric"])["value"]
    rows = long.unstack("metric").reindex(columns=list(metrics))
    rows.columns.name = None
    return rows


def _over_patients(per_patient: pd.DataFrame) -> pd.DataFrame:
    """Index ``(entry, fold)``: the mean over patients of :func:`_per_patient_means`."""
    return per_patient.groupby(level=["entry", "fold"], sort=False).mean()
