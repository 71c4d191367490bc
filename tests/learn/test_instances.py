"""2D instances: RLE against pycocotools (the oracle), components, scores; and the evaluation
reading uncompressed RLE like compressed RLE."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils

from evaluator.evaluate.predictions import _compress_rle
from evaluator.learn.instances import encode_rle, label_instances


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_uncompressed_rle_decodes_to_the_mask_with_pycocotools(mask: np.ndarray) -> None:
    rle = encode_rle(mask)
    assert sum(rle["counts"]) == mask.size
    h, w = mask.shape
    decoded = mask_utils.decode(mask_utils.frPyObjects(rle, h, w))
    assert np.array_equal(decoded.astype(bool), mask)
    # and through the evaluation's conversion: the compressed string pycocotools writes itself
    expected = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode()
    assert _compress_rle(rle)["counts"] == expected


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ([2, 3], "covers 5 pixels, not 2 x 2"),
        ([2, -1, 3], "non-negative"),
        ([1.5, 2.5], "integers"),
    ],
)
def test_malformed_uncompressed_rle_is_refused(counts: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _compress_rle({"size": [2, 2], "counts": counts})


def test_components_of_each_class_become_scored_instances() -> None:
    labels = np.zeros((20, 20), np.uint8)
    labels[1:5, 1:5] = 3  # 16 px
    labels[10:14, 10:15] = 3  # 20 px, separate
    labels[15:20, 0:4] = 7  # 20 px
    labels[0, 19] = 7  # 1 px: noise, dropped
    conf = np.full((20, 20), 0.5, np.float32)
    conf[10:14, 10:15] = 0.9
    items = label_instances(labels, conf, image_id="case1", min_pixels=10)
    got = sorted(
        (i["category_id"], int(np.sum(mask_utils.decode(mask_utils.frPyObjects(
            i["segmentation"], 20, 20)))), round(i["score"], 3))
        for i in items
    )  # fmt: skip
    assert got == [(3, 16, 0.5), (3, 20, 0.9), (7, 20, 0.5)]
    assert {i["image_id"] for i in items} == {"case1"}


def test_diagonal_pixels_are_one_instance() -> None:
    labels = np.eye(12, dtype=np.uint8) * 2
    items = label_instances(labels, np.ones((12, 12)), image_id="d", min_pixels=1)
    assert len(items) == 1  # 8-connected, as the task's connectivity


def test_only_the_most_confident_hundred_instances_are_kept() -> None:
    labels = np.zeros((64, 64), np.uint8)
    labels[::2, ::2] = 5  # 1024 isolated pixels: 1024 components
    conf = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    items = label_instances(labels, conf, image_id="x", min_pixels=1)
    assert len(items) == 100
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    assert scores[-1] >= float(np.sort(conf[::2, ::2].ravel())[-100])
