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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evaluator.choices import BackendName, Staging
from evaluator.datasets.registry import TaskSpec
from evaluator.errors import SplitError, SubmissionError
from evaluator.prompts.contract import Prompt
from evaluator.runner.contract import (
    Manifest,
    SandboxLimits,
    container_user,
    gc_slugs,
    load_manifest,
    manifest_labels,
)
from evaluator.runner.interactive import ClickProtocol
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
    prompts: Mapping[str, Prompt] | None = None,
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
    prompts
        Case id -> what a prompted entry is given in ``/input/prompts.json``
        (:mod:`evaluator.prompts.contract`).

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
                    prompts=prompts,
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
    clicks: ClickProtocol | None = None,
    shots: int | None = None,
    on_budget: Callable[[int, RunOutcome], None] | None = None,
    fold: int | None = None,
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
    clicks
        An interactive entry's click protocol [default: :class:`ClickProtocol`'s]: the entry
        runs once per budget (:mod:`evaluator.runner.interactive`). Refused for an entry that
        does not declare ``prompts: clicks``.
    shots
        The few-shot subset (``k`` cases per target, ``ccbench data split --shots``) the entry
        was adapted on, recorded with the run; the leaderboards group entries by it.
    on_budget
        Interactive entries: called with each budget and its outcome when it is stored.
    fold
        A fold run: the entry's model of cross-validation fold ``fold`` (trained on that fold's
        training cases) runs, on ``split`` (its own validation cases ``fold<k>``, or ``test``).
        Every case's prompt says which (``{"fold": k}`` in ``/input/prompts.json``, written for
        any entry), the run records it (``protocol``), and the leaderboard gives the mean ± SD
        over the folds (:mod:`leaderboards.folds`).

    Returns
    -------
    RunOutcome
        With ``evaluation`` set to what the evaluation path returned; for an interactive entry,
        the largest budget's (each budget is its own stored run).

    Raises
    ------
    SubmissionError
        Unknown entry, not registered for the task, resources above the limits, a prompt the
        task cannot give.
    DockerUnavailableError
        ``backend="docker"`` and no engine answers.
    """
    from evaluator.datasets.base import open_dataset, resolve_task
    from evaluator.prompts.contract import text_targets

    manifest = load_manifest(entry, submissions_dir=submissions_dir)
    spec = resolve_task(task)
    if clicks is not None and "clicks" not in manifest.prompts:
        raise SubmissionError(
            f"entry {manifest.name} does not declare `prompts: clicks`: it cannot be given clicks"
        )
    if shots is not None:  # the subset must exist: the split's own check and message
        try:
            _split_case_ids(spec, f"shots{shots}", workspace=workspace, data_root=data_root)
        except SplitError as err:
            raise SubmissionError(
                f"--shots {shots}: {err}; adapt the model on split 'shots{shots}'"
            ) from err
    dataset = open_dataset(spec, workspace=workspace, data_root=data_root)
    case_ids = _split_case_ids(spec, split, workspace=workspace, data_root=data_root)
    if fold is not None:  # the fold exists and never saw these cases
        from evaluator.datasets.splits import check_fold_cases

        try:
            check_fold_cases(spec, fold, case_ids, split=split, workspace=workspace)
        except SplitError as err:
            raise SubmissionError(f"--fold {fold}: {err}") from err
    cases = [dataset.case(cid) for cid in case_ids]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    model = "" if fold is None or split == f"fold{fold}" else f"__fold{fold}"
    name = f"{manifest.name}__{spec.name}__{split}{model}__{stamp}"
    protocol: dict[str, Any] = {} if shots is None else {"shots": shots}
    prompts: dict[str, Prompt] | None = None
    if "text" in manifest.prompts:
        targets = text_targets(spec)
        prompts = {cid: {"targets": targets} for cid in case_ids}
        protocol["prompts"] = ["text"]
    if fold is not None:
        protocol["fold"] = fold
        prompts = {cid: {**(prompts or {}).get(cid, {}), "fold": fold} for cid in case_ids}
    once = _Once(
        manifest=manifest,
        spec=spec,
        cases=cases,
        workspace=workspace,
        backend=backend,
        data_root=data_root,
        limits=limits,
        evaluate=evaluate,
        workers=workers,
        scoring=(scoring_memory_mb, scoring_time_limit_s),
        progress=progress,
        on_case=on_case,
        scheduler=scheduler,
        shard_size=shard_size,
        staging=staging,
        split=split,
    )
    if "clicks" not in manifest.prompts:
        return once(workspace.runs / name, prompts, protocol)
    from evaluator.runner.interactive import (
        ClickSeries,
        budget_run_name,
        previous_prediction,
    )

    click_protocol = clicks or ClickProtocol()
    series = ClickSeries(spec, cases, click_protocol)
    outcome: RunOutcome | None = None
    for budget in range(click_protocol.budgets + 1):
        before = None if outcome is None else outcome.run_dir / "predictions"
        given = series.prompts(
            budget, previous_prediction(before, spec, case_ids) if before else lambda cid, ref: None
        )
        if prompts is not None:  # text and clicks: both in one prompt
            given = {cid: {**prompts.get(cid, {}), **p} for cid, p in given.items()}
        run_dir = workspace.runs / budget_run_name(name, budget)
        outcome = once(run_dir, given, {**protocol, **click_protocol.parameters(name, budget)})
        if on_budget is not None:
            on_budget(budget, outcome)
    assert outcome is not None
    return outcome


@dataclass(frozen=True)
class _Once:
    """One container pass over the split, then its scoring (a budget of an interactive entry
    is one pass)."""

    manifest: Manifest
    spec: TaskSpec
    cases: Sequence[Any]
    workspace: Workspace
    backend: BackendName | Backend
    data_root: Path | None
    limits: SandboxLimits | None
    evaluate: bool
    workers: int | None
    scoring: tuple[int | None, float | None]
    progress: ProgressHook | None
    on_case: Callable[[Any, int, int], None] | None
    scheduler: str | None
    shard_size: int | None
    staging: Staging
    split: str

    def __call__(
        self,
        run_dir: Path,
        prompts: Mapping[str, Prompt] | None,
        protocol: Mapping[str, Any],
    ) -> RunOutcome:
        if self.scheduler is not None:
            from evaluator.executor import dask_scheduler
            from evaluator.runner.distributed import run_cases_dask

            with dask_scheduler(self.scheduler, workers=self.workers) as address:
                backend = self.backend
                outcome = run_cases_dask(
                    self.manifest,
                    self.cases,
                    task=self.spec,
                    run_dir=run_dir,
                    scheduler=address,
                    workspace=self.workspace,
                    backend=backend if isinstance(backend, str) else backend.name,  # type: ignore[arg-type]
                    split=self.split,
                    limits=self.limits,
                    progress=self.progress,
                    shard_size=self.shard_size,
                    staging=self.staging,
                    prompts=prompts,
                )
        else:
            outcome = run_cases(
                self.manifest,
                self.cases,
                task=self.spec,
                run_dir=run_dir,
                backend=make_backend(self.backend)
                if isinstance(self.backend, str)
                else self.backend,
                workspace=self.workspace,
                split=self.split,
                limits=self.limits,
                progress=self.progress,
                shard_size=self.shard_size,
                prompts=prompts,
            )
        if self.evaluate:
            outcome.evaluation = _evaluate(
                outcome,
                self.spec,
                workspace=self.workspace,
                data_root=self.data_root,
                workers=self.workers,
                manifest=self.manifest,
                limits=self.scoring,
                on_case=self.on_case,
                protocol=protocol,
                prompts=prompts,
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
    protocol: Mapping[str, Any] | None = None,
    prompts: Mapping[str, Prompt] | None = None,
) -> Any:
    """Score the predictions folder, then attach container logs, errors and the prompts given
    to the stored run."""
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
        protocol=protocol,
        labels=manifest_labels(manifest, task, where=f"entry {manifest.name}"),
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
        if prompts:
            db.record_prompts(result.run.id, prompts)
    finally:
        db.close()
    return result
