"""``ccbench data check``: one test per kind of corruption, each naming the file and the problem."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.datasets.check import check_dataset
from evaluator.errors import DataCheckError
from evaluator.workspace import Workspace

CLEAN = ["autopet", "hecktor", "btcv", "chestxdet", "nnunet"]
TASK_OF = {"nnunet": "autopet-nnunet"}


@pytest.mark.parametrize("layout", CLEAN)
def test_clean_datasets_pass(layout: str, ws: Workspace, request) -> None:
    root = request.getfixturevalue(f"{layout}_root")
    report = check_dataset(TASK_OF.get(layout, layout), workspace=ws, data_root=root)
    assert report.ok, report.problems
    assert report.n_cases >= 3
    report.raise_if_failed()


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x1f\x8b garbage")


def _relabel(path: Path, value: int) -> None:
    img = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(img)
    arr[0, 0, 0] = value
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    sitk.WriteImage(out, str(path))


def _respace(path: Path, spacing=None, origin=None) -> None:
    img = sitk.ReadImage(str(path))
    if spacing is not None:
        img.SetSpacing(spacing)
    if origin is not None:
        img.SetOrigin(origin)
    sitk.WriteImage(img, str(path))


# layout, file relative to root, corruption, expected fragment of the message
CORRUPTIONS: dict[str, tuple[str, str, Callable[[Path], None], str]] = {
    "truncated_channel": (
        "btcv",
        "img/img0003.nii.gz",
        _truncate,
        "truncated",
    ),
    "corrupt_label": (
        "hecktor",
        "labelsTr/CHUM-002.nii.gz",
        _garbage,
        "cannot be decoded",
    ),
    "missing_channel": (
        "nnunet",
        "imagesTr/PETCT_1b2c3d4e5f_0_0001.nii.gz",
        Path.unlink,
        "file does not exist",
    ),
    "missing_pet_channel": (
        "hecktor",
        "imagesTr/CHUP-010__PT.nii.gz",
        Path.unlink,
        "file does not exist",
    ),
    "label_outside_map": (
        "btcv",
        "label/label0002.nii.gz",
        lambda p: _relabel(p, 14),
        "values [14] are not in the label map",
    ),
    "hecktor_label_3": (
        "hecktor",
        "labelsTr/MDA-101.nii.gz",
        lambda p: _relabel(p, 3),
        "values [3] are not in the label map {0, 1, 2}",
    ),
    "spacing_mismatch": (
        "autopet",
        "FDG-PET-CT-Lesions/PETCT_1b2c3d4e5f",
        None,
        "spacing (1.0, 1.0, 2.5) mm",
    ),
    "origin_mismatch": (
        "hecktor",
        "imagesTr/CHUM-001__CT.nii.gz",
        lambda p: _respace(p, origin=(0.0, 0.0, 5.0)),
        "origin (0.0, 0.0, 5.0) mm",
    ),
    "corrupt_png": ("chestxdet", "train/36200.png", _garbage, "cannot be decoded"),
}


def _spacing_of_suv(root: Path) -> Path:
    study = next((root / "FDG-PET-CT-Lesions" / "PETCT_1b2c3d4e5f").iterdir())
    path = study / "SUV.nii.gz"
    _respace(path, spacing=(1.0, 1.0, 2.5))
    return path


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_each_corruption_is_reported_with_its_file(name: str, ws: Workspace, request) -> None:
    layout, rel, corrupt, expected = CORRUPTIONS[name]
    root = request.getfixturevalue(f"{layout}_root")
    if corrupt is None:
        path = _spacing_of_suv(root)
    else:
        path = root / rel
        corrupt(path)
    report = check_dataset(TASK_OF.get(layout, layout), workspace=ws, data_root=root)
    assert not report.ok
    assert len(report.bad_cases) == 1  # the other cases were checked and are fine
    assert report.n_cases >= 3
    messages = [p.message for p in report.problems]
    assert any(str(path) in m and expected in m for m in messages), messages
    with pytest.raises(DataCheckError, match=r"problem\(s\) in 1 of"):
        report.raise_if_failed()


def _rewrite_annotations(root: Path, edit: Callable[[list], None]) -> None:
    path = root / "ChestX_Det_train.json"
    entries = json.loads(path.read_text())
    edit(entries)
    path.write_text(json.dumps(entries))


ANNOTATION_PROBLEMS = {
    "polygon_outside": (
        lambda e: e[1]["polygons"][0].append([40, 10]),
        "point(s) outside the 32x32 image, e.g. (40, 10)",
    ),
    "negative_vertex": (
        lambda e: e[1]["polygons"][0].__setitem__(0, [-3, 8]),
        "outside the 32x32 image, e.g. (-3, 8)",
    ),
    "unknown_class": (
        lambda e: e[1]["syms"].__setitem__(0, "Tumour"),
        "class is not in the label map",
    ),
    "count_mismatch": (lambda e: e[1]["boxes"].append([1, 1, 2, 2]), "differ in number"),
    "degenerate_polygon": (
        lambda e: e[1]["polygons"].__setitem__(0, [[1, 1], [2, 2]]),
        "polygon has 2 vertices",
    ),
}


@pytest.mark.parametrize("name", sorted(ANNOTATION_PROBLEMS))
def test_annotation_problems(name: str, ws: Workspace, chestxdet_root: Path) -> None:
    edit, expected = ANNOTATION_PROBLEMS[name]
    _rewrite_annotations(chestxdet_root, edit)
    report = check_dataset("chestxdet", workspace=ws, data_root=chestxdet_root)
    assert report.bad_cases == ["36200"]
    assert all(str(chestxdet_root / "ChestX_Det_train.json") in p.message for p in report.problems)
    assert any(expected in p.message for p in report.problems), report.problems


def test_wrong_dimension(ws: Workspace, btcv_root: Path) -> None:
    path = btcv_root / "img" / "img0004.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((8, 10), dtype=np.int16)), str(path))
    report = check_dataset("btcv", workspace=ws, data_root=btcv_root)
    assert report.bad_cases == ["0004"]
    assert "2D image, task 'btcv' is 3D" in report.problems[0].message


# ---- through the CLI -------------------------------------------------------------------------

runner = CliRunner()


def test_cli_check_clean_and_broken(ws: Workspace, btcv_root: Path) -> None:
    args = ["data", "check", "--task", "btcv", "--data-root", str(btcv_root), "-w", str(ws.root)]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    text = " ".join(ok.output.split())  # rich wraps long paths at the terminal's width
    assert "6 cases checked" in text and "no problems" in text
    _relabel(btcv_root / "label" / "label0002.nii.gz", 20)
    bad = runner.invoke(app, args, terminal_width=200)
    assert bad.exit_code == 1
    assert "1 problem(s) in 1 of 6 cases" in bad.output
    assert "label0002.nii.gz" in bad.output and "values [20]" in bad.output


def test_cli_check_missing_data_says_what_to_do(ws: Workspace) -> None:
    result = runner.invoke(app, ["data", "check", "--task", "hecktor-phantom", "-w", str(ws.root)])
    assert result.exit_code == 1
    assert "ccbench data phantoms --task hecktor" in result.output


def test_cli_split(ws: Workspace, make, tmp_path: Path) -> None:
    root = make.btcv(tmp_path / "b", n=10)
    args = ["data", "split", "--task", "btcv", "--data-root", str(root), "-w", str(ws.root)]
    result = runner.invoke(app, [*args, "--seed", "4"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "10 cases, scheme kfold" in result.output
    folds = json.loads((ws.root / "splits" / "btcv.json").read_text())
    assert len(folds) == 5
    test = json.loads((ws.root / "splits" / "btcv.test.json").read_text())["test"]
    assert len(test) == 2
