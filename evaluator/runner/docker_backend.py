"""The Docker backend: one sandboxed container run, through the Docker SDK for Python.

Every run gets: ``--network none``, a read-only root file system, a size-capped ``/tmp`` tmpfs
(counted against the memory limit), ``--cap-drop ALL``, ``no-new-privileges``, a non-root user
(the harness's own uid, or uid 1000 when the harness runs as root), ``HOME=/tmp``, a memory limit
with no extra swap, a CPU share (``OMP_NUM_THREADS`` and friends set to match), a process-count
limit, a per-file size limit (``RLIMIT_FSIZE``) plus a watched total output size, a wall-clock
limit, read-only inputs and the requested ``/dev/shm`` size. GPUs are passed through when a trial
container with ``--gpus all`` starts (never required).

The container is started detached and waited for with a short timeout in a loop (the SDK raises a
``requests`` connection error, not a timeout error, when a wait runs out); on the deadline it is
killed with SIGKILL, so a main process that ignores SIGTERM is stopped on time. The container is
removed on every exit path, including Ctrl-C.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluator.errors import DockerUnavailableError, SubmissionError
from evaluator.runner.contract import (
    ContainerRun,
    Manifest,
    finished_run,
    supervise,
    truncate_log,
)

if TYPE_CHECKING:
    import docker

__all__ = ["UNPRIVILEGED_UID", "DockerBackend", "connect"]

#: uid:gid the container runs as when the harness itself is root.
UNPRIVILEGED_UID = 1000
_POLL_S = 0.25
_SIGXFSZ = 25
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def connect(timeout_s: float = 30.0) -> docker.DockerClient:
    """A Docker SDK client that answers, or :class:`DockerUnavailableError` saying what to do."""
    import docker

    try:
        client = docker.from_env(timeout=int(timeout_s))
        client.ping()
    except docker.errors.DockerException as err:
        raise DockerUnavailableError(
            f"no Docker engine answers ({err}); run `bash scripts/docker-engine.sh` (as root) "
            "to install and start one, or use `ccbench run --backend local` for development"
        ) from err
    return client


def _ids() -> tuple[int, int]:
    if os.getuid() == 0:
        return UNPRIVILEGED_UID, UNPRIVILEGED_UID
    return os.getuid(), os.getgid()


class DockerBackend:
    """Run entries in sandboxed Docker containers.

    Parameters
    ----------
    client
        A Docker SDK client [default: :func:`connect`].
    """

    name = "docker"

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self.client = client if client is not None else connect()
        self._gpu: bool | None = None

    # -- image --------------------------------------------------------------------------------

    def image_id(self, image: str) -> str:
        """The content id (``sha256:...``) of a local image; :class:`SubmissionError` if absent."""
        import docker

        try:
            return str(self.client.images.get(image).id)
        except docker.errors.ImageNotFound as err:
            raise SubmissionError(
                f"image '{image}' does not exist in the local Docker engine (build or load it first)"
            ) from err
        except docker.errors.APIError as err:
            raise DockerUnavailableError(f"cannot inspect image '{image}': {err}") from err

    def provenance(self, manifest: Manifest) -> dict[str, Any]:
        """Check that the entry's image still has its recorded digest; return provenance."""
        current = self.image_id(manifest.image_digest)
        if current != manifest.image_digest:
            raise SubmissionError(
                f"entry {manifest.name}: image digest {current} differs from the submitted "
                f"{manifest.image_digest}"
            )
        return {"backend": self.name, "image": manifest.image, "image_digest": current}

    def gpus_available(self, image: str) -> bool:
        """Whether ``--gpus all`` works here (tried once with a trial container, then cached)."""
        import docker

        if self._gpu is None:
            container = None
            try:
                container = self.client.containers.create(
                    image,
                    entrypoint=["true"],
                    network_mode="none",
                    device_requests=[docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])],
                )
                container.start()
                self._gpu = True
            except docker.errors.DockerException:
                self._gpu = False
            finally:
                if container is not None:
                    _remove(container)
        return self._gpu

    # -- run ----------------------------------------------------------------------------------

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
        """Run the entry's image once, sandboxed, and wait for it (at most ``time_limit_s``).

        Parameters
        ----------
        manifest
            The entry; its ``image_digest`` is what runs, with its ``command`` when given.
        input_dir, output_dir
            Host folders mounted at ``/input`` (read-only) and ``/output``.
        time_limit_s
            Wall-clock limit, seconds.
        output_cap_bytes
            Total size ``/output`` may reach (also the per-file limit); exceeding it kills the run.
        label
            ``"split"`` or the case id, used in the container name and the result.

        Returns
        -------
        ContainerRun
            Status ``ok``, ``exit``, ``timeout``, ``oom``, ``output_cap`` or ``error``; the
            container is gone when this returns.
        """
        import docker

        res = manifest.resources
        uid, gid = _ids()
        if os.getuid() == 0:
            os.chown(output_dir, uid, gid)
        output_dir.chmod(0o755)
        threads = str(max(1, math.ceil(res.cpus)))
        env = {"HOME": "/tmp", "TMPDIR": "/tmp", **dict.fromkeys(_THREAD_VARS, threads)}
        kwargs: dict[str, Any] = {
            "command": list(manifest.command) if manifest.command else None,
            "detach": True,
            "name": f"ccbench-{uuid.uuid4().hex[:12]}",
            "labels": {"ccbench.entry": manifest.name, "ccbench.label": label[:60]},
            "network_mode": "none",
            "read_only": True,
            "tmpfs": {"/tmp": f"rw,exec,nosuid,nodev,size={res.tmp_mb}m,mode=1777"},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "user": f"{uid}:{gid}",
            "environment": env,
            "mem_limit": f"{res.memory_mb}m",
            "memswap_limit": f"{res.memory_mb}m",
            "nano_cpus": int(min(res.cpus, os.cpu_count() or 1) * 1e9),
            "pids_limit": res.pids,
            "shm_size": f"{res.shm_mb}m",
            "ulimits": [
                docker.types.Ulimit(name="fsize", soft=output_cap_bytes, hard=output_cap_bytes),
                docker.types.Ulimit(name="core", soft=0, hard=0),
            ],
            "volumes": {
                str(input_dir): {"bind": "/input", "mode": "ro"},
                str(output_dir): {"bind": "/output", "mode": "rw"},
            },
        }
        if res.gpus == "auto" and self.gpus_available(manifest.image_digest):
            kwargs["device_requests"] = [
                docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])
            ]
        container = None
        start = time.perf_counter()
        try:
            container = self.client.containers.create(manifest.image_digest, **kwargs)
            container.start()
            status, exit_code = supervise(
                lambda t: _wait_once(container, t),
                lambda: _kill(container),
                output_dir=output_dir,
                time_limit_s=time_limit_s,
                output_cap_bytes=output_cap_bytes,
                poll_s=_POLL_S,
            )
            seconds = time.perf_counter() - start
            log = truncate_log(
                container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
            )
            container.reload()
            state = container.attrs.get("State", {})
            if status == "exit" and state.get("OOMKilled"):
                status = "oom"
            if status == "exit" and exit_code == 128 + _SIGXFSZ:
                status = "output_cap"
            details = {
                "oom_killed": bool(state.get("OOMKilled")),
                "gpus": "device_requests" in kwargs,
            }
            return finished_run(
                label,
                status,
                exit_code,
                log=log,
                seconds=seconds,
                time_limit_s=time_limit_s,
                details=details,
            )
        except docker.errors.APIError as err:
            msg = str(getattr(err, "explanation", None) or err)
            seconds = time.perf_counter() - start
            return finished_run(
                label, "error", None, log=msg, seconds=seconds, time_limit_s=time_limit_s
            )
        finally:
            if container is not None:
                _remove(container)


def _wait_once(container: Any, timeout: float) -> int | None:
    import requests

    try:
        return int(container.wait(timeout=timeout).get("StatusCode", -1))
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout):
        return None  # the SDK reports a wait that ran out as a connection error


def _kill(container: Any) -> None:
    import docker

    # It may have exited between the last wait and the kill.
    with contextlib.suppress(docker.errors.APIError):
        container.kill()


def _remove(container: Any) -> None:
    import docker

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError:
        # Removal already in progress, or the daemon is busy: try once more, then give up.
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)
