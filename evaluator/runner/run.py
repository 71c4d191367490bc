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
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from evaluator.choices import BackendName
from evaluator.datasets.registry import TaskSpec
from evaluator.errors import ImageReadError, SubmissionError
from evaluator.processes import current_owner
from evaluator.runner.contract import (
    ContainerRun,
    Manifest,
    SandboxLimits,
    container_user,
    gc_slugs,
    load_manifest,
    stage_batch_inputs,
    stage_gc_inputs,
)
from evaluator.runner.outputs import (
    CollectedOutputs,
    Scratch,
    collect_batch_outputs,
    collect_gc_output,
    collect_instance_output,
    open_scratch,
    reap_scratch,
)
from evaluator.typing import ProgressHook
from evaluator.workspace import Workspace

__all__ = ["Backend", "BackendName", "RunOutcome", "make_backend", "run_cases", "run_entry"]


class Backend(Protocol):
    """What :func:`run_cases` needs from a backend (Docker or local process)."""

    name: str

    def provenance(self, manifest: Manifest) -> dict[str, Any]:
        """Check the entry can run here; return what identifies what ran."""
        ...

    def run(
        self,
        manifest: Manifest,
        *,
        input_dir: Path,
        output_dir: Path,
        time_limit_s: float,
        output_cap_bytes: int,
        label: str,
        labels: Mapping[str, str] | None = None,
        poll_output: bool = True,
    ) -> ContainerRun:
        """Run once; the process is gone when this returns."""
        ...


