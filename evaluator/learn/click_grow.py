"""click-grow: interactive lesion segmentation by region growing in SUV from each lesion click.

No learning. For each lesion click (``tumor`` in the click file, voxel indices (x, y, z)):

1. the click's uptake ``u`` is the largest SUV in its 3×3×3 neighbourhood;
2. the region is the 26-connected set of voxels reachable from the click with SUV at least
   ``fraction × u`` (``fraction`` starts at 0.4, the common "40 % of SUVmax" rule);
3. while the region reaches a background click, ``fraction`` rises by 0.1 (up to 0.9); a region
   that still reaches one is dropped: the background clicks stop the growth.

The prediction is the union of the regions (label 1); with no lesion click it is empty. The
corrective clicks of the harness therefore improve it click after click, which is what an
interactive entry's curve shows.

This module is copied into the baselines' images: numpy and SimpleITK only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

__all__ = ["click_lists", "grow_from_clicks"]

#: First and last share of the click's uptake that bounds a region, and the step between them.
START_FRACTION, LAST_FRACTION, STEP = 0.4, 0.9, 0.1


def click_lists(prompt: Mapping[str, Any]) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """The lesion and background clicks of a case's prompt (grand-challenge "Multiple points").

    Examples
    --------
    >>> click_lists({"clicks": {"points": [{"point": [1, 2, 3], "name": "tumor"},
    ...                                    {"point": [0, 0, 0], "name": "background"}]}})
    ([(1, 2, 3)], [(0, 0, 0)])
    """
    points = (prompt.get("clicks") or {}).get("points", [])
    tumor = [tuple(int(v) for v in p["point"]) for p in points if p.get("name") == "tumor"]
    background = [
        tuple(int(v) for v in p["point"]) for p in points if p.get("name") == "background"
    ]
    return tumor, background


def _inside(index: Sequence[int], size: Sequence[int]) -> bool:
    return len(index) == len(size) and all(0 <= i < n for i, n in zip(index, size, strict=True))


def grow_from_clicks(
    suv: sitk.Image,
    tumor: Sequence[Sequence[int]],
    background: Sequence[Sequence[int]] = (),
) -> sitk.Image:
    """The label image (uint8, 1 = lesion) grown from the clicks, on the SUV image's grid.

    Parameters
    ----------
    suv
        PET in SUV.
    tumor, background
        Clicks as voxel indices (x, y, z); clicks outside the image are ignored.

    Examples
    --------
    >>> arr = np.zeros((20, 20, 20), np.float32)
    >>> arr[8:12, 8:12, 8:12] = 10.0          # a hot cube (z, y, x)
    >>> arr[8:12, 12:16, 8:12] = 5.0           # warm tissue touching it
    >>> img = sitk.GetImageFromArray(arr)
    >>> grown = sitk.GetArrayFromImage(grow_from_clicks(img, [(9, 9, 9)]))
    >>> int(grown.sum())                       # 10 and 5 are both >= 0.4 x 10
    128
    >>> grown = sitk.GetArrayFromImage(grow_from_clicks(img, [(9, 9, 9)], [(9, 14, 9)]))
    >>> int(grown.sum())                       # the background click stops the warm part
    64
    """
    size = suv.GetSize()
    suv = sitk.Cast(suv, sitk.sitkFloat32)
    values = sitk.GetArrayViewFromImage(suv)
    stops = [tuple(int(v) for v in b) for b in background if _inside(b, size)]
    out = np.zeros(values.shape, dtype=np.uint8)
    for click in tumor:
        if not _inside(click, size):
            continue
        x, y, z = (int(v) for v in click)
        window = values[max(z - 1, 0) : z + 2, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
        uptake = float(window.max())
        if uptake <= 0 or out[z, y, x]:
            continue
        fraction = START_FRACTION
        while fraction <= LAST_FRACTION + 1e-9:
            region = sitk.ConnectedThreshold(
                suv,
                seedList=[(x, y, z)],
                lower=min(fraction * uptake, float(values[z, y, x])),
                upper=float(np.finfo(np.float32).max),
                replaceValue=1,
                connectivity=sitk.ConnectedThresholdImageFilter.FullConnectivity,
            )
            grown = sitk.GetArrayViewFromImage(region)
            if not any(grown[s[2], s[1], s[0]] for s in stops):
                out |= grown.astype(np.uint8)
                break
            fraction += STEP
    image = sitk.GetImageFromArray(out)
    image.CopyInformation(suv)
    return image
