"""``ccbench run --scheduler``: the containers of a run fanned out to Dask workers.

The coordinating process (the one running ``ccbench run``) plans the same units as a local run
(:func:`evaluator.runner.run.plan_units`: one per case for the grand-challenge interface, one per
shard of cases for the batch interface), stages each unit's ``/input`` and sends it with the
job; a worker runs the container on its own host's Docker engine with the same sandbox, scratch
folder and output checks as a local run, and returns the collected predictions as bytes. The
coordinator checks what came back (only the unit's own cases, only ``<case><ext>`` or the
instance task's results file, within the size cap), writes it into the run folder and scores it
with the local evaluation path; only the coordinator writes the store.

* **No shared folder is assumed.** A job carries its inputs (``staging="transfer"``, the
  default) or, with ``staging="shared"``, the path of a folder staged on a file system every
  worker mounts at the same path; either way the worker copies them into its own scratch folder
  (under the Dask worker's ``local_directory``).
* **A worker that dies mid-job costs a retry, never a row.** Dask gives the job of a lost worker
  to another one (up to ``distributed.scheduler.allowed-failures`` times); a result is absorbed
  once, and the store is written after the containers, by the coordinator.
* **The cluster's faults are never charged to the entry.** Before the first job every worker
  must show the entry's image with its digest; a job that still fails on every try (its workers
  keep dying, Docker stops answering) stops the run with an :class:`ExecutorError` and nothing is
  stored. What the container does is judged as in a local run, except that one job sends back
  at most :data:`MAX_RESULT_BYTES` of predictions.
* **An interrupted run leaves no container running**: every container carries the run's token
  (:data:`COORDINATOR_LABEL`), and a run that stops early removes them on every worker.
* **GPUs are Dask resources.** Start GPU workers with ``dask worker ADDRESS --resources GPU=1``;
  an entry with ``gpus: all`` or a count asks for that many GPU units per job (so a worker with
  one GPU runs one job at a time), ``gpus: auto`` asks for one when the cluster declares GPUs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evaluator.choices import BackendName, Staging
from evaluator.datasets.registry import TaskSpec
from evaluator.errors import ExecutorError, SubmissionError
from evaluator.executor import connect_scheduler, submit_windowed
from evaluator.processes import current_owner
from evaluator.prompts.contract import Prompt
from evaluator.runner.contract import (
    ContainerRun,
    Manifest,
    SandboxLimits,
    container_user,
    gc_slugs,
)
from evaluator.runner.outputs import (
    INSTANCES_OUTPUT,
    OUTPUT_EXTENSIONS,
    CollectedOutputs,
    reap_scratch,
    remove_scratch,
    walk_tree,
)
from evaluator.runner.units import (
    Backend,
    RunOutcome,
    Unit,
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
from evaluator.textsafe import printable
from evaluator.typing import ProgressHook
from evaluator.workspace import Workspace

__all__ = [
    "COORDINATOR_LABEL",
    "MAX_RESULT_BYTES",
    "MAX_SHARD",
    "InputBundle",
    "RemoteResult",
    "RemoteUnit",
    "Staging",
    "accept_result",
    "check_worker",
    "job_resources",
    "run_cases_dask",
    "run_unit",
    "stop_containers",
    "worker_scratch",
]

#: A staged ``/input`` larger than this is refused with ``staging="transfer"`` (use a shared
#: file system or smaller shards): the job travels through the scheduler's memory.
MAX_TRANSFER_BYTES = 4 * 2**30
#: The most prediction bytes one job sends back; a case past it gets an error (a local run
#: has no such bound: a shard of at most :data:`MAX_SHARD` cases of real segmentations is far
#: below it). Bounds the memory of the worker, the scheduler and the coordinator per job.
MAX_RESULT_BYTES = 2**30
#: Default cases per batch-interface job on a cluster: at most this many, and at least two
#: jobs per worker thread where the split allows.
MAX_SHARD = 8
#: Label of every container of a distributed run: the coordinator's token, so that an
#: interrupted run can remove its containers on every worker.
COORDINATOR_LABEL = "ccbench.coordinator"


@dataclass(frozen=True)
class InputBundle:
    """A unit's staged ``/input``: its files as bytes, or a folder on a shared file system.

    Attributes
    ----------
    files
        ``(relative POSIX path, bytes)`` of every file (``transfer``).
    folder
        The staged folder, readable at this path on every worker (``shared``).
    """

    files: tuple[tuple[str, bytes], ...] = ()
    folder: str | None = None

    @classmethod
    def pack(cls, folder: Path, staging: Staging) -> InputBundle:
        """Bundle the harness-staged ``folder`` (regular files and folders only)."""
        if staging == "shared":
            return cls(folder=str(folder))
        files, total = [], 0
        for entry, st in walk_tree(folder):
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
                if total > MAX_TRANSFER_BYTES:
                    raise SubmissionError(
                        f"the staged inputs of one job exceed {MAX_TRANSFER_BYTES / 2**30:.0f} "
                        "GiB: use --staging shared (a folder every worker mounts) or smaller "
                        "shards (--shard-size)"
                    )
                path = Path(entry.path)
                files.append((path.relative_to(folder).as_posix(), path.read_bytes()))
        return cls(files=tuple(sorted(files)))

    def materialise(self, input_dir: Path) -> None:
        """Write the inputs into ``input_dir`` (world-readable, as the container's user needs).

        Raises
        ------
        ExecutorError
            A path that is absolute, climbs out of ``input_dir`` or names a missing shared
            folder.
        """
        files: Iterable[tuple[str, bytes]] = self.files
        if self.folder is not None:
            source = Path(self.folder)
            if not source.is_dir():
                raise ExecutorError(
                    f"staged inputs {self.folder} are not visible on worker {socket.gethostname()}"
                    " (--staging shared needs a folder every worker mounts at the same path)"
                )
            files = (  # one file in memory at a time
                (Path(e.path).relative_to(source).as_posix(), Path(e.path).read_bytes())
                for e, st in walk_tree(source)
                if stat.S_ISREG(st.st_mode)
            )
        for rel, data in files:
            parts = rel.split("/")
            if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
                raise ExecutorError(f"refusing staged input path {printable(rel, limit=200)!r}")
            path = input_dir.joinpath(*parts)
            for parent in reversed(path.relative_to(input_dir).parents[:-1]):
                folder = input_dir / parent
                if not folder.is_dir():
                    folder.mkdir()
                    folder.chmod(0o755)
            path.write_bytes(data)
            path.chmod(0o644)


@dataclass(frozen=True)
class RemoteUnit:
    """One job of a distributed run: what a worker needs to run one unit."""

    manifest: Manifest
    backend: BackendName
    unit: Unit
    inputs: InputBundle
    run_token: str = ""


@dataclass
class RemoteResult:
    """What a worker sends back for one unit.

    Attributes
    ----------
    run
        The container run (its log bounded as in a local run).
    predictions
        Case id -> file name in ``files``.
    files
        File name -> bytes of every collected prediction file.
    errors, unsafe, rejected
        As :class:`~evaluator.runner.outputs.CollectedOutputs`.
    enforcement
        ``tmpfs`` or ``polling`` (how the output caps were enforced on that worker).
    provenance
        The worker's backend provenance (image digest as found on its engine).
    host, scratch
        The worker's host name and scratch folder (removed when the job ended).
    """

    run: ContainerRun
    predictions: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    unsafe: set[str] = field(default_factory=set)
    rejected: list[str] = field(default_factory=list)
    enforcement: str = "polling"
    provenance: dict[str, Any] = field(default_factory=dict)
    host: str = ""
    scratch: str = ""


# --------------------------------------------------------------------------------------------
# the worker side
# --------------------------------------------------------------------------------------------

_BACKENDS: dict[str, Backend] = {}


def _worker_backend(name: BackendName) -> Backend:
    """This worker process's backend, connected once."""
    if name not in _BACKENDS:
        _BACKENDS[name] = make_backend(name)
    return _BACKENDS[name]


def _current_worker() -> Any:
    """The Dask worker running this code, or None outside one."""
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def worker_scratch() -> Path:
    """The scratch space of this Dask worker (its ``local_directory``), or of this process."""
    worker = _current_worker()
    if worker is None:
        return Path(tempfile.gettempdir()) / f"ccbench-worker-{os.getpid()}" / "ccbench-tmp"
    return Path(worker.local_directory) / "ccbench-tmp"


def _bounded_files(got: CollectedOutputs) -> dict[str, bytes]:
    """The collected prediction files as bytes, at most :data:`MAX_RESULT_BYTES` in total.

    Cases past the bound lose their prediction and get an error instead (in case order).
    """
    files: dict[str, bytes] = {}
    total = 0
    for _case, path in sorted(got.predictions.items()):
        if path.name in files:
            continue  # an instance task: every case maps to the one results file
        size = path.stat().st_size
        if total + size > MAX_RESULT_BYTES:
            for other, same in list(got.predictions.items()):
                if same == path:
                    del got.predictions[other]
                    got.errors[other] = (
                        f"outputs of this job exceed {MAX_RESULT_BYTES / 2**30:.0f} GiB in total, "
                        "the most a cluster job sends back (a smaller --shard-size sends less)"
                    )
            continue
        total += size
        files[path.name] = path.read_bytes()
    return files


def _stop_event(run_token: str) -> str:
    """The name of the Dask event a coordinator sets when its run stops early."""
    return f"ccbench-stop-{run_token}"


def _stopped(run_token: str) -> bool:
    """Whether the coordinator of ``run_token`` has stopped (checked before a container)."""
    if not run_token:
        return False
    try:
        from distributed import Event

        return bool(Event(_stop_event(run_token)).is_set())
    except (ImportError, ValueError):  # not on a Dask worker
        return False


def stop_containers(run_token: str) -> int:
    """Remove this host's containers of a distributed run (called on every worker when the
    coordinator stops early); the number removed."""
    backend = _BACKENDS.get("docker")
    if backend is None or not run_token:
        return 0
    from evaluator.runner.docker_backend import labelled_containers

    removed = 0
    for container in labelled_containers(
        backend.client,  # type: ignore[attr-defined]
        f"{COORDINATOR_LABEL}={run_token}",
    ):
        with contextlib.suppress(Exception):
            container.remove(force=True)
            removed += 1
    return removed


def check_worker(manifest: Manifest, backend: BackendName) -> str | None:
    """Whether this worker can run ``manifest`` (image with its digest present): None, or why
    not (called on every worker before a run's first job)."""
    try:
        _worker_backend(backend).provenance(manifest)
    except Exception as err:  # reported per worker by the coordinator
        return printable(str(err), limit=300, oneline=True)
    return None


def run_unit(job: RemoteUnit) -> RemoteResult:
    """Run one unit on this host (called on a Dask worker); the same sandbox as a local run.

    The worker checks that its engine has the entry's image with the submitted digest, removes
    orphans of earlier jobs whose process is gone, and keeps a watchdog that removes this job's
    container should the worker die.

    Raises
    ------
    SubmissionError
        The image is missing here or has another digest; the entry requires GPUs this host
        lacks.
    """
    if _stopped(job.run_token):
        raise ExecutorError("the run was stopped before this job started")
    backend = _worker_backend(job.backend)
    manifest = job.manifest
    provenance = backend.provenance(manifest)
    check = getattr(backend, "check_requirements", None)
    if check is not None:
        check(manifest)
    tmp = worker_scratch()
    tmp.mkdir(parents=True, exist_ok=True)
    reap = getattr(backend, "reap", None)
    if reap is not None:
        reap()
    reap_scratch(tmp)
    token = uuid.uuid4().hex[:16]  # per attempt: a dead attempt's watchdog removes only its own
    user_for = getattr(backend, "user_for", None)
    user = user_for(manifest) if user_for is not None else container_user()
    guard = getattr(backend, "guard", None)
    with (
        guard(token, tmp) if guard is not None else contextlib.nullcontext(),
        scratch_for(tmp, job.unit, token=token, user=user) as box,
    ):
        job.inputs.materialise(box.input_dir)
        dest = box.root / "collected"
        dest.mkdir()
        labels = {COORDINATOR_LABEL: job.run_token}
        run, got = contain(
            backend, manifest, job.unit, box, token=token, user=user, dest=dest, labels=labels
        )
        files = _bounded_files(got)
        worker = _current_worker()
        run.details.update(
            worker=str(worker.address) if worker is not None else "",
            scratch=str(box.root),
            pid=os.getpid(),
        )
        return RemoteResult(
            run=run,
            predictions={cid: p.name for cid, p in got.predictions.items()},
            files=files,
            errors=got.errors,
            unsafe=got.unsafe,
            rejected=got.rejected,
            enforcement=box.enforcement,
            provenance=provenance,
            host=socket.gethostname(),
            scratch=str(box.root),
        )


# --------------------------------------------------------------------------------------------
# the coordinator side
# --------------------------------------------------------------------------------------------


def job_resources(manifest: Manifest, workers: Mapping[str, Any]) -> dict[str, float] | None:
    """The Dask resources one job of ``manifest`` asks for, given the cluster's workers.

    Parameters
    ----------
    manifest
        The entry (``resources.gpus``).
    workers
        ``client.scheduler_info()["workers"]``: address -> info with ``resources``.

    Raises
    ------
    SubmissionError
        The entry requires GPUs and no worker declares any (it would wait forever).

    Examples
    --------
    >>> from evaluator.runner.contract import Resources
    >>> m = Manifest(name="m", image="i", image_digest="sha256:" + "0" * 64, tasks=("btcv",),
    ...              resources=Resources(gpus=1))
    >>> job_resources(m, {"tcp://a:1": {"resources": {"GPU": 1}}})
    {'GPU': 1.0}
    >>> job_resources(m.model_copy(update={"resources": Resources(gpus="auto")}), {})
    """
    gpus = manifest.resources.gpus
    declared = any("GPU" in (info.get("resources") or {}) for info in workers.values())
    if gpus == "never" or (gpus == "auto" and not declared):
        return None
    if not declared and gpus != "auto":
        raise SubmissionError(
            f"entry {manifest.name} requires GPUs (gpus: {gpus}) and no worker of the cluster "
            "declares any: start GPU workers with `dask worker ADDRESS --resources GPU=1`"
        )
    return {"GPU": float(1 if gpus in ("auto", "all") else gpus)}


def _safe_file_name(name: str, unit: Unit) -> bool:
    """Whether a returned file name is one a unit may produce."""
    if unit.layout == "instances":
        return name == INSTANCES_OUTPUT
    return any(name == f"{cid}{ext}" for cid in unit.case_ids for ext in OUTPUT_EXTENSIONS)


def accept_result(unit: Unit, result: Any, predictions_dir: Path) -> CollectedOutputs:
    """Check what a worker returned for ``unit`` and write its files into ``predictions_dir``.

    Only the unit's own cases, file names a local run could have produced and files within the
    unit's size cap are accepted; anything else fails the unit's cases (a worker is the
    organiser's, but the bytes it relays came out of a container).

    Raises
    ------
    ExecutorError
        The result is not a :class:`RemoteResult` or breaks one of the rules above.
    """
    if not isinstance(result, RemoteResult) or not isinstance(result.run, ContainerRun):
        raise ExecutorError(f"worker returned {type(result).__name__}, not a result")
    cases = set(unit.case_ids)
    claimed = set(result.predictions) | set(result.errors) | set(result.unsafe)
    if not claimed <= cases:
        raise ExecutorError("worker returned cases of another job")
    names = set(result.predictions.values())
    if names != set(result.files):
        raise ExecutorError("worker returned files that no prediction names")
    got = CollectedOutputs(
        errors=dict(result.errors), unsafe=set(result.unsafe), rejected=list(result.rejected)
    )
    for name, data in sorted(result.files.items()):
        if not isinstance(data, bytes) or not _safe_file_name(name, unit):
            raise ExecutorError(f"worker returned a file named {printable(name, limit=100)!r}")
        if len(data) > unit.file_bytes:
            raise ExecutorError(f"worker returned {name} above the output file cap")
    predictions_dir.mkdir(parents=True, exist_ok=True)
    for name, data in sorted(result.files.items()):
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        fd = os.open(predictions_dir / name, flags, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    for case_id, name in result.predictions.items():
        got.predictions[case_id] = predictions_dir / name
    return got


def run_cases_dask(
    manifest: Manifest,
    cases: Sequence[Any],
    *,
    task: TaskSpec,
    run_dir: Path,
    scheduler: str,
    workspace: Workspace,
    backend: BackendName = "docker",
    split: str = "custom",
    limits: SandboxLimits | None = None,
    progress: ProgressHook | None = None,
    shard_size: int | None = None,
    staging: Staging = "transfer",
    retries: int = 1,
    prompts: Mapping[str, Prompt] | None = None,
) -> RunOutcome:
    """Run an entry on the given cases through a Dask cluster; collect the outputs here.

    Parameters
    ----------
    manifest, cases, task, run_dir, workspace, split, limits, progress, prompts
        As :func:`evaluator.runner.run.run_cases`.
    scheduler
        The Dask scheduler's address (``tcp://host:8786``).
    backend
        What each worker runs the container with (``docker`` on its own engine; ``local`` for
        development).
    shard_size
        Batch interface: cases per container [default: the split shared into at least two jobs
        per worker thread, at most :data:`MAX_SHARD` cases each].
    staging
        ``transfer`` (the job carries its inputs) or ``shared`` (the job names a folder under
        the workspace, which every worker must see at the same path).
    retries
        Extra tries of a job that raised on a worker (a lost worker's job is retried by Dask
        itself); a job that fails every try stops the run.

    Returns
    -------
    RunOutcome
        As a local run; ``provenance`` adds the scheduler and the hosts that ran containers.

    Raises
    ------
    ExecutorError
        The scheduler cannot be reached, a worker lacks the image, or a job failed on every
        try (nothing is stored).
    SubmissionError
        As a local run; or the entry requires GPUs that no worker declares.
    """
    manifest, outcome = start_outcome(
        manifest, cases, task=task, run_dir=run_dir, split=split, limits=limits
    )
    slugs = gc_slugs(manifest, task) if manifest.interface == "grand-challenge" else None
    client = connect_scheduler(scheduler)
    run_token = uuid.uuid4().hex[:16]
    finished = False
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        resources = job_resources(manifest, workers)
        _check_workers(client, manifest, backend)
        threads = max(sum(client.nthreads().values()), 1)
        if shard_size is None:
            shard_size = max(1, min(MAX_SHARD, math.ceil(len(cases) / (2 * threads))))
        units = plan_units(manifest, outcome.case_ids, task=task, shard_size=shard_size)
        outcome.provenance = {
            "backend": backend,
            "image": manifest.image,
            "image_digest": manifest.image_digest,
            "scheduler": scheduler,
            "staging": staging,
        }
        (run_dir / "predictions").mkdir(parents=True, exist_ok=True)
        by_id = {c.case_id: c for c in cases}
        start = time.perf_counter()
        tick = progress or (lambda done, total, status: None)
        total, first = first_tick(units, len(cases))
        tick(0, total, first)
        hosts: set[str] = set()
        with _staged(workspace.tmp, staging) as stage_dir:
            done = 0

            def step(status: str) -> None:
                nonlocal done
                done += 1
                tick(done, total, status)

            jobs = _jobs(
                units, by_id, stage_dir, task, slugs, outcome, manifest, backend, staging,
                run_token, on_unreadable=lambda unit: step(f"{unit.label}: input unreadable"),
                prompts=prompts,
            )  # fmt: skip
            for job, result in submit_windowed(
                client, jobs, run_unit, window=2 * threads, resources=resources, retries=retries
            ):
                unit = job.unit
                if isinstance(result, BaseException):  # the cluster's fault, not the entry's
                    raise ExecutorError(
                        f"job {unit.label} could not run on the cluster at {scheduler}: "
                        f"{printable(result, limit=500, oneline=True)}; the run stops and "
                        "nothing is stored"
                    ) from result
                try:
                    got = accept_result(unit, result, run_dir / "predictions")
                except ExecutorError as err:
                    raise ExecutorError(
                        f"job {unit.label}: {err}; the run stops and nothing is stored"
                    ) from err
                _check_digest(manifest, result.provenance, result.host)
                hosts.add(printable(result.host, limit=100, oneline=True))
                run = replace(result.run, label=unit.label)  # never a name from the worker
                step(absorb_unit(outcome, unit, run, got, result.enforcement))
        order = {u.label: i for i, u in enumerate(units)}
        outcome.container_runs.sort(key=lambda r: order.get(r.label, len(order)))
        outcome.provenance["hosts"] = sorted(hosts)
        finished = True
        return finish_outcome(outcome, start)
    finally:
        if not finished:  # stopped early (an error, Ctrl-C): no container of ours goes on
            with contextlib.suppress(Exception):
                from distributed import Event

                Event(_stop_event(run_token), client=client).set()  # jobs not yet started
                client.run(stop_containers, run_token)  # containers running now
        client.close()


def _check_workers(client: Any, manifest: Manifest, backend: BackendName) -> None:
    """Every worker must have the entry's image (with its digest) before anything is sent.

    Raises
    ------
    ExecutorError
        No worker, or a worker that cannot run the entry (listed with why).
    """
    replies = client.run(check_worker, manifest, backend)
    if not replies:
        raise ExecutorError("the Dask cluster has no workers")
    faults = {addr: why for addr, why in replies.items() if why}
    if faults:
        listed = "; ".join(f"{printable(a, limit=80)}: {why}" for a, why in sorted(faults.items()))
        raise ExecutorError(
            f"{len(faults)} of {len(replies)} workers cannot run entry {manifest.name} "
            f"({listed}); nothing was run"
        )


def _check_digest(manifest: Manifest, provenance: Mapping[str, Any], host: str) -> None:
    """A worker that ran another image than the submitted one fails the whole run."""
    digest = provenance.get("image_digest")
    if digest is not None and digest != manifest.image_digest:
        raise SubmissionError(
            f"worker {printable(host, limit=100)} ran image {digest}, not the submitted "
            f"{manifest.image_digest}"
        )


@contextlib.contextmanager
def _staged(tmp: Path, staging: Staging) -> Iterator[Path]:
    """A folder for the staged inputs (under the workspace: ``shared`` needs it visible)."""
    tmp.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:16]
    root = tmp / f"run-{token}-stage"
    root.mkdir(mode=0o755)  # owned as a scratch folder: reaped if this process dies
    (root / "owner.json").write_text(json.dumps({"owner": str(current_owner()), "token": token}))
    try:
        yield root
    finally:
        remove_scratch(root)


def _jobs(
    units: Sequence[Unit],
    by_id: Mapping[str, Any],
    stage_dir: Path,
    task: TaskSpec,
    slugs: Any,
    outcome: RunOutcome,
    manifest: Manifest,
    backend: BackendName,
    staging: Staging,
    run_token: str = "",
    on_unreadable: Callable[[Unit], None] = lambda unit: None,
    prompts: Mapping[str, Prompt] | None = None,
) -> Iterator[RemoteUnit]:
    """Stage each unit when it is about to be sent (a window at a time, not the whole split).

    A grand-challenge unit whose input cannot be read (the dataset's fault, recorded in
    ``outcome.dataset_errors``) has no job: it goes to ``on_unreadable``.
    """
    for planned in units:
        folder = stage_dir / planned.label
        folder.mkdir(mode=0o755)
        unit = stage_unit(
            planned,
            by_id,
            folder,
            task=task,
            slugs=slugs,
            skipped=outcome.dataset_errors,
            prompts=prompts,
        )
        if unit.layout == "gc" and not unit.case_ids:
            on_unreadable(unit)
            continue
        bundle = InputBundle.pack(folder, staging)
        if staging == "transfer":
            remove_scratch(folder)
        yield RemoteUnit(manifest, backend, unit, bundle, run_token)
