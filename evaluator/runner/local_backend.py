"""The local development backend: an entry's command as a plain subprocess (no sandbox).

For development only, where no Docker engine can be had. The same ``/input`` and ``/output``
layout is staged in host folders; the process gets their paths in ``CCBENCH_INPUT`` and
``CCBENCH_OUTPUT``, and ``{input}``, ``{output}`` and ``{python}`` (this interpreter) in the
entry's ``command`` are replaced. The wall-clock limit and the output cap are enforced (the whole
process group is killed); memory, network and file-system isolation are not.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evaluator.errors import SubmissionError
from evaluator.processes import die_with_parent
from evaluator.runner.contract import (
    ContainerRun,
    Manifest,
    RunStatus,
    finished_run,
    supervise,
    truncate_log,
)

__all__ = ["LocalBackend", "local_command"]

_POLL_S = 0.05


def local_command(manifest: Manifest, *, input_dir: Path, output_dir: Path) -> list[str]:
    """The entry's command with ``{input}``, ``{output}`` and ``{python}`` replaced.

    Examples
    --------
    >>> m = Manifest(name="x", image="x", image_digest="sha256:" + "0" * 64, tasks=("t",),
    ...              command=("{python}", "run.py", "--out", "{output}"))
    >>> local_command(m, input_dir=Path("/i"), output_dir=Path("/o"))[1:]
    ['run.py', '--out', '/o']
    """
    if not manifest.command:
        raise SubmissionError(
            f"entry {manifest.name} has no `command:`; the local backend needs one "
            '(e.g. ["{python}", "baselines/threshold/predict.py"])'
        )
    values = {"input": str(input_dir), "output": str(output_dir), "python": sys.executable}
    return [part.format(**values) for part in manifest.command]


class LocalBackend:
    """Run an entry's command as a subprocess of the harness (development only)."""

    name = "local"

    def provenance(self, manifest: Manifest) -> dict[str, Any]:
        """What ran: the command, marked as unsandboxed."""
        return {
            "backend": self.name,
            "image": manifest.image,
            "image_digest": manifest.image_digest,
            "command": list(manifest.command or ()),
            "sandboxed": False,
        }

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
        """Run the command once; same contract as :meth:`DockerBackend.run`.

        The process gets ``SIGKILL`` from the kernel if the harness dies (``labels`` are not
        used: there is no container to label).
        """
        cmd = local_command(manifest, input_dir=input_dir, output_dir=output_dir)
        threads = str(max(1, math.ceil(manifest.resources.cpus)))
        env = {
            **os.environ,
            "CCBENCH_INPUT": str(input_dir),
            "CCBENCH_OUTPUT": str(output_dir),
            "OMP_NUM_THREADS": threads,
        }
        start = time.perf_counter()
        with tempfile.TemporaryFile() as log_file:
            try:
                proc = subprocess.Popen(
                    cmd,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
            except OSError as err:
                return ContainerRun(
                    label, "error", f"command could not be started: {err}", None, 0.0, str(err)
                )
            status: RunStatus
            try:
                status, exit_code = supervise(
                    lambda t: _wait_once(proc, t),
                    lambda: _kill_group(proc),
                    output_dir=output_dir,
                    time_limit_s=time_limit_s,
                    output_cap_bytes=output_cap_bytes if poll_output else None,
                    poll_s=_POLL_S,
                )
            finally:
                if proc.poll() is None:
                    _kill_group(proc)
            seconds = time.perf_counter() - start
            log_file.seek(0)
            log = truncate_log(log_file.read().decode("utf-8", errors="replace"))
        return finished_run(
            label, status, exit_code, log=log, seconds=seconds, time_limit_s=time_limit_s
        )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _wait_once(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
