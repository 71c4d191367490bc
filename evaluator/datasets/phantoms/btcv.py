"""BTCV phantom: contrast-enhanced abdominal CT with the 13 organ labels of BTCV.

Layout (BTCV ``RawData/Training`` plus the MONAI/UNETR split file)::

    <root>/img/imgNNNN.nii.gz       int16 HU (portal-venous phase)
    <root>/label/labelNNNN.nii.gz   uint8: 1 spleen ... 13 left adrenal gland (datasets.yaml)
    <root>/dataset_0.json           {"training": [{"image", "label"}], "validation": [...], ...}

Case numbers follow the real training set (0001-0010, 0021-0040, then onwards). ``dataset_0.json``
keeps the last fifth of the cases for validation (6 of 30, as the UNETR tutorial's split); its
paths are relative to the root (``img/img0001.nii.gz``). The abdomen fills the field of view; at
the ``small`` size the voxels are 3.5 x 3.5 x 5 mm, at ``full`` 0.78 x 0.78 x 2.5 mm (x, y, z).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evaluator.datasets.phantoms._anatomy import BODY_PARTS, Frame, render_body, vary
from evaluator.datasets.phantoms._common import CaseInfo, TaskWriter, ct_image
from evaluator.datasets.phantoms._shapes import Grid, case_rng, write_nifti
from evaluator.typing import Spacing

__all__ = ["ORGANS", "WRITER", "case_number"]

#: BTCV label -> organ name, as the parts of the body model carry them.
ORGANS: dict[int, str] = {p.label: p.name for p in BODY_PARTS if p.label}
_CODE = 3
_WINDOW = (0.45, 0.66)


def case_number(index: int) -> int:
    """BTCV case number of case ``index`` (the real training numbers first).

    Examples
    --------
    >>> [case_number(i) for i in (0, 9, 10, 29, 30)]
    [1, 10, 21, 40, 41]
    """
    return index + 1 if index < 10 else index + 11


def _write_case(
    out: Path, index: int, seed: int, size_xyz: tuple[int, ...], spacing: Spacing
) -> CaseInfo:
    rng = case_rng(seed, _CODE, index)
    number = case_number(index)
    grid = Grid.scanner(size_xyz, spacing, z_origin=float(rng.uniform(-300.0, -100.0)))
    frame = Frame(grid, _WINDOW, 0.82 * float(rng.uniform(0.93, 1.05)))
    body = render_body(frame, vary(rng, amount=0.015))
    label = body.label[body.index]
    write_nifti(
        ct_image(body.hu[body.index], rng, spacing=grid.spacing, noise_hu=10.0),
        grid,
        out / "img" / f"img{number:04d}.nii.gz",
    )
    write_nifti(label, grid, out / "label" / f"label{number:04d}.nii.gz")
    organs = int(np.count_nonzero(np.bincount(label.ravel(), minlength=len(ORGANS) + 1)[1:]))
    return CaseInfo(case_id=f"{number:04d}", objects=organs, row={"number": number})


def _write_index(out: Path, infos: Sequence[CaseInfo]) -> None:
    entries = [
        {
            "image": f"img/img{info.row['number']:04d}.nii.gz",
            "label": f"label/label{info.row['number']:04d}.nii.gz",
        }
        for info in infos
    ]
    n_validation = max(1, round(len(entries) / 5)) if len(entries) > 1 else 0
    split = len(entries) - n_validation
    content = {
        "description": "btcv phantom (ccbench)",
        "labels": {"0": "background", **{str(k): v for k, v in sorted(ORGANS.items())}},
        "licence": "CC-BY-4.0",
        "modality": {"0": "CT"},
        "name": "btcv",
        "numTest": 0,
        "numTraining": len(entries),
        "reference": "synthetic phantom in the layout of BTCV (Vanderbilt University)",
        "release": "1.0",
        "tensorImageSize": "3D",
        "test": [],
        "training": entries[:split],
        "validation": entries[split:],
    }
    (out / "dataset_0.json").write_text(json.dumps(content, indent=4) + "\n")


#: How ``write_phantoms("btcv", ...)`` writes this task.
WRITER = TaskWriter(
    task="btcv",
    code=_CODE,
    default_cases=8,
    presets={"small": (96, 96, 48), "full": (512, 512, 128)},
    spacing={"small": (5.0, 3.5, 3.5), "full": (2.5, 0.78, 0.78)},
    write_case=_write_case,
    write_index=_write_index,
    layout=("img", "label", "dataset_0.json"),
)
