"""Official scores, boards and leaderboard data on small stores written row by row (fast).

Written against mutants that survived mutation testing of ``leaderboards/official.py``,
``board.py`` and ``data.py`` (see ``test_mutants.py``): the boards of
``test_official_board.py`` evaluate images and are too slow to run per mutant, and some
branches (an official block without a run-level score, a mean secondary metric) had no test.
Expected values are computed here by hand or with numpy from the rows written.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from evaluator.store import ResultRow, Store
from leaderboards.board import Leaderboard, compute_leaderboard
from leaderboards.data import LeaderboardData, leaderboard_worst, load_leaderboard_data
from leaderboards.official import (
    INLINE_LABELS,
    OfficialColumn,
    _higher_is_better,
    official_score,
    per_label_means,
    run_values,
)

INF, NAN = math.inf, math.nan

# --------------------------------------------------------------------------------------------
# HECKTOR: aggregated Dice per label from |P n R| and |P| + |R| rows, median HD95 secondary
# --------------------------------------------------------------------------------------------

#: entry -> per case (GTVp (inter, vol), GTVn (inter, vol)); a and b have equal rows, so their
#: DSCagg ties on every resample and HD95 decides.
AGG = {
    "a": [((40.0, 100.0), (10.0, 40.0)), ((30.0, 80.0), (5.0, 20.0)), ((0.0, 30.0), (8.0, 20.0)),
          ((45.0, 100.0), (9.0, 30.0))],
    "b": [((40.0, 100.0), (10.0, 40.0)), ((30.0, 80.0), (5.0, 20.0)), ((0.0, 30.0), (8.0, 20.0)),
          ((45.0, 100.0), (9.0, 30.0))],
    "c": [((20.0, 100.0), (10.0, 30.0)), ((35.0, 80.0), (2.0, 20.0)), ((10.0, 30.0), (1.0, 20.0)),
          ((30.0, 100.0), (9.0, 20.0))],
}  # fmt: skip
#: entry -> per case HD95 (the same on both labels): median a 1 < b 5, mean a 25.75 > b 5
HD95 = {"a": [1.0, 1.0, 100.0, 1.0], "b": [5.0, 5.0, 5.0, 5.0], "c": [2.0, INF, 3.0, 4.0]}
DICE = {"a": [0.6, 0.7, 0.2, 0.5], "b": [0.6, 0.7, 0.2, 0.5], "c": [0.9, 0.9, 0.9, 0.9]}


def _dscagg(entry: str, label: int, cases: list[int] | np.ndarray) -> float:
    inter = sum(AGG[entry][c][label - 1][0] for c in cases)
    vol = sum(AGG[entry][c][label - 1][1] for c in cases)
    return 2.0 * inter / vol if vol > 0 else NAN


def _write_hecktor(url: str) -> None:
    with Store.open(url) as db:
        for entry in AGG:
            run = db.create_run(
                name=f"r-{entry}", task="hecktor", split="test", parameters={}, entry=entry
            )
            for c in range(4):
                rows = []
                for label in (1, 2):
                    inter, vol = AGG[entry][c][label - 1]
                    rows += [
                        ResultRow(label, "dice", DICE[entry][c]),
                        ResultRow(label, "hd95", HD95[entry][c]),
                        ResultRow(label, "agg_intersection_mm3", inter),
                        ResultRow(label, "agg_volume_mm3", vol),
                    ]
                db.record_case(run.id, f"c{c}", rows)
            per_label = {label: _dscagg(entry, label, range(4)) for label in (1, 2)}
            aggregates = [ResultRow(label, "aggregated_dice", v) for label, v in per_label.items()]
            aggregates.append(
                ResultRow(0, "aggregated_dice", float(np.mean(list(per_label.values()))))
            )
            # an unrelated aggregate of the same run must not be read as DSCagg
            aggregates.append(ResultRow(0, "coco_ap", 0.123))
            db.finish_run(run.id, aggregates=aggregates)


@pytest.fixture(scope="module")
def hecktor(tmp_path_factory: pytest.TempPathFactory) -> LeaderboardData:
    url = f"sqlite:///{tmp_path_factory.mktemp('hecktor') / 'h.sqlite'}"
    _write_hecktor(url)
    with Store.open(url) as db:
        return load_leaderboard_data("hecktor", "test", store=db)


def test_hecktor_official_table_ranking_and_bootstrap(hecktor: LeaderboardData) -> None:
    official = official_score(hecktor, n_resamples=60, seed=4)
    assert official is not None and official.run_level
    keys = [c.key for c in official.columns]
    assert keys == [
        "aggregated_dice:GTVp",
        "aggregated_dice:GTVn",
        "aggregated_dice:mean",
        "median:hd95",
    ]
    assert [c.higher_is_better for c in official.columns] == [True, True, True, False]
    assert [c.header for c in official.columns] == [
        "DSCagg GTVp",
        "DSCagg GTVn",
        "DSCagg (mean over labels)",
        "median hd95 (mm)",
    ]
    assert [c.secondary for c in official.columns] == [False, False, False, True]
    table = official.table
    for entry in AGG:
        p, n = _dscagg(entry, 1, range(4)), _dscagg(entry, 2, range(4))
        assert table.loc[entry, "aggregated_dice:GTVp"] == pytest.approx(p)
        assert table.loc[entry, "aggregated_dice:GTVn"] == pytest.approx(n)
        assert table.loc[entry, "aggregated_dice:mean"] == pytest.approx((p + n) / 2)
    # median over cases of the raw HD95, inf included
    assert table["median:hd95"].to_dict() == {"a": 1.0, "b": 5.0, "c": 3.5}
    ranking = official.ranking
    assert ranking is not None and official.tiebreak is not None
    assert official.tiebreak.key == "median:hd95"
    # c's DSCagg mean is below a's and b's (equal); the tie goes to the lower median HD95
    expected_score = {e: (_dscagg(e, 1, range(4)) + _dscagg(e, 2, range(4))) / 2 for e in AGG}
    assert expected_score["c"] < expected_score["a"] == expected_score["b"]
    assert list(ranking.index) == ["a", "b", "c"]
    assert ranking["rank"].tolist() == [1, 2, 3]
    assert ranking["score"].to_dict() == pytest.approx(expected_score)
    assert ranking["tiebreak"].to_dict() == {"a": 1.0, "b": 5.0, "c": 3.5}

    # the bootstrap: DSCagg and the median HD95 recomputed on the same resamples
    idx = np.random.default_rng(4).integers(0, 4, size=(60, 4))
    boot = official.boot
    assert boot is not None and boot.shape == (60, 3)
    for row, sample in zip(boot.itertuples(index=False), idx, strict=True):
        score = {e: np.nanmean([_dscagg(e, 1, sample), _dscagg(e, 2, sample)]) for e in AGG}
        tie = {e: float(np.median(np.asarray(HD95[e])[sample])) for e in AGG}
        keys_ = {e: (-score[e], tie[e]) for e in AGG}
        expected = [1 + sum(keys_[o] < keys_[e] for o in AGG) for e in AGG]
        assert list(row) == expected
    assert ranking["p_first"].to_dict() == pytest.approx(
        {e: float((boot[e] == 1).mean()) for e in AGG}
    )
    assert official.no_bootstrap == ""


def test_hecktor_official_defaults_are_the_boards(hecktor: LeaderboardData) -> None:
    default = official_score(hecktor)
    explicit = official_score(hecktor, n_resamples=1000, seed=0)
    assert default is not None and explicit is not None
    assert default.boot is not None and default.boot.shape[0] == 1000
    pd.testing.assert_frame_equal(default.boot, explicit.boot)
    other = official_score(hecktor, n_resamples=1000, seed=1)
    assert other is not None and not default.boot.equals(other.boot)


def test_run_values_reads_only_the_metric_in_label_order(hecktor: LeaderboardData) -> None:
    values = run_values(hecktor, "aggregated_dice")
    assert list(values.columns) == [0, 1, 2]
    assert values.loc["c", 1] == pytest.approx(_dscagg("c", 1, range(4)))
    assert run_values(hecktor, "coco_ap")[0].to_dict() == {"a": 0.123, "b": 0.123, "c": 0.123}


def test_higher_is_better_of_run_level_aggregates() -> None:
    assert _higher_is_better("aggregated_dice") is True
    assert _higher_is_better("coco_ap") is True
    assert _higher_is_better("hd95") is False
    assert _higher_is_better("dice") is True


def test_board_ranked_by_the_official_run_level_score(hecktor: LeaderboardData) -> None:
    lb = compute_leaderboard(hecktor, n_resamples=30, seed=2)
    assert lb.ranked_officially is True
    assert lb.official is not None and lb.official.ranking is not None
    pd.testing.assert_frame_equal(lb.overall, lb.official.ranking)
    assert lb.boot_overall is lb.official.boot
    # the profile's ranking (Dice, tie-break HD95) is kept beside it: c first there
    assert lb.profile_overall is not None
    # (a and b tie on Dice; the mean HD95 capped at 50 mm puts b, 5 mm, before a, 13.25 mm)
    assert lb.profile_overall["rank"].to_dict() == {"c": 1, "b": 2, "a": 3}


def test_board_without_an_official_block(hecktor: LeaderboardData) -> None:
    data = dataclasses.replace(hecktor, profile=None)
    lb = compute_leaderboard(data, n_resamples=10, seed=0)
    assert lb.official is None and lb.ranked_officially is False
    assert lb.overall is lb.profile_overall


def test_ranked_officially_only_for_a_run_level_score() -> None:
    def board(official: object) -> Leaderboard:
        return Leaderboard(
            data=None,  # type: ignore[arg-type]
            overall=pd.DataFrame(),
            boot_overall=pd.DataFrame(),
            per_metric={},
            boot_ranks={},
            cc=[],
            n_resamples=1,
            seed=0,
            alpha=0.05,
            official=official,  # type: ignore[arg-type]
        )

    assert board(None).ranked_officially is False
    assert board(SimpleNamespace(run_level=False)).ranked_officially is False
    assert board(SimpleNamespace(run_level=True)).ranked_officially is True


# --------------------------------------------------------------------------------------------
# autoPET: per-case official metrics, the profile's ranking, board defaults and columns
# --------------------------------------------------------------------------------------------

#: entry -> per case (dice, fp_volume_ml, fn_volume_ml, cc_dice); a has NaN Dice on a negative
#: case and an infinite false-positive volume on another
AUTOPET = {
    "a": [(0.9, 1.0, 0.5, 0.7), (NAN, 2.0, NAN, NAN), (0.5, INF, 1.0, 0.9), (0.95, 0.0, 0.0, 0.9)],
    "b": [(0.7, 0.5, 1.5, 0.8), (NAN, 0.0, NAN, NAN), (0.85, 3.0, 0.2, 0.6), (0.95, 1.0, 2.0, 0.2)],
    "c": [(0.2, 9.0, 4.0, 0.1), (NAN, 4.0, NAN, NAN), (0.3, 2.0, 3.0, 0.2)],  # c3 missing
}  # fmt: skip
METRIC_COLUMNS = ("dice", "fp_volume_ml", "fn_volume_ml", "cc_dice")


@pytest.fixture(scope="module")
def autopet(tmp_path_factory: pytest.TempPathFactory) -> LeaderboardData:
    url = f"sqlite:///{tmp_path_factory.mktemp('autopet') / 'a.sqlite'}"
    with Store.open(url) as db:
        for entry, cases in AUTOPET.items():
            run = db.create_run(
                name=f"r-{entry}", task="autopet", split="test", parameters={}, entry=entry
            )
            for c, values in enumerate(cases):
                rows = [ResultRow(1, m, v) for m, v in zip(METRIC_COLUMNS, values, strict=True)]
                db.record_case(run.id, f"c{c}", rows)
            db.finish_run(run.id)
        return load_leaderboard_data("autopet", "test", store=db)


def _ml_worst(data: LeaderboardData, metric: str, seen: float) -> float:
    """The profile's declared worst value of a volume, else the worst finite value seen."""
    assert data.profile is not None
    declared = data.profile.worst.get(metric)
    return float(declared) if declared is not None else seen


