"""Each adapter reads its published layout: case ids, channels, metadata, loaders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from evaluator.datasets.autopet import AutoPETAdapter
from evaluator.datasets.base import DatasetAdapter, open_dataset
from evaluator.datasets.btcv import read_json_split
from evaluator.datasets.geometry import image_geometry
from evaluator.datasets.registry import load_registry
from evaluator.errors import InvalidLabelError, RegistryError
from evaluator.workspace import Workspace

# ---- AutoPET ---------------------------------------------------------------------------------


def test_autopet_case_ids_channels_and_metadata(ws: Workspace, autopet_root: Path) -> None:
    adapter = open_dataset("autopet", workspace=ws, data_root=autopet_root)
    assert isinstance(adapter, DatasetAdapter)
    # Two studies of one patient: indices 0, 1 in the order of their folder names.
    assert adapter.case_ids() == [
        "PETCT_0af7ffe12a_0",
        "PETCT_0af7ffe12a_1",
        "PETCT_1b2c3d4e5f_0",
        "PETCT_2c3d4e5f6a_0",
        "PETCT_3d4e5f6a7b_0",
    ]
    case = adapter.case("PETCT_0af7ffe12a_1")
    assert case.channels["CT"].name == "CTres.nii.gz"
    assert case.channels["PET"].name == "SUV.nii.gz"
    assert case.label is not None and case.label.name == "SEG.nii.gz"
    assert case.channels["CT"].parent.name.startswith("11-03-2006")
    assert case.metadata["diagnosis"] == "MELANOMA" and case.metadata["sex"] == "M"
    lymphoma = adapter.case("PETCT_1b2c3d4e5f_0").metadata
    assert (lymphoma["diagnosis"], lymphoma["sex"], lymphoma["age"]) == ("LYMPHOMA", "F", "061Y")
    assert adapter.case("PETCT_3d4e5f6a7b_0").metadata["diagnosis"] == "LUNG_CANCER"
    # Loaders read what the builder wrote.
    assert np.array_equal(
        sitk.GetArrayFromImage(case.read_label()),
        sitk.GetArrayFromImage(sitk.ReadImage(str(case.label))),
    )
    assert case.read_channel("PET").GetSize() == (10, 8, 6)


def test_autopet_root_may_be_the_lesions_folder(make, tmp_path: Path) -> None:
    root = make.autopet(tmp_path / "a")
    task = load_registry().task("autopet")
    assert (
        AutoPETAdapter(task, root / "FDG-PET-CT-Lesions").case_ids()
        == AutoPETAdapter(task, root).case_ids()
    )


def test_autopet_without_metadata_table(ws: Workspace, make, tmp_path: Path) -> None:
    root = make.autopet(tmp_path / "a")
    (root / "Metadata.csv").unlink()
    case = open_dataset("autopet", workspace=ws, data_root=root).case("PETCT_1b2c3d4e5f_0")
    assert case.metadata["diagnosis"] == "unknown" and case.metadata["sex"] == "unknown"


def test_autopet_nnunet_layout_with_metadata(ws: Workspace, make, tmp_path: Path) -> None:
    root = make.nnunet(tmp_path / "n", ["PETCT_0af7ffe12a_1", "PETCT_1b2c3d4e5f_0"])
    (root / "Metadata.csv").write_text(
        (make.autopet(tmp_path / "orig") / "Metadata.csv").read_text()
    )
    adapter = open_dataset("autopet-nnunet", workspace=ws, data_root=root)
    case = adapter.case("PETCT_0af7ffe12a_1")
    assert case.channels["CT"].name == "PETCT_0af7ffe12a_1_0000.nii.gz"
    assert case.channels["PET"].name == "PETCT_0af7ffe12a_1_0001.nii.gz"
    assert case.label is not None and case.label.parent.name == "labelsTr"
    assert case.metadata["diagnosis"] == "MELANOMA"
    assert adapter.case("PETCT_1b2c3d4e5f_0").metadata["sex"] == "F"


# ---- generic nnU-Net -------------------------------------------------------------------------


def test_nnunet_channels_by_name_or_position(make, tmp_path: Path) -> None:
    from evaluator.datasets.nnunet import NnunetAdapter

    task = load_registry().task("autopet-nnunet")
    swapped = make.nnunet(tmp_path / "swapped", ["a"], channel_names=("PET", "CT"))
    case = NnunetAdapter(task, swapped).case("a")
    assert case.channels["PET"].name == "a_0000.nii.gz"
    assert case.channels["CT"].name == "a_0001.nii.gz"
    other = make.nnunet(tmp_path / "other", ["a"], channel_names=("ct", "suv"))
    assert NnunetAdapter(task, other).case("a").channels["PET"].name == "a_0001.nii.gz"
    three = make.nnunet(tmp_path / "three", ["a"], channel_names=("CT", "PET", "MR"))
    with pytest.raises(RegistryError, match=r"channel_names lists 3 channels .* expects 2"):
        NnunetAdapter(task, three).case_ids()


def test_nnunet_without_dataset_json_and_with_missing_channel(make, tmp_path: Path) -> None:
    from evaluator.datasets.nnunet import NnunetAdapter

    root = make.nnunet(tmp_path / "n", ["a", "b"])
    (root / "dataset.json").unlink()
    (root / "imagesTr" / "b_0001.nii.gz").unlink()
    (root / "labelsTr" / "a.nii.gz").unlink()
    adapter = NnunetAdapter(load_registry().task("autopet-nnunet"), root)
    assert adapter.case_ids() == ["a", "b"]  # listed from images or labels


# ---- HECKTOR ---------------------------------------------------------------------------------


def test_hecktor_ids_centre_and_clinical_info(ws: Workspace, hecktor_root: Path) -> None:
    adapter = open_dataset("hecktor", workspace=ws, data_root=hecktor_root)
    assert adapter.case_ids() == ["CHUM-001", "CHUM-002", "CHUP-010", "HGJ-007", "MDA-101"]
    case = adapter.case("MDA-101")
    assert case.channels["CT"].name == "MDA-101__CT.nii.gz"
    assert case.channels["PT"].name == "MDA-101__PT.nii.gz"
    assert case.label is not None and case.label.name == "MDA-101.nii.gz"
    assert case.metadata["centre"] == "MDA" and case.metadata["sex"] == "F"
    assert adapter.case("CHUP-010").metadata["centre"] == "CHUP"
    labels = np.unique(sitk.GetArrayFromImage(case.read_label()))
    assert set(labels.tolist()) <= {0, 1, 2}


def test_hecktor_alternative_clinical_file_name(ws: Workspace, hecktor_root: Path) -> None:
    (hecktor_root / "hecktor2022_patient_info.csv").rename(
        hecktor_root / "HECKTOR_2022_Training_Clinical_Info.csv"
    )
    adapter = open_dataset("hecktor", workspace=ws, data_root=hecktor_root)
    assert adapter.case("CHUM-002").metadata["sex"] == "F"


def _ramp_image(size, spacing, origin, func) -> sitk.Image:
    img = sitk.Image(list(size), sitk.sitkFloat32)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in reversed(size)), indexing="ij")
    x = origin[0] + xx * spacing[0]
    y = origin[1] + yy * spacing[1]
    z = origin[2] + zz * spacing[2]
    out = sitk.GetImageFromArray(func(x, y, z).astype(np.float32))
    out.CopyInformation(img)
    return out


def test_hecktor_pet_is_resampled_with_cubic_bspline(ws: Workspace, tmp_path: Path) -> None:
    """Analytic oracle: a cubic B-spline reproduces a quadratic exactly away from the border."""

    def quadratic(x, y, z):
        return 0.05 * (x - 30) ** 2 + 0.3 * y - 0.02 * (z - 40) ** 2 + 2.0

    root = tmp_path / "h"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    # The CT field of view lies >= 10 PET voxels inside the PET one (B-spline border effects).
    ct_grid = ((24, 24, 16), (1.0, 1.0, 2.0), (20.0, 20.0, 24.0))
    ct = _ramp_image(*ct_grid, lambda x, y, z: 0 * x)
    pt = _ramp_image((32, 32, 20), (2.0, 2.0, 4.0), (0.5, 0.5, 1.0), quadratic)
    sitk.WriteImage(ct, str(root / "imagesTr" / "CHUM-001__CT.nii.gz"))
    sitk.WriteImage(pt, str(root / "imagesTr" / "CHUM-001__PT.nii.gz"))
    case = open_dataset("hecktor", workspace=ws, data_root=root).case("CHUM-001")
    resampled = case.read_channel("PT")
    assert image_geometry(resampled) == image_geometry(case.read_channel("CT"))
    expected = sitk.GetArrayFromImage(_ramp_image(*ct_grid, quadratic))
    assert np.abs(sitk.GetArrayFromImage(resampled) - expected).max() < 2e-3
    # The test can fail: linear interpolation misses the curvature by 0.0225.
    linear = sitk.GetArrayFromImage(sitk.Resample(pt, ct, sitk.Transform(), sitk.sitkLinear))
    assert np.abs(linear - expected).max() > 0.02
    # The raw channel is untouched.
    assert case.read_raw_channel("PT").GetSpacing() == (2.0, 2.0, 4.0)


# ---- BTCV ------------------------------------------------------------------------------------


def test_btcv_ids_and_json_split(ws: Workspace, btcv_root: Path) -> None:
    adapter = open_dataset("btcv", workspace=ws, data_root=btcv_root)
    assert adapter.case_ids() == ["0001", "0002", "0003", "0004", "0005", "0006"]
    case = adapter.case("0005")
    assert case.channels["CT"].name == "img0005.nii.gz"
    assert case.label is not None and case.label.name == "label0005.nii.gz"
    assert case.metadata["json_split"] == "validation"
    assert adapter.case("0001").metadata["json_split"] == "training"
    assert set(np.unique(sitk.GetArrayFromImage(case.read_label())).tolist()) <= set(range(14))


def test_btcv_reads_the_monai_24_6_json(tmp_path: Path) -> None:
    train = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34]
    val = [35, 36, 37, 38, 39, 40]
    doc = {
        "description": "btcv yucheng",
        "labels": {"0": "background", "1": "spleen"},
        "training": [
            {"image": f"imagesTr/img{i:04d}.nii.gz", "label": f"labelsTr/label{i:04d}.nii.gz"}
            for i in train
        ],
        "validation": [
            {"image": f"imagesTr/img{i:04d}.nii.gz", "label": f"labelsTr/label{i:04d}.nii.gz"}
            for i in val
        ],
        "test": ["imagesTs/img0061.nii.gz"],
    }
    path = tmp_path / "dataset_0.json"
    path.write_text(json.dumps(doc))
    split = read_json_split(path)
    assert len(split["training"]) == 24 and len(split["validation"]) == 6
    assert split["validation"][0] == "0035" and split["training"][-1] == "0034"


def test_btcv_raw_data_training_folder(ws: Workspace, make, tmp_path: Path) -> None:
    root = tmp_path / "BTCV"
    make.btcv(root / "RawData" / "Training", n=2)
    assert open_dataset("btcv", workspace=ws, data_root=root).case_ids() == ["0001", "0002"]


# ---- ChestXDet -------------------------------------------------------------------------------


def test_chestxdet_cases_and_official_subsets(ws: Workspace, chestxdet_root: Path) -> None:
    adapter = open_dataset("chestxdet", workspace=ws, data_root=chestxdet_root)
    assert len(adapter.case_ids()) == 8
    assert adapter.case("40001").metadata["subset"] == "test"
    assert adapter.case("36199").metadata["subset"] == "train"
    assert adapter.case("36199").channels["XR"] == chestxdet_root / "train" / "36199.png"


def test_chestxdet_instances_are_rasterised_with_label_map_ids(
    ws: Workspace, chestxdet_root: Path, make
) -> None:
    case = open_dataset("chestxdet", workspace=ws, data_root=chestxdet_root).case("36199")
    instances = case.read_instances()
    assert [(i.class_name, i.class_id) for i in instances] == [("Effusion", 6), ("Nodule", 11)]
    size = make.XR_SIZE
    expected = np.zeros((size, size), dtype=bool)
    expected[3:9, 2:10] = True  # box polygon (2, 3)-(10, 9): columns 2..9, rows 3..8
    assert np.array_equal(instances[0].mask, expected)
    assert instances[1].mask.sum() == 4 * 6
    label = sitk.GetArrayFromImage(case.read_label())
    assert label.shape == (size, size)
    assert (label == 6).sum() == expected.sum() and (label == 11).sum() == 24
    assert case.read_label().GetSize() == case.read_channel("XR").GetSize()
    empty = open_dataset("chestxdet", workspace=ws, data_root=chestxdet_root).case("36201")
    assert empty.read_instances() == [] and not sitk.GetArrayFromImage(empty.read_label()).any()


def test_chestxdet_unknown_class(ws: Workspace, make, tmp_path: Path) -> None:
    entry = make.chestxdet_entry("1.png", [("Tumour", (1, 1, 4, 4))])
    root = make.chestxdet(tmp_path / "c", train=[entry], test=[])
    case = open_dataset("chestxdet", workspace=ws, data_root=root).case("1")
    with pytest.raises(InvalidLabelError, match=r"class 'Tumour' is not in the label map"):
        case.read_instances()


def test_optional_organ_map_in_both_autopet_layouts(ws: Workspace, make, tmp_path: Path) -> None:
    """ORGANS (optional in datasets.yaml) is a channel of exactly the cases that have the file."""
    from evaluator.datasets.nnunet import NnunetAdapter

    root = make.autopet(tmp_path / "a")
    adapter = open_dataset("autopet", workspace=ws, data_root=root)
    first = adapter.case("PETCT_0af7ffe12a_0")
    organs = first.channels["CT"].parent / "ORGANS.nii.gz"
    sitk.WriteImage(sitk.ReadImage(str(first.label)), str(organs))
    adapter = open_dataset("autopet", workspace=ws, data_root=root)
    assert list(adapter.case("PETCT_0af7ffe12a_0").channels) == ["CT", "PET", "ORGANS"]
    assert list(adapter.case("PETCT_1b2c3d4e5f_0").channels) == ["CT", "PET"]

    task = load_registry().task("autopet-nnunet")
    nn = make.nnunet(tmp_path / "n", ["a", "b"], channel_names=("CT", "PET", "ORGANS"))
    (nn / "imagesTr" / "b_0002.nii.gz").unlink(missing_ok=True)
    nn_adapter = NnunetAdapter(task, nn)
    assert nn_adapter.case("a").channels["ORGANS"].name == "a_0002.nii.gz"
    assert "ORGANS" not in nn_adapter.case("b").channels
    lacking = make.nnunet(tmp_path / "l", ["a"], channel_names=("CT", "ORGANS"))
    with pytest.raises(RegistryError, match="lacks PET"):
        NnunetAdapter(task, lacking).case_ids()
