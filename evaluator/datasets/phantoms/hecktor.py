"""HECKTOR phantom: head-and-neck PET/CT with a primary tumour (GTVp) and lymph nodes (GTVn).

Layout (HECKTOR 2022 training data)::

    <root>/imagesTr/<Centre>-<NNN>__CT.nii.gz   int16 HU, spacing (x, y, z) ~ (0.98, 0.98, 3.0) mm
    <root>/imagesTr/<Centre>-<NNN>__PT.nii.gz   float32 SUV, spacing (4.0, 4.0, 3.0) mm
    <root>/labelsTr/<Centre>-<NNN>.nii.gz       uint8 on the CT grid: 1 GTVp, 2 GTVn
    <root>/hecktor2022_patient_info.csv         PatientID, Gender (M/F), Age, Weight, Tobacco,
                                                Alcohol, HPV status (0=-, 1=+), CenterID

As in the real data the PET has its own, coarser grid with a larger field of view and an origin
that matches neither the CT voxel corners nor its centres (offset by 1.5 mm in z), so an adapter
must resample PET onto CT. Centres cycle through CHUM, CHUS, HGJ, HMR, MDA, CHUP, CHUV;
``CenterID`` is the centre's position in :data:`CENTRES`. Most cases have one primary (every
tenth has none, as a few real cases do); node counts run 0, 1, 2, 4 or 6 (+0/1) in turn, nodes sit
along the cervical chains, and about a third of them touch the primary or another node.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evaluator.datasets.phantoms._anatomy import Frame, render_body, vary
from evaluator.datasets.phantoms._common import (
    CaseInfo,
    TaskWriter,
    ct_image,
    lesion_radii,
    pet_image,
    write_csv,
)
from evaluator.datasets.phantoms._shapes import (
    Grid,
    case_rng,
    place_lesions,
    rasterise_lesions,
    resample_to_grid,
    write_nifti,
)
from evaluator.typing import Spacing

__all__ = ["CENTRES", "PET_SPACING", "WRITER", "case_name", "pet_grid"]

#: Centres in the order cases are assigned to them.
CENTRES = ("CHUM", "CHUS", "HGJ", "HMR", "MDA", "CHUP", "CHUV")
#: PET voxel size, array order (z, y, x), mm.
PET_SPACING: Spacing = (3.0, 4.0, 4.0)
_CODE = 2
_NODES = (0, 1, 2, 4, 6)
_WINDOW = (0.7, 0.98)
_SOFT_TISSUE = frozenset({"neck", "trunk", "head"})


def case_name(index: int) -> str:
    """Case id of case ``index``: ``<Centre>-<NNN>``, numbered per centre.

    Examples
    --------
    >>> [case_name(i) for i in (0, 1, 7)]
    ['CHUM-001', 'CHUS-001', 'CHUM-002']
    """
    return f"{CENTRES[index % len(CENTRES)]}-{index // len(CENTRES) + 1:03d}"


def pet_grid(ct: Grid, margin_mm: float = 24.0) -> Grid:
    """The PET grid of a CT grid: 4x4x3 mm voxels, wider in-plane, taller and shifted in z.

    Examples
    --------
    >>> ct = Grid((40, 128, 128), (3.0, 0.977, 0.977), (0.0, 0.0, 0.0))
    >>> pt = pet_grid(ct)
    >>> pt.shape, pt.origin
    ((42, 44, 44), (-4.5, -24.0, -24.0))
    """
    extent = ct.extent_mm
    shape = (
        int(np.ceil((extent[0] + 2 * PET_SPACING[0]) / PET_SPACING[0])),
        int(np.ceil((extent[1] + 2 * margin_mm) / PET_SPACING[1])),
        int(np.ceil((extent[2] + 2 * margin_mm) / PET_SPACING[2])),
    )
    origin = (
        ct.origin[0] - PET_SPACING[0] - 1.5,
        ct.origin[1] - margin_mm,
        ct.origin[2] - margin_mm,
    )
    return Grid(shape, PET_SPACING, origin)


def _write_case(
    out: Path, index: int, seed: int, size_xyz: tuple[int, ...], spacing: Spacing
) -> CaseInfo:
    rng = case_rng(seed, _CODE, index)
    name = case_name(index)
    z_origin = float(rng.uniform(-900.0, -700.0))
    shift = (float(rng.uniform(-5, 5)), float(rng.uniform(-5, 5)))
    ct = Grid.scanner(size_xyz, spacing, z_origin=z_origin, shift_yx=shift)
    pt = pet_grid(ct)
    # render the activity on the PET field of view at a fine pitch, blur, then sample the PET grid
    fine = Grid(
        tuple(
            int(np.ceil(n * s / f))
            for n, s, f in zip(pt.shape, pt.spacing, (1.5, 2.0, 2.0), strict=True)
        ),
        (1.5, 2.0, 2.0),
        pt.origin,
    )
    frame = Frame(ct, _WINDOW, 1.35 * float(rng.uniform(0.93, 1.07)))
    parts = vary(rng)
    body_ct = render_body(frame, parts)
    body_pt = render_body(frame, parts, grid=fine)

    primary = []
    if index % 10 != 9:
        centre = frame.to_mm(
            (
                float(rng.uniform(0.79, 0.82)),
                float(rng.uniform(-0.05, 0.05)),
                float(rng.choice([-1.0, 1.0]) * rng.uniform(0.06, 0.14)),
            )
        )
        voxel = np.round(ct.to_voxel(centre)).astype(int)
        allowed = np.zeros(ct.shape, dtype=bool)
        allowed[tuple(np.clip(voxel, 0, np.asarray(ct.shape) - 1))] = True
        radius = lesion_radii(rng, 1, low_mm=7.0, high_mm=18.0)
        primary = place_lesions(rng, ct, allowed, radius, uptake=(6.0, 20.0), hu_delta=(0.0, 25.0))
    n_nodes = _NODES[index % len(_NODES)] + int(rng.integers(0, 2))
    zz, _, xx = np.ogrid[: ct.shape[0], : ct.shape[1], : ct.shape[2]]
    bz_low, bz_high = frame.to_mm((0.74, 0.0, 0.0))[0], frame.to_mm((0.83, 0.0, 0.0))[0]
    z_mm = ct.origin[0] + zz * ct.spacing[0]
    lateral = np.abs(ct.origin[2] + xx * ct.spacing[2] - frame.to_mm((0.0, 0.0, 0.0))[2])
    chains = (
        body_ct.mask(_SOFT_TISSUE)
        & (z_mm >= bz_low)
        & (z_mm <= bz_high)
        & (lateral >= 0.08 * frame.half_width_mm)
        & (lateral <= 0.3 * frame.half_width_mm)
    )
    nodes = place_lesions(
        rng,
        ct,
        chains,
        lesion_radii(rng, n_nodes, low_mm=3.0, high_mm=14.0),
        uptake=(3.0, 15.0),
        hu_delta=(-5.0, 20.0),
        touch_fraction=0.35,
        label=2,
        near=primary,
    )
    lesions = [*nodes, *primary]  # the primary is painted last: GTVp wins where they overlap
    hosts = body_ct.mask(_SOFT_TISSUE | {"right tonsil", "left tonsil"})
    label = np.zeros(ct.shape, dtype=np.uint8)
    hu = body_ct.hu[body_ct.index]
    rasterise_lesions(ct, lesions, label=label, hu=hu, within=hosts)
    activity = body_pt.suv[body_pt.index]
    scratch = np.zeros(fine.shape, dtype=np.uint8)
    rasterise_lesions(fine, lesions, label=scratch, activity=activity, within=body_pt.body())
    write_nifti(ct_image(hu, rng, spacing=ct.spacing), ct, out / "imagesTr" / f"{name}__CT.nii.gz")
    pet = pet_image(
        activity,
        rng,
        spacing=fine.spacing,
        resample=lambda blurred: resample_to_grid(blurred, fine, pt),
    )
    write_nifti(pet, pt, out / "imagesTr" / f"{name}__PT.nii.gz")
    write_nifti(label, ct, out / "labelsTr" / f"{name}.nii.gz")
    row = {
        "PatientID": name,
        "Gender": "F" if rng.random() < 0.2 else "M",
        "Age": int(rng.integers(35, 85)),
        "Weight": round(float(rng.normal(78.0, 14.0)), 1),
        "Tobacco": int(rng.random() < 0.5),
        "Alcohol": int(rng.random() < 0.4),
        "HPV status (0=-, 1=+)": int(rng.random() < 0.6),
        "CenterID": index % len(CENTRES),
    }
    return CaseInfo(case_id=name, objects=len(lesions), row=row)


def _write_index(out: Path, infos: Sequence[CaseInfo]) -> None:
    write_csv(out / "hecktor2022_patient_info.csv", [info.row for info in infos])


#: How ``write_phantoms("hecktor", ...)`` writes this task (size and spacing of the CT grid).
WRITER = TaskWriter(
    task="hecktor",
    code=_CODE,
    default_cases=10,
    presets={"small": (128, 128, 40), "full": (512, 512, 96)},
    spacing={"small": (3.0, 0.977, 0.977), "full": (3.0, 0.977, 0.977)},
    write_case=_write_case,
    write_index=_write_index,
    layout=("imagesTr", "labelsTr", "hecktor2022_patient_info.csv"),
)
