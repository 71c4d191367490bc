"""Toy-sphere studies: the behaviours the CC-Metrics chapter describes, asserted on the numbers.

The studies run at reduced scale (``scale`` 0.3-0.4: radii 6-40 voxels) to stay fast; the
assertions are about shapes of curves (steps vs smooth, equal vs unequal), not copied numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator.errors import SimulationError
from evaluator.metrics.api import compute_metrics
from evaluator.simulate.operators import erode_components, shift_components
from evaluator.simulate.toy import (
    EQUAL_SPHERES,
    PRED_COMPONENTS,
    THREE_SPHERES,
    TOY_STUDIES,
    run_toy_studies,
    run_toy_study,
)


def _series(
    df: pd.DataFrame, metric: str, variant: str | None = None, component: str = ""
) -> np.ndarray:
    rows = df[(df["metric"] == metric) & (df["component"] == component)]
    if variant is not None:
        rows = rows[rows["variant"] == variant]
    return rows.sort_values("step")["value"].to_numpy()


@pytest.fixture(scope="module")
def erode_all() -> pd.DataFrame:
    return run_toy_study("erode_all", scale=0.4)


@pytest.fixture(scope="module")
def dilate() -> pd.DataFrame:
    return run_toy_study("lesion_dice_pitfall", scale=0.4)


# ---- geometry -------------------------------------------------------------------------------


def test_geometry_is_the_thesis_geometry() -> None:
    assert THREE_SPHERES.shape == (500, 500, 500)
    assert [(s.centre, s.radius) for s in THREE_SPHERES.spheres] == [
        ((169, 426, 271), 50),
        ((394, 247, 333), 100),
        ((187, 431, 423), 20),
    ]
    assert EQUAL_SPHERES.shape == (250, 250, 250)
    assert {s.radius for s in EQUAL_SPHERES.spheres} == {30}


@pytest.mark.parametrize("scale", [0.2, 0.35])
def test_rendered_spheres_have_the_analytic_volume(scale: float) -> None:
    g = THREE_SPHERES.scaled(scale)
    mask = g.render(g.box(margin=1))
    expected = sum(4 / 3 * math.pi * s.radius**3 for s in g.spheres)
    assert abs(mask.sum() / expected - 1) < 0.02
    # the box holds the whole geometry: same voxel count as the full volume
    assert mask.sum() == g.render().sum()


@pytest.mark.parametrize("degrade", ["erode", "shift"])
def test_cropping_to_the_box_does_not_change_any_metric(degrade: str) -> None:
    g = THREE_SPHERES.scaled(0.12)
    metrics = ["dice", "cc_dice", "pq", "hd95", "cc_hd95", "nsd", "cc_nsd", "lesion_dice"]

    def score(ref: np.ndarray) -> dict[str, float]:
        if degrade == "erode":
            pred = erode_components(ref, 1, order="largest", iterations=2)
        else:
            pred = shift_components(ref, 1, order="smallest", offset=(0, 3, 0))
        out = compute_metrics(
            pred.astype(np.uint8), ref.astype(np.uint8), spacing=(1.0, 1.0, 1.0), metrics=metrics
        )
        return out.values[1]

    full = score(g.render())
    crop = score(g.render(g.box(margin=5)))
    assert full == pytest.approx(crop, abs=1e-12)


def test_unknown_study_and_bad_scale_raise() -> None:
    with pytest.raises(SimulationError, match="unknown toy study"):
        run_toy_study("nope", scale=0.1)
    with pytest.raises(SimulationError, match="scale"):
        THREE_SPHERES.scaled(0.0)


# ---- Fig. 28 top: PQ steps where a component crosses IoU 0.5, CC-Dice smooth ----------------


def test_pq_falls_in_steps_at_iou_crossings_while_cc_dice_is_smooth(
    erode_all: pd.DataFrame,
) -> None:
    pq = _series(erode_all, "pq")
    cc = _series(erode_all, "cc_dice")
    names = sorted(c for c in erode_all["component"].unique() if c)
    assert len(names) == 3
    # per-sphere IoU from the per-component Dice (IoU = D / (2 - D)): true positives at IoU > 0.5
    ious = np.stack([_series(erode_all, "cc_dice", component=c) for c in names])
    ious = ious / (2 - ious)
    tp = (ious > 0.5).sum(axis=0)
    assert tp[0] == 3 and tp[-1] == 0
    crossings = [k for k in range(1, len(tp)) if tp[k] < tp[k - 1]]
    assert len(crossings) == 3  # each sphere crosses once
    first = crossings[0]
    for k in range(1, len(pq)):
        drop_pq, drop_cc = pq[k - 1] - pq[k], cc[k - 1] - cc[k]
        if k in crossings:
            assert drop_pq > 0.15 and drop_pq > drop_cc, k  # a step
        elif k > first:
            assert abs(drop_pq) < drop_cc, k  # flat between steps, CC-Dice still falls
    assert np.all(np.diff(cc) < 0)
    # smoothness: PQ's curvature is several times CC-Dice's
    assert np.abs(np.diff(pq, 2)).max() > 3 * np.abs(np.diff(cc, 2)).max()
    # once every component fails the threshold PQ stays at 0 though erosion goes on
    assert np.all(pq[tp == 0] == 0)


def test_pq_rises_when_the_false_positive_remnant_vanishes(erode_all: pd.DataFrame) -> None:
    pq = _series(erode_all, "pq")
    comps = _series(erode_all, PRED_COMPONENTS)
    k = int(np.argmax(comps < 3))  # the smallest sphere is eroded away
    assert k > 0 and pq[k] > pq[k - 1]


# ---- Fig. 28 middle: erode only the smallest ---------------------------------------------------


def test_eroding_the_smallest_drives_cc_dice_to_two_thirds_while_dice_barely_moves() -> None:
    df = run_toy_study("erode_smallest", scale=0.3)
    dice, cc = _series(df, "dice"), _series(df, "cc_dice")
    assert cc[-1] == pytest.approx(2 / 3, abs=1e-9)
    assert dice.min() > 0.99
    assert np.all(np.diff(cc) <= 0)
    assert cc[-1] < dice[-1] - 0.3


# ---- Fig. 28 bottom: Lesion Dice and merging predictions ---------------------------------------


def test_lesion_dice_drops_when_dilated_predictions_merge(dilate: pd.DataFrame) -> None:
    merged = dilate[dilate["variant"] == "merged"]
    ld, dice, cc = (_series(merged, m) for m in ("lesion_dice", "dice", "cc_dice"))
    comps = _series(merged, PRED_COMPONENTS)
    merges = [k for k in range(1, len(comps)) if comps[k] < comps[k - 1]]
    assert len(merges) == 2 and comps[-1] == 1
    # equal spheres: before the first merge Dice, CC-Dice and Lesion Dice agree
    for k in range(merges[0]):
        assert ld[k] == pytest.approx(dice[k], abs=0.01) == pytest.approx(cc[k], abs=0.01)
    for k in range(1, len(ld)):
        ratio_ld, ratio_dice = ld[k] / ld[k - 1], dice[k] / dice[k - 1]
        if k in merges:
            assert ratio_ld < ratio_dice - 0.15, k
        else:
            assert ratio_ld == pytest.approx(ratio_dice, abs=0.05), k


def test_lesion_dice_pitfall_merged_vs_separate_masks(dilate: pd.DataFrame) -> None:
    sep, mer = (dilate[dilate["variant"] == v] for v in ("separate", "merged"))
    assert np.all(_series(sep, PRED_COMPONENTS) == 3)
    # nearly the same voxels: Dice and CC-Dice cannot tell the two apart ...
    np.testing.assert_allclose(_series(sep, "dice"), _series(mer, "dice"), atol=0.02)
    np.testing.assert_allclose(_series(sep, "cc_dice"), _series(mer, "cc_dice"), atol=0.02)
    # ... Lesion Dice punishes the merged mask far more than the separate ones
    ld_sep, ld_mer = _series(sep, "lesion_dice"), _series(mer, "lesion_dice")
    merged_steps = _series(mer, PRED_COMPONENTS) < 3
    assert np.all(ld_mer[merged_steps] < ld_sep[merged_steps] - 0.1)
    np.testing.assert_allclose(ld_sep, _series(sep, "cc_dice"), atol=0.01)


# ---- Fig. 29: HD95 vs CC-HD95, NSD vs CC-NSD ---------------------------------------------------


def test_hd95_ignores_the_small_component_cc_hd95_reacts_equally() -> None:
    df = run_toy_study("hd95_erode", scale=0.3)
    steps = np.arange(len(_series(df, "hd95", "smallest")))
    assert np.all(_series(df, "hd95", "smallest") == 0)
    hd_large = _series(df, "hd95", "largest")
    assert np.all(np.diff(hd_large) > 0) and hd_large[-1] >= steps[-1] - 1e-9
    cc_small, cc_large = _series(df, "cc_hd95", "smallest"), _series(df, "cc_hd95", "largest")
    assert np.all(cc_small[1:] > 0) and np.all(cc_large[1:] > 0)
    np.testing.assert_allclose(cc_small[1:], cc_large[1:], rtol=0.2)
    # three components: one eroded by k voxels moves the mean by about k / 3
    np.testing.assert_allclose(cc_large, steps / 3, atol=0.05)


def test_cc_nsd_reacts_equally_to_shifting_small_or_large() -> None:
    df = run_toy_study("nsd_shift", scale=0.3)
    nsd_small, nsd_large = _series(df, "nsd", "smallest"), _series(df, "nsd", "largest")
    assert nsd_small.min() > 0.95
    assert nsd_large[-1] < 0.5
    cc_small, cc_large = _series(df, "cc_nsd", "smallest"), _series(df, "cc_nsd", "largest")
    assert cc_small[-1] < 0.8
    np.testing.assert_allclose(cc_small, cc_large, atol=0.05)


# ---- outputs ----------------------------------------------------------------------------------


def test_run_toy_studies_writes_csv_and_figures(tmp_path: Path) -> None:
    result = run_toy_studies(tmp_path, scale=0.15, studies=["erode_smallest", "hd95_erode"])
    table = pd.read_csv(result.csv, keep_default_na=False)
    assert set(table["study"]) == {"erode_smallest", "hd95_erode"}
    assert len(table) == len(result.table)
    names = sorted(p.name for p in result.figures)
    assert names == sorted(
        f"toy_{s}.{ext}" for s in ("erode_smallest", "hd95_erode") for ext in ("png", "svg")
    )
    assert all(p.stat().st_size > 1000 for p in result.figures)
    assert set(result.seconds) == {"erode_smallest", "hd95_erode"}
    assert sorted(TOY_STUDIES) == sorted(
        [
            "erode_all",
            "erode_smallest",
            "dilate_merge",
            "lesion_dice_pitfall",
            "hd95_erode",
            "nsd_shift",
        ]
    )
