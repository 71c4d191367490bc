"""A container program that misbehaves in the way named by its first argument.

Modes: inspect, network, escape, forkbomb, loop, memory, hugefile, tmpfill, links, crash, malformed,
geometry, nan, nothing, good, pointer, bigint, bomb, leak, deepnest, manyfiles, fastfill, setuid,
markup, logbomb, slowgood. Reads the batch layout (``/input/cases.json``); later arguments are the mode's own.
"""

from __future__ import annotations

import contextlib
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
    for i in range(3):
        written = 0
        try:
            with open(OUT / f"big_{i}.bin", "wb") as fh:
                while True:
                    fh.write(chunk)
                    fh.flush()
                    written += 1
        except OSError as err:
            print(f"hugefile: big_{i}.bin stopped after {written} MiB ({err.strerror})", flush=True)
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


def pointer(target: str) -> int:
    """Headers that point at another file: the reference on the host, /dev/zero."""
    listed = cases()
    ref = sitk.GetArrayFromImage(first_channel(listed[0]))
    z, y, x = ref.shape
    nrrd = (
        f"NRRD0004\ntype: uint8\ndimension: 3\nsizes: {x} {y} {z}\nencoding: gzip\n"
        f"byte skip: 352\ndata file: {target}\n\n"
    )
    (OUT / f"{listed[0]['case_id']}.nrrd").write_text(nrrd)
    for case, data in zip(listed[1:], (target, "/dev/zero"), strict=False):
        header = (
            f"ObjectType = Image\nNDims = 3\nDimSize = {x} {y} {z}\nElementType = MET_UCHAR\n"
            f"ElementDataFile = {data}\n"
        )
        (OUT / f"{case['case_id']}.mha").write_text(header)
    print("pointer: wrote headers naming", target, flush=True)
    return 0


def bigint() -> int:
    """A label map holding one voxel of 2**31 - 1."""
    for case in cases():
        ref = first_channel(case)
        arr = np.zeros(sitk.GetArrayFromImage(ref).shape, dtype=np.int32)
        arr[0, 0, 0] = 2**31 - 1
        write_label(case, arr, ref)
    return 0


def bomb() -> int:
    """A small .nii.gz whose header declares 1024^3 voxels of zeros (a decompression bomb)."""
    import gzip
    import struct

    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, 1024, 1024, 1024, 1, 1, 1, 1)
    struct.pack_into("<2h", header, 70, 2, 8)  # uint8
    struct.pack_into("<8f", header, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<f", header, 108, 352.0)
    header[344:348] = b"n+1\0"
    # gzip members chain: 64 copies of one compressed 16 MiB block of zeros decode to 1 GiB
    member = gzip.compress(b"\0" * 2**24, compresslevel=9)
    data = gzip.compress(bytes(header) + b"\0" * 4) + member * 64
    for case in cases():
        (OUT / f"{case['case_id']}.nii.gz").write_bytes(data)
    print(f"bomb: {len(data)} bytes declaring 1024^3 voxels", flush=True)
    return 0


def leak() -> int:
    """Print the test images to the log (as base64), then write good labels."""
    import base64

    for case in cases():
        path = INP / next(iter(case["channels"].values()))
        print("LEAK " + base64.b64encode(path.read_bytes()).decode(), flush=True)
        write_label(case)
    return 0


def deepnest() -> int:
    """Files in folders nested past PATH_MAX, written through relative paths."""
    os.chdir(OUT)
    depth, written = 0, 0
    chunk = b"\0" * 2**20
    try:
        while True:
            name = "d" * 200
            os.mkdir(name)
            os.chdir(name)
            depth += 1
            if depth % 25 == 0:
                with open("data.bin", "wb") as fh:
                    for _ in range(64):
                        fh.write(chunk)
                        written += 1
    except OSError as err:
        print(f"deepnest: stopped at depth {depth}, {written} MiB ({err.strerror})", flush=True)
    return 0


def manyfiles() -> int:
    """Empty files and folders until the file system refuses."""
    count = 0
    try:
        while True:
            (OUT / f"f{count}").touch()
            count += 1
            if count % 2 == 0:
                (OUT / f"d{count}").mkdir()
                count += 1
    except OSError as err:
        print(f"manyfiles: stopped after {count} entries ({err.strerror})", flush=True)
    return 0


def fastfill() -> int:
    """300 MiB as fast as possible, in files under the per-file limit."""
    chunk = b"\0" * 2**20
    written = 0
    try:
        for i in range(300):
            with open(OUT / f"part{i}.bin", "wb") as fh:
                fh.write(chunk)
                written += 1
    except OSError as err:
        print(f"fastfill: stopped after {written} MiB ({err.strerror})", flush=True)
    for case in cases():
        with contextlib.suppress(OSError, RuntimeError):
            write_label(case)
    print(f"fastfill: wrote {written} MiB", flush=True)
    return 0


def setuid() -> int:
    """Good predictions, planted with mode 6777 (setuid, setgid, world-writable, executable)."""
    for case in cases():
        write_label(case)
        os.chmod(OUT / f"{case['case_id']}.nii.gz", 0o6777)
    return 0


def markup() -> int:
    """Rich markup and terminal escapes in the log and in file names; good predictions."""
    print("[/] closing tag first, [bold red]styled[/bold red] \x1b[2J\x1b]0;title\x07", flush=True)
    print("\x1b[31mred\x1b[0m [link=file:///etc/passwd]click[/link]", flush=True)
    (OUT / "\x1b[2J[bold red][link=x]evil.nii.gz").write_bytes(b"x")  # no "/": one name
    for case in cases():
        write_label(case)
    return 0


def logbomb(mib: str = "512") -> int:
    """Good predictions, then hundreds of MiB on stdout as fast as possible."""
    for case in cases():
        write_label(case)
    line = ("x" * 1023 + "\n").encode()
    out = sys.stdout.buffer
    for _ in range(int(mib) * 1024):
        out.write(line)
    out.write(b"logbomb: the last line\n")
    out.flush()
    return 0


def nothing() -> int:
    print("nothing: wrote no output", flush=True)
    return 0


def good() -> int:
    for case in cases():
        write_label(case)
    return 0


def slowgood(seconds: str = "3") -> int:
    """A good entry that takes its time (a worker can be killed while it runs)."""
    time.sleep(float(seconds))
    return good()


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "nothing"
    sys.exit(globals()[mode](*sys.argv[2:]))
