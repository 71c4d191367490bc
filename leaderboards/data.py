"""Loading a task's leaderboard from the results store: entries, runs and score matrices.

The store is a board's only input: the numbers, the runs' provenance, and the artifacts the
stages recorded (prediction folders and data roots for the slice gallery, study figures); no
other path is opened. For a task and split, every entry's most recent *finished* run of kind
``entry`` or ``baseline`` is its leaderboard run (runs without an entry are listed under their
run name; ``study`` runs never are). Runs scored on different case sets are never mixed: only the runs on
the case set of the most recent finished run (``parameters["case_set"]``, recorded by
``ccbench evaluate``; runs of old stores without one form a set of their own) are ranked, the
others are listed in :attr:`LeaderboardData.left_out` with the reason. The leaderboard's cases
are the union of the cases scored by those runs; a case an entry did not score (missing
prediction, failed container) gets the metric's worst value, and every value worse than it (an
infinite HD95) counts as that worst value (:func:`leaderboard_worst`), so skipping a hard case
never helps and no mean or interval is infinite; the raw values stay in
:attr:`LeaderboardData.results`. A case whose *reference data* is broken (error class
``dataset`` in any leaderboard run, :data:`EXCLUDING_ERROR_CLASSES`) is no entry's fault: it is
left out of the cases, the score matrices and the results of every entry, and listed in
:attr:`LeaderboardData.excluded_cases` instead. Per-label values of a case are averaged
(NaN-aware) into one number per case. An entry that declares only some labels of the task (the
manifest's ``labels``, the run's ``parameters["labels"]``) has NaN rows for the others in the
store ("not predicted"); on the board such a label counts at the metric's worst value, as a
missing case does (:func:`count_not_predicted`), so that the ranking stays comparable. Which metrics are ranked, and how, comes from the task's
metric profile in ``datasets.yaml`` (``ranking:``, see
:class:`evaluator.datasets.registry.RankingSpec`); ranking directions come from
:data:`evaluator.metrics.METRICS` only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from evaluator.datasets.registry import (
    MetricProfile,
    RankingSpec,
    Registry,
    TaskSpec,
    load_registry,
)
from evaluator.errors import StoreError
from evaluator.evaluate import ranking_worst
from evaluator.metrics.registry import METRICS
from evaluator.simulate.dataset import StoredSensitivity, stored_sensitivity
from evaluator.store import ArtifactInfo, ArtifactKind, EntryInfo, RunInfo, RunKind, Store
from leaderboards.ranking import WeightedRanking, clip_to_worst, score_matrix

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EXCLUDING_ERROR_CLASSES",
    "RANKED_KINDS",
    "LeaderboardData",
    "board_user_metrics",
    "cc_pairs",
    "count_not_predicted",
    "excluded_cases",
    "leaderboard_worst",
    "load_leaderboard_data",
    "not_predicted_labels",
    "of_board",
    "ranked_metrics",
    "ranking_spec",
    "same_case_set",
    "weighted_scheme",
]

#: Per-case error classes (:data:`evaluator.evaluate.ERROR_CLASSES`) that take a case out of the
#: leaderboard for every entry instead of scoring it with the worst value: ``dataset``, the
#: case's reference data is broken.
EXCLUDING_ERROR_CLASSES: frozenset[str] = frozenset({"dataset"})


def _no_components() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        columns=["run_id", "entry", "case_id", "label", "metric", "component", "value"]
    )


def board_user_metrics(
    runs: dict[str, RunInfo], refs: Sequence[str] = ()
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The user metrics a board ranks, and the ones its runs were scored with that it cannot.

    A board knows the registered metrics (entry points, ``CCBENCH_METRICS``) and those the
    publisher names (``refs``, ``ccbench leaderboard --metric``). It never imports what the
    store names: a run's ``user_metrics`` parameter is only compared, so that a metric an entry
    was scored with but this process does not know is reported, not silently left out.

    Returns
    -------
    names, unknown
        Names of the active user metrics; reference -> why it is not ranked.
    """
    from evaluator.metrics.plugins import activate, active_refs

    names = activate(refs)
    known = set(active_refs())
    scored = sorted(
        {str(r) for run in runs.values() for r in run.parameters.get("user_metrics", [])}
    )
    unknown = {
        ref: "the runs were scored with it, but it is neither registered here nor named with "
        "`ccbench leaderboard --metric`"
        for ref in scored
        if ref not in known
    }
    return names, unknown


