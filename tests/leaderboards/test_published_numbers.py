"""Published statistics that used to have no test failing when they were wrong.

- Kendall's tau, standard vs CC, on a board where the two rankings differ (tau = 1/3 by hand and
  by ``scipy.stats.kendalltau``), on the board and on the published page;
- the bootstrap rank interval: its low end is the 2.5% quantile of the bootstrap ranks (the
  ``lower`` order statistic), not their minimum; hand-computed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator.store import ResultRow, Store
from evaluator.workspace import Workspace
from leaderboards.board import compute_leaderboard
from leaderboards.data import load_leaderboard_data
from leaderboards.site import publish_leaderboard
from leaderboards.statistics import rank_stability

#: Entry -> (Dice, CC-Dice) on every case: Dice orders a > b > c > d, CC-Dice b > a > d > c.
#: Pairs (a,b) and (c,d) are discordant, the other four concordant: tau = (4 - 2) / 6 = 1/3.
MEANS = {"a": (0.9, 0.7), "b": (0.8, 0.8), "c": (0.7, 0.4), "d": (0.6, 0.5)}


@pytest.fixture
def store_url(workspace: Workspace) -> str:
    url = f"sqlite:///{workspace.root / 'tau.sqlite'}"
    rng = np.random.default_rng(0)
    with Store.open(url) as db:
        for entry, (dice, cc_dice) in MEANS.items():
            run = db.create_run(
                name=f"r-{entry}", task="autopet", split="test", parameters={}, entry=entry
            )
            for case in range(6):
                noise = float(rng.uniform(-0.02, 0.02))
                rows = [
                    ResultRow(1, "dice", dice + noise),
                    ResultRow(1, "cc_dice", cc_dice + noise),
                    ResultRow(1, "fp_volume_ml", 1.0),
                    ResultRow(1, "fn_volume_ml", 1.0),
                ]
                db.record_case(run.id, f"c{case}", rows)
            db.finish_run(run.id)
    return url


def test_kendall_tau_of_rankings_that_differ(store_url: str, workspace: Workspace) -> None:
    from scipy.stats import kendalltau

    with Store.open(store_url) as db:
        data = load_leaderboard_data("autopet", "test", store=db)
    lb = compute_leaderboard(data, n_resamples=20, seed=0)
    (pair,) = lb.cc
    assert (pair.standard, pair.cc) == ("dice", "cc_dice")
    entries = sorted(MEANS)
    std = lb.per_metric["dice"]["rank_mean"].reindex(entries)
    cc = lb.per_metric["cc_dice"]["rank_mean"].reindex(entries)
    assert std.tolist() == [1, 2, 3, 4] and cc.tolist() == [2, 1, 4, 3]
    expected = kendalltau(std.to_numpy(), cc.to_numpy()).statistic
    assert expected == pytest.approx(1 / 3)
    assert pair.tau == pytest.approx(expected)
    index = publish_leaderboard(
        "autopet", "test", workspace=workspace, out=workspace.root / "site", store=store_url,
        n_resamples=20,
    )  # fmt: skip
    page = (index.parent / "autopet--test" / "index.html").read_text()
    assert "&tau; = 0.33</h3>" in page


def test_rank_interval_low_end_is_the_2_5_percent_quantile() -> None:
    """100 bootstrap ranks, sorted: the 2.5% quantile sits at position 0.025 x 99 = 2.475 and
    takes the lower order statistic (index 2); the 97.5% one at 96.525 takes the higher (index
    97). 'a' is first on 2 resamples (2%): its interval is 2-2, where the minimum would give
    1-2; 'b' is second on 2 resamples: 1-1. Three entries: 'x' third on 3 resamples (3%,
    inside the interval): 1-3; 'y' first on 3: 1-2; 'z' second on 3: 2-3."""
    boot = pd.DataFrame({"a": [1, 1] + [2] * 98, "b": [2, 2] + [1] * 98})
    stats = rank_stability(boot)
    assert stats.loc["a", ["rank_low", "rank_high"]].tolist() == [2, 2]
    assert stats.loc["b", ["rank_low", "rank_high"]].tolist() == [1, 1]
    assert stats.loc["a", "p_first"] == 0.02 and stats.loc["a", "median_rank"] == 2
    boot3 = pd.DataFrame(
        {"x": [3] * 3 + [1] * 97, "y": [1] * 3 + [2] * 97, "z": [2] * 3 + [3] * 97}
    )
    stats3 = rank_stability(boot3)
    assert stats3.loc["x", ["rank_low", "rank_high"]].tolist() == [1, 3]
    assert stats3.loc["y", ["rank_low", "rank_high"]].tolist() == [1, 2]
    assert stats3.loc["z", ["rank_low", "rank_high"]].tolist() == [2, 3]


def test_board_rank_intervals_are_the_quantiles_of_its_bootstrap(
    store_url: str, tmp_path: Path
) -> None:
    with Store.open(store_url) as db:
        data = load_leaderboard_data("autopet", "test", store=db)
    lb = compute_leaderboard(data, n_resamples=200, seed=3)
    for entry in lb.overall.index:
        ranks = lb.boot_overall[entry].to_numpy()
        assert lb.overall.loc[entry, "rank_low"] == np.quantile(ranks, 0.025, method="lower")
        assert lb.overall.loc[entry, "rank_high"] == np.quantile(ranks, 0.975, method="higher")
