"""Thresholding baseline: SUV >= threshold on PET, or an intensity band on the first channel.

Reads ``$CCBENCH_INPUT`` (default ``/input``) and writes ``$CCBENCH_OUTPUT`` (default
``/output``), in the batch layout (``cases.json``) or the grand-challenge layout
(``images/<slug>/<uuid>.mha``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

PET_CHANNELS = ("PET", "PT")
PET_SLUGS = ("pet",)


def segment(channels: dict[str, Path]) -> sitk.Image:
    """Label 1 where the PET channel is at or above the SUV threshold (else an intensity band)."""
    pet = next((channels[c] for c in PET_CHANNELS if c in channels), None)
    if pet is not None:
        img = sitk.ReadImage(str(pet))
        arr = sitk.GetArrayFromImage(img)
        mask = arr >= float(os.environ.get("CCBENCH_SUV_THRESHOLD", "4.0"))
    else:
        img = sitk.ReadImage(str(next(iter(channels.values()))))
        arr = sitk.GetArrayFromImage(img)
        low = float(os.environ.get("CCBENCH_LOW", "100"))
        high = float(os.environ.get("CCBENCH_HIGH", "300"))
        mask = (arr >= low) & (arr <= high)
    out = sitk.GetImageFromArray(mask.astype(np.uint8))
    out.CopyInformation(img)
    return out


def run_batch(inp: Path, out: Path) -> int:
    listing = json.loads((inp / "cases.json").read_text())
    for case in listing["cases"]:
        channels = {name: inp / rel for name, rel in case["channels"].items()}
        sitk.WriteImage(segment(channels), str(out / f"{case['case_id']}.nii.gz"), True)
        print(f"{case['case_id']}: done", flush=True)
    return 0


def output_slug(out: Path) -> str:
    """``CCBENCH_GC_OUTPUT``, else the only folder the harness created, else the autoPET slug."""
    if "CCBENCH_GC_OUTPUT" in os.environ:
        return os.environ["CCBENCH_GC_OUTPUT"]
    made = [p.name for p in (out / "images").glob("*") if p.is_dir()]
    return made[0] if len(made) == 1 else "automated-petct-lesion-segmentation"


def run_grand_challenge(inp: Path, out: Path) -> int:
    slug_dirs = sorted(p for p in (inp / "images").iterdir() if p.is_dir())
    channels = {}
    for folder in slug_dirs:
        files = sorted(folder.glob("*.mha"))
        if files:
            name = "PET" if folder.name in PET_SLUGS else folder.name.upper()
            channels[name] = files[0]
    key = next(iter(channels.values())).stem
    dest = out / "images" / output_slug(out)
    dest.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(segment(channels), str(dest / f"{key}.mha"), True)
    print(f"{key}: done", flush=True)
    return 0


def main() -> int:
    inp = Path(os.environ.get("CCBENCH_INPUT", "/input"))
    out = Path(os.environ.get("CCBENCH_OUTPUT", "/output"))
    if (inp / "cases.json").is_file():
        return run_batch(inp, out)
    if (inp / "images").is_dir():
        return run_grand_challenge(inp, out)
    print(f"neither {inp}/cases.json nor {inp}/images/ exists", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