@dataclass(frozen=True)
class LeaderboardData:
    """Everything a leaderboard of one task and split is computed from.

    Attributes
    ----------
    task, split : str
        What is ranked.
    spec : TaskSpec
        The task's registry entry.
    ranking : RankingSpec
        The task's ranking configuration.
    metrics : tuple of str
        Ranked metrics (profile metrics with per-case values and a finite ranking direction).
    entries : list of str
        Entry names, in store order of their runs.
    cases : list of str
        Sorted case ids (union over the entries' runs), without the excluded cases.
    runs : dict
        Entry -> its leaderboard :class:`~evaluator.store.RunInfo`.
    scores : dict
        Metric -> case x entry :class:`pandas.DataFrame` of the per-case values (mean over
        labels of the values capped at ``worst``; missing cases: ``worst``). Finite wherever
        an entry has values; NaN only where a value is undefined (Dice of a negative case).
    results, errors, cases_frame, aggregates : pandas.DataFrame
        The store's long frames restricted to the leaderboard runs (``results`` also without the
        excluded cases), raw values: an infinite HD95 stays ``inf`` here and in the per-case
        downloads. ``errors["message"]`` quotes container output and host paths: it is for
        the operator, never for the published site.
    logs : dict
        Entry -> the run's log lines ``(case_id, stream, message)``. Container output, which can
        carry held-out test data: for the operator only, never published.
    excluded_cases : dict
        Case id -> the error class (:data:`EXCLUDING_ERROR_CLASSES`) that took it out of the
        leaderboard, sorted by case id.
    worst : dict
        Ranked metric -> the value a case counts with at worst (:func:`leaderboard_worst`).
    left_out : dict
        Run name -> why the run is not ranked (another case set than the most recent run).
    entry_info : dict
        Entry -> its provenance in the store's entries table (:meth:`Store.entry`); entries
        known only as run names are absent.
    profile : MetricProfile or None
        The task's metric profile (official score, worst values).
    artifacts : dict
        Entry -> the files its run recorded in the store (:meth:`Store.artifacts`: the scored
        predictions, the data root, ...): the only paths a board may open. Host paths: never
        published.
    study_plots : list of ArtifactInfo
        Figures of the degradation studies (runs of kind ``study``) of the same task and split,
        recorded by ``ccbench simulate dataset``; one per path.
    components : pandas.DataFrame
        The store's per-component rows (CC values per reference component and the
        ``component:*`` records of each component) of the cases the disagreement explorer
        shows, with an ``entry`` column: empty here, read by
        :func:`leaderboards.explorer.explorer_components` when a board is published.
    sensitivity : StoredSensitivity or None
        The sensitivity table of the dataset studies of the same task and split
        (:func:`evaluator.simulate.dataset.stored_sensitivity`); None without a study.
    user_metrics : tuple of str
        User metrics (:mod:`evaluator.metrics.plugins`) known to this board: registered, or
        named by the publisher (:func:`board_user_metrics`).
    unranked : dict
        User metric (or the reference of one this process does not know) -> why the board does
        not rank it: some entries were scored without it (their worst value would rank them,
        not their predictions), or it is not known here.
    not_predicted : dict
        Entry -> the labels of the task its run does not predict (declared in its manifest's
        ``labels``); entries that predict every label are absent. Those labels count at the
        worst value in ``scores`` (:func:`count_not_predicted`); ``results`` keeps the NaN.
    """

    task: str
    split: str
    spec: TaskSpec
    ranking: RankingSpec
    metrics: tuple[str, ...]
    entries: list[str]
    cases: list[str]
    runs: dict[str, RunInfo]
    scores: dict[str, pd.DataFrame]
    results: pd.DataFrame
    errors: pd.DataFrame
    cases_frame: pd.DataFrame
    aggregates: pd.DataFrame
    logs: dict[str, list[tuple[str | None, str, str]]] = field(default_factory=dict)
    excluded_cases: dict[str, str] = field(default_factory=dict)
    worst: dict[str, float] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)
    entry_info: dict[str, EntryInfo] = field(default_factory=dict)
    profile: MetricProfile | None = None
    artifacts: dict[str, list[ArtifactInfo]] = field(default_factory=dict)
    study_plots: list[ArtifactInfo] = field(default_factory=list)
    components: pd.DataFrame = field(default_factory=_no_components)
    sensitivity: StoredSensitivity | None = None
    user_metrics: tuple[str, ...] = ()
    unranked: dict[str, str] = field(default_factory=dict)
    not_predicted: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def artifact(self, entry: str, kind: ArtifactKind) -> Path | None:
        """The path of the entry's most recent artifact of ``kind``, or None."""
        found = [a for a in self.artifacts.get(entry, []) if a.kind == kind]
        return Path(found[-1].path) if found else None

    def directions(self) -> dict[str, bool]:
        """Metric -> higher_is_better, from :data:`evaluator.metrics.METRICS`."""
        return {m: METRICS[m].higher_is_better for m in self.metrics}


