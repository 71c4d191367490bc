"""The baseline algorithms: self-contained build contexts under ``baselines/``, built and submitted.

Each folder ``baselines/<name>/`` holds a ``Dockerfile`` whose ``FROM ${BASE}`` takes the base
image as a build argument, and a ``predict.py`` that follows the container contract (it reads
``$CCBENCH_INPUT``, default ``/input``, and writes ``$CCBENCH_OUTPUT``, default ``/output``), so
the same entry also runs under ``ccbench run --backend local``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from evaluator.errors import SubmissionError
from evaluator.workspace import Workspace

if TYPE_CHECKING:
    from evaluator.datasets.registry import Registry

__all__ = ["BaselineBuild", "baseline_tasks", "baselines_dir", "build_baselines", "list_baselines"]


def baseline_tasks(registry: Registry | None = None) -> tuple[str, ...]:
    """Tasks every baseline is registered for: each volume (3D) task of datasets.yaml.

    The baselines write label volumes, so every 3D task (real and phantom) can run them.

    Examples
    --------
    >>> "btcv-phantom" in baseline_tasks(), "chestxdet" in baseline_tasks()
    (True, False)
    """
    from evaluator.datasets.registry import load_registry

    reg = registry or load_registry()
    return tuple(name for name, spec in reg.tasks.items() if spec.dims == 3)


@dataclass(frozen=True)
class BaselineBuild:
    """One baseline: its image tag, manifest path and whether the image was built here."""

    name: str
    image: str
    manifest: Path
    built: bool


def baselines_dir() -> Path:
    """The ``baselines/`` folder of the source checkout (``CCBENCH_BASELINES`` overrides it).

    Examples
    --------
    >>> (baselines_dir() / "threshold" / "Dockerfile").is_file()
    True
    """
    env = os.environ.get("CCBENCH_BASELINES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "baselines"


def list_baselines() -> list[str]:
    """Names of the baselines (folders of :func:`baselines_dir` holding a Dockerfile).

    Examples
    --------
    >>> "threshold" in list_baselines()
    True
    """
    root = baselines_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob("*/Dockerfile"))


def build_baselines(
    *,
    workspace: Workspace,
    submissions_dir: Path,
    names: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    docker: bool = True,
) -> list[BaselineBuild]:
    """Build each baseline's image on the local base images and submit it as an entry.

    Parameters
    ----------
    workspace
        Build folders and wheel cache of the base images.
    submissions_dir
        Where the manifests (``<name>.yaml``) are written.
    names
        Baselines to build; default: all of :func:`list_baselines`.
    tasks
        Tasks the entries are registered for; default: :func:`baseline_tasks`.
    docker
        Build images with the local Docker engine. With ``False`` nothing is built and the
        manifests name the build context only: such entries run with ``--backend local``
        (development only).

    Returns
    -------
    list of BaselineBuild

    Raises
    ------
    SubmissionError
        An unknown baseline name.
    DockerUnavailableError
        ``docker=True`` and no engine answers, or a build fails.
    """
    from evaluator.runner.contract import Manifest, write_manifest

    chosen_tasks = tuple(tasks) if tasks is not None else baseline_tasks()
    known = list_baselines()
    chosen = list(names) if names else known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise SubmissionError(
            f"unknown baseline(s) {', '.join(unknown)} (known: {', '.join(known) or 'none'} in {baselines_dir()})"
        )
    out: list[BaselineBuild] = []
    if docker:
        from evaluator.runner.images import BASE_IMAGES, build_base_images, build_context
        from evaluator.runner.submissions import submit_image

        build_base_images(workspace, images=("sci",))
    for name in chosen:
        context = baselines_dir() / name
        command = ("{python}", str(context / "predict.py"))
        tag = f"ccbench/{name}:latest"
        if docker:
            build_context(context, tag, base=BASE_IMAGES["sci"].tag)
            _, path = submit_image(
                tag,
                name=name,
                tasks=chosen_tasks,
                submissions_dir=submissions_dir,
                team="ccbench baselines",
                overwrite=True,
                kind="baseline",
            )
        else:
            manifest = Manifest(
                name=name,
                team="ccbench baselines",
                image=f"local:{context}",
                image_digest="sha256:" + "0" * 64,
                tasks=chosen_tasks,
                command=command,
                kind="baseline",
            )
            path = write_manifest(manifest, submissions_dir)
        out.append(BaselineBuild(name=name, image=tag, manifest=path, built=docker))
    return out
