"""The run summary (summary.json) from rows written to a store, checked by hand.

Written against mutants that survived mutation testing of the summary code of
``evaluator/evaluate/`` (``summarize_run``, ``_stats``, ``jsonable``, ``run_aggregates``,
``ranking_worst``; see ``tests/leaderboards/test_mutants.py``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator.datasets.registry import MetricProfile, load_registry
from evaluator.evaluate import ERROR_CLASSES, make_plan, ranking_worst, summarize_run
from evaluator.evaluate.summary import _stats
from evaluator.evaluate.summary import jsonable as _jsonable
from evaluator.evaluate.summary import run_aggregates as _aggregates
from evaluator.store import CaseError, ResultRow, Store

INF, NAN = math.inf, math.nan

#: case -> label -> (dice, hd95, |P n R| mm3, |P| + |R| mm3)
ROWS = {
    "c0": {1: (0.8, 2.0, 40.0, 100.0), 2: (0.5, 4.0, 10.0, 40.0)},
    "c1": {1: (0.6, INF, 30.0, 80.0), 2: (NAN, 6.0, 0.0, 0.0)},
    "c2": {1: (0.1, 9.0, 5.0, 30.0), 2: (0.9, 1.0, 9.0, 20.0)},
}


@pytest.fixture
def hecktor_run(tmp_path: Path):  # type: ignore[no-untyped-def]
    reg = load_registry()
    profile = reg.profile("hecktor")
    plan = make_plan(reg.task("hecktor"), profile)
    db = Store.open(f"sqlite:///{tmp_path / 's.sqlite'}")
    run = db.create_run(name="r", task="hecktor", split="test", parameters={}, entry="e")
    for case, labels in ROWS.items():
        rows = []
        for label, (dice, hd95, inter, vol) in labels.items():
            rows += [
                ResultRow(label, "dice", dice),
                ResultRow(label, "hd95", hd95),
                ResultRow(label, "agg_intersection_mm3", inter),
                ResultRow(label, "agg_volume_mm3", vol),
            ]
        db.record_case(run.id, case, rows)
    db.record_case(run.id, "c3", [], error=CaseError("missing", "no file"))
    db.record_case(run.id, "c4", [], error=CaseError("geometry", "spacing"))
    db.finish_run(run.id, aggregates=_aggregates(db, run.id, plan))
    yield db, db.get_run(run.id), plan, profile
    db.close()


def test_aggregated_dice_per_label_and_mean(hecktor_run) -> None:  # type: ignore[no-untyped-def]
    db, run, plan, _ = hecktor_run
    rows = {(r.label, r.metric): r.value for r in _aggregates(db, run.id, plan)}
    gtvp = 2 * (40.0 + 30.0 + 5.0) / (100.0 + 80.0 + 30.0)
    gtvn = 2 * (10.0 + 0.0 + 9.0) / (40.0 + 0.0 + 20.0)
    assert rows == pytest.approx(
        {(1, "aggregated_dice"): gtvp, (2, "aggregated_dice"): gtvn,
         (0, "aggregated_dice"): (gtvp + gtvn) / 2}
    )  # fmt: skip


def _agg_rows(db: Store, plan, labels: dict[int, tuple[float, float]]) -> dict:  # type: ignore[no-untyped-def]
    run = db.create_run(name=f"r{len(db.list_runs())}", task="hecktor", split="test", parameters={})
    rows = []
    for label, (inter, vol) in labels.items():
        rows += [
            ResultRow(label, "agg_intersection_mm3", inter),
            ResultRow(label, "agg_volume_mm3", vol),
        ]
    db.record_case(run.id, "c0", rows)
    return {(r.label, r.metric): r.value for r in _aggregates(db, run.id, plan)}


def test_aggregated_dice_of_small_empty_and_absent_labels(tmp_path: Path) -> None:
    reg = load_registry()
    plan = make_plan(reg.task("hecktor"), reg.profile("hecktor"))
    with Store.open(f"sqlite:///{tmp_path / 's.sqlite'}") as db:
        # a volume below 1 mm3 is a volume
        small = _agg_rows(db, plan, {1: (3.0, 10.0), 2: (0.2, 0.5)})
        assert small[(1, "aggregated_dice")] == pytest.approx(0.6)
        assert small[(2, "aggregated_dice")] == pytest.approx(0.8)
        assert small[(0, "aggregated_dice")] == pytest.approx(0.7)
        # no volume on either side: NaN, left out of the mean over labels
        empty = _agg_rows(db, plan, {1: (3.0, 10.0), 2: (0.0, 0.0)})
        assert math.isnan(empty[(2, "aggregated_dice")])
        assert empty[(0, "aggregated_dice")] == pytest.approx(0.6)
        # no row of the label at all: NaN too
        absent = _agg_rows(db, plan, {1: (3.0, 10.0)})
        assert math.isnan(absent[(2, "aggregated_dice")])
        assert absent[(0, "aggregated_dice")] == pytest.approx(0.6)
        nothing = _agg_rows(db, plan, {})
        assert all(math.isnan(v) for v in nothing.values()) and len(nothing) == 3
        autopet = load_registry()
        plain = make_plan(autopet.task("autopet"), autopet.profile("autopet"))
        assert _aggregates(db, 1, plain) == []


def test_summary_by_hand(hecktor_run) -> None:  # type: ignore[no-untyped-def]
    db, run, plan, profile = hecktor_run
    summary, table = summarize_run(db, run, plan, profile, case_ids=[*ROWS, "c3", "c4"])
    assert summary["cases"] == 5 and summary["completed"] == 5
    assert summary["run"] == "r" and summary["entry"] == "e" and summary["task"] == "hecktor"
    means = summary["means"]
    assert sorted(means) == ["1:GTVp", "2:GTVn"]
    gtvp, gtvn = means["1:GTVp"], means["2:GTVn"]
    assert gtvp["dice"] == pytest.approx({"mean": 0.5, "median": 0.6, "n": 3})
    assert gtvn["dice"] == pytest.approx({"mean": 0.7, "median": 0.7, "n": 2})
    # inf is a value: the mean is inf, the median the middle value
    assert gtvp["hd95"]["mean"] == INF and gtvp["hd95"]["median"] == 9.0
    assert gtvn["hd95"] == pytest.approx({"mean": 11 / 3, "median": 4.0, "n": 3})
    assert summary["mean_over_labels"]["dice"] == pytest.approx(0.6)
    assert summary["mean_over_labels"]["hd95"] == INF
    counts = summary["error_counts"]
    assert set(counts) == set(ERROR_CLASSES)
    assert counts["missing"] == 1 and counts["geometry"] == 1 and sum(counts.values()) == 2
    assert summary["error_cases"]["missing"] == ["c3"]
    assert summary["error_cases"]["geometry"] == ["c4"]
    assert summary["error_cases"]["nan"] == []
    gtvp_agg = 2 * 75.0 / 210.0
    assert summary["aggregates"]["1:GTVp:aggregated_dice"] == pytest.approx(gtvp_agg)
    assert summary["aggregates"]["0:mean:aggregated_dice"] == pytest.approx(
        (gtvp_agg + 2 * 19.0 / 60.0) / 2
    )
    conventions = summary["conventions"]
    assert len(conventions) == 6  # worst, empty, dataset, means, resample, aggregated Dice
    assert any("resampled" in c for c in conventions)
    assert any(c.startswith("aggregated_dice") for c in conventions)
    assert not any("Negative cases" in c for c in conventions)
    # the per-case table: one row per case and label, the error class of each case
    assert list(table.columns[:4]) == ["case_id", "label", "label_name", "error_class"]
    assert table.loc[table["case_id"] == "c0", "label_name"].tolist() == ["GTVp", "GTVn"]
    assert set(table["error_class"]) == {""}
    assert math.isnan(table.loc[(table["case_id"] == "c1") & (table["label"] == 2), "dice"].item())


def test_summary_of_a_negative_case_profile_names_its_metrics(tmp_path: Path) -> None:
    reg = load_registry()
    profile = reg.profile("autopet")
    plan = make_plan(reg.task("autopet"), profile)
    with Store.open(f"sqlite:///{tmp_path / 's.sqlite'}") as db:
        run = db.create_run(name="r", task="autopet", split="test", parameters={})
        db.record_case(run.id, "c0", [ResultRow(1, "dice", NAN), ResultRow(1, "fp_volume_ml", 2.0)])
        db.record_case(run.id, "c2", [], error=CaseError("missing", "no file"))
        db.record_case(run.id, "c1", [], error=CaseError("missing", "no file"))
        db.record_case(run.id, "c3", [ResultRow(1, "dice", NAN)])  # every metric undefined
        db.record_case(run.id, "c4", [], error=CaseError("timeout", "a class of the caller"))
        db.finish_run(run.id)
        summary, table = summarize_run(
            db, db.get_run(run.id), plan, profile, case_ids=["c0", "c1", "c2", "c3", "c4"]
        )
    conventions = summary["conventions"]
    assert len(conventions) == 5
    assert any("Negative cases" in c and "fp_volume_ml" in c for c in conventions)
    # a metric without any value: NaN mean and median, n 0
    assert math.isnan(summary["means"]["1:lesion"]["dice"]["mean"])
    assert summary["means"]["1:lesion"]["dice"]["n"] == 0
    assert summary["means"]["1:lesion"]["fp_volume_ml"]["mean"] == 2.0
    assert summary["error_counts"]["missing"] == 2
    assert summary["error_cases"]["missing"] == ["c1", "c2"]  # sorted, not in store order
    assert summary["error_counts"]["timeout"] == 1
    # one row per case with values, also when every value is undefined; c1, c2, c4 have none
    assert table["case_id"].tolist() == ["c0", "c3"]
    assert table["error_class"].tolist() == ["", ""]


def test_stats_of_values() -> None:
    empty = _stats(pd.Series([NAN, NAN]))
    assert math.isnan(empty["mean"]) and math.isnan(empty["median"]) and empty["n"] == 0
    assert set(empty) == {"mean", "median", "n"}
    assert _stats(pd.Series([1.0, NAN, 2.0, 6.0])) == {"mean": 3.0, "median": 2.0, "n": 3}


def test_jsonable_is_strict_json() -> None:
    value = {
        1: [NAN, INF, -INF, 0.5],
        "t": (np.int64(3), np.float32(np.inf), np.float64(np.nan), np.bool_(True)),
        "s": "x",
        "none": None,
    }
    out = _jsonable(value)
    assert out == {
        "1": [None, "inf", "-inf", 0.5],
        "t": [3, "inf", None, True],
        "s": "x",
        "none": None,
    }
    json.dumps(out, allow_nan=False)  # strict JSON


def test_ranking_worst() -> None:
    p = MetricProfile(
        name="p",
        metrics=("dice", "hd95", "cc_hd95", "fp_volume_ml"),
        worst={"dice": 0.25},
        params={"cc_worst_distance_mm": 30.0},
    )
    assert ranking_worst(p, "dice") == 0.25
    assert ranking_worst(p, "hd95") == 50.0  # standard distance: the default
    assert ranking_worst(p, "cc_hd95") == 30.0  # CC distance: the profile's parameter
    assert ranking_worst(p, "fp_volume_ml") == INF  # not a distance: its own worst value
    q = MetricProfile(name="q", metrics=("cc_hd95",))
    assert ranking_worst(q, "cc_hd95") == 50.0
    assert ranking_worst(q, "nsd") == 0.0


def test_aggregated_dice_mean_over_three_labels(tmp_path: Path) -> None:
    """The final score is the mean over labels (with two labels mean and median agree)."""
    import dataclasses

    reg = load_registry()
    plan = make_plan(reg.task("hecktor"), reg.profile("hecktor"))
    plan = dataclasses.replace(plan, labels={1: "a", 2: "b", 3: "c"})
    with Store.open(f"sqlite:///{tmp_path / 's.sqlite'}") as db:
        rows = _agg_rows(db, plan, {1: (1.0, 10.0), 2: (2.0, 10.0), 3: (9.0, 20.0)})
    assert rows[(0, "aggregated_dice")] == pytest.approx((0.2 + 0.4 + 0.9) / 3)


def test_mean_over_labels_of_three_labels(tmp_path: Path) -> None:
    """mean_over_labels is the mean of the label means (0.1, 0.2, 0.9 -> 0.4, median 0.2)."""
    import dataclasses

    reg = load_registry()
    profile = reg.profile("autopet")
    plan = dataclasses.replace(
        make_plan(reg.task("autopet"), profile), labels={1: "x", 2: "y", 3: "z"}
    )
    with Store.open(f"sqlite:///{tmp_path / 's.sqlite'}") as db:
        run = db.create_run(name="r", task="autopet", split="test", parameters={})
        rows = [ResultRow(k, "dice", v) for k, v in ((1, 0.1), (2, 0.2), (3, 0.9))]
        db.record_case(run.id, "c0", rows)
        db.finish_run(run.id)
        summary, _ = summarize_run(db, db.get_run(run.id), plan, profile, case_ids=["c0"])
    assert summary["mean_over_labels"]["dice"] == pytest.approx(0.4)
