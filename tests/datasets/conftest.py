"""Builders of tiny datasets in every on-disk layout, written with SimpleITK to tmp folders.

Each builder writes exactly the published layout (see docs/architecture.md) with small images,
so the adapter, split and check tests do not depend on the phantom generator.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk

from evaluator.workspace import Workspace

SHAPE = (6, 8, 10)  # (z, y, x)
SPACING = (1.0, 1.0, 2.0)  # SimpleITK order (x, y, z), mm


def write_image(
    path: Path,
    arr: np.ndarray,
    *,
    spacing: Sequence[float] | None = None,
    origin: Sequence[float] | None = None,
) -> Path:
    """Write ``arr`` (numpy order) as an image with SimpleITK-order spacing/origin."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(arr)
    if spacing is not None:
        img.SetSpacing(tuple(float(v) for v in spacing))
    if origin is not None:
        img.SetOrigin(tuple(float(v) for v in origin))
    sitk.WriteImage(img, str(path))
    return path


def lesion_label(
    seed: int, shape: Sequence[int] = SHAPE, labels: Sequence[int] = (1,)
) -> np.ndarray:
    """A label map with one small box per label value, placed by ``seed``."""
    rng = np.random.default_rng(seed)
    arr = np.zeros(tuple(shape), dtype=np.uint8)
    for value in labels:
        lo = [int(rng.integers(0, max(1, s - 2))) for s in shape]
        arr[tuple(slice(a, a + 2) for a in lo)] = value
    return arr


def intensity(seed: int, shape: Sequence[int] = SHAPE) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=tuple(shape)).astype(np.float32)


# ---- AutoPET ---------------------------------------------------------------------------------

AUTOPET_CASES = [
    # patient, study folder, diagnosis, sex
    ("PETCT_0af7ffe12a", "08-12-2005-NA-PET-CT Ganzkoerper  primaer mit KM-96698", "MELANOMA", "M"),
    ("PETCT_0af7ffe12a", "11-03-2006-NA-PET-CT Ganzkoerper  primaer mit KM-12345", "MELANOMA", "M"),
    ("PETCT_1b2c3d4e5f", "03-23-2003-NA-PET-CT Ganzkoerper  primaer mit KM-10445", "LYMPHOMA", "F"),
    ("PETCT_2c3d4e5f6a", "01-01-2004-NA-Unknown-22222", "NEGATIVE", "F"),
    ("PETCT_3d4e5f6a7b", "05-05-2005-NA-PET-CT-33333", "LUNG_CANCER", "M"),
]


def build_autopet(root: Path, cases: Sequence[tuple[str, str, str, str]] = AUTOPET_CASES) -> Path:
    """Original AutoPET layout plus a Metadata.csv with one row per series, as published."""
    rows = []
    for i, (patient, study, diagnosis, sex) in enumerate(cases):
        folder = root / "FDG-PET-CT-Lesions" / patient / study
        write_image(folder / "CTres.nii.gz", intensity(i), spacing=SPACING)
        write_image(folder / "SUV.nii.gz", intensity(100 + i), spacing=SPACING)
        write_image(folder / "SEG.nii.gz", lesion_label(i), spacing=SPACING)
        for series in ("CT", "PET", "SEG"):
            rows.append(
                {
                    "Series UID": f"1.2.{i}.{series}",
                    "Subject ID": patient,
                    "Study UID": f"1.2.{i}",
                    "Study Date": study[:10],
                    "Modality": series,
                    "File Location": f"./FDG-PET-CT-Lesions/{patient}/{study}/1.000-{series}",
                    "diagnosis": diagnosis,
                    "age": "061Y",
                    "sex": sex,
                }
            )
    with (root / "Metadata.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def build_nnunet(
    root: Path,
    case_ids: Sequence[str],
    channel_names: Sequence[str] = ("CT", "PET"),
    labels: Sequence[int] = (1,),
) -> Path:
    """nnU-Net v2 raw layout with dataset.json."""
    for i, case_id in enumerate(case_ids):
        for c in range(len(channel_names)):
            write_image(
                root / "imagesTr" / f"{case_id}_{c:04d}.nii.gz",
                intensity(10 * i + c),
                spacing=SPACING,
            )
        write_image(
            root / "labelsTr" / f"{case_id}.nii.gz", lesion_label(i, labels=labels), spacing=SPACING
        )
    dataset = {
        "channel_names": {str(c): name for c, name in enumerate(channel_names)},
        "labels": {"background": 0, **{f"class{v}": v for v in labels}},
        "numTraining": len(case_ids),
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(dataset, indent=2))
    return root


# ---- HECKTOR ---------------------------------------------------------------------------------

HECKTOR_CASES = [
    ("CHUM-001", "M"),
    ("CHUM-002", "F"),
    ("CHUP-010", "M"),
    ("MDA-101", "F"),
    ("HGJ-007", "M"),
]
#: PET grid: coarser than CT, covering the same extent.
PT_SPACING = (2.0, 2.0, 4.0)
CT_SPACING = (1.0, 1.0, 2.0)


