"""Dataset-level degradation studies (thesis section 5.1.5.1, Figures 30-33, appendix E.1.1.1).

For every case of a task's split, the reference is taken as a perfect prediction and degraded by
one operator of :data:`~evaluator.simulate.operators.OPERATORS` (``drop``, ``enlarge``,
``insert``, ``erode``) applied to the ``n`` smallest or largest connected components, for
``n = 0..n_max`` (``n = 0`` is the perfect prediction). A (case, label) takes part at ``n`` when
its reference has at least ``n`` components (``n + 1`` for ``drop``, so a prediction never
becomes empty). Every metric of the task's profile (standard metrics and CC-Metrics alike) is
computed with :func:`evaluator.metrics.api.compute_metrics`.

Storage and resumption: each ``n`` is one run of the results store, named
``simulate/<task>/<split>/<op>-<order>/n<NN>``, with the study's parameters; each case is written
in one transaction as soon as it is scored (cases that do not take part at ``n`` are recorded
with no rows). Running the same study again scores only what is missing, and
:func:`redraw_dataset_study` re-reads the store to redraw the figures without computing
anything. Cases are scored in parallel with the process pool (or the Dask cluster) of
``ccbench evaluate``.

Outputs (in ``out``): ``<op>_<order>_cases.csv`` (every number: case, label, n, metric, value),
``<op>_summary.csv`` (median and 25th-75th percentiles per order, n and metric, for all cases
taking part at each n and for the fixed subset of cases that take part at ``n_max``),
``<op>.png``/``.svg`` and ``<op>_fixed.png``/``.svg`` (median line and 25-75 band, standard
metrics orange, CC-Metrics blue, one panel per metric pair, one row per order), and
``sensitivity.csv``/``.md``: for every operator in the store, how far the median of each metric
moves from the perfect prediction at ``n = 1`` and ``n = n_max``, for the smallest and for the
largest components.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, get_args

import numpy as np

from evaluator.choices import Operation
from evaluator.errors import SimulationError, UserMetricError
from evaluator.executor import JobFailure
from evaluator.simulate.operators import OPERATORS, Order, label_components
from evaluator.store import ArtifactKind, ResultRow, Store
from evaluator.workspace import Workspace

if TYPE_CHECKING:
    import pandas as pd

    from evaluator.datasets.base import Case
    from evaluator.datasets.registry import Registry
    from evaluator.scoring import ScoringPlan

__all__ = [
    "DATASET_OPERATIONS",
    "ORDERS",
    "REF_COMPONENTS",
    "DatasetStudy",
    "DatasetStudyResult",
    "Operation",
    "StoredSensitivity",
    "StudyJob",
    "StudyOutcome",
    "redraw_dataset_study",
    "run_dataset_study",
    "sensitivity_table",
    "simulate_case",
    "stored_sensitivity",
    "study_grid",
    "study_rows",
    "summarize",
]

#: How a study degrades the reference: drop, enlarge, insert or erode components.
#: Operators of the dataset studies, in the order of the thesis figures.
DATASET_OPERATIONS: tuple[Operation, ...] = get_args(Operation)
ORDERS: tuple[Order, ...] = get_args(Order)
#: Extra number stored per case and label: how many reference components it has.
REF_COMPONENTS = "ref_components"


def study_grid(op: str, order: str | None = None) -> list[tuple[Operation, Order]]:
    """The (operator, order) studies of ``simulate dataset --op OP --order ORDER``.

    ``op="all"``: the four operators; ``order="both"``: smallest and largest; no ``order``:
    both with ``op="all"``, else ``smallest``.

    Raises
    ------
    SimulationError
        An unknown operator or order.

    Examples
    --------
    >>> study_grid("drop")
    [('drop', 'smallest')]
    >>> len(study_grid("all")), study_grid("all", "largest")[-1]
    (8, ('erode', 'largest'))
    """
    if op != "all" and op not in DATASET_OPERATIONS:
        raise SimulationError(
            f"unknown operation {op!r} (use one of {', '.join(DATASET_OPERATIONS)} or all)"
        )
    chosen = order if order is not None else "both" if op == "all" else "smallest"
    if chosen != "both" and chosen not in ORDERS:
        raise SimulationError(f"order must be smallest, largest or both, got {chosen!r}")
    ops = DATASET_OPERATIONS if op == "all" else (cast(Operation, op),)
    orders = ORDERS if chosen == "both" else (cast(Order, chosen),)
    return [(o, r) for o in ops for r in orders]


@dataclass(frozen=True)
class DatasetStudy:
    """One dataset study: task, split, operator, order and its parameters.

    Examples
    --------
    >>> s = DatasetStudy("autopet-phantom", "test", "drop", "largest", n_max=3)
    >>> s.run_name(2), s.min_components(2)
    ('simulate/autopet-phantom/test/drop-largest/n02', 3)
    """

    task: str
    split: str
    op: Operation
    order: Order
    n_max: int = 10
    seed: int = 0
    margin_mm: float | None = None

    def __post_init__(self) -> None:
        if self.op not in DATASET_OPERATIONS:
            raise SimulationError(
                f"unknown operation {self.op!r} (use one of {', '.join(DATASET_OPERATIONS)})"
            )
        if self.order not in ORDERS:
            raise SimulationError(f"order must be 'smallest' or 'largest', got {self.order!r}")
        if self.n_max < 1:
            raise SimulationError(f"n_max must be >= 1, got {self.n_max}")

    @property
    def prefix(self) -> str:
        """Common prefix of the run names of this task and split."""
        return f"simulate/{self.task}/{self.split}/"

    def run_name(self, n: int) -> str:
        """Store run holding the scores at ``n`` edited components.

        A non-default margin (enlarge, erode) or seed (insert) is part of the name, so studies
        with other parameters live side by side.
        """
        extra = ""
        if self.margin_mm is not None and self.op in ("enlarge", "erode"):
            extra += f"-margin{self.margin_mm:g}mm"
        if self.seed != 0 and self.op == "insert":
            extra += f"-seed{self.seed}"
        return f"{self.prefix}{self.op}-{self.order}{extra}/n{n:02d}"

    def min_components(self, n: int) -> int:
        """Reference components a case needs to take part at ``n`` (``n + 1`` for drop)."""
        return n + 1 if self.op == "drop" and n > 0 else n

    def parameters(self, n: int) -> dict[str, Any]:
        """What the run of ``n`` stores as its parameters (resumption checks them)."""
        return {
            "simulation": "dataset",
            "op": self.op,
            "order": self.order,
            "n": n,
            "seed": self.seed,
            "margin_mm": self.margin_mm,
        }


@dataclass(frozen=True)
class StudyJob:
    """One case of a study, with the ``n`` still to score; small and picklable."""

    case: Case
    plan: ScoringPlan
    study: DatasetStudy
    ns: tuple[int, ...]


@dataclass
class StudyOutcome:
    """Scores of one case: ``rows[n]`` (empty when the case does not take part at ``n``)."""

    case_id: str
    rows: dict[int, list[ResultRow]]
    seconds: float = 0.0


def _case_seed(seed: int, case_id: str, label: int, n: int) -> int:
    state = np.random.SeedSequence([seed, zlib.crc32(case_id.encode()), label, n])
    return int(state.generate_state(1)[0])


def simulate_case(job: StudyJob) -> StudyOutcome:
    """Degrade one case's reference for every ``n`` of ``job.ns`` and score it.

    Parameters
    ----------
    job
        The case, the task's scoring plan (labels, metrics, parameters, connectivity) and the
        study.

    Returns
    -------
    StudyOutcome
        For each ``n``: one :class:`ResultRow` per label taking part and metric, plus the
        label's :data:`REF_COMPONENTS` count.
    """
    from evaluator.datasets.geometry import image_geometry
    from evaluator.datasets.labels import label_array
    from evaluator.metrics.api import compute_metrics
    from evaluator.scoring import activate_plan, metric_kwargs

    start = time.perf_counter()
    plan, study, cid = job.plan, job.study, job.case.case_id
    activate_plan(plan)
    img = job.case.read_label()
    ref_all = label_array(img, labels=plan.labels, what=f"reference {cid}")
    spacing = image_geometry(img).array_spacing
    operator = OPERATORS[study.op]
    kwargs = metric_kwargs(plan)
    rows: dict[int, list[ResultRow]] = {n: [] for n in job.ns}
    for label in plan.labels:
        ref = ref_all == label
        _, count = label_components(ref, connectivity=plan.connectivity)
        for n in job.ns:
            if count == 0 or count < study.min_components(n):
                continue
            pred = ref
            if n > 0:
                pred = operator(
                    ref,
                    n,
                    order=study.order,
                    spacing=spacing,
                    seed=_case_seed(study.seed, cid, label, n),
                    margin_mm=study.margin_mm,
                )
            try:
                result = compute_metrics(
                    pred.astype(np.uint8),
                    ref.astype(np.uint8),
                    spacing=spacing,
                    metrics=plan.metrics,
                    labels=[1],
                    connectivity=plan.connectivity,
                    **kwargs,
                )
            except UserMetricError as err:  # the organiser's metric on the organiser's data
                raise SimulationError(
                    f"study {study.op}-{study.order}, case {cid}, label {label}, n = {n}: {err}"
                ) from err
            rows[n] += [ResultRow(label, m, float(result.values[1][m])) for m in plan.metrics]
            rows[n].append(ResultRow(label, REF_COMPONENTS, float(count)))
    return StudyOutcome(case_id=cid, rows=rows, seconds=time.perf_counter() - start)


@dataclass
class DatasetStudyResult:
    """What :func:`run_dataset_study` did and wrote.

    Attributes
    ----------
    study
        The study.
    rows
        Every number (columns ``case_id, label, n, metric, value``).
    summary
        Median and quartiles (columns of :func:`summarize`, plus ``subset``).
    sensitivity
        :func:`sensitivity_table` over every operator of the task and split in the store.
    scored, skipped
        Cases scored now / already complete in the store.
    seconds
        Wall-clock seconds of the scoring, and per scored case (mean of the workers' times).
    files
        CSV, PNG, SVG and markdown files written.
    """

    study: DatasetStudy
    rows: pd.DataFrame
    summary: pd.DataFrame
    sensitivity: pd.DataFrame
    scored: int
    skipped: int
    seconds: float
    seconds_per_case: float
    store_url: str
    files: list[Path] = field(default_factory=list)


def _plan(study: DatasetStudy, registry: Registry, user_metrics: Sequence[str]) -> ScoringPlan:
    from evaluator.evaluate import make_plan

    spec = registry.task(study.task)
    return make_plan(spec, registry.profile(spec), user_metrics=user_metrics)


def _complete_cases(db: Store, run_id: int, metrics: Sequence[str]) -> set[str]:
    """Cases of a study run that need no scoring: complete, and either not taking part (no
    rows) or holding every metric of the plan (a metric added since is scored for them)."""
    complete = db.completed_cases(run_id)
    if not complete:
        return complete
    frame = db.results_frame(run_ids=[run_id])
    held = frame.groupby("case_id")["metric"].agg(set)
    wanted = set(metrics)
    return {c for c in complete if c not in held.index or wanted <= held[c]}


def run_dataset_study(
    task: str,
    split: str,
    *,
    op: Operation,
    order: Order,
    workspace: Workspace,
    n_max: int = 10,
    out: str | os.PathLike[str] | None = None,
    seed: int = 0,
    margin_mm: float | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    store: str | Store | None = None,
    data_root: str | os.PathLike[str] | None = None,
    registry: Registry | None = None,
    plots: bool = True,
    on_case: Callable[[StudyOutcome, int, int], None] | None = None,
    user_metrics: Sequence[str] = (),
) -> DatasetStudyResult:
    """Run (or resume) one dataset study, store every number, write CSVs and figures.

    Parameters
    ----------
    task, split
        Task of ``datasets.yaml`` and a split name of
        :func:`evaluator.datasets.splits.resolve_split` (``all``, ``test``, ``fold0`` ...).
    op, order
        Operator (``drop``, ``enlarge``, ``insert``, ``erode``) and which components it edits.
    workspace
        Holds the data, the default store and the default output folder
        (``<workspace>/simulations/<task>-<split>``).
    n_max
        Largest number of edited components (default 10, as in the thesis).
    out
        Output folder.
    seed
        Seed of ``insert`` (each case, label and ``n`` derives its own).
    margin_mm
        Dilation / erosion margin in mm for ``enlarge`` / ``erode``; default one voxel step of
        the full 3x3x3 element.
    workers, scheduler
        Worker processes (default one per CPU) of the hardened local pool, or a Dask scheduler
        address, or ``"local"``: a Dask cluster of `workers` processes on this machine
        (:func:`evaluator.executor.execute`).
    store
        SQLAlchemy URL or open :class:`Store`; default ``CCBENCH_STORE`` or the workspace.
    data_root, registry
        Overrides of the task's data root and registry.
    plots
        Draw the figures.
    on_case
        ``on_case(outcome, done, total)`` after each stored case (progress bar).
    user_metrics
        ``module:attribute`` references of user metrics (:mod:`evaluator.metrics.plugins`)
        scored besides the task's profile and the registered ones; cases stored without them
        are scored again.

    Returns
    -------
    DatasetStudyResult

    Raises
    ------
    SimulationError
        Unknown operator or order, ``n_max < 1``.
    DatasetNotFoundError, StoreError
        Missing data, unusable store.
    """
    from evaluator.datasets.base import open_dataset
    from evaluator.datasets.registry import load_registry
    from evaluator.datasets.splits import resolve_split
    from evaluator.executor import execute

    study = DatasetStudy(task, split, op, order, n_max=n_max, seed=seed, margin_mm=margin_mm)
    reg = registry or load_registry()
    spec = reg.task(task)
    plan = _plan(study, reg, user_metrics)
    root = None if data_root is None else Path(data_root)
    dataset = open_dataset(spec, workspace=workspace, data_root=root, registry=reg)
    case_ids = resolve_split(spec, split, workspace=workspace, data_root=root, registry=reg)
    db = store if isinstance(store, Store) else Store.open(store, workspace=workspace)
    ns = list(range(n_max + 1))
    runs = {
        n: db.get_or_create_run(
            name=study.run_name(n),
            task=task,
            split=split,
            parameters=study.parameters(n),
            kind="study",
        )
        for n in ns
    }
    done = {n: _complete_cases(db, run.id, plan.metrics) for n, run in runs.items()}
    jobs = [
        StudyJob(dataset.case(c), plan, study, todo)
        for c in case_ids
        if (todo := tuple(n for n in ns if c not in done[n]))
    ]
    start = time.perf_counter()
    case_seconds: list[float] = []
    if jobs:
        outcomes = execute(
            jobs, simulate_case, workers=workers, scheduler=scheduler, on_failure=_study_failure
        )
        for i, outcome in enumerate(outcomes, start=1):
            for n, rows in outcome.rows.items():
                db.record_case(runs[n].id, outcome.case_id, rows, seconds=outcome.seconds)
            case_seconds.append(outcome.seconds)
            if on_case is not None:
                on_case(outcome, i, len(jobs))
    for run in runs.values():
        if db.get_run(run.id).status != "finished":
            db.finish_run(run.id)
    elapsed = time.perf_counter() - start
    out_dir = Path(out) if out is not None else workspace.simulations / f"{task}-{split}"
    result = redraw_dataset_study(study, db, out_dir, plots=plots, case_ids=case_ids)
    result.scored, result.skipped = len(jobs), len(case_ids) - len(jobs)
    result.seconds = elapsed
    result.seconds_per_case = float(np.mean(case_seconds)) if case_seconds else 0.0
    return result


def _study_failure(job: StudyJob, failure: JobFailure) -> StudyOutcome:
    """A study case past its worker's limits stops the study (its inputs are the organiser's)."""
    raise SimulationError(f"study case {job.case.case_id}: {failure.message}")


def study_rows(
    db: Store, study: DatasetStudy, *, case_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """Every stored number of a study: columns ``case_id, label, n, metric, value``.

    Only runs that exist are read; ``case_ids`` restricts the cases (e.g. to the split).
    """
    import pandas as pd

    frames = []
    for n in range(study.n_max + 1):
        run = db.find_run(study.run_name(n))
        if run is None:
            continue
        frame = db.results_frame(run_ids=[run.id])
        frame = frame.assign(n=n)[["case_id", "label", "n", "metric", "value"]]
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["case_id", "label", "n", "metric", "value"])
    rows = pd.concat(frames, ignore_index=True)
    if case_ids is not None:
        rows = rows[rows["case_id"].isin(list(case_ids))]
    return _complete_metrics(rows).reset_index(drop=True)


def _complete_metrics(rows: pd.DataFrame) -> pd.DataFrame:
    """Only the metrics held by every (case, label, n) that takes part (has its
    :data:`REF_COMPONENTS` row): a metric scored for some cases only (a study stopped, then
    resumed without it) is left out rather than summarised from a subset."""
    taking_part = rows.loc[rows["metric"] == REF_COMPONENTS, ["case_id", "label", "n"]]
    if taking_part.empty:
        return rows
    counts = rows.groupby("metric")["case_id"].count()
    complete = [m for m, count in counts.items() if count == len(taking_part)]
    return rows[rows["metric"].isin(complete)]


def _quantile(values: pd.Series, q: float) -> float:
    """Linear-interpolation quantile that keeps infinite distances (empty predictions) infinite.

    Examples
    --------
    >>> import pandas as pd
    >>> _quantile(pd.Series([1.0, float("inf"), float("inf")]), 0.75)
    inf
    """
    data = values.to_numpy(dtype=float)
    data = data[~np.isnan(data)]
    if data.size == 0:
        return float("nan")
    with np.errstate(invalid="ignore"):
        result = float(np.quantile(data, q))
    # inf - inf inside the interpolation gives NaN where both neighbours are infinite
    return float("inf") if np.isnan(result) else result


def summarize(rows: pd.DataFrame, *, n_max: int | None = None) -> pd.DataFrame:
    """Median and 25th / 75th percentiles per order, ``n`` and metric.

    Parameters
    ----------
    rows
        Columns ``order, case_id, label, n, metric, value`` (:func:`study_rows` plus ``order``).
    n_max
        When given, keep only the fixed subset: the (case, label) pairs that take part at
        ``n_max`` (appendix E.1.1.1: at least 10 components, 11 for drop, with ``n_max=10``).

    Returns
    -------
    pandas.DataFrame
        Columns ``order, n, metric, median, q25, q75, cases``; :data:`REF_COMPONENTS` left out.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"order": "smallest", "case_id": ["a", "b", "c", "a"],
    ...     "label": 1, "n": [1, 1, 1, 2], "metric": "dice", "value": [0.2, 0.4, 0.9, 0.1]})
    >>> summarize(rows)[["median", "q25", "q75"]].round(3).values.tolist()
    [[0.4, 0.3, 0.65], [0.1, 0.1, 0.1]]
    >>> summarize(rows)["cases"].tolist()
    [3, 1]
    >>> summarize(rows, n_max=2)["cases"].tolist()
    [1, 1]
    """
    rows = rows[rows["metric"] != REF_COMPONENTS]
    if n_max is not None:
        keys = ["order", "case_id", "label"]
        keep = rows.loc[rows["n"] == n_max, keys].drop_duplicates()
        rows = rows.merge(keep, on=keys)
    grouped = rows.groupby(["order", "n", "metric"], sort=False)["value"]
    out = grouped.agg(
        median=lambda v: _quantile(v, 0.5),
        q25=lambda v: _quantile(v, 0.25),
        q75=lambda v: _quantile(v, 0.75),
        cases="count",
    ).reset_index()
    return out.sort_values(["order", "metric", "n"], kind="stable").reset_index(drop=True)


def sensitivity_table(summary: pd.DataFrame, *, n_max: int) -> pd.DataFrame:
    """How far each metric's median moves from the perfect prediction, small vs large lesions.

    Parameters
    ----------
    summary
        :func:`summarize` output of one or more operators, with an ``op`` column.
    n_max
        The ``n`` of the second pair of columns.

    Returns
    -------
    pandas.DataFrame
        One row per operator and metric: ``op, metric, smallest_n1, largest_n1,
        smallest_nmax, largest_nmax, ratio_nmax`` where each value is ``median(n) -
        median(0)`` and ``ratio_nmax = |smallest_nmax| / |largest_nmax|`` (how much the metric
        reacts to the smallest lesions relative to the largest; NaN where an order is missing).

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"op": "drop", "order": ["smallest"] * 2 + ["largest"] * 2,
    ...     "n": [0, 1, 0, 1], "metric": "dice", "median": [1.0, 0.99, 1.0, 0.6]})
    >>> sensitivity_table(s, n_max=1)[["smallest_n1", "largest_n1", "ratio_nmax"]].round(3).values.tolist()
    [[-0.01, -0.4, 0.025]]
    """
    import pandas as pd

    records = []
    for (op, metric), group in summary.groupby(["op", "metric"], sort=False):
        record: dict[str, Any] = {"op": op, "metric": metric}
        for order in ORDERS:
            line = group[group["order"] == order].set_index("n")["median"]
            base = line.get(0, np.nan)
            for n, key in ((1, "n1"), (n_max, "nmax")):
                record[f"{order}_{key}"] = float(line.get(n, np.nan) - base)
        large = abs(record["largest_nmax"])
        small = abs(record["smallest_nmax"])
        record["ratio_nmax"] = small / large if large > 0 else (np.nan if small > 0 else 1.0)
        records.append(record)
    return pd.DataFrame.from_records(
        records,
        columns=[
            "op",
            "metric",
            "smallest_n1",
            "largest_n1",
            "smallest_nmax",
            "largest_nmax",
            "ratio_nmax",
        ],
    )


def _markdown(table: pd.DataFrame, *, n_max: int) -> str:
    """A GitHub markdown table of :func:`sensitivity_table` (no extra dependency)."""
    header = [
        "operator",
        "metric",
        "Δ smallest, n=1",
        "Δ largest, n=1",
        f"Δ smallest, n={n_max}",
        f"Δ largest, n={n_max}",
        f"|small| / |large|, n={n_max}",
    ]
    lines = [
        "Median change of each metric from the perfect prediction when the n smallest or the n "
        "largest lesions of every case are edited.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in table.itertuples(index=False):
        values = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def _all_orders(db: Store, study: DatasetStudy, case_ids: Sequence[str] | None) -> pd.DataFrame:
    import pandas as pd

    frames = []
    for order in ORDERS:
        other = DatasetStudy(
            study.task, study.split, study.op, order, study.n_max, study.seed, study.margin_mm
        )
        rows = study_rows(db, other, case_ids=case_ids)
        if len(rows):
            frames.append(rows.assign(order=order))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def redraw_dataset_study(
    study: DatasetStudy,
    store: str | Store,
    out: str | os.PathLike[str],
    *,
    plots: bool = True,
    case_ids: Sequence[str] | None = None,
) -> DatasetStudyResult:
    """Write the CSVs, figures and the sensitivity table of a study from the store alone.

    The figure of ``study.op`` shows both orders when both are stored. The sensitivity table
    covers every operator of the task and split found in the store.

    Every file written is recorded in the store as an artifact (``plot`` or ``table``) of the
    study's first run (``n = 0``), where the leaderboards find the figures.

    Parameters
    ----------
    study
        The study (its ``order`` picks the ``<op>_<order>_cases.csv`` written).
    store
        URL or open store.
    out
        Output folder (created).
    plots
        Draw the PNG / SVG figures.
    case_ids
        Restrict to these cases (default: every stored case).
    """
    import pandas as pd

    from evaluator.simulate.plots import plot_dataset_study

    db = store if isinstance(store, Store) else Store.open(store)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    rows = study_rows(db, study, case_ids=case_ids)
    cases_csv = out_dir / f"{study.op}_{study.order}_cases.csv"
    rows.to_csv(cases_csv, index=False)
    files.append(cases_csv)
    both = _all_orders(db, study, case_ids)
    summaries = []
    if len(both):
        for subset, n_max in (("all", None), ("fixed", study.n_max)):
            summaries.append(summarize(both, n_max=n_max).assign(subset=subset))
    summary = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame()
    summary_csv = out_dir / f"{study.op}_summary.csv"
    summary.to_csv(summary_csv, index=False)
    files.append(summary_csv)
    if plots and len(summary):
        names = {"drop": "dropped", "enlarge": "enlarged", "insert": "inserted", "erode": "eroded"}
        what = f"{study.task} {study.split}: {names[study.op]} components"
        for subset, suffix, note in (
            ("all", "", "cases with enough components at each n"),
            ("fixed", "_fixed", f"fixed subset: cases taking part at n={study.n_max}"),
        ):
            part = summary[summary["subset"] == subset]
            if len(part):
                if subset == "fixed":
                    note += f", {int(part['cases'].max())} (case, label) pairs"
                files += plot_dataset_study(
                    part, out_dir / f"{study.op}{suffix}", title=f"{what} ({note})"
                )
    sensitivity = _sensitivity_of_store(db, study, case_ids)
    sens_csv, sens_md = out_dir / "sensitivity.csv", out_dir / "sensitivity.md"
    sensitivity.to_csv(sens_csv, index=False)
    sens_md.write_text(_markdown(sensitivity, n_max=study.n_max))
    files += [sens_csv, sens_md]
    first = db.find_run(study.run_name(0))
    if first is not None:  # the study's files, for the leaderboards (they read only the store)
        for file in files:
            kind: ArtifactKind = "plot" if file.suffix in (".png", ".svg") else "table"
            db.add_artifact(first.id, kind, file, note=f"{study.op} study, {study.order}")
    return DatasetStudyResult(
        study=study,
        rows=rows,
        summary=summary,
        sensitivity=sensitivity,
        scored=0,
        skipped=0,
        seconds=0.0,
        seconds_per_case=0.0,
        store_url=db.url,
        files=files,
    )


@dataclass(frozen=True)
class StoredSensitivity:
    """The sensitivity table of the studies a store holds for one task and split.

    Attributes
    ----------
    table : pandas.DataFrame
        :func:`sensitivity_table` (one row per operator and metric).
    n_max : int
        The ``n`` of its ``*_nmax`` columns: the largest ``n`` every stored study reached.
    studies : list of (str, str)
        The (operator, order) pairs found.
    cases : int
        Cases of the split scored at ``n = 0``.
    """

    table: pd.DataFrame
    n_max: int
    studies: list[tuple[str, str]]
    cases: int


def stored_sensitivity(db: Store, task: str, split: str) -> StoredSensitivity | None:
    """The sensitivity table of every dataset study of ``task`` and ``split`` in the store.

    Studies with the default seed and margin are read (what ``ccbench simulate dataset``
    runs without ``--seed`` / ``--margin-mm``); None when the store holds none.
    """
    reached: dict[tuple[Operation, Order], int] = {}
    for run in db.list_runs(task=task, split=split, kind="study"):
        p = run.parameters
        default = p.get("seed", 0) == 0 and p.get("margin_mm") is None
        if p.get("simulation") != "dataset" or not default or run.status != "finished":
            continue
        if p.get("op") not in DATASET_OPERATIONS or p.get("order") not in ORDERS:
            continue
        key = (cast(Operation, p["op"]), cast(Order, p["order"]))
        reached[key] = max(reached.get(key, 0), int(p.get("n", 0)))
    if not reached or max(reached.values()) < 1:
        return None
    n_max = min(n for n in reached.values() if n >= 1)
    study = DatasetStudy(task, split, "drop", "smallest", n_max=n_max)
    table = _sensitivity_of_store(db, study, None)
    first = [db.find_run(DatasetStudy(task, split, op, order).run_name(0)) for op, order in reached]
    cases = max((len(db.completed_cases(r.id)) for r in first if r is not None), default=0)
    return StoredSensitivity(table, n_max, sorted(reached), cases)


def _sensitivity_of_store(
    db: Store, study: DatasetStudy, case_ids: Sequence[str] | None
) -> pd.DataFrame:
    import pandas as pd

    summaries = []
    for op in DATASET_OPERATIONS:
        other = DatasetStudy(
            study.task, study.split, op, study.order, study.n_max, study.seed, study.margin_mm
        )
        both = _all_orders(db, other, case_ids)
        if len(both):
            summaries.append(summarize(both).assign(op=op))
    if not summaries:
        return sensitivity_table(
            pd.DataFrame(columns=["op", "order", "n", "metric", "median"]), n_max=study.n_max
        )
    return sensitivity_table(pd.concat(summaries, ignore_index=True), n_max=study.n_max)
