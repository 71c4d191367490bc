"""The job runner of ``ccbench serve``: each queued submission loaded, registered, run, scored.

A worker claims a job (:meth:`evaluator.server.state.ServerState.claim_job`), keeps its
heartbeat fresh from a second thread while the job runs, and finishes it. A job is one
submission: its archive (``<uploads>/<id>.tar``) is loaded into the local engine with the
checks of ``ccbench submit --image-file`` (:func:`evaluator.runner.submissions.load_image_archive`),
the loaded image is checked against the challenge's image size limit, registered as the entry
``<team>.s<id>`` for the phase's task, and run sandboxed on the phase's split
(:func:`evaluator.runner.run.run_entry`) with the challenge's interface and resources. Whatever
fails is recorded on the submission as its error class and message; the organiser sees the
message, a team the class (a message can carry test data on a hidden phase).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from evaluator.errors import (
    CCBenchError,
    DatasetNotFoundError,
    DockerUnavailableError,
    ExecutorError,
    RegistryError,
    SplitError,
    StoreError,
    SubmissionError,
)

if TYPE_CHECKING:
    from evaluator.runner.docker_backend import DockerBackend
    from evaluator.server.state import Job, ServerState
    from evaluator.workspace import Workspace

__all__ = ["SERVER_FAULTS", "Worker", "run_submission", "untagged_copy"]

#: Most members an uploaded archive may hold (an image has a few per layer; a tar of millions
#: of empty files would cost the server memory and disk long before anything else refused it).
MAX_MEMBERS = 20_000
#: Where a job tags the image it loaded while it runs (``<repository>:<challenge>-s<id>-<random>``).
HOLD_REPOSITORY = "ccbench-server"
#: Errors that are the server's, not the submission's: the submission ends as ``error``, not
#: counted against the team's limits (:data:`evaluator.server.state.UNCOUNTED`). A crash of
#: ccbench itself (``InternalError``) is counted (a submission could provoke one at will);
#: the organiser can rerun it.
SERVER_FAULTS = (
    DockerUnavailableError, StoreError, DatasetNotFoundError, SplitError, RegistryError,
    ExecutorError,
)  # fmt: skip


def untagged_copy(source: Path, target: Path, *, max_bytes: int) -> None:
    """Copy a ``docker save`` archive without its tags (``RepoTags``, ``repositories``, the OCI
    index's image names), uncompressed, at most ``max_bytes``: a team's archive never moves a
    tag of the host (another team's, the organiser's), and a resubmission under the same tag
    loads like any other.

    Every member is checked as :func:`evaluator.runner.submissions.archive_members` does
    (canonical names, once each, metadata files regular, at most :data:`MAX_MEMBERS` members)
    and written under its canonical name, so the engine reads exactly the files cleaned here.

    Raises
    ------
    SubmissionError
        The archive is not a tar file, breaks those rules, or unpacks to more than
        ``max_bytes``.
    """
    import io
    import json
    import posixpath
    import tarfile

    from evaluator.runner.submissions import archive_members, open_archive

    try:
        with open_archive(source) as tin, tarfile.open(target, "w") as tout:
            for member, name in archive_members(
                tin, source, max_unpacked=max_bytes, max_members=MAX_MEMBERS
            ):
                if name == "repositories":
                    continue
                data = tin.extractfile(member) if member.isreg() else None
                # a new header with only these fields: nothing of the upload's own headers
                # (pax records, GNU extensions) reaches the copy the engine reads
                fresh = tarfile.TarInfo(name)
                fresh.type, fresh.mode, fresh.mtime = member.type, member.mode & 0o755, 0
                fresh.size = member.size if member.isreg() else 0
                if member.issym() or member.islnk():
                    fresh.linkname = (
                        member.linkname
                        if member.issym()
                        else posixpath.normpath(member.linkname.removeprefix("./"))
                    )
                if name in ("manifest.json", "index.json") and data is not None:
                    raw = json.dumps(_without_names(json.loads(data.read(1 << 20)), name))
                    data, fresh.size = io.BytesIO(raw.encode()), len(raw.encode())
                tout.addfile(fresh, data)
                tout.members = []  # type: ignore[attr-defined]  # keep no index of entries
    except (tarfile.TarError, OSError, ValueError, RecursionError, EOFError) as err:
        raise SubmissionError(f"the upload is not a readable docker save archive: {err}") from err


def _without_names(doc: object, name: str) -> object:
    """``manifest.json`` or ``index.json`` rebuilt from the keys the engine needs, exactly
    spelt: no image names or tags, and nothing the engine's case-folding JSON decoder could
    read as one (``repotags``, ``Annotations``).

    Raises
    ------
    ValueError
        Not a manifest list or an OCI index, or a key that differs from a known one in case.
    """
    from evaluator.runner.submissions import MANIFEST_KEYS, exact_keys

    def strict(item: object, keys: frozenset[str]) -> dict[str, object]:
        fields = exact_keys(item, keys)
        if fields is None or not isinstance(item, dict):
            raise ValueError(f"{name}: an entry with a key the engine would read otherwise")
        return fields

    if name == "manifest.json":
        if not isinstance(doc, list):
            raise ValueError("manifest.json is not a list")
        items = [strict(item, MANIFEST_KEYS) for item in doc]
        return [{"Config": item.get("Config"), "Layers": item.get("Layers", [])} for item in items]
    index = strict(doc, _INDEX)
    manifests = index.get("manifests")
    if not isinstance(manifests, list):
        raise ValueError("index.json is not an OCI index")
    out: dict[str, object] = {"schemaVersion": index.get("schemaVersion", 2)}
    if "mediaType" in index:
        out["mediaType"] = index["mediaType"]
    out["manifests"] = [
        {k: v for k, v in strict(d, _DESCRIPTOR).items() if k in _DESCRIPTOR_KEPT}
        for d in manifests
    ]
    return out


#: The keys of an OCI index and of a descriptor (and those kept in it).
_INDEX = frozenset({"schemaVersion", "mediaType", "manifests", "annotations", "artifactType"})
_DESCRIPTOR = frozenset(
    {"mediaType", "digest", "size", "platform", "annotations", "urls", "artifactType", "data"}
)
_DESCRIPTOR_KEPT = frozenset({"mediaType", "digest", "size", "platform"})


def run_submission(
    state: ServerState, submission_id: int, *, workspace: Workspace, uploads: Path
) -> None:
    """Load, register and run one submission; its status and run go to the store."""
    import secrets

    from evaluator.runner.contract import Resources
    from evaluator.runner.docker_backend import DockerBackend
    from evaluator.runner.run import run_entry
    from evaluator.runner.submissions import load_image_archive, submit_image

    sub = state.submission(submission_id)
    _, spec, _ = state.challenge(sub.challenge)
    phase = spec.phase(sub.phase)
    state.set_submission(submission_id, status="running")
    held = None  # the loaded image's tag while this job holds it
    try:
        backend = DockerBackend()
        for image in backend.client.images.list(name=HOLD_REPOSITORY):  # a killed try's holds
            for tag in image.tags:
                if tag.startswith(f"{HOLD_REPOSITORY}:{sub.challenge}-s{submission_id}-"):
                    _release(backend, tag)
        plain = uploads / f".{submission_id}.untagged.tar"
        try:
            untagged_copy(
                uploads / f"{submission_id}.tar", plain,
                max_bytes=spec.upload.max_image_mb * 1024 * 1024,
            )  # fmt: skip
            found = load_image_archive(plain, backend=backend, max_bytes=plain.stat().st_size)
        finally:
            plain.unlink(missing_ok=True)
        loaded = backend.client.images.get(found.image_id)
        hold = f"{sub.challenge}-s{submission_id}-{secrets.token_hex(4)}"  # unique per job
        loaded.tag(HOLD_REPOSITORY, hold)
        held = f"{HOLD_REPOSITORY}:{hold}"
        size_mb = int(loaded.attrs.get("Size", 0)) / 2**20
        if size_mb > spec.upload.max_image_mb:
            raise SubmissionError(
                f"the image is {size_mb:.0f} MB, over the limit of {spec.upload.max_image_mb} MB"
            )
        entry = f"{sub.team}.s{submission_id}"
        manifest, _ = submit_image(
            found.image_id,
            name=entry,
            tasks=[phase.task],
            submissions_dir=workspace.submissions,
            team=sub.team,
            interface=spec.interface,
            resources=Resources.model_validate(spec.resources) if spec.resources else None,
            backend=backend,
            overwrite=True,
        )
        outcome = run_entry(
            entry, task=phase.task, split=phase.split, workspace=workspace, backend="docker",
            submissions_dir=workspace.submissions,
        )  # fmt: skip
        run = state.store.find_run(outcome.name)
        state.set_submission(
            submission_id, status="finished", entry=entry, image_digest=manifest.image_digest,
            run_id=None if run is None else run.id,
        )  # fmt: skip
    except SERVER_FAULTS as err:  # not the submission's fault: not counted, the organiser reruns
        state.set_submission(
            submission_id, status="error", error_class=type(err).__name__, error=str(err)
        )
    except CCBenchError as err:
        state.set_submission(
            submission_id, status="failed", error_class=type(err).__name__, error=str(err)
        )
    except Exception as err:  # a bug or the engine: recorded, never a submission left running
        state.set_submission(
            submission_id, status="failed", error_class="InternalError",
            error=f"{type(err).__name__}: {err}",
        )  # fmt: skip
        raise
    finally:
        if held is not None:
            _release(backend, held)


def _release(backend: DockerBackend, tag: str) -> None:
    """Remove a job's hold on its image: the image goes with the last job holding it (the
    host's disk is not filled with every upload's layers; a rerun loads the archive again)."""
    import contextlib

    import docker.errors

    # gone already, or in use by another job's container: kept
    with contextlib.suppress(docker.errors.DockerException, CCBenchError):
        backend.client.images.remove(tag)


@dataclass
class Worker:
    """A thread that runs queued submissions until stopped.

    Attributes
    ----------
    name
        Recorded on each job it claims (``host:pid:n``).
    poll_s, heartbeat_s, stale_after_s
        How often it looks for work, refreshes a running job's heartbeat, and after how long
        without a heartbeat another worker may take a job over.
    """

    state: ServerState
    workspace: Workspace
    uploads: Path
    name: str
    challenge: str | None = None
    poll_s: float = 2.0
    heartbeat_s: float = 15.0
    stale_after_s: float = 120.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def run_once(self) -> Job | None:
        """Claim and run one job; None when the queue is empty."""
        job = self.state.claim_job(
            self.name, stale_after_s=self.stale_after_s, challenge=self.challenge
        )
        if job is None:
            return None
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.heartbeat_s):
                try:
                    if not self.state.heartbeat(job.id, self.name):
                        return
                except StoreError:  # a busy store: the next beat tries again
                    continue

        beating = threading.Thread(target=beat, daemon=True)
        beating.start()
        try:
            run_submission(
                self.state, job.submission_id, workspace=self.workspace, uploads=self.uploads
            )
            self.state.finish_job(job.id, self.name, state="done")
        except Exception:  # recorded on the job; the worker goes on with the next one
            self.state.finish_job(job.id, self.name, state="failed")
            raise
        finally:
            done.set()
            beating.join()
        return job

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.run_once()
            except Exception:  # one job's crash (recorded on it) must not stop the queue
                job = None
            if job is None:
                self._stop.wait(self.poll_s)
