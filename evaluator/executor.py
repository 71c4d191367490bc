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
:func:`run_jobs_dask` sends the same jobs to a Dask cluster: an existing one, or with
``--scheduler local`` one that :func:`dask_scheduler` starts on this machine for one call. A Dask
worker has no hard memory cap (its nanny restarts a worker past ``memory_limit``, and the job is
retried) and no time limit per job, so the local pool stays the default. :func:`execute` picks
one of the two for the callers.

Several workers share the machine's CPUs: each worker caps the thread pools of SimpleITK (ITK),
OpenMP and BLAS at its share (:func:`threads_per_worker`), so that K workers never start K times
the CPUs in threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from evaluator.errors import ExecutorError
from evaluator.processes import die_with_parent

__all__ = [
    "DEFAULT_LIMITS",
    "LOCAL_SCHEDULER",
    "JobFailure",
    "WorkerLimits",
    "connect_scheduler",
    "dask_scheduler",
    "default_memory_mb",
    "execute",
    "limit_threads",
    "run_jobs",
    "run_jobs_dask",
    "submit_windowed",
    "threads_per_worker",
]

J = TypeVar("J")
R = TypeVar("R")

#: The scoring code: imported by a local Dask cluster's workers when they start, so that their
#: first job does not pay a second of imports.
_SCORING_PRELOAD = ["evaluator.scoring", "evaluator.metrics.api", "evaluator.simulate.operators"]
#: Imported once by the fork server, so that a new worker starts in milliseconds: the scoring
#: code, and matplotlib for the figures a board draws in workers (1 s of imports otherwise).
_PRELOAD = [
    *_SCORING_PRELOAD,
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "matplotlib.backends.backend_svg",
]

#: The ``--scheduler`` value that starts a Dask cluster on this machine for one call.
LOCAL_SCHEDULER = "local"

#: Read by OpenMP, the BLAS libraries and ITK when they start their thread pools.
_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
)