def ranking_spec(profile_ranking: RankingSpec | None, metrics: tuple[str, ...]) -> RankingSpec:
    """The configured ranking, or the default: the first ranked metric alone.

    Examples
    --------
    >>> ranking_spec(None, ("dice", "hd95")).primary
    'dice'
    """
    if profile_ranking is not None:
        return profile_ranking
    return RankingSpec(primary=metrics[0])


def weighted_scheme(ranking: RankingSpec) -> WeightedRanking:
    """The ranking as a :class:`leaderboards.ranking.WeightedRanking`.

    A primary-metric ranking is the weighted ranking with weight 1 on the primary metric, ties
    broken by ``tiebreak`` (by the primary metric itself when none is set).

    Examples
    --------
    >>> weighted_scheme(RankingSpec(primary="dice", tiebreak="hd95")).weights
    {'dice': 1.0}
    """
    if ranking.weights:
        weights = dict(ranking.weights)
        tiebreak = ranking.tiebreak or next(iter(weights))
    else:
        weights = {str(ranking.primary): 1.0}
        tiebreak = ranking.tiebreak or str(ranking.primary)
    return WeightedRanking(weights, tiebreak=tiebreak, aggregate=ranking.aggregate)


def ranked_metrics(profile_metrics: tuple[str, ...], present: set[str]) -> tuple[str, ...]:
    """Profile metrics that have per-case values in the store and a defined worst value.

    Counts (``lesion_tp`` ...) have no worst value (NaN) and are left out; so are run-level
    numbers such as COCO AP that have no per-case rows.

    Examples
    --------
    >>> ranked_metrics(("coco_ap", "dice", "lesion_tp"), {"dice", "lesion_tp"})
    ('dice',)
    """
    return tuple(
        m
        for m in profile_metrics
        if m in present and m in METRICS and not math.isnan(METRICS[m].worst)
    )


def cc_pairs(metrics: tuple[str, ...]) -> list[tuple[str, str]]:
    """(standard, CC) metric pairs both ranked, e.g. ``("dice", "cc_dice")``.

    Examples
    --------
    >>> cc_pairs(("dice", "hd95", "cc_dice", "nsd"))
    [('dice', 'cc_dice')]
    """
    return [(m, f"cc_{m}") for m in metrics if f"cc_{m}" in metrics]


def excluded_cases(errors: pd.DataFrame) -> dict[str, str]:
    """Cases with an error of an :data:`EXCLUDING_ERROR_CLASSES` class in any run.

    Parameters
    ----------
    errors
        Long frame with columns ``case_id`` and ``error_class`` (:meth:`Store.errors_frame`).

    Returns
    -------
    dict
        Case id -> error class, sorted by case id.

    Examples
    --------
    >>> import pandas as pd
    >>> errors = pd.DataFrame({"case_id": ["b", "a", "a"],
    ...                        "error_class": ["dataset", "missing", "dataset"]})
    >>> excluded_cases(errors)
    {'a': 'dataset', 'b': 'dataset'}
    """
    bad = errors[errors["error_class"].isin(EXCLUDING_ERROR_CLASSES)]
    found: dict[str, str] = {}
    for case, error_class in zip(bad["case_id"], bad["error_class"], strict=True):
        found.setdefault(str(case), str(error_class))
    return dict(sorted(found.items()))


