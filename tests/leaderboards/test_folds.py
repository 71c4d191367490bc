"""Fold-wise mean ± SD from a hand-made store, checked against numbers computed by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from evaluator.errors import StoreError
from evaluator.store import ResultRow, RunKind, Store
from evaluator.workspace import Workspace
from leaderboards.data import load_leaderboard_data, run_fold
from leaderboards.folds import fold_summary, summarise_folds
from leaderboards.site import publish_leaderboard

nan = math.nan

#: Entry "a", BTCV (5 folds), two cases per fold: per case a list of (label, dice) rows (labels
#: are averaged per case) and one HD95. Per-fold mean Dice, by hand: fold0 (0.4 + 0.6)/2 = 0.5
#: and 0.5 -> 0.5; fold1 (0.5 + 0.7)/2 = 0.6; fold2 0.7 (the NaN case is undefined, left out);
#: fold3 0.8; fold4 (1.0 + 0.8)/2 = 0.9. Mean 0.7; SD (n - 1) sqrt((0.04 + 0.01 + 0 + 0.01 +
#: 0.04) / 4) = sqrt(0.025). HD95 per fold 1, 2, 3, 4, 5: mean 3, SD sqrt(10 / 4) = sqrt(2.5).
Cases = dict[str, tuple[list[tuple[int, float]], float]]

A_FOLDS: dict[str, Cases] = {
    "fold0": {"0-1": ([(1, 0.4), (2, 0.6)], 1.0), "0-2": ([(1, 0.5)], 1.0)},
    "fold1": {"1-1": ([(1, 0.5)], 1.0), "1-2": ([(1, 0.7)], 3.0)},
    "fold2": {"2-1": ([(1, 0.7)], 3.0), "2-2": ([(1, nan)], 3.0)},
    "fold3": {"3-1": ([(1, 0.8)], 4.0), "3-2": ([(1, 0.8)], 4.0)},
    "fold4": {"4-1": ([(1, 1.0)], 5.0), "4-2": ([(1, 0.8)], 5.0)},
}
DICE_MEAN, DICE_SD = 0.7, math.sqrt(0.025)
HD95_MEAN, HD95_SD = 3.0, math.sqrt(2.5)


def _run(
    db: Store,
    name: str,
    entry: str,
    split: str,
    cases: Cases,
    *,
    status: str = "finished",
    parameters: dict[str, str] | None = None,
    kind: RunKind = "entry",
) -> None:
    run = db.create_run(
        name=name, task="btcv", split=split, parameters=parameters or {}, entry=entry, kind=kind
    )
    for case, (dice_rows, hd95) in cases.items():
        rows = [ResultRow(label, "dice", value) for label, value in dice_rows]
        db.record_case(run.id, case, [*rows, ResultRow(1, "hd95", hd95)])
    db.finish_run(run.id, status=status)


def _store(workspace: Workspace) -> Store:
    """'a' on every fold; 'b' on two folds; 'c' on four (its fold2 run failed); a degradation
    study on fold3 and a test-split run, neither of which is a fold entry."""
    db = Store.open(f"sqlite:///{workspace.root / 'folds.sqlite'}")
    for fold, cases in A_FOLDS.items():
        _run(db, f"a-{fold}", "a", fold, cases)

    def other(fold: str) -> Cases:
        return {case: ([(1, 0.3)], 9.0) for case in A_FOLDS[fold]}  # the fold's cases

    for fold in ("fold0", "fold1"):
        _run(db, f"b-{fold}", "b", fold, other(fold))
    for fold in A_FOLDS:
        status = "failed" if fold == "fold2" else "finished"
        _run(db, f"c-{fold}", "c", fold, other(fold), status=status)
    _run(db, "study", "a", "fold3", other("fold3"), kind="study")
    _run(db, "a-test", "a", "test", {"t1": ([(1, 0.9)], 2.0)})
    _run(db, "b-test", "b", "test", {"t1": ([(1, 0.4)], 6.0)})
    return db


def test_fold_summary_by_hand(workspace: Workspace) -> None:
    db = _store(workspace)
    summary = fold_summary(db, "btcv")
    assert summary is not None
    assert summary.folds == ("fold0", "fold1", "fold2", "fold3", "fold4")
    assert list(summary.table.index) == ["a"]
    row = summary.table.loc["a"]
    assert row["dice_mean"] == pytest.approx(DICE_MEAN)
    assert row["dice_std"] == pytest.approx(DICE_SD)
    assert row["hd95_mean"] == pytest.approx(HD95_MEAN)
    assert row["hd95_std"] == pytest.approx(HD95_SD)
    assert row["n_folds"] == 5
    per_fold = summary.per_fold.xs("a", level="entry")["dice"]
    assert per_fold.round(12).to_dict() == {
        "fold0": 0.5,
        "fold1": 0.6,
        "fold2": 0.7,
        "fold3": 0.8,
        "fold4": 0.9,
    }
    assert summary.left_out == {
        "b": "no finished run on fold2, fold3, fold4",
        "c": "no finished run on fold2",
    }
    db.close()


def test_no_fold_runs_no_summary(workspace: Workspace) -> None:
    db = Store.open(f"sqlite:///{workspace.root / 'none.sqlite'}")
    _run(db, "a-test", "a", "test", {"t1": ([(1, 0.9)], 2.0)})
    assert fold_summary(db, "btcv") is None
    db.close()


def test_summarise_folds_single_fold_has_no_sd() -> None:
    idx = pd.MultiIndex.from_tuples([("a", "fold0")], names=["entry", "fold"])
    table, left = summarise_folds(pd.DataFrame({"dice": [0.6]}, index=idx), ("fold0",))
    assert table.loc["a", "dice_mean"] == 0.6 and math.isnan(table.loc["a", "dice_std"])
    assert left == {}


def test_test_split_board_shows_the_fold_table(workspace: Workspace) -> None:
    db = _store(workspace)
    try:
        index = publish_leaderboard(
            "btcv",
            "test",
            workspace=workspace,
            out=workspace.root / "site",
            store=db,
            n_resamples=10,
        )
    finally:
        db.close()
    board = index.parent / "btcv--test"
    page = (board / "index.html").read_text()
    assert "Cross-validation folds" in page
    assert f"0.700 ± {DICE_SD:.3f}" in page and "3.000 ± 1.581" in page
    assert "Not summarised: b: no finished run on fold2, fold3, fold4." in page
    csv = pd.read_csv(board / "downloads" / "folds.csv")
    assert sorted(csv["fold"]) == ["fold0", "fold1", "fold2", "fold3", "fold4"]


def test_fold_models_on_the_test_set_by_hand(workspace: Workspace) -> None:
    """Each fold's model on the test cases (``run --folds all --split test``): per fold model
    the mean over the two test cases, then mean ± SD over the five. By hand: Dice per model
    (0.2 + 0.4)/2 = 0.3, 0.4, 0.5, 0.6, 0.7 -> mean 0.5, SD sqrt((0.04 + 0.01 + 0 + 0.01 +
    0.04) / 4) = sqrt(0.025). 'b' has fold models 0 and 1 only: left out, its folds named."""
    db = _store(workspace)
    for k in range(5):
        low = 0.2 + 0.1 * k
        cases: Cases = {"t1": ([(1, low)], 1.0), "t2": ([(1, low + 0.2)], 3.0)}
        _run(db, f"a-test-model{k}", "a", "test", cases, parameters={"protocol": {"fold": k}})
        if k < 2:
            _run(db, f"b-test-model{k}", "b", "test", cases, parameters={"protocol": {"fold": k}})
    summary = fold_summary(db, "btcv")
    assert summary is not None and summary.test_table is not None
    row = summary.test_table.loc["a"]
    assert row["dice_mean"] == pytest.approx(0.5)
    assert row["dice_std"] == pytest.approx(math.sqrt(0.025))
    assert row["hd95_mean"] == pytest.approx(2.0) and row["hd95_std"] == pytest.approx(0.0)
    assert list(summary.test_table.index) == ["a"]
    assert summary.test_left_out == {"b": "no finished run on fold2, fold3, fold4"}
    # the plain test runs (no fold) are not fold models; the validation summary is unchanged
    assert summary.table.loc["a", "dice_mean"] == pytest.approx(DICE_MEAN)
    # the test board ranks the plain runs: a fold model (the last run) is never the entry's result
    board = load_leaderboard_data("btcv", "test", store=db)
    assert board.runs["a"].name == "a-test"
    assert all(run_fold(r) is None for r in board.runs.values())


def test_a_fold_model_is_not_ranked_on_another_folds_board(workspace: Workspace) -> None:
    """Fold 2's model on fold 0's cases (it trained on them) is left out of fold 0's board and
    of the summary; a board of only fold models' test runs says where they are summarised."""
    db = Store.open(f"sqlite:///{workspace.root / 'other.sqlite'}")
    for fold, cases in A_FOLDS.items():
        _run(db, f"a-{fold}", "a", fold, cases, parameters={"protocol": {"fold": int(fold[-1])}})
    _run(db, "a-fold0-by-2", "a", "fold0", {"0-1": ([(1, 1.0)], 0.0), "0-2": ([(1, 1.0)], 0.0)},
         parameters={"protocol": {"fold": 2}})  # fmt: skip
    assert load_leaderboard_data("btcv", "fold0", store=db).runs["a"].name == "a-fold0"
    summary = fold_summary(db, "btcv")
    assert summary is not None
    assert summary.table.loc["a", "dice_mean"] == pytest.approx(DICE_MEAN)
    _run(db, "a-test-model0", "a", "test", A_FOLDS["fold0"], parameters={"protocol": {"fold": 0}})
    with pytest.raises(StoreError, match=r"only fold models' runs .* --split fold0"):
        load_leaderboard_data("btcv", "test", store=db)


