"""The suv-threshold baseline on a hand-built body: lesions kept, brain/bladder/noise dropped."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from evaluator.learn.suv_threshold import segment_suv

SHAPE = (100, 40, 40)  # z (caudal -> cranial), y, x; 2 mm voxels


def _case() -> tuple[sitk.Image, sitk.Image, dict[str, tuple[slice, ...]]]:
    ct = np.full(SHAPE, -1000.0, np.float32)
    ct[:, 5:35, 5:35] = 40.0  # the body: z 0..99, x 5..34 (centre 19.5)
    suv = np.full(SHAPE, 1.0, np.float32)
    parts = {
        "brain": (slice(88, 98), slice(12, 28), slice(12, 28)),  # cranial 15 %
        "bladder": (slice(20, 26), slice(15, 23), slice(16, 24)),  # caudal, midline
        "lesion": (slice(50, 54), slice(10, 14), slice(8, 12)),  # 4x4x4 voxels: 0.512 mL
        "pelvic lesion": (slice(22, 25), slice(10, 13), slice(28, 31)),  # caudal, lateral: 0.216 mL
    }
    for region in parts.values():
        suv[region] = 10.0
    suv[60, 30, 30] = 10.0  # one hot voxel: 0.008 mL, noise
    images = []
    for arr in (suv, ct.astype(np.int16)):  # CT in HU as stored: int16
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing((2.0, 2.0, 2.0))
        images.append(img)
    return images[0], images[1], parts


def _kept(seg: sitk.Image, parts: dict[str, tuple[slice, ...]]) -> dict[str, bool]:
    arr = sitk.GetArrayFromImage(seg)
    return {name: bool(arr[region].all()) for name, region in parts.items()}


def test_lesions_kept_brain_bladder_and_noise_dropped() -> None:
    suv, ct, parts = _case()
    seg = segment_suv(suv, ct, threshold=4.0, min_volume_ml=0.1)
    assert _kept(seg, parts) == {
        "brain": False,
        "bladder": False,
        "lesion": True,
        "pelvic lesion": True,
    }
    arr = sitk.GetArrayFromImage(seg)
    assert arr[60, 30, 30] == 0
    assert int(arr.sum()) == 64 + 27
    assert seg.GetSpacing() == suv.GetSpacing()


def test_without_suppression_or_ct_every_hot_component_stays() -> None:
    suv, ct, parts = _case()
    for seg in (segment_suv(suv, ct, suppress=False), segment_suv(suv, None)):
        assert all(_kept(seg, parts).values())


@pytest.mark.parametrize(("threshold", "kept"), [(9.9, True), (10.1, False)])
def test_threshold_is_inclusive_and_used(threshold: float, kept: bool) -> None:
    suv, ct, parts = _case()
    seg = segment_suv(suv, ct, threshold=threshold, min_volume_ml=0.1)
    assert _kept(seg, parts)["lesion"] is kept


def test_min_volume_drops_small_components(monkeypatch: pytest.MonkeyPatch) -> None:
    suv, ct, parts = _case()
    monkeypatch.setenv("CCBENCH_MIN_VOLUME_ML", "0.3")  # the pelvic lesion is 0.216 mL
    kept = _kept(segment_suv(suv, ct), parts)
    assert kept["lesion"] and not kept["pelvic lesion"]
