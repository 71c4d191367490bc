"""COCO mask AP (AP@[.5:.95], AP50, AP75) per class and mean, computed by pycocotools.

The evaluation itself is pycocotools' ``COCOeval`` with ``iouType="segm"`` and its default
parameters (10 IoU thresholds 0.50:0.05:0.95, 101 recall points, up to 100 detections per image
and class, all object areas). This module only converts inputs into a COCO ground-truth dataset
and a COCO results list, and reads the per-class numbers out of ``COCOeval.eval["precision"]``
exactly as ``COCOeval.summarize`` does for the mean.

Inputs
------
* ground truth: ``{image name: [Instance, ...]}`` with a mask or a polygon per instance, or a
  COCO ground-truth dataset (dict or JSON file), or a ChestXDet annotation list via
  :func:`read_chestxdet`;
* predictions: ``{image name: [Instance, ...]}`` with scores, a standard COCO results list
  (``[{image_id, category_id, segmentation (RLE), score}]``, dict or JSON file), or the
  ChestXDet-style prediction list (``file_name, syms, polygons, scores``) via
  :func:`read_chestxdet`.

Conventions
-----------
A class with neither ground truth nor predictions has no AP: NaN, left out of the mean (as in
pycocotools). A class with predictions but no ground truth scores 0 (every detection is a false
positive) and counts in the mean; pycocotools would leave it out (its precision stays -1), so
the mean differs from ``COCOeval.stats`` only in that case. A class with ground truth and no
prediction scores 0 (as in pycocotools). The mean is NaN when every class is NaN. These are the
``coco_*`` rows of :data:`evaluator.metrics.registry.EDGE_CASES`. Polygons are lists of ``(x, y)`` points in pixel
coordinates (x = column), rasterised by ``pycocotools.mask.frPyObjects``; masks are ``(height,
width)`` boolean arrays.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

from evaluator.errors import ImageReadError, MetricInputError
from evaluator.typing import BoolArray

__all__ = [
    "CocoAP",
    "Instance",
    "coco_mask_ap",
    "coco_mask_ap_from_json",
    "read_chestxdet",
    "to_coco_gt",
    "to_coco_results",
]

#: (height, width) of an image in pixels.
ImageSize: TypeAlias = tuple[int, int]
Polygon: TypeAlias = Sequence[Sequence[float]]

_KEYS = ("coco_ap", "coco_ap50", "coco_ap75")


@dataclass(frozen=True)
class Instance:
    """One object instance of an image: a class, a mask or a polygon, and a score.

    Attributes
    ----------
    category_id : int
        Class id (a key of the task's label map; 0 is not a class).
    mask : numpy.ndarray of bool, shape (height, width), optional
        Pixel mask; exactly one of `mask` and `polygon` is given.
    polygon : sequence of (x, y), optional
        Outline in pixel coordinates (x = column, y = row), at least 3 points.
    score : float
        Confidence of a prediction (ignored for ground truth).
    """

    category_id: int
    mask: BoolArray | None = None
    polygon: Polygon | None = None
    score: float = 1.0


@dataclass(frozen=True)
class CocoAP:
    """COCO mask AP of a set of images.

    Attributes
    ----------
    ap, ap50, ap75 : float
        Mean over the classes that are not NaN (``COCOeval.stats[0:3]`` when every class with
        predictions has ground truth); NaN if all classes are.
    per_class : dict of int to dict of str to float
        ``{class id: {"coco_ap": ..., "coco_ap50": ..., "coco_ap75": ...}}`` for every requested
        class; NaN for a class with neither ground truth nor predictions, 0 for a class with
        predictions only.
    """

    ap: float
    ap50: float
    ap75: float
    per_class: dict[int, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        """The mean values under their registry names.

        Examples
        --------
        >>> CocoAP(0.5, 1.0, 0.0).as_dict()
        {'coco_ap': 0.5, 'coco_ap50': 1.0, 'coco_ap75': 0.0}
        """
        return dict(zip(_KEYS, (self.ap, self.ap50, self.ap75), strict=True))


def _rle(instance: Instance, size: ImageSize, where: str) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    height, width = size
    if (instance.mask is None) == (instance.polygon is None):
        raise MetricInputError(f"{where}: an instance needs exactly one of mask and polygon")
    if instance.mask is not None:
        m = np.asarray(instance.mask)
        if m.shape != (height, width):
            raise MetricInputError(
                f"{where}: mask shape {m.shape} does not match image size {(height, width)}"
            )
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    else:
        points = np.asarray(instance.polygon, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
            raise MetricInputError(
                f"{where}: a polygon needs at least 3 (x, y) points, got shape {points.shape}"
            )
        if not np.isfinite(points).all():
            raise MetricInputError(f"{where}: polygon has NaN or infinite coordinates")
        rles = mask_utils.frPyObjects([points.ravel().tolist()], height, width)
        rle = mask_utils.merge(rles)
    rle["counts"] = rle["counts"].decode("ascii")
    return dict(rle)


def _size_of(
    name: str, image_sizes: Mapping[str, ImageSize] | ImageSize | None, insts: Any
) -> ImageSize:
    if isinstance(image_sizes, Mapping):
        if name not in image_sizes:
            raise MetricInputError(f"image {name}: no size given in image_sizes")
        height, width = image_sizes[name]
        return int(height), int(width)
    if image_sizes is not None:
        height, width = image_sizes
        return int(height), int(width)
    for inst in insts:
        if inst.mask is not None:
            shape = np.shape(inst.mask)
            if len(shape) != 2:
                raise MetricInputError(f"image {name}: mask of shape {shape} is not 2D")
            return int(shape[0]), int(shape[1])
    raise MetricInputError(f"image {name}: polygons only, pass image_sizes")


def to_coco_gt(
    gt: Mapping[str, Sequence[Instance]],
    *,
    categories: Mapping[int, str] | Sequence[int],
    image_sizes: Mapping[str, ImageSize] | ImageSize | None = None,
) -> dict[str, Any]:
    """A COCO ground-truth dataset (the dict ``json.dump`` writes) from instances.

    Images get ids ``1..N`` in sorted name order; ``file_name`` is the image name.

    Parameters
    ----------
    gt : mapping of str to sequence of Instance
        Ground-truth instances per image (an image may have none).
    categories : mapping of int to str, or sequence of int
        The classes (id to name); instances of other classes are an error.
    image_sizes : (height, width) or mapping of image name to it, optional
        Needed for polygons; taken from the masks otherwise.

    Returns
    -------
    dict
        ``{"images", "annotations", "categories"}`` with RLE segmentations (string counts),
        ``area``, ``bbox`` and ``iscrowd=0``.

    Examples
    --------
    >>> ds = to_coco_gt({"a.png": [Instance(1, polygon=[(0, 0), (4, 0), (4, 4)])]},
    ...                 categories={1: "Nodule"}, image_sizes=(8, 8))
    >>> ds["images"][0]["file_name"], ds["annotations"][0]["category_id"]
    ('a.png', 1)
    """
    from pycocotools import mask as mask_utils

    cats = _categories(categories)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, name in enumerate(sorted(gt), start=1):
        insts = gt[name]
        height, width = _size_of(name, image_sizes, insts)
        images.append({"id": image_id, "file_name": name, "height": height, "width": width})
        for k, inst in enumerate(insts):
            where = f"ground truth {name}, instance {k}"
            _check_category(inst.category_id, cats, where)
            rle = _rle(inst, (height, width), where)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(inst.category_id),
                    "segmentation": rle,
                    "area": float(mask_utils.area(rle)),
                    "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                    "iscrowd": 0,
                }
            )
    return {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c, "name": n} for c, n in cats.items()],
    }


def to_coco_results(
    predictions: Mapping[str, Sequence[Instance]],
    *,
    gt: Mapping[str, Any],
    categories: Mapping[int, str] | Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """A COCO results list from predicted instances, with image ids taken from `gt`.

    Parameters
    ----------
    predictions : mapping of str to sequence of Instance
        Predicted instances (with scores) per image name; every name must be an image of `gt`.
    gt : dict
        The COCO ground-truth dataset (:func:`to_coco_gt`), for image ids and sizes.
    categories : mapping or sequence of int, optional
        Allowed classes (default: those of `gt`).

    Returns
    -------
    list of dict
        ``{"image_id", "category_id", "segmentation", "score"}`` in image then instance order.

    Examples
    --------
    >>> ds = to_coco_gt({"a.png": []}, categories=[1], image_sizes=(4, 4))
    >>> res = to_coco_results({"a.png": [Instance(1, mask=np.eye(4, dtype=bool), score=0.9)]},
    ...                       gt=ds)
    >>> res[0]["image_id"], res[0]["score"]
    (1, 0.9)
    """
    images = {img["file_name"]: img for img in gt["images"]}
    cats = (
        _categories(categories)
        if categories is not None
        else {c["id"]: c["name"] for c in gt["categories"]}
    )
    results = []
    for name in sorted(predictions):
        if name not in images:
            raise MetricInputError(f"prediction for image {name}, which has no ground truth entry")
        img = images[name]
        for k, inst in enumerate(predictions[name]):
            where = f"prediction {name}, instance {k}"
            _check_category(inst.category_id, cats, where)
            score = float(inst.score)
            if not math.isfinite(score):
                raise MetricInputError(f"{where}: score {inst.score!r} is not a finite number")
            results.append(
                {
                    "image_id": img["id"],
                    "category_id": int(inst.category_id),
                    "segmentation": _rle(inst, (img["height"], img["width"]), where),
                    "score": score,
                }
            )
    return results


def _categories(categories: Mapping[int, str] | Sequence[int]) -> dict[int, str]:
    if isinstance(categories, Mapping):
        cats = {int(k): str(v) for k, v in categories.items()}
    else:
        cats = {int(k): str(k) for k in categories}
    if not cats:
        raise MetricInputError("no categories given")
    return cats


def _check_category(category: int, cats: Mapping[int, str], where: str) -> None:
    if category not in cats:
        raise MetricInputError(f"{where}: category {category!r} is not one of {sorted(cats)}")


def _load_json(source: Any, what: str) -> Any:
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ImageReadError(f"{what} {path}: cannot read JSON ({err})") from err
    return source


def coco_mask_ap_from_json(
    gt: Mapping[str, Any] | str | os.PathLike[str],
    results: Sequence[Mapping[str, Any]] | str | os.PathLike[str],
    *,
    categories: Sequence[int] | None = None,
) -> CocoAP:
    """COCO mask AP of a COCO ground-truth dataset and a COCO results list (dicts or files).

    Parameters
    ----------
    gt : dict or path
        COCO ground-truth dataset (``images``, ``annotations``, ``categories``).
    results : list of dict or path
        COCO results: ``image_id``, ``category_id``, ``segmentation`` (RLE), ``score``.
    categories : sequence of int, optional
        Classes to report (default: all of `gt`); the mean is over these.

    Returns
    -------
    CocoAP

    Examples
    --------
    >>> m = np.zeros((8, 8), bool); m[2:6, 2:6] = True
    >>> ds = to_coco_gt({"a": [Instance(1, mask=m)]}, categories={1: "x", 2: "y"})
    >>> r = coco_mask_ap_from_json(ds, to_coco_results({"a": [Instance(1, mask=m)]}, gt=ds))
    >>> r.ap, r.per_class[2]["coco_ap"]
    (1.0, nan)
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    dataset = _load_json(gt, "COCO ground truth")
    res = _load_json(results, "COCO results")
    if not isinstance(dataset, Mapping) or not {"images", "annotations"} <= set(dataset):
        raise MetricInputError("COCO ground truth needs 'images' and 'annotations'")
    if not isinstance(res, list):
        raise MetricInputError("COCO results must be a list of detections")
    cat_ids = (
        sorted(int(c["id"]) for c in dataset.get("categories", []))
        if categories is None
        else sorted(int(c) for c in categories)
    )
    image_ids = {img["id"] for img in dataset["images"]}
    for k, det in enumerate(res):
        missing = {"image_id", "category_id", "segmentation", "score"} - set(det)
        if missing:
            raise MetricInputError(f"COCO result {k}: missing {sorted(missing)}")
        if det["image_id"] not in image_ids:
            raise MetricInputError(f"COCO result {k}: image_id {det['image_id']} is not in gt")

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = json.loads(json.dumps(dataset))
        coco_gt.createIndex()
        if res:
            coco_dt = coco_gt.loadRes(json.loads(json.dumps(list(res))))
        else:  # loadRes cannot take an empty list
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(dataset["images"]), "annotations": []}
            coco_dt.dataset["categories"] = list(dataset.get("categories", []))
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType="segm")
        evaluator.params.catIds = cat_ids
        evaluator.evaluate()
        evaluator.accumulate()
    with_gt = {int(a["category_id"]) for a in dataset["annotations"]}
    with_dt = {int(d["category_id"]) for d in res}
    return _read_precision(evaluator, cat_ids, zero=with_dt - with_gt)


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else math.nan


