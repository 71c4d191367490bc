"""ChestXDet phantom: 8-bit chest X-rays with polygon instances of the 13 ChestXDet findings.

Layout (Deepwise-AILab ChestX-Det release)::

    <root>/train/<NNNNN>.png, <root>/test/<NNNNN>.png     1024 x 1024, 8-bit grey
    <root>/ChestX_Det_train.json, ChestX_Det_test.json    [{"file_name", "syms", "boxes",
                                                            "polygons"}, ...]

The radiograph is drawn as an attenuation map (bright = dense): body, dark lungs with vessel
texture, heart and mediastinum, spine, clavicles and ribs, then blurred with film-like noise.
Findings are polygons (integer pixel ``[x, y]``, x = column) of the class names of
``datasets.yaml``; each changes the image under it (nodules, masses, consolidation, effusion
brighter; pneumothorax and emphysema darker). Every eighth image is normal (no finding), every
fourth holds a pair of overlapping findings (e.g. a nodule inside a consolidation, atelectasis
within an effusion), and every fifth image belongs to the official test subset.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from evaluator.datasets.phantoms._common import CaseInfo, TaskWriter
from evaluator.datasets.phantoms._shapes import case_rng
from evaluator.typing import FloatArray, Spacing

__all__ = ["CLASSES", "WRITER", "image_name", "star_polygon"]

#: The 13 finding classes, label order of ``datasets.yaml``.
CLASSES = (
    "Atelectasis",
    "Calcification",
    "Cardiomegaly",
    "Consolidation",
    "Diffuse Nodule",
    "Effusion",
    "Emphysema",
    "Fibrosis",
    "Fracture",
    "Mass",
    "Nodule",
    "Pleural Thickening",
    "Pneumothorax",
)
_CODE = 4
_ANNOTATIONS = {"train": "ChestX_Det_train.json", "test": "ChestX_Det_test.json"}
#: Relative frequency of each class (nodules, effusion and consolidation are common).
_WEIGHTS = np.array([3, 2, 2, 4, 1, 4, 1, 2, 2, 2, 4, 2, 1], dtype=np.float64)

Polygon = list[list[int]]


def image_name(index: int) -> str:
    """File name of image ``index``.

    Examples
    --------
    >>> image_name(0), image_name(15)
    ('36199.png', '36214.png')
    """
    return f"{36199 + index}.png"


def star_polygon(
    rng: np.random.Generator,
    centre: tuple[float, float],
    radii: tuple[float, float],
    *,
    points: int = 24,
    roughness: float = 0.15,
    angle: float = 0.0,
) -> FloatArray:
    """An irregular, star-shaped polygon: ``(points, 2)`` array of ``(x, y)``, counter-clockwise.

    The radius at angle t is ``radii * (1 + sum_k a_k cos(k t + phase_k))`` with three random
    harmonics of total amplitude about ``roughness``.

    Examples
    --------
    >>> p = star_polygon(np.random.default_rng(0), (50.0, 50.0), (10.0, 5.0), roughness=0.0)
    >>> p.shape, bool(np.allclose(p[0], [60.0, 50.0]))
    ((24, 2), True)
    """
    t = np.linspace(0.0, 2.0 * np.pi, points, endpoint=False)
    scale = np.ones_like(t)
    if roughness > 0:
        for k in (2, 3, 5):
            scale += rng.uniform(0.0, roughness / 1.5) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    x, y = radii[0] * scale * np.cos(t), radii[1] * scale * np.sin(t)
    c, s = math.cos(angle), math.sin(angle)
    return np.column_stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y])


def _ellipse_arc(
    centre: tuple[float, float], radii: tuple[float, float], t0: float, t1: float, n: int = 20
) -> FloatArray:
    t = np.linspace(t0, t1, n)
    return np.column_stack([centre[0] + radii[0] * np.cos(t), centre[1] + radii[1] * np.sin(t)])


class _Chest:
    """The anatomy of one radiograph: lung ellipses, heart, and the attenuation map."""

    def __init__(self, rng: np.random.Generator, width: int, height: int) -> None:
        self.width, self.height = width, height
        sx, sy = width / 1024.0, height / 1024.0
        self.scale = min(sx, sy)
        j = rng.normal(0.0, 1.0, size=8)
        # image left = patient right (PA view)
        self.lungs = (
            ((330 + 10 * j[0]) * sx, (470 + 10 * j[1]) * sy, (150 + 8 * j[2]) * sx, 290 * sy),
            ((700 + 10 * j[3]) * sx, (470 + 10 * j[1]) * sy, (140 + 8 * j[4]) * sx, 280 * sy),
        )
        self.cardiomegaly = bool(rng.random() < 0.25)
        heart_scale = 1.3 if self.cardiomegaly else 1.0
        self.heart = (
            (560 + 8 * j[5]) * sx,
            (650 + 8 * j[6]) * sy,
            170 * heart_scale * sx,
            135 * (1 + (heart_scale - 1) / 2) * sy,
        )
        self.rng = rng

    def lung_mask(self, y: FloatArray, x: FloatArray) -> FloatArray:
        out = np.zeros(np.broadcast(y, x).shape, dtype=bool)
        for cx, cy, rx, ry in self.lungs:
            out |= ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0
        return out

    def attenuation(self) -> FloatArray:
        """Attenuation map in [0, 1] (before findings), shape ``(height, width)``.

        Drawn on a grid of every second pixel (the anatomy is smooth) and interpolated.
        """
        h, w = self.height, self.width
        y = (np.arange(0, h, 2, dtype=np.float32) + 0.5)[:, None]
        x = (np.arange(0, w, 2, dtype=np.float32) + 0.5)[None, :]
        s = self.scale
        body = ((x - w / 2) / (440 * w / 1024)) ** 2 + ((y - 0.62 * h) / (0.62 * h)) ** 4 <= 1.0
        a = np.where(body, np.float32(0.5), np.float32(0.06))
        lungs = self.lung_mask(y, x)
        texture = ndimage.gaussian_filter(
            self.rng.standard_normal(lungs.shape, dtype=np.float32), 3 * s
        )
        a = np.where(lungs, np.float32(0.2) + np.float32(0.4) * texture, a)
        # ribs: curved bands over both hemithoraces
        for cx, cy, rx, ry in self.lungs:
            curve = cy - ry + 0.45 * ry * ((x - cx) / rx) ** 2
            span = (np.abs(x - cx) < rx * 1.15) & body
            rows = (y > cy - ry - 20 * s) & (y < cy + 0.75 * ry)
            ribs = (np.mod(y - curve, 55 * s) < 16 * s) & span & rows
            a += np.float32(0.13) * ribs
        hx, hy, hrx, hry = self.heart
        heart = ((x - hx) / hrx) ** 2 + ((y - hy) / hry) ** 2 <= 1.0
        mediastinum = (np.abs(x - w * 0.51) < 55 * s) & (y > 0.12 * h)
        spine = (np.abs(x - w * 0.505) < 28 * s) & body
        a += np.float32(0.35) * heart + np.float32(0.28) * (mediastinum & ~heart)
        a += np.float32(0.08) * spine
        for side in (-1, 1):
            x0, x1 = w / 2 + side * 60 * s, w / 2 + side * 330 * s
            t = np.clip((x - x0) / (x1 - x0), 0.0, 1.0)
            inside = ((x - x0) * side >= 0) & ((x1 - x) * side >= 0)
            a += np.float32(0.2) * ((np.abs(y - (240 * s - 60 * s * t)) < 11 * s) & inside)
        below = y > max(self.lungs[0][1] + self.lungs[0][3] * 0.92, 0.8 * h)
        a += np.float32(0.15) * (below & body)
        zoom = (h / a.shape[0], w / a.shape[1])
        return np.clip(ndimage.zoom(a, zoom, order=1, grid_mode=True, mode="nearest"), 0.0, 1.0)

    def lung_point(self, *, side: int | None = None, low: bool = False) -> tuple[float, float]:
        """A random point inside a lung (lower third when ``low``)."""
        k = int(self.rng.integers(2)) if side is None else side
        cx, cy, rx, ry = self.lungs[k]
        while True:
            u, v = self.rng.uniform(-0.8, 0.8, size=2)
            if low:
                v = abs(v) * 0.7 + 0.1
            if u * u + v * v <= 0.64:
                return (cx + u * rx, cy + v * ry)


def _finding(chest: _Chest, name: str, at: tuple[float, float] | None) -> tuple[FloatArray, float]:
    """Polygon ``(n, 2)`` (x, y) and attenuation change of one finding."""
    rng, s = chest.rng, chest.scale
    side = int(rng.integers(2))
    cx, cy, rx, ry = chest.lungs[side]
    outward = -1.0 if side == 0 else 1.0

    def blob(r_lo: float, r_hi: float, aspect: float = 1.0, low: bool = False) -> FloatArray:
        centre = at or chest.lung_point(side=side, low=low)
        r = rng.uniform(r_lo, r_hi) * s
        return star_polygon(rng, centre, (r * aspect, r), angle=rng.uniform(0, np.pi))

    def crescent(t0: float, t1: float, thickness: float) -> FloatArray:
        outer = _ellipse_arc((cx, cy), (rx, ry), t0, t1)
        inner = _ellipse_arc((cx, cy), (rx * (1 - thickness), ry * (1 - thickness / 2)), t1, t0)
        return np.vstack([outer, inner])

    lateral = (np.pi - 0.9, np.pi + 0.9) if side == 0 else (-0.9, 0.9)
    makers: dict[str, Callable[[], tuple[FloatArray, float]]] = {
        "Nodule": lambda: (blob(8, 22), 0.16),
        "Mass": lambda: (blob(35, 75), 0.18),
        "Calcification": lambda: (blob(4, 9), 0.3),
        "Consolidation": lambda: (blob(60, 120), 0.14),
        "Atelectasis": lambda: (blob(25, 45, aspect=2.5, low=True), 0.12),
        "Fibrosis": lambda: (blob(40, 80, low=True), 0.09),
        "Emphysema": lambda: (blob(70, 110), -0.07),
        "Diffuse Nodule": lambda: (blob(90, 130, aspect=0.8), 0.07),
        "Fracture": lambda: (
            star_polygon(
                rng,
                (cx + outward * rx * rng.uniform(0.6, 0.9), cy + ry * rng.uniform(-0.6, 0.3)),
                (14 * s, 7 * s),
                roughness=0.05,
            ),
            -0.05,
        ),
        # the lung base below a chord that rises laterally (the meniscus)
        "Effusion": lambda: (
            _ellipse_arc(
                (cx, cy),
                (rx, ry),
                np.pi / 2 - rng.uniform(0.4, 0.8) * outward,
                np.pi / 2 + rng.uniform(0.9, 1.3) * outward,
            ),
            0.22,
        ),
        "Pleural Thickening": lambda: (crescent(*lateral, 0.07), 0.12),
        "Pneumothorax": lambda: (
            crescent(-np.pi / 2 + 0.1 * outward, -np.pi / 2 + 1.4 * outward, 0.25),
            -0.12,
        ),
        "Cardiomegaly": lambda: (
            star_polygon(rng, chest.heart[:2], chest.heart[2:], points=32, roughness=0.02),
            0.0,
        ),
    }
    return makers[name]()


def _soft_mask(
    polygon: npt.NDArray[np.int_], width: int, height: int, blur: float
) -> tuple[tuple[slice, slice], FloatArray]:
    """The polygon filled and blurred by ``blur`` pixels, on its bounding box (+ margin)."""
    from PIL import Image, ImageDraw

    margin = math.ceil(3 * blur) + 1
    x0, y0 = max(int(polygon[:, 0].min()) - margin, 0), max(int(polygon[:, 1].min()) - margin, 0)
    x1 = min(int(polygon[:, 0].max()) + margin + 1, width)
    y1 = min(int(polygon[:, 1].max()) + margin + 1, height)
    canvas = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(canvas).polygon([(int(x) - x0, int(y) - y0) for x, y in polygon], fill=255)
    mask = np.asarray(canvas, dtype=np.float32) / np.float32(255.0)
    return (slice(y0, y1), slice(x0, x1)), ndimage.gaussian_filter(mask, blur)


def _pick_classes(rng: np.random.Generator, index: int, chest: _Chest) -> list[tuple[str, int]]:
    """Class names of an image's findings; ``(name, i)`` places finding ``name`` inside ``i``."""
    if index % 8 == 7:
        return []
    weights = _WEIGHTS / _WEIGHTS.sum()
    names = [str(n) for n in rng.choice(CLASSES, size=int(rng.integers(1, 5)), p=weights)]
    names = [n for n in names if n != "Cardiomegaly"]
    if chest.cardiomegaly:
        names.append("Cardiomegaly")
    picks = [(n, -1) for n in names]
    if index % 4 == 1:
        host, inner = [
            ("Consolidation", "Nodule"),
            ("Effusion", "Atelectasis"),
            ("Mass", "Calcification"),
        ][int(rng.integers(3))]
        picks += [(host, -1), (inner, len(picks))]
    return picks


