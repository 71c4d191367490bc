"""An algorithm with one seeded fault (environment variable FAULT); both interfaces.

none: correct outputs. nooutput, wrongname, wrongslug (grand-challenge), geometry, nan, labels,
slow, memory, network, writes, crash, twofiles: the fault of that name.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

INPUT, OUTPUT = Path("/input"), Path("/output")
FAULT = os.environ.get("FAULT", "none")


def cases() -> list[tuple[str, Path, Path]]:
    """(name, first input image, where the output goes) per case, in either interface."""
    if (INPUT / "inputs.json").is_file():
        sockets = json.loads((INPUT / "inputs.json").read_text())
        folder = INPUT / sockets[0]["interface"]["relative_path"]
        (image,) = sorted(folder.glob("*.mha"))
        slug = (
            "wrong-slug" if FAULT == "wrongslug" else os.environ.get("OUTPUT_SLUG", "segmentation")
        )
        return [(image.stem, image, OUTPUT / "images" / slug / f"{image.stem}.mha")]
    listing = json.loads((INPUT / "cases.json").read_text())["cases"]
    out = []
    for case in listing:
        image = INPUT / next(iter(case["channels"].values()))
        name = f"prediction_{case['case_id']}" if FAULT == "wrongname" else case["case_id"]
        out.append((case["case_id"], image, OUTPUT / f"{name}.nii.gz"))
    return out


def main() -> int:
    if FAULT == "network":
        try:
            socket.create_connection(("weights.example.org", 443), timeout=2)
        except OSError as err:
            print(f"could not download the model weights: {err}", flush=True)
    if FAULT == "writes":  # a cache outside /tmp: lost on a read-only root
        Path("/var/tmp/features.npy").write_bytes(b"\0" * 1024)
    if FAULT == "memory":
        hoard = [bytearray(64 * 2**20) for _ in range(1000)]
        print(len(hoard))
    if FAULT == "slow":
        time.sleep(3600)
    if FAULT == "nooutput":
        print("done (but wrote nothing)", flush=True)
        return 0
    for _, image_path, target in cases():
        image = sitk.ReadImage(str(image_path))
        arr = sitk.GetArrayFromImage(image)
        label = ((arr >= 100) & (arr <= 300)).astype(np.uint8)
        if FAULT == "labels":
            label[label == 1] = 99
        if FAULT == "nan":
            label = label.astype(np.float32)
            label[0, 0, 0] = np.nan
        out = sitk.GetImageFromArray(label)
        if FAULT == "geometry":
            out.SetSpacing(tuple(s * 2 for s in image.GetSpacing()))
        else:
            out.CopyInformation(image)
        target.parent.mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(out, str(target))
        if FAULT == "twofiles":  # the same prediction twice, in two formats
            sitk.WriteImage(out, str(target).replace(".nii.gz", ".mha"))
    if FAULT == "crash":
        print("Traceback (most recent call last): RuntimeError: CUDA out of memory", flush=True)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