def _read_precision(evaluator: Any, cat_ids: Sequence[int], zero: set[int]) -> CocoAP:
    # precision: [T iou thresholds, R recall points, K classes, A area ranges, M max dets];
    # area "all" is index 0 and maxDets=100 the last, as in COCOeval.summarize. Classes in
    # `zero` (predictions, no ground truth) get precision 0 instead of COCOeval's -1.
    precision = np.array(evaluator.eval["precision"][:, :, :, 0, -1], dtype=np.float64)
    for k, c in enumerate(cat_ids):
        if c in zero:
            precision[:, :, k] = 0.0
    iou_thrs = evaluator.params.iouThrs
    t50 = int(np.flatnonzero(np.isclose(iou_thrs, 0.5))[0])
    t75 = int(np.flatnonzero(np.isclose(iou_thrs, 0.75))[0])
    per_class = {
        int(c): {
            "coco_ap": _mean_valid(precision[:, :, k]),
            "coco_ap50": _mean_valid(precision[t50, :, k]),
            "coco_ap75": _mean_valid(precision[t75, :, k]),
        }
        for k, c in enumerate(cat_ids)
    }
    return CocoAP(
        ap=_mean_valid(precision),
        ap50=_mean_valid(precision[t50]),
        ap75=_mean_valid(precision[t75]),
        per_class=per_class,
    )


