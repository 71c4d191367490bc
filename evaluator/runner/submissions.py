"""``ccbench submit``: register a local container image as an entry (``submissions/<name>.yaml``).

The image must exist in the local Docker engine; its content id (``sha256:...``) is recorded as
the entry's digest, and a run refuses to start when the image behind the tag has changed. The
tasks must be known to the registry and the resources within the organiser's limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from evaluator.errors import SubmissionError
from evaluator.runner.contract import (
    Interface,
    Manifest,
    Resources,
    SandboxLimits,
    manifest_path,
    write_manifest,
)

if TYPE_CHECKING:
    from evaluator.runner.docker_backend import DockerBackend

__all__ = ["submit_image"]


def submit_image(
    image: str,
    *,
    name: str,
    tasks: Sequence[str],
    submissions_dir: Path = Path("submissions"),
    team: str = "",
    interface: Interface = "batch",
    resources: Resources | None = None,
    command: Sequence[str] | None = None,
    limits: SandboxLimits | None = None,
    overwrite: bool = False,
    backend: DockerBackend | None = None,
    image_digest: str | None = None,
) -> tuple[Manifest, Path]:
    """Check ``image`` exists, record its digest and write the entry's manifest.

    Parameters
    ----------
    image
        Image tag or id in the local engine.
    name
        Entry name (letters, digits, ``_.-``); the manifest is ``<submissions_dir>/<name>.yaml``.
    tasks
        Task names from ``datasets.yaml`` the entry is registered for.
    submissions_dir
        Manifests folder.
    team, interface, resources, command
        Stored in the manifest (``command`` overrides the image's CMD, and is what
        ``--backend local`` runs).
    limits
        Organiser bounds for ``resources``.
    overwrite
        Replace an existing manifest of the same name.
    backend
        Docker backend used to inspect the image [default: connect to the local engine].
    image_digest
        Record this digest without asking an engine (for entries run with ``--backend local``
        only); must look like ``sha256:<64 hex>``.

    Returns
    -------
    (Manifest, Path)
        The entry and where it was written.

    Raises
    ------
    SubmissionError
        Unknown task, image not found, manifest exists, bad name or resources.
    DockerUnavailableError
        No engine answers (and no ``image_digest`` was given).
    """
    from pydantic import ValidationError

    from evaluator.datasets.registry import load_registry

    registry = load_registry()
    unknown = [t for t in tasks if t not in registry.tasks]
    if unknown or not tasks:
        raise SubmissionError(
            f"entry {name}: unknown or no task(s) {unknown} (known: {', '.join(registry.tasks)})"
        )
    path = manifest_path(name, submissions_dir)
    if path.exists() and not overwrite:
        raise SubmissionError(f"entry {name} already exists ({path}); pass --overwrite to replace")
    if image_digest is None:
        if backend is None:
            from evaluator.runner.docker_backend import DockerBackend

            backend = DockerBackend()
        image_digest = backend.image_id(image)
    try:
        manifest = Manifest(
            name=name,
            team=team,
            image=image,
            image_digest=image_digest,
            interface=interface,
            tasks=tuple(tasks),
            resources=resources or Resources(),
            command=tuple(command) if command else None,
            submitted=datetime.now(UTC).isoformat(timespec="seconds"),
        )
    except ValidationError as err:
        parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()]
        raise SubmissionError(f"entry {name}: {'; '.join(parts)}") from err
    (limits or SandboxLimits()).check(manifest.resources, entry=name)
    return manifest, write_manifest(manifest, submissions_dir)
