"""``ccbench evaluate --fold K`` / ``--folds all`` on the 2D slice task: the fold recorded.

Real files: the tiny AutoPET phantom cut into slices, predictions written with SimpleITK, a real
SQLite store; the board's fold summary read back from it.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.datasets.base import open_dataset
from evaluator.datasets.splits import make_split, resolve_split
from evaluator.learn.entry import choose_model
from evaluator.store import Store
from evaluator.workspace import Workspace
from leaderboards.folds import fold_summary

TASK = "autopet-2d-phantom"


@pytest.fixture(scope="module")
def _slices_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 tiny AutoPET phantom patients: every fold holds a lesion patient's slices."""
    from evaluator.datasets.phantoms import write_phantoms

    ws = Workspace(tmp_path_factory.mktemp("slices") / "ws").ensure()
    write_phantoms("autopet", workspace=ws, cases=12, size="48x48x40", seed=3)
    make_split("autopet-phantom", workspace=ws, seed=0)
    make_split(TASK, workspace=ws)
    return ws.root


@pytest.fixture
def slices_ws(_slices_source: Path, tmp_path: Path) -> Workspace:
    shutil.copytree(_slices_source, tmp_path / "ws")
    return Workspace(tmp_path / "ws")


def _predict(ws: Workspace, split: str, folder: Path, *, perfect: bool) -> None:
    """The reference itself (Dice 1 on lesion slices) or nothing (an empty prediction)."""
    dataset = open_dataset(TASK, workspace=ws)
    folder.mkdir(parents=True)
    for cid in resolve_split(TASK, split, workspace=ws):
        ref = dataset.case(cid).read_label()
        sitk.WriteImage(ref if perfect else ref * 0, str(folder / f"{cid}.nii.gz"))


def _invoke(ws: Workspace, *args: str) -> object:
    store = f"sqlite:///{ws.root / 'results.sqlite'}"
    cli = ["evaluate", "-t", TASK, "-w", str(ws.root), "--store", store, "-q", *args]
    return CliRunner().invoke(app, cli, env={"COLUMNS": "200"})


def test_folds_all_records_each_fold_and_the_board_summarises(
    slices_ws: Workspace, tmp_path: Path
) -> None:
    autopet_ws = slices_ws
    # fold k's model is perfect on even folds and empty on odd ones: Dice 1, 0, 1, 0, 1
    for k in range(5):
        _predict(autopet_ws, f"fold{k}", tmp_path / f"cv{k}", perfect=k % 2 == 0)
    args = ["--folds", "all", "--pred", str(tmp_path / "cv{fold}")]
    unnamed = _invoke(autopet_ws, *args)
    assert unnamed.exit_code != 0 and "--entry" in unnamed.output  # type: ignore[attr-defined]
    result = _invoke(autopet_ws, *args, "--entry", "my-2d-model")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    db = Store.open(f"sqlite:///{autopet_ws.root / 'results.sqlite'}")
    runs = {r.split: r for r in db.list_runs(task=TASK, status="finished")}
    assert sorted(runs) == [f"fold{k}" for k in range(5)]
    assert all(runs[f"fold{k}"].parameters["protocol"] == {"fold": k} for k in range(5))
    summary = fold_summary(db, TASK)
    assert summary is not None
    (entry,) = summary.table.index
    assert entry == "my-2d-model"
    # every slice of a lesion patient: Dice 1 when perfect; an empty prediction of a slice with
    # lesions has Dice 0, and of a slice without (the negative share) Dice 1 (both empty)
    per_fold = summary.per_fold.loc[entry, "dice"].to_numpy()
    assert per_fold[0] == per_fold[2] == per_fold[4] == 1.0
    assert per_fold[1] < 0.5 and per_fold[3] < 0.5
    assert summary.table.loc[entry, "dice_mean"] == pytest.approx(per_fold.mean())
    assert summary.table.loc[entry, "dice_std"] == pytest.approx(np.std(per_fold, ddof=1))
    assert not math.isnan(summary.table.loc[entry, "iou_std"])
    # per patient (a slice task): each patient's slices averaged first. An empty prediction has
    # Dice 1 on a slice without lesion and 0 on one with, so a patient's mean is its share of
    # slices without lesion; the perfect folds give 1 per patient.
    dataset = open_dataset(TASK, workspace=autopet_ws)
    expected = []
    for k in range(5):
        shares: dict[str, list[float]] = {}
        for cid in resolve_split(TASK, f"fold{k}", workspace=autopet_ws):
            empty = not sitk.GetArrayFromImage(dataset.case(cid).read_label()).any()
            shares.setdefault(cid.rsplit("_z", 1)[0], []).append(1.0 if empty or k % 2 == 0 else 0)
        expected.append(np.mean([np.mean(v) for v in shares.values()]))
    assert summary.patient_table is not None and summary.per_patient is not None
    assert summary.patient_table.loc[entry, "dice_mean"] == pytest.approx(np.mean(expected))
    assert summary.patient_table.loc[entry, "dice_std"] == pytest.approx(np.std(expected, ddof=1))
    patients = summary.per_patient.xs("fold1", level="fold").loc[entry]
    assert patients.index.tolist() == sorted(
        {c.rsplit("_z", 1)[0] for c in resolve_split(TASK, "fold1", workspace=autopet_ws)}
    )
    # slices weigh a patient by its slice count: the two means differ on the empty folds
    assert summary.patient_table.loc[entry, "dice_mean"] != pytest.approx(
        summary.table.loc[entry, "dice_mean"]
    )