def test_autopet_worst_values_and_score_matrices(autopet: LeaderboardData) -> None:
    fp_worst = _ml_worst(autopet, "fp_volume_ml", 9.0)  # largest finite FPV written: 9.0
    fn_worst = _ml_worst(autopet, "fn_volume_ml", 4.0)
    assert autopet.worst["fp_volume_ml"] == fp_worst
    assert autopet.worst["fn_volume_ml"] == fn_worst
    assert autopet.worst["dice"] == 0.0
    fpv = autopet.scores["fp_volume_ml"]
    assert fpv["a"].tolist() == [1.0, 2.0, fp_worst, 0.0]  # inf counts as the worst value
    assert fpv["c"].tolist() == [9.0, 4.0, 2.0, fp_worst]  # the missing case at worst
    dice = autopet.scores["dice"]
    assert math.isnan(dice.loc["c1", "a"]) and dice.loc["c3", "c"] == 0.0


def test_autopet_official_table_is_the_mean_of_capped_values(autopet: LeaderboardData) -> None:
    fp_worst = _ml_worst(autopet, "fp_volume_ml", 9.0)
    fn_worst = _ml_worst(autopet, "fn_volume_ml", 4.0)
    official = official_score(autopet)
    assert official is not None
    assert official.run_level is False and official.ranking is None and official.boot is None
    assert [c.key for c in official.columns] == ["dice", "fp_volume_ml", "fn_volume_ml"]
    assert not any(c.secondary for c in official.columns)
    assert [c.label for c in official.columns] == [None, None, None]
    assert [c.header for c in official.columns] == [
        "mean dice",
        "mean fp_volume_ml (ml)",
        "mean fn_volume_ml (ml)",
    ]
    table = official.table
    assert table.loc["a", "dice"] == pytest.approx((0.9 + 0.5 + 0.95) / 3)
    assert table.loc["a", "fp_volume_ml"] == pytest.approx((1.0 + 2.0 + fp_worst + 0.0) / 4)
    assert table.loc["c", "fn_volume_ml"] == pytest.approx((4.0 + 3.0 + fn_worst) / 3)
    assert table.loc["c", "dice"] == pytest.approx((0.2 + 0.3 + 0.0) / 3)


