"""``evaluate_run``: a folder of predictions scored against a split, into the store."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluator.datasets.labels import declared_labels
from evaluator.datasets.registry import Registry, load_registry
from evaluator.errors import InvalidPredictionError
from evaluator.evaluate.plan import make_plan
from evaluator.evaluate.predictions import case_jobs, refuse_empty_folder
from evaluator.evaluate.summary import coco_aggregates, jsonable, run_aggregates, summarize_run
from evaluator.executor import execute
from evaluator.scoring import CaseOutcome, score_case, scoring_failure
from evaluator.store import ArtifactKind, RunInfo, RunKind, Store
from evaluator.workspace import Workspace, check_name, safe_name

if TYPE_CHECKING:
    import pandas as pd

    from evaluator.datasets.base import Case
    from evaluator.datasets.registry import MetricProfile, TaskSpec
    from evaluator.scoring import CaseJob

__all__ = ["EvaluationResult", "dataset_fingerprint", "evaluate_run"]


@dataclass
class EvaluationResult:
    """What :func:`evaluate_run` did.

    Attributes
    ----------
    run
        The run in the store (status ``finished`` after a complete run).
    summary
        The content of ``summary.json``.
    out
        Folder holding ``results.csv`` and ``summary.json``.
    scored
        Cases scored by this call (0 for a finished run re-run without ``force``).
    skipped
        Cases already in the store from an earlier, interrupted call.
    """

    run: RunInfo
    summary: dict[str, Any]
    out: Path
    scored: int
    skipped: int
    store_url: str
    results: pd.DataFrame = field(repr=False)
    #: Cases scored now on which a user metric failed (its worst value, a line in the log).
    metric_failures: int = 0

    @property
    def results_csv(self) -> Path:
        """One row per case and label, one column per metric."""
        return self.out / "results.csv"

    @property
    def summary_json(self) -> Path:
        """Means, aggregates, error counts and the conventions applied."""
        return self.out / "summary.json"


def _has_reference(case: Case) -> bool:
    return case.label is not None and case.label.is_file()


def dataset_fingerprint(
    cases: Iterable[Case], *, cache: Path | None = None, channels: bool = False
) -> str:
    """sha256 over case ids and the content of each reference file (and channel files).

    Each file's own sha256 is streamed once and cached by path, size and modification time in
    ``cache`` (a JSON file), so a re-run hashes only what changed. ``channels=True`` also hashes
    every input channel, in channel order (what a trained model saw).
    """
    import time as _time

    known: dict[str, Any] = {}
    if cache is not None and cache.is_file():
        with contextlib.suppress(OSError, ValueError):
            known = json.loads(cache.read_text())
    digest = hashlib.sha256()
    changed = False

    def content(path: Path | None) -> str:
        nonlocal changed
        if path is None or not path.is_file():
            return "-"
        st = path.stat()
        key = str(path.absolute())
        stamp = [st.st_size, st.st_mtime_ns]
        entry = known.get(key)
        if isinstance(entry, dict) and entry.get("stamp") == stamp:
            return str(entry["sha256"])
        value = _file_sha256(path)
        known[key] = {"stamp": stamp, "sha256": value, "at": _time.time()}
        changed = True
        return value

    for case in cases:
        parts = [content(case.label)]
        if channels:
            parts += [f"{name}={content(Path(path))}" for name, path in case.channels.items()]
        digest.update(f"{case.case_id}\0{' '.join(parts)}\n".encode())
    if cache is not None and changed:
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known))
            tmp.replace(cache)
    return "sha256:" + digest.hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def evaluate_run(
    task: str,
    split: str,
    pred: str | os.PathLike[str],
    *,
    workspace: Workspace,
    run_name: str | None = None,
    out: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    store: str | Store | None = None,
    force: bool = False,
    entry: str | None = None,
    image_digest: str | None = None,
    data_root: str | os.PathLike[str] | None = None,
    registry: Registry | None = None,
    on_case: Callable[[CaseOutcome, int, int], None] | None = None,
    case_errors: Mapping[str, str] | None = None,
    memory_mb: int | None = None,
    time_limit_s: float | None = 600.0,
    on_wait: Callable[[str], None] | None = None,
    entry_manifest: Mapping[str, Any] | None = None,
    only_cases: Sequence[str] | None = None,
    dataset_errors: Mapping[str, str] | None = None,
    unsafe_cases: Iterable[str] = (),
    kind: RunKind = "entry",
    formats: Sequence[str] = (),
    user_metrics: Sequence[str] = (),
    protocol: Mapping[str, Any] | None = None,
    labels: Sequence[int | str] | None = None,
) -> EvaluationResult:
    """Score a folder of predictions against a split and store every number.

    Parameters
    ----------
    task
        Task name from ``datasets.yaml``.
    split
        A split name understood by :func:`evaluator.datasets.splits.resolve_split` (``test``,
        ``fold0`` ...), or ``all``: every case that has a reference.
    pred
        Predictions folder (3D) or JSON file / folder (ChestXDet); layouts in the module doc.
    workspace
        Holds the data, the default store and the run folders.
    run_name
        Names the run in the store; default ``<task>-<split>-<pred folder name>``. The same
        name resumes the run.
    out
        Where ``results.csv`` and ``summary.json`` go; default ``<workspace>/runs/<run name>``.
    workers
        Scoring worker processes; default: one per CPU (at most one per case). Scoring always
        runs in worker processes, never in this process: by default on the hardened local pool
        (:func:`evaluator.executor.run_jobs`) under `memory_mb` and `time_limit_s`.
    scheduler
        Address of a Dask distributed scheduler (``tcp://host:8786``), or ``"local"``: a Dask
        cluster of `workers` processes started on this machine for this call. Dask workers have
        no hard memory cap (a nanny restarts a worker past `memory_mb`) and no time limit per
        case.
    store
        A SQLAlchemy URL or an open :class:`Store`; default ``CCBENCH_STORE`` or the workspace.
    force
        Score every case again even when the run is finished (its rows are replaced).
    entry, image_digest
        Provenance of the predictions (the container runner passes them).
    data_root
        Overrides the task's data root.
    registry
        Task registry; default :func:`load_registry`.
    on_case
        Called after each stored case with ``(outcome, done, total)`` (progress display).
    case_errors
        Case id -> why the submitted container produced nothing for it (the container runner
        passes these); such a case without a prediction is recorded with the error class
        ``container`` and that reason instead of ``missing``, and scored with worst values.
    memory_mb
        Address-space cap of each scoring worker, MiB [default: three quarters of the machine's
        memory shared by the workers, 2-16 GiB]. A case that exceeds it is recorded as
        ``scoring_limit`` and the other cases go on.
    time_limit_s
        Wall-clock limit per case for scoring, seconds (``scoring_limit`` beyond it); None for
        no limit.
    on_wait
        Called once with a message when another process is scoring the same run: this call
        waits for it, then resumes (usually finding nothing left to score).
    entry_manifest
        The entry's manifest (team, image, interface, submitted ...), stored with the entry as
        its provenance (the container runner passes it).
    only_cases
        Score only these cases of the split (``ccbench preflight``).
    dataset_errors
        Case id -> why its data could not be given to the container (the container runner
        passes these): recorded as ``dataset`` errors, not scored for any entry.
    unsafe_cases
        Cases of ``case_errors`` whose output was a link or a special file (class ``unsafe``).
    kind
        ``entry`` or ``baseline`` (a reference algorithm's predictions): how the leaderboards
        show the run.
    formats
        Further result files: ``"nnunet"`` writes ``<out>/nnunet/summary.json`` in the layout of
        nnU-Net's ``nnUNetv2_evaluate_folder``, over the cases whose prediction was accepted
        (:mod:`evaluator.evaluate.nnunet_summary`; labels and the profile's ``regions``).
    user_metrics
        ``module:attribute`` of user metrics (:mod:`evaluator.metrics.plugins`) scored besides
        the profile's metrics and the registered (entry point) ones.
    protocol
        How the predictions were made, stored with the run's parameters for the leaderboards:
        ``prompts`` (what a prompted entry was given), the click budget of an interactive run
        (``budget``, ``budgets``, ``click_mode``, ``click_seed``, ``series``), the few-shot
        subset a model was adapted on (``shots``).
    labels
        The labels the predictions are of (names or values, the manifest's ``labels`` of an
        entry that predicts only some labels of the task); default: every label. The others
        are recorded as not predicted: NaN rows, never scored as empty predictions; voxels
        of them in a prediction are ignored, with a ``validation`` note in the run's log.
        Stored as ``parameters["labels"]`` (the values) for the leaderboards.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    DatasetNotFoundError, InvalidPredictionError, StoreError
        For problems of the data, the predictions folder as a whole, or the store; a bad
        prediction of one case is never raised but recorded.
    InvalidLabelError
        ``labels`` names a label the task does not have.
    """
    from typing import get_args

    from evaluator.choices import ResultFormat
    from evaluator.datasets.base import open_dataset
    from evaluator.datasets.splits import (
        case_set_id,
        check_fold_cases,
        resolve_split,
        split_id,
    )

    reg = registry or load_registry()
    spec = reg.task(task)
    profile = reg.profile(spec)
    plan = make_plan(spec, profile, user_metrics=user_metrics)
    if labels is not None:
        predicted = declared_labels(spec.labels, labels, what=f"task '{task}': --labels")
        plan = dataclasses.replace(plan, predicted=predicted)
    unknown_formats = sorted(set(formats) - set(get_args(ResultFormat)))
    if unknown_formats:
        raise InvalidPredictionError(
            f"unknown result format(s) {unknown_formats} (known: {', '.join(get_args(ResultFormat))})"
        )
    if "nnunet" in formats and spec.dims != 3:
        raise InvalidPredictionError(
            f"task '{task}': --format nnunet is for label images (3D tasks)"
        )
    pred_path = Path(pred).expanduser().absolute()
    root = None if data_root is None else Path(data_root)
    dataset = open_dataset(spec, workspace=workspace, data_root=root, registry=reg)
    case_ids = resolve_split(spec, split, workspace=workspace, data_root=root, registry=reg)
    if split == "all":  # every case that has a reference
        case_ids = [c for c in case_ids if _has_reference(dataset.case(c))]
    if only_cases is not None:
        case_ids = [c for c in case_ids if c in set(only_cases)]
    if protocol and protocol.get("fold") is not None:  # the fold exists, never saw these cases
        check_fold_cases(spec, int(protocol["fold"]), case_ids, split=split, workspace=workspace)
    if run_name is not None:
        check_name(run_name, what="run name")
    name = run_name or safe_name(f"{task}-{split}-{pred_path.name}")
    parameters: dict[str, Any] = {
        "pred": str(pred_path),
        "profile": profile.model_dump(mode="json"),
        "data_root": None if root is None else str(root.absolute()),
        # what the run was scored on: leaderboards rank only runs on one case set
        "split_id": None if split == "all" else split_id(spec.split_path(workspace)),
        "case_set": case_set_id(case_ids),
        "n_cases": len(case_ids),
    }
    if plan.user_metrics:  # where the leaderboards find them again
        parameters["user_metrics"] = list(plan.user_metrics)
    if protocol:
        parameters["protocol"] = dict(protocol)
    if plan.predicted is not None:  # the board shows the others as not predicted
        parameters["labels"] = list(plan.predicted)
    db = store if isinstance(store, Store) else Store.open(store, workspace=workspace)
    existing = db.find_run(name) if force else None
    if existing is not None and existing.parameters != json.loads(
        json.dumps(parameters, default=str)
    ):
        db.update_run(existing.id, parameters=parameters)  # scored again below, from scratch
    if entry is not None and entry_manifest is not None:
        db.ensure_entry(
            entry,
            image=entry_manifest.get("image"),
            image_digest=image_digest or entry_manifest.get("image_digest"),
            manifest=entry_manifest,
        )
    run = db.get_or_create_run(
        name=name,
        task=task,
        split=split,
        parameters=parameters,
        entry=entry,
        image_digest=image_digest,
        kind=kind,
    )
    failures = 0
    with db.claim_run(run.id, on_wait=on_wait):
        run = db.get_run(run.id)  # another process may have finished it while we waited
        if force:
            db.reset_run(run.id)
        done = db.completed_cases(run.id)
        finished = run.status == "finished" and not force
        todo = [] if finished else [c for c in case_ids if c not in done]
        try:
            if todo:
                jobs = case_jobs(
                    spec, plan, dataset, pred_path, todo, case_errors, dataset_errors,
                    set(unsafe_cases),
                )  # fmt: skip
                if not done and case_errors is None:
                    refuse_empty_folder(spec, jobs, pred_path)
                fingerprint = dataset_fingerprint(
                    (dataset.case(c) for c in case_ids),
                    cache=workspace.root / "cache" / "sha256.json",
                )
                db.update_run(run.id, dataset_fingerprint=fingerprint)
                outcomes = execute(
                    jobs,
                    score_case,
                    workers=workers,
                    scheduler=scheduler,
                    on_failure=scoring_failure,
                    memory_mb=memory_mb,
                    time_s=time_limit_s,
                )
                for i, outcome in enumerate(outcomes, start=1):
                    db.record_case(
                        run.id,
                        outcome.case_id,
                        outcome.rows,
                        error=outcome.error,
                        components=outcome.components,
                        seconds=outcome.seconds,
                    )
                    for note in outcome.notes:  # for the operator (`ccbench` logs, never public)
                        db.log(run.id, note, case_id=outcome.case_id, stream="scoring")
                    failures += bool(outcome.notes)
                    for note in outcome.validation:
                        db.log(run.id, note, case_id=outcome.case_id, stream="validation")
                    if on_case is not None:
                        on_case(outcome, i, len(jobs))
            if todo or run.status != "finished":
                aggregates = run_aggregates(db, run.id, plan)
                if plan.instance_metrics:
                    rejected = db.errors_frame(run_ids=[run.id])
                    rejected = set(rejected.loc[rejected["error_class"] != "empty", "case_id"])
                    jobs = case_jobs(
                        spec, plan, dataset, pred_path, case_ids, case_errors, dataset_errors,
                        set(unsafe_cases),
                    )  # fmt: skip
                    aggregates += coco_aggregates(plan, jobs, rejected)
                db.finish_run(run.id, aggregates=aggregates)
        except BaseException:
            # never left "running": the cases stored so far stay, the same command resumes
            db.set_status(run.id, "failed")
            raise
    run = db.get_run(run.id)
    out_dir = Path(out) if out is not None else workspace.runs / name
    summary, table = summarize_run(db, run, plan, profile, case_ids=case_ids)
    summary["scored_now"], summary["skipped"] = len(todo), len(case_ids) - len(todo)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "results.csv", index=False)
    (out_dir / "summary.json").write_text(json.dumps(jsonable(summary), indent=2) + "\n")
    # what the leaderboards may open besides the numbers (they read nothing else)
    written: tuple[tuple[ArtifactKind, Path], ...] = (
        ("predictions", pred_path),
        ("data", dataset.root),
        ("results", out_dir / "results.csv"),
        ("summary", out_dir / "summary.json"),
    )
    for artifact, path in written:
        db.add_artifact(run.id, artifact, path)
    if "nnunet" in formats:
        rejected = db.errors_frame(run_ids=[run.id])
        rejected = set(rejected.loc[rejected["error_class"] != "empty", "case_id"])
        jobs = case_jobs(spec, plan, dataset, pred_path, case_ids)
        nnunet_file = _write_nnunet_summary(
            jobs, rejected, spec, profile, out_dir / "nnunet" / "summary.json"
        )
        db.add_artifact(run.id, "summary", nnunet_file, note="nnU-Net summary.json layout")
    return EvaluationResult(
        run=run,
        summary=summary,
        out=out_dir,
        scored=len(todo),
        skipped=len(case_ids) - len(todo),
        store_url=db.url,
        results=table,
        metric_failures=failures,
    )


def _write_nnunet_summary(
    jobs: Sequence[CaseJob],
    rejected: set[str],
    spec: TaskSpec,
    profile: MetricProfile,
    path: Path,
) -> Path:
    """nnU-Net's summary of the accepted predictions (see :mod:`.nnunet_summary`)."""
    import SimpleITK as sitk

    from evaluator.evaluate.nnunet_summary import (
        LabelOrRegion,
        case_metrics,
        summarize,
        write_summary,
    )

    items: list[LabelOrRegion] = [*sorted(spec.labels), *map(tuple, profile.regions.values())]
    cases = []
    for job in sorted(jobs, key=lambda j: str(j.prediction)):
        if job.prediction is None or job.case.case_id in rejected or job.case.label is None:
            continue
        ref = sitk.GetArrayFromImage(sitk.ReadImage(str(job.case.label)))
        pred = sitk.GetArrayFromImage(sitk.ReadImage(str(job.prediction)))
        if ref.shape != pred.shape:  # resampled by ccbench (HECKTOR); nnU-Net compares voxels
            continue
        cases.append((str(job.case.label), str(job.prediction), case_metrics(ref, pred, items)))
    return write_summary(summarize(cases, items), path)
