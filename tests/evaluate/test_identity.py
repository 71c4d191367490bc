"""What a run records about what it was scored on, and the numbers of its summary.

Split identity and case set, the dataset fingerprint from file content, entry provenance,
summary statistics (median, inf kept as "inf"), one validation path for options.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.datasets.registry import MetricProfile
from evaluator.errors import InvalidLabelError, RegistryError
from evaluator.evaluate import evaluate_run
from evaluator.metrics.files import score_files
from evaluator.workspace import Workspace

from .conftest import SHAPE, Dataset, write_label


def _eval(ds: Dataset, ws: Workspace, name: str, **kw: object):  # type: ignore[no-untyped-def]
    return evaluate_run(
        ds.task, "all", ds.preds, workspace=ws, data_root=ds.root, workers=1, run_name=name, **kw
    )


def test_fingerprint_follows_content_not_size(btcv: Dataset, workspace: Workspace) -> None:
    label = btcv.root / "label" / "label0002.nii.gz"
    plain = write_label(label.with_name("plain.nii"), btcv.refs["0002"])
    label.write_bytes(plain.read_bytes())  # uncompressed bytes: one voxel can change in place
    plain.unlink()
    first = _eval(btcv, workspace, "a").run.dataset_fingerprint
    assert first == _eval(btcv, workspace, "b").run.dataset_fingerprint  # same data, same print
    data = bytearray(label.read_bytes())
    size = len(data)
    data[-1] = 6 if data[-1] != 6 else 0  # one voxel of the reference, same file size
    label.write_bytes(bytes(data))
    assert label.stat().st_size == size
    changed = _eval(btcv, workspace, "c").run.dataset_fingerprint
    assert changed != first and changed.startswith("sha256:")


def test_runs_record_split_and_case_set(btcv: Dataset, workspace: Workspace) -> None:
    result = _eval(btcv, workspace, "a")
    params = result.run.parameters
    assert params["split_id"] is None and params["n_cases"] == 3  # split "all": no split file
    assert params["case_set"].startswith("sha256:")


def test_split_used_by_runs_is_not_overwritten_without_force(
    btcv: Dataset, workspace: Workspace
) -> None:
    args = ["data", "split", "--task", "btcv", "--data-root", str(btcv.root)]
    args += ["--workspace", str(workspace.root)]
    for i in range(4, 11):  # enough cases for 5 folds and a test set
        cid = f"{i:04d}"
        write_label(btcv.root / "label" / f"label{cid}.nii.gz", btcv.refs["0001"])
        write_label(btcv.root / "img" / f"img{cid}.nii.gz", np.zeros(SHAPE, dtype=np.int16))
        write_label(btcv.preds / f"{cid}.nii.gz", btcv.refs["0001"])
    assert CliRunner().invoke(app, [*args, "--seed", "1"]).exit_code == 0
    run = evaluate_run(
        "btcv", "test", btcv.preds, workspace=workspace, data_root=btcv.root, workers=1
    ).run
    assert run.parameters["split_id"].startswith("sha256:")
    refused = CliRunner().invoke(app, [*args, "--seed", "2"])
    assert refused.exit_code == 1 and "--force" in refused.output and run.name in refused.output
    same = CliRunner().invoke(app, [*args, "--seed", "1"])  # unchanged split: no harm
    assert same.exit_code == 0, same.output
    forced = CliRunner().invoke(app, [*args, "--seed", "2", "--force"])
    assert forced.exit_code == 0, forced.output


def test_summary_median_and_infinity(btcv: Dataset, workspace: Workspace) -> None:
    """hd95 of liver: 0, 0 and inf (case 0003 predicts no liver); the mean is inf, the median
    0, and summary.json says "inf", not null."""
    empty = btcv.refs["0003"].copy()
    empty[empty == 6] = 0
    write_label(btcv.preds / "0003.nii.gz", empty)
    result = _eval(btcv, workspace, "inf")
    liver = result.summary["means"]["6:liver"]["hd95"]
    assert math.isinf(liver["mean"]) and liver["median"] == 0.0 and liver["n"] == 3
    written = json.loads(result.summary_json.read_text())
    assert written["means"]["6:liver"]["hd95"]["mean"] == "inf"
    assert written["means"]["6:liver"]["hd95"]["median"] == 0.0
    dice = result.summary["means"]["6:liver"]["dice"]
    assert dice["median"] == 1.0 and dice["mean"] == pytest.approx(2 / 3)


def test_misspelt_profile_parameter_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nsd_tolerance"):
        MetricProfile(name="p", metrics=("nsd",), params={"nsd_tolerance": 2.0})
    registry = Path(__file__).resolve().parents[2] / "datasets.yaml"
    broken = tmp_path / "datasets.yaml"
    broken.write_text(
        registry.read_text().replace("nsd_tolerance_mm: 2.0", "nsd_tolerance: 2.0", 1)
    )
    from evaluator.datasets.registry import load_registry

    with pytest.raises(RegistryError, match="nsd_tolerance"):
        load_registry(broken)


def test_label_in_neither_image_is_an_error(btcv: Dataset) -> None:
    pred, ref = btcv.preds / "0001.nii.gz", btcv.root / "label" / "label0001.nii.gz"
    assert score_files(pred, ref, labels=[6], metrics=["dice"]).values[6]["dice"] == 1.0
    with pytest.raises(InvalidLabelError, match=r"labels \[5\] are in neither"):
        score_files(pred, ref, labels=[5], metrics=["dice"])


def test_nan_prediction_is_refused_by_metrics_as_by_evaluate(btcv: Dataset) -> None:
    arr = btcv.refs["0001"].astype(np.float32)
    arr[0, 0, 0] = np.nan
    pred = write_label(btcv.preds / "nan.mha", arr)
    with pytest.raises(InvalidLabelError, match="NaN"):
        score_files(pred, btcv.root / "label" / "label0001.nii.gz")
