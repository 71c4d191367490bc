"""Predictions of a chosen quality, made by degrading the references with the operators.

The demo's and the tests' entries: every reference component is kept, dropped, eroded or
enlarged, and false-positive components are inserted, with the degradation operators of
:mod:`evaluator.simulate.operators` (the same edits the degradation studies use), so entries of
different quality rank in their construction order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from evaluator.datasets.registry import Registry, load_registry
from evaluator.errors import SimulationError
from evaluator.simulate.operators import (
    Order,
    drop_components,
    enlarge_components,
    erode_components,
    insert_components,
    label_components,
)
from evaluator.typing import BoolArray
from evaluator.workspace import Workspace

__all__ = ["degrade_mask", "write_degraded_predictions"]


def degrade_mask(
    mask: BoolArray, rng: np.random.Generator, quality: float, *, spacing: tuple[float, ...]
) -> BoolArray:
    """A degraded copy of a boolean mask; ``quality=1`` returns it unchanged.

    Each of the ``n`` components is, with probability ``(1 - quality) / 2``, dropped (a false
    negative), and, of the rest, with the same probability eroded or enlarged by one voxel; with
    probability ``1 - quality`` one false-positive component is inserted. Which components (the
    smallest or the largest) and which edit are drawn from ``rng``.

    Examples
    --------
    >>> m = np.zeros((9, 9), bool); m[1:3, 1:3] = True; m[5:8, 5:8] = True
    >>> bool((degrade_mask(m, np.random.default_rng(0), 1.0, spacing=(1.0, 1.0)) == m).all())
    True
    """
    _, n = label_components(mask)
    if n == 0:
        return mask.copy()
    p = (1.0 - quality) / 2.0
    n_drop = int(rng.binomial(n, p))
    n_edit = int(rng.binomial(n - n_drop, p))
    order: Order = "smallest" if rng.random() < 0.5 else "largest"
    out = drop_components(mask, n_drop, order=order) if n_drop else mask.copy()
    if n_edit:
        edit = erode_components if rng.random() < 0.5 else enlarge_components
        other: Order = "largest" if order == "smallest" else "smallest"
        out = edit(out, n_edit, order=other)
    if rng.random() < 1.0 - quality and out.any():
        out = insert_components(out, 1, spacing=spacing, seed=int(rng.integers(2**31)))
    return out


def write_degraded_predictions(
    task: str,
    split: str,
    out: str | os.PathLike[str],
    *,
    workspace: Workspace,
    seed: int = 0,
    quality: float = 0.8,
    data_root: str | os.PathLike[str] | None = None,
    registry: Registry | None = None,
) -> Path:
    """Write predictions made by degrading a split's references (demo and test entries).

    Each reference component is, independently, dropped with probability ``(1 - quality) / 2``,
    else eroded or dilated by one voxel with probability ``(1 - quality) / 2``; with probability
    ``1 - quality`` a small false-positive blob is added per case. ``quality=1`` copies the
    references.

    Parameters
    ----------
    task, split
        As for :func:`evaluate_run`.
    out
        Folder; 3D tasks get ``<out>/<case id>.nii.gz`` on the reference grid, ChestXDet gets
        ``<out>/predictions.json`` in the COCO results format (``image_id`` = case id).
    workspace, data_root, registry
        Where the data is.
    seed
        Same seed, same files (each case uses ``(seed, crc32(case id))``).
    quality
        In [0, 1]; lower is worse.

    Returns
    -------
    Path
        ``out``.
    """
    import zlib

    import SimpleITK as sitk

    from evaluator.datasets.base import open_dataset
    from evaluator.datasets.labels import label_array
    from evaluator.datasets.splits import resolve_split

    if not 0.0 <= quality <= 1.0:
        raise SimulationError(f"quality must be in [0, 1], got {quality}")
    reg = registry or load_registry()
    spec = reg.task(task)
    root = None if data_root is None else Path(data_root)
    dataset = open_dataset(spec, workspace=workspace, data_root=root, registry=reg)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    coco: list[dict[str, Any]] = []
    for cid in resolve_split(spec, split, workspace=workspace, data_root=root, registry=reg):
        rng = np.random.default_rng([seed, zlib.crc32(cid.encode())])
        case = dataset.case(cid)
        if spec.instances:
            from pycocotools import mask as mask_utils

            for inst in case.read_instances():
                mask = degrade_mask(inst.mask, rng, quality, spacing=(1.0, 1.0))
                if mask.any():
                    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                    rle["counts"] = rle["counts"].decode("ascii")
                    score = float(np.clip(quality + rng.normal(0, 0.1), 0.01, 1.0))
                    coco.append(
                        {
                            "image_id": cid,
                            "category_id": inst.class_id,
                            "segmentation": rle,
                            "score": score,
                        }
                    )
            continue
        ref_img = case.read_label()
        ref = label_array(ref_img, labels=spec.labels, what=f"reference {cid}")
        spacing = tuple(reversed(ref_img.GetSpacing()))
        pred = np.zeros_like(ref)
        for label in spec.labels:
            pred[degrade_mask(ref == label, rng, quality, spacing=spacing) & (pred == 0)] = label
        img = sitk.GetImageFromArray(pred)
        img.CopyInformation(ref_img)
        sitk.WriteImage(img, str(out_dir / f"{cid}.nii.gz"))
    if spec.instances:
        (out_dir / "predictions.json").write_text(json.dumps(coco))
    return out_dir
