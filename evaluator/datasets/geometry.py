"""The grid of an image (size, spacing, origin, direction) and the same-grid check.

Geometry contract: :class:`ImageGeometry` keeps SimpleITK's own order ``(x, y, z)`` for size,
spacing (millimetres), origin (millimetres) and direction (row-major cosines);
:attr:`ImageGeometry.array_spacing` gives the spacing in numpy array order ``(z, y, x)``, as the
metrics expect it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from evaluator.errors import GeometryMismatchError
from evaluator.typing import Spacing

__all__ = ["ImageGeometry", "check_same_geometry", "image_geometry"]


@dataclass(frozen=True)
class ImageGeometry:
    """The grid of an image, in SimpleITK order ``(x, y[, z])``.

    Attributes
    ----------
    size
        Voxels per axis.
    spacing
        Voxel size per axis, millimetres.
    origin
        Physical position of the first voxel centre, millimetres.
    direction
        Direction cosines, row-major, ``dim * dim`` values.
    """

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    @property
    def dimension(self) -> int:
        """Number of axes (2 or 3)."""
        return len(self.size)

    @property
    def array_spacing(self) -> Spacing:
        """Spacing in numpy array order ``(z, y, x)`` / ``(y, x)``, millimetres."""
        return tuple(reversed(self.spacing))

    @property
    def array_shape(self) -> tuple[int, ...]:
        """Shape of ``GetArrayFromImage`` for a scalar image."""
        return tuple(reversed(self.size))


def image_geometry(img: sitk.Image) -> ImageGeometry:
    """Size, spacing, origin and direction of an image.

    Examples
    --------
    >>> img = sitk.Image([4, 3], sitk.sitkUInt8)
    >>> img.SetSpacing((0.5, 2.0))
    >>> geo = image_geometry(img)
    >>> geo.size, geo.spacing, geo.array_spacing, geo.array_shape
    ((4, 3), (0.5, 2.0), (2.0, 0.5), (3, 4))
    """
    return ImageGeometry(
        size=tuple(int(v) for v in img.GetSize()),
        spacing=tuple(float(v) for v in img.GetSpacing()),
        origin=tuple(float(v) for v in img.GetOrigin()),
        direction=tuple(float(v) for v in img.GetDirection()),
    )


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(repr(round(float(v), 4)) for v in values) + ")"


def check_same_geometry(
    a: sitk.Image | ImageGeometry,
    b: sitk.Image | ImageGeometry,
    *,
    what: str,
    reference: str = "reference",
    tolerance: float = 1e-3,
    direction_tolerance: float = 1e-4,
) -> None:
    """Raise unless ``a`` lies on the grid of ``b``.

    Parameters
    ----------
    a, b
        The image to check and the reference image (or their :class:`ImageGeometry`).
    what
        Names ``a`` in the message, e.g. ``"prediction CHUM-001"`` or a file path.
    reference
        Names ``b`` in the message.
    tolerance
        Largest accepted absolute difference of spacing and origin values, millimetres.
        Sizes must be equal.
    direction_tolerance
        Largest accepted absolute difference of a direction cosine.

    Raises
    ------
    GeometryMismatchError
        Naming the first differing property (dimension, size, spacing, origin, direction) with
        both values, in SimpleITK ``(x, y, z)`` order.

    Examples
    --------
    >>> a = sitk.Image([4, 4, 4], sitk.sitkUInt8)
    >>> b = sitk.Image([4, 4, 4], sitk.sitkUInt8)
    >>> a.SetSpacing((1.0, 1.0, 3.0))
    >>> b.SetSpacing((0.98, 0.98, 3.27))
    >>> check_same_geometry(a, b, what="prediction CHUM-001")
    Traceback (most recent call last):
    ...
    evaluator.errors.GeometryMismatchError: prediction CHUM-001: spacing (1.0, 1.0, 3.0) mm does not match reference (0.98, 0.98, 3.27) mm
    >>> b.SetSpacing((1.0, 1.0, 3.0002))
    >>> check_same_geometry(a, b, what="prediction CHUM-001")
    """
    ga = a if isinstance(a, ImageGeometry) else image_geometry(a)
    gb = b if isinstance(b, ImageGeometry) else image_geometry(b)
    if ga.dimension != gb.dimension:
        raise GeometryMismatchError(
            f"{what}: {ga.dimension}D image does not match {gb.dimension}D {reference}"
        )
    if ga.size != gb.size:
        raise GeometryMismatchError(
            f"{what}: size {ga.size} voxels does not match {reference} {gb.size} voxels"
        )
    for name, tol, unit in (
        ("spacing", tolerance, " mm"),
        ("origin", tolerance, " mm"),
        ("direction", direction_tolerance, ""),
    ):
        va, vb = getattr(ga, name), getattr(gb, name)
        if not np.allclose(va, vb, rtol=0.0, atol=tol):
            raise GeometryMismatchError(
                f"{what}: {name} {_fmt(va)}{unit} does not match {reference} {_fmt(vb)}{unit}"
            )
