"""A container program that misbehaves in the way named by its first argument.

Modes: inspect, network, escape, forkbomb, loop, memory, hugefile, tmpfill, links, crash, malformed,
geometry, nan, nothing, good. Reads the batch layout (``/input/cases.json``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

INP = Path(os.environ.get("CCBENCH_INPUT", "/input"))
OUT = Path(os.environ.get("CCBENCH_OUTPUT", "/output"))


def cases() -> list[dict]:
    return json.loads((INP / "cases.json").read_text())["cases"]


def first_channel(case: dict) -> sitk.Image:
    return sitk.ReadImage(str(INP / next(iter(case["channels"].values()))))


def write_label(case: dict, arr: np.ndarray | None = None, ref: sitk.Image | None = None) -> None:
    ref = ref if ref is not None else first_channel(case)
    if arr is None:
        arr = (sitk.GetArrayFromImage(ref) > 0).astype(np.uint8)
    img = sitk.GetImageFromArray(arr)
    if arr.shape == sitk.GetArrayFromImage(ref).shape:
        img.CopyInformation(ref)
    sitk.WriteImage(img, str(OUT / f"{case['case_id']}.nii.gz"))


def network() -> int:
    results = []
    for host, port in (("1.1.1.1", 53), ("8.8.8.8", 443), ("pypi.org", 443)):
        try:
            socket.create_connection((host, port), timeout=2).close()
            results.append(f"{host}:{port} REACHABLE")
        except OSError as err:
            results.append(f"{host}:{port} blocked ({err.__class__.__name__})")
    print("network: " + "; ".join(results), flush=True)
    return 0 if any("REACHABLE" in r for r in results) else 3


def escape() -> int:
    targets = ["/escape.txt", "/etc/escape.txt", "/usr/escape.txt", "/opt/escape.txt"]
    first = cases()[0]
    targets += [str(INP / "escape.txt"), str(INP / next(iter(first["channels"].values())))]
    written = []
    for target in targets:
        try:
            with open(target, "ab") as fh:
                fh.write(b"x")
            written.append(target)
        except OSError as err:
            print(f"{target}: blocked ({err.strerror})", flush=True)
    print(f"escape: {len(targets) - len(written)}/{len(targets)} blocked; written: {written}")
    for case in cases():
        write_label(case)
    return 4 if written else 0


def forkbomb() -> int:
    children = 0
    try:
        while True:
            pid = os.fork()
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            children += 1
    except OSError as err:
        print(f"forkbomb: fork failed after {children} children ({err.strerror})", flush=True)
    time.sleep(60)
    return 5


def loop() -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("loop: ignoring SIGTERM, spinning forever", flush=True)
    while True:
        pass


def memory() -> int:
    hoard = []
    while True:
        block = bytearray(16 * 2**20)
        block[::4096] = b"x" * len(block[::4096])
        hoard.append(block)
        if len(hoard) % 4 == 0:
            print(f"memory: {len(hoard) * 16} MiB", flush=True)


def hugefile() -> int:
    chunk = b"\0" * 2**20
    for i in range(10**6):
        try:
            with open(OUT / f"big_{i}.bin", "wb") as fh:
                while True:
                    fh.write(chunk)
        except OSError as err:
            print(f"hugefile: big_{i}.bin stopped ({err.strerror})", flush=True)
    return 6


def tmpfill() -> int:
    chunk = b"\0" * 2**20
    written = 0
    try:
        with open("/tmp/fill.bin", "wb") as fh:
            while True:
                fh.write(chunk)
                fh.flush()
                written += 1
    except OSError as err:
        print(f"tmpfill: stopped after {written} MiB ({err.strerror})", flush=True)
    for case in cases():
        write_label(case)
    return 0


def links() -> int:
    listed = cases()
    (OUT / f"{listed[0]['case_id']}.nii.gz").symlink_to("/etc/passwd")
    if len(listed) > 1:
        (OUT / f"{listed[1]['case_id']}.nii.gz").symlink_to(
            "../input/" + listed[1]["channels"][next(iter(listed[1]["channels"]))]
        )
    if len(listed) > 2:
        (OUT / f"{listed[2]['case_id']}.nii.gz").mkdir()
    (OUT / "..hidden.nii.gz").write_bytes(b"x")
    (OUT / "passwd").symlink_to("/etc/passwd")
    print("links: wrote symbolic links and odd names", flush=True)
    return 0


def crash() -> int:
    write_label(cases()[0])
    print("crash: wrote the first case, then failed", file=sys.stderr, flush=True)
    return 7


def malformed() -> int:
    for case in cases():
        (OUT / f"{case['case_id']}.nii.gz").write_bytes(b"this is not a NIfTI file" * 10)
    return 0


def geometry() -> int:
    for case in cases():
        write_label(case, np.zeros((2, 3, 4), dtype=np.uint8))
    return 0


def nan() -> int:
    for case in cases():
        ref = first_channel(case)
        arr = np.full(sitk.GetArrayFromImage(ref).shape, np.nan, dtype=np.float32)
        write_label(case, arr, ref)
    return 0


def inspect() -> int:
    """Print what the sandbox looks like from inside, as JSON on the last line."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    mounts = {}
    for line in Path("/proc/self/mounts").read_text().splitlines():
        parts = line.split()
        mounts[parts[1]] = {"type": parts[2], "options": parts[3].split(",")}
    info = {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "home": os.environ.get("HOME"),
        "omp": os.environ.get("OMP_NUM_THREADS"),
        "cap_eff": status["CapEff"].strip(),
        "no_new_privs": status.get("NoNewPrivs", "").strip(),
        "mounts": {
            k: v for k, v in mounts.items() if k in ("/", "/input", "/output", "/tmp", "/dev/shm")
        },
        "interfaces": sorted(os.listdir("/sys/class/net")),
        "output_writable": os.access(OUT, os.W_OK),
    }
    for case in cases():
        write_label(case)
    print(json.dumps(info), flush=True)
    return 0


def nothing() -> int:
    print("nothing: wrote no output", flush=True)
    return 0


def good() -> int:
    for case in cases():
        write_label(case)
    return 0


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "nothing"
    sys.exit(globals()[mode]())