def not_predicted_labels(runs: dict[str, RunInfo], spec: TaskSpec) -> dict[str, tuple[int, ...]]:
    """Entry -> the labels of ``spec`` its run does not predict (``parameters["labels"]``).

    Examples
    --------
    >>> from evaluator.datasets.registry import load_registry
    >>> spec = load_registry().task("hecktor")
    >>> runs = {"a": RunInfo(1, "a", "hecktor", "test", "a", None, None, None, {"labels": [2]}),
    ...         "b": RunInfo(2, "b", "hecktor", "test", "b", None, None, None)}
    >>> not_predicted_labels(runs, spec)
    {'a': (1,)}
    """
    found: dict[str, tuple[int, ...]] = {}
    for entry, run in runs.items():
        declared = run.parameters.get("labels")
        if declared is None:
            continue
        missing = tuple(v for v in sorted(spec.labels) if v not in {int(d) for d in declared})
        if missing:
            found[entry] = missing
    return found


def count_not_predicted(
    rows: pd.DataFrame, not_predicted: dict[str, tuple[int, ...]], worst: float
) -> pd.DataFrame:
    """``rows`` with the values of labels an entry does not predict set to ``worst``.

    The ranking rule of a missing case, per label: a label an entry does not declare counts at
    the metric's worst value in every mean, interval and rank, so that predicting fewer labels
    never helps. The store keeps NaN ("not predicted").

    Parameters
    ----------
    rows
        Long rows of one metric with columns ``entry``, ``label``, ``value``.
    not_predicted
        Entry -> labels it does not predict (:func:`not_predicted_labels`).
    worst
        The board's worst value of the metric.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"entry": ["a", "a", "b"], "label": [1, 2, 2],
    ...                      "value": [0.9, float("nan"), 0.8]})
    >>> count_not_predicted(rows, {"a": (2,)}, 0.0)["value"].tolist()
    [0.9, 0.0, 0.8]
    """
    if not not_predicted or rows.empty:
        return rows
    pairs = {(e, int(label)) for e, labels in not_predicted.items() for label in labels}
    mask = [(e, int(label)) in pairs for e, label in zip(rows["entry"], rows["label"], strict=True)]
    return rows.assign(value=rows["value"].mask(np.asarray(mask, dtype=bool), worst))


def leaderboard_worst(profile: MetricProfile, metric: str, values: pd.Series) -> float:
    """The value a case of ``metric`` counts with at worst on this leaderboard.

    :func:`evaluator.evaluate.ranking_worst` (the profile's ``worst:``, 50 mm for distances by
    default, else the metric's own worst value). Where that is still infinite (volumes in ml
    have no bound), the worst finite value any entry reached on any case of the board, so that
    a missing case ranks with the worst result seen and no mean becomes infinite; with no
    finite value at all, the infinite worst value itself.

    Parameters
    ----------
    profile
        The task's metric profile.
    metric
        A key of :data:`evaluator.metrics.METRICS`.
    values
        Every stored value of the metric on the board (raw, any labels).

    Examples
    --------
    >>> import pandas as pd
    >>> p = MetricProfile(name="p", metrics=("hd95", "fp_volume_ml"))
    >>> leaderboard_worst(p, "hd95", pd.Series([1.0, float("inf")]))
    50.0
    >>> leaderboard_worst(p, "fp_volume_ml", pd.Series([0.5, 7.0, float("inf")]))
    7.0
    """
    worst = ranking_worst(profile, metric)
    if math.isfinite(worst):
        return worst
    numbers = values.to_numpy(dtype=float)
    finite = numbers[np.isfinite(numbers)]
    if finite.size == 0:
        return worst
    return float(finite.max() if worst > 0 else finite.min())


def _case_set_text(run: RunInfo) -> str:
    case_set = run.parameters.get("case_set")
    if case_set is None:
        return "no recorded case set"
    n = run.parameters.get("n_cases")
    return f"case set {case_set}" + (f", {n} cases" if n is not None else "")