def test_board_tables_by_hand(autopet: LeaderboardData) -> None:
    lb = compute_leaderboard(autopet, n_resamples=40, seed=1)
    dice = lb.per_metric["dice"]
    assert dice["mean"].to_dict() == pytest.approx(
        {"a": (0.9 + 0.5 + 0.95) / 3, "b": (0.7 + 0.85 + 0.95) / 3, "c": (0.2 + 0.3 + 0.0) / 3}
    )
    assert dice["median"].to_dict() == pytest.approx({"a": 0.9, "b": 0.85, "c": 0.2})
    assert dice["rank_mean"].to_dict() == {"b": 1, "a": 2, "c": 3}
    assert dice["rank_median"].to_dict() == {"a": 1, "b": 2, "c": 3}
    (pair,) = lb.cc
    assert (pair.standard, pair.cc) == ("dice", "cc_dice")
    assert pair.table["dice"].to_dict() == pytest.approx(dice["mean"].to_dict())
    cc_mean = {"a": (0.7 + 0.9 + 0.9) / 3, "b": (0.8 + 0.6 + 0.2) / 3, "c": (0.1 + 0.2 + 0.0) / 3}
    assert pair.table["cc_dice"].to_dict() == pytest.approx(cc_mean)
    assert pair.table["rank_cc_dice"].to_dict() == {"a": 1, "b": 2, "c": 3}


