"""Running jobs in worker processes under a memory cap and a per-job time limit.

Scoring reads untrusted predictions, so it never runs in the harness's own process: each worker
is a child process (started from a ``forkserver`` that has already imported the scoring code, so
a new worker costs milliseconds) whose address space is capped with ``RLIMIT_AS``. The
coordinator gives each job a deadline; a job that runs past it, or whose worker dies (a memory
cap reached inside C code, a crash), becomes a :class:`JobFailure` that the caller turns into a
named per-job error, and a fresh worker takes the next job. The other jobs go on.

Workers die with the coordinator: each one watches a lifeline pipe from it (and asks the kernel
for ``SIGKILL`` when its parent exits), so ``kill -9`` of ``ccbench evaluate`` leaves no worker
behind.

:func:`run_jobs` is used by ``ccbench evaluate``, ``ccbench run`` and the simulation studies;
:func:`run_jobs_dask` sends the same jobs to an existing Dask cluster.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from evaluator.errors import ExecutorError
from evaluator.processes import die_with_parent

__all__ = [
    "DEFAULT_LIMITS",
    "JobFailure",
    "WorkerLimits",
    "default_memory_mb",
    "run_jobs",
    "run_jobs_dask",
]

J = TypeVar("J")
R = TypeVar("R")

#: Imported once by the fork server, so that a new worker starts in milliseconds: the scoring
#: code, and matplotlib for the figures a board draws in workers (1 s of imports otherwise).
_PRELOAD = [
    "evaluator.scoring",
    "evaluator.metrics.api",
    "evaluator.simulate.operators",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "matplotlib.backends.backend_svg",
]


def default_memory_mb(workers: int = 1) -> int:
    """A memory cap per worker: three quarters of this machine's memory shared by the workers.

    Clipped to 2-16 GiB; 4 GiB when the machine's memory cannot be read.

    Examples
    --------
    >>> 2048 <= default_memory_mb(2) <= 16384
    True
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 4096
    share = int(0.75 * total / max(workers, 1) / 2**20)
    return max(2048, min(share, 16384))


@dataclass(frozen=True)
class WorkerLimits:
    """Limits of one worker process.

    Attributes
    ----------
    memory_mb
        Address-space cap of the worker (``RLIMIT_AS``), MiB; None for no cap.
    time_s
        Wall-clock limit per job, seconds; None for no limit.
    """

    memory_mb: int | None = 4096
    time_s: float | None = 600.0


#: Used when a caller gives none: 4 GiB and 10 minutes per job.
DEFAULT_LIMITS = WorkerLimits()


@dataclass(frozen=True)
class JobFailure:
    """Why a job produced no result.

    Attributes
    ----------
    kind
        ``memory`` (the worker ran out of its memory cap), ``time`` (past the per-job limit) or
        ``crash`` (the worker died, e.g. killed by a signal).
    message
        One line for people.
    """

    kind: Literal["memory", "time", "crash"]
    message: str


# --------------------------------------------------------------------------------------------
# the worker side
# --------------------------------------------------------------------------------------------


def _watch_lifeline(lifeline: Any) -> None:
    """Block on the coordinator's lifeline; its end (the coordinator died) ends this process."""
    with contextlib.suppress(BaseException):
        lifeline.recv()
    os._exit(70)


def _worker_main(conn: Any, lifeline: Any, limits: WorkerLimits, fn: Callable[[Any], Any]) -> None:
    import resource

    die_with_parent()
    threading.Thread(target=_watch_lifeline, args=(lifeline,), daemon=True).start()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.memory_mb is not None:
        cap = int(limits.memory_mb) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        start = time.monotonic()
        try:
            reply: tuple[str, Any] = ("ok", (fn(job), time.monotonic() - start))
        except MemoryError:
            reply = ("memory", "ran out of its memory cap (MemoryError)")
        except BaseException as err:  # shipped to the coordinator, which decides
            reply = ("raise", _portable(err))
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("memory", "ran out of its memory cap while sending its result"))
        except Exception as err:  # an unpicklable result
            conn.send(("raise", ExecutorError(f"cannot return the job's result: {err}")))


def _portable(err: BaseException) -> BaseException:
    """The exception itself when it pickles, else an ExecutorError carrying its traceback."""
    import pickle

    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        text = "".join(traceback.format_exception(err)).strip()
        return ExecutorError(f"{type(err).__name__}: {err}\n{text}")


# --------------------------------------------------------------------------------------------
# the coordinator side
# --------------------------------------------------------------------------------------------


def _context() -> Any:
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


class _Worker(Generic[J]):
    def __init__(self, ctx: Any, limits: WorkerLimits, fn: Callable[[J], Any]) -> None:
        self.conn, child_conn = ctx.Pipe()
        lifeline_child, self.lifeline = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_worker_main,
            args=(child_conn, lifeline_child, limits, fn),
            daemon=True,
            name="ccbench-worker",
        )
        self.process.start()
        child_conn.close()
        lifeline_child.close()
        self.job: J | None = None
        self.started = 0.0
        self._await_ready()

    def _await_ready(self, timeout_s: float = 120.0) -> None:
        """Wait for the worker's first message; a worker that cannot start is our problem,
        never a case's (it raises instead of failing jobs)."""
        reply: Any = None
        if self.conn.poll(timeout_s):
            with contextlib.suppress(EOFError, OSError):
                reply = self.conn.recv()
        if not (isinstance(reply, tuple) and reply and reply[0] == "ready"):
            self.stop(kill=True)
            raise ExecutorError(
                f"a scoring worker could not start (exit code {self.process.exitcode}); "
                "when ccbench is called from a Python script, guard the script's entry point "
                "with `if __name__ == '__main__':` (workers import the main module)"
            )

    def give(self, job: J) -> None:
        self.job = job
        self.started = time.monotonic()
        self.conn.send(job)

    def stop(self, *, kill: bool) -> None:
        if not kill:
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(None)
            self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        for conn in (self.conn, self.lifeline):
            with contextlib.suppress(OSError):
                conn.close()


