"""`ccbench evaluate --format nnunet` writes nnU-Net's summary.json: the oracle is nnU-Net v2's
own compute_metrics_on_folder on the same files (byte for byte), for labels and regions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from nnunetv2.evaluation.evaluate_predictions import compute_metrics, compute_metrics_on_folder
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from scipy import ndimage
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.datasets.phantoms import write_phantoms
from evaluator.datasets.splits import make_split
from evaluator.evaluate.nnunet_summary import case_metrics, summarize, write_summary
from evaluator.workspace import Workspace

runner = CliRunner(env={"COLUMNS": "200"})


def _write(array: np.ndarray, like: sitk.Image, path: Path) -> None:
    img = sitk.GetImageFromArray(array.astype(np.uint8))
    img.CopyInformation(like)
    sitk.WriteImage(img, str(path), True)


def _degraded_predictions(labels: Path, out: Path) -> None:
    """Dilated, eroded, shifted and empty predictions (an empty one of a negative case too)."""
    out.mkdir()
    for i, path in enumerate(sorted(labels.glob("*.nii.gz"))):
        img = sitk.ReadImage(str(path))
        ref = sitk.GetArrayFromImage(img) > 0
        pred = [
            ndimage.binary_dilation(ref),
            ndimage.binary_erosion(ref),
            np.roll(ref, 3, axis=2),
            np.zeros_like(ref),
        ][i % 4]
        _write(pred, img, out / path.name)


@pytest.mark.slow
def test_the_summary_equals_nnunets_own(workspace: Workspace, tmp_path: Path) -> None:
    # the AutoPET phantom in nnU-Net's raw layout, read by the nnU-Net adapter
    write_phantoms("autopet", workspace=workspace, cases=8, size="48x48x40", seed=1,
                   layout="nnunet")  # fmt: skip
    make_split("autopet-nnunet-phantom", workspace=workspace, seed=0)
    labels = workspace.root / "phantoms" / "autopet_nnunet" / "labelsTr"
    preds = tmp_path / "preds"
    _degraded_predictions(labels, preds)
    out = tmp_path / "eval"
    result = runner.invoke(
        app,
        ["evaluate", "-t", "autopet-nnunet-phantom", "--split", "all", "--pred", str(preds),
         "--out", str(out), "--format", "nnunet", "--workspace", str(workspace.root)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ours = (out / "nnunet" / "summary.json").read_text()
    oracle = tmp_path / "oracle.json"
    compute_metrics_on_folder(
        str(labels), str(preds), str(oracle), SimpleITKIO(), ".nii.gz", [1], num_processes=1
    )
    assert ours == oracle.read_text()
    summary = json.loads(ours)
    assert len(summary["metric_per_case"]) == 8
    # an empty prediction of a negative case: Dice NaN, left out of the mean
    dices = [c["metrics"]["1"]["Dice"] for c in summary["metric_per_case"]]
    assert any(math.isnan(d) for d in dices)
    assert summary["mean"]["1"]["Dice"] == pytest.approx(np.nanmean(dices))


def test_labels_regions_and_ignore_match_nnunet(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    like = sitk.GetImageFromArray(np.zeros((6, 9, 11), np.uint8))
    items = [1, 2, 3, (1, 2), (2, 3)]
    cases = []
    for i in range(4):
        ref = rng.integers(0, 4, size=(6, 9, 11))
        pred = np.where(rng.random(ref.shape) < 0.3, rng.integers(0, 4, size=ref.shape), ref)
        if i == 3:
            ref[ref == 3], pred[pred == 3] = 0, 0  # label 3 absent from both: NaN
        _write(ref, like, tmp_path / f"r{i}.nii.gz")
        _write(pred, like, tmp_path / f"p{i}.nii.gz")
        ref_file, pred_file = str(tmp_path / f"r{i}.nii.gz"), str(tmp_path / f"p{i}.nii.gz")
        for ignore in (None, 2):
            oracle = compute_metrics(ref_file, pred_file, SimpleITKIO(), items, ignore)
            mine = case_metrics(ref, pred, items, ignore_label=ignore)
            for item in items:
                for key, value in oracle["metrics"][item].items():
                    assert mine[item][key] == pytest.approx(value, nan_ok=True), (item, key)
        cases.append((ref_file, pred_file, case_metrics(ref, pred, items)))
    path = write_summary(summarize(cases, items), tmp_path / "summary.json")
    summary = json.loads(path.read_text())
    assert set(summary["mean"]) == {"1", "2", "3", "(1, 2)", "(2, 3)"}
    means = [summary["mean"][k]["Dice"] for k in summary["mean"]]
    assert summary["foreground_mean"]["Dice"] == pytest.approx(np.mean(means))


def test_regions_come_from_the_task_profile() -> None:
    from evaluator.datasets.registry import load_registry

    reg = load_registry()
    assert reg.profile(reg.task("hecktor-phantom")).regions == {"GTV": (1, 2)}


def test_a_region_of_labels_the_task_lacks_is_refused(tmp_path: Path) -> None:
    import yaml

    from evaluator.datasets.registry import load_registry
    from evaluator.errors import RegistryError

    source = load_registry().path
    data = yaml.safe_load(source.read_text())
    data["profiles"]["hecktor"]["regions"] = {"GTV": [1, 7]}
    bad = tmp_path / "datasets.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(RegistryError, match="region 'GTV': labels \\[1, 7\\]"):
        load_registry(bad)


def test_the_nnunet_format_is_for_label_images(workspace: Workspace, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["evaluate", "-t", "chestxdet-phantom", "--pred", str(tmp_path), "--format", "nnunet",
         "--workspace", str(workspace.root)],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "--format nnunet is for label images" in result.output
