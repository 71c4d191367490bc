"""Degradation operators: pure, seeded functions that turn a reference mask into a prediction.

Each operator takes a boolean reference mask (``(z, y, x)`` in 3D or ``(y, x)`` in 2D), works on
its connected components and returns a new boolean array of the same shape; the input is never
modified. Components are labelled with :func:`evaluator.metrics.lesion.label_components`
(26-connectivity in 3D, 8 in 2D unless ``connectivity`` says otherwise) and ranked by voxel
count, ties broken by label order, so "the ``n`` smallest" is always the same set for the same
mask.

Morphology comes in two flavours:

* voxel steps: ``iterations`` of a structuring element, ``"full"`` (the 3x3x3 / 3x3 cube) or
  ``"cross"`` (the 6- / 4-connected cross), as in the toy studies of the CC-Metrics chapter;
* physical margins: ``margin_mm`` with the image ``spacing`` (same axis order as the array), a
  Euclidean ball on the anisotropic grid (``scipy.ndimage.distance_transform_edt`` with
  ``sampling``). A voxel is removed by erosion when it lies within ``margin_mm`` of the
  background (voxel centres, the outside of the image counts as background); dilation adds every
  voxel within ``margin_mm`` of the mask.

The dataset studies call these through :data:`OPERATORS` by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal, TypeAlias

import numpy as np
from scipy import ndimage

from evaluator.choices import Order
from evaluator.errors import SimulationError
from evaluator.metrics._grid import CONNECTIVITIES, default_connectivity
from evaluator.typing import BoolArray, Connectivity, IntArray, Spacing

__all__ = [
    "OPERATORS",
    "Order",
    "Structure",
    "component_volumes",
    "dilate_all",
    "drop_components",
    "enlarge_components",
    "erode_all",
    "erode_components",
    "insert_components",
    "label_components",
    "select_components",
    "shift_components",
]

#: Which end of the size ranking an operator edits.
#: Structuring element of voxel-step morphology: the full cube or the face-connected cross.
Structure: TypeAlias = Literal["full", "cross"]


def _as_bool(mask: np.ndarray, name: str = "reference") -> BoolArray:
    if mask.ndim not in (2, 3):
        raise SimulationError(f"{name}: expected a 2D or 3D mask, got shape {mask.shape}")
    return np.asarray(mask).astype(bool, copy=False)


def _default_connectivity(ndim: int, connectivity: Connectivity | None) -> Connectivity:
    if connectivity is None:
        return default_connectivity(ndim)
    allowed = CONNECTIVITIES[ndim]
    if connectivity not in allowed:
        raise SimulationError(
            f"connectivity {connectivity} is not valid in {ndim}D (use one of {allowed})"
        )
    return connectivity


def label_components(
    mask: BoolArray, *, connectivity: Connectivity | None = None
) -> tuple[IntArray, int]:
    """Label the connected components of a mask.

    Parameters
    ----------
    mask
        Boolean array, 2D ``(y, x)`` or 3D ``(z, y, x)``.
    connectivity
        6/18/26 in 3D, 4/8 in 2D; default 26 / 8.

    Returns
    -------
    labels, n
        ``labels`` (int32) has the shape of ``mask``, 0 = background, components numbered
        ``1..n`` as :func:`evaluator.metrics.lesion.label_components` numbers them; ``n`` is 0
        for an empty mask.

    Examples
    --------
    >>> m = np.zeros((4, 4), bool); m[0, 0] = m[1, 1] = m[3, 3] = True
    >>> label_components(m)[1], label_components(m, connectivity=4)[1]
    (2, 3)
    """
    from evaluator.metrics.lesion import label_components as _label

    mask = _as_bool(mask, "mask")
    labels, n = _label(mask, connectivity=_default_connectivity(mask.ndim, connectivity))
    return labels.astype(np.int32, copy=False), int(n)


def component_volumes(labels: IntArray, n: int) -> IntArray:
    """Voxel count of components ``1..n`` (index 0 is component 1).

    Examples
    --------
    >>> component_volumes(np.array([[1, 1, 0, 2]]), 2).tolist()
    [2, 1]
    """
    labels = np.asarray(labels)
    return np.bincount(labels[labels != 0], minlength=n + 1)[1 : n + 1]  # foreground only: fast


def select_components(labels: IntArray, n: int, *, order: Order, count: int) -> list[int]:
    """Component ids of the ``count`` smallest or largest of ``n`` components.

    Ranking is by voxel count; ties keep label order (the lower id comes first among equals for
    both orders), so the choice is deterministic.

    Raises
    ------
    SimulationError
        When ``count`` is negative or larger than ``n``, or ``order`` is unknown.

    Examples
    --------
    >>> lab = np.array([[1, 1, 1, 0, 2, 0, 3, 3]])
    >>> select_components(lab, 3, order="smallest", count=2)
    [2, 3]
    >>> select_components(lab, 3, order="largest", count=1)
    [1]
    """
    if order not in ("smallest", "largest"):
        raise SimulationError(f"order must be 'smallest' or 'largest', got {order!r}")
    if count < 0 or count > n:
        raise SimulationError(
            f"cannot select {count} components: the reference has {n} connected components"
        )
    volumes = component_volumes(labels, n)
    key = volumes if order == "smallest" else -volumes
    ranked = np.argsort(key, kind="stable")[:count]
    return [int(i) + 1 for i in ranked]


def _structure(ndim: int, structure: Structure) -> BoolArray:
    if structure not in ("full", "cross"):
        raise SimulationError(f"structure must be 'full' or 'cross', got {structure!r}")
    return ndimage.generate_binary_structure(ndim, ndim if structure == "full" else 1)


def _spacing(mask: BoolArray, spacing: Spacing | None) -> tuple[float, ...]:
    if spacing is None:
        raise SimulationError("margin_mm needs the image spacing (spacing=...)")
    if len(spacing) != mask.ndim or any(s <= 0 for s in spacing):
        raise SimulationError(
            f"spacing {tuple(spacing)} does not fit a {mask.ndim}D mask (one positive value per axis, mm)"
        )
    return tuple(float(s) for s in spacing)


def _morph(
    mask: BoolArray,
    *,
    grow: bool,
    iterations: int,
    structure: Structure,
    margin_mm: float | None,
    spacing: Spacing | None,
) -> BoolArray:
    """Dilate (``grow``) or erode a mask by voxel steps or by a physical margin."""
    if margin_mm is not None:
        sampling = _spacing(mask, spacing)
        if margin_mm < 0:
            raise SimulationError(f"margin_mm must be >= 0, got {margin_mm}")
        if not mask.any():
            return mask.copy()
        return _threshold_morph(
            mask,
            grow=grow,
            distance=lambda m: ndimage.distance_transform_edt(m, sampling=sampling),
            radius=margin_mm,
        )
    if iterations < 0:
        raise SimulationError(f"iterations must be >= 0, got {iterations}")
    if iterations == 0 or not mask.any():
        return mask.copy()
    element = _structure(mask.ndim, structure)
    if iterations == 1:
        op = ndimage.binary_dilation if grow else ndimage.binary_erosion
        return np.asarray(op(mask, structure=element, iterations=1))
    # k steps of the cube / cross are one step of the chessboard / taxicab ball of radius k:
    # one chamfer distance transform (exact for these two metrics) instead of k passes
    metric = "chessboard" if structure == "full" else "taxicab"
    return _threshold_morph(
        mask,
        grow=grow,
        distance=lambda m: ndimage.distance_transform_cdt(m, metric=metric),
        radius=iterations,
    )


def _threshold_morph(
    mask: BoolArray,
    *,
    grow: bool,
    distance: Callable[[BoolArray], np.ndarray],
    radius: float,
) -> BoolArray:
    """Dilate or erode ``mask`` by thresholding a distance transform at ``radius``.

    ``distance`` maps a mask to the distance of each foreground voxel to the nearest background
    voxel. Erosion pads the mask by one background voxel so the outside of the image counts as
    background.
    """
    if grow:
        return mask | (distance(~mask) <= radius)
    inner = distance(np.pad(mask, 1)) > radius
    return np.asarray(inner[tuple(slice(1, -1) for _ in range(mask.ndim))])


def dilate_all(
    ref: BoolArray,
    *,
    iterations: int = 1,
    structure: Structure = "full",
    margin_mm: float | None = None,
    spacing: Spacing | None = None,
) -> BoolArray:
    """Uniform dilation of the whole mask (over-segmentation of every lesion).

    Parameters
    ----------
    ref
        Boolean reference, 2D or 3D.
    iterations, structure
        Voxel steps of the ``"full"`` cube or the ``"cross"``; ignored when ``margin_mm`` is set.
    margin_mm, spacing
        Physical margin (mm) on the grid of ``spacing`` (mm per array axis).

    Examples
    --------
    >>> m = np.zeros((5, 5), bool); m[2, 2] = True
    >>> int(dilate_all(m).sum()), int(dilate_all(m, structure="cross").sum())
    (9, 5)
    >>> int(dilate_all(m, margin_mm=1.0, spacing=(2.0, 1.0)).sum())
    3
    """
    return _morph(
        _as_bool(ref),
        grow=True,
        iterations=iterations,
        structure=structure,
        margin_mm=margin_mm,
        spacing=spacing,
    )


def erode_all(
    ref: BoolArray,
    *,
    iterations: int = 1,
    structure: Structure = "full",
    margin_mm: float | None = None,
    spacing: Spacing | None = None,
) -> BoolArray:
    """Uniform erosion of the whole mask (under-segmentation of every lesion).

    Voxel steps treat the outside of the image as background (``scipy.ndimage.binary_erosion``
    with ``border_value=0``), as does the physical margin. Small components vanish.

    Examples
    --------
    >>> m = np.zeros((7, 7), bool); m[1:6, 1:6] = True
    >>> int(erode_all(m).sum()), int(erode_all(m, iterations=2).sum())
    (9, 1)
    >>> erode_all(m, margin_mm=1.5, spacing=(2.0, 1.0)).sum(axis=1).tolist()
    [0, 3, 3, 3, 3, 3, 0]
    """
    return _morph(
        _as_bool(ref),
        grow=False,
        iterations=iterations,
        structure=structure,
        margin_mm=margin_mm,
        spacing=spacing,
    )


def _chosen(
    ref: BoolArray, n: int, order: Order, connectivity: Connectivity | None
) -> tuple[IntArray, int, list[int]]:
    labels, count = label_components(ref, connectivity=connectivity)
    return labels, count, select_components(labels, count, order=order, count=n)


def drop_components(
    ref: BoolArray,
    n: int,
    *,
    order: Order = "smallest",
    connectivity: Connectivity | None = None,
) -> BoolArray:
    """Remove the ``n`` smallest or largest components (false negatives).

    Raises
    ------
    SimulationError
        When the reference has fewer than ``n`` components.

    Examples
    --------
    >>> m = np.array([[1, 1, 0, 1, 0, 1, 1, 1]], bool)
    >>> drop_components(m, 1).astype(int).tolist()
    [[1, 1, 0, 0, 0, 1, 1, 1]]
    >>> drop_components(m, 1, order="largest").astype(int).tolist()
    [[1, 1, 0, 1, 0, 0, 0, 0]]
    """
    ref = _as_bool(ref)
    labels, _, ids = _chosen(ref, n, order, connectivity)
    return ref & ~np.isin(labels, ids)


def _edit_components(
    ref: BoolArray,
    n: int,
    *,
    grow: bool,
    order: Order,
    iterations: int,
    structure: Structure,
    margin_mm: float | None,
    spacing: Spacing | None,
    connectivity: Connectivity | None,
) -> BoolArray:
    labels, _, ids = _chosen(ref, n, order, connectivity)
    if not ids:
        return ref.copy()
    chosen = np.isin(labels, ids)
    edited = _morph(
        chosen,
        grow=grow,
        iterations=iterations,
        structure=structure,
        margin_mm=margin_mm,
        spacing=spacing,
    )
    # each chosen component is edited on its own mask: erosion is not stopped by a neighbour
    return (ref & ~chosen) | edited


def enlarge_components(
    ref: BoolArray,
    n: int,
    *,
    order: Order = "smallest",
    iterations: int = 1,
    structure: Structure = "full",
    margin_mm: float | None = None,
    spacing: Spacing | None = None,
    connectivity: Connectivity | None = None,
) -> BoolArray:
    """Dilate the ``n`` smallest or largest components (over-segmentation).

    The other components are left as they are; a dilated component may touch a neighbour.

    Examples
    --------
    >>> m = np.zeros((1, 9), bool); m[0, 1] = True; m[0, 5:8] = True
    >>> enlarge_components(m, 1, structure="cross").astype(int).tolist()
    [[1, 1, 1, 0, 0, 1, 1, 1, 0]]
    """
    return _edit_components(
        _as_bool(ref),
        n,
        grow=True,
        order=order,
        iterations=iterations,
        structure=structure,
        margin_mm=margin_mm,
        spacing=spacing,
        connectivity=connectivity,
    )


def erode_components(
    ref: BoolArray,
    n: int,
    *,
    order: Order = "smallest",
    iterations: int = 1,
    structure: Structure = "full",
    margin_mm: float | None = None,
    spacing: Spacing | None = None,
    connectivity: Connectivity | None = None,
) -> BoolArray:
    """Erode the ``n`` smallest or largest components (under-segmentation).

    A component thinner than the erosion vanishes (it becomes a false negative).

    Examples
    --------
    >>> m = np.zeros((5, 12), bool); m[1:4, 1:4] = True; m[0:5, 6:11] = True
    >>> int(erode_components(m, 1).sum()), int(erode_components(m, 1, order="largest").sum())
    (26, 18)
    """
    return _edit_components(
        _as_bool(ref),
        n,
        grow=False,
        order=order,
        iterations=iterations,
        structure=structure,
        margin_mm=margin_mm,
        spacing=spacing,
        connectivity=connectivity,
    )


def _shifted(mask: BoolArray, offset: Sequence[int]) -> BoolArray:
    """Translate a mask by whole voxels; what leaves the image is cut off (no wrap-around)."""
    out = np.zeros_like(mask)
    src: list[slice] = []
    dst: list[slice] = []
    for size, d in zip(mask.shape, offset, strict=True):
        d = int(d)
        if abs(d) >= size:
            return out
        src.append(slice(max(0, -d), size - max(0, d)))
        dst.append(slice(max(0, d), size - max(0, -d)))
    out[tuple(dst)] = mask[tuple(src)]
    return out


def shift_components(
    ref: BoolArray,
    n: int,
    *,
    offset: Sequence[int],
    order: Order = "smallest",
    connectivity: Connectivity | None = None,
) -> BoolArray:
    """Move the ``n`` smallest or largest components by a whole-voxel ``offset``.

    Parameters
    ----------
    offset
        Voxels per array axis (``(dz, dy, dx)`` / ``(dy, dx)``); voxels moved outside the image
        are lost. The other components stay in place.

    Examples
    --------
    >>> m = np.zeros((1, 8), bool); m[0, 0] = True; m[0, 4:6] = True
    >>> shift_components(m, 1, offset=(0, 2)).astype(int).tolist()
    [[0, 0, 1, 0, 1, 1, 0, 0]]
    """
    ref = _as_bool(ref)
    if len(offset) != ref.ndim:
        raise SimulationError(f"offset {tuple(offset)} needs one integer per axis of {ref.shape}")
    labels, _, ids = _chosen(ref, n, order, connectivity)
    chosen = np.isin(labels, ids)
    return (ref & ~chosen) | _shifted(chosen, offset)


def _ball_radius_mm(volume: int, spacing: tuple[float, ...]) -> float:
    """Radius (mm) of the 2D disc or 3D ball holding ``volume`` voxels of size ``spacing``."""
    d = len(spacing)
    unit = np.pi ** (d / 2) / math.gamma(d / 2 + 1)
    return float((volume * float(np.prod(spacing)) / unit) ** (1.0 / d))


def _nearest_voxels_ball(
    shape: tuple[int, ...], centre: tuple[int, ...], volume: int, spacing: tuple[float, ...]
) -> BoolArray:
    """The ``volume`` voxels nearest (in mm) to ``centre``: a discrete ball of exact volume."""
    radius_mm = _ball_radius_mm(volume, spacing)
    half = [int(np.ceil(2 * radius_mm / s)) + 1 for s in spacing]
    lo = [max(0, c - h) for c, h in zip(centre, half, strict=True)]
    hi = [min(n, c + h + 1) for n, c, h in zip(shape, centre, half, strict=True)]
    grids = np.meshgrid(
        *[(np.arange(a, b) - c) * s for a, b, c, s in zip(lo, hi, centre, spacing, strict=True)],
        indexing="ij",
    )
    dist = np.sqrt(sum(g**2 for g in grids)).ravel()
    box = np.zeros(dist.size, bool)
    box[np.argsort(dist, kind="stable")[:volume]] = True
    out = np.zeros(shape, bool)
    out[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = box.reshape(
        [b - a for a, b in zip(lo, hi, strict=True)]
    )
    return out


def insert_components(
    ref: BoolArray,
    n: int,
    *,
    spacing: Spacing,
    order: Order = "smallest",
    seed: int = 0,
    volume_quantile: float = 0.25,
    connectivity: Connectivity | None = None,
) -> BoolArray:
    """Add ``n`` false-positive components, one in the Voronoi region of each chosen component.

    For each of the ``n`` smallest or largest reference components a new ball-shaped component is
    inserted at a random voxel of that component's generalized Voronoi region (the voxels nearer,
    in mm, to it than to any other component). Its volume is the ``volume_quantile`` (default the
    25th percentile, linear interpolation) of the reference's component volumes, rounded to whole
    voxels (at least 1); its shape is the set of voxels nearest to the centre in mm, so it is a ball
    on anisotropic grids too. The centre is drawn among the voxels of the region farther than
    ``r + 2d`` from every lesion voxel and ``2r + 3d`` from every centre inserted before (``r``
    the ball radius, ``d`` the voxel diagonal, mm), so the inserted component neither overlaps
    nor touches a lesion or another inserted component; when no voxel of the region is that far,
    the one farthest from the lesions is used.

    Parameters
    ----------
    ref
        Boolean reference, 2D or 3D.
    n
        Number of components to insert (at most the number of reference components).
    spacing
        Voxel size per array axis, mm.
    seed
        Seed of the location draw; same inputs and seed give the same output.

    Returns
    -------
    numpy.ndarray
        ``ref`` plus the inserted components.

    Examples
    --------
    >>> m = np.zeros((20, 20), bool); m[2:5, 2:5] = True; m[14:18, 14:18] = True
    >>> out = insert_components(m, 2, spacing=(1.0, 1.0), seed=0)
    >>> int(out.sum() - m.sum()), label_components(out)[1]
    (22, 4)
    """
    from evaluator.metrics.cc import voronoi_regions

    ref = _as_bool(ref)
    sampling = _spacing(ref, spacing)
    if not 0.0 <= volume_quantile <= 1.0:
        raise SimulationError(f"volume_quantile must be in [0, 1], got {volume_quantile}")
    labels, count, ids = _chosen(ref, n, order, connectivity)
    if not ids:
        return ref.copy()
    volumes = component_volumes(labels, count)
    volume = max(1, round(float(np.quantile(volumes, volume_quantile))))
    # The ``volume`` voxels nearest to a centre lie within r + d/2 of it (r: ball radius, d:
    # voxel diagonal), so a centre farther than r + 2d from every lesion voxel, and farther than
    # 2r + 3d from every centre inserted before, gives a component that touches nothing.
    radius = _ball_radius_mm(volume, sampling)
    diagonal = float(np.linalg.norm(sampling))
    distance = ndimage.distance_transform_edt(~ref, sampling=sampling)  # one transform for all
    regions = voronoi_regions(ref, spacing=sampling, connectivity=connectivity)
    rng = np.random.default_rng(seed)
    out = ref.copy()
    centres: list[np.ndarray] = []
    for cid in ids:
        # the region numbering of the metrics may differ from ours: use the id on the component
        first = np.unravel_index(int(np.argmax(labels == cid)), ref.shape)
        region = regions == regions[first]
        candidates = np.flatnonzero(region & (distance > radius + 2 * diagonal))
        if centres and candidates.size:
            points = np.stack(np.unravel_index(candidates, ref.shape), axis=1) * sampling
            far = np.ones(candidates.size, bool)
            for c in centres:
                far &= ((points - c) ** 2).sum(axis=1) > (2 * radius + 3 * diagonal) ** 2
            candidates = candidates[far]
        if candidates.size:
            flat = int(candidates[rng.integers(candidates.size)])
        else:
            flat = int(np.argmax(np.where(region, distance, -1.0)))
        centre = tuple(int(v) for v in np.unravel_index(flat, ref.shape))
        centres.append(np.asarray(centre) * sampling)
        out |= _nearest_voxels_ball(ref.shape, centre, volume, sampling)
    return out


#: The dataset-study operators by name: ``f(ref, n, *, order, spacing, seed, margin_mm)``.
OPERATORS: dict[str, Callable[..., BoolArray]] = {
    "drop": lambda ref, n, *, order, spacing, seed, margin_mm: drop_components(ref, n, order=order),
    "enlarge": lambda ref, n, *, order, spacing, seed, margin_mm: enlarge_components(
        ref, n, order=order, margin_mm=margin_mm, spacing=spacing
    ),
    "erode": lambda ref, n, *, order, spacing, seed, margin_mm: erode_components(
        ref, n, order=order, margin_mm=margin_mm, spacing=spacing
    ),
    "insert": lambda ref, n, *, order, spacing, seed, margin_mm: insert_components(
        ref, n, order=order, spacing=spacing, seed=seed
    ),
}
