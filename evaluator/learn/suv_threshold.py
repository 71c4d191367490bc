"""The ``suv-threshold`` baseline: a fixed SUV threshold made a fair floor (no learning).

Steps, as the thresholding baselines of the autoPET literature:

1. voxels with ``SUV >= threshold`` (default 4.0; ``CCBENCH_SUV_THRESHOLD``);
2. their 26-connected components; components below ``min_volume_ml`` (default 0.1 mL;
   ``CCBENCH_MIN_VOLUME_ML``) are dropped (noise);
3. physiological uptake is suppressed: the body's cranio-caudal extent is found on CT
   (``HU > -500``); components whose centre lies in its cranial 15 % (the brain) are dropped, and
   so is the largest component whose centre lies in its caudal 35 % within 15 % of the body's
   width from the midline (the bladder).

Kidneys, heart and liver uptake are left as they are: that is what an organ-aware method
(``anatomy-guided``) removes. HECKTOR's head-and-neck field of view holds no brain or bladder
extent worth removing, so there only steps 1 and 2 apply (``suppress=False``); its components
are labelled 1 (GTVp).

This module is copied into the baselines' images: numpy and SimpleITK only.
"""

from __future__ import annotations

import os

import numpy as np
import SimpleITK as sitk

__all__ = ["segment_suv"]

_CRANIAL_SHARE = 0.15
_CAUDAL_SHARE = 0.35
_MIDLINE_SHARE = 0.15


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def _body_extent(ct: sitk.Image) -> tuple[float, float, float, float] | None:
    """Physical ``(z_low, z_high, x_centre, x_half_width)`` of the body (CT > -500 HU)."""
    body = sitk.BinaryThreshold(sitk.Cast(ct, sitk.sitkFloat32), -500.0, 1e30, 1, 0)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(body)
    if 1 not in stats.GetLabels():
        return None
    x0, y0, z0, sx, sy, sz = stats.GetBoundingBox(1)
    corners = [
        ct.TransformIndexToPhysicalPoint((x, y, z))
        for x in (x0, x0 + sx - 1)
        for y in (y0, y0 + sy - 1)
        for z in (z0, z0 + sz - 1)
    ]
    zs = [c[2] for c in corners]
    xs = [c[0] for c in corners]
    return min(zs), max(zs), (min(xs) + max(xs)) / 2.0, (max(xs) - min(xs)) / 2.0


def segment_suv(
    suv: sitk.Image,
    ct: sitk.Image | None = None,
    *,
    threshold: float | None = None,
    min_volume_ml: float | None = None,
    suppress: bool = True,
) -> sitk.Image:
    """The label image (uint8, 1 = lesion) of one case, on the SUV image's grid.

    Parameters
    ----------
    suv
        PET in SUV.
    ct
        CT on the same grid (for the body extent); without it nothing is suppressed.
    threshold, min_volume_ml
        SUV threshold and smallest component kept (mL); default from the environment.
    suppress
        Drop brain and bladder uptake (step 3 of the module docstring).

    Examples
    --------
    >>> arr = np.zeros((20, 20, 20), np.float32)
    >>> arr[8:12, 8:12, 8:12] = 10.0   # a 4x4x4 mm hot cube: 0.064 mL
    >>> arr[2, 2, 2] = 10.0            # one hot voxel: noise
    >>> seg = segment_suv(sitk.GetImageFromArray(arr), threshold=4.0, min_volume_ml=0.01)
    >>> int(sitk.GetArrayFromImage(seg).sum())
    64
    """
    threshold = _env_float("CCBENCH_SUV_THRESHOLD", 4.0) if threshold is None else threshold
    min_ml = _env_float("CCBENCH_MIN_VOLUME_ML", 0.1) if min_volume_ml is None else min_volume_ml
    suv = sitk.Cast(suv, sitk.sitkFloat32)
    hot = sitk.BinaryThreshold(suv, float(threshold), 1e30, 1, 0)
    components = sitk.ConnectedComponent(hot, True)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(components)
    keep = [lab for lab in stats.GetLabels() if stats.GetPhysicalSize(lab) / 1000.0 >= min_ml]
    extent = _body_extent(ct) if (suppress and ct is not None) else None
    if extent is not None:
        z_low, z_high, x_centre, x_half = extent
        length = max(z_high - z_low, 1e-6)

        def height(lab: int) -> float:
            return (stats.GetCentroid(lab)[2] - z_low) / length

        keep = [lab for lab in keep if height(lab) <= 1.0 - _CRANIAL_SHARE]
        pelvic = [
            lab
            for lab in keep
            if height(lab) <= _CAUDAL_SHARE
            and abs(stats.GetCentroid(lab)[0] - x_centre) <= _MIDLINE_SHARE * x_half
        ]
        if pelvic:
            bladder = max(pelvic, key=stats.GetPhysicalSize)
            keep = [lab for lab in keep if lab != bladder]
    arr = sitk.GetArrayViewFromImage(components)
    mask = np.isin(arr, keep).astype(np.uint8)
    out = sitk.GetImageFromArray(mask)
    out.CopyInformation(suv)
    return out