def test_compute_leaderboard_defaults(autopet: LeaderboardData) -> None:
    lb = compute_leaderboard(autopet)
    assert (lb.n_resamples, lb.seed, lb.alpha) == (1000, 0, 0.05)
    assert lb.boot_overall.shape == (1000, 3)


def test_leaderboard_worst_without_any_finite_value() -> None:
    from evaluator.datasets.registry import MetricProfile

    p = MetricProfile(name="p", metrics=("fp_volume_ml", "hd95"))
    assert leaderboard_worst(p, "fp_volume_ml", pd.Series([INF, INF])) == INF
    assert leaderboard_worst(p, "fp_volume_ml", pd.Series([], dtype=float)) == INF
    assert leaderboard_worst(p, "fp_volume_ml", pd.Series([3.0, NAN, 1.0])) == 3.0


# --------------------------------------------------------------------------------------------
# BTCV: per-label means over many labels (a table of its own), inline with few labels
# --------------------------------------------------------------------------------------------

#: entry -> per case {label: (dice, assd)}; labels 3..13 have no rows (worst values)
BTCV = {
    "a": [{1: (0.9, 1.0), 2: (0.5, INF)}, {1: (0.7, 3.0), 2: (NAN, 2.0)}, {2: (0.3, 4.0)}],
    "b": [{1: (0.8, 2.0), 2: (0.6, 1.0)}, {1: (0.8, 60.0), 2: (0.4, 5.0)}, {1: (0.1, 7.0)}],
}


