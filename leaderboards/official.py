"""A task's official score and ranking, computed as the challenge's own evaluation computes it.

A metric profile names its challenge's score in ``official:``
(:class:`evaluator.datasets.registry.OfficialSpec`); :func:`official_score` turns the loaded
leaderboard data into the table the task page leads with:

- per-case metrics (autoPET's Dice, FPV and FNV; BTCV's Dice and mean surface distance): the
  mean over cases of the values the leaderboard ranks (capped at the task's worst value, NaN
  ignored: autoPET's negative cases have no Dice); with ``per_label``, one mean per label
  (organ) and the mean over labels;
- run-level aggregates (HECKTOR's aggregated Dice, ChestXDet's COCO mask AP): the values
  ``ccbench evaluate`` stored for the run, per label and over labels (label 0);
- ``secondary`` metrics: the mean over cases of the capped values, or the median over cases of
  the raw values, ``inf`` included, as the HECKTOR evaluator computes its median HD95 (a case
  without a value counts as ``inf``).

``rank_by: ranking`` is the profile's ranking (autoPET's weighted ranks; BTCV's mean Dice): the
board's overall ranking. A run-level ``rank_by`` ranks by the stored run value (label 0, higher
is better), ties broken by the first secondary metric; its bootstrap resamples the cases and
recomputes the score from the per-case rows where the score allows it (the aggregated Dice, from
``agg_intersection_mm3`` / ``agg_volume_mm3``, :func:`leaderboards.statistics.bootstrap_aggregated_dice`).
COCO AP is computed over the whole split at once and has no per-case rows, hence no bootstrap.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from evaluator.datasets.registry import RUN_AGGREGATES, OfficialSpec
from evaluator.evaluate import ranking_worst
from evaluator.metrics.registry import METRICS
from evaluator.scoring import AGG_INTERSECTION, AGG_VOLUME
from leaderboards.data import count_not_predicted
from leaderboards.ranking import clip_to_worst, score_matrix
from leaderboards.statistics import (
    bootstrap_aggregated_dice,
    bootstrap_aggregates,
    rank_samples,
    rank_stability,
)

if TYPE_CHECKING:
    from leaderboards.data import LeaderboardData

__all__ = [
    "INLINE_LABELS",
    "OfficialColumn",
    "OfficialScore",
    "metric_short_title",
    "official_score",
    "per_label_means",
    "run_values",
]

#: With at most this many labels, a per-label official metric is shown as columns of the
#: official table itself (HECKTOR's GTVp, GTVn and their mean); with more (BTCV's 13 organs,
#: ChestXDet's 13 classes), as a table of its own below it.
INLINE_LABELS = 3

#: Names the challenges print for their run-level scores.
_SHORT_TITLES = {
    "aggregated_dice": "DSCagg",
    "coco_ap": "AP",
    "coco_ap50": "AP50",
    "coco_ap75": "AP75",
}


def metric_short_title(metric: str) -> str:
    """How a challenge names a metric in its table (``DSCagg``, ``AP50``), else the name.

    Examples
    --------
    >>> metric_short_title("aggregated_dice"), metric_short_title("hd95")
    ('DSCagg', 'hd95')
    """
    return _SHORT_TITLES.get(metric, metric)


def _higher_is_better(metric: str) -> bool:
    # run-level aggregates not in METRICS (aggregated Dice) are overlaps: higher is better
    return METRICS[metric].higher_is_better if metric in METRICS else True


@dataclass(frozen=True)
class OfficialColumn:
    """One column of the official table.

    Attributes
    ----------
    key : str
        Column of :attr:`OfficialScore.table`.
    metric : str
        The metric or run-level aggregate.
    label : str or None
        Label name, ``"mean"`` (mean over labels) or None (the metric over all labels).
    aggregate : {"mean", "median", "run"}
        Over cases; ``run``: the stored run-level value.
    secondary : bool
        A secondary metric (shown after the official score, breaks ties).
    higher_is_better : bool
        Direction.
    """

    key: str
    metric: str
    label: str | None
    aggregate: Literal["mean", "median", "run"]
    secondary: bool
    higher_is_better: bool

    @property
    def header(self) -> str:
        """Column header, e.g. ``"DSCagg GTVp"``, ``"mean dice"``, ``"median hd95 (mm)"``.

        Examples
        --------
        >>> OfficialColumn("k", "fp_volume_ml", None, "mean", False, False).header
        'mean fp_volume_ml (ml)'
        >>> OfficialColumn("k", "aggregated_dice", "GTVp", "run", False, True).header
        'DSCagg GTVp'
        >>> OfficialColumn("k", "assd", "mean", "mean", False, False).header
        'mean assd (mm, mean over labels)'
        """
        title = metric_short_title(self.metric)
        if self.aggregate != "run":
            title = f"{self.aggregate} {title}"
        notes = []
        unit = METRICS[self.metric].unit if self.metric in METRICS else ""
        if unit in ("mm", "ml"):
            notes.append(unit)
        if self.label == "mean":
            notes.append("mean over labels")
        elif self.label is not None:
            title += f" {self.label}"
        return f"{title} ({', '.join(notes)})" if notes else title


@dataclass(frozen=True)
class OfficialScore:
    """The official table and ranking of a task.

    Attributes
    ----------
    spec : OfficialSpec
        The profile's ``official:`` block.
    columns : tuple of OfficialColumn
        Columns of ``table``, in display order (official metrics, then secondary).
    table : pandas.DataFrame
        Index entry (board order), one column per :class:`OfficialColumn` key.
    per_label : dict
        Metric -> entry x (label names..., ``"mean"``) table, for per-label metrics of tasks
        with more than :data:`INLINE_LABELS` labels.
    run_level : bool
        Ranked by a run-level aggregate (then ``ranking`` is the board's overall ranking).
    ranking : pandas.DataFrame or None
        With ``run_level``: index entry, sorted by rank; columns ``score`` (the run value of
        ``rank_by``), ``tiebreak`` (the first secondary column), ``rank``, and the bootstrap
        summary ``median_rank``, ``rank_low``, ``rank_high``, ``p_first`` (NaN without one).
    boot : pandas.DataFrame or None
        Resample x entry ranks of the run-level ranking; None when it has no bootstrap.
    tiebreak : OfficialColumn or None
        The column that breaks ties of the run-level ranking.
    no_bootstrap : str
        Why the ranking has no bootstrap (empty when it has one).
    """

    spec: OfficialSpec
    columns: tuple[OfficialColumn, ...]
    table: pd.DataFrame
    per_label: dict[str, pd.DataFrame] = field(default_factory=dict)
    run_level: bool = False
    ranking: pd.DataFrame | None = None
    boot: pd.DataFrame | None = None
    tiebreak: OfficialColumn | None = None
    no_bootstrap: str = ""


def run_values(data: LeaderboardData, metric: str) -> pd.DataFrame:
    """A run-level aggregate of every entry, per label: index entry, columns label numbers.

    Label 0 is the value over all labels (the mean, or COCO's mAP); an entry without the
    aggregate has NaN.
    """
    agg = data.aggregates[data.aggregates["metric"] == metric]
    table = agg.pivot_table(index="entry", columns="label", values="value", aggfunc="first")
    labels = [0, *sorted(data.spec.labels)]
    table = table.reindex(index=data.entries, columns=labels).astype(float)
    worst = _higher_worst(metric)
    for entry, missing in data.not_predicted.items():
        if entry in table.index:  # the value over labels counts a label not predicted at worst
            table.loc[entry, list(missing)] = math.nan
            values = [
                worst if label in missing else table.loc[entry, label] for label in labels[1:]
            ]
            table.loc[entry, 0] = float(_nanmean(np.asarray(values, dtype=float), axis=0))
    return table


def _higher_worst(metric: str) -> float:
    """The worst value of a run-level aggregate (all are fractions, higher is better): 0."""
    spec = METRICS.get(metric)
    return float(spec.worst) if spec is not None and math.isfinite(spec.worst) else 0.0


def _capped_rows(data: LeaderboardData, metric: str) -> tuple[pd.DataFrame, float]:
    """The metric's long rows with values capped at the board's worst value, and that value."""
    rows = data.results[data.results["metric"] == metric]
    if metric in data.worst:
        worst = data.worst[metric]
    elif data.profile is not None:
        worst = ranking_worst(data.profile, metric)
    else:
        worst = METRICS[metric].worst
    higher = METRICS[metric].higher_is_better
    capped = rows.assign(value=clip_to_worst(rows["value"], worst, higher_is_better=higher))
    return count_not_predicted(capped, data.not_predicted, worst), worst


def per_label_means(data: LeaderboardData, metric: str) -> pd.DataFrame:
    """Mean over cases of a per-case metric, per label: index entry, columns label names.

    Values are capped at the board's worst value of the metric (an infinite distance counts as
    the worst value, 50 mm by default); a case an entry has no value of counts with the worst
    value; NaN values (undefined) are left out. The last column, ``mean``, is the mean over the
    labels. A label an entry does not predict (:attr:`LeaderboardData.not_predicted`) is NaN in
    its column ("not predicted") and counts at the worst value in ``mean``.
    """
    rows, worst = _capped_rows(data, metric)
    means = {}
    for label, name in sorted(data.spec.labels.items()):
        matrix = score_matrix(
            rows[rows["label"] == label],
            metric,
            entries=data.entries,
            cases=data.cases,
            worst=worst,
        )
        means[name] = _nanmean(matrix.to_numpy(dtype=float), axis=0)
    table = pd.DataFrame(means, index=pd.Index(data.entries, name="entry"))
    table["mean"] = _nanmean(table.to_numpy(dtype=float), axis=1)
    for entry, missing in data.not_predicted.items():
        if entry in table.index:
            table.loc[entry, [data.spec.labels[v] for v in missing]] = math.nan
    return table


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmean(values, axis=axis))


def _raw_matrix(data: LeaderboardData, metric: str) -> pd.DataFrame:
    """Case x entry raw per-case values (mean over labels); missing, and labels an entry does
    not predict: the metric's own worst."""
    worst = METRICS[metric].worst
    rows = count_not_predicted(
        data.results[data.results["metric"] == metric], data.not_predicted, worst
    )
    return score_matrix(rows, metric, entries=data.entries, cases=data.cases, worst=worst)


def _secondary_matrix(data: LeaderboardData, metric: str, aggregate: str) -> pd.DataFrame:
    """What a secondary metric aggregates: capped values for a mean, raw values for a median."""
    if aggregate == "median":
        return _raw_matrix(data, metric)
    if metric in data.scores:
        return data.scores[metric]
    rows, worst = _capped_rows(data, metric)
    return score_matrix(rows, metric, entries=data.entries, cases=data.cases, worst=worst)


def _aggregate_cases(matrix: pd.DataFrame, aggregate: str) -> pd.Series:
    values = matrix.to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = np.nanmedian(values, axis=0) if aggregate == "median" else np.nanmean(values, axis=0)
    return pd.Series(out, index=matrix.columns, dtype=float)


def _agg_dice_inputs(
    data: LeaderboardData,
) -> tuple[dict[int, pd.DataFrame], dict[int, pd.DataFrame]] | None:
    """Per-label case x entry |P ∩ R| and |P| + |R| (mm³) of the board, or None without rows.

    A case an entry has no row of adds no overlap and the largest volume any entry recorded
    for it (the reference volume at least); the case sets of the board's runs are equal, so
    this happens only for runs of old stores.
    """
    rows = data.results[data.results["metric"].isin([AGG_INTERSECTION, AGG_VOLUME])]
    if rows.empty:
        return None
    intersection: dict[int, pd.DataFrame] = {}
    volume: dict[int, pd.DataFrame] = {}
    for label in sorted(data.spec.labels):
        mine = rows[rows["label"] == label]

        def matrix(metric: str, sub: pd.DataFrame = mine) -> pd.DataFrame:
            part = sub[sub["metric"] == metric]
            table = part.pivot_table(index="case", columns="entry", values="value", aggfunc="sum")
            return table.reindex(index=data.cases, columns=data.entries).astype(float)

        inter, vol = matrix(AGG_INTERSECTION), matrix(AGG_VOLUME)
        largest = vol.max(axis=1).fillna(0.0)
        intersection[label] = inter.fillna(0.0)
        volume[label] = vol.T.fillna(largest).T  # a missing case: the largest volume of it
    return intersection, volume


def _columns_and_table(
    data: LeaderboardData, spec: OfficialSpec
) -> tuple[list[OfficialColumn], pd.DataFrame, dict[str, pd.DataFrame]]:
    labels = dict(sorted(data.spec.labels.items()))
    inline = len(labels) <= INLINE_LABELS
    columns: list[OfficialColumn] = []
    values: dict[str, pd.Series] = {}
    per_label: dict[str, pd.DataFrame] = {}
    for metric in spec.metrics:
        higher = _higher_is_better(metric)
        if metric in RUN_AGGREGATES:
            table = run_values(data, metric)
            named = table.rename(columns={0: "mean", **labels})
            aggregate: Literal["mean", "run"] = "run"
        elif spec.per_label:
            named = per_label_means(data, metric)
            aggregate = "mean"
        else:
            named = None
            aggregate = "mean"
        if named is None:
            key = metric
            matrix = data.scores.get(metric)
            values[key] = (
                _aggregate_cases(matrix, "mean")
                if matrix is not None
                else pd.Series(math.nan, index=data.entries)
            )
            columns.append(OfficialColumn(key, metric, None, aggregate, False, higher))
            continue
        ordered = named[[*labels.values(), "mean"]]
        if spec.per_label and inline:
            for name in ordered.columns:
                key = f"{metric}:{name}"
                values[key] = ordered[name]
                columns.append(OfficialColumn(key, metric, str(name), aggregate, False, higher))
            continue
        if spec.per_label:
            per_label[metric] = ordered
        key = metric
        values[key] = ordered["mean"]
        columns.append(OfficialColumn(key, metric, "mean", aggregate, False, higher))
    for metric, aggregate_over_cases in spec.secondary.items():
        key = f"{aggregate_over_cases}:{metric}"
        matrix = _secondary_matrix(data, metric, aggregate_over_cases)
        values[key] = _aggregate_cases(matrix, aggregate_over_cases)
        columns.append(
            OfficialColumn(
                key, metric, None, aggregate_over_cases, True, METRICS[metric].higher_is_better
            )
        )
    table = pd.DataFrame(
        {k: v.reindex(data.entries) for k, v in values.items()},
        index=pd.Index(data.entries, name="entry"),
    )
    return columns, table, per_label


def _score_key(columns: list[OfficialColumn], metric: str) -> str:
    """The column of the official score itself: the value over all labels (label 0)."""
    for column in columns:
        if column.metric == metric and not column.secondary and column.label in (None, "mean"):
            return column.key
    raise KeyError(metric)


def official_score(
    data: LeaderboardData, *, n_resamples: int = 1000, seed: int = 0
) -> OfficialScore | None:
    """The official table and, for a run-level score, the official ranking of a board.

    Parameters
    ----------
    data
        Loaded by :func:`leaderboards.data.load_leaderboard_data`.
    n_resamples, seed
        Bootstrap of the run-level ranking (the same resamples as the board's other
        bootstraps).

    Returns
    -------
    OfficialScore or None
        None when the task's profile has no ``official:`` block.
    """
    if data.profile is None or data.profile.official is None:
        return None
    spec = data.profile.official
    columns, table, per_label = _columns_and_table(data, spec)
    if spec.rank_by == "ranking" or spec.rank_by not in RUN_AGGREGATES:
        return OfficialScore(spec, tuple(columns), table, per_label)
    key = _score_key(columns, spec.rank_by)
    higher = _higher_is_better(spec.rank_by)
    tie_column = next((c for c in columns if c.secondary), None)
    point = table[[key]].T.reset_index(drop=True)
    tie_point = None if tie_column is None else table[[tie_column.key]].T.reset_index(drop=True)
    tie_higher = True if tie_column is None else tie_column.higher_is_better
    ranks = rank_samples(
        point, higher_is_better=higher, tiebreak=tie_point, tiebreak_higher_is_better=tie_higher
    ).iloc[0]
    ranking = pd.DataFrame(
        {
            "score": table[key],
            "tiebreak": table[tie_column.key] if tie_column is not None else math.nan,
            "rank": ranks.astype(int),
        }
    )
    boot = None
    no_bootstrap = ""
    inputs = _agg_dice_inputs(data) if spec.rank_by == "aggregated_dice" else None
    if inputs is not None:
        samples = bootstrap_aggregated_dice(*inputs, n_resamples=n_resamples, seed=seed)
        tie_samples = None
        if tie_column is not None:
            tie_matrix = _secondary_matrix(data, tie_column.metric, tie_column.aggregate)
            tie_samples = bootstrap_aggregates(
                tie_matrix,
                aggregate="median" if tie_column.aggregate == "median" else "mean",
                n_resamples=n_resamples,
                seed=seed,
            )
        boot = rank_samples(
            samples,
            higher_is_better=higher,
            tiebreak=tie_samples,
            tiebreak_higher_is_better=tie_higher,
        )
        ranking = ranking.join(rank_stability(boot))
    else:
        no_bootstrap = (
            f"{metric_short_title(spec.rank_by)} is computed over the whole split at once "
            "(no per-case values), so the ranking has no bootstrap rank interval."
        )
        for column in ("median_rank", "rank_low", "rank_high", "p_first"):
            ranking[column] = math.nan
    ranking.index.name = "entry"
    ranking = ranking.sort_values(["rank"], kind="stable")
    return OfficialScore(
        spec,
        tuple(columns),
        table,
        per_label,
        run_level=True,
        ranking=ranking,
        boot=boot,
        tiebreak=tie_column,
        no_bootstrap=no_bootstrap,
    )
