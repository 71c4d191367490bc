"""Instances from a 2D label map: each connected component of a class is one scored instance.

The 2D baseline (``monai-unet-2d``, ChestXDet) writes its instances as a COCO results list,
``[{"image_id", "category_id", "segmentation": {"size": [h, w], "counts": [...]}, "score"}]``,
with uncompressed (column-major) RLE, which ccbench's evaluation reads like compressed RLE.
An instance's score is the mean softmax probability of its class over its pixels, so COCO AP
ranks confident instances first.

This module is copied into the baselines' images: numpy and SimpleITK only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

__all__ = ["encode_rle", "label_instances"]


def encode_rle(mask: npt.ArrayLike) -> dict[str, Any]:
    """Uncompressed COCO RLE of a 2D mask: run lengths over the column-major pixels,
    starting with a run of zeros.

    Examples
    --------
    >>> encode_rle([[0, 1], [0, 1]])
    {'size': [2, 2], 'counts': [2, 2]}
    >>> encode_rle([[1, 1], [0, 0]])
    {'size': [2, 2], 'counts': [0, 1, 1, 1, 1]}
    """
    arr = np.asarray(mask, dtype=bool)
    flat = arr.ravel(order="F").astype(np.int8)
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        runs = [0, *runs]
    return {"size": [int(arr.shape[0]), int(arr.shape[1])], "counts": [int(r) for r in runs]}


def label_instances(
    labels: npt.NDArray[np.integer[Any]],
    confidence: npt.NDArray[np.floating[Any]],
    *,
    image_id: str,
    min_pixels: int = 10,
    classes: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """COCO results of one image: one item per 8-connected component of each class.

    Parameters
    ----------
    labels
        Class per pixel (0: background), shape ``(height, width)``.
    confidence
        Probability of the winning class per pixel (same shape).
    image_id
        The case id.
    min_pixels
        Smaller components are dropped (noise).
    classes
        Classes to report (default: every non-zero value present).

    Examples
    --------
    >>> lab = np.zeros((6, 6), np.uint8); lab[0:2, 0:2] = 3; lab[4:6, 4:6] = 3
    >>> items = label_instances(lab, np.full((6, 6), 0.5), image_id="a", min_pixels=1)
    >>> [(i["category_id"], round(i["score"], 2), sum(i["segmentation"]["counts"])) for i in items]
    [(3, 0.5, 36), (3, 0.5, 36)]
    """
    out: list[dict[str, Any]] = []
    present = [int(v) for v in np.unique(labels) if v != 0]
    for value in classes if classes is not None else present:
        mask = np.asarray(labels == value, dtype=np.uint8)
        if not mask.any():
            continue
        components = sitk.GetArrayFromImage(
            sitk.ConnectedComponent(sitk.GetImageFromArray(mask), True)
        )
        for k in range(1, int(components.max()) + 1):
            part = components == k
            if int(part.sum()) < min_pixels:
                continue
            out.append(
                {
                    "image_id": image_id,
                    "category_id": int(value),
                    "segmentation": encode_rle(part),
                    "score": float(np.asarray(confidence)[part].mean()),
                }
            )
    return out