@pytest.fixture(scope="module")
def btcv(tmp_path_factory: pytest.TempPathFactory) -> LeaderboardData:
    url = f"sqlite:///{tmp_path_factory.mktemp('btcv') / 'b.sqlite'}"
    with Store.open(url) as db:
        for entry, cases in BTCV.items():
            run = db.create_run(
                name=f"r-{entry}", task="btcv", split="test", parameters={}, entry=entry
            )
            for c, labels in enumerate(cases):
                rows = []
                for label, (dice, assd) in labels.items():
                    rows += [
                        ResultRow(label, "dice", dice),
                        ResultRow(label, "assd", assd),
                        ResultRow(label, "hd95", 2 * assd),
                    ]
                db.record_case(run.id, f"c{c}", rows)
            db.finish_run(run.id)
        return load_leaderboard_data("btcv", "test", store=db)


def test_btcv_per_label_means(btcv: LeaderboardData) -> None:
    dice = per_label_means(btcv, "dice")
    names = [btcv.spec.labels[k] for k in sorted(btcv.spec.labels)]
    assert list(dice.columns) == [*names, "mean"]
    spleen, kidney = names[0], names[1]
    # a case without a row of the label counts with the worst value (0); NaN is left out
    assert dice.loc["a", spleen] == pytest.approx((0.9 + 0.7 + 0.0) / 3)
    assert dice.loc["a", kidney] == pytest.approx((0.5 + 0.3) / 2)
    assert dice.loc["b", spleen] == pytest.approx((0.8 + 0.8 + 0.1) / 3)
    assert dice.loc["a", names[5]] == 0.0
    assert dice.loc["a", "mean"] == pytest.approx(((0.9 + 0.7) / 3 + 0.4) / 13)
    assd = per_label_means(btcv, "assd")
    # infinite and too large distances count as the default worst, 50 mm
    assert assd.loc["a", kidney] == pytest.approx((50.0 + 2.0 + 4.0) / 3)
    assert assd.loc["b", spleen] == pytest.approx((2.0 + 50.0 + 7.0) / 3)
    assert assd.loc["b", names[5]] == 50.0


def test_btcv_official_table_has_per_label_tables(btcv: LeaderboardData) -> None:
    assert len(btcv.spec.labels) > INLINE_LABELS
    official = official_score(btcv)
    assert official is not None and official.run_level is False and official.ranking is None
    assert [c.key for c in official.columns] == ["dice", "assd"]
    assert [c.label for c in official.columns] == ["mean", "mean"]
    assert [c.header for c in official.columns] == [
        "mean dice (mean over labels)",
        "mean assd (mm, mean over labels)",
    ]
    assert not any(c.secondary for c in official.columns)
    assert sorted(official.per_label) == ["assd", "dice"]
    pd.testing.assert_series_equal(
        official.table["dice"], per_label_means(btcv, "dice")["mean"], check_names=False
    )


def test_few_labels_are_inline_columns(btcv: LeaderboardData) -> None:
    """With at most 3 labels the per-label means are columns of the official table; with 4,
    a table of its own."""
    assert INLINE_LABELS == 3
    for n, inline in ((3, True), (4, False)):
        labels = {k: v for k, v in btcv.spec.labels.items() if k <= n}
        data = dataclasses.replace(btcv, spec=btcv.spec.model_copy(update={"labels": labels}))
        official = official_score(data)
        assert official is not None
        keys = [c.key for c in official.columns if c.metric == "dice"]
        if inline:
            assert keys == [f"dice:{name}" for name in labels.values()] + ["dice:mean"]
            assert official.per_label == {}
        else:
            assert keys == ["dice"]
            assert list(official.per_label["dice"].columns) == [*labels.values(), "mean"]