@dataclass
class RunOutcome:
    """Everything one ``ccbench run`` produced.

    Attributes
    ----------
    run_dir
        ``<workspace>/runs/<name>``: ``predictions/``, ``logs/``, ``container.json``.
    predictions
        Case id -> prediction file in ``run_dir/predictions``.
    case_errors
        Case id -> container-side reason the case has no usable prediction.
    container_runs
        One per container run (batch: one; grand-challenge: one per case).
    provenance
        Backend, image, image digest (and the command for the local backend).
    evaluation
        What the local evaluation path returned (``None`` when scoring was skipped).
    """

    name: str
    entry: str
    task: str
    split: str
    interface: str
    run_dir: Path
    case_ids: list[str]
    predictions: dict[str, Path] = field(default_factory=dict)
    case_errors: dict[str, str] = field(default_factory=dict)
    dataset_errors: dict[str, str] = field(default_factory=dict)
    unsafe: set[str] = field(default_factory=set)
    rejected: list[str] = field(default_factory=list)
    container_runs: list[ContainerRun] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    evaluation: Any = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe summary (what ``container.json`` holds)."""
        runs = [{k: v for k, v in asdict(r).items() if k != "log"} for r in self.container_runs]
        return {
            "name": self.name,
            "entry": self.entry,
            "task": self.task,
            "split": self.split,
            "interface": self.interface,
            "cases": self.case_ids,
            "predictions": {k: str(v) for k, v in self.predictions.items()},
            "case_errors": self.case_errors,
            "dataset_errors": self.dataset_errors,
            "rejected": self.rejected,
            "container_runs": runs,
            "provenance": self.provenance,
            "seconds": self.seconds,
        }


def make_backend(name: BackendName) -> Backend:
    """The backend called ``name``; ``docker`` raises when no engine answers."""
    if name == "docker":
        from evaluator.runner.docker_backend import DockerBackend

        return DockerBackend()
    if name == "local":
        from evaluator.runner.local_backend import LocalBackend

        return LocalBackend()
    raise SubmissionError(f"unknown backend '{name}' (use docker or local)")


def _absorb(outcome: RunOutcome, got: CollectedOutputs, run: ContainerRun, run_dir: Path) -> None:
    outcome.container_runs.append(run)
    _write_log(run_dir, run)
    outcome.predictions.update(got.predictions)
    outcome.unsafe |= got.unsafe
    outcome.rejected += got.rejected
    for case_id, why in got.errors.items():
        # A failed run explains missing outputs better than "no output file".
        outcome.case_errors[case_id] = f"{run.reason}; {why}" if not run.ok else why


def _write_log(run_dir: Path, run: ContainerRun) -> None:
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / f"{run.label}.log").write_text(run.log)


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
) -> RunOutcome:
    """Run an entry on the given cases and collect its outputs (no scoring).

    Before the first container, orphans of earlier runs whose process is gone (containers and
    scratch folders) are removed; while it runs, a watchdog in its own session removes this
    run's containers if this process dies.

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

    Returns
    -------
    RunOutcome
        Every case of ``cases`` is either in ``predictions`` or in ``case_errors``.

    Raises
    ------
    SubmissionError
        The entry is not registered for ``task``, asks for too much, or its image changed.
    """
    if task.name not in manifest.tasks:
        raise SubmissionError(
            f"entry {manifest.name} is not registered for task '{task.name}' "
            f"(its tasks: {', '.join(manifest.tasks)})"
        )
    limits = limits or SandboxLimits()
    limits.check(manifest.resources, entry=manifest.name)
    manifest = manifest.model_copy(update={"resources": limits.apply(manifest.resources)})
    if manifest.interface == "grand-challenge" and task.dims == 2:
        raise SubmissionError(
            f"entry {manifest.name}: the grand-challenge interface writes one image per case; "
            f"task '{task.name}' is an instance task: register the entry with --interface batch "
            "(it writes /output/predictions.json, COCO results)"
        )
    slugs = gc_slugs(manifest, task) if manifest.interface == "grand-challenge" else None
    outcome = RunOutcome(
        name=run_dir.name,
        entry=manifest.name,
        task=task.name,
        split=split,
        interface=manifest.interface,
        run_dir=run_dir,
        case_ids=[c.case_id for c in cases],
    )
    outcome.provenance = backend.provenance(manifest)
    check = getattr(backend, "check_requirements", None)
    if check is not None:
        check(manifest)
    reap = getattr(backend, "reap", None)
    if reap is not None:
        reap()
    reap_scratch(workspace.tmp)
    run_dir.mkdir(parents=True, exist_ok=True)
    predictions = run_dir / "predictions"
    predictions.mkdir(exist_ok=True)
    res = manifest.resources
    cap = res.output_mb * 2**20
    token = uuid.uuid4().hex[:16]
    user_for = getattr(backend, "user_for", None)
    user = user_for(manifest) if user_for is not None else container_user()
    start = time.perf_counter()
    tick = progress or (lambda done, total, status: None)
    guard = getattr(backend, "guard", None)
    with guard(token, workspace.tmp) if guard is not None else contextlib.nullcontext():
        if slugs is None:
            n = max(1, len(cases))
            with _container_scratch(
                workspace, token, cap * n, res.output_files * n + 16, user
            ) as box:
                stage_batch_inputs(cases, box.input_dir, task=task, skipped=outcome.dataset_errors)
                tick(0, 1, f"one container for {len(cases)} cases")
                run = _run_once(
                    backend,
                    manifest,
                    box,
                    token=token,
                    label="split",
                    time_limit_s=res.time_limit_s * n,
                    file_cap=cap * n,
                )
                staged = [c for c in outcome.case_ids if c not in outcome.dataset_errors]
                collect = collect_instance_output if task.dims == 2 else collect_batch_outputs
                got = collect(box.output_dir, staged, predictions, max_bytes=cap)
            outcome.provenance["output_enforcement"] = box.enforcement
            _note_gpus(outcome, run)
            _absorb(outcome, got, run, run_dir)
            tick(1, 1, f"{len(got.predictions)} predictions, {_status(run)}")
        else:
            tick(0, len(cases), "")
            for done, case in enumerate(cases, start=1):
                with _container_scratch(workspace, token, cap, res.output_files + 4, user) as box:
                    try:
                        key = stage_gc_inputs(case, box.input_dir, task=task, slugs=slugs)
                    except ImageReadError as err:
                        outcome.dataset_errors[case.case_id] = str(err)
                        tick(done, len(cases), f"{case.case_id}: input unreadable")
                        continue
                    _gc_output_folders(box, slugs.output, user)
                    run = _run_once(
                        backend,
                        manifest,
                        box,
                        token=token,
                        label=case.case_id,
                        time_limit_s=res.time_limit_s,
                        file_cap=cap,
                    )
                    if run.ok:
                        got = collect_gc_output(
                            box.output_dir,
                            case.case_id,
                            key,
                            predictions,
                            slug=slugs.output,
                            max_bytes=cap,
                        )
                    else:  # as grand-challenge: a failed job's outputs are not used
                        got = CollectedOutputs(errors={case.case_id: "no output used"})
                outcome.provenance["output_enforcement"] = box.enforcement
                _note_gpus(outcome, run)
                _absorb(outcome, got, run, run_dir)
                tick(done, len(cases), f"{case.case_id}: {_status(run)}")
    outcome.seconds = time.perf_counter() - start
    (run_dir / "container.json").write_text(json.dumps(outcome.to_json(), indent=1, default=str))
    return outcome


def _container_scratch(
    workspace: Workspace, token: str, cap_bytes: int, max_files: int, user: tuple[int, int]
) -> contextlib.AbstractContextManager[Scratch]:
    uid, gid = user
    return open_scratch(
        workspace.tmp, token=token, cap_bytes=cap_bytes, max_files=max_files, uid=uid, gid=gid
    )


def _gc_output_folders(box: Scratch, slug: str, user: tuple[int, int]) -> None:
    """``/output/images/<slug>/``, writable by the container's user (as grand-challenge has)."""
    uid, gid = user
    for folder in (box.output_dir / "images", box.output_dir / "images" / slug):
        folder.mkdir()
        if os.getuid() == 0:
            os.chown(folder, uid, gid)
        folder.chmod(0o755 if os.getuid() == 0 else 0o777)


