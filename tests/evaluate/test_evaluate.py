from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator.datasets.registry import load_registry
from evaluator.errors import InvalidPredictionError
from evaluator.evaluate import evaluate_run, find_predictions, make_plan
from evaluator.metrics.api import compute_metrics
from evaluator.metrics.registry import METRICS
from evaluator.store import Store
from evaluator.workspace import Workspace

from .conftest import SPACING_XYZ, Dataset, write_label

SPACING_ZYX = tuple(reversed(SPACING_XYZ))


def _run(ds: Dataset, ws: Workspace, **kwargs: object):
    kwargs.setdefault("workers", 1)
    return evaluate_run(ds.task, "all", ds.preds, workspace=ws, data_root=ds.root, **kwargs)  # type: ignore[arg-type]


def _values(result) -> dict[tuple[str, int, str], float]:
    frame = Store.open(result.store_url).results_frame(run_ids=[result.run.id])
    return {(r.case_id, r.label, r.metric): r.value for r in frame.itertuples()}


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12)


def test_hecktor_rows_equal_direct_metric_calls(hecktor: Dataset, workspace: Workspace) -> None:
    result = _run(hecktor, workspace)
    reg = load_registry()
    profile = reg.profile("hecktor")
    plan = make_plan(reg.task("hecktor"), profile)
    got = _values(result)
    for cid, ref in hecktor.refs.items():
        import SimpleITK as sitk

        pred = sitk.GetArrayFromImage(sitk.ReadImage(str(hecktor.preds / f"{cid}.nii.gz")))
        direct = compute_metrics(
            pred,
            ref,
            spacing=SPACING_ZYX,
            metrics=plan.metrics,
            labels=[1, 2],
            connectivity=26,
            nsd_tolerance_mm=profile.params["nsd_tolerance_mm"],
            lesion_match=profile.params["lesion_match"],
            cc_worst_distance_mm=profile.params["cc_worst_distance_mm"],
        )
        for label in (1, 2):
            for metric in plan.metrics:
                assert _same(got[(cid, label, metric)], direct.values[label][metric]), (
                    cid,
                    label,
                    metric,
                )
    assert result.scored == 4 and result.skipped == 0
    assert result.run.status == "finished"


def test_hecktor_aggregated_dice_against_numpy(hecktor: Dataset, workspace: Workspace) -> None:
    import SimpleITK as sitk

    result = _run(hecktor, workspace)
    inter = {1: 0, 2: 0}
    total = {1: 0, 2: 0}
    for cid, ref in hecktor.refs.items():
        pred = sitk.GetArrayFromImage(sitk.ReadImage(str(hecktor.preds / f"{cid}.nii.gz")))
        for label in (1, 2):
            inter[label] += int(np.sum((pred == label) & (ref == label)))
            total[label] += int(np.sum(pred == label) + np.sum(ref == label))
    expected = {label: 2 * inter[label] / total[label] for label in (1, 2)}
    agg = result.summary["aggregates"]
    assert agg["1:GTVp:aggregated_dice"] == pytest.approx(expected[1])
    assert agg["2:GTVn:aggregated_dice"] == pytest.approx(expected[2])
    assert agg["0:mean:aggregated_dice"] == pytest.approx((expected[1] + expected[2]) / 2)
    # the aggregate differs from the mean of per-case Dice (case CHUM-004 has no GTVn)
    mean_dice = result.summary["means"]["2:GTVn"]["dice"]["mean"]
    assert mean_dice != pytest.approx(expected[2])


def test_outputs_results_csv_and_summary(hecktor: Dataset, workspace: Workspace) -> None:
    result = _run(hecktor, workspace)
    assert result.out == workspace.runs / "hecktor-all-preds"
    table = pd.read_csv(result.results_csv)
    assert len(table) == 4 * 2  # one row per case and label
    assert list(table.columns[:4]) == ["case_id", "label", "label_name", "error_class"]
    assert set(table["label_name"]) == {"GTVp", "GTVn"}
    summary = json.loads(result.summary_json.read_text())
    assert summary["cases"] == summary["completed"] == 4
    assert sum(summary["error_counts"].values()) == 0
    dice_p = table.loc[table["label"] == 1, "dice"]
    assert summary["means"]["1:GTVp"]["dice"]["mean"] == pytest.approx(dice_p.mean())
    assert any("resampled" in line for line in summary["conventions"])


def test_finished_run_is_a_noop_unless_force(hecktor: Dataset, workspace: Workspace) -> None:
    first = _run(hecktor, workspace)
    again = _run(hecktor, workspace)
    assert again.run.id == first.run.id and again.scored == 0 and again.skipped == 4
    assert _values(again) == _values(first)
    forced = _run(hecktor, workspace, force=True)
    assert forced.scored == 4 and _values(forced).keys() == _values(first).keys()