def coco_mask_ap(
    gt: Mapping[str, Sequence[Instance]],
    predictions: Mapping[str, Sequence[Instance]],
    *,
    categories: Mapping[int, str] | Sequence[int],
    image_sizes: Mapping[str, ImageSize] | ImageSize | None = None,
) -> CocoAP:
    """COCO mask AP, AP50 and AP75 per class and mean, from instances.

    Parameters
    ----------
    gt : mapping of str to sequence of Instance
        Ground-truth instances per image name; every evaluated image must be a key (possibly
        with no instance).
    predictions : mapping of str to sequence of Instance
        Predicted instances with scores; images missing here have no detections.
    categories : mapping of int to str, or sequence of int
        The classes reported (and averaged over).
    image_sizes : (height, width) or mapping of image name to it, optional
        Needed where an image has polygons only.

    Returns
    -------
    CocoAP
        Means and per-class values in [0, 1]; NaN for classes with neither ground truth nor
        predictions (see the module docstring).

    Raises
    ------
    MetricInputError
        Unknown class, polygon with fewer than 3 points, mask of the wrong size, a prediction
        for an image without ground-truth entry, a non-finite score.

    Examples
    --------
    >>> m = np.zeros((8, 8), bool); m[2:6, 2:6] = True
    >>> gt = {"a": [Instance(1, mask=m)]}
    >>> coco_mask_ap(gt, {"a": [Instance(1, mask=m, score=0.8)]}, categories=[1]).ap
    1.0
    >>> coco_mask_ap(gt, {}, categories=[1]).ap50
    0.0
    """
    if image_sizes is None:
        image_sizes = _sizes_from_masks(gt, predictions)
    dataset = to_coco_gt(gt, categories=categories, image_sizes=image_sizes)
    results = to_coco_results(predictions, gt=dataset)
    return coco_mask_ap_from_json(dataset, results, categories=list(_categories(categories)))


