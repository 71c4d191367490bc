"""Dask clusters for ``ccbench run --scheduler``: Slurm jobs as workers (dask-jobqueue).

``ccbench cluster slurm`` starts a scheduler in its own process and asks Slurm for worker jobs
(``sbatch``); each job runs one Dask worker on its node, which runs the entry's containers on
that node's Docker engine. The command prints the scheduler's address and keeps the cluster
until it is stopped (Ctrl-C or SIGTERM), when the jobs are cancelled. Other clusters (a
``dask scheduler`` with ``dask worker`` processes, Kubernetes with dask-kubernetes) are used
with ``--scheduler`` directly; see ``docs/cluster.md``.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluator.errors import ExecutorError

__all__ = ["SlurmWorkers", "serve_until_stopped", "slurm_cluster"]


@dataclass(frozen=True)
class SlurmWorkers:
    """What each Slurm job of a cluster asks for and runs.

    Attributes
    ----------
    jobs
        Number of worker jobs (one Dask worker each).
    cores
        CPUs per job; the worker runs one container at a time (one thread), the CPUs are for
        the container (an entry's ``cpus``).
    memory
        Memory per job, e.g. ``16GB`` (Slurm's ``--mem``); the containers' memory comes from it.
    gpus
        GPUs per job (``--gres=gpu:N``), declared to Dask as the ``GPU`` resource so that a job
        of a GPU entry runs only on a worker with one free.
    queue, account, walltime
        Slurm's partition, account and time limit of each job.
    local_directory
        The workers' scratch space on their node (``$TMPDIR`` of the job when not given).
    log_directory
        Where the jobs' own logs go.
    extra
        Further ``#SBATCH`` directives, e.g. ``--constraint=a100``.
    """

    jobs: int = 1
    cores: int = 4
    memory: str = "16GB"
    gpus: int = 0
    queue: str | None = None
    account: str | None = None
    walltime: str = "04:00:00"
    local_directory: str | None = None
    log_directory: str | None = None
    extra: tuple[str, ...] = ()


@contextlib.contextmanager
def slurm_cluster(spec: SlurmWorkers, *, host: str | None = None) -> Iterator[Any]:
    """A dask-jobqueue ``SLURMCluster`` with ``spec.jobs`` worker jobs; closed on exit.

    Parameters
    ----------
    spec
        The worker jobs.
    host
        The address the scheduler listens on (what the nodes reach it at) [default: this host's
        first interface].

    Raises
    ------
    ExecutorError
        dask-jobqueue is not installed, or ``sbatch`` is missing.
    """
    import shutil

    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as err:
        raise ExecutorError(
            "the Slurm cluster needs dask-jobqueue: pip install 'ccbench[cluster]'"
        ) from err
    if shutil.which("sbatch") is None:
        raise ExecutorError("no `sbatch` on this host: run this on a Slurm login node")
    worker_args = ["--nthreads", "1"]
    directives = [*spec.extra]
    if spec.gpus:
        worker_args += ["--resources", f"GPU={spec.gpus}"]
        directives.append(f"--gres=gpu:{spec.gpus}")
    options: dict[str, Any] = {"dashboard_address": None}
    if host is not None:
        options["host"] = host
    with SLURMCluster(
        cores=spec.cores,
        processes=1,
        memory=spec.memory,
        queue=spec.queue,
        account=spec.account,
        walltime=spec.walltime,
        python=sys.executable,
        local_directory=spec.local_directory or "${TMPDIR:-/tmp}",
        log_directory=spec.log_directory,
        worker_extra_args=worker_args,
        job_extra_directives=directives,
        scheduler_options=options,
    ) as cluster:
        cluster.scale(jobs=spec.jobs)
        yield cluster


def serve_until_stopped(cluster: Any, *, address_file: Path | None, wait_for: int) -> None:
    """Wait for ``wait_for`` workers, write the address to ``address_file``, then block.

    Returns on SIGINT or SIGTERM (the caller's ``with`` then cancels the jobs).
    """
    from distributed import Client

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with Client(cluster, set_as_default=False) as client:
        while len(client.scheduler_info(n_workers=-1)["workers"]) < wait_for:
            if stop.wait(1.0):
                return
    if address_file is not None:
        address_file.write_text(cluster.scheduler_address + "\n")
    stop.wait()
