"""Host-side scoring under limits: hostile files cost bounded memory; a case past a worker's
memory or time limit is a named error and the other cases are scored."""

from __future__ import annotations

import gzip
import resource
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evaluator.evaluate import evaluate_run
from evaluator.executor import run_jobs
from evaluator.store import Store
from evaluator.workspace import Workspace

from ..test_executor import vm_size
from .conftest import SHAPE, Dataset, write_label

BIG = (200, 256, 256)  # (z, y, x): 13 M voxels


def _big_case(btcv: Dataset) -> None:
    """Make case 0003 large: scoring it needs about 450 MB more than an idle worker has."""
    ref = np.zeros(BIG, dtype=np.uint8)
    ref[10:110, 20:230, 20:230] = 6
    pred = np.roll(ref, 3, axis=2)
    pred[140:190, :, :] = 6  # a 3.3 M-voxel false positive far from the reference
    write_label(btcv.root / "label" / "label0003.nii.gz", ref)
    write_label(btcv.root / "img" / "img0003.nii.gz", np.zeros(BIG, dtype=np.int16))
    write_label(btcv.preds / "0003.nii.gz", pred)


def _errors(result: object) -> dict[str, str]:
    with Store.open(result.store_url) as db:  # type: ignore[attr-defined]
        frame = db.errors_frame(run_ids=[result.run.id])  # type: ignore[attr-defined]
    return dict(zip(frame["case_id"], frame["error_class"], strict=True))


def test_case_past_the_memory_cap_is_named_and_the_rest_scored(
    btcv: Dataset, workspace: Workspace
) -> None:
    _big_case(btcv)
    idle = next(run_jobs([0], vm_size, workers=1, on_failure=lambda j, f: 0))
    cap_mb = idle // 2**20 + 160  # room for the tiny cases, not for 13 M voxels
    result = evaluate_run(
        "btcv", "all", btcv.preds, workspace=workspace, data_root=btcv.root, workers=1,
        memory_mb=cap_mb,
    )  # fmt: skip
    assert _errors(result) == {"0003": "scoring_limit"}
    assert result.run.status == "finished"
    means = result.summary["means"]["6:liver"]["dice"]
    assert means["n"] == 3 and means["mean"] == pytest.approx(2 / 3)  # 1, 1 and the worst, 0


def test_cases_past_the_time_limit_are_named_and_the_run_finishes(
    btcv: Dataset, workspace: Workspace
) -> None:
    # No case can be read and scored in a millisecond: each one is stopped at the limit.
    result = evaluate_run(
        "btcv", "all", btcv.preds, workspace=workspace, data_root=btcv.root, workers=2,
        time_limit_s=0.001,
    )  # fmt: skip
    assert _errors(result) == dict.fromkeys(["0001", "0002", "0003"], "scoring_limit")
    assert result.run.status == "finished"
    with Store.open(result.store_url) as db:
        messages = db.errors_frame(run_ids=[result.run.id])["message"]
    assert all("0.001 s limit per case" in m for m in messages)


def _bomb(path: Path) -> None:
    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, 1024, 1024, 1024, 1, 1, 1, 1)
    struct.pack_into("<2h", header, 70, 2, 8)
    struct.pack_into("<8f", header, 76, 1, 1, 1, 2, 1, 1, 1, 1)
    struct.pack_into("<f", header, 108, 352.0)
    header[344:348] = b"n+1\0"
    member = gzip.compress(b"\0" * 2**24, compresslevel=9)
    path.write_bytes(gzip.compress(bytes(header) + b"\0" * 4) + member * 64)


def test_hostile_files_cost_bounded_host_memory(btcv: Dataset, workspace: Workspace) -> None:
    """The attacks on the scorer, as files: a 1 MB bomb declaring 1024^3 voxels, an int32 label
    of 2**31 - 1, a header naming /dev/zero; the whole ``ccbench evaluate`` process tree (the
    scoring workers included) stays far below the gigabytes they asked for."""
    _bomb(btcv.preds / "0001.nii.gz")
    big = btcv.refs["0002"].astype(np.int32)
    big[0, 0, 0] = 2**31 - 1
    write_label(btcv.preds / "0002.nii.gz", big)
    (btcv.preds / "0003.nii.gz").unlink()
    z, y, x = SHAPE
    (btcv.preds / "0003.mha").write_text(
        f"ObjectType = Image\nNDims = 3\nDimSize = {x} {y} {z}\nElementType = MET_UCHAR\n"
        "ElementDataFile = /dev/zero\n"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(
        [
            sys.executable, "-c", "from evaluator.cli import main; main()", "evaluate",
            "--task", "btcv", "--split", "all", "--pred", str(btcv.preds), "--data-root",
            str(btcv.root), "--workers", "2", "--workspace", str(workspace.root),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert peak_mb < 600 or before / 1024 >= 600, f"peak RSS {peak_mb:.0f} MB"
    with Store.open(workspace=workspace) as db:
        run = db.list_runs(task="btcv")[-1]
        errors = db.errors_frame(run_ids=[run.id])
    got = dict(zip(errors["case_id"], errors["error_class"], strict=True))
    assert got == {"0001": "geometry", "0002": "label", "0003": "unsafe"}
