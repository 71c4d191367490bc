"""The units of a ``ccbench run``: one container run each, planned, staged, run and collected.

Shared by the local loop (:func:`evaluator.runner.run.run_cases`) and the Dask workers
(:mod:`evaluator.runner.distributed`), so that a case gets the same sandbox, the same output
checks and the same verdicts wherever its container runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from evaluator.choices import BackendName
from evaluator.datasets.registry import TaskSpec
from evaluator.errors import ImageReadError, SubmissionError
from evaluator.processes import current_owner
from evaluator.prompts.contract import Prompt, write_prompts
from evaluator.runner.contract import (
    ContainerRun,
    GrandChallengeSlugs,
    Manifest,
    SandboxLimits,
    gc_slugs,
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
)

__all__ = [
    "Backend",
    "RunOutcome",
    "Unit",
    "absorb_unit",
    "contain",
    "finish_outcome",
    "first_tick",
    "make_backend",
    "plan_units",
    "scratch_for",
    "stage_unit",
    "start_outcome",
]


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


def _write_log(run_dir: Path, run: ContainerRun) -> None:
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / f"{run.label}.log").write_text(run.log)


@dataclass(frozen=True)
class Unit:
    """One container run of a ``ccbench run``: its cases, its ``/input`` layout, its limits.

    Attributes
    ----------
    label
        ``split`` (the batch interface, one container), ``shard-NNN`` (one shard of a split run
        on a cluster) or the case id (grand-challenge interface).
    case_ids
        The cases it is given (after staging: those whose images could be staged).
    layout
        ``batch`` (``/input/cases.json``), ``instances`` (batch, writing one COCO results file)
        or ``gc`` (grand-challenge: one case, ``/input/images/<slug>/``).
    time_limit_s
        Wall-clock limit of the container, seconds.
    box_bytes, max_files
        Caps of its ``/output`` file system (bytes, files plus folders).
    file_bytes
        Cap of a single output file, bytes.
    slug
        The grand-challenge output folder (``gc`` only).
    key
        The grand-challenge input's uuid, set when the inputs are staged (``gc`` only).
    """

    label: str
    case_ids: tuple[str, ...]
    layout: Literal["batch", "instances", "gc"]
    time_limit_s: float
    box_bytes: int
    max_files: int
    file_bytes: int
    slug: str | None = None
    key: str = ""


def plan_units(
    manifest: Manifest, case_ids: Sequence[str], *, task: TaskSpec, shard_size: int | None = None
) -> list[Unit]:
    """The container runs that cover ``case_ids``, in order.

    The grand-challenge interface runs one container per case; the batch interface one per
    split, or one per shard of ``shard_size`` cases (an instance task always one: its single
    results file covers the split).

    Examples
    --------
    >>> from evaluator.datasets.registry import load_registry
    >>> m = Manifest(name="m", image="i", image_digest="sha256:" + "0" * 64, tasks=("btcv",))
    >>> [(u.label, u.case_ids) for u in plan_units(m, ["a", "b", "c"], task=load_registry().task("btcv"), shard_size=2)]
    [('shard-000', ('a', 'b')), ('shard-001', ('c',))]
    """
    res = manifest.resources
    cap = res.output_mb * 2**20
    if manifest.interface == "grand-challenge":
        slug = gc_slugs(manifest, task).output
        return [
            Unit(cid, (cid,), "gc", res.time_limit_s, cap, res.output_files + 4, cap, slug)
            for cid in case_ids
        ]
    layout: Literal["batch", "instances"] = "instances" if task.instances else "batch"
    size = len(case_ids) if shard_size is None or layout == "instances" else max(shard_size, 1)
    shards = [tuple(case_ids[i : i + size]) for i in range(0, len(case_ids), max(size, 1))]
    shards = shards or [()]
    labels = ["split"] if len(shards) == 1 else [f"shard-{i:03d}" for i in range(len(shards))]
    return [
        Unit(
            label,
            shard,
            layout,
            res.time_limit_s * max(len(shard), 1),
            cap * max(len(shard), 1),
            res.output_files * max(len(shard), 1) + 16,
            cap,
        )
        for label, shard in zip(labels, shards, strict=True)
    ]


def stage_unit(
    unit: Unit,
    cases: Mapping[str, Any],
    input_dir: Path,
    *,
    task: TaskSpec,
    slugs: GrandChallengeSlugs | None,
    skipped: dict[str, str],
    prompts: Mapping[str, Prompt] | None = None,
) -> Unit:
    """Lay out ``/input`` of one unit in ``input_dir``; return the unit as staged.

    A case whose images cannot be read goes to ``skipped`` (the dataset's fault) and leaves the
    unit; the grand-challenge input's uuid is recorded in the returned unit. ``prompts`` (case
    id -> prompt) are written as ``/input/prompts.json`` (:mod:`evaluator.prompts.contract`).
    """
    if unit.layout == "gc":
        assert slugs is not None
        try:
            key = stage_gc_inputs(cases[unit.label], input_dir, task=task, slugs=slugs)
        except ImageReadError as err:
            skipped[unit.label] = str(err)
            return replace(unit, case_ids=())
        staged = replace(unit, key=key)
    else:
        stage_batch_inputs([cases[c] for c in unit.case_ids], input_dir, task=task, skipped=skipped)
        staged = replace(unit, case_ids=tuple(c for c in unit.case_ids if c not in skipped))
    if prompts:
        write_prompts(input_dir, layout=staged.layout, case_ids=staged.case_ids, prompts=prompts)
    return staged


def contain(
    backend: Backend,
    manifest: Manifest,
    unit: Unit,
    box: Scratch,
    *,
    token: str,
    user: tuple[int, int],
    dest: Path,
    labels: Mapping[str, str] | None = None,
) -> tuple[ContainerRun, CollectedOutputs]:
    """Run the container of a staged unit in ``box``; collect its outputs into ``dest``.

    Links, stray names and oversize files are refused per case (see
    :mod:`evaluator.runner.outputs`); a failed grand-challenge job's outputs are not used, as on
    grand-challenge. ``labels`` are added to the container's (e.g. the coordinator's run token
    on a Dask worker).
    """
    if unit.layout == "gc":
        assert unit.slug is not None
        _gc_output_folders(box, unit.slug, user)
    run = _run_once(
        backend,
        manifest,
        box,
        token=token,
        label=unit.label,
        time_limit_s=unit.time_limit_s,
        file_cap=unit.box_bytes,
        labels=labels,
    )
    if unit.layout == "gc":
        assert unit.slug is not None
        if not run.ok:
            return run, CollectedOutputs(errors={unit.label: "no output used"})
        got = collect_gc_output(
            box.output_dir, unit.label, unit.key, dest, slug=unit.slug, max_bytes=unit.file_bytes
        )
        return run, got
    collect = collect_instance_output if unit.layout == "instances" else collect_batch_outputs
    return run, collect(box.output_dir, unit.case_ids, dest, max_bytes=unit.file_bytes)


def start_outcome(
    manifest: Manifest,
    cases: Sequence[Any],
    *,
    task: TaskSpec,
    run_dir: Path,
    split: str,
    limits: SandboxLimits | None,
) -> tuple[Manifest, RunOutcome]:
    """Check the entry against the task and the limits; the manifest as run and an empty outcome.

    Raises
    ------
    SubmissionError
        The entry is not registered for ``task``, asks for too much, or uses the
        grand-challenge interface on an instance task.
    """
    if task.name not in manifest.tasks:
        raise SubmissionError(
            f"entry {manifest.name} is not registered for task '{task.name}' "
            f"(its tasks: {', '.join(manifest.tasks)})"
        )
    limits = limits or SandboxLimits()
    limits.check(manifest.resources, entry=manifest.name)
    manifest = manifest.model_copy(update={"resources": limits.apply(manifest.resources)})
    if manifest.interface == "grand-challenge" and task.instances:
        raise SubmissionError(
            f"entry {manifest.name}: the grand-challenge interface writes one image per case; "
            f"task '{task.name}' is an instance task: register the entry with --interface batch "
            "(it writes /output/predictions.json, COCO results)"
        )
    outcome = RunOutcome(
        name=run_dir.name,
        entry=manifest.name,
        task=task.name,
        split=split,
        interface=manifest.interface,
        run_dir=run_dir,
        case_ids=[c.case_id for c in cases],
    )
    return manifest, outcome


def absorb_unit(
    outcome: RunOutcome, unit: Unit, run: ContainerRun, got: CollectedOutputs, enforcement: str
) -> str:
    """Add one finished unit to the outcome (log file included); its progress line."""
    outcome.provenance["output_enforcement"] = enforcement
    outcome.provenance["gpus"] = run.details.get("gpu_report", "none")
    outcome.container_runs.append(run)
    _write_log(outcome.run_dir, run)
    outcome.predictions.update(got.predictions)
    outcome.unsafe |= got.unsafe
    outcome.rejected += got.rejected
    for case_id, why in got.errors.items():
        # A failed run explains missing outputs better than "no output file".
        outcome.case_errors[case_id] = f"{run.reason}; {why}" if not run.ok else why
    if unit.layout == "gc":
        return f"{unit.label}: {_status(run)}"
    count = f"{len(got.predictions)} predictions, {_status(run)}"
    return count if unit.label == "split" else f"{unit.label}: {count}"


def finish_outcome(outcome: RunOutcome, start: float) -> RunOutcome:
    """Record the time and write ``container.json``."""
    outcome.seconds = time.perf_counter() - start
    path = outcome.run_dir / "container.json"
    path.write_text(json.dumps(outcome.to_json(), indent=1, default=str))
    return outcome


def first_tick(units: Sequence[Unit], n_cases: int) -> tuple[int, str]:
    """The progress total and the first line: nothing per case, one line per container."""
    if units and units[0].layout == "gc":
        return len(units), ""
    many = "one container" if len(units) == 1 else f"{len(units)} containers"
    return len(units), f"{many} for {n_cases} cases"


def scratch_for(
    tmp: Path, unit: Unit, *, token: str, user: tuple[int, int]
) -> contextlib.AbstractContextManager[Scratch]:
    """The scratch folder of one unit under ``tmp``, its ``/output`` capped as the unit says."""
    uid, gid = user
    return open_scratch(
        tmp, token=token, cap_bytes=unit.box_bytes, max_files=unit.max_files, uid=uid, gid=gid
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
    labels: Mapping[str, str] | None = None,
) -> ContainerRun:
    """One container run in ``box``; a full output file system turns into ``output_cap``."""
    ours = {
        **(labels or {}),
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
        labels=ours,
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
