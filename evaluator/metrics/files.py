"""Score one prediction file against one reference file (the ``ccbench metrics`` command).

Both files are read with SimpleITK (NIfTI, MHA, PNG, ...), must lie on the same grid (size,
spacing, origin, direction) and hold integer labels (whole-valued floats are accepted; NaN,
fractions and negative values are not). The spacing comes from the reference image, reversed into
array order.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import SimpleITK as sitk

from evaluator.errors import ImageReadError, InvalidLabelError
from evaluator.metrics.api import CaseMetrics, compute_metrics
from evaluator.metrics.registry import VOXEL_METRICS
from evaluator.typing import Connectivity, LabelArray

if TYPE_CHECKING:
    from evaluator.metrics.cc import CCMode
    from evaluator.metrics.lesion import LesionMatch

__all__ = ["MAX_LABEL", "physical_centres", "read_label_map", "score_files"]

#: Largest label value accepted in a label image.
MAX_LABEL = 65535


def read_label_map(image: sitk.Image, *, what: str) -> LabelArray:
    """The integer array of a label image, checked for NaN, fractions and negative values.

    Parameters
    ----------
    image : SimpleITK.Image
        Scalar label image.
    what : str
        Names the image in messages (role and path).

    Returns
    -------
    numpy.ndarray
        ``(z, y, x)`` or ``(y, x)`` integer array.

    Raises
    ------
    InvalidLabelError
        Multi-component pixels, NaN, non-integer or negative values, or labels above
        :data:`MAX_LABEL`.

    Examples
    --------
    >>> import numpy as np
    >>> img = sitk.GetImageFromArray(np.array([[0.0, 2.0]], dtype=np.float32))
    >>> read_label_map(img, what="prediction p.nii.gz").tolist()
    [[0, 2]]
    """
    from evaluator.datasets.labels import label_array

    if image.GetNumberOfComponentsPerPixel() == 1:
        stats = sitk.MinimumMaximumImageFilter()
        stats.Execute(image)
        hi = stats.GetMaximum()
        if math.isfinite(hi) and hi > MAX_LABEL:
            raise InvalidLabelError(f"{what}: label value {hi:g} exceeds {MAX_LABEL}")
        top = int(hi) if math.isfinite(hi) else 1
    else:
        top = 1
    return label_array(image, labels=range(1, max(top, 1) + 1), what=what)


def score_files(
    pred: str | Path,
    ref: str | Path,
    *,
    metrics: Sequence[str] | None = None,
    labels: Sequence[int] | None = None,
    connectivity: int | None = None,
    nsd_tolerance_mm: float = 1.0,
    lesion_match: LesionMatch = "any_overlap",
    cc_mode: CCMode = "mm",
    cc_worst_distance_mm: float = 50.0,
) -> CaseMetrics:
    """Read a prediction and a reference label image and compute metrics on them.

    Parameters
    ----------
    pred, ref : str or Path
        Label image files on the same grid.
    metrics : sequence of str, optional
        Metric names; default: every voxel metric of the registry but the opt-in topology
        metrics (:data:`~evaluator.metrics.registry.VOXEL_METRICS`).
    labels, connectivity, nsd_tolerance_mm, lesion_match, cc_mode, cc_worst_distance_mm
        As :func:`evaluator.metrics.api.compute_metrics`.

    Returns
    -------
    CaseMetrics
        With each reference component's centre in the reference's physical space
        (``ComponentInfo.centre_mm``, ``(x, y, z)`` mm).

    Raises
    ------
    ImageReadError
        The reference is missing or cannot be decoded.
    RejectedPrediction
        The prediction is refused by :func:`evaluator.ingest.read_prediction` (format, link,
        size declared in its header, decoding, NaN).
    GeometryMismatchError
        Size, spacing, origin or direction differ (the message names both files).
    InvalidLabelError
        NaN, non-integer, negative or too large label values.
    MetricInputError, UnknownMetricError
        Bad options or metric names.
    """
    from evaluator.datasets.geometry import check_same_geometry, image_geometry
    from evaluator.datasets.imageio import read_image
    from evaluator.ingest import read_prediction

    if not os.path.lexists(pred):
        raise ImageReadError(f"{pred}: file does not exist")
    ref_img = read_image(ref)
    # The prediction goes through the same ingestion as `ccbench evaluate` and `ccbench run`.
    pred_img = read_prediction(pred, what=f"prediction {pred}", expected_size=ref_img.GetSize())
    check_same_geometry(pred_img, ref_img, what=f"prediction {pred}", reference=f"reference {ref}")
    pred_arr = read_label_map(pred_img, what=f"prediction {pred}")
    ref_arr = read_label_map(ref_img, what=f"reference {ref}")
    if labels is not None:
        absent = [int(v) for v in labels if not (pred_arr == v).any() and not (ref_arr == v).any()]
        if absent:
            raise InvalidLabelError(
                f"labels {absent} are in neither {pred} nor {ref} (a typo? the images hold "
                f"{sorted({int(v) for v in np.unique(ref_arr)} | {int(v) for v in np.unique(pred_arr)})})"
            )
    result = compute_metrics(
        pred_arr,
        ref_arr,
        spacing=image_geometry(ref_img).array_spacing,
        metrics=VOXEL_METRICS if metrics is None else metrics,
        labels=labels,
        connectivity=cast(Connectivity | None, connectivity),
        nsd_tolerance_mm=nsd_tolerance_mm,
        lesion_match=lesion_match,
        cc_mode=cc_mode,
        cc_worst_distance_mm=cc_worst_distance_mm,
    )
    physical_centres(result, ref_img)
    return result


def physical_centres(result: CaseMetrics, image: sitk.Image) -> None:
    """Set every component's ``centre_mm``: its centre in ``image``'s physical space,
    ``(x, y, z)`` mm as a viewer shows it (in place)."""
    for comps in result.components.values():
        comps[:] = [
            replace(
                c,
                centre_mm=tuple(
                    image.TransformContinuousIndexToPhysicalPoint(
                        [float(v) for v in c.centre_index[::-1]]
                    )
                ),
            )
            for c in comps
        ]
