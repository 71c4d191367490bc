"""The container contract: entries (manifests), resources, input staging, supervision.

Two interfaces:

``batch`` (default)
    One container run per split. ``/input/<case_id>/<channel><ext>`` holds every case
    (``.nii.gz`` or ``.mha``; channels as in ``datasets.yaml``, optional channels such as the
    AutoPET organ map ``ORGANS`` only for cases that have them) and ``/input/cases.json`` lists
    them: ``{"task": ..., "cases": [{"case_id": ..., "channels": {"CT": "<case_id>/CT.nii.gz"}}]}``.
    The container writes ``/output/<case_id><ext>`` with ``ext`` one of
    :data:`evaluator.runner.outputs.OUTPUT_EXTENSIONS` (``.nii.gz``, ``.nii``, ``.mha``).
    An instance task (2D, ChestXDet; images staged as ``.mha``) is answered with one file,
    ``/output/predictions.json``: the COCO results of every case (``image_id`` = case id, RLE
    ``segmentation`` compressed or not, ``score``), or the ChestXDet style list.
``grand-challenge``
    One run per case: ``/input/images/<slug>/<uuid>.mha`` per channel, output
    ``/output/images/<output-slug>/<uuid>.mha``; the slugs of the autoPET grand-challenge
    algorithms (``ct``, ``pet`` -> ``automated-petct-lesion-segmentation``) are the AutoPET
    defaults, so an existing autoPET grand-challenge container runs unchanged.

A program inside a container reads ``/input`` and writes ``/output``; the local development
backend sets ``CCBENCH_INPUT`` / ``CCBENCH_OUTPUT`` to the host folders instead (and replaces
``{input}``, ``{output}``, ``{python}`` in the entry's command).

``/output`` is a size- and inode-capped file system and files leave it only through
:mod:`evaluator.runner.outputs` (copied, never followed, permissions normalised).

Every name in a manifest that becomes part of a path is checked by one pattern at ``submit`` and
at load: entry names (:data:`NAME_PATTERN`) and grand-challenge slugs (:data:`SLUG_PATTERN`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import SimpleITK as sitk
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evaluator.choices import Filesystem, Interface, PromptKind
from evaluator.errors import InvalidLabelError, SubmissionError
from evaluator.runner.outputs import folder_bytes

if TYPE_CHECKING:
    from evaluator.datasets.base import Case
    from evaluator.datasets.registry import TaskSpec

__all__ = [
    "GC_DEFAULTS",
    "INPUT_EXTENSIONS",
    "NAME_PATTERN",
    "SLUG_PATTERN",
    "UNPRIVILEGED_UID",
    "ContainerRun",
    "EntryKind",
    "Filesystem",
    "GrandChallengeSlugs",
    "Interface",
    "Manifest",
    "Resources",
    "RunStatus",
    "SandboxLimits",
    "check_labels",
    "container_user",
    "describe_exit",
    "finished_run",
    "gc_inputs_json",
    "gc_slugs",
    "invalid_fields",
    "load_manifest",
    "manifest_labels",
    "manifest_path",
    "stage_batch_inputs",
    "stage_gc_inputs",
    "stage_split_inputs",
    "supervise",
    "truncate_log",
    "write_manifest",
]

#: A submitted entry or a reference algorithm (its runs are stored with this kind).
EntryKind = Literal["entry", "baseline"]

#: Image files staged as inputs unchanged (anything else is converted to ``.mha``).
INPUT_EXTENSIONS = (".nii.gz", ".nii", ".mha")
#: Entry names (and other names that become file names): no slash, no leading dot.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
#: grand-challenge socket slugs: lower-case words joined by hyphens (they become folders).
SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
_NAME_RE = NAME_PATTERN


#: uid:gid a container runs as when the harness itself is root.
UNPRIVILEGED_UID = 1000


def container_user() -> tuple[int, int]:
    """``(uid, gid)`` of the container's processes: the harness's own, never root.

    Examples
    --------
    >>> container_user()[0] != 0
    True
    """
    if os.getuid() == 0:
        return UNPRIVILEGED_UID, UNPRIVILEGED_UID
    return os.getuid(), os.getgid()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Resources(_Frozen):
    """What one entry may use per container run (defaults follow grand-challenge).

    Attributes
    ----------
    memory_mb
        Memory limit, MiB, with no extra swap; the ``/tmp`` tmpfs counts against it.
    cpus
        CPU share (``--cpus``); ``OMP_NUM_THREADS`` and friends are set to ``ceil(cpus)``.
    pids
        Process-count limit (grand-challenge's 128 by default).
    time_limit_s
        Wall-clock limit per case, seconds; a batch run gets ``time_limit_s * n_cases``.
    tmp_mb
        Size of the writable ``/tmp`` tmpfs, MiB.
    shm_mb
        ``/dev/shm`` size, MiB (nnU-Net needs more than Docker's 64).
    output_mb
        Output cap per case, MiB (a batch run gets ``output_mb * n_cases``); a single file may
        not exceed it either. Enforced by the kernel (a capped tmpfs at ``/output``, whose pages
        also count against ``memory_mb``).
    output_files
        Files and folders per case the container may create in ``/output`` (a batch run gets
        ``output_files * n_cases + 16``).
    gpus
        ``"auto"``: pass every GPU through when the host has a GPU runtime (never required);
        ``"never"``; ``"all"`` or a count: required, the run fails with a clear reason on a host
        without them.
    filesystem
        ``"ephemeral"`` (grand-challenge's behaviour): the container may write anywhere in its
        own throw-away layer, capped at ``layer_mb`` and discarded with the container;
        ``"read-only"``: only ``/output``, ``/tmp`` and ``/dev/shm`` are writable.
    layer_mb
        Cap of the ephemeral writable layer, MiB (watched; past it the container is killed).
    """

    memory_mb: int = Field(default=4096, ge=64)
    cpus: float = Field(default=2.0, gt=0, allow_inf_nan=False)
    pids: int = Field(default=128, ge=8)
    time_limit_s: float = Field(default=600.0, gt=0, allow_inf_nan=False)
    tmp_mb: int = Field(default=512, ge=1)
    shm_mb: int = Field(default=64, ge=1)
    output_mb: int = Field(default=256, ge=1)
    output_files: int = Field(default=32, ge=1)
    gpus: Literal["auto", "never", "all"] | Annotated[int, Field(ge=1, le=64)] = "auto"
    filesystem: Filesystem = "ephemeral"
    layer_mb: int = Field(default=2048, ge=1)

    @property
    def gpu_count(self) -> int | None:
        """GPUs to request: -1 for all, a count, 0 for none; None for "when present"."""
        if self.gpus == "never":
            return 0
        if self.gpus == "auto":
            return None
        return -1 if self.gpus == "all" else int(self.gpus)


class SandboxLimits(_Frozen):
    """Upper bounds the organiser sets; an entry's :class:`Resources` must stay within them.

    Examples
    --------
    >>> SandboxLimits().check(Resources(memory_mb=1024), entry="demo")
    >>> SandboxLimits(max_memory_mb=512).check(Resources(memory_mb=1024), entry="demo")
    Traceback (most recent call last):
    ...
    evaluator.errors.SubmissionError: entry demo: memory_mb 1024 exceeds the organiser's limit 512
    """

    max_memory_mb: int = 32768
    max_cpus: float = 16.0
    max_pids: int = 512
    max_time_limit_s: float = 3600.0
    max_tmp_mb: int = 8192
    max_shm_mb: int = 16384
    max_output_mb: int = 4096
    max_output_files: int = 4096
    max_layer_mb: int = 16384
    #: The organiser's choice of file system: ``any`` (the entry's), or ``read-only`` for all.
    filesystem: Literal["any", "read-only"] = "any"

    def apply(self, resources: Resources) -> Resources:
        """``resources`` with the organiser's file-system choice applied."""
        if self.filesystem == "read-only" and resources.filesystem != "read-only":
            return resources.model_copy(update={"filesystem": "read-only"})
        return resources

    def check(self, resources: Resources, *, entry: str) -> None:
        """Raise :class:`SubmissionError` naming the first resource above its limit."""
        names = ("memory_mb", "cpus", "pids", "time_limit_s", "tmp_mb", "shm_mb", "output_mb")
        for name in (*names, "output_files", "layer_mb"):
            value = getattr(resources, name)
            limit = getattr(self, f"max_{name}")
            if value > limit:
                raise SubmissionError(
                    f"entry {entry}: {name} {value} exceeds the organiser's limit {limit}"
                )


@dataclass(frozen=True)
class GrandChallengeSlugs:
    """The grand-challenge interface of a task: the folder of each input channel under
    ``/input/images/`` and the output folder under ``/output/images/``.

    grand-challenge's sockets are named ``<folder>-image`` for the inputs (``ct-image`` at
    ``images/ct``) and after the folder for the output; they appear in ``/input/inputs.json``.
    """

    inputs: Mapping[str, str]
    output: str

    def socket(self, channel: str) -> str:
        """The input socket slug of ``channel``, e.g. ``ct-image``."""
        folder = self.inputs[channel]
        return folder if folder.endswith("-image") else f"{folder}-image"


#: Defaults per dataset family (``TaskSpec.phantom_of`` or the task name before ``-``).
GC_DEFAULTS: dict[str, GrandChallengeSlugs] = {
    "autopet": GrandChallengeSlugs(
        {"CT": "ct", "PET": "pet"}, "automated-petct-lesion-segmentation"
    ),
    "hecktor": GrandChallengeSlugs({"CT": "ct", "PT": "pet"}, "gtv-segmentation"),
}


class Manifest(_Frozen):
    """One submitted entry: ``submissions/<name>.yaml``.

    Examples
    --------
    >>> m = Manifest(name="thr", image="ccbench/thr:1", image_digest="sha256:" + "0" * 64,
    ...              tasks=("autopet-phantom",))
    >>> m.interface, m.resources.pids
    ('batch', 128)
    """

    name: str = Field(pattern=_NAME_RE)
    team: str = ""
    image: str = Field(min_length=1)
    image_digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    interface: Interface = "batch"
    tasks: tuple[str, ...] = Field(min_length=1)
    resources: Resources = Field(default_factory=Resources)
    command: tuple[str, ...] | None = None
    gc_inputs: dict[str, Annotated[str, Field(pattern=SLUG_PATTERN, max_length=64)]] | None = None
    gc_output: str | None = Field(default=None, pattern=SLUG_PATTERN, max_length=64)
    submitted: str = ""
    #: ``baseline`` for a reference algorithm (``ccbench baselines build``, ``submit
    #: --baseline``): ranked with the entries, marked as a baseline on the boards.
    kind: EntryKind = "entry"
    #: What the entry reads from ``/input/prompts.json`` (:mod:`evaluator.prompts`): ``text``
    #: (the target names to segment) and/or ``clicks`` (an interactive entry, run once per click
    #: budget). Written as one name or a list.
    prompts: tuple[PromptKind, ...] = ()
    #: Task -> the labels the entry predicts (names or values of the task's label map), for a
    #: model trained on several datasets that predicts only some labels of a task; a task not
    #: named here: every label. Labels left out are recorded as not predicted, never scored as
    #: empty predictions (:func:`manifest_labels`).
    labels: dict[str, tuple[int | str, ...]] | None = None

    @field_validator("prompts", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value


def invalid_fields(err: ValidationError) -> str:
    """One line naming each invalid field and why (for :class:`SubmissionError` messages).

    Examples
    --------
    >>> try:
    ...     Resources(memory_mb=1)
    ... except ValidationError as err:
    ...     print(invalid_fields(err))
    field 'memory_mb': Input should be greater than or equal to 64
    """
    return "; ".join(f"field '{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in err.errors())


def manifest_path(name: str, submissions_dir: Path) -> Path:
    """``<submissions_dir>/<name>.yaml``."""
    return submissions_dir / f"{name}.yaml"


def write_manifest(manifest: Manifest, submissions_dir: Path) -> Path:
    """Write ``manifest`` as YAML (``submitted`` stamped now when empty); return the path."""
    if not manifest.submitted:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        manifest = manifest.model_copy(update={"submitted": stamp})
    submissions_dir.mkdir(parents=True, exist_ok=True)
    path = manifest_path(manifest.name, submissions_dir)
    data = manifest.model_dump(mode="json", exclude_none=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load_manifest(entry: str | os.PathLike[str], *, submissions_dir: Path) -> Manifest:
    """Load an entry by name (``submissions_dir/<name>.yaml``) or by path.

    Raises
    ------
    SubmissionError
        Missing file, bad YAML, or a field that fails validation (named).
    """
    path = Path(entry)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = manifest_path(str(entry), submissions_dir)
    if not path.is_file():
        known = sorted(p.stem for p in submissions_dir.glob("*.yaml"))
        raise SubmissionError(
            f"no entry '{entry}' ({path} does not exist; known: {', '.join(known) or 'none'}); "
            "register one with `ccbench submit IMAGE --name N --task T`"
        )
    try:
        raw = yaml.safe_load(path.read_text())
        manifest = Manifest(**raw)
    except (yaml.YAMLError, TypeError) as err:
        raise SubmissionError(f"{path}: not a mapping of manifest fields: {err}") from err
    except ValidationError as err:
        raise SubmissionError(f"{path}: {invalid_fields(err)}") from err
    check_labels(manifest.labels, manifest.tasks, where=str(path))
    return manifest


def check_labels(
    labels: Mapping[str, Sequence[int | str]] | None, tasks: Sequence[str], *, where: str
) -> None:
    """Check the tasks and labels of a manifest's ``labels`` against the registry.

    Raises
    ------
    SubmissionError
        A task that is not one of ``tasks`` or that the registry does not know, or a label
        that is not one of its task's (named, with the labels known), prefixed by ``where``
        (the manifest file).
    """
    from evaluator.datasets.labels import declared_labels
    from evaluator.datasets.registry import load_registry

    if not labels:
        return
    registry = load_registry()
    for task, given in labels.items():
        if task not in tasks or task not in registry.tasks:
            raise SubmissionError(
                f"{where}: labels: task '{task}' is not one of the entry's tasks "
                f"({', '.join(t for t in tasks if t in registry.tasks)})"
            )
        try:
            declared_labels(registry.tasks[task].labels, given, what=f"{where}: labels of '{task}'")
        except InvalidLabelError as err:
            raise SubmissionError(str(err)) from err


def manifest_labels(manifest: Manifest, task: TaskSpec, *, where: str) -> tuple[int, ...] | None:
    """The label values ``manifest`` declares for ``task``; None: every label (no declaration).

    Raises
    ------
    SubmissionError
        A declared label is not one of the task's (named with the manifest ``where``).
    """
    from evaluator.datasets.labels import declared_labels

    given = (manifest.labels or {}).get(task.name)
    if given is None:
        return None
    try:
        return declared_labels(task.labels, given, what=f"{where}: labels of '{task.name}'")
    except InvalidLabelError as err:
        raise SubmissionError(str(err)) from err


def gc_slugs(manifest: Manifest, task: TaskSpec) -> GrandChallengeSlugs:
    """The grand-challenge slugs of ``task`` for ``manifest`` (manifest fields win).

    Channels without a known slug use the channel name in lower case; the default output slug is
    ``segmentation``.
    """
    family = task.phantom_of or task.name.split("-")[0]
    default = GC_DEFAULTS.get(family, GrandChallengeSlugs({}, "segmentation"))
    every = (*task.channels, *task.optional_channels)
    inputs = {ch: default.inputs.get(ch, ch.lower()) for ch in every}
    unknown = sorted(set(manifest.gc_inputs or {}) - set(every))
    if unknown:
        raise SubmissionError(
            f"entry {manifest.name}: gc_inputs names channels {unknown} that task '{task.name}' "
            f"does not have (its channels: {', '.join(every)})"
        )
    inputs.update(manifest.gc_inputs or {})
    if len(set(inputs.values())) != len(inputs):
        raise SubmissionError(f"entry {manifest.name}: two channels share a slug ({inputs})")
    for slug in (*inputs.values(), manifest.gc_output or default.output):
        if not re.fullmatch(SLUG_PATTERN, slug):
            raise SubmissionError(f"entry {manifest.name}: slug {slug!r} is not a valid slug")
    return GrandChallengeSlugs(inputs, manifest.gc_output or default.output)


# --------------------------------------------------------------------------------------------
# staging
# --------------------------------------------------------------------------------------------


def _image_suffix(path: Path) -> str:
    name = path.name.lower()
    return next((ext for ext in INPUT_EXTENSIONS if name.endswith(ext)), path.suffix.lower())


def _resampled(case: Case, channel: str) -> bool:
    """Whether the adapter resamples this channel when read (HECKTOR PT onto CT)."""
    ref = getattr(case, "reference_channel", None)
    return ref is not None and channel != ref


def _write_mha(img: sitk.Image, dest: Path) -> None:
    """Write ``img`` as MHA without the source format's metadata (NIfTI header fields)."""
    for key in img.GetMetaDataKeys():
        img.EraseMetaData(key)
    sitk.WriteImage(img, str(dest))


def _check_image(case: Case, channel: str) -> Path:
    """The channel's file, after checking that its header reads (else the dataset's fault)."""
    from evaluator.errors import ImageReadError

    src = Path(case.channels[channel])
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(src))
    try:
        if not src.is_file():
            raise RuntimeError("file does not exist")
        reader.ReadImageInformation()
    except RuntimeError as err:
        detail = str(err).strip().splitlines()[-1] if str(err).strip() else "unreadable"
        raise ImageReadError(
            f"case {case.case_id}: image {channel} ({src.name}) cannot be read: {detail[:160]}"
        ) from None
    return src


def _place(case: Case, channel: str, dest_stem: Path) -> Path:
    """Hard-link (or copy) a channel file, or write it as ``.mha`` when it must be converted.

    A hard link shares the dataset file's permissions, so it is used only for a file that is
    already world-readable; anything else is copied (the copy made readable), never chmod-ed.
    """
    src = _check_image(case, channel)
    ext = _image_suffix(src)
    if ext in INPUT_EXTENSIONS and not _resampled(case, channel):
        dest = dest_stem.with_name(dest_stem.name + ext)
        linked = False
        if src.stat().st_mode & 0o004:
            try:
                os.link(src, dest)
                linked = True
            except OSError:
                pass
        if not linked:
            shutil.copyfile(src, dest)
            dest.chmod(0o644)
        return dest
    dest = dest_stem.with_name(dest_stem.name + ".mha")
    _write_mha(case.read_channel(channel), dest)
    dest.chmod(0o644)
    return dest


def stage_batch_inputs(
    cases: Sequence[Case],
    input_dir: Path,
    *,
    task: TaskSpec,
    skipped: dict[str, str] | None = None,
) -> Path:
    """Lay out ``/input`` of the batch interface; return the path of ``cases.json``.

    Files are hard-linked when possible (cheap, read-only in the container); HECKTOR PET is
    staged resampled onto the CT grid and 2D images as ``.mha``. Folders are world-readable so
    the container's non-root user can read them. A case whose image is missing or unreadable is
    left out of ``cases.json`` and reported in ``skipped`` (case id -> why): the dataset's
    fault, not the entry's.
    """
    from evaluator.errors import ImageReadError

    input_dir.mkdir(parents=True, exist_ok=True)
    input_dir.chmod(0o755)
    listing = []
    for case in cases:
        folder = input_dir / case.case_id
        folder.mkdir()
        folder.chmod(0o755)
        try:
            channels = {
                ch: _place(case, ch, folder / ch).relative_to(input_dir).as_posix()
                for ch in task.present_channels(case.channels)
            }
        except ImageReadError as err:
            shutil.rmtree(folder)
            if skipped is not None:
                skipped[case.case_id] = str(err)
            continue
        listing.append({"case_id": case.case_id, "channels": channels})
    path = input_dir / "cases.json"
    path.write_text(json.dumps({"task": task.name, "cases": listing}, indent=1))
    path.chmod(0o644)
    return path


def stage_split_inputs(
    task: str,
    split: str,
    dest: Path,
    *,
    workspace: Any,
    data_root: Path | None = None,
) -> tuple[Path, dict[str, str]]:
    """Write ``dest`` exactly as a batch container finds ``/input`` for a task's split.

    For trying a model outside a container on the very files it will get (HECKTOR's PT
    resampled onto the CT grid, 2D images as ``.mha``): ``ccbench data cases --stage DIR``.

    Returns
    -------
    tuple
        The path of ``dest/cases.json`` and the cases left out (case id -> why).

    Raises
    ------
    SubmissionError
        ``dest`` exists and is not an empty folder.
    """
    from evaluator.datasets.base import open_dataset, resolve_task
    from evaluator.datasets.splits import resolve_split

    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise SubmissionError(f"{dest}: not an empty folder (the staged inputs need their own)")
    spec = resolve_task(task)
    dataset = open_dataset(spec, workspace=workspace, data_root=data_root)
    ids = resolve_split(spec, split, workspace=workspace, data_root=data_root)
    skipped: dict[str, str] = {}
    path = stage_batch_inputs([dataset.case(c) for c in ids], dest, task=spec, skipped=skipped)
    return path, skipped


def gc_inputs_json(slugs: GrandChallengeSlugs, channels: Sequence[str], key: str) -> list[Any]:
    """``/input/inputs.json`` as grand-challenge writes it: one socket value per input.

    Each value names its socket (``interface``: slug, kind, super kind, relative path) and the
    image placed at ``/input/<relative_path>/<key>.mha``.

    Examples
    --------
    >>> slugs = GrandChallengeSlugs({"CT": "ct"}, "segmentation")
    >>> value = gc_inputs_json(slugs, ["CT"], "k")[0]
    >>> value["interface"]["slug"], value["interface"]["relative_path"], value["image"]["name"]
    ('ct-image', 'images/ct', 'k.mha')
    """
    values = []
    for number, channel in enumerate(channels, start=1):
        slug = slugs.socket(channel)
        values.append(
            {
                "pk": number,
                "interface": {
                    "pk": number,
                    "title": slug.replace("-", " ").title(),
                    "description": f"the case's {channel} image",
                    "slug": slug,
                    "kind": "Image",
                    "super_kind": "Image",
                    "relative_path": f"images/{slugs.inputs[channel]}",
                    "example_value": None,
                },
                "value": None,
                "file": None,
                "image": {"pk": key, "name": f"{key}.mha"},
            }
        )
    return values


def stage_gc_inputs(
    case: Case, input_dir: Path, *, task: TaskSpec, slugs: GrandChallengeSlugs
) -> str:
    """Lay out ``/input/images/<slug>/<uuid>.mha`` and ``/input/inputs.json``; return the uuid.

    Raises
    ------
    ImageReadError
        An image of the case is missing or unreadable (the dataset's fault).
    """
    key = str(uuid.uuid4())
    for folder in (input_dir, input_dir / "images"):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
    channels = task.present_channels(case.channels)
    for channel in channels:
        folder = input_dir / "images" / slugs.inputs[channel]
        folder.mkdir()
        folder.chmod(0o755)
        src = _check_image(case, channel)
        dest = folder / f"{key}.mha"
        if _image_suffix(src) == ".mha" and not _resampled(case, channel):
            shutil.copyfile(src, dest)
        else:
            _write_mha(case.read_channel(channel), dest)
        dest.chmod(0o644)
    listing = input_dir / "inputs.json"
    listing.write_text(json.dumps(gc_inputs_json(slugs, channels, key), indent=2))
    listing.chmod(0o644)
    return key


# --------------------------------------------------------------------------------------------
# one container run
# --------------------------------------------------------------------------------------------

RunStatus = Literal["ok", "exit", "timeout", "oom", "output_cap", "layer_cap", "error"]


@dataclass
class ContainerRun:
    """The outcome of one container (or local process) run.

    Attributes
    ----------
    label
        ``"split"`` for a batch run, the case id for a grand-challenge run.
    status
        ``ok``, ``exit`` (non-zero exit code), ``timeout``, ``oom``, ``output_cap``,
        ``layer_cap`` (the ephemeral writable layer outgrew its cap) or ``error``
        (the engine refused to start it).
    reason
        One line for people; empty when ``status == "ok"``.
    exit_code
        The main process's exit status (``None`` when it never ran).
    seconds
        Wall-clock time from start to exit or kill.
    log
        stdout and stderr, truncated (see :func:`truncate_log`).
    """

    label: str
    status: RunStatus
    reason: str
    exit_code: int | None
    seconds: float
    log: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the run ended by itself with exit code 0."""
        return self.status == "ok"


def supervise(
    wait_once: Callable[[float], int | None],
    kill: Callable[[], None],
    *,
    output_dir: Path,
    time_limit_s: float,
    output_cap_bytes: int | None,
    poll_s: float = 0.25,
    watch: Callable[[], RunStatus | None] | None = None,
) -> tuple[RunStatus, int | None]:
    """Wait for a started process under a wall-clock limit (and a polled output-size cap).

    Parameters
    ----------
    wait_once
        Waits at most the given seconds; returns the exit code, or ``None`` while it still runs.
    kill
        Kills it at once (SIGKILL: a process that ignores SIGTERM still stops on time).
    output_dir
        Watched between waits when ``output_cap_bytes`` is given: above it the process is
        killed. None: the cap is enforced by the kernel (a capped file system), no polling.
    time_limit_s
        Wall-clock limit, seconds.
    watch
        Called between waits (e.g. the writable layer's size, peak memory); a status it
        returns kills the process and is returned.

    Returns
    -------
    tuple
        ``("exit", code)``, ``("timeout", None)``, ``("output_cap", None)`` or what ``watch``
        returned.

    Examples
    --------
    >>> supervise(lambda t: 0, lambda: None, output_dir=Path("."), time_limit_s=1,
    ...           output_cap_bytes=1)
    ('exit', 0)
    """
    deadline = time.monotonic() + time_limit_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            kill()
            return "timeout", None
        code = wait_once(max(0.01, min(poll_s, remaining)))
        if code is not None:
            return "exit", code
        if output_cap_bytes is not None and folder_bytes(output_dir) > output_cap_bytes:
            kill()
            return "output_cap", None
        verdict = watch() if watch is not None else None
        if verdict is not None:
            kill()
            return verdict, None


def finished_run(
    label: str,
    status: RunStatus,
    exit_code: int | None,
    *,
    log: str,
    seconds: float,
    time_limit_s: float,
    details: dict[str, Any] | None = None,
    errors: str | None = None,
) -> ContainerRun:
    """A :class:`ContainerRun` with its reason; exit code 0 turns status ``exit`` into ``ok``.

    The reason quotes the last line of ``errors`` (the program's standard error) when it has
    one, else the last line of ``log``.

    Examples
    --------
    >>> finished_run("split", "exit", 3, log="boom", seconds=1.0, time_limit_s=9).reason
    'container exited with code 3: boom'
    >>> finished_run("c1", "exit", 1, log="OSError: x\\nsockets: ct", errors="OSError: x",
    ...              seconds=1.0, time_limit_s=9).reason
    'container exited with code 1: OSError: x'
    """
    if status == "exit" and exit_code == 0:
        status = "ok"
    return ContainerRun(
        label=label,
        status=status,
        reason=describe_exit(
            status, exit_code, errors if errors and errors.strip() else log, time_limit_s
        ),
        exit_code=exit_code,
        seconds=seconds,
        log=log,
        details=details or {},
    )


def truncate_log(text: str, *, limit: int = 65536) -> str:
    """Keep the first and last ``limit // 2`` characters of a long log.

    Examples
    --------
    >>> truncate_log("a" * 10 + "b" * 10, limit=8)
    'aaaa\\n[... 12 characters cut ...]\\nbbbb'
    """
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"


def describe_exit(status: RunStatus, exit_code: int | None, log: str, limit_s: float) -> str:
    """A one-line reason for a run that did not end with exit code 0."""
    last = next((ln.strip() for ln in reversed(log.splitlines()) if ln.strip()), "")
    tail = f": {last[:200]}" if last else ""
    return {
        "ok": "",
        "exit": f"container exited with code {exit_code}{tail}",
        "timeout": f"container timed out after {limit_s:g} s and was killed",
        "oom": "container ran out of memory and was killed (OOM)",
        "output_cap": "container exceeded the output size cap and was killed",
        "layer_cap": "container wrote more than its writable layer may hold and was killed",
        "error": f"container could not be started{tail}",
    }[status]
