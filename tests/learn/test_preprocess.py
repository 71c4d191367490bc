"""Intensity rules of the learned baselines: hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator.datasets.phantoms import ORGAN_IDS, UPTAKE_ORGANS
from evaluator.learn.preprocess import channel_rule, normalise, stack_channels


@pytest.mark.parametrize(
    ("value", "expected"),
    [(-1500.0, -1.0), (-1000.0, -1.0), (-500.0, -0.5), (0.0, 0.0), (250.0, 0.25), (3000.0, 1.0)],
)
def test_whole_body_ct_window(value: float, expected: float) -> None:
    rule = channel_rule("CT", "autopet")
    assert normalise(np.array([value]), rule)[0] == pytest.approx(expected)


def test_btcv_uses_the_abdominal_window() -> None:
    rule = channel_rule("CT", "btcv")
    # -175..250 HU -> -1..1: 37.5 HU is the centre
    assert normalise(np.array([-175.0, 37.5, 250.0, 400.0]), rule).tolist() == pytest.approx(
        [-1.0, 0.0, 1.0, 1.0]
    )


def test_suv_window_and_pet_channel_names() -> None:
    for channel in ("PET", "PT"):
        rule = channel_rule(channel, "hecktor")
        assert normalise(np.array([0.0, 5.0, 10.0, 40.0]), rule).tolist() == pytest.approx(
            [-1.0, -0.5, 0.0, 1.0]
        )


def test_organ_rule_marks_the_uptake_organs_only() -> None:
    uptake = [ORGAN_IDS[n] for n in UPTAKE_ORGANS]
    rule = channel_rule("ORGANS", "autopet", organ_ids=uptake)
    ids = np.array(sorted(ORGAN_IDS.values()))
    out = normalise(ids, rule)
    expected = np.isin(
        ids,
        [
            ORGAN_IDS[n]
            for n in ("brain", "urinary_bladder", "heart", "kidney_right", "kidney_left")
        ],
    )
    assert out.tolist() == expected.astype(float).tolist()
    assert normalise(np.array([0]), rule).tolist() == [0.0]


def test_zscore_of_unknown_channels_and_constant_images() -> None:
    assert channel_rule("XR", "chestxdet") == {"kind": "zscore"}
    out = normalise(np.array([2.0, 4.0, 6.0]), {"kind": "zscore"})
    assert out.mean() == pytest.approx(0.0) and out.std() == pytest.approx(1.0)
    assert normalise(np.array([5.0, 5.0]), {"kind": "zscore"}).tolist() == [0.0, 0.0]


def test_unknown_rule_and_missing_channel_are_named() -> None:
    with pytest.raises(ValueError, match="unknown normalisation rule 'gamma'"):
        normalise([1.0], {"kind": "gamma"})
    with pytest.raises(KeyError, match="ORGANS"):
        stack_channels({"CT": [0.0]}, ["CT", "ORGANS"], {"CT": {"kind": "zscore"}})
