"""A simple whole-body anatomy shared by the 3D phantoms (AutoPET, HECKTOR, BTCV).

The body is described in *body coordinates* ``(bz, by, bx)``: ``bz`` runs from mid-thigh (0) to
the top of the head (1); ``by`` (anterior -> posterior, as LPS ``y``) and ``bx`` (patient right ->
left, as LPS ``x``) are in units of the trunk's half-width. A :class:`Frame` maps a window of the
body (e.g. the abdomen for BTCV, the head and neck for HECKTOR) onto a grid's field of view, so
the same anatomy serves every task and every size; lesion sizes and the PET point-spread stay in
millimetres. Each structure carries its CT value (HU), its PET uptake (SUV) and, for the BTCV
organs, its label number (as in ``datasets.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from evaluator.datasets.phantoms._shapes import (
    Box,
    Grid,
    cylinder,
    ellipsoid,
    paint,
    tube,
)
from evaluator.typing import BoolArray, FloatArray

__all__ = [
    "BODY_PARTS",
    "LESION_HOSTS",
    "ORGAN_IDS",
    "UPTAKE_ORGANS",
    "Frame",
    "Part",
    "Rendered",
    "organ_map",
    "render_body",
    "vary",
]

Kind = Literal["ellipsoid", "cylinder", "tube", "shell", "ribs"]


@dataclass(frozen=True)
class Part:
    """One structure of the body.

    ``centre``/``end`` are body coordinates ``(bz, by, bx)``; ``radii`` are ``(rz, ry, rx)``
    (``rz`` in body lengths, ``ry``/``rx`` in trunk half-widths; tubes use ``ry`` as their
    radius). Cylinders and ribs span ``bz`` from ``centre[0]`` to ``end[0]``. ``angle`` rotates an
    ellipsoid about the z axis (degrees). ``label`` is the BTCV organ label (0: none).
    """

    name: str
    kind: Kind
    centre: tuple[float, float, float]
    radii: tuple[float, float, float]
    hu: float
    suv: float
    end: tuple[float, float, float] | None = None
    angle: float = 0.0
    inner: float = 0.0
    label: int = 0


def _pair(
    name: str,
    kind: Kind,
    centre: tuple[float, float, float],
    radii: tuple[float, float, float],
    end: tuple[float, float, float] | None = None,
) -> list[Part]:
    """A body segment: subcutaneous fat, then muscle/soft tissue inside it (radii x 0.88)."""
    inner = (radii[0], radii[1] * 0.88, radii[2] * 0.88)
    return [
        Part(f"{name} fat", kind, centre, radii, hu=-100.0, suv=0.3, end=end),
        Part(name, kind, centre, inner, hu=40.0, suv=0.7, end=end),
    ]


def _mirror(part: Part, name: str, label: int = 0) -> Part:
    """The same part on the other side of the body (``bx`` and the rotation flipped)."""
    end = None if part.end is None else (part.end[0], part.end[1], -part.end[2])
    centre = (part.centre[0], part.centre[1], -part.centre[2])
    return replace(part, name=name, centre=centre, end=end, angle=-part.angle, label=label)


def _vertebrae() -> list[Part]:
    return [
        Part("vertebra", "ellipsoid", (0.19 + 0.031 * k, 0.48, 0.0), (0.013, 0.12, 0.12), 450, 1)
        for k in range(20)
    ]


E: Kind = "ellipsoid"
T: Kind = "tube"
# fmt: off
#                  name                   kind  centre (bz, by, bx)    radii (rz, ry, rx)     HU    SUV
_RIGHT_KIDNEY = Part("right kidney",        E, (0.5, 0.36, -0.44),   (0.045, 0.17, 0.13),   150, 4.0, angle=20, label=2)
_RIGHT_ADRENAL = Part("right adrenal gland", E, (0.555, 0.34, -0.3),  (0.016, 0.06, 0.04),   30, 1.2, angle=30, label=12)
_RIGHT_LUNG = Part("right lung",            E, (0.655, 0.02, -0.47), (0.075, 0.5, 0.36),    -850, 0.35)
_RIGHT_FEMUR = Part("right femur",          T, (0.0, 0.02, -0.48),   (0.09, 0.09, 0.09),    600, 0.9, end=(0.2, 0.02, -0.42))
_RIGHT_PAROTID = Part("right parotid",      E, (0.835, 0.08, -0.3),  (0.02, 0.1, 0.06),     20, 2.5)
_RIGHT_TONSIL = Part("right tonsil",        E, (0.815, 0.0, -0.08),  (0.012, 0.045, 0.035), 45, 3.5)

#: The body, in painting order (later parts overwrite earlier ones).
BODY_PARTS: tuple[Part, ...] = (
    *_pair("right leg", "cylinder", (0.0, 0.0, -0.45), (0.0, 0.45, 0.42), end=(0.2, 0.0, 0.0)),
    *_pair("left leg", "cylinder", (0.0, 0.0, 0.45), (0.0, 0.45, 0.42), end=(0.2, 0.0, 0.0)),
    *_pair("hips", "ellipsoid", (0.2, 0.0, 0.0), (0.05, 0.62, 0.95)),
    *_pair("trunk", "cylinder", (0.18, 0.0, 0.0), (0.0, 0.68, 1.0), end=(0.745, 0.0, 0.0)),
    *_pair("neck", "cylinder", (0.73, 0.08, 0.0), (0.0, 0.34, 0.34), end=(0.82, 0.0, 0.0)),
    *_pair("head", "ellipsoid", (0.885, 0.02, 0.0), (0.09, 0.5, 0.42)),
    _RIGHT_LUNG,
    _mirror(_RIGHT_LUNG, "left lung"),
    Part("ribs",         "ribs", (0.52, 0.0, 0.0),     (0.0, 0.585, 0.86),    550, 0.9, end=(0.72, 0.0, 0.0), inner=0.88),
    Part("trachea",      T, (0.66, 0.05, 0.0),         (0.04, 0.04, 0.04),    -950, 0.2, end=(0.76, -0.05, 0.0)),
    Part("pharynx",      T, (0.76, -0.05, 0.0),        (0.06, 0.06, 0.06),    -950, 0.2, end=(0.835, 0.0, 0.0)),
    Part("heart",        E, (0.63, -0.17, 0.12),       (0.045, 0.32, 0.33),   40, 3.0, angle=30),
    Part("liver",        E, (0.565, 0.02, -0.42),      (0.05, 0.5, 0.48),     60, 2.2, angle=-15, label=6),
    Part("gallbladder",  E, (0.538, -0.3, -0.34),      (0.018, 0.1, 0.07),    10, 0.5, label=4),
    Part("spleen",       E, (0.57, 0.3, 0.62),         (0.038, 0.25, 0.17),   50, 1.8, angle=20, label=1),
    Part("stomach",      E, (0.56, -0.22, 0.38),       (0.03, 0.22, 0.28),    30, 1.5, angle=-20, label=7),
    Part("pancreas",     E, (0.525, 0.06, 0.1),        (0.016, 0.09, 0.36),   45, 1.3, angle=-10, label=11),
    Part("portal vein and splenic vein",
                         T, (0.532, 0.12, -0.28),      (0.035, 0.035, 0.035), 150, 1.5, end=(0.535, 0.2, 0.5), label=10),
    Part("aorta",        T, (0.42, 0.25, 0.08),        (0.07, 0.07, 0.07),    180, 1.6, end=(0.68, 0.25, 0.08), label=8),
    Part("inferior vena cava",
                         T, (0.42, 0.22, -0.14),       (0.065, 0.065, 0.065), 120, 1.5, end=(0.6, 0.18, -0.16), label=9),
    Part("esophagus",    T, (0.56, 0.32, 0.1),         (0.045, 0.045, 0.045), 40, 1.5, end=(0.74, 0.34, 0.0), label=5),
    _RIGHT_KIDNEY,
    _mirror(_RIGHT_KIDNEY, "left kidney", label=3),
    *_vertebrae(),
    Part("pelvis",       "shell", (0.27, 0.1, 0.0),    (0.05, 0.55, 0.85),    400, 0.9, inner=0.85),
    _RIGHT_FEMUR,
    _mirror(_RIGHT_FEMUR, "left femur"),
    Part("bladder",      E, (0.26, -0.2, 0.0),         (0.03, 0.2, 0.22),     5, 20.0),
    Part("skull",        "shell", (0.888, 0.02, 0.0),  (0.082, 0.46, 0.38),   900, 0.8, inner=0.87),
    Part("brain",        E, (0.89, 0.03, 0.0),         (0.07, 0.4, 0.33),     35, 8.0),
    _RIGHT_PAROTID,
    _mirror(_RIGHT_PAROTID, "left parotid"),
    _RIGHT_TONSIL,
    _mirror(_RIGHT_TONSIL, "left tonsil"),
    _RIGHT_ADRENAL,
    _mirror(_RIGHT_ADRENAL, "left adrenal gland", label=13),
)
# fmt: on

#: Tissues where lesions may grow (soft tissue, fat, solid organs, bone; not air, brain, urine).
LESION_HOSTS: frozenset[str] = frozenset(
    {
        "trunk",
        "neck",
        "hips",
        "right leg",
        "left leg",
        "liver",
        "spleen",
        "vertebra",
        "pelvis",
        "stomach",
        "pancreas",
    }
)

#: Organ ids of the optional ``ORGANS`` channel (an organ map per case, as an anatomy model such
#: as TotalSegmentator would give it; names follow TotalSegmentator's classes). 0: air.
ORGAN_IDS: dict[str, int] = {
    "brain": 1,
    "urinary_bladder": 2,
    "heart": 3,
    "kidney_right": 4,
    "kidney_left": 5,
    "liver": 6,
    "spleen": 7,
    "lung_right": 8,
    "lung_left": 9,
    "stomach": 10,
    "pancreas": 11,
    "bone": 12,
    "body": 13,
}
#: Organs with high physiological FDG uptake (what an anatomy prior tells apart from lesions).
UPTAKE_ORGANS: tuple[str, ...] = (
    "brain",
    "urinary_bladder",
    "heart",
    "kidney_right",
    "kidney_left",
)
#: Body part -> organ of :data:`ORGAN_IDS` (other parts inside the body: ``body``).
_PART_ORGAN: dict[str, str] = {
    "brain": "brain",
    "bladder": "urinary_bladder",
    "heart": "heart",
    "right kidney": "kidney_right",
    "left kidney": "kidney_left",
    "liver": "liver",
    "spleen": "spleen",
    "right lung": "lung_right",
    "left lung": "lung_left",
    "stomach": "stomach",
    "pancreas": "pancreas",
    **dict.fromkeys(("vertebra", "pelvis", "right femur", "left femur", "skull", "ribs"), "bone"),
}


@dataclass(frozen=True)
class Frame:
    """Maps body coordinates onto a grid.

    Parameters
    ----------
    grid
        The grid whose field of view shows the window.
    window
        ``(bz_low, bz_high)``: the body range that fills the grid's z extent.
    width
        Trunk half-width as a fraction of half the grid's x extent (1.0: the trunk just fits).
    """

    grid: Grid
    window: tuple[float, float]
    width: float

    @property
    def length_mm(self) -> float:
        """Millimetres per body length."""
        return self.grid.extent_mm[0] / (self.window[1] - self.window[0])

    @property
    def half_width_mm(self) -> float:
        """Millimetres per trunk half-width."""
        return self.width * self.grid.extent_mm[2] / 2.0

    def to_mm(self, point: tuple[float, float, float]) -> tuple[float, float, float]:
        """Body coordinates ``(bz, by, bx)`` to world mm ``(z, y, x)``."""
        _, cy, cx = self.grid.centre_mm()
        z0 = self.grid.origin[0] - self.grid.spacing[0] / 2.0
        return (
            z0 + (point[0] - self.window[0]) * self.length_mm,
            cy + point[1] * self.half_width_mm,
            cx + point[2] * self.half_width_mm,
        )

    def radii_mm(self, radii: tuple[float, float, float]) -> tuple[float, float, float]:
        """Body-coordinate radii ``(rz, ry, rx)`` to mm."""
        w = self.half_width_mm
        return (radii[0] * self.length_mm, radii[1] * w, radii[2] * w)


def _rotation_z(angle_deg: float) -> FloatArray:
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rasterise(part: Part, frame: Frame, grid: Grid) -> Box | None:
    centre = frame.to_mm(part.centre)
    radii = frame.radii_mm(part.radii)
    if part.kind in ("ellipsoid", "shell"):
        rotation = _rotation_z(part.angle) if part.angle else None
        return ellipsoid(grid, centre, radii, rotation=rotation, inner=part.inner)
    if part.kind == "tube":
        if part.end is None:
            return None
        return tube(grid, centre, frame.to_mm(part.end), radii[1])
    if part.end is None:
        return None
    z_range = (centre[0], frame.to_mm(part.end)[0])
    box = cylinder(grid, z_range, centre[1:], radii[1:], inner=part.inner)
    if part.kind == "ribs" and box is not None:
        slices, mask = box
        z_mm = grid.origin[0] + np.arange(slices[0].start, slices[0].stop) * grid.spacing[0]
        period = 0.03 * frame.length_mm
        on = np.cos(2.0 * np.pi * (z_mm - z_range[0]) / period) > 0.2
        y_mm = grid.origin[1] + np.arange(slices[1].start, slices[1].stop) * grid.spacing[1]
        back_and_sides = (y_mm - centre[1]) > -0.4 * radii[1]
        mask = mask & on[:, None, None] & back_and_sides[None, :, None]
        box = (slices, mask)
    return box


@dataclass(frozen=True)
class Rendered:
    """The anatomy painted on a grid.

    ``index`` holds, per voxel, 1 + the position of the part in ``parts`` (0: air outside the
    body). ``hu``, ``suv`` and ``label`` are per-part lookup tables indexed by ``index``.
    """

    parts: tuple[Part, ...]
    index: npt.NDArray[np.uint8]
    hu: FloatArray
    suv: FloatArray
    label: npt.NDArray[np.uint8]

    def mask(self, names: frozenset[str] | set[str]) -> BoolArray:
        """Voxels belonging to any part whose name is in ``names``."""
        wanted = [i + 1 for i, p in enumerate(self.parts) if p.name in names]
        return np.isin(self.index, wanted)

    def body(self) -> BoolArray:
        """Voxels inside the body."""
        return np.asarray(self.index > 0)


def vary(
    rng: np.random.Generator, parts: tuple[Part, ...] = BODY_PARTS, *, amount: float = 0.02
) -> tuple[Part, ...]:
    """Per-case anatomical variation: position, size and tissue values of every part.

    ``amount`` is the standard deviation of the position jitter (trunk half-widths); sizes vary
    by up to +-2x ``amount``, SUVs by a factor 0.8-1.25 (the heart: 0.4-2.5, as myocardial
    uptake varies a lot), HU by about 5.

    Examples
    --------
    >>> a = vary(np.random.default_rng(1))
    >>> len(a) == len(BODY_PARTS), a[0].centre != BODY_PARTS[0].centre
    (True, True)
    """
    return tuple(_jitter(p, rng, amount) for p in parts)


def _jitter(part: Part, rng: np.random.Generator, amount: float) -> Part:
    def shift(p: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
        if p is None:
            return None
        d = rng.normal(0.0, amount, size=3)
        return (p[0] + d[0] * 0.2, p[1] + d[1], p[2] + d[2])

    scale = rng.uniform(1.0 - 2 * amount, 1.0 + 2 * amount, size=3)
    suv_factor = rng.uniform(0.4, 2.5) if part.name == "heart" else rng.uniform(0.8, 1.25)
    return replace(
        part,
        centre=shift(part.centre) or part.centre,
        end=shift(part.end),
        radii=(part.radii[0] * scale[0], part.radii[1] * scale[1], part.radii[2] * scale[2]),
        hu=part.hu + rng.normal(0.0, 5.0),
        suv=part.suv * suv_factor,
        angle=part.angle + rng.normal(0.0, 5.0),
    )


def render_body(
    frame: Frame, parts: tuple[Part, ...] = BODY_PARTS, *, grid: Grid | None = None
) -> Rendered:
    """Paint the anatomy, each part on its own bounding box.

    Parameters
    ----------
    frame
        Maps body coordinates to world mm (through ``frame.grid``).
    parts
        Structures in painting order (see :func:`vary` for per-case variation).
    grid
        Grid to paint on; default ``frame.grid``. A different grid (e.g. a PET grid with
        another origin and spacing) shows the same body at the same world positions.

    Returns
    -------
    Rendered
        Part index map (uint8, grid shape) and lookup tables.

    Examples
    --------
    >>> g = Grid((40, 32, 32), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0))
    >>> r = render_body(Frame(g, (0.4, 0.7), 0.8))
    >>> bool(r.body().any()), np.unique(r.label[r.index]).tolist()[:4]
    (True, [0, 1, 2, 3])
    """
    target = frame.grid if grid is None else grid
    if len(parts) > 254:
        raise ValueError(f"at most 254 body parts fit a uint8 index map, got {len(parts)}")
    index = np.zeros(target.shape, dtype=np.uint8)
    for i, part in enumerate(parts, start=1):
        paint(index, _rasterise(part, frame, target), i)
    hu = np.array([-1000.0, *(p.hu for p in parts)], dtype=np.float32)
    suv = np.array([0.0, *(p.suv for p in parts)], dtype=np.float32)
    label = np.array([0, *(p.label for p in parts)], dtype=np.uint8)
    return Rendered(parts=parts, index=index, hu=hu, suv=suv, label=label)


def organ_map(body: Rendered) -> npt.NDArray[np.uint8]:
    """The organ map of a rendered body (:data:`ORGAN_IDS`; every other body part: ``body``).

    Examples
    --------
    >>> g = Grid((40, 32, 32), (8.0, 8.0, 8.0), (0.0, 0.0, 0.0))
    >>> organs = organ_map(render_body(Frame(g, (0.0, 1.0), 0.8)))
    >>> sorted(set(np.unique(organs).tolist()) & {ORGAN_IDS["brain"], ORGAN_IDS["urinary_bladder"]})
    [1, 2]
    """
    table = np.array(
        [0, *(ORGAN_IDS[_PART_ORGAN.get(p.name, "body")] for p in body.parts)], dtype=np.uint8
    )
    return np.asarray(table[body.index], dtype=np.uint8)
