"""Dice and IoU against MONAI and hand-computed cases; edge cases from the registry."""

from __future__ import annotations

from typing import cast

import numpy as np
import pytest

from evaluator.errors import MetricInputError
from evaluator.metrics.overlap import as_mask, check_pair, dice, iou, overlap_counts
from evaluator.metrics.registry import EDGE_CASES


def _random_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(3, 20, 2 + seed % 2))
    ref = rng.random(shape) < rng.uniform(0.05, 0.6)
    pred = rng.random(shape) < rng.uniform(0.05, 0.6)
    if seed % 3 == 0:
        pred = ref ^ (rng.random(shape) < 0.1)
    return pred, ref


@pytest.mark.parametrize("seed", range(30), ids=lambda s: f"seed{s}")
def test_matches_monai(seed: int) -> None:
    import torch
    from monai.metrics import DiceMetric, compute_iou

    pred, ref = _random_pair(seed)
    if not pred.any() or not ref.any():
        pytest.skip("empty mask: covered by the edge-case test")
    p = torch.from_numpy(pred[None, None].astype(np.float32))
    r = torch.from_numpy(ref[None, None].astype(np.float32))
    expected_dice = float(cast(torch.Tensor, DiceMetric(include_background=True)(p, r)))
    expected_iou = float(compute_iou(p, r, include_background=True))
    assert dice(pred, ref) == pytest.approx(expected_dice, rel=1e-6, abs=1e-7)
    assert iou(pred, ref) == pytest.approx(expected_iou, rel=1e-6, abs=1e-7)


def test_hand_computed_counts() -> None:
    pred = np.array([[1, 1, 1, 0, 0]])
    ref = np.array([[0, 1, 1, 1, 1]])
    assert overlap_counts(pred, ref) == (2, 1, 2)
    assert dice(pred, ref) == pytest.approx(4 / 7)
    assert iou(pred, ref) == pytest.approx(2 / 5)


def test_dice_iou_relation() -> None:
    pred, ref = _random_pair(7)
    d, j = dice(pred, ref), iou(pred, ref)
    assert d == pytest.approx(2 * j / (1 + j))


@pytest.mark.parametrize("name", ["dice", "iou"])
def test_edge_cases_follow_registry(name: str) -> None:
    func = {"dice": dice, "iou": iou}[name]
    empty = np.zeros((4, 4, 4), bool)
    some = empty.copy()
    some[1, 1, 1] = True
    row = EDGE_CASES[name]
    assert func(empty, empty) == row.both_empty
    assert func(some, empty) == row.ref_empty
    assert func(empty, some) == row.pred_empty


def test_integer_labels_are_foreground_when_nonzero() -> None:
    assert as_mask(np.array([[0, 3], [1, 0]], dtype=np.uint8)).sum() == 2
    assert dice(np.array([[0, 2]]), np.array([[0, 1]])) == 1.0


@pytest.mark.parametrize(
    ("pred", "ref", "match"),
    [
        (np.zeros((3, 3)), np.zeros((4, 3)), "shape"),
        (np.array([[np.nan, 0.0]]), np.zeros((1, 2)), "NaN"),
        (np.array([[0.2, 0.0]]), np.zeros((1, 2)), "non-integer"),
        (np.array([["a", "b"]]), np.array([["a", "b"]]), "dtype"),
        (np.zeros((2, 2, 2, 2)), np.zeros((2, 2, 2, 2)), "2D or 3D"),
    ],
)
def test_bad_input(pred: np.ndarray, ref: np.ndarray, match: str) -> None:
    with pytest.raises(MetricInputError, match=match):
        check_pair(pred, ref)
    with pytest.raises(MetricInputError, match=match):
        dice(pred, ref)
