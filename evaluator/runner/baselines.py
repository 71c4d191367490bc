"""The baseline algorithms: self-contained build contexts under ``baselines/``, built and submitted.

Each folder ``baselines/<name>/`` holds a ``Dockerfile`` whose ``FROM ${BASE}`` takes the base
image as a build argument, a ``predict.py`` that follows the container contract (it reads
``$CCBENCH_INPUT``, default ``/input``, and writes ``$CCBENCH_OUTPUT``, default ``/output``), so
the same entry also runs under ``ccbench run --backend local``, a ``README.md``, and a
``baseline.yaml`` saying how ccbench builds and registers it::

    base: torch               # local base image (sci: numpy + SimpleITK; torch: + torch, MONAI)
    model: monai-unet         # a learned baseline: weights from `ccbench baselines train`
    tasks: [autopet-phantom]  # tasks it is registered for [default: every 3D task]
    resources: {memory_mb: 4096}

The image is built from a staged copy of the folder (:func:`stage_context`): the folder's files,
the container half of :mod:`evaluator.learn` (as ``evaluator/learn/``, importable because the
Dockerfile puts ``/opt/algorithm`` on ``PYTHONPATH``) and, for a learned baseline, one trained
model per task under ``weights/<task>/`` (``config.json`` + ``model.pt``), so the weights are
baked into the image, read-only. A learned baseline is registered only for the tasks it has
been trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from evaluator.errors import SubmissionError
from evaluator.typing import ProgressHook
from evaluator.workspace import Workspace

if TYPE_CHECKING:
    from evaluator.datasets.registry import Registry
    from evaluator.runner.contract import Interface, Manifest, Resources
    from evaluator.runner.nnunet_pack import NnunetResults

__all__ = [
    "BaselineBuild",
    "BaselineSpec",
    "NnunetEntry",
    "baseline_spec",
    "baseline_tasks",
    "baselines_dir",
    "build_baselines",
    "entry_tag",
    "list_baselines",
    "stage_context",
    "submit_nnunet_results",
]


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
    return tuple(name for name, spec in reg.tasks.items() if not spec.instances)


class BaselineSpec(BaseModel):
    """``baselines/<name>/baseline.yaml`` (every field optional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base: str = "sci"
    model: str | None = None
    tasks: tuple[str, ...] | None = None
    resources: dict[str, Any] = {}
    description: str = ""
    #: What the baseline reads from ``/input/prompts.json`` (``text``, ``clicks``).
    prompts: tuple[str, ...] = ()
    #: Task -> the labels the baseline predicts (the manifest's ``labels``); default: all.
    labels: dict[str, tuple[int | str, ...]] | None = None


@dataclass(frozen=True)
class BaselineBuild:
    """One baseline: its image tag, manifest path and whether the image was built here.

    ``skipped`` says why a baseline was not built (a learned one without trained weights);
    ``size_mb`` is the image size when built.
    """

    name: str
    image: str
    manifest: Path | None
    built: bool
    tasks: tuple[str, ...] = ()
    size_mb: float | None = None
    skipped: str | None = None


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


def baseline_spec(name: str) -> BaselineSpec:
    """The ``baseline.yaml`` of a baseline (defaults when the folder has none).

    Raises
    ------
    SubmissionError
        A malformed file (named, with the field).

    Examples
    --------
    >>> baseline_spec("monai-unet").model, baseline_spec("threshold").base
    ('monai-unet', 'sci')
    """
    path = baselines_dir() / name / "baseline.yaml"
    if not path.is_file():
        return BaselineSpec()
    try:
        return BaselineSpec(**(yaml.safe_load(path.read_text()) or {}))
    except (yaml.YAMLError, TypeError) as err:
        raise SubmissionError(f"{path}: not a mapping of baseline fields: {err}") from err
    except ValidationError as err:
        from evaluator.runner.contract import invalid_fields

        raise SubmissionError(f"{path}: {invalid_fields(err)}") from err


def _trained_tasks(
    spec: BaselineSpec, workspace: Workspace, tasks: Sequence[str]
) -> dict[str, Path]:
    """Task -> trained model folder, for the tasks a learned baseline has weights for.

    nnU-Net's results are packed first (weights only) into ``<workspace>/images/packed``.
    """
    from evaluator.learn.models import NNUNET_MODEL
    from evaluator.learn.train import find_trained

    assert spec.model is not None
    found = {t: find_trained(workspace, spec.model, t) for t in tasks}
    trained = {t: p for t, p in found.items() if p is not None}
    if spec.model != NNUNET_MODEL:
        return trained
    from evaluator.datasets.registry import load_registry
    from evaluator.runner.nnunet_pack import open_results, pack_results

    packed = {}
    for task, folder in trained.items():
        config = json.loads((folder / "config.json").read_text())
        results = open_results(
            folder / config["results_folder"], configuration=config["configuration"],
            folds=[str(config["fold"])],
        )  # fmt: skip
        dest = workspace.images / "packed" / NNUNET_MODEL / task
        packed[task] = pack_results(results, load_registry().task(task), dest)
    return packed


def stage_context(name: str, dest: Path, *, weights: dict[str, Path] | None = None) -> Path:
    """Copy a baseline's build context to ``dest`` with the container code and the weights.

    ``dest`` receives the folder's files, ``evaluator/__init__.py`` and
    ``evaluator/learn/<module>.py`` for each of
    :data:`evaluator.learn.CONTAINER_MODULES`, and ``weights/<task>/{config.json,model.pt}``
    for each ``weights`` entry (a packed nnU-Net model: ``config.json`` and ``model/``, see
    :mod:`evaluator.runner.nnunet_pack`); each ``config.json`` gains the task's grand-challenge slugs
    (``gc_inputs``: folder -> channel, ``gc_output``) so the container finds its model and
    channels under either interface.
    """
    import evaluator
    import evaluator.learn
    from evaluator.datasets.registry import load_registry
    from evaluator.runner.contract import GC_DEFAULTS, GrandChallengeSlugs

    source = baselines_dir() / name
    links = [p for p in source.rglob("*") if p.is_symlink()]
    if links:  # a link would copy whatever it points to (reference labels, host files) in
        raise SubmissionError(
            f"baselines/{name}: links are not copied into an image: {', '.join(map(str, links[:3]))}"
        )
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(
        source, dest, symlinks=True, ignore=shutil.ignore_patterns("build", "__pycache__")
    )
    package = dest / "evaluator"
    (package / "learn").mkdir(parents=True)
    shutil.copyfile(Path(evaluator.__file__), package / "__init__.py")
    learn = Path(evaluator.learn.__file__).parent
    for module in evaluator.learn.CONTAINER_MODULES:
        shutil.copyfile(learn / f"{module}.py", package / "learn" / f"{module}.py")
    registry = load_registry()
    for task, folder in (weights or {}).items():
        spec = registry.task(task)
        family = spec.phantom_of or task.split("-")[0]
        slugs = GC_DEFAULTS.get(family, GrandChallengeSlugs({}, "segmentation"))
        gc_inputs = {
            slugs.inputs.get(ch, ch.lower()): ch for ch in (*spec.channels, *spec.optional_channels)
        }
        target = dest / "weights" / task
        # the default model, then each trained fold's (fold runs: weights/<task>/fold<k>/)
        folds = (
            sorted(folder.parent.glob("fold*/model.pt")) if folder.name.startswith("fold") else []
        )
        for source, into in [
            (folder, target),
            *((m.parent, target / m.parent.name) for m in folds),
        ]:
            config = json.loads((source / "config.json").read_text())
            config["gc_inputs"], config["gc_output"] = gc_inputs, slugs.output
            into.mkdir(parents=True)
            (into / "config.json").write_text(json.dumps(config, indent=1))
            if (source / "model.pt").is_file():  # a MONAI network
                shutil.copyfile(source / "model.pt", into / "model.pt")
            if (source / "model").is_dir():  # a packed nnU-Net results folder
                shutil.copytree(source / "model", into / "model", symlinks=True)
    for path in dest.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    dest.chmod(0o755)
    return dest


def entry_tag(repository: str, name: str, workspace: Workspace) -> str:
    """The tag of an image ccbench builds for an entry: one per workspace and entry name.

    A build in another workspace (another user's, a test's, a second demo) never moves a tag
    that a manifest here recorded, so a run never finds its image changed underneath it.

    Examples
    --------
    >>> from evaluator.workspace import Workspace
    >>> from pathlib import Path
    >>> tag = entry_tag("ccbench", "monai-unet", Workspace(Path("/tmp/ws")))
    >>> tag.startswith("ccbench/monai-unet:") and len(tag.split(":")[1]) == 12
    True
    """
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "entry"
    stamp = hashlib.sha256(f"{workspace.root.resolve()}\0{name}".encode()).hexdigest()[:12]
    return f"{repository}/{slug}:{stamp}"


def build_baselines(
    *,
    workspace: Workspace,
    submissions_dir: Path,
    names: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    docker: bool = True,
    exclude: Sequence[str] = (),
    progress: ProgressHook | None = None,
) -> list[BaselineBuild]:
    """Build each baseline's image on the local base images and submit it as an entry.

    Parameters
    ----------
    workspace
        Build folders, the wheel cache of the base images and the trained models.
    submissions_dir
        Where the manifests (``<name>.yaml``) are written.
    names
        Baselines to build; default: all of :func:`list_baselines` (learned ones without
        trained weights are skipped, with the reason in :attr:`BaselineBuild.skipped`).
    tasks
        Tasks the entries are registered for; default: the baseline's ``tasks`` (else
        :func:`baseline_tasks`), and for a learned baseline only those it was trained on.
    docker
        Build images with the local Docker engine. With ``False`` nothing is built and the
        manifests name the staged build context: such entries run with ``--backend local``
        (development only).
    exclude
        Baselines left out of the default list (the demo submits nnU-Net its own way).
    progress
        Called as ``progress(done, total, status)`` before and after each baseline.

    Returns
    -------
    list of BaselineBuild

    Raises
    ------
    SubmissionError
        An unknown baseline name, or a named learned baseline with no trained weights.
    DockerUnavailableError
        ``docker=True`` and no engine answers, or a build fails.
    """
    from evaluator.runner.contract import Resources

    known = list_baselines()
    chosen = list(names) if names else [n for n in known if n not in exclude]
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise SubmissionError(
            f"unknown baseline(s) {', '.join(unknown)} (known: {', '.join(known) or 'none'} in {baselines_dir()})"
        )
    out: list[BaselineBuild] = []
    tick = progress or (lambda done, total, status: None)
    for done, name in enumerate(chosen):
        tick(done, len(chosen), f"{name}: building")
        spec = baseline_spec(name)
        wanted = tuple(tasks) if tasks is not None else (spec.tasks or baseline_tasks())
        if spec.model is not None and tasks is None:  # also every task it was trained on
            from evaluator.datasets.registry import load_registry

            known_tasks = load_registry().tasks
            trained = workspace.root / "baselines" / spec.model
            extra = sorted(
                p.name for p in trained.glob("*") if p.is_dir() and p.name in known_tasks
            )
            wanted = tuple(dict.fromkeys([*wanted, *extra]))
        tag = entry_tag("ccbench", name, workspace)
        weights: dict[str, Path] = {}
        if spec.model is not None:
            weights = _trained_tasks(spec, workspace, wanted)
            if not weights:
                hint = (
                    f"no trained weights for '{name}' on {', '.join(wanted)}: run `ccbench "
                    f"baselines train --model {spec.model} --task {wanted[0]}` first"
                )
                if names:
                    raise SubmissionError(hint)
                out.append(BaselineBuild(name, tag, None, built=False, skipped=hint))
                tick(done + 1, len(chosen), f"{name}: skipped (not trained)")
                continue
            wanted = tuple(t for t in wanted if t in weights)
        try:
            resources = Resources(**spec.resources)
        except ValidationError as err:
            from evaluator.runner.contract import invalid_fields

            raise SubmissionError(f"baselines/{name}/baseline.yaml: {invalid_fields(err)}") from err
        context = stage_context(name, workspace.images / "contexts" / name, weights=weights)
        out.append(
            _build_one(
                name, tag, context, spec, wanted, resources, workspace, submissions_dir, docker
            )
        )
        tick(done + 1, len(chosen), f"{name}: submitted")
    return out


def _build_one(
    name: str,
    tag: str,
    context: Path,
    spec: BaselineSpec,
    tasks: tuple[str, ...],
    resources: Resources,
    workspace: Workspace,
    submissions_dir: Path,
    docker: bool,
) -> BaselineBuild:
    from evaluator.runner.contract import Manifest, write_manifest

    if not docker:
        manifest = Manifest(
            name=name,
            team="ccbench baselines",
            image=f"local:{context}",
            image_digest="sha256:" + "0" * 64,
            tasks=tasks,
            resources=resources,
            command=("{python}", str(context / "predict.py")),
            kind="baseline",
            prompts=spec.prompts,  # type: ignore[arg-type]  # checked by the model
        )
        return BaselineBuild(name, tag, write_manifest(manifest, submissions_dir), False, tasks)
    from evaluator.runner.images import BASE_IMAGES, build_base_images, build_context, image_size_mb
    from evaluator.runner.submissions import submit_image

    if spec.base not in BASE_IMAGES:
        raise SubmissionError(
            f"baselines/{name}/baseline.yaml: unknown base '{spec.base}' (one of {', '.join(BASE_IMAGES)})"
        )
    build_base_images(workspace, images=(spec.base,))
    build_context(context, tag, base=BASE_IMAGES[spec.base].tag)
    _, path = submit_image(
        tag,
        name=name,
        tasks=tasks,
        submissions_dir=submissions_dir,
        team="ccbench baselines",
        resources=resources,
        overwrite=True,
        kind="baseline",
        prompts=spec.prompts,
        labels={t: v for t, v in (spec.labels or {}).items() if t in tasks} or None,
    )
    return BaselineBuild(name, tag, path, True, tasks, size_mb=image_size_mb(tag))


@dataclass(frozen=True)
class NnunetEntry:
    """What :func:`submit_nnunet_results` made: the manifest, its path, the image and its size."""

    manifest: Manifest
    path: Path
    image: str
    size_mb: float
    results: NnunetResults
    #: Task -> its channel names in the model's channel order (as matched to dataset.json).
    channels: dict[str, list[str]]


def submit_nnunet_results(
    path: Path,
    *,
    name: str,
    tasks: Sequence[str],
    workspace: Workspace,
    submissions_dir: Path,
    configuration: str = "3d_fullres",
    folds: Sequence[str] | None = None,
    checkpoint: str = "checkpoint_final.pth",
    tta: bool = True,
    team: str = "",
    interface: Interface = "batch",
    resources: Resources | None = None,
    overwrite: bool = False,
    baseline: bool = False,
) -> NnunetEntry:
    """Pack an nnU-Net results folder, build its image and register it as an entry.

    ``ccbench submit --nnunet-results``: :func:`evaluator.runner.nnunet_pack.open_results`
    finds and checks the folder (``configuration``, ``folds``, ``checkpoint``),
    :func:`~evaluator.runner.nnunet_pack.pack_results` packs it per task (``tta`` is the packed
    default) and the ``nnunet`` build context of ``baselines/`` holds the program.

    The image is ``ccbench-nnunet/<name>:<hash of workspace and name>`` on the nnU-Net base
    image (built first when missing); the manifest's ``command`` carries ``--tta`` or
    ``--no-tta``. What a failed packing wrote is removed again.

    Raises
    ------
    SubmissionError
        A results folder that does not fit a task (see :func:`open_results` and
        :func:`task_channels`), an existing entry without ``overwrite``, or a name that is not
        a valid entry name.
    DockerUnavailableError
        No engine, or a failed build.
    """

    from evaluator.datasets.registry import load_registry
    from evaluator.runner.contract import NAME_PATTERN, manifest_path
    from evaluator.runner.images import (
        BASE_IMAGES,
        build_base_images,
        build_context,
        image_size_mb,
    )
    from evaluator.runner.nnunet_pack import open_results, pack_results, task_channels
    from evaluator.runner.submissions import submit_image

    if not re.fullmatch(NAME_PATTERN, name):
        raise SubmissionError(f"entry name {name!r}: letters, digits and _.- only (up to 64)")
    tag = entry_tag("ccbench-nnunet", name, workspace)
    if manifest_path(name, submissions_dir).exists() and not overwrite:
        raise SubmissionError(
            f"entry '{name}' already exists ({manifest_path(name, submissions_dir)}); "
            "pass --overwrite to replace it"
        )
    registry = load_registry()
    results = open_results(path, configuration=configuration, folds=folds, checkpoint=checkpoint)
    specs = [registry.task(t) for t in tasks]
    # every task checked before anything is written
    channels = {spec.name: task_channels(results, spec) for spec in specs}
    packed_root = workspace.images / "packed" / f"entry-{name}"
    try:
        packed = {
            spec.name: pack_results(results, spec, packed_root / spec.name, tta=tta)
            for spec in specs
        }
    except BaseException:
        shutil.rmtree(packed_root, ignore_errors=True)
        raise
    context = stage_context(
        "nnunet", workspace.images / "contexts" / f"entry-{name}", weights=packed
    )
    shutil.rmtree(packed_root, ignore_errors=True)  # the context holds the copy that is built
    build_base_images(workspace, images=("nnunet",))
    build_context(context, tag, base=BASE_IMAGES["nnunet"].tag)
    manifest, written = submit_image(
        tag,
        name=name,
        tasks=[s.name for s in specs],
        submissions_dir=submissions_dir,
        team=team,
        interface=interface,
        resources=resources,
        command=("python", "/opt/algorithm/predict.py", "--tta" if tta else "--no-tta"),
        overwrite=overwrite,
        kind="baseline" if baseline else "entry",
    )
    return NnunetEntry(manifest, written, tag, image_size_mb(tag), results, channels)
