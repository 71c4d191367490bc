"""Shared primitives of the phantom generators: grids, shapes on bounding boxes, PSF, noise, I/O.

Everything works in world millimetres in array axis order ``(z, y, x)``; a :class:`Grid` maps
world millimetres to voxel indices (identity direction, so world = origin + index * spacing).
Shapes are rasterised on their own bounding box only: a lesion of a few voxels costs a few
voxels, not a pass over the whole volume.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from evaluator.typing import BoolArray, FloatArray, Spacing

__all__ = [
    "FWHM_TO_SIGMA",
    "Box",
    "Grid",
    "Lesion",
    "case_rng",
    "cylinder",
    "ellipsoid",
    "paint",
    "place_lesions",
    "psf_blur",
    "random_rotation",
    "rasterise_lesions",
    "resample_to_grid",
    "shell_of",
    "tube",
    "write_nifti",
]

#: sigma = FWHM / (2 sqrt(2 ln 2)) for a Gaussian.
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))

#: A bounding box (tuple of slices, array order) and the mask of the shape inside it.
Box = tuple[tuple[slice, ...], BoolArray]


@dataclass(frozen=True)
class Grid:
    """A voxel grid in world millimetres, array axis order ``(z, y, x)``, identity direction.

    Parameters
    ----------
    shape
        Voxels per axis ``(z, y, x)``.
    spacing
        Voxel size per axis ``(z, y, x)``, mm.
    origin
        World position of voxel ``(0, 0, 0)``'s centre ``(z, y, x)``, mm.

    Examples
    --------
    >>> g = Grid((4, 10, 10), (3.0, 1.0, 1.0), (0.0, -5.0, -5.0))
    >>> g.to_voxel((3.0, 0.0, 0.0))
    (1.0, 5.0, 5.0)
    >>> g.extent_mm
    (12.0, 10.0, 10.0)
    """

    shape: tuple[int, ...]
    spacing: Spacing
    origin: tuple[float, ...]

    @classmethod
    def scanner(
        cls,
        size_xyz: Sequence[int],
        spacing: Spacing,
        *,
        z_origin: float,
        shift_yx: tuple[float, float] = (0.0, 0.0),
    ) -> Grid:
        """A 3D grid of ``size_xyz`` voxels (SimpleITK order), centred in-plane on the scanner
        axis (plus ``shift_yx`` mm), its first slice at ``z_origin`` mm; ``spacing`` is
        ``(z, y, x)``.

        Examples
        --------
        >>> Grid.scanner((4, 2, 3), (2.0, 1.0, 1.0), z_origin=-6.0).origin
        (-6.0, -0.5, -1.5)
        """
        shape = (int(size_xyz[2]), int(size_xyz[1]), int(size_xyz[0]))
        origin = (
            float(z_origin),
            -(shape[1] - 1) * spacing[1] / 2.0 + shift_yx[0],
            -(shape[2] - 1) * spacing[2] / 2.0 + shift_yx[1],
        )
        return cls(shape, tuple(spacing), origin)

    @property
    def extent_mm(self) -> tuple[float, ...]:
        """Field of view per axis, mm (voxels times spacing)."""
        return tuple(n * s for n, s in zip(self.shape, self.spacing, strict=True))

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel, millilitres."""
        return float(np.prod(self.spacing)) / 1000.0

    def to_voxel(self, point_mm: npt.ArrayLike) -> tuple[float, ...]:
        """World point (mm, ``(z, y, x)``) to continuous voxel index."""
        point = np.asarray(point_mm, dtype=np.float64)
        return tuple(
            (float(p) - o) / s for p, o, s in zip(point, self.origin, self.spacing, strict=True)
        )

    def centre_mm(self) -> tuple[float, ...]:
        """World position of the centre of the field of view, mm."""
        return tuple(
            o + (n - 1) * s / 2.0
            for o, n, s in zip(self.origin, self.shape, self.spacing, strict=True)
        )


