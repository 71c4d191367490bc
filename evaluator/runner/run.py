"""``ccbench run``: run an entry's container on a split, collect its outputs, score them.

Flow: resolve the split's cases -> stage ``/input`` in a temporary folder of the workspace ->
run the container(s) (batch: one run; grand-challenge: one run per case) -> move outputs into
``<run folder>/predictions`` (links, stray names and oversize files rejected per case) -> write
logs and ``container.json`` (per-case container errors, provenance with the image digest) -> score
with the local evaluation path (:func:`evaluator.evaluate.evaluate_run`), which validates each
prediction and stores every number. Temporary folders are removed on every exit path, Ctrl-C
included.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evaluator.choices import BackendName, Staging
from evaluator.datasets.registry import TaskSpec
from evaluator.runner.contract import (
    Manifest,
    SandboxLimits,
    container_user,
    gc_slugs,
    load_manifest,
)
from evaluator.runner.outputs import reap_scratch
from evaluator.runner.units import (
    Backend,
    RunOutcome,
    absorb_unit,
    contain,
    finish_outcome,
    first_tick,
    make_backend,
    plan_units,
    scratch_for,
    stage_unit,
    start_outcome,
)
from evaluator.typing import ProgressHook
from evaluator.workspace import Workspace

__all__ = ["Backend", "BackendName", "RunOutcome", "make_backend", "run_cases", "run_entry"]


def run_cases(
    manifest: Manifest,
    cases: Sequence[Any],
    *,
    task: TaskSpec,
    run_dir: Path,
    backend: Backend,
    workspace: Workspace,
    split: str = "custom",
    limits: SandboxLimits | None = None,
    progress: ProgressHook | None = None,
    shard_size: int | None = None,
) -> RunOutcome:
    """Run an entry on the given cases and collect its outputs (no scoring).

    Before the first container, orphans of earlier runs whose process is gone (containers and
    scratch folders) are removed; while it runs, a watchdog in its own session removes this
    run's containers if this process dies. :func:`evaluator.runner.distributed.run_cases_dask`
    runs the same units on a Dask cluster.

    Parameters
    ----------
    manifest
        The entry.
    cases
        :class:`evaluator.datasets.base.Case` objects, in order.
    task
        The task the cases belong to (channels, adapter).
    run_dir
        Created; receives ``predictions/``, ``logs/``, ``container.json``.
    backend
        :class:`~evaluator.runner.docker_backend.DockerBackend` or
        :class:`~evaluator.runner.local_backend.LocalBackend`.
    workspace
        Its ``tmp`` folder holds the staged ``/input`` and ``/output`` (removed afterwards).
    limits
        The organiser's bounds the entry's resources must respect.
    progress
        Called as ``progress(done, total, status)`` before the first container and after each
        one (grand-challenge interface: one per case, status ``"<case>: ok"`` or the failure
        class; batch interface: one container for all cases).
    shard_size
        Batch interface: cases per container [default: all in one].

    Returns
    -------
    RunOutcome
        Every case of ``cases`` is either in ``predictions`` or in ``case_errors``.

    Raises
    ------
    SubmissionError
        The entry is not registered for ``task``, asks for too much, or its image changed.
    """
    manifest, outcome = start_outcome(
        manifest, cases, task=task, run_dir=run_dir, split=split, limits=limits
    )
    slugs = gc_slugs(manifest, task) if manifest.interface == "grand-challenge" else None
    outcome.provenance = backend.provenance(manifest)
    check = getattr(backend, "check_requirements", None)
    if check is not None:
        check(manifest)
    reap = getattr(backend, "reap", None)
    if reap is not None:
        reap()
    reap_scratch(workspace.tmp)
    (run_dir / "predictions").mkdir(parents=True, exist_ok=True)
    units = plan_units(manifest, outcome.case_ids, task=task, shard_size=shard_size)
    by_id = {c.case_id: c for c in cases}
    token = uuid.uuid4().hex[:16]
    user_for = getattr(backend, "user_for", None)
    user = user_for(manifest) if user_for is not None else container_user()
    start = time.perf_counter()
    tick = progress or (lambda done, total, status: None)
    total, first = first_tick(units, len(cases))
    guard = getattr(backend, "guard", None)
    with guard(token, workspace.tmp) if guard is not None else contextlib.nullcontext():
        tick(0, total, first)
        for done, planned in enumerate(units, start=1):
            with scratch_for(workspace.tmp, planned, token=token, user=user) as box:
                unit = stage_unit(
                    planned,
                    by_id,
                    box.input_dir,
                    task=task,
                    slugs=slugs,
                    skipped=outcome.dataset_errors,
                )
                if unit.layout == "gc" and not unit.case_ids:
                    tick(done, total, f"{unit.label}: input unreadable")
                    continue
                run, got = contain(
                    backend,
                    manifest,
                    unit,
                    box,
                    token=token,
                    user=user,
                    dest=run_dir / "predictions",
                )
            tick(done, total, absorb_unit(outcome, unit, run, got, box.enforcement))
    return finish_outcome(outcome, start)


def run_entry(
    entry: str | Path,
    *,
    task: str,
    split: str,
    workspace: Workspace,
    backend: BackendName | Backend = "docker",
    submissions_dir: Path = Path("submissions"),
    data_root: Path | None = None,
    limits: SandboxLimits | None = None,
    evaluate: bool = True,
    workers: int | None = None,
    scoring_memory_mb: int | None = None,
    scoring_time_limit_s: float | None = 600.0,
    progress: ProgressHook | None = None,
    on_case: Callable[[Any, int, int], None] | None = None,
    scheduler: str | None = None,
    shard_size: int | None = None,
    staging: Staging = "transfer",
) -> RunOutcome:
    """Run a submitted entry on a task's split, then score it into the results store.

    Parameters
    ----------
    entry
        Entry name (``submissions_dir/<entry>.yaml``) or a manifest path.
    task
        Task name from ``datasets.yaml``.
    split
        A split name understood by :func:`evaluator.datasets.splits.resolve_split`
        (e.g. ``test``, ``fold0``, ``all``).
    workspace
        Data, split files, the run folder (``runs/``) and the store.
    backend
        ``"docker"`` (sandboxed), ``"local"`` (development only) or a backend object.
    submissions_dir
        Where entry manifests are looked up.
    data_root
        Overrides the task's data root.
    limits
        The organiser's resource bounds [default: :class:`SandboxLimits`].
    evaluate
        Score the predictions with :func:`evaluator.evaluate.evaluate_run` (default).
    workers
        Scoring processes (passed to ``evaluate_run``; default one per CPU).
    scoring_memory_mb, scoring_time_limit_s
        Limits of each scoring worker (``evaluate_run``'s ``memory_mb`` and ``time_limit_s``).
    progress
        Container progress, as :func:`run_cases`.
    on_case
        Scoring progress, ``on_case(outcome, done, total)`` as ``evaluate_run``'s.
    scheduler
        A Dask scheduler's address, or ``"local"`` for a cluster of ``workers`` processes on
        this machine (:func:`evaluator.executor.dask_scheduler`): the containers run on its
        workers (:func:`evaluator.runner.distributed.run_cases_dask`); scoring stays here.
    shard_size, staging
        Cases per batch-interface container, and how inputs reach the workers (with
        ``scheduler``; see :func:`~evaluator.runner.distributed.run_cases_dask`).

    Returns
    -------
    RunOutcome
        With ``evaluation`` set to what the evaluation path returned.

    Raises
    ------
    SubmissionError
        Unknown entry, not registered for the task, resources above the limits.
    DockerUnavailableError
        ``backend="docker"`` and no engine answers.
    """
    from evaluator.datasets.base import open_dataset, resolve_task

    manifest = load_manifest(entry, submissions_dir=submissions_dir)
    spec = resolve_task(task)
    dataset = open_dataset(spec, workspace=workspace, data_root=data_root)
    case_ids = _split_case_ids(spec, split, workspace=workspace, data_root=data_root)
    cases = [dataset.case(cid) for cid in case_ids]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    run_dir = workspace.runs / f"{manifest.name}__{spec.name}__{split}__{stamp}"
    if scheduler is not None:
        from evaluator.executor import dask_scheduler
        from evaluator.runner.distributed import run_cases_dask

        with dask_scheduler(scheduler, workers=workers) as address:
            outcome = run_cases_dask(
                manifest,
                cases,
                task=spec,
                run_dir=run_dir,
                scheduler=address,
                workspace=workspace,
                backend=backend if isinstance(backend, str) else backend.name,  # type: ignore[arg-type]
                split=split,
                limits=limits,
                progress=progress,
                shard_size=shard_size,
                staging=staging,
            )
    else:
        outcome = run_cases(
            manifest,
            cases,
            task=spec,
            run_dir=run_dir,
            backend=make_backend(backend) if isinstance(backend, str) else backend,
            workspace=workspace,
            split=split,
            limits=limits,
            progress=progress,
            shard_size=shard_size,
        )
    if evaluate:
        outcome.evaluation = _evaluate(
            outcome,
            spec,
            workspace=workspace,
            data_root=data_root,
            workers=workers,
            manifest=manifest,
            limits=(scoring_memory_mb, scoring_time_limit_s),
            on_case=on_case,
        )
    return outcome


def _split_case_ids(
    task: TaskSpec, split: str, *, workspace: Workspace, data_root: Path | None
) -> list[str]:
    from evaluator.datasets.splits import resolve_split

    return list(resolve_split(task, split, workspace=workspace, data_root=data_root))


def _evaluate(
    outcome: RunOutcome,
    task: TaskSpec,
    *,
    workspace: Workspace,
    data_root: Path | None,
    workers: int | None,
    manifest: Manifest,
    limits: tuple[int | None, float | None] = (None, 600.0),
    on_case: Callable[[Any, int, int], None] | None = None,
) -> Any:
    """Score the predictions folder, then attach container logs and errors to the stored run."""
    from evaluator.evaluate import evaluate_run
    from evaluator.store import ArtifactKind, Store

    result = evaluate_run(
        task.name,
        outcome.split,
        outcome.run_dir / "predictions",
        workspace=workspace,
        run_name=outcome.name,
        out=outcome.run_dir,
        entry=outcome.entry,
        image_digest=outcome.provenance.get("image_digest"),
        data_root=data_root,
        workers=workers,
        case_errors=outcome.case_errors,
        dataset_errors=outcome.dataset_errors,
        unsafe_cases=outcome.unsafe,
        memory_mb=limits[0],
        time_limit_s=limits[1],
        entry_manifest={
            **manifest.model_dump(mode="json", exclude_none=True),
            "backend": outcome.provenance.get("backend"),
        },
        kind=manifest.kind,
        on_case=on_case,
    )
    db = Store.open(result.store_url)
    try:
        written: tuple[tuple[ArtifactKind, Path], ...] = (
            ("logs", outcome.run_dir / "logs"),
            ("container", outcome.run_dir / "container.json"),
        )
        for artifact, path in written:
            if path.exists():
                db.add_artifact(result.run.id, artifact, path)
        for run in outcome.container_runs:
            case_id = run.label if run.label in outcome.case_ids else None  # not split, shard-N
            db.log(result.run.id, run.log, case_id=case_id, stream="container")
        for case_id, reason in outcome.case_errors.items():
            db.log(result.run.id, reason, case_id=case_id, stream="container_error")
    finally:
        db.close()
    return result
