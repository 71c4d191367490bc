"""Task pages lead with the challenge's official score, computed as the challenge computes it.

Oracles: HECKTOR's aggregated Dice recomputed with numpy from the written arrays and their
spacings (mm³ weights); BTCV's per-organ Dice from the arrays; ChestXDet's mAP by hand (every
instance found: AP 1, an instance missed: AP 0 for its class); the bootstrap of the aggregated
Dice against a direct numpy loop over the same seeded resamples.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator.store import Store
from leaderboards.board import Leaderboard, compute_leaderboard
from leaderboards.data import load_leaderboard_data
from leaderboards.site import entry_slug, publish_leaderboard
from leaderboards.statistics import bootstrap_aggregated_dice
from tests.leaderboards.conftest import PhantomBoard
from tests.leaderboards.official_stores import (
    CHEST_MAP,
    Board,
    btcv_board,
    chestxdet_board,
    hecktor_board,
)

GTV = {1: "GTVp", 2: "GTVn"}


def _board(board: Board, n_resamples: int = 200) -> Leaderboard:
    with Store.open(workspace=board.workspace) as db:
        data = load_leaderboard_data(board.task, "all", store=db)
    return compute_leaderboard(data, n_resamples=n_resamples, seed=0)


def _publish(board: Board, out: Path) -> Path:
    index = publish_leaderboard(
        board.task, "all", workspace=board.workspace, out=out, n_resamples=50, seed=0
    )
    return index.parent / f"{board.task}--all"


@pytest.fixture(scope="module")
def hecktor(tmp_path_factory: pytest.TempPathFactory) -> Board:
    return hecktor_board(tmp_path_factory.mktemp("hecktor-board"))


@pytest.fixture(scope="module")
def btcv(tmp_path_factory: pytest.TempPathFactory) -> Board:
    return btcv_board(tmp_path_factory.mktemp("btcv-board"))


@pytest.fixture(scope="module")
def chest(tmp_path_factory: pytest.TempPathFactory) -> Board:
    return chestxdet_board(tmp_path_factory.mktemp("chest-board"))


def _dscagg_numpy(board: Board, entry: str) -> dict[str, float]:
    """2 sum |P ∩ R| / sum (|P| + |R|) per label, volumes in mm³; a missing prediction is empty."""
    out = {}
    for label, name in GTV.items():
        inter = total = 0.0
        for case, ref in board.refs.items():
            pred = board.preds[entry].get(case, np.zeros_like(ref))
            mm3 = board.voxel_mm3(case)
            inter += np.count_nonzero((pred == label) & (ref == label)) * mm3
            total += (np.count_nonzero(pred == label) + np.count_nonzero(ref == label)) * mm3
        out[name] = 2 * inter / total
    out["mean"] = (out["GTVp"] + out["GTVn"]) / 2
    return out


def test_hecktor_is_ranked_by_the_aggregated_dice(hecktor: Board) -> None:
    lb = _board(hecktor)
    official = lb.official
    assert official is not None and official.run_level and lb.ranked_officially
    expected = {e: _dscagg_numpy(hecktor, e) for e in hecktor.preds}
    for entry, values in expected.items():
        for name, value in values.items():
            # rel 1e-6: NIfTI stores the spacing in float32 (0.98 x 0.98 x 3.27 mm)
            assert official.table.loc[entry, f"aggregated_dice:{name}"] == pytest.approx(
                value, rel=1e-6
            ), (entry, name)
    # the overall ranking IS the official one: by mean DSCagg, higher is better
    order = sorted(expected, key=lambda e: -expected[e]["mean"])
    assert list(lb.overall.index) == order
    assert lb.overall is official.ranking
    assert lb.overall["score"].to_dict() == pytest.approx(
        {e: v["mean"] for e, v in expected.items()}
    )
    assert list(lb.overall["rank"]) == [1, 2, 3, 4]
    # the profile's per-case ranking stays available, as a secondary table
    assert lb.profile_overall is not None and set(lb.profile_overall.index) == set(expected)
    # secondary: the median over cases of the raw per-case HD95 (inf included)
    with Store.open(workspace=hecktor.workspace) as db:
        raw = db.results_frame(task="hecktor", split="all")
    for entry in expected:
        mine = raw[(raw["entry"] == entry) & (raw["metric"] == "hd95")]
        per_case = mine.groupby("case_id")["value"].mean()
        per_case = per_case.reindex(sorted(hecktor.refs), fill_value=math.inf)
        assert official.table.loc[entry, "median:hd95"] == float(np.median(per_case)), entry
    assert math.isinf(official.table.loc["no-nodes", "median:hd95"])  # 3 of 4 cases miss GTVn
    # bootstrap rank intervals of the run-level score
    assert lb.boot_overall.shape == (200, 4)
    assert lb.overall.loc["perfect", "p_first"] == 1.0
    assert (lb.overall.loc["perfect", ["rank_low", "rank_high"]] == 1).all()
    assert (lb.overall["rank_low"] <= lb.overall["rank"]).all()
    assert (lb.overall["rank"] <= lb.overall["rank_high"]).all()


def test_hecktor_stored_aggregate_equals_the_per_case_rows(hecktor: Board) -> None:
    """The board ranks by the run's stored DSCagg; its bootstrap recomputes DSCagg from the
    per-case rows. On the identity "resample" (every case once) both agree."""
    lb = _board(hecktor, n_resamples=10)
    results = lb.data.results
    inter, vol = {}, {}
    for label in GTV:
        rows = results[results["label"] == label]
        for name, store in (("agg_intersection_mm3", inter), ("agg_volume_mm3", vol)):
            store[label] = rows[rows["metric"] == name].pivot_table(
                index="case", columns="entry", values="value", aggfunc="sum"
            )
    totals = {
        e: np.mean([2 * inter[k][e].sum() / vol[k][e].sum() for k in GTV]) for e in lb.data.entries
    }
    assert lb.official is not None
    assert lb.official.table["aggregated_dice:mean"].to_dict() == pytest.approx(totals, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bootstrap_aggregated_dice_against_numpy(seed: int) -> None:
    """Direct numpy: per resample and label 2 sum I / sum V over the drawn cases, then the mean
    over labels with volume (the same seeded indices as every bootstrap of the board)."""
    rng = np.random.default_rng(100 + seed)
    n_cases, entries = 6, ["a", "b", "c"]
    vol = {k: rng.uniform(10, 200, size=(n_cases, 3)) for k in (1, 2)}
    inter = {k: vol[k] / 2 * rng.uniform(0, 1, size=(n_cases, 3)) for k in (1, 2)}
    vol[2][:4] = 0.0  # label 2 present in two cases only: undefined on some resamples
    inter[2][:4] = 0.0
    frames = {
        name: {k: pd.DataFrame(v, columns=entries) for k, v in arrays.items()}
        for name, arrays in (("inter", inter), ("vol", vol))
    }
    got = bootstrap_aggregated_dice(frames["inter"], frames["vol"], n_resamples=300, seed=seed)
    idx = np.random.default_rng(seed).integers(0, n_cases, size=(300, n_cases))
    undefined = 0
    for b, rows in enumerate(idx):
        for j, entry in enumerate(entries):
            per_label = [
                2 * inter[k][rows, j].sum() / vol[k][rows, j].sum()
                for k in (1, 2)
                if vol[k][rows, j].sum() > 0
            ]
            undefined += len(per_label) == 1
            assert got.loc[b, entry] == pytest.approx(np.mean(per_label), rel=1e-12), (b, entry)
    assert undefined > 0  # the fixture exercises a label without volume


def test_btcv_per_organ_tables(btcv: Board) -> None:
    lb = _board(btcv)
    official = lb.official
    assert official is not None and not official.run_level
    assert lb.overall is lb.profile_overall  # ranked by the profile's mean Dice
    dice, assd = official.per_label["dice"], official.per_label["assd"]
    organs = list(lb.data.spec.labels.values())
    assert list(dice.columns) == [*organs, "mean"]
    for entry, preds in btcv.preds.items():
        for label, organ in lb.data.spec.labels.items():
            values = []
            for case, ref in btcv.refs.items():
                if case not in preds:  # missing prediction: the worst Dice
                    values.append(0.0)
                    continue
                p, r = preds[case] == label, ref == label
                both = np.count_nonzero(p) + np.count_nonzero(r)
                values.append(1.0 if both == 0 else 2 * np.count_nonzero(p & r) / both)
            assert dice.loc[entry, organ] == pytest.approx(np.mean(values)), (entry, organ)
        assert dice.loc[entry, "mean"] == pytest.approx(dice.loc[entry, organs].mean())
    # mean surface distance per organ: raw values with inf counted as the worst value (50 mm)
    raw = lb.data.results[lb.data.results["metric"] == "assd"]
    assert np.isinf(raw["value"]).any()
    for (entry, label), group in raw.groupby(["entry", "label"]):
        organ = lb.data.spec.labels[int(label)]
        expected = np.minimum(group["value"].to_numpy(), 50.0).mean()
        assert assd.loc[entry, organ] == pytest.approx(expected), (entry, organ)
    assert np.isfinite(assd.to_numpy()).all()
    assert assd.loc["no-spleen", "spleen"] == 50.0
    assert official.table["dice"].to_dict() == pytest.approx(dice["mean"].to_dict())
    assert lb.overall.index[0] == "perfect"
    assert lb.overall["rank"].tolist() == sorted(lb.overall["rank"])


def test_chestxdet_is_ranked_by_map_without_bootstrap(chest: Board, tmp_path: Path) -> None:
    lb = _board(chest)
    official = lb.official
    assert official is not None and official.run_level
    assert official.table["coco_ap"].to_dict() == pytest.approx(CHEST_MAP)
    assert list(lb.overall.index) == ["all", "no-mass", "no-mass-no-nodule"]
    ap = official.per_label["coco_ap"]
    assert ap.loc["all", ["Effusion", "Nodule", "Mass"]].tolist() == pytest.approx([1.0] * 3)
    assert ap.loc["no-mass", "Mass"] == 0.0 and ap.loc["no-mass-no-nodule", "Nodule"] == 0.0
    assert math.isnan(ap.loc["all", "Atelectasis"])  # no ground truth, no prediction
    assert official.table["mean:dice"].to_dict() == pytest.approx(
        lb.data.scores["dice"].mean().to_dict()
    )
    assert official.boot is None and lb.boot_overall.empty
    assert lb.overall[["rank_low", "rank_high", "p_first"]].isna().all().all()
    board = _publish(chest, tmp_path / "site")
    page = (board / "index.html").read_text()
    assert "no bootstrap rank interval" in page
    assert not (board / "plots" / "rank_blob.png").exists()
    assert "Ranking by per-case metrics" in page
    entry_page = (board / "entries" / f"{entry_slug('all')}.html").read_text()
    assert "Rank 1 of 3" in entry_page


def test_hecktor_task_page_leads_with_the_official_score(hecktor: Board, tmp_path: Path) -> None:
    board = _publish(hecktor, tmp_path / "site")
    page = (board / "index.html").read_text()
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", page)
    assert headings[0] == "HECKTOR 2022: official score and ranking"
    assert "voreille/hecktor" in page
    for header in ("DSCagg GTVp", "DSCagg GTVn", "DSCagg (mean over labels)", "median hd95 (mm)"):
        assert f">{header}</th>" in page
    assert headings.index("Ranking by per-case metrics") > 0
    perfect = (board / "entries" / f"{entry_slug('perfect')}.html").read_text()
    assert "Rank 1 of 4" in perfect
    payload = json.loads((board / "downloads" / "leaderboard.json").read_text())
    assert payload["official"]["name"] == "HECKTOR 2022"
    assert payload["overall"][0]["entry"] == "perfect"
    official = pd.read_csv(board / "downloads" / "official.csv", index_col="entry")
    assert official.loc["perfect", "aggregated_dice:mean"] == pytest.approx(1.0)
    # raw inf HD95 values stay in the per-case download
    results = pd.read_csv(board / "downloads" / "results.csv")
    assert np.isinf(results.loc[results["metric"] == "hd95", "value"]).any()


def test_autopet_official_table_is_the_weighted_ranking(
    phantom_board: PhantomBoard, tmp_path: Path
) -> None:
    with Store.open(workspace=phantom_board.workspace) as db:
        data = load_leaderboard_data(phantom_board.task, "all", store=db)
    lb = compute_leaderboard(data, n_resamples=20, seed=0)
    assert lb.official is not None and not lb.official.run_level
    assert lb.overall is lb.profile_overall
    for metric in ("dice", "fp_volume_ml", "fn_volume_ml"):
        pd.testing.assert_series_equal(
            lb.official.table[metric],
            lb.per_metric[metric]["mean"].reindex(lb.official.table.index),
            check_names=False,
        )
    index = publish_leaderboard(
        phantom_board.task, "all", workspace=phantom_board.workspace, out=tmp_path, n_resamples=20
    )
    page = (index.parent / "autopet-phantom--all" / "index.html").read_text()
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", page)
    assert headings[0] == "autoPET III/IV: official score and ranking"
    assert ">mean fp_volume_ml (ml)</th>" in page
    assert "Ranking by per-case metrics" not in page  # the official ranking is the profile's