def build_hecktor(root: Path, cases: Sequence[tuple[str, str]] = HECKTOR_CASES) -> Path:
    """HECKTOR 2022 layout: CT and label on one grid, PT on a coarser one, clinical table."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "hecktor2022_patient_info.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["PatientID", "CenterID", "Gender", "Age", "Task 1", "Task 2"])
        for i, (case_id, sex) in enumerate(cases):
            writer.writerow([case_id, i % 3, sex, 60 + i, 1, 1])
    for i, (case_id, _) in enumerate(cases):
        write_image(root / "imagesTr" / f"{case_id}__CT.nii.gz", intensity(i), spacing=CT_SPACING)
        write_image(
            root / "imagesTr" / f"{case_id}__PT.nii.gz",
            intensity(50 + i, (3, 4, 5)),
            spacing=PT_SPACING,
            origin=(0.5, 0.5, 1.0),
        )
        write_image(
            root / "labelsTr" / f"{case_id}.nii.gz",
            lesion_label(i, labels=(1, 2)),
            spacing=CT_SPACING,
        )
    return root


# ---- BTCV ------------------------------------------------------------------------------------


def build_btcv(root: Path, n: int = 6, json_split: dict[str, list[int]] | None = None) -> Path:
    """BTCV img/label layout; optional MONAI-style dataset_0.json."""
    for i in range(1, n + 1):
        write_image(root / "img" / f"img{i:04d}.nii.gz", intensity(i), spacing=SPACING)
        write_image(
            root / "label" / f"label{i:04d}.nii.gz",
            lesion_label(i, labels=range(1, 14), shape=(8, 10, 12))[:6, :8, :10],
            spacing=SPACING,
        )
    if json_split is not None:
        doc = {
            part: [
                {"image": f"imagesTr/img{i:04d}.nii.gz", "label": f"labelsTr/label{i:04d}.nii.gz"}
                for i in ids
            ]
            for part, ids in json_split.items()
        }
        (root / "dataset_0.json").write_text(json.dumps(doc))
    return root


# ---- ChestXDet -------------------------------------------------------------------------------

XR_SIZE = 32


def chestxdet_entry(name: str, instances: Sequence[tuple[str, tuple[int, int, int, int]]]) -> dict:
    """One annotation entry; each instance is (class, (x1, y1, x2, y2)) with a box polygon."""
    return {
        "file_name": name,
        "syms": [cls for cls, _ in instances],
        "boxes": [list(box) for _, box in instances],
        "polygons": [[[x1, y1], [x2, y1], [x2, y2], [x1, y2]] for _, (x1, y1, x2, y2) in instances],
    }


CHESTXDET_TRAIN = [
    chestxdet_entry("36199.png", [("Effusion", (2, 3, 10, 9)), ("Nodule", (20, 20, 24, 26))]),
    chestxdet_entry("36200.png", [("Cardiomegaly", (8, 8, 24, 24))]),
    chestxdet_entry("36201.png", []),
    chestxdet_entry("36202.png", [("Mass", (1, 1, 5, 5))]),
    chestxdet_entry("36203.png", [("Fracture", (12, 2, 14, 30))]),
    chestxdet_entry("36204.png", [("Atelectasis", (0, 0, 32, 4))]),
]
CHESTXDET_TEST = [
    chestxdet_entry("40001.png", [("Pneumothorax", (4, 4, 12, 12))]),
    chestxdet_entry("40002.png", []),
]


def build_chestxdet(
    root: Path, train: Sequence[dict] = CHESTXDET_TRAIN, test: Sequence[dict] = CHESTXDET_TEST
) -> Path:
    """ChestXDet layout: 8-bit grey PNGs in train/ and test/, two annotation lists."""
    for subset, entries in (("train", train), ("test", test)):
        for i, entry in enumerate(entries):
            arr = np.random.default_rng(i).integers(0, 255, (XR_SIZE, XR_SIZE), dtype=np.uint8)
            write_image(root / subset / entry["file_name"], arr)
        (root / f"ChestX_Det_{subset}.json").write_text(json.dumps(list(entries)))
    return root


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def autopet_root(tmp_path: Path) -> Path:
    return build_autopet(tmp_path / "autopet")


@pytest.fixture
def hecktor_root(tmp_path: Path) -> Path:
    return build_hecktor(tmp_path / "hecktor")


@pytest.fixture
def btcv_root(tmp_path: Path) -> Path:
    return build_btcv(
        tmp_path / "btcv", json_split={"training": [1, 2, 3, 4], "validation": [5, 6]}
    )


@pytest.fixture
def chestxdet_root(tmp_path: Path) -> Path:
    return build_chestxdet(tmp_path / "chestxdet")


@pytest.fixture
def nnunet_root(tmp_path: Path) -> Path:
    return build_nnunet(tmp_path / "nnunet", ["PETCT_0af7ffe12a_0", "PETCT_1b2c3d4e5f_0", "X_0"])


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    return workspace


@pytest.fixture
def make() -> SimpleNamespace:
    """The builders and their default case lists, for tests that need their own variant."""
    return SimpleNamespace(
        image=write_image,
        label=lesion_label,
        autopet=build_autopet,
        hecktor=build_hecktor,
        btcv=build_btcv,
        chestxdet=build_chestxdet,
        chestxdet_entry=chestxdet_entry,
        nnunet=build_nnunet,
        AUTOPET_CASES=AUTOPET_CASES,
        HECKTOR_CASES=HECKTOR_CASES,
        CHESTXDET_TRAIN=CHESTXDET_TRAIN,
        CHESTXDET_TEST=CHESTXDET_TEST,
        XR_SIZE=XR_SIZE,
        CT_SPACING=CT_SPACING,
        PT_SPACING=PT_SPACING,
    )
