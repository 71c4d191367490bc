"""The nnU-Net raw layout: `data phantoms --layout nnunet` and the export nnU-Net trains on."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from evaluator.datasets.base import open_dataset
from evaluator.datasets.nnunet import export_raw, nnunet_dataset_name
from evaluator.datasets.phantoms import write_phantoms
from evaluator.datasets.registry import load_registry
from evaluator.errors import PhantomError, RegistryError
from evaluator.workspace import Workspace


def test_the_nnunet_phantom_holds_the_native_cases(workspace: Workspace) -> None:
    write_phantoms("autopet", workspace=workspace, cases=5, size="32x32x24", seed=2)  # fmt: skip
    result = write_phantoms("autopet", workspace=workspace, cases=5, size="32x32x24", seed=2,
                            layout="nnunet")  # fmt: skip
    root = workspace.root / "phantoms" / "autopet_nnunet"
    assert result.out == root
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == [
        "Metadata.csv", "dataset.json", "imagesTr", "labelsTr",
    ]  # fmt: skip
    description = json.loads((root / "dataset.json").read_text())
    assert description["channel_names"] == {"0": "CT", "1": "PET"}
    assert description["labels"] == {"background": 0, "lesion": 1}
    assert description["numTraining"] == 5
    assert description["name"] == nnunet_dataset_name("autopet-nnunet-phantom")[1]
    native = open_dataset("autopet-phantom", workspace=workspace)
    nnunet = open_dataset("autopet-nnunet-phantom", workspace=workspace)
    assert nnunet.case_ids() == native.case_ids()
    for cid in native.case_ids():
        a, b = native.case(cid), nnunet.case(cid)
        assert a.metadata["diagnosis"] == b.metadata["diagnosis"]  # Metadata.csv matched
        for read in (lambda c: c.read_label(), lambda c: c.read_channel("PET")):
            np.testing.assert_array_equal(
                sitk.GetArrayFromImage(read(a)), sitk.GetArrayFromImage(read(b))
            )
    # a second run replaces the first; a folder of real data is never written into
    write_phantoms("autopet", workspace=workspace, cases=3, size="32x32x24", layout="nnunet")  # fmt: skip
    assert len(list((root / "labelsTr").iterdir())) == 3
    (root / ".ccbench-phantom.json").unlink()
    with pytest.raises(PhantomError, match="was not written by `ccbench data phantoms`"):
        write_phantoms("autopet", workspace=workspace, cases=3, size="32x32x24",
                       layout="nnunet")  # fmt: skip


def test_the_nnunet_layout_needs_a_volume_task_and_a_target(workspace: Workspace) -> None:
    with pytest.raises(PhantomError, match="for 3D tasks"):
        write_phantoms("chestxdet", workspace=workspace, cases=2, layout="nnunet")
    with pytest.raises(PhantomError, match="no nnU-Net phantom task of 'btcv'"):
        write_phantoms("btcv", workspace=workspace, cases=2, layout="nnunet")
    with pytest.raises(PhantomError, match="unknown layout"):
        write_phantoms("btcv", workspace=workspace, cases=2, layout="decathlon")


def test_export_resamples_a_channel_on_another_grid(workspace: Workspace, tmp_path: Path) -> None:
    # HECKTOR's PT is on a coarser grid than its CT: nnU-Net needs one grid per case
    write_phantoms("hecktor", workspace=workspace, cases=2, size="40x40x24")
    task = load_registry().task("hecktor-phantom")
    dataset = open_dataset(task, workspace=workspace)
    cases = [dataset.case(c) for c in dataset.case_ids()]
    out = export_raw(task, cases, tmp_path / "Dataset910_H", name="Dataset910_H",
                     folds=[{"train": ["a"], "val": ["b"]}])  # fmt: skip
    for case in cases:
        ct = sitk.ReadImage(str(out / "imagesTr" / f"{case.case_id}_0000.nii.gz"))
        pt = sitk.ReadImage(str(out / "imagesTr" / f"{case.case_id}_0001.nii.gz"))
        native_pt = sitk.ReadImage(str(case.channels["PT"]))
        assert native_pt.GetSize() != ct.GetSize()  # the phantom's PT grid is coarser
        assert pt.GetSize() == ct.GetSize() and pt.GetSpacing() == ct.GetSpacing()
        label = out / "labelsTr" / f"{case.case_id}.nii.gz"
        # files on the right grid are linked, not copied
        assert os.path.samefile(label, case.label) or label.read_bytes() == case.label.read_bytes()
    assert json.loads((out / "splits_final.json").read_text()) == [{"train": ["a"], "val": ["b"]}]
    assert json.loads((out / "dataset.json").read_text())["labels"] == {
        "background": 0, "GTVp": 1, "GTVn": 2,
    }  # fmt: skip


def test_export_refuses_labels_nnunet_cannot_train(workspace: Workspace, tmp_path: Path) -> None:
    task = load_registry().task("btcv-phantom").model_copy(update={"labels": {1: "a", 3: "c"}})
    with pytest.raises(RegistryError, match=r"labels 1\.\.N"):
        export_raw(task, [], tmp_path / "x", name="Dataset999_X")
    chest = load_registry().task("chestxdet-phantom")
    with pytest.raises(RegistryError, match="3D task"):
        export_raw(chest, [], tmp_path / "y", name="Dataset999_Y")