def test_worst_value_of_a_metric_the_board_does_not_rank(btcv: LeaderboardData) -> None:
    """Without a board worst value the profile's (50 mm for a distance) caps; without a
    profile, the metric's own (inf)."""
    kidney = btcv.spec.labels[2]
    unranked = dataclasses.replace(btcv, worst={})
    assert per_label_means(unranked, "assd").loc["a", kidney] == pytest.approx(56.0 / 3)
    raw = dataclasses.replace(btcv, worst={}, profile=None)
    assert per_label_means(raw, "assd").loc["a", kidney] == INF


def test_secondary_metric_mean_uses_the_board_values(autopet: LeaderboardData) -> None:
    """A 'mean' secondary metric that the board ranks: the board's capped score matrix."""
    spec = autopet.profile.official.model_copy(  # type: ignore[union-attr]
        update={"secondary": {"fp_volume_ml": "mean", "cc_dice": "mean"}}
    )
    profile = autopet.profile.model_copy(update={"official": spec})  # type: ignore[union-attr]
    official = official_score(dataclasses.replace(autopet, profile=profile))
    assert official is not None
    column = next(c for c in official.columns if c.key == "mean:fp_volume_ml")
    assert column.secondary and column.higher_is_better is False
    assert official.table["mean:fp_volume_ml"].to_dict() == pytest.approx(
        autopet.scores["fp_volume_ml"].mean().to_dict()
    )
    assert OfficialColumn("k", "cc_dice", None, "mean", True, True).header == "mean cc_dice"
    # a secondary metric the board does not rank: its rows capped at the profile's worst value
    scores = {k: v for k, v in autopet.scores.items() if k != "cc_dice"}
    worst = {k: v for k, v in autopet.worst.items() if k != "cc_dice"}
    unranked = dataclasses.replace(autopet, profile=profile, scores=scores, worst=worst)
    official = official_score(unranked)
    assert official is not None
    cc_mean = {"a": (0.7 + 0.9 + 0.9) / 3, "b": (0.8 + 0.6 + 0.2) / 3, "c": (0.1 + 0.2 + 0.0) / 3}
    assert official.table["mean:cc_dice"].to_dict() == pytest.approx(cc_mean)


def test_aggregated_dice_inputs_of_missing_cases(tmp_path: Path) -> None:
    """Entry d has no row of case c3: no overlap there and the largest volume recorded for
    c3 by any entry; case c4 has no aggregated-Dice rows at all: no overlap, no volume."""
    from leaderboards.official import _agg_dice_inputs

    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store.open(url) as db:
        for entry, cases in (("a", range(4)), ("c", range(4)), ("d", range(3))):
            src = "a" if entry == "d" else entry
            run = db.create_run(
                name=f"r-{entry}", task="hecktor", split="test", parameters={}, entry=entry
            )
            for c in cases:
                rows = []
                for label in (1, 2):
                    inter, vol = AGG[src][c][label - 1]
                    rows += [
                        ResultRow(label, "dice", DICE[src][c]),
                        ResultRow(label, "hd95", HD95[src][c]),
                        ResultRow(label, "agg_intersection_mm3", inter),
                        ResultRow(label, "agg_volume_mm3", vol),
                    ]
                db.record_case(run.id, f"c{c}", rows)
            db.record_case(run.id, "c4", [ResultRow(1, "dice", 0.5), ResultRow(1, "hd95", 1.0)])
            db.finish_run(run.id)
        data = load_leaderboard_data("hecktor", "test", store=db)
    inputs = _agg_dice_inputs(data)
    assert inputs is not None
    intersection, volume = inputs
    for label in (1, 2):
        largest = max(AGG["a"][3][label - 1][1], AGG["c"][3][label - 1][1])
        assert intersection[label].loc["c3", "d"] == 0.0
        assert volume[label].loc["c3", "d"] == largest
        assert volume[label].loc["c3", "a"] == AGG["a"][3][label - 1][1]
        assert intersection[label].loc["c2", "c"] == AGG["c"][2][label - 1][0]
        assert volume[label].loc["c2", "c"] == AGG["c"][2][label - 1][1]
        assert intersection[label].loc["c4"].tolist() == [0.0, 0.0, 0.0]
        assert volume[label].loc["c4"].tolist() == [0.0, 0.0, 0.0]


