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
