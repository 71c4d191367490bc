"""Type aliases shared across ccbench.

Arrays are numpy arrays in (z, y, x) axis order for 3D and (y, x) for 2D, i.e. the order
``SimpleITK.GetArrayFromImage`` returns. Spacing tuples follow the same axis order, in millimetres.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = [
    "BoolArray",
    "Connectivity",
    "FloatArray",
    "IntArray",
    "LabelArray",
    "ProgressHook",
    "Spacing",
]

#: Neighbourhood of connected components: 6, 18, 26 in 3D; 4, 8 in 2D.
Connectivity: TypeAlias = Literal[4, 6, 8, 18, 26]
#: Voxel size per array axis (same order as the array axes), millimetres.
Spacing: TypeAlias = tuple[float, ...]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
IntArray: TypeAlias = npt.NDArray[np.integer]
FloatArray: TypeAlias = npt.NDArray[np.floating]
#: Integer label map (0 = background).
LabelArray: TypeAlias = npt.NDArray[np.integer]
#: ``hook(done, total, status)`` of a long step: ``done`` steps of ``total`` (None: unknown) and a
#: short status; the library calls it, the console shows it (:class:`evaluator.console.ProgressBars`).
ProgressHook: TypeAlias = Callable[[int, int | None, str], None]
