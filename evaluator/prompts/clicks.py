"""Lesion clicks of interactive PET/CT segmentation: autoPET IV's simulator, corrective clicks and
grand-challenge's "Multiple points" click file.

Conventions
-----------
Arrays come in numpy order ``(z, y, x)``, as ``SimpleITK.GetArrayFromImage`` returns them (the
geometry contract of :mod:`evaluator.typing`). A click is a voxel index ``(x, y, z)``: SimpleITK's
index order, which is the axis order of the same image loaded by nibabel, so the points written
here are the points of the official click files. The voxel a click ``(x, y, z)`` names is
``array[z, y, x]``.

The official simulator (:func:`simulate_clicks`)
------------------------------------------------
Written after ``clicks/simulate_clicks.py`` of the autoPET IV repository
(https://github.com/lab-midas/autoPETCTIV, read at commit 035570b; the same algorithm at
78a0d86), with the click-file format of its ``Task1/test/input/*.json`` and the budgets of its
``evaluation_metrics/evaluation_metrics.py`` (predictions for ``k = 0..N`` clicks of each kind).
The code here is our own; the algorithm is theirs:

1. One legacy ``numpy.random.RandomState(seed)`` (the official seeds numpy's global state with
   42) serves every draw, tumour draws first, background draws after them.
2. **Tumour clicks** (label not empty): the 26-connected components of the label, numbered as
   ``cc3d`` numbers them on the nibabel-loaded (Fortran-ordered ``(x, y, z)``) array, i.e. in the
   order of their first voxel in the file (x fastest, z slowest). ``min(budget, n)`` of them are
   drawn without replacement (``choice(labels, size, replace=False)``); each gets a click at its
   centre, the maximum of its Euclidean distance transform in voxel units (the first maximum in
   ``(x, y, z)`` index order, as ``argmax`` on the ``(x, y, z)`` array gives it). While fewer
   than ``budget`` clicks exist, the drawn components are visited again in the drawn order and
   each adds one boundary click: a voxel drawn uniformly (``choice(n_candidates)``) among the
   component's voxels of smallest distance-transform value, listed in ``(x, y, z)`` index order.
3. **Background clicks**: the PET voxels outside the label above the 99.75th percentile of the
   PET outside the label (``numpy.percentile``, linear interpolation, strict ``>``); the same
   centre clicks on their 26-connected components, then fill clicks, each a voxel drawn uniformly
   from the component (what the official code ends up with, see difference 3 below).

Fill clicks can repeat a voxel (a one-voxel component visited twice), as in the official files.

Differences from the official code, all deliberate or unavoidable:

1. Any nonzero label value is lesion: components are found on the binary mask. The official
   code runs ``cc3d`` on the label values, which splits touching lesions of different values;
   autoPET labels are binary, so the clicks are the same.
2. The distance transform is ``scipy.ndimage.distance_transform_edt`` in float64 on the
   component's bounding box plus one voxel (the same values as on the whole volume: every
   nearest background voxel lies in that box or the image ends there). The official code runs
   cuCIM's exact GPU transform (scipy's on GPU memory errors; float32 distances where the
   cuCIM version defaults to them) and CuPy's ``argmax``. The same maxima and boundary voxels
   are found as long as the distances stay distinct in float32 (``sqrt`` of distinct integers
   below about 4 million squared voxels) and CuPy's ``argmax`` returns the first maximum as
   numpy's does. Not checked against a GPU run: the official test case's images are not in
   the repository (Git LFS), so equality is tested against the official CPU path.
3. Background fill clicks: the official code looks for "boundary" voxels with a mask that is
   ``labeled_mask == 0`` (outside the component) and falls back to all component voxels when it
   finds none, which is what happens whenever the component's distance transform is not
   constant. When it is constant (a one-voxel or one-voxel-thick component) it draws from every
   voxel of the image outside the component, lesions included (where its own ``assert`` then
   fails). Here fill clicks always come from the component's voxels; in that case only the draw,
   and therefore every later draw, differs.
4. Where the official code cannot finish, this one returns fewer background clicks: no voxel
   above the threshold (e.g. constant PET; the official loops forever) and a label covering the
   whole image (no non-tumour PET; the official fails on an empty percentile).
5. The optional random perturbations of the official script (``center_offset``,
   ``edge_offset``, drawn from Python's ``random`` module, off in the challenge) are not
   provided.

Budget ``k`` of an interactive evaluation is the first ``k`` tumour and the first ``k``
background clicks of one simulation with the full budget (:func:`at_budget`).

Corrective clicks (:func:`corrective_clicks`)
---------------------------------------------
Not part of autoPET IV: after a prediction, one tumour click at the centre of the largest
missed region (largest 26-connected component of ``label & ~prediction`` by voxel count) and one
background click at the centre of the largest false-positive region (``prediction & ~label``);
centres are distance-transform maxima in millimetres (the image border is not a region border,
as in scipy's transform and the official simulator: a region cut by the border has its centre
nearer the border). Ties (equal sizes, equal distances) go to
the first in ``(x, y, z)`` index order (lexicographic, x slowest), as above. No click of a kind
when there is no error of that kind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from evaluator.typing import BoolArray, FloatArray, IntArray, LabelArray, Spacing

__all__ = [
    "GC_POINTS_TYPE",
    "GC_VERSION",
    "HIGH_UPTAKE_PERCENTILE",
    "MAX_POINTS",
    "Clicks",
    "Point",
    "at_budget",
    "click_mask",
    "corrective_clicks",
    "from_grand_challenge",
    "simulate_clicks",
    "to_grand_challenge",
]

#: A click: voxel index ``(x, y, z)`` (SimpleITK / nibabel order; ``array[z, y, x]``).
Point: TypeAlias = tuple[int, int, int]

#: Percentile of the non-tumour PET above which a voxel is "high uptake" (official value).
HIGH_UPTAKE_PERCENTILE = 99.75
#: grand-challenge's annotation type and version of a click file.
GC_POINTS_TYPE = "Multiple points"
GC_VERSION = {"major": 1, "minor": 0}
#: Most points a click file may hold (autoPET IV uses 20; the rest is room, not a use).
MAX_POINTS = 1000

_KINDS = ("tumor", "background")


@dataclass(frozen=True)
class Clicks:
    """The clicks of one case, each kind in the order given.

    Attributes
    ----------
    tumor
        Clicks on lesion voxels, ``(x, y, z)`` voxel indices.
    background
        Clicks on non-lesion voxels, ``(x, y, z)`` voxel indices.

    Examples
    --------
    >>> Clicks(tumor=[(3, 2, 1)], background=[])
    Clicks(tumor=[(3, 2, 1)], background=[])
    """

    tumor: list[Point]
    background: list[Point]


# ----------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------


def _volume(array: Any, what: str, kinds: str) -> np.ndarray:
    """``array`` as a 3D numpy array whose dtype kind is one of ``kinds``, else ValueError."""
    arr = np.asarray(array)
    if arr.ndim != 3:
        raise ValueError(
            f"{what} must be a 3D array in (z, y, x) order (2D is not supported), "
            f"got {arr.ndim}D of shape {arr.shape}"
        )
    if arr.dtype.kind not in kinds:
        wanted = {"b": "boolean", "i": "integer", "u": "integer", "f": "float"}
        names = sorted({wanted[k] for k in kinds})
        raise ValueError(f"{what} must be a {' or '.join(names)} array, got dtype {arr.dtype}")
    return arr


def _same_shape(a: np.ndarray, b: np.ndarray, what_a: str, what_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what_b} has shape {b.shape}, {what_a} has shape {a.shape}")


def _count(value: Any, what: str) -> int:
    """A non-negative integer (not a bool), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def _shape3(shape: Any) -> tuple[int, int, int]:
    """An image shape ``(z, y, x)`` of three positive integers, else ValueError."""
    try:
        dims = tuple(shape)
    except TypeError:
        dims = ()
    if len(dims) != 3 or not all(
        isinstance(d, int | np.integer) and not isinstance(d, bool) and d > 0 for d in dims
    ):
        raise ValueError(f"shape must be three positive integers (z, y, x), got {shape!r}")
    z, y, x = (int(d) for d in dims)
    return z, y, x


