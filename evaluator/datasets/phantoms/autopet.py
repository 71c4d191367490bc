"""AutoPET phantom: whole-body FDG PET/CT with lesions, in the original NIfTI layout.

Layout (as the TCIA ``FDG-PET-CT-Lesions`` NIfTI release)::

    <root>/Metadata.csv
    <root>/FDG-PET-CT-Lesions/<Subject ID>/<study folder>/CTres.nii.gz   int16 HU
                                                        /SUV.nii.gz     float32 SUV
                                                        /SEG.nii.gz     uint8, 1 = lesion
                                                        /ORGANS.nii.gz  uint8 organ map (optional)

``ORGANS.nii.gz`` is the anatomy the case is drawn from, as organ ids
(:data:`~evaluator.datasets.phantoms._anatomy.ORGAN_IDS`): the optional ``ORGANS`` channel of
datasets.yaml, in the place an organ segmentation (e.g. TotalSegmentator's) would be put beside a
real study. CT, SUV, SEG and ORGANS share one grid: spacing (x, y, z) = (2.0364, 2.0364, 2.0) mm, identity direction.
``Metadata.csv`` has one row per series (CT, PT, SEG) with the published columns ``Subject ID``,
``Study UID``, ``Study Description``, ``Study Date``, ``Series Description``, ``Modality``,
``File Location``, ``diagnosis``, ``age``, ``sex``. Every sixth case is a second study of the
previous case's patient (as in the real data, where some patients have two studies).

Diagnosis follows the case's patient: NEGATIVE, MELANOMA, LYMPHOMA, LUNG_CANCER in turn, and a
study is NEGATIVE exactly when it has no lesion. Lesion burden cycles low (1-4), medium (5-15)
and high (50-70 lesions) over the positive cases, so a default dataset holds negatives and
cases with 40+ lesions; lesion radii are log-uniform between 1.5 and 22 mm (12 mm in the
high-burden cases), so volumes spread over more than three orders of magnitude, and about one
lesion in seven touches another (touching lesions merge into one component, or nearly do).
Lesions are hot on PET (SUV 2.5-18 before the 6.5 mm PSF) and faint on CT (-10..+20 HU).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evaluator.datasets.phantoms._anatomy import (
    LESION_HOSTS,
    Frame,
    organ_map,
    render_body,
    vary,
)
from evaluator.datasets.phantoms._common import (
    CaseInfo,
    TaskWriter,
    ct_image,
    lesion_radii,
    pet_image,
    write_csv,
)
from evaluator.datasets.phantoms._shapes import (
    Grid,
    case_rng,
    place_lesions,
    rasterise_lesions,
    write_nifti,
)
from evaluator.typing import Spacing

__all__ = ["DIAGNOSES", "STUDY_DIR", "WRITER", "burden", "case_identity"]

#: Folder under the root that holds one folder per patient.
STUDY_DIR = "FDG-PET-CT-Lesions"
#: Diagnoses in the order patients receive them.
DIAGNOSES = ("NEGATIVE", "MELANOMA", "LYMPHOMA", "LUNG_CANCER")
_CODE = 1
_PATIENT_CODE = 101
_STUDY_DESCRIPTION = "PET-CT Ganzkoerper  primaer mit KM"
_SERIES = (
    ("CT", "GK p.v.3.0  B31f", "CTres.nii.gz"),
    ("PT", "PET corr.", "SUV.nii.gz"),
    ("SEG", "Segmentation", "SEG.nii.gz"),
)
_BURDEN = ((1, 4), (5, 15), (50, 70))


def _patient_index(index: int) -> int:
    """Case index of the patient's first study (every sixth case is a follow-up study)."""
    return index - 1 if index % 6 == 5 else index


def burden(index: int) -> tuple[int, int]:
    """Inclusive range of the lesion count of case ``index`` (``(0, 0)`` for negatives).

    Examples
    --------
    >>> [burden(i) for i in range(4)]
    [(0, 0), (5, 15), (50, 70), (1, 4)]
    """
    if DIAGNOSES[_patient_index(index) % len(DIAGNOSES)] == "NEGATIVE":
        return (0, 0)
    return _BURDEN[index % len(_BURDEN)]