def test_interrupted_run_resumes_to_the_clean_rows(
    hecktor: Dataset, workspace: Workspace, tmp_path: Path
) -> None:
    clean = _run(hecktor, workspace, store=f"sqlite:///{tmp_path / 'clean.sqlite'}")

    class Crash(Exception):
        pass

    def crash_after_two(_outcome: object, done: int, _total: int) -> None:
        if done == 2:
            raise Crash

    url = f"sqlite:///{tmp_path / 'resumed.sqlite'}"
    with pytest.raises(Crash):
        _run(hecktor, workspace, store=url, on_case=crash_after_two)
    store = Store.open(url)
    run = store.find_run("hecktor-all-preds")
    assert run is not None and run.status == "failed"  # never left "running"; resumable
    assert len(store.completed_cases(run.id)) == 2
    resumed = _run(hecktor, workspace, store=url)
    assert resumed.scored == 2 and resumed.skipped == 2
    assert _values(resumed) == _values(clean) or all(
        _same(a, b) for a, b in zip(_values(resumed).values(), _values(clean).values(), strict=True)
    )


def test_process_pool_gives_the_same_rows(hecktor: Dataset, workspace: Workspace) -> None:
    serial = _run(hecktor, workspace, run_name="serial")
    pooled = _run(hecktor, workspace, run_name="pooled", workers=2)
    a, b = _values(serial), _values(pooled)
    assert a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)


def test_store_url_from_environment(
    hecktor: Dataset, workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "env-store.sqlite"
    monkeypatch.setenv("CCBENCH_STORE", f"sqlite:///{path}")
    result = _run(hecktor, workspace)
    assert path.is_file() and not workspace.store_path.exists()
    assert result.store_url == f"sqlite:///{path}"


def test_btcv_perfect_predictions_and_absent_organs(btcv: Dataset, workspace: Workspace) -> None:
    result = _run(btcv, workspace)
    means = result.summary["means"]
    assert means["6:liver"]["dice"]["mean"] == 1.0 and means["6:liver"]["hd95"]["mean"] == 0.0
    assert means["1:spleen"]["nsd"]["mean"] == 1.0
    # organs absent from both: both-empty edge-case values (dice 1, hd95 0)
    assert means["4:gallbladder"]["dice"]["mean"] == 1.0
    assert len(result.summary["means"]) == 13
    assert result.summary["mean_over_labels"]["dice"] == 1.0


def test_prediction_layouts(tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    arr = np.zeros((2, 3, 3), dtype=np.uint8)
    write_label(pred / "a.nii.gz", arr)
    write_label(pred / "images" / "seg" / "0b1c.mha", arr)
    (pred / "mapping.json").write_text(json.dumps({"b": "images/seg/0b1c.mha"}))
    write_label(pred / "c" / "images" / "seg" / "9f.mha", arr)
    write_label(pred / "d" / "x.mha", arr)
    write_label(pred / "d" / "y.mha", arr)  # two images: ambiguous, not matched
    found = find_predictions(pred, ["a", "b", "c", "d", "e"])
    assert found["a"] == pred / "a.nii.gz"
    assert found["b"] == pred / "images" / "seg" / "0b1c.mha"
    assert found["c"] == pred / "c" / "images" / "seg" / "9f.mha"
    assert found["d"] is None and found["e"] is None
    (pred / "mapping.json").write_text("[1, 2]")
    with pytest.raises(InvalidPredictionError, match=r"mapping\.json"):
        find_predictions(pred, ["a"])
    with pytest.raises(InvalidPredictionError, match="does not exist"):
        find_predictions(tmp_path / "nope", ["a"])


def test_plan_uses_profile_worst_for_cc_distances() -> None:
    reg = load_registry()
    plan = make_plan(reg.task("autopet"), reg.profile("autopet"))
    assert plan.worst["cc_hd95"] == reg.profile("autopet").params["cc_worst_distance_mm"]
    assert plan.worst["dice"] == METRICS["dice"].worst == 0.0
    assert plan.worst["fp_volume_ml"] == math.inf
    assert plan.negative_case_metrics == ("fp_volume_ml",)
    chest = make_plan(reg.task("chestxdet"), reg.profile("chestxdet"))
    assert "coco_ap" not in chest.metrics and "dice" in chest.metrics


def test_split_all_skips_cases_without_reference(hecktor: Dataset, workspace: Workspace) -> None:
    (hecktor.root / "imagesTr").mkdir()
    (hecktor.root / "imagesTr" / "CHUM-009__CT.nii.gz").write_bytes(b"")  # image, no label
    result = _run(hecktor, workspace)
    assert result.summary["cases"] == 4 and result.summary["error_counts"]["missing"] == 0
