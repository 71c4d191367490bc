"""Small datasets in the real on-disk layouts, with known label maps, and predictions for them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

#: SimpleITK order (x, y, z), mm.
SPACING_XYZ = (1.0, 1.0, 2.0)
SHAPE = (10, 18, 18)  # (z, y, x)


def write_label(
    path: Path,
    arr: np.ndarray,
    *,
    spacing: Sequence[float] = SPACING_XYZ,
    origin: Sequence[float] | None = None,
) -> Path:
    """Write a label map (array in (z, y, x) order) as NIfTI with the given geometry."""
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(tuple(float(s) for s in spacing))
    if origin is not None:
        img.SetOrigin(tuple(float(o) for o in origin))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))
    return path


def ball(shape: Sequence[int], centre: Sequence[int], radius: float) -> np.ndarray:
    grid = np.ogrid[tuple(slice(0, s) for s in shape)]
    return np.asarray(sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius**2)


def hecktor_reference(seed: int) -> np.ndarray:
    """GTVp: one ball; GTVn: two or three small nodes (none for seed 3)."""
    rng = np.random.default_rng(seed)
    ref = np.zeros(SHAPE, dtype=np.uint8)
    ref[ball(SHAPE, (5, 6, 6), 2.5 + rng.random())] = 1
    if seed != 3:
        for k in range(2 + seed % 2):
            centre = (3 + 2 * k, 12 + rng.integers(-1, 2), 4 + 4 * k)
            ref[ball(SHAPE, centre, 1.5) & (ref == 0)] = 2
    return ref


def degrade(ref: np.ndarray, seed: int) -> np.ndarray:
    """A deterministic imperfect prediction: shifted GTVp, one node dropped, one false node."""
    pred = np.zeros_like(ref)
    pred[np.roll(ref == 1, seed % 2 + 1, axis=2)] = 1
    nodes = ref == 2
    if seed % 2:
        import cc3d

        comps = cc3d.connected_components(nodes.astype(np.uint8))
        nodes = comps > 1  # drop the first node
    pred[nodes & (pred == 0)] = 2
    pred[ball(SHAPE, (8, 2, 15), 1.2) & (pred == 0)] = 2
    return pred


@dataclass
class Dataset:
    task: str
    root: Path
    refs: dict[str, np.ndarray]
    preds: Path

    def write_pred(self, case_id: str, arr: np.ndarray, **geometry: object) -> Path:
        return write_label(self.preds / f"{case_id}.nii.gz", arr, **geometry)  # type: ignore[arg-type]


@pytest.fixture
def hecktor(tmp_path: Path) -> Dataset:
    """Four HECKTOR-layout cases (labels only) and degraded predictions for all of them."""
    root = tmp_path / "hecktor"
    preds = tmp_path / "preds"
    refs = {}
    for i in range(4):
        cid = f"CHUM-00{i + 1}"
        refs[cid] = hecktor_reference(i)
        write_label(root / "labelsTr" / f"{cid}.nii.gz", refs[cid])
        write_label(preds / f"{cid}.nii.gz", degrade(refs[cid], i))
    return Dataset("hecktor", root, refs, preds)


@pytest.fixture
def btcv(tmp_path: Path) -> Dataset:
    """Three BTCV-layout cases with 2 of the 13 organs present, predictions = references."""
    root = tmp_path / "btcv"
    preds = tmp_path / "btcv_preds"
    refs = {}
    for i in range(3):
        cid = f"000{i + 1}"
        ref = np.zeros(SHAPE, dtype=np.uint8)
        ref[ball(SHAPE, (5, 8, 5 + i), 3)] = 6
        ref[ball(SHAPE, (4, 8, 14), 2)] = 1
        refs[cid] = ref
        write_label(root / "label" / f"label{cid}.nii.gz", ref)
        write_label(root / "img" / f"img{cid}.nii.gz", np.zeros(SHAPE, dtype=np.int16))
        write_label(preds / f"{cid}.nii.gz", ref)
    return Dataset("btcv", root, refs, preds)
