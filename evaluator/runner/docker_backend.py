"""The Docker backend: one sandboxed container run, through the Docker SDK for Python.

Every run gets (:func:`sandbox_kwargs`): ``--network none``, a read-only root file system, a
size-capped ``/tmp`` tmpfs (counted against the memory limit), ``--cap-drop ALL``,
``no-new-privileges``, a non-root user (the harness's own uid, or uid 1000 when the harness runs
as root), ``HOME=/tmp``, a memory limit with no extra swap, a CPU share (``OMP_NUM_THREADS`` and
friends set to match), a process-count limit, a per-file size limit (``RLIMIT_FSIZE``), no core
dumps, ``--init`` (signals reach the whole process group), a wall-clock limit, read-only inputs
and the requested ``/dev/shm`` size. ``/output`` is the capped file system of
:mod:`evaluator.runner.outputs`. GPUs are passed through when a probe container with
``--gpus all``, itself fully sandboxed, starts (never required).

The container is started detached and waited for with a short timeout in a loop (the SDK raises a
``requests`` connection error, not a timeout error, when a wait runs out); on the deadline it is
killed with SIGKILL, so a main process that ignores SIGTERM is stopped on time. The container is
removed on every exit path, including Ctrl-C; it carries the labels ``ccbench.run``,
``ccbench.owner`` and ``ccbench.deadline``, so that a watchdog (and the next ``ccbench run``,
through :func:`reap_containers`) removes it when the harness itself was killed.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluator.errors import DockerUnavailableError, SubmissionError
from evaluator.runner.contract import (
    UNPRIVILEGED_UID,
    ContainerRun,
    Manifest,
    Resources,
    RunStatus,
    container_user,
    finished_run,
    supervise,
    truncate_log,
)
from evaluator.runner.outputs import walk_tree

if TYPE_CHECKING:
    import docker

__all__ = [
    "PROBE_IMAGE",
    "UNPRIVILEGED_UID",
    "DockerBackend",
    "connect",
    "labelled_containers",
    "reap_containers",
    "sandbox_kwargs",
]

#: The harness's own minimal image, used for the GPU probe when it exists.
PROBE_IMAGE = "ccbench/python:bookworm-slim"
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
        self.gpu_report = "none"
        self.probe_kwargs: dict[str, Any] = {}
        self._users: dict[str, tuple[int, int]] = {}
        self._layer_quota: bool | None = None  # the engine's per-container size quota
        #: Record paths written outside /output and /tmp (``ccbench preflight``).
        self.record_writes = False

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
        """Whether ``--gpus all`` works here, tried once (then cached) inside the full sandbox.

        The probe runs ``nvidia-smi -L`` (``true`` where the image has none) in the harness's
        own minimal image when it exists (``ccbench images build-base``), else in ``image`` with
        its entrypoint replaced; either way with every limit of an entry's run (no network,
        read-only root, all capabilities dropped, a few seconds, a few processes). What the
        container saw is kept in :attr:`gpu_report`.
        """
        import docker

        if self._gpu is not None:
            return self._gpu
        probe_image = image
        with contextlib.suppress(docker.errors.DockerException):
            self.client.images.get(PROBE_IMAGE)
            probe_image = PROBE_IMAGE
        limits = Resources(
            memory_mb=256, cpus=1.0, pids=16, tmp_mb=8, gpus="never", filesystem="read-only"
        )
        kwargs = sandbox_kwargs(limits, label="gpu-probe", file_cap_bytes=2**20)
        kwargs.pop("volumes")
        kwargs.update(
            entrypoint=["/bin/sh", "-c", "nvidia-smi -L 2>&1 || true"],
            command=None,
            device_requests=[docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])],
            labels={**kwargs["labels"], "ccbench.probe": "gpu"},
        )
        container = None
        try:
            container = self.client.containers.create(probe_image, **kwargs)
            container.start()
            container.wait(timeout=30)
            self.gpu_report = container.logs().decode("utf-8", errors="replace").strip()[:2000]
            self._gpu = True
        except (docker.errors.DockerException, OSError):
            self.gpu_report = "none"
            self._gpu = False
        finally:
            if container is not None:
                _remove(container)
        self.probe_kwargs = kwargs
        return self._gpu

    # -- orphans ------------------------------------------------------------------------------

    def reap(self) -> list[str]:
        """Remove containers whose ``ccbench run`` process is gone (see :func:`reap_containers`)."""
        import docker

        try:
            return reap_containers(self.client)
        except docker.errors.DockerException:
            return []

    @contextlib.contextmanager
    def guard(self, token: str, tmp: Path) -> Iterator[None]:
        """Keep a watchdog (:mod:`evaluator.runner.watchdog`) for this run's containers.

        It runs in its own session, so it survives a ``kill -9`` of this process (or of its
        process group) and then removes the run's containers and scratch folders.
        """
        import subprocess
        import sys

        from evaluator.processes import current_owner

        watchdog = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "evaluator.runner.watchdog",
                token,
                str(current_owner()),
                str(tmp),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        try:
            yield
        finally:
            watchdog.terminate()
            try:
                watchdog.wait(timeout=5)
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait()

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
        labels: Mapping[str, str] | None = None,
        poll_output: bool = True,
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
            The size ``/output`` may reach (with ``poll_output``: watched, else the mounted
            file system's own cap); no single file may be larger than this, ``/tmp`` or the
            writable layer (``RLIMIT_FSIZE``).
        label
            ``"split"`` or the case id, used in the container's labels and the result.
        labels
            More container labels (``ccbench.run``, ``ccbench.owner``, ``ccbench.deadline``:
            what lets a later run reap an orphan).
        poll_output
            Watch the size of ``/output`` (only when no capped file system is mounted there).

        Returns
        -------
        ContainerRun
            Status ``ok``, ``exit``, ``timeout``, ``oom``, ``output_cap`` or ``error``; the
            container is gone when this returns.
        """
        import docker

        res = manifest.resources
        user = self.user_for(manifest)
        kwargs = sandbox_kwargs(
            res,
            label=label,
            # per-file backstop: no single file larger than the largest place it may go
            file_cap_bytes=max(
                output_cap_bytes,
                res.tmp_mb * 2**20,
                res.layer_mb * 2**20 if res.filesystem == "ephemeral" else 0,
            ),
            input_dir=input_dir,
            output_dir=output_dir,
            entry=manifest.name,
            extra_labels=labels,
            user=user,
        )
        kwargs["command"] = list(manifest.command) if manifest.command else None
        for path in self._image_volumes(manifest.image_digest):
            # an image VOLUME would be a writable, uncapped host folder: a capped tmpfs instead
            kwargs["tmpfs"][path] = f"rw,nosuid,nodev,size={res.tmp_mb}m,mode=1777"
        if res.filesystem == "ephemeral" and self._layer_quota is not False:
            kwargs["storage_opt"] = {"size": f"{res.layer_mb}m"}
        start = time.perf_counter()
        wanted = res.gpu_count
        if wanted != 0 and (wanted is not None or res.gpus == "auto"):
            if self.gpus_available(manifest.image_digest):
                kwargs["device_requests"] = [
                    docker.types.DeviceRequest(
                        count=-1 if wanted is None else wanted, capabilities=[["gpu"]]
                    )
                ]
            elif wanted is not None:
                reason = (
                    f"the entry requires GPUs (gpus: {res.gpus}) and this host has none "
                    f"that Docker can pass through ({self.gpu_report})"
                )
                return finished_run(
                    label, "error", None, log=reason, seconds=0.0, time_limit_s=time_limit_s
                )
        if os.getuid() == 0 and not os.path.ismount(output_dir):
            os.chown(output_dir, *user)
        container = None
        try:
            container = self._create(manifest.image_digest, kwargs)
            watcher = _Watcher(container, res, engine_capped="storage_opt" in kwargs)
            container.start()
            status, exit_code = supervise(
                lambda t: _wait_once(container, t),
                lambda: _kill(container),
                output_dir=output_dir,
                time_limit_s=time_limit_s,
                output_cap_bytes=output_cap_bytes if poll_output else None,
                poll_s=_POLL_S,
                watch=watcher.check,
            )
            seconds = time.perf_counter() - start
            watcher.check()
            log = _bounded_log(container)
            # the reason of a failed run: the last line the program wrote to stderr (stdout
            # and stderr are separate pipes, so the merged log's order is not the program's)
            errors = _bounded_log(container, limit=4096, stdout=False) if exit_code else None
            container.reload()
            state = container.attrs.get("State", {})
            if status == "exit" and state.get("OOMKilled"):
                status = "oom"
            if status == "exit" and exit_code == 128 + _SIGXFSZ:
                status = "output_cap"
            details: dict[str, Any] = {
                "oom_killed": bool(state.get("OOMKilled")),
                "gpus": "device_requests" in kwargs,
                "gpu_report": self.gpu_report if "device_requests" in kwargs else "none",
                "user": f"{user[0]}:{user[1]}",
                "filesystem": res.filesystem,
                "peak_memory_mb": watcher.peak_memory_mb,
                "layer_mb": watcher.layer_mb,
                "layer_enforcement": (
                    "none"
                    if res.filesystem == "read-only"
                    else "engine"
                    if "storage_opt" in kwargs
                    else "watched"
                ),
            }
            if self.record_writes and res.filesystem == "ephemeral":
                details["writes"] = _written_paths(container)
            return finished_run(
                label,
                status,
                exit_code,
                log=log,
                seconds=seconds,
                time_limit_s=time_limit_s,
                details=details,
                errors=errors,
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

    def _create(self, image: str, kwargs: dict[str, Any]) -> Any:
        """Create the container; drop ``storage_opt`` (and remember) where the engine has no
        per-container size quota (overlay2 needs xfs with ``pquota`` for it)."""
        import docker

        try:
            container = self.client.containers.create(image, **kwargs)
            if "storage_opt" in kwargs:
                self._layer_quota = True
            return container
        except docker.errors.APIError as err:
            if "storage_opt" not in kwargs or "storage" not in str(err).lower():
                raise
            self._layer_quota = False
            kwargs.pop("storage_opt")
            return self.client.containers.create(image, **kwargs)

    def _image_volumes(self, image: str) -> list[str]:
        """The image's declared ``VOLUME`` paths (absolute, normalised)."""
        import posixpath

        import docker

        try:
            config = self.client.images.get(image).attrs.get("Config") or {}
        except docker.errors.DockerException:
            return []
        paths = []
        for raw in config.get("Volumes") or {}:
            path = posixpath.normpath("/" + str(raw).lstrip("/"))
            if path not in ("/", "/output", "/input", "/tmp") and "," not in path:
                paths.append(path)
        return paths

    def check_requirements(self, manifest: Manifest) -> None:
        """Refuse to start an entry that requires GPUs on a host without any.

        Raises
        ------
        SubmissionError
            ``gpus: all`` or a count, and the GPU probe found none.
        """
        res = manifest.resources
        if res.gpu_count not in (None, 0) and not self.gpus_available(manifest.image_digest):
            raise SubmissionError(
                f"entry {manifest.name} requires GPUs (gpus: {res.gpus}) and this host has none "
                "that Docker can pass through; run it on a GPU host, or submit it with "
                "--gpus auto"
            )

    # -- the image's user ---------------------------------------------------------------------

    def user_for(self, manifest: Manifest) -> tuple[int, int]:
        """``(uid, gid)`` the entry's container runs as: the image's own ``USER``, never root.

        grand-challenge images create a user and own their working folder with it; running them
        as another uid would make their own files unwritable. An image without a user, or with
        root, runs as :func:`container_user` (uid 1000 when the harness is root).
        """
        digest = manifest.image_digest
        if digest not in self._users:
            self._users[digest] = self._resolve_user(digest)
        return self._users[digest]

    def _resolve_user(self, image: str) -> tuple[int, int]:
        import docker

        default = container_user()
        try:
            config = self.client.images.get(image).attrs.get("Config") or {}
        except docker.errors.DockerException:
            return default
        spec = str(config.get("User") or "").strip()
        name, _, group = spec.partition(":")
        if not name or name in ("root", "0"):
            return default
        uid = int(name) if _ID.fullmatch(name) else None
        gid = int(group) if _ID.fullmatch(group) else None
        if uid is None or gid is None:
            users = {f[0]: (int(f[2]), int(f[3])) for f in _records(self._etc(image, "passwd"), 4)}
            found = (
                users.get(name)
                if uid is None
                else next((v for v in users.values() if v[0] == uid), (uid, uid))
            )
            if found is None:
                return default
            uid = found[0]
            if gid is None:
                groups = {f[0]: int(f[2]) for f in _records(self._etc(image, "group"), 3)}
                gid = groups.get(group, found[1]) if group else found[1]
        if not (0 < uid < 2**31 - 1):
            return default
        return uid, gid if gid is not None and 0 < gid < 2**31 - 1 else default[1]

    def _etc(self, image: str, name: str) -> str:
        """``/etc/<name>`` of an image (read through a created, never started container), at
        most 1 MiB; empty when it is missing, a link, not a file or larger."""
        import io
        import tarfile

        import docker
        import requests

        container = None
        try:
            container = self.client.containers.create(
                image, entrypoint=["/nonexistent"], network_mode="none"
            )
            # The size first, from a HEAD request: an archive stream left unread would hold the
            # engine's connection until the client's timeout (60 s per oversized file).
            api = self.client.api
            head = api.head(
                api._url("/containers/{0}/archive", container.id), params={"path": f"/etc/{name}"}
            )
            api._raise_for_status(head)
            encoded = head.headers.get("x-docker-container-path-stat")
            stat = docker.utils.decode_json_header(encoded) if encoded else {}
            if int(stat.get("size", 0)) > 2**20 or stat.get("linkTarget"):
                return ""
            stream, _ = container.get_archive(f"/etc/{name}")
            data = bytearray()
            for chunk in stream:
                data += chunk
                if len(data) > 2**20 + 4096:
                    return ""
            with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
                member = tar.next()
                if member is None or not member.isfile() or member.size > 2**20:
                    return ""
                handle = tar.extractfile(member)
                return handle.read(2**20).decode("utf-8", errors="replace") if handle else ""
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return ""
        except (tarfile.TarError, OSError, KeyError, ValueError):
            return ""
        finally:
            if container is not None:
                _remove(container)


_ID = re.compile(r"[0-9]{1,10}")


def _records(text: str, fields: int) -> list[list[str]]:
    """``name:x:id:...`` lines of /etc/passwd or /etc/group with numeric (ASCII) ids."""
    out = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= fields and all(_ID.fullmatch(p) for p in parts[2:fields]):
            out.append(parts)
    return out


class _Watcher:
    """Peak memory (cgroup) and the writable layer's size of a running container.

    :meth:`check` is called between waits; it returns ``layer_cap`` when the ephemeral layer
    outgrew ``layer_mb`` (the layer lives on the host's disk: without this watch a container
    could fill it). The layer is walked every ``_LAYER_POLL_S`` seconds, counting allocated
    blocks (a sparse file counts what it holds, a hard-linked file once) plus a block per entry
    (empty files and folders cost disk too). Where the engine has a per-container quota
    (``storage_opt``: overlay2 on xfs with ``pquota``) the kernel enforces the cap instead.
    """

    def __init__(self, container: Any, res: Resources, *, engine_capped: bool = False) -> None:
        self.container = container
        watched = res.filesystem == "ephemeral" and not engine_capped
        self.cap_bytes = res.layer_mb * 2**20 if watched else None
        data = (container.attrs.get("GraphDriver") or {}).get("Data") or {}
        upper = data.get("UpperDir")
        self.upper = Path(upper) if upper and os.access(upper, os.R_OK) else None
        self.peak_memory_mb: float | None = None
        self.layer_mb: float | None = None
        self._next_walk = 0.0

    def _memory_files(self) -> list[Path]:
        cid = self.container.id
        root = Path("/sys/fs/cgroup")
        return [
            root / "memory" / "docker" / cid / "memory.max_usage_in_bytes",
            root / "system.slice" / f"docker-{cid}.scope" / "memory.peak",
            root / "docker" / cid / "memory.peak",
        ]

    def check(self) -> RunStatus | None:
        for path in self._memory_files():
            try:
                value = int(path.read_text().split()[0]) / 2**20
            except (OSError, ValueError, IndexError):
                continue
            self.peak_memory_mb = max(self.peak_memory_mb or 0.0, round(value, 1))
            break
        if self.upper is None or time.monotonic() < self._next_walk:
            return None
        self._next_walk = time.monotonic() + _LAYER_POLL_S
        used = disk_usage(self.upper)
        self.layer_mb = round(used / 2**20, 1)
        if self.cap_bytes is not None and used > self.cap_bytes:
            return "layer_cap"
        return None


_LAYER_POLL_S = 0.2


def disk_usage(folder: Path) -> int:
    """Disk a folder tree takes, bytes: allocated blocks (hard links once) + 4 KiB per entry.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "a").write_bytes(b"x" * 10_000)
    >>> 10_000 <= disk_usage(d) <= 40_000
    True
    """
    total = 0
    seen: set[tuple[int, int]] = set()
    for _, st in walk_tree(folder):
        total += 4096
        if not stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


#: Places a container may write on every platform (grand-challenge and ccbench's read-only).
ALLOWED_WRITES = ("/output", "/tmp", "/dev/shm")
#: Paths the engine itself adds to every container (mount points, --init, network files).
_ENGINE_PATHS = frozenset(
    {"/input", "/dev", "/proc", "/sys", "/usr/sbin/docker-init", "/.dockerenv", "/etc/hosts",
     "/etc/hostname", "/etc/resolv.conf", "/etc/mtab"}
)  # fmt: skip


def _written_paths(container: Any) -> list[str]:
    """Paths the container changed in its own layer outside :data:`ALLOWED_WRITES`."""
    import docker

    try:
        changes = container.diff() or []
    except docker.errors.DockerException:
        return []
    paths = sorted({str(c.get("Path", "")) for c in changes if c.get("Kind") in (0, 1)})
    outside = [
        p
        for p in paths
        if p
        and p not in _ENGINE_PATHS
        and not any(e.startswith(p + "/") for e in _ENGINE_PATHS)  # a parent of one of them
        and not any(p == a or p.startswith(a + "/") for a in ALLOWED_WRITES)
    ]
    # keep the deepest paths only (a new folder also lists its parents as changed)
    return [p for p in outside if not any(o.startswith(p + "/") for o in outside)][:50]


def sandbox_kwargs(
    res: Resources,
    *,
    label: str,
    file_cap_bytes: int,
    input_dir: Path | None = None,
    output_dir: Path | None = None,
    entry: str = "",
    extra_labels: Mapping[str, str] | None = None,
    user: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The Docker SDK options of the sandbox, shared by entries' runs and the GPU probe.

    No network, a read-only root (or, with ``filesystem: ephemeral``, a throw-away writable
    layer watched by :class:`_Watcher`), a capped ``/tmp`` tmpfs, every capability dropped,
    ``no-new-privileges``, a non-root user, memory without extra swap, a CPU share, a process
    limit, a per-file size limit, no core dumps, ``--init`` (a tiny init as PID 1 that forwards
    signals to the whole process group and reaps zombies), read-only ``/input``.

    Examples
    --------
    >>> kw = sandbox_kwargs(Resources(), label="split", file_cap_bytes=2**20)
    >>> kw["network_mode"], kw["read_only"], kw["cap_drop"], kw["init"], kw["pids_limit"]
    ('none', False, ['ALL'], True, 128)
    >>> sandbox_kwargs(Resources(filesystem="read-only"), label="x", file_cap_bytes=1)["read_only"]
    True
    """
    import docker

    uid, gid = user if user is not None else container_user()
    threads = str(max(1, math.ceil(res.cpus)))
    env = {"HOME": "/tmp", "TMPDIR": "/tmp", **dict.fromkeys(_THREAD_VARS, threads)}
    volumes = {}
    if input_dir is not None:
        volumes[str(input_dir)] = {"bind": "/input", "mode": "ro"}
    if output_dir is not None:
        volumes[str(output_dir)] = {"bind": "/output", "mode": "rw"}
    return {
        "detach": True,
        "name": f"ccbench-{uuid.uuid4().hex[:12]}",
        "labels": {
            "ccbench.entry": entry,
            "ccbench.label": label[:60],
            **dict(extra_labels or {}),
        },
        "network_mode": "none",
        "read_only": res.filesystem == "read-only",
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
        "init": True,
        "log_config": docker.types.LogConfig(
            type="json-file", config={"max-size": LOG_MAX_SIZE, "max-file": LOG_MAX_FILES}
        ),
        "ulimits": [
            docker.types.Ulimit(name="fsize", soft=file_cap_bytes, hard=file_cap_bytes),
            docker.types.Ulimit(name="core", soft=0, hard=0),
        ],
        "volumes": volumes,
    }


def labelled_containers(client: Any, label: str) -> list[Any]:
    """The containers (running or not) carrying ``label`` (``"key"`` or ``"key=value"``).

    Listed without the per-container inspection of ``containers.list``, then fetched one by
    one: a container that another run removes in between is skipped, never an error.
    """
    import docker

    found = []
    for row in client.api.containers(all=True, filters={"label": label}):
        try:
            found.append(client.containers.get(row["Id"]))
        except docker.errors.NotFound:
            continue
    return found


def reap_containers(client: Any) -> list[str]:
    """Remove containers of ``ccbench run`` processes that are gone (e.g. after ``kill -9``).

    A container is ours when it carries a ``ccbench.owner`` label; it is an orphan when that
    owner process (on this host) no longer runs. Returns the names removed.
    """
    from evaluator.processes import Owner

    removed = []
    for container in labelled_containers(client, "ccbench.owner"):
        try:
            owner = Owner.parse(container.labels.get("ccbench.owner", ""))
        except ValueError:
            continue
        if owner.local and not owner.alive():
            _remove(container)
            removed.append(container.name)
    return removed


#: What the engine keeps of a container's output on disk: two files of 4 MiB (the newest).
LOG_MAX_SIZE, LOG_MAX_FILES = "4m", "2"


def _bounded_log(container: Any, limit: int = 65536, *, stdout: bool = True) -> str:
    """The container's output, its first and last ``limit // 2`` bytes; read as a stream.

    ``stdout=False``: its standard error only.

    The engine keeps at most ``LOG_MAX_FILES`` x ``LOG_MAX_SIZE`` of it, so neither the host's
    disk nor the harness's memory pays for a container that prints gigabytes.
    """
    half = limit // 2
    head, tail = bytearray(), bytearray()
    total = 0
    for chunk in container.logs(stdout=stdout, stderr=True, stream=True, follow=False):
        total += len(chunk)
        if len(head) < half:
            take = chunk[: half - len(head)]
            head += take
            chunk = chunk[len(take) :]
        tail += chunk
        if len(tail) > half:
            del tail[: len(tail) - half]
    text = head.decode("utf-8", errors="replace")
    if total > len(head) + len(tail):
        text += f"\n[... {total - len(head) - len(tail)} bytes cut ...]\n"
    return truncate_log(text + tail.decode("utf-8", errors="replace"), limit=limit + 200)


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
    """Remove a container and its anonymous volumes; never raises.

    A removal the daemon is slow with (a layer of many files) is tried once more; a container
    that still cannot be removed carries its owner label, so the watchdog or the next run
    reaps it.
    """
    import docker
    import requests

    for _ in range(2):
        try:
            container.remove(force=True, v=True)
            return
        except docker.errors.NotFound:
            return
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            continue
