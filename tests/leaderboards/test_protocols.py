"""The protocol boards' arithmetic: click AUC as autoPET IV computes it, few-shot groups.

Oracles: ``scipy.integrate.cumulative_trapezoid(values, np.arange(n))[-1]``, the call in autoPET
IV's ``evaluation_metrics.py``; hand-made score tables for the few-shot grouping.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from leaderboards.protocols import _complete_series, click_auc, shots_summary


@pytest.mark.parametrize("seed", range(5))
def test_click_auc_is_autopet_ivs_trapezoid(seed: int) -> None:
    values = np.random.default_rng(seed).random(11)
    official = integrate.cumulative_trapezoid(values, np.arange(11))[-1]
    assert click_auc(values) == pytest.approx(official)
    assert click_auc(values, np.arange(11)) == pytest.approx(official)


def test_click_auc_of_an_undefined_curve_is_nan() -> None:
    assert np.isnan(click_auc([0.5, np.nan, 1.0]))
    assert np.isnan(click_auc([0.5]))


def _run(
    i: int, entry: str, series: str, budget: int, budgets: int, status: str = "finished"
) -> Any:
    protocol = {"series": series, "budget": budget, "budgets": budgets}
    return SimpleNamespace(
        id=i, entry=entry, name=f"{series}__clicks{budget:02d}", status=status,
        parameters={"protocol": protocol},
    )  # fmt: skip


def test_only_complete_series_count_and_the_latest_wins() -> None:
    runs = [_run(i, "a", "s1", k, 2) for i, k in enumerate(range(3))]
    runs += [_run(10 + k, "a", "s2", k, 2) for k in range(2)]  # s2 lacks budget 2
    runs += [_run(20 + k, "b", "t1", k, 1, "failed" if k else "finished") for k in range(2)]
    chosen = _complete_series(runs)  # type: ignore[arg-type]
    assert list(chosen) == ["a"]
    assert [r.name for r in chosen["a"]] == ["s1__clicks00", "s1__clicks01", "s1__clicks02"]
    runs += [_run(30 + k, "a", "s3", k, 1) for k in range(2)]
    assert [r.name for r in _complete_series(runs)["a"]] == ["s3__clicks00", "s3__clicks01"]  # type: ignore[arg-type]


def test_a_fold_models_series_on_the_test_set_is_not_the_entrys() -> None:
    runs = [_run(i, "a", "s1", k, 1) for i, k in enumerate(range(2))]
    later = [_run(10 + k, "a", "s2", k, 1) for k in range(2)]  # fold 1's model, later
    for run in later:
        run.parameters["protocol"]["fold"] = 1
        run.split = "test"
    chosen = _complete_series([*runs, *later])  # type: ignore[arg-type]
    assert [r.name for r in chosen["a"]] == ["s1__clicks00", "s1__clicks01"]


def test_entries_are_grouped_by_their_few_shot_subset() -> None:
    scores = pd.DataFrame({"one": [0.2, 0.4], "five": [0.6, 0.8], "full": [0.9, 1.0]})
    data = SimpleNamespace(
        runs={
            "one": SimpleNamespace(parameters={"protocol": {"shots": 1}}),
            "five": SimpleNamespace(parameters={"protocol": {"shots": 5}}),
            "full": SimpleNamespace(parameters={}),
        },
        metrics=("dice",),
        scores={"dice": scores},
    )
    frame = shots_summary(data)  # type: ignore[arg-type]
    assert frame is not None
    assert list(frame["shots"]) == ["1-shot", "5-shot", "full data"]
    assert list(frame["entry"]) == ["one", "five", "full"]
    assert list(frame["dice"]) == pytest.approx([0.3, 0.7, 0.95])
    data.runs = {"full": data.runs["full"]}
    assert shots_summary(data) is None  # type: ignore[arg-type]


def _store_series(
    db: Any, entry: str, series: str, mode: str, values: dict[str, list[dict[str, float]]]
) -> None:
    """A complete click series in a real store: case -> per budget {metric: value}."""
    from evaluator.store import ResultRow

    db.ensure_entry(entry, image="img", image_digest="sha256:" + "0" * 64, manifest={})
    budgets = len(next(iter(values.values()))) - 1
    for budget in range(budgets + 1):
        protocol = {"series": series, "budget": budget, "budgets": budgets, "click_mode": mode}
        run = db.get_or_create_run(
            name=f"{series}__clicks{budget:02d}", task="autopet-phantom", split="test",
            parameters={"protocol": protocol}, entry=entry,
        )  # fmt: skip
        for case, per_budget in values.items():
            rows = [ResultRow(1, m, v) for m, v in per_budget[budget].items()]
            db.record_case(run.id, case, rows)
        db.finish_run(run.id)


def test_the_click_board_caps_failures_and_ranks_within_a_protocol(tmp_path: Any) -> None:
    """A failed case (infinite volume) counts at the board's worst value, never as an infinite
    area; entries are ranked only against series of the same budgets and click mode, ties by
    the last budget's Dice."""
    from evaluator.store import Store
    from leaderboards.protocols import interactive_summary

    inf = float("inf")
    with Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}") as db:
        _store_series(db, "a", "sa", "autopet-iv", {
            "c1": [{"dice": 0.0, "fp_volume_ml": 0.0}, {"dice": 0.5, "fp_volume_ml": 2.0}],
            "c2": [{"dice": 0.2, "fp_volume_ml": 1.0}, {"dice": 0.4, "fp_volume_ml": inf}],
        })  # fmt: skip
        _store_series(db, "b", "sb", "autopet-iv", {
            "c1": [{"dice": 0.1, "fp_volume_ml": 0.0}, {"dice": 0.4, "fp_volume_ml": 1.0}],
            "c2": [{"dice": 0.1, "fp_volume_ml": 0.0}, {"dice": 0.6, "fp_volume_ml": 1.0}],
        })  # fmt: skip
        _store_series(db, "c", "sc", "corrective", {
            "c1": [{"dice": 0.9, "fp_volume_ml": 0.0}, {"dice": 1.0, "fp_volume_ml": 0.0}],
        })  # fmt: skip
        summary = interactive_summary(db, "autopet-phantom", "test")
    assert summary is not None
    table = summary.table
    # the infinite FPV of a/c2 counts as the board's worst volume, as the main ranking counts it
    from evaluator.datasets.registry import load_registry
    from leaderboards.data import leaderboard_worst

    reg = load_registry()
    worst = leaderboard_worst(
        reg.profile(reg.task("autopet-phantom")), "fp_volume_ml", pd.Series([0.0, 2.0, inf])
    )
    assert np.isfinite(worst)
    assert table.loc["a", "fp_volume_ml_auc"] == pytest.approx(((0 + 2) / 2 + (1 + worst) / 2) / 2)
    assert np.isfinite(table["fp_volume_ml_auc"]).all()
    # b's Dice area is the larger
    assert table.loc["a", "dice_auc"] == pytest.approx((0.25 + 0.3) / 2)
    assert table.loc["b", "dice_auc"] == pytest.approx((0.25 + 0.35) / 2)
    assert list(table.index) == ["b", "a", "c"]
    assert list(table["rank"]) == [1, 2, 1]  # c is ranked in its own protocol, not above a, b


def test_ties_on_the_area_are_broken_by_the_last_budget(tmp_path: Any) -> None:
    from evaluator.store import Store
    from leaderboards.protocols import interactive_summary

    with Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}") as db:
        _store_series(db, "early", "s1", "autopet-iv", {"c": [{"dice": 0.6}, {"dice": 0.4}]})
        _store_series(db, "late", "s2", "autopet-iv", {"c": [{"dice": 0.4}, {"dice": 0.6}]})
        summary = interactive_summary(db, "autopet-phantom", "test")
    assert summary is not None
    assert list(summary.table.index) == ["late", "early"]  # same area 0.5, better last Dice
