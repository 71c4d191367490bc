"""HECKTOR 2022 (head-and-neck PET/CT): primary tumours (1 = GTVp) and lymph nodes (2 = GTVn).

Layout, as released for the challenge::

    <root>/imagesTr/<Center>-<id>__CT.nii.gz    CT
    <root>/imagesTr/<Center>-<id>__PT.nii.gz    PET (own, coarser grid)
    <root>/labelsTr/<Center>-<id>.nii.gz        labels on the CT grid
    <root>/hecktor2022_patient_info.csv         or HECKTOR_2022_Training_Clinical_Info.csv

**Case id**: ``<Center>-<id>``, e.g. ``CHUM-001``; the centre is the part before the first ``-``.
Clinical table columns used: ``PatientID`` (the case id), ``Gender`` (``M``/``F``), ``CenterID``,
``Age``; cases without a row get sex ``"unknown"``.

``Case.read_channel("PT")`` resamples the PET onto the CT grid with a 3rd-order B-spline
(``sitk.sitkBSpline3``), as in the thesis' preprocessing (appendix E.1.2.2); the CT and the label
are returned as stored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evaluator.datasets.base import Case, FolderAdapter
from evaluator.datasets.imageio import read_table

__all__ = ["CLINICAL_FILES", "HecktorAdapter", "read_clinical_info"]

#: Accepted names of the clinical table, first found wins.
CLINICAL_FILES = ("hecktor2022_patient_info.csv", "HECKTOR_2022_Training_Clinical_Info.csv")
_ENDING = ".nii.gz"
_UNKNOWN = "unknown"


def read_clinical_info(path: Path) -> dict[str, dict[str, Any]]:
    """``PatientID -> {"sex", "centre_id", "age"}`` from a HECKTOR 2022 clinical table.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "hecktor2022_patient_info.csv"
    >>> _ = p.write_text("PatientID,CenterID,Gender,Age\\nCHUM-001,1,f,61\\n")
    >>> read_clinical_info(p)
    {'CHUM-001': {'sex': 'F', 'centre_id': '1', 'age': '61'}}
    """
    out: dict[str, dict[str, Any]] = {}
    for row in read_table(path, what="HECKTOR clinical table"):
        patient = row.get("PatientID", "")
        if patient:
            out[patient] = {
                "sex": row["Gender"].upper() if row.get("Gender") else _UNKNOWN,
                "centre_id": row.get("CenterID", ""),
                "age": row.get("Age", ""),
            }
    return out


class HecktorAdapter(FolderAdapter):
    """HECKTOR 2022 layout (see the module docstring).

    Examples
    --------
    >>> import tempfile
    >>> from evaluator.datasets.registry import load_registry
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "imagesTr").mkdir()
    >>> _ = (root / "imagesTr" / "CHUP-012__CT.nii.gz").write_bytes(b"")
    >>> case = HecktorAdapter(load_registry().task("hecktor"), root).case("CHUP-012")
    >>> case.metadata["centre"], case.channels["PT"].name, case.reference_channel
    ('CHUP', 'CHUP-012__PT.nii.gz', 'CT')
    """

    def _scan(self) -> list[Case]:
        images, labels = self.root / "imagesTr", self.root / "labelsTr"
        channel_re = "|".join(re.escape(ch) for ch in self.task.channels)
        pattern = re.compile(rf"(?P<case>.+)__(?:{channel_re}){re.escape(_ENDING)}")
        ids: set[str] = set()
        if images.is_dir():
            ids.update(m["case"] for p in images.iterdir() if (m := pattern.fullmatch(p.name)))
        if labels.is_dir():
            ids.update(
                p.name[: -len(_ENDING)] for p in labels.iterdir() if p.name.endswith(_ENDING)
            )
        table: dict[str, dict[str, Any]] = {}
        for name in CLINICAL_FILES:
            if (self.root / name).is_file():
                table = read_clinical_info(self.root / name)
                break
        cases = []
        for case_id in sorted(ids):
            meta: dict[str, Any] = {"sex": _UNKNOWN}
            meta.update(table.get(case_id, {}))
            meta["centre"] = case_id.split("-", 1)[0]
            cases.append(
                Case(
                    case_id=case_id,
                    channels={
                        ch: images / f"{case_id}__{ch}{_ENDING}" for ch in self.task.channels
                    },
                    label=labels / f"{case_id}{_ENDING}",
                    metadata=meta,
                    reference_channel=self.task.channels[0],
                )
            )
        return cases
