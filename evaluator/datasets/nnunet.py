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

import re
from functools import cached_property
from typing import Any

from evaluator.datasets.base import Case, FolderAdapter
from evaluator.datasets.imageio import read_json
from evaluator.errors import RegistryError

__all__ = ["DATASET_JSON", "NnunetAdapter"]

DATASET_JSON = "dataset.json"
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
        required = list(self.task.channels)
        every = [*required, *self.task.optional_channels]
        if not names:
            return {ch: f"{i:04d}" for i, ch in enumerate(every)}
        ordered = sorted(((int(k), str(v)) for k, v in dict(names).items()), key=lambda kv: kv[0])
        by_lower = {ch.lower(): ch for ch in every}
        named = all(v.lower() in by_lower for _, v in ordered)
        # more channels than the required ones: only optional channels, named as in datasets.yaml
        if not (len(ordered) == len(required) or (len(ordered) <= len(every) and named)):
            optional = self.task.optional_channels
            raise RegistryError(
                f"{self.root / DATASET_JSON}: channel_names lists {len(ordered)} channels "
                f"({', '.join(v for _, v in ordered)}), task '{self.task.name}' expects "
                f"{len(required)} ({', '.join(required)})"
                + (f" and optionally {', '.join(optional)} by name" if optional else "")
            )
        if named:
            mapped = {by_lower[v.lower()]: f"{i:04d}" for i, v in ordered}
            if set(required) <= set(mapped):
                return mapped
            raise RegistryError(
                f"{self.root / DATASET_JSON}: channel_names ({', '.join(v for _, v in ordered)}) "
                f"lacks {', '.join(c for c in required if c not in mapped)} of task "
                f"'{self.task.name}'"
            )
        return {ch: f"{i:04d}" for ch, (i, _) in zip(required, ordered, strict=True)}

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