def same_case_set(runs: dict[str, RunInfo]) -> tuple[dict[str, RunInfo], dict[str, str]]:
    """Keep the runs on the case set of the most recent finished run; say why others go.

    Parameters
    ----------
    runs
        Entry -> its leaderboard run (finished).

    Returns
    -------
    kept : dict
        Entry -> run, the runs whose ``parameters["case_set"]`` equals that of the most recent
        run (latest ``finished_at``, then highest id). Runs without ``case_set`` (old stores)
        form one set of their own.
    left_out : dict
        Run name -> the reason it is not ranked.
    """
    if not runs:
        return {}, {}
    latest = max(runs.values(), key=lambda r: (r.finished_at is not None, r.finished_at, r.id))
    wanted = latest.parameters.get("case_set")
    kept: dict[str, RunInfo] = {}
    left_out: dict[str, str] = {}
    for entry, run in runs.items():
        if run.parameters.get("case_set") == wanted:
            kept[entry] = run
        else:
            left_out[run.name] = (
                f"scored on other cases ({_case_set_text(run)}) than the most recent run "
                f"'{latest.name}' ({_case_set_text(latest)}); runs on different case sets are "
                "not ranked together"
            )
    return kept, left_out


#: Kinds of runs a leaderboard ranks (``study`` runs are shown as figures only).
RANKED_KINDS: tuple[RunKind, ...] = ("entry", "baseline")


def _final_budget(run: RunInfo) -> bool:
    """False for an interactive entry's run below its largest click budget: the board ranks an
    interactive entry by its last budget (the curves are in :mod:`leaderboards.protocols`)."""
    protocol = run.parameters.get("protocol")
    if not isinstance(protocol, dict) or "budget" not in protocol:
        return True
    return bool(protocol["budget"] == protocol.get("budgets"))


def run_fold(run: RunInfo) -> int | None:
    """The fold of a fold run (``--fold``: the model of that cross-validation fold), else None."""
    protocol = run.parameters.get("protocol")
    fold = protocol.get("fold") if isinstance(protocol, dict) else None
    return int(fold) if isinstance(fold, int) else None


def of_board(run: RunInfo, fold: int | None = None) -> bool:
    """Whether a run counts on its split's board: with ``fold``, only that fold model's runs;
    without, no fold-model run outside its own fold (``--fold K --split test``: one of K models,
    summarised over the folds, never ranked as the entry's result).

    Examples
    --------
    >>> run = RunInfo(1, "r", "btcv", "test", "e", None, None, None, {"protocol": {"fold": 2}})
    >>> of_board(run), of_board(run, fold=2), of_board(run, fold=1)
    (False, True, False)
    """
    k = run_fold(run)
    return k == fold if fold is not None else k is None or run.split == f"fold{k}"


def _leaderboard_runs(runs: list[RunInfo], fold: int | None = None) -> dict[str, RunInfo]:
    """Each entry's latest ranked run of the board (:func:`of_board`)."""
    chosen: dict[str, RunInfo] = {}
    for run in runs:  # oldest first: later runs replace earlier ones of the same entry
        ranked = run.status == "finished" and run.kind in RANKED_KINDS and _final_budget(run)
        if ranked and of_board(run, fold):
            chosen[run.entry or run.name] = run
    return chosen


def _study_plots(store: Store, task: str, split: str) -> list[ArtifactInfo]:
    seen: dict[str, ArtifactInfo] = {}
    for artifact in store.artifacts(kind="plot", task=task, split=split, run_kind="study"):
        seen.setdefault(artifact.path, artifact)
    return list(seen.values())