def test_no_fold_model_runs_no_test_table(workspace: Workspace) -> None:
    summary = fold_summary(_store(workspace), "btcv")
    assert summary is not None and summary.test_table is None


def test_slice_task_summarises_per_patient_by_hand(workspace: Workspace) -> None:
    """A slice task (``autopet-2d``): each fold holds patient A (3 slices, Dice 0.2, 0.4, 0.6:
    mean 0.4) and patient B (1 slice, Dice 1.0; 0.6 on fold4). Per fold over slices: 0.55 four
    times and 0.45, mean 0.53, SD sqrt(4 * 0.02^2 + 0.08^2) / 2 = sqrt(0.002). Per patient:
    (0.4 + 1.0) / 2 = 0.7 four times and 0.5, mean 0.66, SD sqrt(4 * 0.04^2 + 0.16^2) / 2 =
    sqrt(0.008)."""
    db = Store.open(f"sqlite:///{workspace.root / 'slices.sqlite'}")
    try:
        for k in range(5):
            b = 0.6 if k == 4 else 1.0
            slices = {f"A{k}_z0001": 0.2, f"A{k}_z0002": 0.4, f"A{k}_z0013": 0.6, f"B{k}_z0100": b}
            run = db.create_run(
                name=f"m-fold{k}", task="autopet-2d", split=f"fold{k}", entry="m",
                parameters={"protocol": {"fold": k}},
            )  # fmt: skip
            for case, dice in slices.items():
                rows = [ResultRow(1, "dice", dice), ResultRow(1, "iou", dice / (2 - dice))]
                db.record_case(run.id, case, rows)  # the board's ranking needs IoU too
            db.finish_run(run.id, status="finished")
        summary = fold_summary(db, "autopet-2d")
        assert summary is not None and summary.patient_table is not None
        assert summary.table.loc["m", "dice_mean"] == pytest.approx(0.53)
        assert summary.table.loc["m", "dice_std"] == pytest.approx(math.sqrt(0.002))
        assert summary.patient_table.loc["m", "dice_mean"] == pytest.approx(0.66)
        assert summary.patient_table.loc["m", "dice_std"] == pytest.approx(math.sqrt(0.008))
        assert summary.per_patient is not None
        assert summary.per_patient.loc[("m", "fold4", "B4"), "dice"] == pytest.approx(0.6)
        assert summary.per_patient.loc[("m", "fold0", "A0"), "dice"] == pytest.approx(0.4)
        assert summary.patient_test_table is None
        index = publish_leaderboard(
            "autopet-2d", "fold0", workspace=workspace, out=workspace.root / "site", store=db,
            n_resamples=10,
        )  # fmt: skip
    finally:
        db.close()
    board = index.parent / "autopet-2d--fold0"
    page = (board / "index.html").read_text()
    patients = page[page.index('id="fold-patients"') :]
    assert f"0.660 ± {math.sqrt(0.008):.3f}" in patients[: patients.index("</table>")]
    csv = pd.read_csv(board / "downloads" / "patients.csv")
    assert len(csv) == 10 and set(csv["patient"]) == {f"{p}{k}" for p in "AB" for k in range(5)}


