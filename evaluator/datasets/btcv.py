"""BTCV (Beyond the Cranial Vault): abdominal CT, 13 organ labels.

Layout, as distributed (``RawData/Training``)::

    <root>/img/imgNNNN.nii.gz        CT
    <root>/label/labelNNNN.nii.gz    labels 0-13
    <root>/dataset_0.json            optional: the MONAI/UNETR 24 training / 6 validation split

``<root>/Training/`` or ``<root>/RawData/Training/`` holding ``img/`` are accepted too.
**Case id**: ``NNNN`` (the digits of the file name, e.g. ``0001``). ``dataset_0.json`` entries
(``{"training": [{"image": "imagesTr/img0001.nii.gz", "label": ...}], "validation": [...]}``)
are matched to cases through those digits; a case's ``metadata["json_split"]`` is
``"training"``, ``"validation"`` or ``""``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evaluator.datasets.base import Case, FolderAdapter
from evaluator.datasets.imageio import read_json
from evaluator.errors import ImageReadError

__all__ = ["JSON_SPLIT_FILE", "BTCVAdapter", "read_json_split"]

JSON_SPLIT_FILE = "dataset_0.json"
_IMG = re.compile(r"img(?P<id>\d+)\.nii(?:\.gz)?")
_DIGITS = re.compile(r"(\d+)\.nii(?:\.gz)?$")


def read_json_split(path: Path) -> dict[str, list[str]]:
    """The ``training`` and ``validation`` case ids of a MONAI ``dataset_0.json``.

    Parameters
    ----------
    path
        The json file; entries are ``{"image": ".../imgNNNN.nii.gz", "label": ...}``.

    Returns
    -------
    dict
        ``{"training": [...], "validation": [...]}`` with ids ``NNNN``, in file order.

    Raises
    ------
    ImageReadError
        When the file is not valid JSON or an entry has no ``imgNNNN`` file name.

    Examples
    --------
    >>> import json, tempfile
    >>> p = Path(tempfile.mkdtemp()) / "dataset_0.json"
    >>> _ = p.write_text(json.dumps({"training": [{"image": "imagesTr/img0001.nii.gz"}],
    ...                              "validation": [{"image": "imagesTr/img0035.nii.gz"}]}))
    >>> read_json_split(p)
    {'training': ['0001'], 'validation': ['0035']}
    """
    data = read_json(path, what="BTCV json split")
    out: dict[str, list[str]] = {}
    for part in ("training", "validation"):
        ids = []
        for entry in data.get(part, []) if isinstance(data, dict) else []:
            image = entry.get("image", "") if isinstance(entry, dict) else str(entry)
            match = _DIGITS.search(str(image))
            if match is None:
                raise ImageReadError(f"BTCV json split {path}: entry {entry!r} has no imgNNNN file")
            ids.append(match[1])
        out[part] = ids
    return out


class BTCVAdapter(FolderAdapter):
    """BTCV ``img/`` + ``label/`` layout (see the module docstring).

    Examples
    --------
    >>> import tempfile
    >>> from evaluator.datasets.registry import load_registry
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "img").mkdir()
    >>> _ = (root / "img" / "img0007.nii.gz").write_bytes(b"")
    >>> case = BTCVAdapter(load_registry().task("btcv"), root).case("0007")
    >>> case.channels["CT"].name, case.label.name
    ('img0007.nii.gz', 'label0007.nii.gz')
    """

    def _base(self) -> Path:
        for base in (self.root, self.root / "Training", self.root / "RawData" / "Training"):
            if (base / "img").is_dir() or (base / "label").is_dir():
                return base
        return self.root

    def json_split(self) -> dict[str, list[str]]:
        """The ``dataset_0.json`` split, or ``{}`` when the file is absent."""
        path = self.root / JSON_SPLIT_FILE
        return read_json_split(path) if path.is_file() else {}

    def _scan(self) -> list[Case]:
        base = self._base()
        ids: set[str] = set()
        if (base / "img").is_dir():
            ids.update(m["id"] for p in (base / "img").iterdir() if (m := _IMG.fullmatch(p.name)))
        if (base / "label").is_dir():
            ids.update(
                m[1]
                for p in (base / "label").iterdir()
                if p.name.startswith("label") and (m := _DIGITS.search(p.name))
            )
        membership = {cid: part for part, cids in self.json_split().items() for cid in cids}
        channel = self.task.channels[0]
        cases = []
        for case_id in sorted(ids):
            meta: dict[str, Any] = {"json_split": membership.get(case_id, "")}
            cases.append(
                Case(
                    case_id=case_id,
                    channels={channel: base / "img" / f"img{case_id}.nii.gz"},
                    label=base / "label" / f"label{case_id}.nii.gz",
                    metadata=meta,
                )
            )
        return cases
