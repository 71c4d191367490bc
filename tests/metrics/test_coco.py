"""COCO mask AP: equality with pycocotools' own COCOeval on the same JSON files, and hand-made
cases computed from COCO's 101-point interpolated precision."""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest

from evaluator.errors import ImageReadError, MetricInputError
from evaluator.metrics.coco import (
    Instance,
    coco_mask_ap,
    coco_mask_ap_from_json,
    read_chestxdet,
    to_coco_gt,
    to_coco_results,
)

SIZE = (32, 40)


def _pycocotools_stats(gt_file, res_file, cat_ids=None):
    """COCOeval run directly on files, as a user of pycocotools would: stats[0:3]."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        dt = gt.loadRes(str(res_file))
        ev = COCOeval(gt, dt, iouType="segm")
        if cat_ids is not None:
            ev.params.catIds = cat_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(v) for v in ev.stats[:3]]


def _box(top, left, h, w, size=SIZE):
    m = np.zeros(size, bool)
    m[top : top + h, left : left + w] = True
    return m


def _random_case(seed):
    rng = np.random.default_rng(seed)
    gt, pred = {}, {}
    for i in range(4):
        name = f"img{i}.png"
        gt[name], pred[name] = [], []
        for _ in range(int(rng.integers(0, 5))):
            cat = int(rng.integers(1, 4))
            top, left = int(rng.integers(0, 26)), int(rng.integers(0, 34))
            h, w = int(rng.integers(2, 12)), int(rng.integers(2, 12))
            if rng.random() < 0.5:
                gt[name].append(Instance(cat, mask=_box(top, left, h, w)))
            else:
                poly = [(left, top), (left + w, top), (left + w, top + h), (left, top + h)]
                gt[name].append(Instance(cat, polygon=poly))
            if rng.random() < 0.8:  # a detection, shifted a little
                dy, dx = rng.integers(-2, 3, size=2)
                m = _box(max(top + int(dy), 0), max(left + int(dx), 0), h, w)
                pred[name].append(Instance(cat, mask=m, score=float(rng.random())))
        for _ in range(int(rng.integers(0, 3))):  # false positives (classes 1..3 only)
            m = _box(int(rng.integers(0, 28)), int(rng.integers(0, 36)), 4, 4)
            pred[name].append(Instance(int(rng.integers(1, 4)), mask=m, score=float(rng.random())))
        if rng.random() < 0.3:  # a polygon prediction
            pred[name].append(
                Instance(1, polygon=[(3, 3), (12, 4), (9, 14)], score=float(rng.random()))
            )
    return gt, pred


@pytest.mark.parametrize("seed", range(12), ids=lambda s: f"seed{s}")
def test_equals_pycocotools_on_the_same_json_files(tmp_path, seed):
    gt, pred = _random_case(seed)
    categories = {1: "Mass", 2: "Nodule", 3: "Effusion"}
    dataset = to_coco_gt(gt, categories=categories, image_sizes=SIZE)
    results = to_coco_results(pred, gt=dataset)
    if not results or not any(a for a in dataset["annotations"]):
        pytest.skip("pycocotools cannot load empty results / has nothing to score")
    gt_file, res_file = tmp_path / "gt.json", tmp_path / "res.json"
    gt_file.write_text(json.dumps(dataset))
    res_file.write_text(json.dumps(results))

    with_gt = {a["category_id"] for a in dataset["annotations"]}
    with_dt = {r["category_id"] for r in results}
    got = coco_mask_ap(gt, pred, categories=categories, image_sizes=SIZE)
    from_files = coco_mask_ap_from_json(gt_file, res_file)
    assert from_files == got

    # per class: COCOeval restricted to that class
    for cat in categories:
        values = [got.per_class[cat][k] for k in ("coco_ap", "coco_ap50", "coco_ap75")]
        if cat in with_gt:
            assert values == _pycocotools_stats(gt_file, res_file, [cat])
        elif cat in with_dt:
            assert values == [0.0, 0.0, 0.0]
        else:
            assert all(math.isnan(v) for v in values)
    # mean: COCOeval over all classes, when every class with detections has ground truth
    if with_dt <= with_gt:
        assert [got.ap, got.ap50, got.ap75] == _pycocotools_stats(gt_file, res_file)
    else:
        valid = [c for c in categories if c in with_gt | with_dt]
        for key, value in zip(
            ("coco_ap", "coco_ap50", "coco_ap75"), got.as_dict().values(), strict=True
        ):
            per = [got.per_class[c][key] for c in valid]
            assert value == pytest.approx(np.mean(per), abs=1e-12)


def test_perfect_prediction_is_one():
    gt = {"a": [Instance(1, mask=_box(2, 2, 8, 8)), Instance(2, mask=_box(15, 15, 6, 9))]}
    pred = {"a": [Instance(i.category_id, mask=i.mask, score=0.5) for i in gt["a"]]}
    r = coco_mask_ap(gt, pred, categories=[1, 2])
    # COCOeval's precision is tp / (tp + fp + eps): 1 up to one ulp
    assert (r.ap, r.ap50, r.ap75) == pytest.approx((1.0, 1.0, 1.0), rel=1e-15)


def test_missed_instance():
    """Two instances, one found: recall 0.5 with precision 1, so 51 of the 101 recall points
    (0.00 ... 0.50) have precision 1 at every IoU threshold."""
    gt = {"a": [Instance(1, mask=_box(2, 2, 8, 8)), Instance(1, mask=_box(20, 20, 8, 8))]}
    pred = {"a": [Instance(1, mask=_box(2, 2, 8, 8), score=0.9)]}
    r = coco_mask_ap(gt, pred, categories=[1])
    assert r.ap == pytest.approx(51 / 101)
    assert r.ap50 == pytest.approx(51 / 101)
    assert r.ap75 == pytest.approx(51 / 101)


def test_false_positive_with_high_score():
    """FP ranked first, TP second: precision [0, 1/2] becomes [1/2, 1/2] after COCO's
    right-to-left maximum, so AP = 1/2 at every threshold."""
    gt = {"a": [Instance(1, mask=_box(2, 2, 8, 8))]}
    pred = {
        "a": [
            Instance(1, mask=_box(20, 20, 5, 5), score=0.95),
            Instance(1, mask=_box(2, 2, 8, 8), score=0.6),
        ]
    }
    r = coco_mask_ap(gt, pred, categories=[1])
    assert (r.ap, r.ap50, r.ap75) == pytest.approx((0.5, 0.5, 0.5), rel=1e-15)


def test_two_overlapping_instances():
    """GT A and B overlap; A is found exactly, B by a box with IoU 80/120 = 2/3: matched at the
    thresholds 0.50-0.65 (four of ten), missed above (recall 1/2 there: 51/101)."""
    a, b = _box(5, 5, 10, 10), _box(10, 10, 10, 10)
    b_shifted = _box(10, 12, 10, 10)
    gt = {"img": [Instance(1, mask=a), Instance(1, mask=b)]}
    pred = {"img": [Instance(1, mask=a, score=0.9), Instance(1, mask=b_shifted, score=0.8)]}
    r = coco_mask_ap(gt, pred, categories=[1])
    assert r.ap50 == pytest.approx(1.0, rel=1e-15)
    assert r.ap75 == pytest.approx(51 / 101)
    assert r.ap == pytest.approx((4 * 1.0 + 6 * 51 / 101) / 10)
    # both exact: 1.0 regardless of the overlap between A and B
    exact = {"img": [Instance(1, mask=a, score=0.3), Instance(1, mask=b, score=0.8)]}
    assert coco_mask_ap(gt, exact, categories=[1]).ap == pytest.approx(1.0, rel=1e-15)


def test_class_conventions():
    gt = {"a": [Instance(1, mask=_box(2, 2, 8, 8))], "b": []}
    pred = {"a": [Instance(1, mask=_box(2, 2, 8, 8))], "b": [Instance(2, mask=_box(1, 1, 3, 3))]}
    r = coco_mask_ap(gt, pred, categories={1: "x", 2: "y", 3: "z"})
    assert r.per_class[1]["coco_ap"] == pytest.approx(1.0, rel=1e-15)
    assert r.per_class[2] == {"coco_ap": 0.0, "coco_ap50": 0.0, "coco_ap75": 0.0}  # FP only
    assert all(math.isnan(v) for v in r.per_class[3].values())  # nothing at all
    assert r.ap == pytest.approx(0.5, rel=1e-15)  # mean of classes 1 and 2
    # no predictions at all: 0 for classes with ground truth
    assert coco_mask_ap(gt, {}, categories=[1, 3]).ap == 0.0
    # nothing anywhere: NaN
    assert math.isnan(coco_mask_ap({"b": []}, {}, categories=[1]).ap)


def test_chestxdet_files_equal_instances(tmp_path):
    categories = {1: "Atelectasis", 10: "Mass", 11: "Nodule"}
    gt_entries = [
        {
            "file_name": "36199.png",
            "syms": ["Mass", "Nodule"],
            "boxes": [[2, 2, 14, 14], [20, 5, 28, 12]],
            "polygons": [[[2, 2], [14, 3], [13, 14], [3, 12]], [[20, 5], [28, 6], [24, 12]]],
        },
        {"file_name": "36200.png", "syms": [], "boxes": [], "polygons": []},
    ]
    pred_entries = [
        {
            "file_name": "36199.png",
            "syms": ["Mass", "Nodule", "Mass"],
            "polygons": [
                [[3, 2], [14, 3], [13, 13], [3, 12]],
                [[21, 5], [28, 7], [23, 12]],
                [[30, 30], [36, 30], [33, 36]],
            ],
            "scores": [0.9, 0.7, 0.8],
        },
        {
            "file_name": "36200.png",
            "syms": ["Nodule"],
            "polygons": [[[1, 1], [5, 1], [3, 6]]],
            "scores": [0.4],
        },
    ]
    gt_file, pred_file = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_file.write_text(json.dumps(gt_entries))
    pred_file.write_text(json.dumps(pred_entries))
    gt = read_chestxdet(gt_file, categories=categories)
    pred = read_chestxdet(pred_file, categories=categories, scores=True)
    assert [i.category_id for i in gt["36199.png"]] == [10, 11]
    assert [i.score for i in pred["36199.png"]] == [0.9, 0.7, 0.8]
    got = coco_mask_ap(gt, pred, categories=categories, image_sizes=(40, 40))

    dataset = to_coco_gt(gt, categories=categories, image_sizes=(40, 40))
    results = to_coco_results(pred, gt=dataset)
    (tmp_path / "coco_gt.json").write_text(json.dumps(dataset))
    (tmp_path / "coco_res.json").write_text(json.dumps(results))
    expected = _pycocotools_stats(tmp_path / "coco_gt.json", tmp_path / "coco_res.json")
    assert [got.ap, got.ap50, got.ap75] == expected
    assert math.isnan(got.per_class[1]["coco_ap"])


def test_errors_name_the_problem(tmp_path):
    cats = {1: "Mass"}
    with pytest.raises(MetricInputError, match=r"img.png, instance 0: a polygon needs"):
        to_coco_gt(
            {"img.png": [Instance(1, polygon=[(0, 0), (3, 3)])]},
            categories=cats,
            image_sizes=(8, 8),
        )
    with pytest.raises(MetricInputError, match="category 5"):
        to_coco_gt({"a": [Instance(5, mask=np.ones((4, 4), bool))]}, categories=cats)
    with pytest.raises(MetricInputError, match="does not match image size"):
        to_coco_gt(
            {"a": [Instance(1, mask=np.ones((4, 4), bool))]}, categories=cats, image_sizes=(8, 8)
        )
    with pytest.raises(MetricInputError, match="pass image_sizes"):
        to_coco_gt({"a": [Instance(1, polygon=[(0, 0), (3, 0), (3, 3)])]}, categories=cats)
    ds = to_coco_gt({"a": []}, categories=cats, image_sizes=(4, 4))
    with pytest.raises(MetricInputError, match="image b, which has no ground truth"):
        to_coco_results({"b": []}, gt=ds)
    with pytest.raises(MetricInputError, match="score"):
        to_coco_results({"a": [Instance(1, mask=np.ones((4, 4), bool), score=math.nan)]}, gt=ds)
    with pytest.raises(MetricInputError, match="unknown class 'Tumour'"):
        read_chestxdet(
            [{"file_name": "x", "syms": ["Tumour"], "polygons": [[[0, 0]] * 3]}], categories=cats
        )
    with pytest.raises(MetricInputError, match="same length"):
        read_chestxdet([{"file_name": "x", "syms": ["Mass"], "polygons": []}], categories=cats)
    with pytest.raises(ImageReadError, match=r"missing\.json"):
        coco_mask_ap_from_json(tmp_path / "missing.json", [])
    with pytest.raises(MetricInputError, match="image_id 9"):
        coco_mask_ap_from_json(
            ds, [{"image_id": 9, "category_id": 1, "segmentation": {}, "score": 1.0}]
        )