def test_label_order_of_per_label_tables_is_the_label_number(
    hecktor: LeaderboardData, btcv: LeaderboardData
) -> None:
    """Labels declared out of order still give columns in label-number order."""
    reversed_labels = dict(sorted(hecktor.spec.labels.items(), reverse=True))
    data = dataclasses.replace(
        hecktor, spec=hecktor.spec.model_copy(update={"labels": reversed_labels})
    )
    assert list(run_values(data, "aggregated_dice").columns) == [0, 1, 2]
    official = official_score(data, n_resamples=5)
    assert official is not None
    assert [c.key for c in official.columns][:3] == [
        "aggregated_dice:GTVp",
        "aggregated_dice:GTVn",
        "aggregated_dice:mean",
    ]
    btcv_reversed = dict(sorted(btcv.spec.labels.items(), reverse=True))
    data = dataclasses.replace(btcv, spec=btcv.spec.model_copy(update={"labels": btcv_reversed}))
    names = [btcv.spec.labels[k] for k in sorted(btcv.spec.labels)]
    assert list(per_label_means(data, "dice").columns) == [*names, "mean"]


def test_compute_comparisons_on_a_board(autopet: LeaderboardData) -> None:
    from leaderboards.comparisons import (
        bootstrap_tau,
        compute_comparisons,
        paired_tests,
        pairwise_significance,
    )

    lb = compute_leaderboard(autopet, n_resamples=25, seed=3)
    leader = str(lb.overall.index[0])
    comp = compute_comparisons(lb, reference_entry="c")
    assert comp.leader == leader and comp.reference == "c" and comp.alpha == lb.alpha
    order = [str(e) for e in lb.overall.index]
    assert [(t.metric, t.against, t.role) for t in comp.paired] == [
        (m, against, role)
        for m in autopet.metrics
        for against, role in ((leader, "leader"), ("c", "reference"))
    ]
    for t in comp.paired:
        expected = paired_tests(autopet.scores[t.metric][order], t.against, alpha=lb.alpha)
        pd.testing.assert_frame_equal(t.table, expected)
    for metric in autopet.metrics:
        by_tests = lb.per_metric[metric].sort_values(
            ["rank_test_based", "rank_mean"], kind="stable"
        )
        ranked = [str(e) for e in by_tests.index]
        expected = pairwise_significance(
            autopet.scores[metric][ranked], higher_is_better=autopet.directions()[metric]
        )
        pd.testing.assert_frame_equal(comp.significance[metric], expected)
    assert list(comp.tau) == [("dice", "cc_dice")]
    np.testing.assert_array_equal(
        comp.tau[("dice", "cc_dice")],
        bootstrap_tau(lb.boot_ranks["dice"], lb.boot_ranks["cc_dice"]),
    )
    alone = compute_comparisons(lb)
    assert alone.reference is None and {t.role for t in alone.paired} == {"leader"}


# --------------------------------------------------------------------------------------------
# data.py
# --------------------------------------------------------------------------------------------


def test_leaderboard_worst_with_one_finite_value() -> None:
    from evaluator.datasets.registry import MetricProfile

    p = MetricProfile(name="p", metrics=("fn_volume_ml",))
    assert leaderboard_worst(p, "fn_volume_ml", pd.Series([INF, 7.0])) == 7.0


def test_weighted_scheme_tiebreak() -> None:
    from evaluator.datasets.registry import RankingSpec
    from leaderboards.data import weighted_scheme

    spec = RankingSpec(weights={"fp_volume_ml": 0.5, "dice": 0.5}, tiebreak="dice")
    assert weighted_scheme(spec).tiebreak == "dice"
    assert weighted_scheme(RankingSpec(weights={"fp_volume_ml": 0.5, "dice": 0.5})).tiebreak == (
        "fp_volume_ml"
    )
    primary = weighted_scheme(RankingSpec(primary="dice"))
    assert (dict(primary.weights), primary.tiebreak) == ({"dice": 1.0}, "dice")


