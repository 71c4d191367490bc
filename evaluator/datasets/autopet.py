"""AutoPET (FDG PET/CT lesions): the original NIfTI layout and the nnU-Net raw layout.

Original layout (``adapter: autopet``), as published on TCIA::

    <root>/FDG-PET-CT-Lesions/<patient>/<study>/CTres.nii.gz   CT resampled onto the PET grid
                                               /SUV.nii.gz     PET in SUV
                                               /SEG.nii.gz     lesion mask (0/1)
                                               /CT.nii.gz, PET.nii.gz (ignored)
    <root>/Metadata.csv                                         optional; also accepted inside
                                                                FDG-PET-CT-Lesions/

``<root>`` may also be the ``FDG-PET-CT-Lesions`` folder itself. A study folder is a case when it
holds at least one of the three files. **Case id**: ``<patient>_<k>``, where ``k`` is the index
(0, 1, ...) of the study folder among the patient's study folders sorted by name, e.g.
``PETCT_0af7ffe12a_0``. Channels: ``CT`` = CTres, ``PET`` = SUV; label = SEG; the optional
``ORGANS`` = ``ORGANS.nii.gz`` (an organ map on the same grid) when the study folder has it.

Metadata table (``Metadata.csv``, columns as published; one row per series, so several rows per
study): ``Subject ID`` (the patient folder), ``Study UID``, ``File Location`` (e.g.
``./FDG-PET-CT-Lesions/PETCT_0af7ffe12a/<study>/...``), ``diagnosis`` (``MELANOMA``,
``LYMPHOMA``, ``LUNG_CANCER``, ``NEGATIVE``), ``sex`` (``M``/``F``), ``age`` (e.g. ``063Y``).
A row is matched to a study through the ``<patient>/<study>`` part of ``File Location``; when that
column is absent, through ``Subject ID`` alone. Cases without a row get ``"unknown"`` values.

nnU-Net raw layout (``adapter: autopet_nnunet``): ``imagesTr/<case>_0000.nii.gz`` (CT),
``imagesTr/<case>_0001.nii.gz`` (PET), ``labelsTr/<case>.nii.gz``, ``dataset.json``; the same
``Metadata.csv`` may sit in ``<root>``, matched through ``Subject ID`` = the case id without its
trailing ``_<k>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evaluator.datasets.base import Case, FolderAdapter
from evaluator.datasets.imageio import read_table
from evaluator.datasets.nnunet import NnunetAdapter

__all__ = [
    "DIAGNOSES",
    "FILES",
    "LESIONS_FOLDER",
    "METADATA_FILE",
    "OPTIONAL_FILES",
    "AutoPETAdapter",
    "AutoPETNnunetAdapter",
    "read_metadata",
]

LESIONS_FOLDER = "FDG-PET-CT-Lesions"
METADATA_FILE = "Metadata.csv"
#: Channel name -> file in a study folder; ``"label"`` is the lesion mask.
FILES: dict[str, str] = {"CT": "CTres.nii.gz", "PET": "SUV.nii.gz", "label": "SEG.nii.gz"}
#: Optional channels -> file in a study folder (used when present).
OPTIONAL_FILES: dict[str, str] = {"ORGANS": "ORGANS.nii.gz"}
#: Diagnosis values of the published metadata table.
DIAGNOSES = ("MELANOMA", "LYMPHOMA", "LUNG_CANCER", "NEGATIVE")

_UNKNOWN = "unknown"
_LOCATION = re.compile(r"(?:^|/)(?P<patient>[^/]+)/(?P<study>[^/]+)")


def _metadata_file(root: Path) -> Path | None:
    for candidate in (root / METADATA_FILE, root / LESIONS_FOLDER / METADATA_FILE):
        if candidate.is_file():
            return candidate
    return None


def read_metadata(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    """The per-study rows of an AutoPET ``Metadata.csv``.

    Parameters
    ----------
    path
        The published metadata table (see the module docstring for its columns).

    Returns
    -------
    dict
        ``(patient, study folder) -> {"diagnosis", "sex", "age", "study_uid"}``; the study is
        ``""`` when the table has no ``File Location`` column (the row then applies to every
        study of the patient). The first row of a study wins.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "Metadata.csv"
    >>> _ = p.write_text(
    ...     "Subject ID,Study UID,File Location,diagnosis,sex,age\\n"
    ...     "PETCT_1,1.2,./FDG-PET-CT-Lesions/PETCT_1/06-2002-NA-PET/1.000-CT,LYMPHOMA,F,050Y\\n"
    ... )
    >>> read_metadata(p)[("PETCT_1", "06-2002-NA-PET")]["diagnosis"]
    'LYMPHOMA'
    """
    rows = read_table(path, what="AutoPET metadata table")
    out: dict[tuple[str, str], dict[str, str]] = {}
    for row in rows:
        patient = row.get("Subject ID", "")
        study = ""
        location = row.get("File Location", "").replace("\\", "/")
        if location:
            tail = location.split(f"{LESIONS_FOLDER}/", 1)[-1]
            match = _LOCATION.match(tail.lstrip("./"))
            if match:
                patient, study = match["patient"], match["study"]
        if not patient:
            continue
        out.setdefault(
            (patient, study),
            {
                "diagnosis": row.get("diagnosis") or _UNKNOWN,
                "sex": row.get("sex") or _UNKNOWN,
                "age": row.get("age", ""),
                "study_uid": row.get("Study UID", ""),
            },
        )
    return out


def _lookup(
    table: Mapping[tuple[str, str], Mapping[str, str]], patient: str, study: str
) -> dict[str, Any]:
    row = table.get((patient, study)) or table.get((patient, ""))
    if row is None:
        row = next((v for (p, _), v in table.items() if p == patient), None)
    base: dict[str, Any] = {"diagnosis": _UNKNOWN, "sex": _UNKNOWN}
    if row is not None:
        base.update(row)
    return base


class AutoPETAdapter(FolderAdapter):
    """The original AutoPET NIfTI layout (see the module docstring).

    Examples
    --------
    >>> import tempfile
    >>> from evaluator.datasets.registry import load_registry
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / LESIONS_FOLDER / "PETCT_1" / "06-2002-NA-PET").mkdir(parents=True)
    >>> _ = (root / LESIONS_FOLDER / "PETCT_1" / "06-2002-NA-PET" / "SEG.nii.gz").write_bytes(b"")
    >>> adapter = AutoPETAdapter(load_registry().task("autopet"), root)
    >>> adapter.case_ids(), adapter.case("PETCT_1_0").channels["PET"].name
    (['PETCT_1_0'], 'SUV.nii.gz')
    """

    def _lesions_folder(self) -> Path:
        nested = self.root / LESIONS_FOLDER
        return nested if nested.is_dir() else self.root

    def _scan(self) -> list[Case]:
        folder = self._lesions_folder()
        meta_file = _metadata_file(self.root)
        table = read_metadata(meta_file) if meta_file is not None else {}
        cases = []
        for patient_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            studies = sorted(
                s
                for s in patient_dir.iterdir()
                if s.is_dir() and any((s / f).exists() for f in FILES.values())
            )
            for k, study_dir in enumerate(studies):
                meta = _lookup(table, patient_dir.name, study_dir.name)
                meta.update(patient=patient_dir.name, study=study_dir.name)
                cases.append(
                    Case(
                        case_id=f"{patient_dir.name}_{k}",
                        channels={
                            ch: study_dir / (FILES.get(ch) or OPTIONAL_FILES[ch])
                            for ch in self.task.present_channels(
                                c for c, f in OPTIONAL_FILES.items() if (study_dir / f).is_file()
                            )
                        },
                        label=study_dir / FILES["label"],
                        metadata=meta,
                    )
                )
        return cases


class AutoPETNnunetAdapter(NnunetAdapter):
    """AutoPET in the nnU-Net raw layout, with metadata from an optional ``Metadata.csv``."""

    def _metadata(self, case_id: str) -> dict[str, Any]:
        meta_file = _metadata_file(self.root)
        table = self._table(meta_file) if meta_file is not None else {}
        match = re.fullmatch(r"(?P<patient>.+)_(?P<k>\d+)", case_id)
        patient, study = case_id, ""
        if match:
            patient = match["patient"]
            studies = sorted({s for (p, s) in table if p == patient and s})
            k = int(match["k"])
            study = studies[k] if k < len(studies) else ""
        meta = _lookup(table, patient, study)
        # the patient of ``<patient>_<k>`` only when Metadata.csv knows it: another naming
        # (``AutoPET_001``) must not make every case one patient (``split.group_by``)
        meta["patient"] = patient if any(p == patient for p, _ in table) else case_id
        return meta

    def _table(self, path: Path) -> dict[tuple[str, str], dict[str, str]]:
        cached: dict[tuple[str, str], dict[str, str]] | None = getattr(self, "_table_cache", None)
        if cached is None:
            cached = read_metadata(path)
            self._table_cache = cached
        return cached