def test_a_board_of_volumes_has_no_patient_table(workspace: Workspace) -> None:
    summary = fold_summary(_store(workspace), "btcv")
    assert summary is not None
    assert summary.per_patient is None and summary.patient_table is None


def test_chestxdet_map_gets_its_mean_and_sd_over_folds(workspace: Workspace) -> None:
    """APEX Table 3.1 reports ChestXDet's COCO mask mAP as mean ± SD over folds: the run-level
    mAP of each fold run (0.30, 0.35, 0.40, 0.45, 0.50 -> mean 0.40, SD sqrt(0.00625)), not a
    mean over images."""
    db = Store.open(f"sqlite:///{workspace.root / 'cxr.sqlite'}")
    try:
        for k in range(5):
            run = db.create_run(
                name=f"m-fold{k}", task="chestxdet", split=f"fold{k}", entry="m", parameters={}
            )
            for case in ("a", "b"):
                rows = [ResultRow(1, "dice", 0.5), ResultRow(1, "iou", 1 / 3)]
                db.record_case(run.id, f"{case}{k}", rows)
            coco = [ResultRow(0, "coco_ap", 0.30 + 0.05 * k), ResultRow(1, "coco_ap", 0.9)]
            db.finish_run(run.id, status="finished", aggregates=coco)
        summary = fold_summary(db, "chestxdet")
    finally:
        db.close()
    assert summary is not None and summary.metrics[0] == "coco_ap"
    assert summary.table.loc["m", "coco_ap_mean"] == pytest.approx(0.40)
    assert summary.table.loc["m", "coco_ap_std"] == pytest.approx(math.sqrt(0.00625))
    assert summary.table.loc["m", "dice_mean"] == pytest.approx(0.5)