def test_fold_options_are_checked(slices_ws: Workspace, tmp_path: Path) -> None:
    autopet_ws = slices_ws
    _predict(autopet_ws, "test", tmp_path / "p", perfect=True)
    several = _invoke(autopet_ws, "--folds", "0,1", "--pred", str(tmp_path / "p"), "--entry", "e")
    assert several.exit_code != 0 and "{fold}" in several.output  # type: ignore[attr-defined]
    missing = _invoke(autopet_ws, "--fold", "7", "--split", "test", "--pred", str(tmp_path / "p"))
    assert missing.exit_code != 0 and "folds 0..4, not [7]" in missing.output  # type: ignore[attr-defined]
    both = _invoke(autopet_ws, "--fold", "1", "--folds", "all", "--pred", str(tmp_path / "p"))
    assert both.exit_code != 0 and "not both" in both.output  # type: ignore[attr-defined]
    # fold 2's model trained on fold 0's validation cases (and on part of 'all'): refused
    _predict(autopet_ws, "fold0", tmp_path / "f0", perfect=True)
    other = _invoke(autopet_ws, "--fold", "2", "--split", "fold0", "--pred", str(tmp_path / "f0"))
    assert other.exit_code != 0  # type: ignore[attr-defined]
    assert "fold 2's model was trained on" in " ".join(other.output.split())  # type: ignore[attr-defined]
    absent = _invoke(
        autopet_ws, "--folds", "all", "--pred", str(tmp_path / "nope{fold}"), "--entry", "e"
    )
    assert absent.exit_code != 0 and "nope0" in absent.output  # type: ignore[attr-defined]
    # a test-split run of fold 3's model
    one = _invoke(autopet_ws, "--fold", "3", "--split", "test", "--pred", str(tmp_path / "p"))
    assert one.exit_code == 0, one.output  # type: ignore[attr-defined]
    db = Store.open(f"sqlite:///{autopet_ws.root / 'results.sqlite'}")
    (run,) = db.list_runs(task=TASK, status="finished")
    assert run.split == "test" and run.parameters["protocol"] == {"fold": 3}


def test_a_fold_run_takes_that_folds_model_or_none(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    for folder in ("t", "t/fold0", "t/fold2"):
        (weights / folder).mkdir(parents=True)
        (weights / folder / "config.json").write_text("{}")
    assert choose_model(weights, "t", None) == weights / "t"
    assert choose_model(weights, "t", None, fold=2) == weights / "t" / "fold2"
    with pytest.raises(LookupError, match="no model of fold 1"):
        choose_model(weights, "t", None, fold=1)  # never another fold's model