def case_identity(index: int, seed: int) -> dict[str, str]:
    """Patient and study identifiers and clinical fields of case ``index``.

    Examples
    --------
    >>> a, b = case_identity(4, 0), case_identity(5, 0)
    >>> a["Subject ID"] == b["Subject ID"], a["Study UID"] == b["Study UID"], a["diagnosis"]
    (True, False, 'NEGATIVE')
    """
    patient = _patient_index(index)
    prng = case_rng(seed, _PATIENT_CODE, patient)
    subject = f"PETCT_{int(prng.integers(16**10)):010x}"
    sex = "F" if prng.random() < 0.45 else "M"
    age = int(prng.integers(25, 86))
    srng = case_rng(seed, _PATIENT_CODE + 1, index)
    year = int(srng.integers(2002, 2019)) + (index - patient)
    date = f"{int(srng.integers(1, 13)):02d}-{int(srng.integers(1, 29)):02d}-{year}"
    number = int(srng.integers(10000, 99999))
    uid = "1.3.6.1.4.1.14519.5.2.1.4219.6651." + "".join(
        str(d) for d in srng.integers(0, 10, size=30)
    )
    return {
        "Subject ID": subject,
        "Study UID": uid,
        "Study Date": date,
        "study_folder": f"{date}-NA-{_STUDY_DESCRIPTION}-{number}",
        "diagnosis": DIAGNOSES[patient % len(DIAGNOSES)],
        "age": f"{age:03d}Y",
        "sex": sex,
    }


def _write_case(
    out: Path, index: int, seed: int, size_xyz: tuple[int, ...], spacing: Spacing
) -> CaseInfo:
    ident = case_identity(index, seed)
    rng = case_rng(seed, _CODE, index)
    grid = Grid.scanner(size_xyz, spacing, z_origin=-size_xyz[2] * spacing[0])
    frame = Frame(grid, (0.0, 1.0), 0.7 * float(rng.uniform(0.92, 1.05)))
    body = render_body(frame, vary(rng))
    low, high = burden(index)
    count = int(rng.integers(low, high + 1))
    # many-lesion cases (disseminated disease) have mostly small lesions
    largest = 12.0 if count > 20 else min(22.0, 0.3 * frame.half_width_mm)
    radii = lesion_radii(rng, count, low_mm=1.5, high_mm=largest)
    hosts = body.mask(LESION_HOSTS)
    lesions = place_lesions(rng, grid, hosts, radii, uptake=(2.5, 18.0), hu_delta=(-10.0, 20.0))
    label = np.zeros(grid.shape, dtype=np.uint8)
    activity = body.suv[body.index]
    hu = body.hu[body.index]
    rasterise_lesions(grid, lesions, label=label, activity=activity, hu=hu, within=hosts)
    folder = out / STUDY_DIR / ident["Subject ID"] / ident["study_folder"]
    write_nifti(ct_image(hu, rng, spacing=grid.spacing), grid, folder / "CTres.nii.gz")
    write_nifti(pet_image(activity, rng, spacing=grid.spacing), grid, folder / "SUV.nii.gz")
    write_nifti(label, grid, folder / "SEG.nii.gz")
    write_nifti(organ_map(body), grid, folder / "ORGANS.nii.gz")
    return CaseInfo(
        case_id=f"{ident['Subject ID']}/{ident['study_folder']}",
        objects=len(lesions),
        row=ident,
    )


def _write_index(out: Path, infos: Sequence[CaseInfo]) -> None:
    rows = []
    for info in infos:
        ident = info.row
        for modality, series, _ in _SERIES:
            rows.append(
                {
                    "Subject ID": ident["Subject ID"],
                    "Study UID": ident["Study UID"],
                    "Study Description": _STUDY_DESCRIPTION,
                    "Study Date": ident["Study Date"],
                    "Series Description": series,
                    "Modality": modality,
                    "File Location": (
                        f"./{STUDY_DIR}/{ident['Subject ID']}/{ident['study_folder']}/"
                        f"{series.replace(' ', '_')}"
                    ),
                    "diagnosis": ident["diagnosis"],
                    "age": ident["age"],
                    "sex": ident["sex"],
                }
            )
    write_csv(out / "Metadata.csv", rows)


#: How ``write_phantoms("autopet", ...)`` writes this task.
WRITER = TaskWriter(
    task="autopet",
    code=_CODE,
    default_cases=12,
    presets={"small": (96, 96, 80), "full": (400, 400, 326)},
    spacing={"small": (2.0, 2.0364, 2.0364), "full": (2.0, 2.0364, 2.0364)},
    write_case=_write_case,
    write_index=_write_index,
    layout=("FDG-PET-CT-Lesions", "Metadata.csv"),
)
