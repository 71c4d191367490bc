"""Primitives of the phantom generators against analytic and independent oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from evaluator.datasets.phantoms._anatomy import BODY_PARTS, Frame, render_body
from evaluator.datasets.phantoms._common import PET_FWHM_MM, parse_size, pet_image
from evaluator.datasets.phantoms._shapes import (
    FWHM_TO_SIGMA,
    Grid,
    case_rng,
    cylinder,
    ellipsoid,
    place_lesions,
    psf_blur,
    random_rotation,
    resample_to_grid,
    tube,
)
from evaluator.datasets.phantoms.autopet import WRITER as AUTOPET
from evaluator.datasets.phantoms.chestxdet import WRITER as CHESTXDET
from evaluator.errors import CCBenchError


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (3.0, 0.8, 0.8), (2.0, 2.0364, 2.0364)])
def test_ellipsoid_volume_matches_analytic(spacing: tuple[float, float, float]) -> None:
    radii = (14.0, 9.0, 11.0)
    grid = Grid((60, 60, 60), spacing, tuple(-30 * s for s in spacing))
    box = ellipsoid(grid, (0.3, -0.2, 0.1), radii)
    assert box is not None
    volume = box[1].sum() * np.prod(spacing)
    assert volume == pytest.approx(4 / 3 * math.pi * np.prod(radii), rel=0.06)


def test_rotated_ellipsoid_keeps_volume_and_turns() -> None:
    grid = Grid((50, 50, 50), (1.0, 1.0, 1.0), (-25.0, -25.0, -25.0))
    radii = (4.0, 4.0, 16.0)  # long along x
    straight = ellipsoid(grid, (0.0, 0.0, 0.0), radii)
    # rows are the ellipsoid's axes: its third axis (16 mm) now points along z
    turned = ellipsoid(
        grid, (0.0, 0.0, 0.0), radii, rotation=np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]])
    )
    assert straight is not None and turned is not None
    assert turned[1].sum() == straight[1].sum()
    _, mask = turned
    extent_z = np.flatnonzero(mask.any(axis=(1, 2)))
    assert extent_z.max() - extent_z.min() + 1 == 33  # -16..16 mm
    rot = random_rotation(np.random.default_rng(3))
    assert np.allclose(rot @ rot.T, np.eye(3)) and np.linalg.det(rot) == pytest.approx(1.0)


def test_ellipsoid_shell_and_tiny_lesion() -> None:
    grid = Grid((30, 30, 30), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    full = ellipsoid(grid, (15.0, 15.0, 15.0), (10.0, 10.0, 10.0))
    shell = ellipsoid(grid, (15.0, 15.0, 15.0), (10.0, 10.0, 10.0), inner=0.5)
    assert full is not None and shell is not None
    expected = 4 / 3 * math.pi * (10**3 - 5**3)
    assert shell[1].sum() == pytest.approx(expected, rel=0.06)
    # a 0.2 mm lesion between voxel centres still owns the nearest voxel
    tiny = ellipsoid(grid, (4.4, 4.4, 4.4), (0.2, 0.2, 0.2), keep_centre=True)
    assert tiny is not None and tiny[1].sum() == 1
    sl, mask = tiny
    assert tuple(s.start + int(np.argwhere(mask)[0][k]) for k, s in enumerate(sl)) == (4, 4, 4)


def test_tube_and_cylinder_volumes() -> None:
    grid = Grid((80, 40, 40), (1.0, 1.0, 1.0), (0.0, -20.0, -20.0))
    box = tube(grid, (10.0, 0.0, 0.0), (60.0, 0.0, 0.0), 6.0)
    assert box is not None
    capsule = math.pi * 36 * 50 + 4 / 3 * math.pi * 216
    assert box[1].sum() == pytest.approx(capsule, rel=0.05)
    cyl = cylinder(grid, (10.0, 59.0), (0.0, 0.0), (8.0, 12.0))
    assert cyl is not None
    assert cyl[1].sum() == pytest.approx(math.pi * 8 * 12 * 50, rel=0.05)


@pytest.mark.parametrize("spacing", [(2.0, 2.0, 2.0), (3.0, 0.977, 0.977)])
def test_psf_blur_has_requested_fwhm_in_mm(spacing: tuple[float, float, float]) -> None:
    shape = (41, 81, 81)
    volume = np.zeros(shape, np.float32)
    volume[20, 40, 40] = 1.0
    out = psf_blur(volume, spacing=spacing, fwhm_mm=7.0).astype(np.float64)
    assert out.sum() == pytest.approx(1.0, rel=1e-4)
    for axis in range(3):
        profile = out.sum(axis=tuple(a for a in range(3) if a != axis))
        pos = (np.arange(shape[axis]) - shape[axis] // 2) * spacing[axis]
        sigma = math.sqrt(float((profile * pos**2).sum()))
        # discrete sampling adds spacing^2/12 at most; 7 mm FWHM is sigma 2.97 mm
        assert sigma == pytest.approx(7.0 * FWHM_TO_SIGMA, abs=0.1 + spacing[axis] / 10)


def test_pet_image_blurs_with_the_pet_psf_and_adds_noise() -> None:
    """A point source comes out with the 6.5 mm FWHM PSF (noise off); noise grows with SUV."""
    spacing = (2.0, 2.0364, 2.0364)
    point = np.zeros((31, 31, 31), np.float32)
    point[15, 15, 15] = 1000.0
    pet = pet_image(point, np.random.default_rng(0), spacing=spacing, noise=0.0)
    profile = pet.sum(axis=(0, 1)).astype(np.float64)
    pos = (np.arange(31) - 15) * spacing[2]
    sigma = math.sqrt(float((profile * pos**2).sum() / profile.sum()))
    assert sigma == pytest.approx(PET_FWHM_MM * FWHM_TO_SIGMA, abs=0.25)
    flat = [
        pet_image(np.full((24, 24, 24), suv, np.float32), np.random.default_rng(1), spacing=spacing)
        for suv in (1.0, 9.0)
    ]
    assert flat[1].std() > 2 * flat[0].std() > 0 and pet.dtype == np.float32


def test_resample_matches_simpleitk_linear() -> None:
    rng = np.random.default_rng(0)
    src = Grid((12, 20, 20), (3.0, 2.0, 2.0), (-5.0, 1.0, -3.0))
    dst = Grid((9, 11, 13), (3.5, 3.0, 2.5), (1.0, 6.0, 4.0))  # strictly inside src
    data = ndimage.gaussian_filter(rng.standard_normal(src.shape), 2).astype(np.float32)
    ours = resample_to_grid(data, src, dst)
    image = sitk.GetImageFromArray(data)
    image.SetSpacing(src.spacing[::-1])
    image.SetOrigin(src.origin[::-1])
    ref = sitk.Image(dst.shape[::-1], sitk.sitkFloat32)
    ref.SetSpacing(dst.spacing[::-1])
    ref.SetOrigin(dst.origin[::-1])
    theirs = sitk.GetArrayFromImage(sitk.Resample(image, ref, sitk.Transform(), sitk.sitkLinear))
    assert np.allclose(ours, theirs, atol=1e-5)


def test_place_lesions_touching_pairs_are_adjacent() -> None:
    grid = Grid((60, 60, 60), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    allowed = np.zeros(grid.shape, bool)
    allowed[10:50, 10:50, 10:50] = True
    rng = np.random.default_rng(7)
    radii = np.full(30, 5.0)
    lesions = place_lesions(rng, grid, allowed, radii, uptake=(3.0, 9.0), touch_fraction=0.5)
    assert len(lesions) == 30
    assert all(3.0 <= les.uptake <= 9.0 for les in lesions)
    centres = np.array([les.centre_mm for les in lesions])
    mean_r = np.array([les.mean_radius_mm for les in lesions])
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=2) / (
        mean_r[:, None] + mean_r[None]
    )
    np.fill_diagonal(gaps, np.inf)
    touching = gaps.min(axis=1) <= 1.05
    assert touching.sum() >= 6  # half the lesions were asked to touch a partner
    # and the rasterised masks of a touching pair meet or nearly meet (gap <= 1 voxel)
    i = int(np.argmax(touching))
    j = int(np.argmin(gaps[i]))
    masks = []
    for k in (i, j):
        m = np.zeros(grid.shape, bool)
        box = lesions[k].box(grid)
        assert box is not None
        m[box[0]] = box[1]
        masks.append(m)
    assert (ndimage.binary_dilation(masks[0], iterations=2) & masks[1]).any()


def test_case_rng_is_per_case_and_per_task() -> None:
    draw = [case_rng(5, 1, i).integers(1 << 30) for i in range(4)]
    assert draw == [case_rng(5, 1, i).integers(1 << 30) for i in range(4)]
    assert len(set(draw)) == 4
    assert case_rng(5, 2, 0).integers(1 << 30) != draw[0]
    assert case_rng(6, 1, 0).integers(1 << 30) != draw[0]


def test_body_parts_land_on_their_side() -> None:
    """LPS: +x is the patient's left; the liver is on the right, the spleen on the left."""
    grid = Grid((48, 64, 64), (5.0, 4.0, 4.0), (0.0, -126.0, -126.0))
    body = render_body(Frame(grid, (0.45, 0.66), 0.8))
    names = {p.name: i + 1 for i, p in enumerate(BODY_PARTS)}
    x = np.arange(grid.shape[2]) * grid.spacing[2] + grid.origin[2]
    centroid = {
        n: float(
            (x[None, None, :] * (body.index == names[n])).sum() / (body.index == names[n]).sum()
        )
        for n in ("liver", "spleen", "right kidney", "left kidney")
    }
    assert centroid["liver"] < 0 < centroid["spleen"]
    assert centroid["right kidney"] < 0 < centroid["left kidney"]


def test_parse_size() -> None:
    assert parse_size("full", AUTOPET) == ((400, 400, 326), (2.0, 2.0364, 2.0364))
    assert parse_size("64x64x48", AUTOPET)[0] == (64, 64, 48)
    assert parse_size("512X512", CHESTXDET)[0] == (512, 512)
    for bad in ("huge", "64x64", "0x10x10", "axbxc"):
        with pytest.raises(CCBenchError, match="phantom size"):
            parse_size(bad, AUTOPET)