# ----------------------------------------------------------------------------------------------
# The official simulator
# ----------------------------------------------------------------------------------------------


def _point(index: Sequence[int | np.integer] | IntArray, offset: Sequence[int]) -> Point:
    """Global ``(x, y, z)`` of a crop index plus the crop's offset."""
    return (
        int(index[0]) + int(offset[0]),
        int(index[1]) + int(offset[1]),
        int(index[2]) + int(offset[2]),
    )


def _crop(box: tuple[slice, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    """A bounding box grown by one voxel on each side, within the image."""
    return tuple(
        slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(box, shape, strict=True)
    )


def _component_clicks(
    mask_xyz: BoolArray, rng: np.random.RandomState, budget: int, *, boundary: bool
) -> list[Point]:
    """Centre clicks on up to ``budget`` drawn components of ``mask_xyz``, then fill clicks.

    ``mask_xyz`` is in ``(x, y, z)`` order; it is labelled in Fortran (file) order, as cc3d
    labels the nibabel-loaded array. ``boundary``: fill clicks on the voxels of smallest
    distance (tumour clicks), else anywhere in the component (background clicks).
    """
    import cc3d
    from scipy import ndimage

    labels, n = cc3d.connected_components(
        np.asfortranarray(mask_xyz), connectivity=26, return_N=True
    )
    n = int(n)
    if n == 0:
        return []
    drawn = rng.choice(np.arange(1, n + 1), size=min(budget, n), replace=False)
    boxes = ndimage.find_objects(labels)
    clicks: list[Point] = []
    fill: dict[int, npt.NDArray[np.intp]] = {}
    for lab in (int(v) for v in drawn):
        box = boxes[lab - 1]
        assert box is not None  # cc3d numbers its components 1..n without gaps
        crop = _crop(box, labels.shape)
        offset = [s.start for s in crop]
        component = labels[crop] == lab
        edt = ndimage.distance_transform_edt(component)
        clicks.append(_point(np.unravel_index(int(np.argmax(edt)), edt.shape), offset))
        if boundary:
            inverted = (edt.max() - edt) * (edt > 0)
            candidates = np.argwhere((inverted == inverted.max()) & component)
        else:
            candidates = np.argwhere(component)
        fill[lab] = candidates + np.asarray(offset)
    while len(clicks) < budget:
        for lab in (int(v) for v in drawn):
            candidates = fill[lab]
            clicks.append(_point(candidates[rng.choice(candidates.shape[0])], (0, 0, 0)))
            if len(clicks) == budget:
                break
    return clicks


def simulate_clicks(
    label: LabelArray | BoolArray,
    pet: FloatArray | IntArray,
    *,
    budget: int = 10,
    seed: int = 42,
) -> Clicks:
    """Tumour and background clicks as autoPET IV's official simulator draws them.

    Parameters
    ----------
    label
        Reference, shape ``(z, y, x)``, integer or boolean; any nonzero voxel is lesion.
    pet
        PET image on the same grid, any real dtype (e.g. SUV); finite.
    budget
        Clicks of each kind, >= 0 [default: 10, autoPET IV's budget].
    seed
        Seed of the legacy ``numpy.random.RandomState``, 0 to 2**32 - 1 [default: 42, the
        official seed].

    Returns
    -------
    Clicks
        ``budget`` tumour clicks (none for an empty label) and ``budget`` background clicks
        (fewer, possibly none, when the PET has no high-uptake voxel outside the label or the
        label covers the image); ``(x, y, z)`` voxel indices. Centre clicks come first, in the
        order their components were drawn, then fill clicks. The same inputs and seed give the
        same clicks. The algorithm and its differences from the official code: module doc.

    Raises
    ------
    ValueError
        A non-3D or mismatched input, a label that is not integer/boolean, a non-finite PET, a
        negative budget or a seed out of range.

    Examples
    --------
    A 3-voxel cube lesion (centre x=2, y=2, z=2) and one hot voxel at x=5, y=0, z=0:

    >>> label = np.zeros((4, 5, 6), np.uint8)
    >>> label[1:4, 1:4, 1:4] = 1
    >>> pet = np.zeros(label.shape)
    >>> pet[0, 0, 5] = 9.0
    >>> clicks = simulate_clicks(label, pet, budget=2)
    >>> clicks.tumor[0], clicks.background
    ((2, 2, 2), [(5, 0, 0), (5, 0, 0)])
    >>> all(label[z, y, x] for x, y, z in clicks.tumor)
    True
    """
    lab = _volume(label, "label", "biu")
    uptake = _volume(pet, "pet", "biuf")
    _same_shape(lab, uptake, "label", "pet")
    budget = _count(budget, "budget")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    uptake_xyz = uptake.astype(np.float64, copy=False).T
    if not np.isfinite(uptake_xyz).all():
        raise ValueError("pet holds NaN or infinite values")
    rng = np.random.RandomState(int(seed))
    lesion = np.asfortranarray(lab.T != 0)
    tumor = _component_clicks(lesion, rng, budget, boundary=True) if lesion.any() else []
    background: list[Point] = []
    outside = ~lesion
    if outside.any():
        threshold = np.percentile(uptake_xyz[outside], HIGH_UPTAKE_PERCENTILE)
        hot = (uptake_xyz > threshold) & outside
        background = _component_clicks(hot, rng, budget, boundary=False)
    return Clicks(tumor=tumor, background=background)


# ----------------------------------------------------------------------------------------------
# Corrective clicks
# ----------------------------------------------------------------------------------------------


def _largest_centre(error_xyz: BoolArray, sampling: tuple[float, float, float]) -> list[Point]:
    """The distance-transform maximum (mm) of the largest 26-connected component, or none."""
    if not error_xyz.any():
        return []
    import cc3d
    from scipy import ndimage

    # C order on (x, y, z): components numbered by their first voxel in (x, y, z) index order.
    labels = cc3d.connected_components(np.ascontiguousarray(error_xyz), connectivity=26)
    sizes = np.bincount(labels.ravel())
    biggest = int(np.argmax(sizes[1:])) + 1
    box = ndimage.find_objects(labels, max_label=biggest)[biggest - 1]
    assert box is not None  # a label that has voxels has a box
    crop = _crop(box, labels.shape)
    edt = ndimage.distance_transform_edt(labels[crop] == biggest, sampling=sampling)
    return [_point(np.unravel_index(int(np.argmax(edt)), edt.shape), [s.start for s in crop])]


def corrective_clicks(
    label: LabelArray | BoolArray,
    prediction: LabelArray | BoolArray,
    *,
    spacing: Spacing,
) -> Clicks:
    """The next corrective clicks after a prediction: centres of its largest errors.

    Parameters
    ----------
    label
        Reference, shape ``(z, y, x)``, integer or boolean; nonzero is lesion.
    prediction
        Prediction on the same grid, integer or boolean; nonzero is lesion.
    spacing
        Voxel size ``(z, y, x)`` in millimetres, positive.

    Returns
    -------
    Clicks
        At most one tumour click, at the centre of the largest missed region (largest
        26-connected component of ``label & ~prediction``, by voxel count), and at most one
        background click, at the centre of the largest false-positive region (``prediction &
        ~label``). A centre is the maximum of the region's Euclidean distance transform in mm.
        Ties go to the first in ``(x, y, z)`` index order (x slowest). No click of a kind when
        there is no error of that kind (a perfect prediction gives none).

    Raises
    ------
    ValueError
        A non-3D or mismatched input, a non-integer/boolean array or a bad spacing.

    Examples
    --------
    A missed 1 x 3 x 3 voxel (z, y, x) lesion centred at x=2, y=2, z=1 and a one-voxel false
    positive at x=5, y=0, z=2:

    >>> label = np.zeros((3, 5, 6), bool)
    >>> label[1, 1:4, 1:4] = True
    >>> prediction = np.zeros(label.shape, bool)
    >>> prediction[2, 0, 5] = True
    >>> corrective_clicks(label, prediction, spacing=(3.0, 1.0, 1.0))
    Clicks(tumor=[(2, 2, 1)], background=[(5, 0, 2)])
    >>> corrective_clicks(label, label, spacing=(3.0, 1.0, 1.0))
    Clicks(tumor=[], background=[])
    """
    lab = _volume(label, "label", "biu")
    pred = _volume(prediction, "prediction", "biu")
    _same_shape(lab, pred, "label", "prediction")
    try:
        steps = tuple(float(s) for s in spacing)
    except (TypeError, ValueError) as err:
        raise ValueError(f"spacing must be three numbers (z, y, x) in mm, got {spacing!r}") from err
    if len(steps) != 3 or not all(math.isfinite(s) and s > 0 for s in steps):
        raise ValueError(f"spacing must be three positive numbers (z, y, x) in mm, got {spacing!r}")
    ref_xyz = lab.T != 0
    pred_xyz = pred.T != 0
    sampling = (steps[2], steps[1], steps[0])
    return Clicks(
        tumor=_largest_centre(ref_xyz & ~pred_xyz, sampling),
        background=_largest_centre(pred_xyz & ~ref_xyz, sampling),
    )


# ----------------------------------------------------------------------------------------------
# Budgets, masks and the grand-challenge click file
# ----------------------------------------------------------------------------------------------


def at_budget(clicks: Clicks, k: int) -> Clicks:
    """The clicks of budget ``k``: the first ``k`` of each kind (all of a kind with fewer).

    Examples
    --------
    >>> clicks = Clicks(tumor=[(1, 1, 1), (2, 2, 2)], background=[(0, 0, 0)])
    >>> at_budget(clicks, 1)
    Clicks(tumor=[(1, 1, 1)], background=[(0, 0, 0)])
    >>> at_budget(clicks, 5) == clicks
    True
    """
    k = _count(k, "budget k")
    return Clicks(tumor=list(clicks.tumor[:k]), background=list(clicks.background[:k]))


def click_mask(
    clicks: Clicks, shape: Sequence[int], *, kind: Literal["tumor", "background"]
) -> BoolArray:
    """A boolean image, shape ``(z, y, x)``, true at the clicks of one kind.

    Raises
    ------
    ValueError
        An unknown kind, a bad shape or a click outside the image.

    Examples
    --------
    >>> mask = click_mask(Clicks(tumor=[(3, 1, 0)], background=[]), (2, 2, 4), kind="tumor")
    >>> bool(mask[0, 1, 3]), int(mask.sum())
    (True, 1)
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be 'tumor' or 'background', got {kind!r}")
    dims = _shape3(shape)
    mask = np.zeros(dims, dtype=bool)
    for x, y, z in getattr(clicks, kind):
        if not (0 <= x < dims[2] and 0 <= y < dims[1] and 0 <= z < dims[0]):
            raise ValueError(
                f"{kind} click (x, y, z) = {(x, y, z)} is outside an image of "
                f"(x, y, z) size {dims[::-1]}"
            )
        mask[z, y, x] = True
    return mask


def to_grand_challenge(clicks: Clicks) -> dict[str, Any]:
    """The grand-challenge "Multiple points" document of the clicks (tumour points first).

    ``json.dumps`` of it is byte-identical to the official simulator's click files.

    Examples
    --------
    >>> import json
    >>> json.dumps(to_grand_challenge(Clicks(tumor=[(9, 8, 7)], background=[(1, 2, 3)])))
    '{"version": {"major": 1, "minor": 0}, "type": "Multiple points", "points": [{"point": [9, 8, 7], "name": "tumor"}, {"point": [1, 2, 3], "name": "background"}]}'
    """
    points = [
        {"point": [int(c) for c in point], "name": kind}
        for kind in _KINDS
        for point in getattr(clicks, kind)
    ]
    return {"version": dict(GC_VERSION), "type": GC_POINTS_TYPE, "points": points}


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (untrusted input can be huge)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _exact_keys(obj: Any, keys: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ValueError(f"click file: {where} must be an object, got {type(obj).__name__}")
    missing = sorted(keys - obj.keys())
    extra = sorted(str(k) for k in obj.keys() - keys)
    if missing or extra:
        raise ValueError(
            f"click file: {where} must have exactly the keys {sorted(keys)}"
            + (f"; missing {missing}" if missing else "")
            + (f"; unknown {_short(extra)}" if extra else "")
        )
    return obj


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def from_grand_challenge(data: object, *, shape: Sequence[int]) -> Clicks:
    """Clicks from an untrusted grand-challenge "Multiple points" document (parsed JSON).

    Parameters
    ----------
    data
        The parsed click file: ``{"version": {"major": 1, "minor": m}, "type": "Multiple
        points", "points": [{"point": [x, y, z], "name": "tumor" | "background"}, ...]}``;
        nothing more, nothing less, at most :data:`MAX_POINTS` points.
    shape
        The image's array shape ``(z, y, x)`` (``label.shape``); every point must lie inside.

    Returns
    -------
    Clicks
        Each kind in file order.

    Raises
    ------
    ValueError
        Naming the first problem: structure, type, version, a name other than tumor/background,
        a coordinate that is not an integer (floats such as ``3.0`` and booleans included) or
        outside the image, too many points.

    Examples
    --------
    >>> doc = {"version": {"major": 1, "minor": 0}, "type": "Multiple points",
    ...        "points": [{"point": [5, 0, 1], "name": "tumor"}]}
    >>> from_grand_challenge(doc, shape=(2, 3, 6))
    Clicks(tumor=[(5, 0, 1)], background=[])
    >>> from_grand_challenge(doc, shape=(6, 3, 2))
    Traceback (most recent call last):
    ...
    ValueError: click file: points[0].point (x, y, z) = [5, 0, 1] is outside the image of (x, y, z) size (2, 3, 6)
    """
    dims = _shape3(shape)
    size_xyz = dims[::-1]
    doc = _exact_keys(data, {"version", "type", "points"}, "the document")
    version = _exact_keys(doc["version"], {"major", "minor"}, "version")
    if not (
        _is_int(version["major"])
        and version["major"] == GC_VERSION["major"]
        and _is_int(version["minor"])
        and version["minor"] >= 0
    ):
        raise ValueError(
            f"click file: version must be major 1 with an integer minor >= 0, got {_short(version)}"
        )
    if doc["type"] != GC_POINTS_TYPE:
        raise ValueError(f"click file: type must be {GC_POINTS_TYPE!r}, got {_short(doc['type'])}")
    points = doc["points"]
    if not isinstance(points, list):
        raise ValueError(f"click file: points must be a list, got {type(points).__name__}")
    if len(points) > MAX_POINTS:
        raise ValueError(f"click file: {len(points)} points, more than the {MAX_POINTS} allowed")
    found: dict[str, list[Point]] = {kind: [] for kind in _KINDS}
    for i, entry in enumerate(points):
        item = _exact_keys(entry, {"point", "name"}, f"points[{i}]")
        name = item["name"]
        if not isinstance(name, str) or name not in _KINDS:
            raise ValueError(
                f"click file: points[{i}].name must be 'tumor' or 'background', got {_short(name)}"
            )
        coords = item["point"]
        if not (isinstance(coords, list) and len(coords) == 3 and all(map(_is_int, coords))):
            raise ValueError(
                f"click file: points[{i}].point must be three integers [x, y, z], "
                f"got {_short(coords)}"
            )
        if not all(0 <= c < n for c, n in zip(coords, size_xyz, strict=True)):
            raise ValueError(
                f"click file: points[{i}].point (x, y, z) = {coords} is outside the image of "
                f"(x, y, z) size {size_xyz}"
            )
        found[name].append((coords[0], coords[1], coords[2]))
    return Clicks(tumor=found["tumor"], background=found["background"])
