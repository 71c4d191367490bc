"""compute_metrics: equals the direct metric functions, edge cases from the table, bad input."""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from evaluator.errors import MetricInputError, UnknownMetricError
from evaluator.metrics.api import CaseMetrics, compute_metrics, present_labels, resolve_metrics
from evaluator.metrics.registry import EDGE_CASES, METRICS, VOXEL_METRICS

_MODULES = {"overlap": "overlap", "surface": "surface", "lesion": "lesion", "cc": "cc"}


def direct(name: str, **options: Any) -> Callable[[np.ndarray, np.ndarray], float]:
    """The metric's own function, called with the options it accepts."""
    module = importlib.import_module(f"evaluator.metrics.{_MODULES[METRICS[name].kind]}")
    func = getattr(module, name)
    accepted = inspect.signature(func).parameters
    kwargs = {k: v for k, v in options.items() if k in accepted}
    return lambda p, r: float(func(p, r, **kwargs))


def _options(spacing: tuple[float, ...], tol: float = 1.0) -> dict[str, Any]:
    return {"spacing": spacing, "nsd_tolerance_mm": tol}


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=1e-12)


def make_label_maps(seed: int) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Small label maps with labels 1..3, blobs that touch, cross the border or are missed."""
    rng = np.random.default_rng(seed)
    ndim = 2 if seed % 3 == 0 else 3
    shape = tuple(int(rng.integers(8, 18 if ndim == 3 else 40)) for _ in range(ndim))
    ref = np.zeros(shape, np.uint8)
    for label in (1, 2, 3):
        noise = ndimage.gaussian_filter(rng.standard_normal(shape), 1.2)
        ref[noise > np.quantile(noise, 0.9)] = label
    pred = ref.copy()
    pred = np.roll(pred, int(rng.integers(-1, 2)), axis=int(rng.integers(0, ndim)))
    pred[rng.random(shape) < 0.03] = rng.integers(0, 4)
    if seed % 4 == 1:
        pred[pred == 2] = 0  # label 2 missed entirely
    spacing = tuple(float(v) for v in rng.choice([0.7, 1.0, 2.0, 3.0], ndim))
    return pred, ref, spacing


@pytest.mark.parametrize("seed", range(8), ids=lambda s: f"seed{s}")
def test_equals_direct_calls_for_every_voxel_metric(seed: int) -> None:
    pred, ref, spacing = make_label_maps(seed)
    tol = 1.5
    res = compute_metrics(pred, ref, spacing=spacing, metrics=VOXEL_METRICS, nsd_tolerance_mm=tol)
    assert sorted(res.values) == present_labels(np.maximum(pred, ref))
    for label, values in res.values.items():
        assert list(values) == list(VOXEL_METRICS)
        p, r = pred == label, ref == label
        for name in VOXEL_METRICS:
            expected = direct(name, **_options(spacing, tol))(p, r)
            assert _same(values[name], expected), (label, name, values[name], expected)
        # per-component CC values: one per reference component, their mean is the value
        n_comp = ndimage.label(r, structure=np.ones((3,) * r.ndim))[1]
        for name, comps in res.per_component[label].items():
            assert len(comps) == max(n_comp, 1)
            assert _same(values[name], float(np.mean(comps)))


@pytest.mark.parametrize("seed", range(3), ids=lambda s: f"seed{s}")
def test_crop_invariance_in_a_larger_volume(seed: int) -> None:
    """Embedding the case in a larger empty volume changes nothing but the boundary band width."""
    pred, ref, spacing = make_label_maps(seed)
    pad = [(3, 7)] * pred.ndim
    names = [n for n in VOXEL_METRICS if "boundary_iou" not in n]
    small = compute_metrics(pred, ref, spacing=spacing, metrics=names)
    large = compute_metrics(np.pad(pred, pad), np.pad(ref, pad), spacing=spacing, metrics=names)
    for label in small.values:
        for name in names:
            assert _same(small.values[label][name], large.values[label][name]), (label, name)


@pytest.mark.parametrize("name", VOXEL_METRICS)
@pytest.mark.parametrize("ndim", [2, 3])
def test_edge_cases_direct_and_pipeline_agree(name: str, ndim: int) -> None:
    """Both empty / reference empty / prediction empty: the table value, in both code paths."""
    empty = np.zeros((6,) * ndim, np.uint8)
    some = empty.copy()
    some[(slice(1, 3),) * ndim] = 1
    spacing = (1.0,) * ndim
    row = EDGE_CASES[name]
    for pred, ref, table in (
        (empty, empty, row.both_empty),
        (some, empty, row.ref_empty),
        (empty, some, row.pred_empty),
    ):
        got = compute_metrics(pred, ref, spacing=spacing, metrics=[name]).values[1][name]
        want = direct(name, **_options(spacing))(pred.astype(bool), ref.astype(bool))
        assert _same(got, want), (name, got, want)
        if table is not None:
            assert _same(got, table), (name, got, table)


def test_hand_computed_two_labels() -> None:
    ref = np.zeros((1, 4, 6), np.uint8)
    ref[0, 1:3, 1:3] = 1
    ref[0, 1:3, 4] = 2
    pred = np.zeros_like(ref)
    pred[0, 1:3, 2:4] = 1
    res = compute_metrics(pred, ref, spacing=(2.0, 1.0, 0.5), metrics=["dice", "iou", "hd"])
    assert res.values[1] == {"dice": 0.5, "iou": pytest.approx(1 / 3), "hd": 0.5}
    assert res.values[2] == {"dice": 0.0, "iou": 0.0, "hd": math.inf}
    # explicit labels: only those, in the given order; absent label -> both-empty values
    res = compute_metrics(pred, ref, spacing=(2.0, 1.0, 0.5), metrics=["dice"], labels=[7, 1])
    assert list(res.values) == [7, 1]
    assert res.values[7]["dice"] == EDGE_CASES["dice"].both_empty


def test_both_maps_empty_scores_label_one() -> None:
    z = np.zeros((3, 3), np.int16)
    res = compute_metrics(z, z, spacing=(1.0, 1.0), metrics=["dice", "hd95"])
    assert res.values == {1: {"dice": 1.0, "hd95": 0.0}}


def test_input_types_bool_and_whole_floats() -> None:
    ref = np.zeros((5, 5), bool)
    ref[1:3, 1:3] = True
    a = compute_metrics(ref, ref, spacing=(1.0, 1.0), metrics=["dice"])
    b = compute_metrics(
        ref.astype(np.float32), ref.astype(np.int64), spacing=(1, 1), metrics=["dice"]
    )
    assert a.values == b.values == {1: {"dice": 1.0}}


def test_case_metrics_json_round_trip() -> None:
    import json

    res = CaseMetrics({1: {"hd": math.inf, "dice": 0.5}}, {1: {"cc_dice": [0.25, 0.75]}})
    data = json.loads(res.to_json())
    assert data["values"]["1"]["hd"] == math.inf
    assert data["per_component"]["1"]["cc_dice"] == [0.25, 0.75]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"metrics": ["dice", "nope"]}, UnknownMetricError, "unknown metric 'nope'"),
        ({"metrics": ["coco_ap"]}, UnknownMetricError, "instance metric"),
        ({"metrics": []}, UnknownMetricError, "no metric"),
        ({"labels": []}, MetricInputError, "no label"),
        ({"labels": [0]}, MetricInputError, "background"),
        ({"spacing": (1.0,)}, MetricInputError, "spacing"),
        ({"nsd_tolerance_mm": -1.0}, MetricInputError, "tolerance"),
        ({"lesion_match": "iou"}, MetricInputError, "match rule"),
        ({"cc_mode": "inch"}, MetricInputError, "mode"),
        ({"cc_worst_distance_mm": math.nan}, MetricInputError, "worst distance"),
        ({"pred": np.zeros((4, 5))}, MetricInputError, "shape"),
        ({"pred": np.full((4, 4), np.nan)}, MetricInputError, "NaN"),
        ({"ref": np.full((4, 4), 1.5)}, MetricInputError, "non-integer"),
        ({"ref": np.zeros((4,), int)}, MetricInputError, "2D or 3D"),
    ],
)
def test_bad_input(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    args: dict[str, Any] = {
        "pred": np.zeros((4, 4), int),
        "ref": np.zeros((4, 4), int),
        "spacing": (1.0, 1.0),
        "metrics": ["dice"],
    }
    args.update(kwargs)
    pred, ref = args.pop("pred"), args.pop("ref")
    with pytest.raises(error, match=match):
        compute_metrics(pred, ref, **args)


def test_resolve_metrics_keeps_order() -> None:
    assert resolve_metrics(["hd95", "dice", "hd95"]) == ("hd95", "dice")


def test_float_label_maps_keep_their_values() -> None:
    from evaluator.metrics.api import check_label_map

    assert check_label_map(np.array([[0.0, 3.0]]), name="p").dtype == np.uint8
    assert check_label_map(np.array([[0.0, 300.0]]), name="p").tolist() == [[0, 300]]
    assert check_label_map(np.array([[-1.0, 70000.0]]), name="p").tolist() == [[-1, 70000]]


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64]
)
def test_foreground_scan_equals_flatnonzero(dtype: Any) -> None:
    """The eight-bytes-at-a-time scan finds exactly the non-zero voxels (any dtype, layout)."""
    from evaluator.metrics.api import _foreground

    rng = np.random.default_rng(7)
    info = np.iinfo(dtype)
    values = np.array([1, 2, 255, 256, 257, 65536, -1, -256, info.max, info.min], dtype=np.int64)
    values = values[(values >= info.min) & (values <= info.max) & (values != 0)]
    shape = (5, 7, 13)  # 455 voxels: not a multiple of 8
    arr = np.where(rng.random(shape) < 0.2, rng.choice(values, size=shape), 0).astype(dtype)
    arr[-1, -1, -1] = values[0]  # the tail after the last whole word
    for layout in (arr, arr.transpose(2, 0, 1), arr[:, ::2]):
        index, found = _foreground(layout)
        expected = np.flatnonzero(layout)
        np.testing.assert_array_equal(index, expected)
        np.testing.assert_array_equal(found, layout.ravel()[expected])
    assert _foreground(np.zeros((3, 3), dtype))[0].size == 0


def test_labels_share_no_work_across_each_other() -> None:
    """Two labels touching each other: each is scored as its own binary pair."""
    ref = np.zeros((1, 6, 8), np.uint16)
    ref[0, 1:5, 1:4] = 300
    ref[0, 1:5, 4:7] = 2
    pred = ref.copy()
    pred[0, 1:5, 3] = 2  # one column of label 300 predicted as 2
    res = compute_metrics(pred, ref, spacing=(1.0, 1.0, 1.0), metrics=["dice", "lesion_tp"])
    assert res.values[300] == {"dice": 2 * 8 / (8 + 12), "lesion_tp": 1.0}
    assert res.values[2] == {"dice": 2 * 12 / (16 + 12), "lesion_tp": 1.0}