def _run_once(
    backend: Backend,
    manifest: Manifest,
    box: Scratch,
    *,
    token: str,
    label: str,
    time_limit_s: float,
    file_cap: int,
) -> ContainerRun:
    """One container run in ``box``; a full output file system turns into ``output_cap``."""
    labels = {
        "ccbench.run": token,
        "ccbench.owner": str(current_owner()),
        "ccbench.deadline": f"{time.time() + time_limit_s:.0f}",
    }
    run = backend.run(
        manifest,
        input_dir=box.input_dir,
        output_dir=box.output_dir,
        time_limit_s=time_limit_s,
        output_cap_bytes=file_cap,
        label=label,
        labels=labels,
        poll_output=box.enforcement == "polling",
    )
    full = box.exhausted()
    if full is not None and run.status in ("ok", "exit", "output_cap"):
        run.status = "output_cap"
        run.reason = f"container stopped at the output cap: {full}"
    run.details["output_enforcement"] = box.enforcement
    return run


def _status(run: ContainerRun) -> str:
    """A container's status for progress lines: ``ok`` or its failure class."""
    return "ok" if run.ok else f"failed ({run.status})"


def _note_gpus(outcome: RunOutcome, run: ContainerRun) -> None:
    """What the container saw of the GPUs (``nvidia-smi -L``), or "none", in the provenance."""
    outcome.provenance["gpus"] = run.details.get("gpu_report", "none")


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
    runner = make_backend(backend) if isinstance(backend, str) else backend
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    run_dir = workspace.runs / f"{manifest.name}__{spec.name}__{split}__{stamp}"
    outcome = run_cases(
        manifest,
        cases,
        task=spec,
        run_dir=run_dir,
        backend=runner,
        workspace=workspace,
        split=split,
        limits=limits,
        progress=progress,
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
            case_id = None if run.label == "split" else run.label
            db.log(result.run.id, run.log, case_id=case_id, stream="container")
        for case_id, reason in outcome.case_errors.items():
            db.log(result.run.id, reason, case_id=case_id, stream="container_error")
    finally:
        db.close()
    return result
