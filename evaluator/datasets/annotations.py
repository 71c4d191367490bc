"""Instance annotations of 2D datasets (ChestXDet): as stored, and rasterised like COCO."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from evaluator.typing import BoolArray

__all__ = ["Annotation", "Instance", "rasterise_polygon"]


@dataclass(frozen=True)
class Annotation:
    """One annotated instance as stored (ChestXDet): class, box and polygon in pixel units.

    Attributes
    ----------
    class_name
        The finding as written in ``syms``.
    box
        ``(x1, y1, x2, y2)``: left, top, right, bottom, pixels.
    polygon
        Contour vertices ``((x, y), ...)`` in pixels (x = column, y = row).
    """

    class_name: str
    box: tuple[float, ...]
    polygon: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Instance:
    """One instance of a 2D image: class, polygon and its rasterised mask.

    Attributes
    ----------
    class_id
        Label value from the task's label map.
    class_name
        Name of that label.
    box
        ``(x1, y1, x2, y2)`` in pixels.
    polygon
        Contour ``((x, y), ...)`` in pixels.
    mask
        Boolean array of shape ``(height, width)``: the filled polygon.
    """

    class_id: int
    class_name: str
    box: tuple[float, ...]
    polygon: tuple[tuple[float, float], ...]
    mask: BoolArray = field(repr=False, compare=False)


def rasterise_polygon(polygon: Sequence[Sequence[float]], *, height: int, width: int) -> BoolArray:
    """Fill a polygon given in pixel coordinates ``(x, y)``; COCO's rule (pycocotools).

    Parameters
    ----------
    polygon
        At least three vertices ``(x, y)``; x is the column, y the row, in pixels.
    height, width
        Shape of the output mask.

    Returns
    -------
    numpy.ndarray
        Boolean, shape ``(height, width)``; pixels outside the image are clipped.

    Examples
    --------
    >>> m = rasterise_polygon([(1, 1), (5, 1), (5, 3), (1, 3)], height=6, width=8)
    >>> int(m.sum()), m.shape
    (8, (6, 8))
    """
    from pycocotools import mask as mask_utils

    flat = [float(c) for xy in polygon for c in xy]
    if len(flat) < 6:
        return np.zeros((height, width), dtype=bool)
    import warnings

    rles = mask_utils.frPyObjects([flat], height, width)
    with warnings.catch_warnings():  # pycocotools' __array__ predates numpy 2's copy keyword
        warnings.simplefilter("ignore", DeprecationWarning)
        decoded = mask_utils.decode(mask_utils.merge(rles))
    return np.asarray(decoded, dtype=bool)
