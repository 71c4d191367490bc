"""nnU-Net v2 as a baseline: training through nnU-Net's own pipeline, packing a results folder
(weights only, checked against the task), and inference that equals nnU-Net's own predictor."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from evaluator.datasets.registry import load_registry
from evaluator.datasets.splits import read_split
from evaluator.errors import SubmissionError
from evaluator.learn.nnunet_train import nnunet_root, train_nnunet
from evaluator.learn.train import find_trained
from evaluator.runner.nnunet_pack import (
    open_results,
    pack_results,
    read_checkpoint,
    task_channels,
)
from evaluator.store import Store
from evaluator.workspace import Workspace

pytestmark = pytest.mark.slow
TASK = "autopet-phantom"


def _results(trained: Any) -> Path:
    _, result = trained
    config = json.loads((result.folder / "config.json").read_text())
    return (result.folder / config["results_folder"]).resolve()


def test_training_runs_nnunets_pipeline_on_the_training_folds_only(nnunet_trained: Any) -> None:
    ws, result = nnunet_trained
    spec = load_registry().task(TASK)
    folds, test = read_split(spec.split_path(ws))
    root = nnunet_root(ws, TASK)
    raw = next((root / "nnUNet_raw").glob("Dataset*"))
    exported = {p.name.removesuffix(".nii.gz") for p in (raw / "labelsTr").iterdir()}
    assert exported == {c for f in folds for c in (*f["train"], *f["val"])}
    assert not exported & set(test)  # the held-out cases never reach nnU-Net
    assert json.loads((raw / "splits_final.json").read_text()) == [
        {"train": list(f["train"]), "val": list(f["val"])} for f in folds
    ]
    # nnU-Net's own layout and files, ccbench's trainer named in the results folder
    results = _results(nnunet_trained)
    assert results.name == "nnUNetTrainerCcbench__nnUNetPlans__3d_fullres"
    assert (results / "plans.json").is_file() and (results / "fold_0" / "validation").is_dir()
    config = result.config
    assert config["iterations_done"] == 2 and config["epochs_done"] == 1
    assert config["profile"]["target_spacing_mm"] == [4.0, 4.0, 4.0]
    plans = json.loads((results / "plans.json").read_text())
    assert plans["configurations"]["3d_fullres"]["spacing"] == [4.0, 4.0, 4.0]
    nnunet_summary = json.loads((results / "fold_0" / "validation" / "summary.json").read_text())
    assert result.val_dice == pytest.approx(nnunet_summary["foreground_mean"]["Dice"], nan_ok=True)
    assert (result.folder / "curve.csv").read_text().startswith("epoch,loss,val_loss,val_dice")
    assert find_trained(ws, "nnunet", TASK) == result.folder
    with Store.open(ws.store_url) as db:
        run = db.get_run(result.run_id)
        artifacts = {a.kind: a for a in db.artifacts(run_ids=[run.id])}
    assert run.kind == "training" and run.entry == "nnunet"
    assert Path(artifacts["weights"].path) == results


def test_same_settings_reuse_the_trained_model(nnunet_trained: Any) -> None:
    ws, result = nnunet_trained
    again = train_nnunet(TASK, workspace=ws, iterations=2, reuse=True)
    assert again.reused and again.folder == result.folder and again.run_id is None


def test_packing_keeps_the_weights_only(nnunet_trained: Any, tmp_path: Path) -> None:
    results = open_results(_results(nnunet_trained))
    assert results.folds == ("0",) and results.trainer == "nnUNetTrainerCcbench"
    packed = pack_results(results, load_registry().task(TASK), tmp_path / "p", tta=False)
    original = results.folder / "fold_0" / "checkpoint_final.pth"
    slim = packed / "model" / "fold_0" / "checkpoint_final.pth"
    assert slim.stat().st_size < 0.55 * original.stat().st_size  # SGD momentum: one copy
    data = torch.load(slim, weights_only=True)
    assert set(data) == {
        "network_weights", "trainer_name", "inference_allowed_mirroring_axes", "current_epoch",
        "init_args",
    }  # fmt: skip
    full = read_checkpoint(original)
    assert all(
        torch.equal(data["network_weights"][k], v) for k, v in full["network_weights"].items()
    )
    config = json.loads((packed / "config.json").read_text())
    assert config["channels"] == ["CT", "PET"] and config["tta"] is False
    assert sorted(p.name for p in (packed / "model").iterdir()) == [
        "dataset.json", "fold_0", "plans.json",
    ]  # fmt: skip


class _Payload:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {os.environ['CCBENCH_PAYLOAD']}",))


def test_a_checkpoint_that_would_run_code_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    monkeypatch.setenv("CCBENCH_PAYLOAD", str(marker))
    path = tmp_path / "checkpoint_final.pth"
    torch.save({"network_weights": {}, "extra": _Payload()}, path, pickle_module=pickle)
    with pytest.raises(SubmissionError, match=r"not a loadable .* \(it would call posix.system\)"):
        read_checkpoint(path)
    assert not marker.exists()
    fifo = tmp_path / "fifo" / "checkpoint_final.pth"  # would block a reader forever
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    from evaluator.runner.nnunet_pack import _regular_file

    with pytest.raises(SubmissionError, match="not a regular file"):
        _regular_file(fifo)


def _copy_results(trained: Any, tmp_path: Path) -> Path:
    dest = tmp_path / "Dataset906_X" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    shutil.copytree(_results(trained), dest)
    return dest


def _edit(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_results_are_checked_against_the_task(nnunet_trained: Any, tmp_path: Path) -> None:
    task = load_registry().task(TASK)
    folder = _copy_results(nnunet_trained, tmp_path)
    # the dataset folder above is accepted too, with the configuration choosing the training
    assert open_results(folder.parent).folder == folder
    _edit(folder / "dataset.json", channel_names={"0": "pet", "1": "CT"})
    assert task_channels(open_results(folder), task) == ["PET", "CT"]  # by name, any order
    # names as normalisation schemes (nnU-Net's habit): by position
    _edit(folder / "dataset.json", channel_names={"0": "CT", "1": "noNorm"})
    assert task_channels(open_results(folder), task) == ["CT", "PET"]
    _edit(folder / "dataset.json", channel_names={"0": "PET", "1": "MR"})
    with pytest.raises(SubmissionError, match="channel 0 is named PET"):
        task_channels(open_results(folder), task)
    _edit(folder / "dataset.json", channel_names={"0": "CT", "1": "PET", "2": "MR"})
    with pytest.raises(SubmissionError, match="lists 3 channels"):
        task_channels(open_results(folder), task)
    _edit(folder / "dataset.json", channel_names={"0": "CT", "1": "PET"})
    _edit(folder / "dataset.json", labels={"background": 0, "lesion": 1, "organ": 2})
    with pytest.raises(SubmissionError, match=r"label value\(s\) \[2\]"):
        task_channels(open_results(folder), task)
    with pytest.raises(SubmissionError, match="no configuration '2d_nonexistent'"):
        open_results(folder, configuration="2d_nonexistent")
    with pytest.raises(SubmissionError, match=r"no checkpoint_final.pth for fold\(s\) 3"):
        open_results(folder, folds=["3"])
    for name in ("../../../etc/passwd", "", "*.pth", ".hidden.pth"):
        with pytest.raises(SubmissionError, match=r"a file name ending in \.pth"):
            open_results(folder, checkpoint=name)
    assert open_results(folder, folds=["0", "0"]).folds == ("0",)
    _edit(folder / "dataset.json", labels={"background": 0, "lesion": 1}, channel_names=None)
    # no channel names: the task's channels in order
    assert task_channels(open_results(folder), task) == ["CT", "PET"]
    with pytest.raises(SubmissionError, match="not an nnU-Net results folder"):
        open_results(tmp_path)


def _batch_input(ws: Workspace, case_ids: list[str], inp: Path) -> None:
    from evaluator.datasets.base import open_dataset

    dataset = open_dataset(TASK, workspace=ws)
    cases = []
    for cid in case_ids:
        case = dataset.case(cid)
        (inp / cid).mkdir(parents=True)
        channels = {}
        for name in ("CT", "PET"):
            shutil.copyfile(case.channels[name], inp / cid / f"{name}.nii.gz")
            channels[name] = f"{cid}/{name}.nii.gz"
        cases.append({"case_id": cid, "channels": channels})
    (inp / "cases.json").write_text(json.dumps({"task": TASK, "cases": cases}))


def test_inference_equals_nnunets_own_predictor(
    nnunet_trained: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    from evaluator.learn.nnunet_predict import run_nnunet

    ws, _ = nnunet_trained
    _, test = read_split(load_registry().task(TASK).split_path(ws))
    packed = pack_results(
        open_results(_results(nnunet_trained)), load_registry().task(TASK),
        tmp_path / "weights" / TASK, tta=True,
    )  # fmt: skip
    inp, out = tmp_path / "in", tmp_path / "out"
    _batch_input(ws, list(test), inp)
    monkeypatch.setenv("CCBENCH_INPUT", str(inp))
    monkeypatch.setenv("CCBENCH_OUTPUT", str(out))
    monkeypatch.setenv("CCBENCH_DEVICE", "cpu")
    assert run_nnunet(["--weights", str(tmp_path / "weights")]) == 0  # mirroring on
    # the oracle: nnU-Net's predictor on the same (packed) folder, as nnUNetv2_predict runs it;
    # the trainer name is nnU-Net's own, whose architecture ccbench's trainer keeps
    oracle_folder = tmp_path / "oracle"
    shutil.copytree(packed / "model", oracle_folder)
    ckpt = oracle_folder / "fold_0" / "checkpoint_final.pth"
    data = torch.load(ckpt, weights_only=True)
    torch.save({**data, "trainer_name": "nnUNetTrainer"}, ckpt)
    predictor = nnUNetPredictor(device=torch.device("cpu"), perform_everything_on_device=False,
                                use_mirroring=True, allow_tqdm=False)  # fmt: skip
    predictor.initialize_from_trained_model_folder(str(oracle_folder), use_folds=(0,))
    for cid in test:
        files = [str(inp / cid / "CT.nii.gz"), str(inp / cid / "PET.nii.gz")]
        seg = predictor.predict_single_npy_array(
            *predictor.plans_manager.image_reader_writer_class().read_images(files)
        )
        ours = sitk.ReadImage(str(out / f"{cid}.nii.gz"))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), seg)
        reference = sitk.ReadImage(files[0])
        assert ours.GetSpacing() == reference.GetSpacing()
        assert ours.GetOrigin() == reference.GetOrigin()


def test_a_results_folder_cannot_reach_host_files_or_code(
    nnunet_trained: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = load_registry().task(TASK)
    folder = _copy_results(nnunet_trained, tmp_path)
    # a link would copy a host file (a reference label, say) into the image
    (folder / "dataset.json").rename(tmp_path / "real.json")
    (folder / "dataset.json").symlink_to(tmp_path / "real.json")
    with pytest.raises(SubmissionError, match=r"dataset\.json: a link"):
        open_results(folder)
    (folder / "dataset.json").unlink()
    (tmp_path / "real.json").rename(folder / "dataset.json")
    ckpt = folder / "fold_0" / "checkpoint_final.pth"
    ckpt.rename(tmp_path / "c.pth")
    ckpt.symlink_to(tmp_path / "c.pth")
    with pytest.raises(SubmissionError, match=r"checkpoint_final\.pth: a link"):
        pack_results(open_results(folder), task, tmp_path / "p1")
    ckpt.unlink()
    (tmp_path / "c.pth").rename(ckpt)
    # plans name what nnU-Net imports and calls: nothing but network classes and torch.nn layers
    marker = tmp_path / "pwned"
    plans = json.loads((folder / "plans.json").read_text())
    arch = plans["configurations"]["3d_fullres"]["architecture"]
    for field, value in (
        ("network_class_name", "dynamic_network_architectures.architectures.unet.os.system"),
        ("network_class_name", "subprocess.Popen"),
        ("nonlin", "torch.nn.modules.module.os.system"),
    ):
        bad = json.loads(json.dumps(plans))
        target = bad["configurations"]["3d_fullres"]["architecture"]
        if field == "network_class_name":
            target[field] = value
        else:
            target["arch_kwargs"][field] = value
            target["arch_kwargs"]["nonlin_kwargs"] = {"command": f"touch {marker}"}
        (folder / "plans.json").write_text(json.dumps(bad))
        with pytest.raises(SubmissionError, match="only network classes"):
            pack_results(open_results(folder), task, tmp_path / "p2")
        assert not marker.exists()
    (folder / "plans.json").write_text(json.dumps({**plans, "configurations": {"3d_fullres": 7}}))
    with pytest.raises(SubmissionError, match="configurations is not a mapping of mappings"):
        open_results(folder)
    nested = {"configurations": {"3d_fullres": {"inherits_from": "3d_fullres"}}}
    (folder / "plans.json").write_text(json.dumps({**plans, **nested}))
    with pytest.raises(SubmissionError, match="not usable nnU-Net plans"):
        pack_results(open_results(folder), task, tmp_path / "p3")
    (folder / "plans.json").write_text(json.dumps(plans))
    _edit(folder / "dataset.json", labels={"background": 0, "lesion": "1; rm -rf /"})
    with pytest.raises(SubmissionError, match="labels is not a mapping"):
        open_results(folder)
    assert arch["network_class_name"].endswith("PlainConvUNet")
    monkeypatch.setattr("evaluator.runner.nnunet_pack._MAX_JSON", 100)
    with pytest.raises(SubmissionError, match="larger than"):
        open_results(folder)
