"""``ccbench run --scheduler`` on Dask workers started as Slurm jobs (dask-jobqueue).

The cluster is a real one-node Slurm (Debian's slurmctld + slurmd + munge on loopback), set up by
``scripts/slurm-node.sh`` when none answers; the test is skipped, with the script's reason, only
when that fails (not root, no apt). Each worker is a Slurm job with its own scratch folder.
Oracle: the rows a local run of the same entry stores.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evaluator.workspace import Workspace

from .conftest import ROOT
from .test_distributed import local_and_remote

pytestmark = [pytest.mark.docker, pytest.mark.slurm]


@pytest.fixture(scope="module")
def slurm_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``ccbench cluster slurm --jobs 2``, as a user starts it: its scheduler's address and
    folder (``scratch/`` of the workers, ``logs/`` of the jobs)."""
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "slurm-node.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if proc.returncode != 0:
        pytest.skip(f"no Slurm node ({(proc.stderr.strip().splitlines() or ['?'])[-1]})")
    folder = tmp_path_factory.mktemp("slurm")
    address_file = folder / "address"
    command = [sys.executable, "-m", "evaluator.cli", "cluster", "slurm", "--jobs", "2"]
    command += ["--cores", "1", "--memory", "1GB", "--walltime", "00:10:00", "--host"]
    command += ["127.0.0.1", "--local-directory", str(folder / "scratch")]
    command += ["--log-directory", str(folder / "logs"), "--address-file", str(address_file)]
    with open(folder / "cluster.log", "w") as log:
        cluster = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while not address_file.exists():
            assert cluster.poll() is None, (folder / "cluster.log").read_text()
            if time.monotonic() > deadline:
                states = [line.split()[2:] for line in _jobs(reasons=True)]
                if states and all(state[0] == "PENDING" for state in states):
                    # Slurm itself never started the jobs (the node's resources or state)
                    pytest.skip(f"Slurm left the worker jobs pending: {states}")
                raise AssertionError(_diagnosis(folder))
            time.sleep(0.5)
        yield address_file.read_text().strip(), folder
    finally:
        cluster.send_signal(signal.SIGTERM)
        cluster.wait(timeout=60)
    text = (folder / "cluster.log").read_text()
    assert "cluster stopped, jobs cancelled" in text, text
    assert not _jobs(), "the worker jobs outlived the cluster"


def _diagnosis(folder: Path) -> str:
    """Why no worker came: the jobs and their reasons, the node, the logs' last lines."""
    lines = ["no Slurm workers within 3 minutes"]
    for command in (["squeue", "-h", "-o", "%i %j %T %R"], ["sinfo", "-h", "-o", "%n %t %E"]):
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        lines += [" ".join(command), run.stdout + run.stderr]
    logs = [folder / "cluster.log", *sorted((folder / "logs").glob("*"))]
    logs.append(Path("/var/log/slurm/slurmd.log"))
    for log in logs:
        if log.is_file():
            lines += [f"--- {log}", *log.read_text(errors="replace").splitlines()[-15:]]
    return "\n".join(lines)


def _jobs(*, reasons: bool = False) -> list[str]:
    """This user's Slurm jobs (``squeue``): id, name, state (and Slurm's reason)."""
    listing = subprocess.run(
        ["squeue", "-h", "-o", "%i %j %T %R" if reasons else "%i %j %T"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in listing.stdout.splitlines() if line.strip()]


def test_slurm_workers_store_exactly_the_rows_of_a_local_run(
    tmp_path: Path,
    workspace: Workspace,
    docker_backend: Any,
    test_images: dict[str, str],
    slurm_address: tuple[str, Path],
) -> None:
    _, remote = local_and_remote(tmp_path, workspace, docker_backend, slurm_address[0])
    # the containers ran in the two workers, each a running Slurm job
    assert sum("RUNNING" in line for line in _jobs()) == 2, _jobs()
    workers = {r.details["worker"] for r in remote.container_runs}
    assert len(workers) == 2
    scratch = slurm_address[1] / "scratch"
    assert all(Path(r.details["scratch"]).is_relative_to(scratch) for r in remote.container_runs)