def test_same_case_set_keeps_the_latest_runs_set_and_says_why() -> None:
    from datetime import datetime

    from leaderboards.data import same_case_set

    def run(i: int, name: str, params: dict, at: datetime | None) -> SimpleNamespace:
        return SimpleNamespace(id=i, name=name, parameters=params, finished_at=at)

    t0, t1 = datetime(2026, 1, 1), datetime(2026, 1, 2)
    runs = {
        "a": run(1, "ra", {"case_set": "abc", "n_cases": 5}, t1),
        "b": run(2, "rb", {"case_set": "xyz", "n_cases": 4}, t0),
        "c": run(3, "rc", {"case_set": "abc"}, t0),
        "d": run(4, "rd", {}, t0),
        "e": run(9, "re", {"case_set": "xyz"}, None),  # no finish time: not the latest
    }
    kept, left_out = same_case_set(runs)  # type: ignore[arg-type]
    assert sorted(kept) == ["a", "c"]
    assert left_out == {
        "rb": "scored on other cases (case set xyz, 4 cases) than the most recent run 'ra' "
        "(case set abc, 5 cases); runs on different case sets are not ranked together",
        "rd": "scored on other cases (no recorded case set) than the most recent run 'ra' "
        "(case set abc, 5 cases); runs on different case sets are not ranked together",
        "re": "scored on other cases (case set xyz) than the most recent run 'ra' "
        "(case set abc, 5 cases); runs on different case sets are not ranked together",
    }
    assert same_case_set({}) == ({}, {})


def test_loaded_results_have_a_plain_index(autopet: LeaderboardData) -> None:
    assert "index" not in autopet.results.columns
    assert autopet.results.index.equals(pd.RangeIndex(len(autopet.results)))


def test_cases_without_values_and_entry_provenance(tmp_path: Path) -> None:
    """A case every entry failed on (an error, no values) is still a case of the board, at
    the worst value; entries with a stored provenance have it in entry_info, run names
    without an entry do not."""
    from evaluator.store import CaseError

    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    with Store.open(url) as db:
        db.ensure_entry("team-a", image="img:1", image_digest="sha256:abc", manifest={"team": "T"})
        for name, entry in (("r-a", "team-a"), ("r-x", None)):
            run = db.create_run(name=name, task="autopet", split="test", parameters={}, entry=entry)
            for c, dice in enumerate((0.5, 0.7)):
                rows = [
                    ResultRow(1, "dice", dice),
                    ResultRow(1, "fp_volume_ml", 1.0),
                    ResultRow(1, "fn_volume_ml", 2.0),
                ]
                db.record_case(run.id, f"c{c}", rows)
            db.record_case(run.id, "c9", [], error=CaseError("missing", "no file"))
            db.finish_run(run.id)
        data = load_leaderboard_data("autopet", "test", store=db)
    assert data.entries == ["team-a", "r-x"]
    assert data.cases == ["c0", "c1", "c9"]
    assert data.scores["dice"].loc["c9"].tolist() == [0.0, 0.0]
    assert list(data.entry_info) == ["team-a"]
    info = data.entry_info["team-a"]
    assert (info.image, info.image_digest, info.manifest) == ("img:1", "sha256:abc", {"team": "T"})


def test_run_level_bootstrap_with_a_mean_secondary_metric(hecktor: LeaderboardData) -> None:
    """HECKTOR ranked with the *mean* HD95 (capped at 50 mm) as the tie-break: a and b tie
    on DSCagg on every resample, the resampled mean HD95 decides (a: 1, 1, 50, 1; b: 5)."""
    assert hecktor.profile is not None and hecktor.profile.official is not None
    spec = hecktor.profile.official.model_copy(update={"secondary": {"hd95": "mean"}})
    profile = hecktor.profile.model_copy(update={"official": spec})
    official = official_score(dataclasses.replace(hecktor, profile=profile), n_resamples=40)
    assert official is not None and official.boot is not None
    capped = {"a": np.array([1.0, 1.0, 50.0, 1.0]), "b": np.array([5.0] * 4)}
    idx = np.random.default_rng(0).integers(0, 4, size=(40, 4))
    expected_a = [1 if capped["a"][s].mean() < capped["b"][s].mean() else 2 for s in idx]
    assert official.boot["a"].tolist() == expected_a
    assert set(expected_a) == {1, 2}  # the mean and the median would disagree here