def _write_case(
    out: Path, index: int, seed: int, size_xyz: tuple[int, ...], spacing: Spacing
) -> CaseInfo:
    from PIL import Image

    del spacing
    rng = case_rng(seed, _CODE, index)
    width, height = size_xyz
    chest = _Chest(rng, width, height)
    att = chest.attenuation()
    syms: list[str] = []
    polygons: list[Polygon] = []
    boxes: list[list[int]] = []
    for name, host in _pick_classes(rng, index, chest):
        at = None
        if host >= 0:
            hp = np.asarray(polygons[host], dtype=np.float64)
            at = (float(hp[:, 0].mean()), float(hp[:, 1].mean()))
        polygon, change = _finding(chest, name, at)
        poly = np.clip(np.rint(polygon), 0, [width - 1, height - 1]).astype(int)
        box, mask = _soft_mask(poly, width, height, 3.0 * chest.scale)
        if name == "Diffuse Nodule":
            dots = (rng.random(mask.shape) < 0.004).astype(np.float32)
            mask = mask * np.clip(ndimage.gaussian_filter(dots, 2.5) * 12.0, 0.0, 1.0)
        att[box] += np.float32(change) * mask
        syms.append(name)
        polygons.append(poly.tolist())
        boxes.append(
            [
                int(poly[:, 0].min()),
                int(poly[:, 1].min()),
                int(poly[:, 0].max()),
                int(poly[:, 1].max()),
            ]
        )
    blurred = ndimage.gaussian_filter(att, 1.5 * chest.scale)
    noisy = blurred + np.float32(0.015) * rng.standard_normal(blurred.shape, dtype=np.float32)
    pixels = np.clip(np.rint(255.0 * np.clip(noisy, 0.0, 1.0) ** 0.85), 0, 255).astype(np.uint8)
    subset = "test" if index % 5 == 4 else "train"
    name = image_name(index)
    path = out / subset / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG", compress_level=4)
    entry: dict[str, Any] = {"file_name": name, "syms": syms, "boxes": boxes, "polygons": polygons}
    return CaseInfo(
        case_id=name.removesuffix(".png"), objects=len(syms), row={"subset": subset, "entry": entry}
    )


def _write_index(out: Path, infos: Sequence[CaseInfo]) -> None:
    for subset, file_name in _ANNOTATIONS.items():
        entries = [info.row["entry"] for info in infos if info.row["subset"] == subset]
        (out / file_name).write_text(json.dumps(entries) + "\n")


#: How ``write_phantoms("chestxdet", ...)`` writes this task (size: width x height, pixels).
WRITER = TaskWriter(
    task="chestxdet",
    code=_CODE,
    default_cases=16,
    presets={"small": (1024, 1024), "full": (1024, 1024)},
    spacing={"small": (1.0, 1.0), "full": (1.0, 1.0)},
    write_case=_write_case,
    write_index=_write_index,
    layout=("train", "test", *_ANNOTATIONS.values()),
)