def _sizes_from_masks(
    gt: Mapping[str, Sequence[Instance]], predictions: Mapping[str, Sequence[Instance]]
) -> dict[str, ImageSize]:
    """Image sizes from the first mask of each image (ground truth, then predictions)."""
    sizes: dict[str, ImageSize] = {}
    for name in gt:
        insts = [*gt[name], *predictions.get(name, [])]
        if not insts:
            sizes[name] = (0, 0)  # nothing to rasterise
            continue
        sizes[name] = _size_of(name, None, insts)
    return sizes


def read_chestxdet(
    source: Sequence[Mapping[str, Any]] | str | os.PathLike[str],
    *,
    categories: Mapping[int, str],
    scores: bool = False,
) -> dict[str, list[Instance]]:
    """Instances from a ChestXDet annotation or prediction list (a JSON file or the list).

    Each entry is ``{"file_name", "syms": [class names], "polygons": [[[x, y], ...]]}``; a
    prediction entry also has ``"scores"`` (one per polygon). ``boxes`` are ignored.

    Parameters
    ----------
    source : list of dict or path
        The parsed JSON list or its file.
    categories : mapping of int to str
        Class id to name (the task's label map, e.g. ``{1: "Atelectasis", ...}``).
    scores : bool
        Read ``scores`` (predictions); ground truth gets score 1.

    Returns
    -------
    dict of str to list of Instance
        Polygon instances per ``file_name``.

    Raises
    ------
    MetricInputError
        Unknown class name, lists of different lengths, missing scores.

    Examples
    --------
    >>> read_chestxdet([{"file_name": "1.png", "syms": ["Mass"],
    ...                  "polygons": [[[1, 1], [5, 1], [5, 5]]]}], categories={10: "Mass"})
    {'1.png': [Instance(category_id=10, mask=None, polygon=[[1, 1], [5, 1], [5, 5]], score=1.0)]}
    """
    entries = _load_json(source, "ChestXDet JSON")
    if not isinstance(entries, list):
        raise MetricInputError("ChestXDet JSON must be a list of {file_name, syms, polygons}")
    by_name = {name: cid for cid, name in categories.items()}
    out: dict[str, list[Instance]] = {}
    for k, entry in enumerate(entries):
        name = entry.get("file_name")
        if name is None:
            raise MetricInputError(f"ChestXDet entry {k}: no file_name")
        syms = list(entry.get("syms", []))
        polygons = list(entry.get("polygons", []))
        entry_scores = list(entry.get("scores", [])) if scores else [1.0] * len(syms)
        if not len(syms) == len(polygons) == len(entry_scores):
            raise MetricInputError(
                f"ChestXDet {name}: {len(syms)} syms, {len(polygons)} polygons and "
                f"{len(entry_scores)} scores must have the same length"
            )
        insts = out.setdefault(str(name), [])
        for sym, polygon, score in zip(syms, polygons, entry_scores, strict=True):
            if sym not in by_name:
                raise MetricInputError(f"ChestXDet {name}: unknown class {sym!r}")
            insts.append(Instance(by_name[sym], polygon=polygon, score=float(score)))
    return out
