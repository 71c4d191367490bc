"""What the phantom task modules share: the writer description, per-case summaries, CT and PET
image formation, and size parsing."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from evaluator.datasets.phantoms._shapes import psf_blur
from evaluator.errors import PhantomError
from evaluator.typing import FloatArray, Spacing

__all__ = [
    "PET_FWHM_MM",
    "CaseInfo",
    "PhantomResult",
    "TaskWriter",
    "ct_image",
    "lesion_radii",
    "parse_size",
    "pet_image",
    "write_csv",
]

#: Full width at half maximum of the simulated PET point-spread function, mm.
PET_FWHM_MM = 6.5


@dataclass(frozen=True)
class CaseInfo:
    """What one written case holds: its id, its objects (lesions, organs or instances) and the
    metadata (``row``) that the task's table or annotation list receives."""

    case_id: str
    objects: int
    row: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskWriter:
    """How one phantom task is written.

    ``presets`` maps ``"small"``/``"full"`` to a size (x, y[, z]) in voxels; ``spacing`` maps the
    same keys to the voxel size in array order ``(z, y, x)`` (custom sizes use the ``small``
    spacing). ``write_case(out, index, seed, size_xyz, spacing)`` writes case ``index``;
    ``write_index(out, infos)`` writes the metadata/annotation tables once all cases exist.
    ``layout`` names the top-level files and folders a run writes (replaced by the next run).
    """

    task: str
    code: int
    default_cases: int
    presets: dict[str, tuple[int, ...]]
    spacing: dict[str, Spacing]
    write_case: Callable[[Path, int, int, tuple[int, ...], Spacing], CaseInfo]
    write_index: Callable[[Path, Sequence[CaseInfo]], None]
    layout: tuple[str, ...]


@dataclass(frozen=True)
class PhantomResult:
    """Summary of one ``write_phantoms`` call (what ``print_phantom_summary`` shows).

    Attributes
    ----------
    task
        Task name (``autopet``, ``hecktor``, ``btcv``, ``chestxdet``).
    out
        Root folder written.
    cases
        Number of cases (images) written.
    objects
        Total number of lesions (3D tasks; BTCV: organs) or annotated instances (ChestXDet).
    negatives
        Cases without any lesion or instance.
    max_objects
        Largest number of objects in one case.
    size
        Voxels per axis of the (CT) image, ``(x, y[, z])`` as on the command line.
    spacing
        Voxel size ``(x, y[, z])`` mm, SimpleITK order (pixels for 2D: 1.0).
    seconds
        Wall-clock time of the call.
    """

    task: str
    out: Path
    cases: int
    objects: int
    negatives: int
    max_objects: int
    size: tuple[int, ...]
    spacing: tuple[float, ...]
    seconds: float


def parse_size(size: str | Sequence[int], writer: TaskWriter) -> tuple[tuple[int, ...], Spacing]:
    """Parse ``small``, ``full`` or ``XxYxZ`` (``WxH`` for 2D) into a size and array spacing.

    Returns
    -------
    tuple
        ``(size_xyz, spacing_zyx)``; custom sizes get the ``small`` preset's spacing.

    Raises
    ------
    PhantomError
        For an unknown preset, a wrong number of axes or a non-positive size.
    """
    dims = len(writer.presets["small"])
    if isinstance(size, str) and size in writer.presets:
        return writer.presets[size], writer.spacing[size]
    try:
        parts = (
            tuple(int(v) for v in size.lower().split("x"))
            if isinstance(size, str)
            else tuple(int(v) for v in size)
        )
    except ValueError:
        parts = ()
    if len(parts) != dims or min(parts) < 8:
        example = "x".join(str(v) for v in writer.presets["small"])
        raise PhantomError(
            f"phantom size {size!r} for task {writer.task}: expected 'small', 'full' or "
            f"{dims} sizes of at least 8 voxels like '{example}'"
        )
    return parts, writer.spacing["small"]


def lesion_radii(
    rng: np.random.Generator, count: int, *, low_mm: float, high_mm: float
) -> npt.NDArray[np.float64]:
    """Mean lesion radii, log-uniform in ``[low_mm, high_mm]`` (volumes spread ``(high/low)^3``).

    Examples
    --------
    >>> r = lesion_radii(np.random.default_rng(0), 500, low_mm=1.5, high_mm=20.0)
    >>> bool(r.min() >= 1.5 and r.max() <= 20.0 and (r.max() / r.min()) ** 3 > 1000)
    True
    """
    return np.exp(rng.uniform(math.log(low_mm), math.log(high_mm), size=count))


def _correlated_noise(
    rng: np.random.Generator, shape: tuple[int, ...], sigma_voxels: float
) -> FloatArray:
    """Unit-variance Gaussian noise, smoothed over about ``sigma_voxels`` voxels."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    if sigma_voxels > 0:
        noise = ndimage.gaussian_filter(noise, sigma=sigma_voxels, mode="wrap")
        noise /= max(float(noise.std()), 1e-6)
    return noise


def ct_image(
    hu: FloatArray, rng: np.random.Generator, *, spacing: Spacing, noise_hu: float = 12.0
) -> npt.NDArray[np.int16]:
    """CT formation: partial-volume blur (0.6 voxel), Gaussian noise, int16 HU in [-1024, 3071].

    Examples
    --------
    >>> ct = ct_image(np.full((4, 8, 8), 40.0, np.float32), np.random.default_rng(0),
    ...               spacing=(3.0, 1.0, 1.0))
    >>> ct.dtype.name, bool(abs(ct.mean() - 40) < 5)
    ('int16', True)
    """
    del spacing  # blur is in voxels: the reconstruction kernel acts on the grid
    smooth = ndimage.gaussian_filter(hu, sigma=0.6, mode="nearest")
    smooth += noise_hu * _correlated_noise(rng, hu.shape, 0.0)
    return np.clip(np.rint(smooth), -1024, 3071).astype(np.int16)


def pet_image(
    activity: FloatArray,
    rng: np.random.Generator,
    *,
    spacing: Spacing,
    fwhm_mm: float = PET_FWHM_MM,
    noise: float = 0.12,
    resample: Callable[[FloatArray], FloatArray] | None = None,
) -> npt.NDArray[np.float32]:
    """PET formation: Gaussian PSF (mm), optional resampling, correlated Poisson-like noise.

    Parameters
    ----------
    activity
        True SUV per voxel on the grid of ``spacing`` (array order, mm).
    rng
        The case's generator.
    fwhm_mm
        PSF full width at half maximum, mm.
    noise
        Noise standard deviation at SUV 1 (it grows with ``sqrt(SUV)``).
    resample
        Maps the blurred volume onto the output grid (e.g. a coarser PET grid); identity when
        ``None``.

    Returns
    -------
    numpy.ndarray
        float32 SUV, non-negative.

    Examples
    --------
    >>> pet = pet_image(np.ones((8, 8, 8), np.float32), np.random.default_rng(0),
    ...                 spacing=(2.0, 2.0, 2.0))
    >>> pet.dtype.name, bool(0.8 < pet.mean() < 1.2), bool(pet.min() >= 0)
    ('float32', True, True)
    """
    blurred = psf_blur(activity, spacing=spacing, fwhm_mm=fwhm_mm)
    if resample is not None:
        blurred = resample(blurred)
    blurred = np.maximum(blurred, 0.0)
    blurred += noise * np.sqrt(blurred + 0.02) * _correlated_noise(rng, blurred.shape, 0.7)
    return np.maximum(blurred, 0.0).astype(np.float32)


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` (same keys each) as CSV with ``\\n`` line ends (byte-stable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=list(rows[0]) if rows else [], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
