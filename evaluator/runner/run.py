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

import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from evaluator.datasets.registry import TaskSpec
from evaluator.errors import SubmissionError
from evaluator.runner.contract import (
    CollectedOutputs,
    ContainerRun,
    Manifest,
    SandboxLimits,
    collect_batch_outputs,
    collect_gc_output,
    gc_slugs,
    load_manifest,
    stage_batch_inputs,
    stage_gc_inputs,
)
from evaluator.workspace import Workspace

__all__ = ["Backend", "BackendName", "RunOutcome", "make_backend", "run_cases", "run_entry"]

BackendName = Literal["docker", "local"]


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


def _absorb(outcome: RunOutcome, got: CollectedOutputs, run: ContainerRun) -> None:
    outcome.predictions.update(got.predictions)
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
) -> RunOutcome:
    """Run an entry on the given cases and collect its outputs (no scoring).

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
    (limits or SandboxLimits()).check(manifest.resources, entry=manifest.name)
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
    run_dir.mkdir(parents=True, exist_ok=True)
    predictions = run_dir / "predictions"
    predictions.mkdir(exist_ok=True)
    res = manifest.resources
    cap = res.output_mb * 2**20
    workspace.tmp.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if manifest.interface == "batch":
        with _scratch(workspace) as (input_dir, output_dir):
            stage_batch_inputs(cases, input_dir, task=task)
            run = backend.run(
                manifest,
                input_dir=input_dir,
                output_dir=output_dir,
                time_limit_s=res.time_limit_s * max(1, len(cases)),
                output_cap_bytes=cap * max(1, len(cases)),
                label="split",
            )
            got = collect_batch_outputs(output_dir, outcome.case_ids, predictions, max_bytes=cap)
        outcome.container_runs.append(run)
        _write_log(run_dir, run)
        _absorb(outcome, got, run)
    else:
        slugs = gc_slugs(manifest, task)
        for case in cases:
            with _scratch(workspace) as (input_dir, output_dir):
                key = stage_gc_inputs(case, input_dir, task=task, slugs=slugs)
                (output_dir / "images" / slugs.output).mkdir(parents=True)
                for folder in (output_dir / "images", output_dir / "images" / slugs.output):
                    folder.chmod(0o777)
                run = backend.run(
                    manifest,
                    input_dir=input_dir,
                    output_dir=output_dir,
                    time_limit_s=res.time_limit_s,
                    output_cap_bytes=cap,
                    label=case.case_id,
                )
                got = collect_gc_output(
                    output_dir, case.case_id, key, predictions, slug=slugs.output, max_bytes=cap
                )
            outcome.container_runs.append(run)
            _write_log(run_dir, run)
            _absorb(outcome, got, run)
    outcome.seconds = time.perf_counter() - start
    (run_dir / "container.json").write_text(json.dumps(outcome.to_json(), indent=1, default=str))
    return outcome


class _scratch:
    """``(input_dir, output_dir)`` in the workspace's tmp folder, removed on every exit path."""

    def __init__(self, workspace: Workspace) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="run-", dir=workspace.tmp))

    def __enter__(self) -> tuple[Path, Path]:
        (self.root / "input").mkdir()
        (self.root / "output").mkdir()
        return self.root / "input", self.root / "output"

    def __exit__(self, *exc: object) -> None:
        _rmtree(self.root)


def _rmtree(path: Path) -> None:
    """Remove a tree even when a container left read-only folders in it."""

    def _retry(func: Any, p: str, _exc: Any) -> None:
        Path(p).parent.chmod(0o700)
        if Path(p).is_dir() and not Path(p).is_symlink():
            Path(p).chmod(0o700)
        func(p)

    shutil.rmtree(path, onerror=_retry)


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
    )
    if evaluate:
        outcome.evaluation = _evaluate(
            outcome, spec, workspace=workspace, data_root=data_root, workers=workers
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
) -> Any:
    """Score the predictions folder, then attach container logs and errors to the stored run."""
    from evaluator.evaluate import evaluate_run
    from evaluator.store import Store

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
    )
    db = Store.open(result.store_url)
    try:
        for run in outcome.container_runs:
            case_id = None if run.label == "split" else run.label
            db.log(result.run.id, run.log, case_id=case_id, stream="container")
        for case_id, reason in outcome.case_errors.items():
            db.log(result.run.id, reason, case_id=case_id, stream="container_error")
    finally:
        db.close()
    return result