def case_rng(seed: int, task_code: int, index: int) -> np.random.Generator:
    """The random generator of one case: independent of every other case and task.

    Case ``index`` gets the same stream whatever the number of cases written, so writing 4 or
    12 cases gives identical first 4 cases.

    Examples
    --------
    >>> a = case_rng(0, 1, 3).integers(1000)
    >>> b = case_rng(0, 1, 3).integers(1000)
    >>> bool(a == b), bool(case_rng(0, 1, 4).integers(1000, size=4).tolist() != [a] * 4)
    (True, True)
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(task_code, index)))


def _box(
    grid: Grid, centre_mm: npt.ArrayLike, half_mm: npt.ArrayLike
) -> tuple[tuple[slice, ...], list[FloatArray]] | None:
    """Slices of the box ``centre +- half`` (clipped) and open-grid world offsets from the centre."""
    centre_mm = np.asarray(centre_mm, dtype=np.float64)
    half_mm = np.asarray(half_mm, dtype=np.float64)
    slices = []
    offsets: list[FloatArray] = []
    ndim = len(grid.shape)
    for axis in range(ndim):
        c = float(centre_mm[axis] - grid.origin[axis]) / grid.spacing[axis]
        h = float(half_mm[axis]) / grid.spacing[axis]
        lo = max(math.floor(c - h), 0)
        hi = min(math.ceil(c + h) + 1, grid.shape[axis])
        if hi <= lo:
            return None
        slices.append(slice(lo, hi))
        idx = np.arange(lo, hi, dtype=np.float64)
        shape = [1] * ndim
        shape[axis] = hi - lo
        offsets.append(((idx - c) * grid.spacing[axis]).astype(np.float32).reshape(shape))
    return tuple(slices), offsets


def random_rotation(rng: np.random.Generator) -> FloatArray:
    """A uniformly random 3x3 rotation matrix (QR of a Gaussian matrix, sign-fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def ellipsoid(
    grid: Grid,
    centre_mm: npt.ArrayLike,
    radii_mm: Sequence[float],
    *,
    rotation: FloatArray | None = None,
    wobble: FloatArray | None = None,
    inner: float = 0.0,
    keep_centre: bool = False,
) -> Box | None:
    """Rasterise an ellipsoid (optionally rotated, irregular, hollow) on its bounding box.

    Parameters
    ----------
    grid
        The voxel grid.
    centre_mm, radii_mm
        Centre (world mm) and semi-axes (mm), ``(z, y, x)``; semi-axes are along the rotated
        axes when ``rotation`` is given.
    rotation
        3x3 matrix whose rows are the ellipsoid's axes in world ``(z, y, x)``; ``None`` means
        axis-aligned.
    wobble
        ``(k, 4)`` array of rows ``(amplitude, wz, wy, wx)``: the surface radius is scaled by
        ``1 + sum_k amplitude_k * cos(w_k . u)`` for the unit direction ``u``, giving an
        irregular, lobulated blob. Amplitudes should sum to less than about 0.4.
    inner
        Fraction in ``[0, 1)``: voxels closer to the centre than ``inner`` times the surface are
        left out (a shell of relative thickness ``1 - inner``).
    keep_centre
        Always include the voxel nearest the centre (so tiny lesions are never empty).

    Returns
    -------
    tuple or None
        ``(slices, mask)`` with ``mask.shape`` equal to the box shape, or ``None`` when the box
        lies outside the grid.

    Examples
    --------
    >>> g = Grid((9, 9, 9), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    >>> sl, m = ellipsoid(g, (4.0, 4.0, 4.0), (2.0, 2.0, 2.0))
    >>> int(m.sum())  # the 33 grid points of a radius-2 ball
    33
    >>> ellipsoid(g, (50.0, 4.0, 4.0), (2.0, 2.0, 2.0)) is None
    True
    """
    radii = np.asarray(radii_mm, dtype=np.float64)
    reach = radii.max() * (1.5 if wobble is not None else 1.0)
    half = radii * (1.5 if wobble is not None else 1.0) if rotation is None else [reach] * 3
    found = _box(grid, centre_mm, half)
    if found is None:
        return None
    slices, (dz, dy, dx) = found
    r = [float(v) for v in radii]
    if rotation is None:
        qz, qy, qx = dz / r[0], dy / r[1], dx / r[2]
    else:
        rot = np.asarray(rotation, dtype=np.float64).tolist()
        qz, qy, qx = ((rot[k][0] * dz + rot[k][1] * dy + rot[k][2] * dx) / r[k] for k in range(3))
    r2 = qz * qz + qy * qy + qx * qx
    if wobble is None:
        mask = (r2 <= 1.0) & (r2 >= inner * inner)
    else:
        norm = np.sqrt(dz * dz + dy * dy + dx * dx) + np.float32(1e-6)
        uz, uy, ux = dz / norm, dy / norm, dx / norm
        outer = np.ones_like(r2)
        for amp, wz, wy, wx in np.asarray(wobble, dtype=np.float64).tolist():
            outer += amp * np.cos(wz * uz + wy * uy + wx * ux)
        mask = (r2 <= outer * outer) & (r2 >= (inner * outer) ** 2)
    if keep_centre:
        centre_idx = tuple(
            min(max(round(v) - s.start, 0), n - 1)
            for v, s, n in zip(grid.to_voxel(centre_mm), slices, mask.shape, strict=True)
        )
        mask[centre_idx] = True
    return slices, mask


def tube(
    grid: Grid, start_mm: npt.ArrayLike, end_mm: npt.ArrayLike, radius_mm: float
) -> Box | None:
    """Rasterise a capsule: points within ``radius_mm`` of the segment ``start``-``end``.

    Examples
    --------
    >>> g = Grid((10, 5, 5), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    >>> sl, m = tube(g, (2.0, 2.0, 2.0), (7.0, 2.0, 2.0), 0.5)
    >>> int(m.sum())  # one voxel per slice from z = 2 to z = 7
    6
    """
    a = np.asarray(start_mm, dtype=np.float64)
    b = np.asarray(end_mm, dtype=np.float64)
    centre = (a + b) / 2.0
    half = np.abs(b - a) / 2.0 + radius_mm
    found = _box(grid, centre, half)
    if found is None:
        return None
    slices, offsets = found
    d = b - a
    length2 = float(d @ d) or 1e-12
    # position relative to a, in world mm
    rel = [off + (c - s) for off, c, s in zip(offsets, centre, a, strict=True)]
    t = np.clip(sum(r * dk for r, dk in zip(rel, d, strict=True)) / length2, 0.0, 1.0)
    dist2 = sum((r - t * dk) ** 2 for r, dk in zip(rel, d, strict=True))
    return slices, np.asarray(dist2 <= radius_mm * radius_mm)


def paint(volume: npt.NDArray[np.generic], box: Box | None, value: float) -> None:
    """Set ``volume`` to ``value`` inside a rasterised shape (no-op for ``None``)."""
    if box is None:
        return
    slices, mask = box
    volume[slices][mask] = value


def shell_of(mask: BoolArray, *, spacing: Spacing, width_mm: float) -> BoolArray:
    """Voxels outside ``mask`` within ``width_mm`` of it (the surroundings of a structure).

    Examples
    --------
    >>> m = np.zeros((1, 5, 5), bool); m[0, 2, 2] = True
    >>> int(shell_of(m, spacing=(1.0, 1.0, 1.0), width_mm=1.0).sum())
    4
    """
    dist = ndimage.distance_transform_edt(~mask, sampling=spacing)
    return np.asarray((dist > 0) & (dist <= width_mm))


def psf_blur(volume: FloatArray, *, spacing: Spacing, fwhm_mm: float) -> FloatArray:
    """Blur with an isotropic Gaussian point-spread function given in mm (float32 result).

    Parameters
    ----------
    volume
        Activity, any shape; ``spacing`` in the same axis order (mm).
    fwhm_mm
        Full width at half maximum of the PSF, mm (PET scanners: about 5-8 mm).

    Examples
    --------
    >>> v = np.zeros((1, 1, 41), np.float32); v[0, 0, 20] = 1.0
    >>> out = psf_blur(v, spacing=(1.0, 1.0, 1.0), fwhm_mm=10.0)
    >>> round(float(out.sum()), 4), bool(out[0, 0, 15] > out[0, 0, 20] / 2 - 0.01)
    (1.0, True)
    """
    sigma = [fwhm_mm * FWHM_TO_SIGMA / s for s in spacing]
    return np.asarray(
        ndimage.gaussian_filter(volume.astype(np.float32), sigma=sigma, mode="nearest"),
        dtype=np.float32,
    )


def resample_to_grid(
    volume: FloatArray, source: Grid, target: Grid, *, order: int = 1
) -> FloatArray:
    """Sample ``volume`` (on ``source``) at the voxel centres of ``target`` (edge values outside).

    Examples
    --------
    >>> src = Grid((1, 1, 5), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    >>> dst = Grid((1, 1, 2), (1.0, 1.0, 2.0), (0.0, 0.0, 0.5))
    >>> resample_to_grid(np.arange(5.0).reshape(1, 1, 5), src, dst).tolist()
    [[[0.5, 2.5]]]
    """
    axes = []
    for axis in range(len(target.shape)):
        world = target.origin[axis] + np.arange(target.shape[axis]) * target.spacing[axis]
        axes.append((world - source.origin[axis]) / source.spacing[axis])
    coords = np.meshgrid(*axes, indexing="ij")
    return np.asarray(
        ndimage.map_coordinates(volume, coords, order=order, mode="nearest"), dtype=np.float32
    )


@dataclass(frozen=True)
class Lesion:
    """One synthetic lesion: an irregular, rotated ellipsoid in world mm.

    ``radii_mm`` are the semi-axes before the surface wobble; ``uptake`` is the SUV at its
    centre before blurring; ``hu_delta`` the (weak) CT contrast added to the host tissue.
    """

    centre_mm: tuple[float, float, float]
    radii_mm: tuple[float, float, float]
    rotation: FloatArray
    wobble: FloatArray
    uptake: float
    hu_delta: float
    label: int = 1

    @property
    def mean_radius_mm(self) -> float:
        """Geometric mean of the semi-axes, mm."""
        return float(np.prod(self.radii_mm) ** (1.0 / 3.0))

    def box(self, grid: Grid) -> Box | None:
        """The lesion rasterised on ``grid`` (never empty when its centre is inside)."""
        return ellipsoid(
            grid,
            self.centre_mm,
            self.radii_mm,
            rotation=self.rotation,
            wobble=self.wobble,
            keep_centre=True,
        )


def _random_lesion(
    rng: np.random.Generator,
    centre_mm: FloatArray,
    radius_mm: float,
    *,
    uptake: float,
    hu_delta: float,
    label: int,
) -> Lesion:
    aspect = rng.uniform(0.7, 1.3, size=3)
    aspect = aspect / np.prod(aspect) ** (1.0 / 3.0)
    n_lobes = int(rng.integers(2, 5))
    wobble = np.column_stack(
        [rng.uniform(0.03, 0.12, n_lobes), rng.normal(0.0, 2.5, size=(n_lobes, 3))]
    )
    return Lesion(
        centre_mm=(float(centre_mm[0]), float(centre_mm[1]), float(centre_mm[2])),
        radii_mm=(
            float(radius_mm * aspect[0]),
            float(radius_mm * aspect[1]),
            float(radius_mm * aspect[2]),
        ),
        rotation=random_rotation(rng),
        wobble=wobble,
        uptake=uptake,
        hu_delta=hu_delta,
        label=label,
    )


def _free_centre(
    rng: np.random.Generator,
    grid: Grid,
    candidates: npt.NDArray[np.intp],
    radius: float,
    others: Sequence[Lesion],
    attempts: int = 25,
) -> FloatArray:
    """A random candidate centre, clear of ``others`` by 1.2x the radii sum if one is found."""
    centres = np.asarray([o.centre_mm for o in others]).reshape(-1, 3)
    reach = (np.asarray([o.mean_radius_mm for o in others]) + radius) * 1.2
    centre = np.zeros(3)
    for _ in range(attempts):
        flat = int(candidates[int(rng.integers(candidates.size))])
        index = np.unravel_index(flat, grid.shape)
        jitter = rng.uniform(-0.5, 0.5, size=3)
        centre = np.asarray(grid.origin) + (np.asarray(index) + jitter) * np.asarray(grid.spacing)
        if not len(others) or bool(np.all(np.linalg.norm(centres - centre, axis=1) > reach)):
            break
    return centre


def place_lesions(
    rng: np.random.Generator,
    grid: Grid,
    allowed: BoolArray,
    radii_mm: npt.ArrayLike,
    *,
    uptake: tuple[float, float],
    hu_delta: tuple[float, float] = (-10.0, 20.0),
    touch_fraction: float = 0.15,
    label: int = 1,
    near: Sequence[Lesion] = (),
) -> list[Lesion]:
    """Place lesions with centres inside ``allowed``; some touch an earlier one.

    Parameters
    ----------
    rng
        The case's generator.
    grid, allowed
        Candidate centres: the voxels where ``allowed`` is true (same shape as the grid).
    radii_mm
        Mean radius of each lesion to place, mm.
    uptake
        ``(low, high)``: SUV at the lesion centre, drawn log-uniformly.
    hu_delta
        ``(low, high)``: CT contrast over the host tissue, HU, drawn uniformly (weak on purpose).
    touch_fraction
        Probability that a lesion is placed against an earlier one (or one of ``near``), at a
        centre distance of 0.75-1.05 times the sum of their mean radii: the two merge into one
        connected component or nearly do. Other lesions keep clear of the earlier ones (1.2
        times the radii sum) when a free place is found within a few tries.
    label
        Label value of these lesions.
    near
        Lesions already placed (e.g. a primary tumour) that new lesions may touch.

    Returns
    -------
    list of Lesion
        Empty when ``allowed`` is empty or no radii are given.
    """
    candidates = np.flatnonzero(allowed)
    placed: list[Lesion] = []
    if candidates.size == 0:
        return placed
    log_lo, log_hi = math.log(uptake[0]), math.log(uptake[1])
    for radius in np.atleast_1d(np.asarray(radii_mm, dtype=np.float64)):
        partners = [*near, *placed]
        centre: FloatArray | None = None
        if partners and rng.random() < touch_fraction:
            other = partners[int(rng.integers(len(partners)))]
            direction = rng.standard_normal(3)
            direction /= np.linalg.norm(direction)
            distance = (other.mean_radius_mm + radius) * rng.uniform(0.75, 1.05)
            centre = np.asarray(other.centre_mm) + direction * distance
            voxel = tuple(round(v) for v in grid.to_voxel(centre))
            inside = all(0 <= v < n for v, n in zip(voxel, grid.shape, strict=True))
            if not inside or not allowed[voxel]:
                centre = None
        if centre is None:
            centre = _free_centre(rng, grid, candidates, float(radius), partners)
        placed.append(
            _random_lesion(
                rng,
                centre,
                float(radius),
                uptake=float(math.exp(rng.uniform(log_lo, log_hi))),
                hu_delta=float(rng.uniform(*hu_delta)),
                label=label,
            )
        )
    return placed


def rasterise_lesions(
    grid: Grid,
    lesions: Sequence[Lesion],
    *,
    label: npt.NDArray[np.uint8],
    activity: FloatArray | None = None,
    hu: FloatArray | None = None,
    within: BoolArray | None = None,
) -> None:
    """Paint lesions into a label map and, optionally, PET activity and CT (in place).

    The label is the lesion's ``label`` (later lesions win where two overlap). Activity inside a
    lesion becomes ``uptake * (0.75 + 0.25 * core)`` where ``core`` is 1 at the centre and 0 at the
    surface (a mildly peaked profile), never lower than the tissue's own activity. CT gets the
    lesion's ``hu_delta`` added. ``within`` (e.g. the body) clips every lesion.
    """
    for lesion in lesions:
        box = lesion.box(grid)
        if box is None:
            continue
        slices, mask = box
        if within is not None:
            mask = mask & within[slices]
        if not mask.any():
            continue
        label[slices][mask] = lesion.label
        if activity is not None:
            core = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=grid.spacing)[
                1:-1, 1:-1, 1:-1
            ]
            core = core / max(float(core.max()), 1e-6)
            region = activity[slices]
            peak = lesion.uptake * (0.75 + 0.25 * core)
            region[mask] = np.maximum(region[mask], peak[mask])
        if hu is not None:
            hu[slices][mask] += lesion.hu_delta