def load_leaderboard_data(
    task: str,
    split: str,
    *,
    store: Store,
    registry: Registry | None = None,
    user_metrics: Sequence[str] = (),
    fold: int | None = None,
) -> LeaderboardData:
    """Read a task's leaderboard runs and build one score matrix per ranked metric.

    Parameters
    ----------
    task, split
        Task name (``datasets.yaml``) and split name as stored by ``ccbench evaluate``/``run``.
    store
        An open results store.
    registry
        Task registry; default :func:`evaluator.datasets.registry.load_registry`.
    user_metrics
        ``module:attribute`` of user metrics to rank besides the registered ones
        (:func:`board_user_metrics`).
    fold
        Only the fold runs of this fold's model (``ccbench run --fold``; :func:`run_fold`).
        Without it, a fold model's runs count only on its own fold's split: fold ``k``'s model
        on the test cases is one of ``k`` models, summarised over the folds
        (:mod:`leaderboards.folds`), never ranked as the entry's result.

    Returns
    -------
    LeaderboardData
        Cases with a ``dataset`` error in any of the runs are left out of ``cases``, ``scores``
        and ``results`` and listed in ``excluded_cases``; runs on another case set than the
        most recent run are left out and listed in ``left_out`` (:func:`same_case_set`).

    Raises
    ------
    StoreError
        When the store holds no finished run of the task and split, or none has per-case values
        of a rankable metric.
    """
    reg = registry or load_registry()
    spec = reg.task(task)
    profile = reg.profile(spec)
    stored = store.list_runs(task=task, split=split, kind=RANKED_KINDS)
    runs, left_out = same_case_set(_leaderboard_runs(stored, fold))
    if not runs:
        models = fold is None and any(run_fold(r) is not None for r in stored)
        raise StoreError(
            f"no finished run of task '{task}', split '{split}' in {store.url}: "
            + (
                "only fold models' runs (`--fold K`), which are summarised on the board of any "
                f"fold of the task (`ccbench leaderboard --task {task} --split fold0`)"
                if models
                else f"run `ccbench evaluate --task {task} --split {split}` or `ccbench run` first"
            )
        )
    run_ids = [r.id for r in runs.values()]
    entry_of = {r.id: e for e, r in runs.items()}

    def frame(method: str) -> pd.DataFrame:
        df: pd.DataFrame = getattr(store, method)(run_ids=run_ids)
        df["entry"] = df["run_id"].map(entry_of)
        return df

    errors = frame("errors_frame")
    excluded = excluded_cases(errors)
    results = frame("results_frame").rename(columns={"case_id": "case"})
    results = results[~results["case"].isin(list(excluded))].reset_index(drop=True)
    cases_frame = frame("cases_frame")
    user, unknown = board_user_metrics(runs, user_metrics)
    held = results.groupby("entry")["metric"].agg(set)
    everywhere = set.intersection(*(held.get(e, set()) for e in runs))
    unranked = {
        m: "not scored for every entry (score all of them with it, or register it for all)"
        for m in user
        if m in set(results["metric"]) and m not in everywhere
    } | unknown
    present = set(results["metric"].unique()) - set(unranked)
    metrics = ranked_metrics((*profile.metrics, *user), present)
    if not metrics:
        raise StoreError(
            f"task '{task}', split '{split}': the runs in {store.url} hold no per-case values "
            f"of the profile's metrics ({', '.join(profile.metrics)})"
        )
    ranking = ranking_spec(profile.ranking, metrics)
    missing = [m for m in ranking.metrics if m not in metrics]
    if missing:
        raise StoreError(
            f"task '{task}': the ranking needs {missing}, which the stored runs do not hold"
        )
    entries = list(runs)
    cases = sorted((set(cases_frame["case_id"]) | set(results["case"])) - set(excluded))
    worst: dict[str, float] = {}
    scores = {}
    not_predicted = not_predicted_labels(runs, spec)
    for m in metrics:
        rows = results[results["metric"] == m]
        worst[m] = leaderboard_worst(profile, m, rows["value"])
        capped = rows.assign(
            value=clip_to_worst(
                rows["value"], worst[m], higher_is_better=METRICS[m].higher_is_better
            )
        )
        capped = count_not_predicted(capped, not_predicted, worst[m])
        scores[m] = score_matrix(capped, m, entries=entries, cases=cases, worst=worst[m])
    entry_info = {}
    for entry, run in runs.items():
        info = store.entry(run.entry) if run.entry is not None else None
        if info is not None:
            entry_info[entry] = info
    return LeaderboardData(
        task=task,
        split=split,
        spec=spec,
        ranking=ranking,
        metrics=metrics,
        entries=entries,
        cases=cases,
        runs=runs,
        scores=scores,
        results=results,
        errors=errors,
        cases_frame=cases_frame,
        aggregates=frame("aggregates_frame"),
        logs={e: store.logs(r.id) for e, r in runs.items()},
        excluded_cases=excluded,
        worst=worst,
        left_out=left_out,
        entry_info=entry_info,
        profile=profile,
        artifacts={e: store.artifacts(run_ids=[r.id]) for e, r in runs.items()},
        study_plots=_study_plots(store, task, split),
        sensitivity=stored_sensitivity(store, task, split),
        user_metrics=user,
        unranked=unranked,
        not_predicted=not_predicted,
    )
