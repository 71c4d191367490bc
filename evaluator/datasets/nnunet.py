"""A generic nnU-Net v2 raw dataset (``adapter: nnunet``).

Layout, as nnU-Net v2 defines it::

    <root>/dataset.json                      channel_names, labels, file_ending, numTraining
    <root>/imagesTr/<case>_<XXXX><ending>    one file per channel, XXXX = 0000, 0001, ...
    <root>/labelsTr/<case><ending>           integer label map

Channel ``XXXX`` is the ``int(XXXX)``-th entry of ``channel_names``; it is given the name of the
task channel with the same name (case-insensitive) or, failing that, the task channel at the same
position. Without ``dataset.json`` the file ending is ``.nii.gz`` and the channels are the task's,
in order. A case is any ``<case>`` seen in ``imagesTr`` or ``labelsTr``, so a case that lacks a
channel file is still listed (and reported by ``ccbench data check``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluator.datasets.base import Case, FolderAdapter
from evaluator.datasets.imageio import read_json
from evaluator.errors import RegistryError

if TYPE_CHECKING:
    from evaluator.datasets.registry import TaskSpec

__all__ = [
    "DATASET_JSON",
    "SPLITS_FILE",
    "NnunetAdapter",
    "export_raw",
    "match_channels",
    "nnunet_dataset_name",
]

DATASET_JSON = "dataset.json"
#: nnU-Net's cross-validation split file (a list of ``{"train": [...], "val": [...]}``).
SPLITS_FILE = "splits_final.json"
_DEFAULT_ENDING = ".nii.gz"


class NnunetAdapter(FolderAdapter):
    """nnU-Net v2 raw layout (see the module docstring).

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from evaluator.datasets.registry import load_registry
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "imagesTr").mkdir(); (root / "labelsTr").mkdir()
    >>> _ = (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT", "1": "PET"},
    ...     "labels": {"background": 0, "lesion": 1}, "file_ending": ".nii.gz", "numTraining": 1}))
    >>> _ = (root / "labelsTr" / "case_7.nii.gz").write_bytes(b"")
    >>> adapter = NnunetAdapter(load_registry().task("autopet-nnunet"), root)
    >>> adapter.case_ids(), adapter.case("case_7").channels["PET"].name
    (['case_7'], 'case_7_0001.nii.gz')
    """

    @cached_property
    def dataset_json(self) -> dict[str, Any]:
        """The parsed ``dataset.json``; empty when the file is absent."""
        path = self.root / DATASET_JSON
        if not path.is_file():
            return {}
        data = read_json(path, what="nnU-Net dataset description")
        if not isinstance(data, dict):
            raise RegistryError(f"{path}: expected a JSON object")
        return data

    def file_ending(self) -> str:
        """``file_ending`` of ``dataset.json`` (default ``.nii.gz``)."""
        return str(self.dataset_json.get("file_ending", _DEFAULT_ENDING))

    def channel_files(self) -> dict[str, str]:
        """Channel name -> four-digit channel suffix (``"0000"``, ...).

        The task's channels come first; its optional channels (``optional_channels`` of
        datasets.yaml) follow in order, and a case has them only where their files exist.
        """
        names = self.dataset_json.get("channel_names") or self.dataset_json.get("modality")
        return match_channels(names, self.task, where=str(self.root / DATASET_JSON))

    def _metadata(self, case_id: str) -> dict[str, Any]:
        return {}

    def _scan(self) -> list[Case]:
        ending = self.file_ending()
        images, labels = self.root / "imagesTr", self.root / "labelsTr"
        pattern = re.compile(rf"(?P<case>.+)_(?P<channel>\d{{4}}){re.escape(ending)}")
        ids: set[str] = set()
        if images.is_dir():
            for path in images.iterdir():
                match = pattern.fullmatch(path.name)
                if match:
                    ids.add(match["case"])
        if labels.is_dir():
            ids.update(p.name[: -len(ending)] for p in labels.iterdir() if p.name.endswith(ending))
        channels = self.channel_files()
        optional = set(self.task.optional_channels)
        return [
            Case(
                case_id=case_id,
                channels={
                    ch: images / f"{case_id}_{suffix}{ending}"
                    for ch, suffix in channels.items()
                    if ch not in optional or (images / f"{case_id}_{suffix}{ending}").is_file()
                },
                label=labels / f"{case_id}{ending}",
                metadata=self._metadata(case_id),
            )
            for case_id in sorted(ids)
        ]


def match_channels(
    names: Mapping[str, Any] | None, task: TaskSpec, *, where: str
) -> dict[str, str]:
    """Task channel -> nnU-Net channel suffix, from ``channel_names`` of a ``dataset.json``.

    A channel is matched by name (case-insensitive) to the task's channels and optional
    channels; when the names do not all match and there are exactly as many channels as the
    task requires, by position (nnU-Net's channel names are often normalisation schemes, e.g.
    ``{"0": "CT", "1": "CT"}`` or ``"noNorm"``), unless a name that is one of the task's
    channels sits at another channel's place. Without names the task's channels are numbered
    in order.

    Raises
    ------
    RegistryError
        The channels cannot be matched (``where`` names the file in the message).

    Examples
    --------
    >>> from evaluator.datasets.registry import load_registry
    >>> task = load_registry().task("autopet-phantom")
    >>> match_channels({"0": "ct", "1": "pet"}, task, where="dataset.json")
    {'CT': '0000', 'PET': '0001'}
    >>> match_channels({"0": "CT", "1": "CT"}, task, where="dataset.json")
    {'CT': '0000', 'PET': '0001'}
    >>> match_channels({"0": "CT"}, task, where="dataset.json")
    Traceback (most recent call last):
    ...
    evaluator.errors.RegistryError: dataset.json: channel_names (CT) lacks PET of task 'autopet-phantom'
    """
    required = list(task.channels)
    every = [*required, *task.optional_channels]
    if not names:
        return {ch: f"{i:04d}" for i, ch in enumerate(every)}
    try:
        ordered = sorted(((int(k), str(v)) for k, v in dict(names).items()), key=lambda kv: kv[0])
    except (TypeError, ValueError):
        raise RegistryError(f"{where}: channel_names keys must be channel numbers") from None
    by_lower = {ch.lower(): ch for ch in every}
    lowered = [v.lower() for _, v in ordered]
    named = all(v in by_lower for v in lowered) and len(set(lowered)) == len(lowered)
    # more channels than the required ones: only optional channels, named as in datasets.yaml
    if not (len(ordered) == len(required) or (len(ordered) <= len(every) and named)):
        optional = task.optional_channels
        raise RegistryError(
            f"{where}: channel_names lists {len(ordered)} channels "
            f"({', '.join(v for _, v in ordered)}), task '{task.name}' expects "
            f"{len(required)} ({', '.join(required)})"
            + (f" and optionally {', '.join(optional)} by name" if optional else "")
        )
    if named:
        mapped = {by_lower[v.lower()]: f"{i:04d}" for i, v in ordered}
        if set(required) <= set(mapped):
            return mapped
        raise RegistryError(
            f"{where}: channel_names ({', '.join(v for _, v in ordered)}) "
            f"lacks {', '.join(c for c in required if c not in mapped)} of task '{task.name}'"
        )
    # by position; a name that is one of the task's channels (once) must then sit at its place
    counts = Counter(v.lower() for _, v in ordered)
    for position, (_, value) in enumerate(ordered):
        channel = by_lower.get(value.lower())
        if (
            channel in required
            and counts[value.lower()] == 1
            and required.index(channel) != position
        ):
            raise RegistryError(
                f"{where}: channel_names ({', '.join(v for _, v in ordered)}) are matched to "
                f"task '{task.name}' ({', '.join(required)}) by position, but channel "
                f"{position} is named {value}"
            )
    return {ch: f"{i:04d}" for ch, (i, _) in zip(required, ordered, strict=True)}


def _place(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (same file system), else copy it."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def export_raw(
    task: TaskSpec,
    cases: Sequence[Case],
    out: Path,
    *,
    name: str,
    folds: Sequence[Mapping[str, Sequence[str]]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``cases`` as an nnU-Net v2 raw dataset in ``out`` (``Dataset<NNN>_<Name>``).

    Writes ``imagesTr/<case>_<XXXX>.nii.gz`` for each of the task's (required) channels in
    order, ``labelsTr/<case>.nii.gz``, ``dataset.json`` (``channel_names``, ``labels``,
    ``numTraining``, ``file_ending``) and, given ``folds``, ``splits_final.json``. A channel on
    another grid than the reference channel (HECKTOR's PT) is written resampled onto it, as
    :meth:`~evaluator.datasets.base.Case.read_channel` reads it, since nnU-Net needs one grid per
    case; other NIfTI files are hard-linked (or copied), anything else converted.

    Raises
    ------
    RegistryError
        A task that is not 3D, or whose labels are not 1..N (nnU-Net needs consecutive labels).
    ImageReadError
        A case file that cannot be read (named).

    Examples
    --------
    >>> import tempfile
    >>> from evaluator.datasets.registry import load_registry
    >>> out = export_raw(load_registry().task("autopet-phantom"), [], Path(tempfile.mkdtemp()),
    ...                  name="Dataset906_X")
    >>> json.loads((out / "dataset.json").read_text())["channel_names"]
    {'0': 'CT', '1': 'PET'}
    """
    import SimpleITK as sitk

    values = sorted(task.labels)
    if task.dims != 3 or values != list(range(1, len(values) + 1)):
        raise RegistryError(
            f"task '{task.name}': nnU-Net export needs a 3D task with labels 1..N "
            f"(has {task.dims}D, labels {values})"
        )
    images, labels = out / "imagesTr", out / "labelsTr"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    channels = list(task.channels)
    for done, case in enumerate(cases):
        for index, channel in enumerate(channels):
            target = images / f"{case.case_id}_{index:04d}{_DEFAULT_ENDING}"
            source = case.channels[channel]
            resampled = case.reference_channel not in (None, channel)
            if source.name.endswith(_DEFAULT_ENDING) and not resampled:
                _place(source, target)
            else:
                sitk.WriteImage(case.read_channel(channel), str(target), True)
        if case.label is None:
            raise RegistryError(f"case {case.case_id} of task '{task.name}' has no label file")
        target = labels / f"{case.case_id}{_DEFAULT_ENDING}"
        if case.label.name.endswith(_DEFAULT_ENDING):
            _place(case.label, target)
        else:
            sitk.WriteImage(case.read_label(), str(target), True)
        if progress is not None:
            progress(done + 1, len(cases))
    description = {
        "name": name,
        "description": f"{task.dataset} (exported by ccbench from task '{task.name}')",
        "channel_names": {str(i): ch for i, ch in enumerate(channels)},
        "labels": {"background": 0, **{str(task.labels[v]): v for v in values}},
        "numTraining": len(cases),
        "file_ending": _DEFAULT_ENDING,
    }
    (out / DATASET_JSON).write_text(json.dumps(description, indent=1) + "\n")
    if folds is not None:
        split = [{"train": list(f["train"]), "val": list(f["val"])} for f in folds]
        (out / SPLITS_FILE).write_text(json.dumps(split, indent=1) + "\n")
    return out


def nnunet_dataset_name(task: str) -> tuple[int, str]:
    """nnU-Net dataset id (900 + the task's position in datasets.yaml) and folder name.

    The ids 900-999 stay clear of the public nnU-Net datasets (Dataset001-Dataset5xx), so
    ccbench's exports can sit beside a user's own ``nnUNet_raw``.

    Examples
    --------
    >>> nnunet_dataset_name("autopet-phantom")
    (906, 'Dataset906_AutopetPhantom')
    """
    from evaluator.datasets.registry import load_registry

    names = list(load_registry().tasks)
    if task not in names:
        raise RegistryError(f"unknown task '{task}' (not in datasets.yaml)")
    dataset_id = 900 + names.index(task) + 1
    title = "".join(part.capitalize() for part in task.replace("_", "-").split("-") if part)
    return dataset_id, f"Dataset{dataset_id:03d}_{title}"