def _death(process: Any) -> JobFailure:
    code = process.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        if -code == signal.SIGKILL:
            return JobFailure(
                "memory", f"the scoring worker was killed ({name}), most likely out of memory"
            )
        return JobFailure("crash", f"the scoring worker died ({name})")
    return JobFailure("crash", f"the scoring worker exited unexpectedly (code {code})")


def _too_slow(seconds: float, limits: WorkerLimits) -> bool:
    return limits.time_s is not None and seconds >= limits.time_s


def _time_failure(limits: WorkerLimits) -> JobFailure:
    return JobFailure("time", f"scoring took longer than the {limits.time_s:g} s limit per case")


def run_jobs(
    jobs: Sequence[J],
    fn: Callable[[J], R],
    *,
    workers: int,
    limits: WorkerLimits = DEFAULT_LIMITS,
    on_failure: Callable[[J, JobFailure], R],
) -> Iterator[R]:
    """``fn(job)`` of every job, in worker processes, in completion order.

    Parameters
    ----------
    jobs
        Picklable jobs.
    fn
        A module-level function (workers import it by name).
    workers
        Worker processes (at least 1, at most one per job).
    limits
        Memory cap and per-job time limit of each worker.
    on_failure
        Turns a job that ran out of memory or time, or whose worker died, into a result (e.g. a
        per-case error); called in the coordinating process.

    Yields
    ------
    R
        One result per job.

    Raises
    ------
    Exception
        Whatever ``fn`` raised (other than :class:`MemoryError`) is raised here, after every
        worker has been stopped.

    Examples
    --------
    >>> sorted(run_jobs([1, 2, 3], abs, workers=2, on_failure=lambda job, why: -1))
    [1, 2, 3]
    """
    from multiprocessing.connection import wait

    if not jobs:
        return
    ctx = _context()
    pending = list(reversed(jobs))
    pool: list[_Worker[J]] = []
    try:
        pool = [_Worker(ctx, limits, fn) for _ in range(max(1, min(workers, len(jobs))))]
        for worker in pool:
            if pending:
                worker.give(pending.pop())
        while any(w.job is not None for w in pool):
            busy = [w for w in pool if w.job is not None]
            timeout = None
            if limits.time_s is not None:
                now = time.monotonic()
                timeout = max(0.0, min(w.started + limits.time_s - now for w in busy))
            ready = set(wait([w.conn for w in busy], timeout=timeout))
            for index, worker in enumerate(pool):
                job = worker.job
                if job is None:
                    continue
                result: Any
                replace = False
                if worker.conn in ready:
                    try:
                        kind, payload = worker.conn.recv()
                    except (EOFError, OSError):
                        worker.process.join(timeout=5)
                        kind, payload = "died", _death(worker.process)
                    if kind == "ok" and _too_slow(payload[1], limits):
                        # finished, but past the limit (seen late while a worker was replaced)
                        result = on_failure(job, _time_failure(limits))
                    elif kind == "ok":
                        result = payload[0]
                    elif kind == "raise":
                        raise payload
                    elif kind == "memory":
                        result, replace = on_failure(job, JobFailure("memory", payload)), True
                    else:
                        result, replace = on_failure(job, payload), True
                elif _too_slow(time.monotonic() - worker.started, limits):
                    result, replace = on_failure(job, _time_failure(limits)), True
                else:
                    continue
                worker.job = None
                if replace:
                    worker.stop(kill=True)
                    worker = pool[index] = _Worker(ctx, limits, fn)
                if pending:
                    worker.give(pending.pop())
                yield result
    finally:
        for worker in pool:
            worker.stop(kill=worker.job is not None)


def run_jobs_dask(jobs: Sequence[J], fn: Callable[[J], R], *, scheduler: str) -> Iterator[R]:
    """``fn(job)`` of every job on an existing Dask cluster, in completion order.

    The cluster's own limits apply there (a worker's ``memory_limit``: the nanny restarts a
    worker that exceeds it and the job is retried); at most twice the cluster's threads are in
    flight.
    """
    from distributed import Client, as_completed

    try:
        client = Client(scheduler, set_as_default=False)
    except OSError as err:
        raise ExecutorError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from err
    try:
        window = max(2 * sum(client.nthreads().values()), 2)
        pending = list(reversed(jobs))
        first = [
            client.submit(fn, pending.pop(), pure=False) for _ in range(min(window, len(pending)))
        ]
        completed = as_completed(first, loop=client.loop)
        for future in completed:
            outcome = future.result()
            future.release()
            if pending:
                completed.add(client.submit(fn, pending.pop(), pure=False))
            yield outcome
    finally:
        client.close()
