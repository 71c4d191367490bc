"""A grand-challenge style algorithm: inputs.json, a working folder, .mha in and out.

Modes (first argument): normal (threshold the first input, as the threshold baseline does),
fill (write past any writable-layer cap into the working folder), then what normal does.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

INPUT = Path("/input")
OUTPUT = Path("/output")
WORK = Path("/opt/algorithm/work")  # needs the writable (ephemeral) layer
OUTPUT_SLUG = os.environ.get("OUTPUT_SLUG", "segmentation")


def main(mode: str) -> int:
    sockets = json.loads((INPUT / "inputs.json").read_text())
    images = [s for s in sockets if s["interface"]["super_kind"] == "Image"]
    print("sockets:", ", ".join(s["interface"]["slug"] for s in images), flush=True)
    WORK.mkdir(exist_ok=True)  # nnU-Net style: inputs converted into a working folder
    converted = []
    for number, socket in enumerate(images):
        folder = INPUT / socket["interface"]["relative_path"]
        (source,) = sorted(folder.glob("*.mha"))
        assert source.name == socket["image"]["name"], (source.name, socket["image"])
        target = WORK / f"case_{number:04d}.nii.gz"
        sitk.WriteImage(sitk.ReadImage(str(source)), str(target))
        converted.append((target, source.stem))
    if mode == "fill":  # many files of 4 MiB, each under any per-file limit
        chunk = os.urandom(4 * 2**20)
        for number in range(10_000):
            (WORK / f"fill_{number}.bin").write_bytes(chunk)
    first, key = converted[0]
    image = sitk.ReadImage(str(first))
    arr = sitk.GetArrayFromImage(image)
    label = ((arr >= 100) & (arr <= 300)).astype(np.uint8)
    out = sitk.GetImageFromArray(label)
    out.CopyInformation(image)
    folder = OUTPUT / "images" / OUTPUT_SLUG
    folder.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(out, str(folder / f"{key}.mha"), True)
    shutil.rmtree(WORK)
    print("wrote", folder / f"{key}.mha", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "normal"))