def write_nifti(array: npt.NDArray[np.generic], grid: Grid, path: Path) -> None:
    """Write ``array`` (``(z, y, x)``) as compressed NIfTI with the grid's spacing and origin.

    SimpleITK's ``(x, y, z)`` order is applied here; the direction is the identity. The output is
    byte-for-byte deterministic for the same array and grid.
    """
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing(tuple(float(s) for s in reversed(grid.spacing)))
    image.SetOrigin(tuple(float(o) for o in reversed(grid.origin)))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), useCompression=True)


def cylinder(
    grid: Grid,
    z_range_mm: tuple[float, float],
    centre_yx_mm: Sequence[float],
    radii_yx_mm: Sequence[float],
    *,
    inner: float = 0.0,
) -> Box | None:
    """Rasterise an elliptic cylinder along z (optionally hollow, see :func:`ellipsoid`).

    Examples
    --------
    >>> g = Grid((4, 5, 5), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    >>> sl, m = cylinder(g, (1.0, 2.0), (2.0, 2.0), (1.0, 1.0))
    >>> m.shape, int(m.sum())  # 2 slices of a 5-voxel disc
    ((2, 3, 3), 10)
    """
    z_lo, z_hi = z_range_mm
    centre = ((z_lo + z_hi) / 2.0, centre_yx_mm[0], centre_yx_mm[1])
    found = _box(grid, centre, ((z_hi - z_lo) / 2.0, radii_yx_mm[0], radii_yx_mm[1]))
    if found is None:
        return None
    slices, (dz, dy, dx) = found
    r2 = (dy / radii_yx_mm[0]) ** 2 + (dx / radii_yx_mm[1]) ** 2
    inside_z = np.abs(dz) <= (z_hi - z_lo) / 2.0
    return slices, np.asarray(inside_z & (r2 <= 1.0) & (r2 >= inner * inner))