def _cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """Threads one of ``workers`` worker processes may use: this machine's CPUs shared out.

    Parameters
    ----------
    workers
        Worker processes running at once (values below 1 count as 1).

    Returns
    -------
    int
        ``cpus // workers``, at least 1.

    Examples
    --------
    >>> threads_per_worker(10**6)
    1
    """
    return max(1, _cpus() // max(workers, 1))


def limit_threads(threads: int) -> None:
    """Cap the thread pools of SimpleITK (ITK), OpenMP and BLAS in this process at ``threads``.

    Sets ``OMP_NUM_THREADS`` and friends (read by libraries that start later), SimpleITK's
    global default number of threads (when SimpleITK is loaded) and, through threadpoolctl when
    it is installed, the pools of BLAS and OpenMP libraries that are already loaded. Meant for a
    worker process: it changes process-wide state.

    Parameters
    ----------
    threads
        Threads per pool, at least 1.
    """
    import sys

    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    sitk = sys.modules.get("SimpleITK")
    if sitk is not None:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)


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
    threads
        Threads of SimpleITK, OpenMP and BLAS in the worker (:func:`limit_threads`); None: the
        machine's CPUs shared by the workers (:func:`threads_per_worker`).
    """

    memory_mb: int | None = 4096
    time_s: float | None = 600.0
    threads: int | None = None


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
    if limits.threads is not None:
        limit_threads(limits.threads)
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
    def __init__(
        self, ctx: Any, limits: WorkerLimits, fn: Callable[[J], Any], *, wait: bool = True
    ) -> None:
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
        if wait:
            self.await_ready()

    def await_ready(self, timeout_s: float = 120.0) -> None:
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
        Memory cap, per-job time limit and threads of each worker (threads default to the
        machine's CPUs shared by the workers).
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
    count = max(1, min(workers, len(jobs)))
    if limits.threads is None:
        limits = dataclasses.replace(limits, threads=threads_per_worker(count))
    try:
        # started together, then awaited: K workers start in the time of one
        pool = [_Worker(ctx, limits, fn, wait=False) for _ in range(count)]
        for worker in pool:
            worker.await_ready()
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


#: What a scheduler address looks like: ``protocol://host:port``.
_ADDRESS = re.compile(r"[a-z][a-z0-9+]*://\[?[A-Za-z0-9.:_-]+\]?:[0-9]{1,5}")


def connect_scheduler(address: str, *, timeout_s: float | None = None) -> Any:
    """A Dask client of the scheduler at ``address`` (``tcp://host:port``).

    Parameters
    ----------
    address
        ``protocol://host:port``; anything else is refused before a connection is tried.
    timeout_s
        Seconds to wait for the scheduler [default: Dask's ``distributed.comm.timeouts.connect``,
        30 s].

    Raises
    ------
    ExecutorError
        ``address`` is not a scheduler address, or nothing that speaks Dask answers there
        in time.

    Examples
    --------
    >>> connect_scheduler("10.0.0.5")
    Traceback (most recent call last):
    ...
    evaluator.errors.ExecutorError: '10.0.0.5' is not a Dask scheduler address (protocol://host:port, e.g. tcp://10.0.0.5:8786, or 'local')
    """
    from distributed import Client

    from evaluator.textsafe import printable

    if not _ADDRESS.fullmatch(address):
        raise ExecutorError(
            f"'{printable(address, limit=100)}' is not a Dask scheduler address "
            "(protocol://host:port, e.g. tcp://10.0.0.5:8786, or 'local')"
        )
    try:
        if timeout_s is None:
            return Client(address, set_as_default=False)
        return Client(address, set_as_default=False, timeout=f"{timeout_s}s")
    except Exception as err:  # OSError, TimeoutError, or whatever a stranger on that port sends
        raise ExecutorError(
            f"cannot reach the Dask scheduler at {address}: "
            f"{printable(err, limit=300, oneline=True)}"
        ) from err


def submit_windowed(
    client: Any, jobs: Iterable[J], fn: Callable[[J], R], *, window: int, **options: Any
) -> Iterator[tuple[J, R | BaseException]]:
    """``fn(job)`` of each job on ``client``'s cluster, at most ``window`` of them in flight.

    ``jobs`` is consumed lazily (a job is built only when it is about to be sent), results come
    in completion order with their job, and a job that raised (on every try) comes with its
    exception (Dask's ``KilledWorker`` when its workers kept dying). Jobs still in flight are
    cancelled when the caller stops early. ``options`` go to ``client.submit`` (``resources``,
    ``retries``).
    """
    import warnings

    from distributed import as_completed

    source = iter(jobs)
    pending: dict[Any, tuple[Any, J]] = {}
    completed = as_completed([], loop=client.loop)

    def top_up() -> None:
        for job in source:
            with warnings.catch_warnings():  # a job may carry its inputs: large by design
                warnings.filterwarnings("ignore", "Sending large graph", UserWarning)
                future = client.submit(fn, job, pure=False, **options)
            pending[future.key] = (future, job)
            completed.add(future)
            if len(pending) >= window:
                return

    try:
        top_up()
        for future in completed:
            _, job = pending.pop(future.key)
            try:
                result: R | BaseException = future.result()
            except Exception as err:  # the job's own error, or KilledWorker
                result = err
            future.release()
            top_up()
            yield job, result
    finally:
        client.cancel([future for future, _ in pending.values()])


def run_jobs_dask(
    jobs: Sequence[J],
    fn: Callable[[J], R],
    *,
    scheduler: str,
    on_failure: Callable[[J, JobFailure], R] | None = None,
) -> Iterator[R]:
    """``fn(job)`` of every job on a Dask cluster, in completion order.

    The cluster's own limits apply there (a worker's ``memory_limit``: the nanny restarts a
    worker that exceeds it and the job is retried); at most twice the cluster's threads are in
    flight.

    Parameters
    ----------
    jobs, fn
        As for :func:`run_jobs`.
    scheduler
        The scheduler's address (``tcp://host:8786``).
    on_failure
        Turns a job whose workers kept dying (Dask's ``KilledWorker``, after the cluster's
        ``allowed-failures`` retries: a crash or the nanny's memory limit) into a result, as on
        the pool (kind ``crash``); None raises ``KilledWorker``.

    Raises
    ------
    ExecutorError
        The scheduler cannot be reached.
    """
    from distributed.scheduler import KilledWorker

    client = connect_scheduler(scheduler)
    try:
        window = max(2 * sum(client.nthreads().values()), 2)
        for job, outcome in submit_windowed(client, jobs, fn, window=window):
            if isinstance(outcome, KilledWorker) and on_failure is not None:
                why = f"the Dask workers running it kept dying (crash or memory limit): {outcome}"
                yield on_failure(job, JobFailure("crash", why))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                yield outcome
    finally:
        client.close()


@contextlib.contextmanager
def dask_scheduler(
    scheduler: str, *, workers: int | None = None, memory_mb: int | None = None
) -> Iterator[str]:
    """The address of a Dask scheduler for the duration of a ``with`` block.

    An address (``tcp://host:8786``) is given back as it is. :data:`LOCAL_SCHEDULER`
    (``"local"``) starts a ``distributed.LocalCluster`` on the loopback interface, without a
    dashboard, and closes it at the end of the block: ``workers`` worker processes of one thread
    each, a ``memory_limit`` per worker (the nanny restarts a worker past it: not a hard cap,
    unlike :func:`run_jobs`), the thread pools of SimpleITK, OpenMP and BLAS capped at the
    worker's share of the CPUs, and the scoring code imported before the first job.
    The environment of this process, which Dask's nanny changes, is restored at the end. Starting
    and closing it takes a few seconds (fresh interpreters), which the pool does not pay.

    Parameters
    ----------
    scheduler
        A scheduler address, or ``"local"``.
    workers
        Worker processes of the local cluster; default one per CPU.
    memory_mb
        ``memory_limit`` of each local worker, MiB; default :func:`default_memory_mb`.

    Yields
    ------
    str
        The scheduler's address.
    """
    if scheduler != LOCAL_SCHEDULER:
        yield scheduler
        return
    import logging

    from distributed import LocalCluster

    count = max(1, workers if workers is not None else _cpus())
    threads = str(threads_per_worker(count))
    env = {var: threads for var in _THREAD_VARS}
    saved = dict(os.environ)  # a nanny writes its workers' variables into its own process
    try:
        try:
            cluster = LocalCluster(
                n_workers=count,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                memory_limit=f"{memory_mb or default_memory_mb(count)}MiB",
                silence_logs=logging.ERROR,
                env=env,
                preload=_SCORING_PRELOAD,
            )
        except (OSError, RuntimeError) as err:
            raise ExecutorError(
                f"cannot start a local Dask cluster of {count} workers: {err}"
            ) from err
        with cluster:
            yield cluster.scheduler_address
    finally:
        _restore_environ(saved)


def _restore_environ(saved: dict[str, str]) -> None:
    """Put this process's environment back as it was (``saved``)."""
    for var in set(os.environ) - set(saved):
        del os.environ[var]
    os.environ.update(saved)


def execute(
    jobs: Sequence[J],
    fn: Callable[[J], R],
    *,
    workers: int | None,
    scheduler: str | None,
    on_failure: Callable[[J, JobFailure], R],
    memory_mb: int | None = None,
    time_s: float | None = 600.0,
) -> Iterator[R]:
    """``fn(job)`` of every job on the local pool (:func:`run_jobs`) or a Dask cluster.

    Parameters
    ----------
    jobs, fn, on_failure
        As for :func:`run_jobs`; on Dask a job whose worker dies is retried on a restarted
        worker, and ``on_failure`` gets it once the cluster gives up (:func:`run_jobs_dask`).
    workers
        Worker processes of the pool or of a local Dask cluster; default one per CPU (at most
        one per job).
    scheduler
        None for the pool; a Dask scheduler address, or ``"local"`` for a Dask cluster started
        on this machine for this call (:func:`dask_scheduler`).
    memory_mb
        Memory cap (pool, ``RLIMIT_AS``) or ``memory_limit`` (local Dask) of each worker, MiB;
        default :func:`default_memory_mb`.
    time_s
        Wall-clock limit per job on the pool, seconds (Dask has none); None for no limit.

    Yields
    ------
    R
        One result per job, in completion order.

    Examples
    --------
    >>> sorted(execute([1, -2], abs, workers=1, scheduler=None, on_failure=lambda j, f: 0))
    [1, 2]
    """
    if not jobs:
        return
    count = max(1, min(workers if workers is not None else _cpus(), len(jobs)))
    if scheduler:
        with dask_scheduler(scheduler, workers=count, memory_mb=memory_mb) as address:
            yield from run_jobs_dask(jobs, fn, scheduler=address, on_failure=on_failure)
        return
    limits = WorkerLimits(memory_mb=memory_mb or default_memory_mb(count), time_s=time_s)
    yield from run_jobs(jobs, fn, workers=count, limits=limits, on_failure=on_failure)
