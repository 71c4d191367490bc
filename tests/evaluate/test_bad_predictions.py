"""Each class of bad prediction: recorded as a case error, scored with worst values, others go on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluator.datasets.registry import load_registry
from evaluator.evaluate import ERROR_CLASSES, evaluate_run, make_plan
from evaluator.metrics.api import compute_metrics
from evaluator.store import Store
from evaluator.workspace import Workspace

from .conftest import SHAPE, SPACING_XYZ, Dataset, write_label

BAD = "CHUM-002"


def _break(ds: Dataset, kind: str) -> None:
    path = ds.preds / f"{BAD}.nii.gz"
    ref = ds.refs[BAD]
    if kind == "missing":
        path.unlink()
    elif kind == "undecodable":
        path.write_bytes(path.read_bytes()[:60])  # truncated gzip
    elif kind == "geometry":  # HECKTOR: another spacing is always rejected
        write_label(path, ref, spacing=(1.0, 1.0, 3.0))
    elif kind == "nan":
        arr = ref.astype(np.float32)
        arr[0, 0, 0] = np.nan
        write_label(path, arr)
    elif kind == "label":
        arr = ref.copy()
        arr[0, 0, 0] = 7
        write_label(path, arr)
    elif kind == "empty":
        write_label(path, np.zeros_like(ref))
    elif kind == "container":  # the container died on the case: no file, a reason
        path.unlink()
    elif kind == "format":  # a format whose header may point at another file
        path.unlink()
        path.with_name(f"{BAD}.nrrd").write_text(
            f"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 4 4 4\nencoding: raw\n"
            f"data file: {ds.root}/labelsTr/{BAD}.nii.gz\n\n"
        )
    elif kind == "unsafe":  # a link to the reference itself
        path.unlink()
        path.symlink_to(ds.root / "labelsTr" / f"{BAD}.nii.gz")


def _evaluate(ds: Dataset, ws: Workspace, case_errors: dict[str, str] | None = None):
    return evaluate_run(
        ds.task,
        "all",
        ds.preds,
        workspace=ws,
        data_root=ds.root,
        workers=1,
        case_errors=case_errors,
    )


#: Classes with their own tests: ``empty`` is scored, ``dataset`` is not the entry's fault,
#: ``scoring_limit`` needs a case that exhausts a worker (tests/evaluate/test_scoring_limits.py).
OWN_TESTS = {"empty", "dataset", "scoring_limit"}


@pytest.mark.parametrize("kind", sorted(set(ERROR_CLASSES) - OWN_TESTS))
def test_rejected_prediction_gets_worst_values(
    kind: str, hecktor: Dataset, workspace: Workspace
) -> None:
    _break(hecktor, kind)
    why = {BAD: "container exited with code 137 (out of memory)"} if kind == "container" else None
    result = _evaluate(hecktor, workspace, why)
    store = Store.open(result.store_url)
    errors = store.errors_frame(run_ids=[result.run.id])
    assert errors[["case_id", "error_class"]].values.tolist() == [[BAD, kind]]
    message = errors["message"].iloc[0]
    assert BAD in message
    if why is not None:
        assert why[BAD] in message
    reg = load_registry()
    plan = make_plan(reg.task("hecktor"), reg.profile("hecktor"))
    frame = store.results_frame(run_ids=[result.run.id])
    bad = frame[(frame["case_id"] == BAD) & frame["metric"].isin(plan.metrics)]
    assert len(bad) == 2 * len(plan.metrics)
    for row in bad.itertuples():
        assert row.value == plan.worst[row.metric], (row.label, row.metric)
    # the other cases are scored normally
    good = frame[(frame["case_id"] != BAD) & (frame["metric"] == "dice") & (frame["label"] == 1)]
    assert len(good) == 3 and (good["value"] > 0.3).all()
    assert result.summary["error_counts"][kind] == 1
    assert result.summary["error_cases"][kind] == [BAD]
    assert sum(result.summary["error_counts"].values()) == 1


MESSAGES = {
    "missing": "no prediction file",
    "undecodable": "cannot be decoded",
    "geometry": "spacing (1.0, 1.0, 3.0) mm differs from the reference (1.0, 1.0, 2.0) mm",
    "nan": "NaN",
    "label": "values [7] are not in the label map {0, 1, 2}",
    "format": f"{BAD}.nrrd is not an accepted format",
    "unsafe": "is a symbolic link; links are never followed",
}


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_error_messages_say_what_is_wrong(
    kind: str, hecktor: Dataset, workspace: Workspace
) -> None:
    _break(hecktor, kind)
    result = _evaluate(hecktor, workspace)
    errors = Store.open(result.store_url).errors_frame(run_ids=[result.run.id])
    assert MESSAGES[kind] in errors["message"].iloc[0]


def test_empty_prediction_is_scored_by_edge_case_rules(
    hecktor: Dataset, workspace: Workspace
) -> None:
    _break(hecktor, "empty")
    result = _evaluate(hecktor, workspace)
    store = Store.open(result.store_url)
    errors = store.errors_frame(run_ids=[result.run.id])
    assert errors[["case_id", "error_class"]].values.tolist() == [[BAD, "empty"]]
    reg = load_registry()
    plan = make_plan(reg.task("hecktor"), reg.profile("hecktor"))
    ref = hecktor.refs[BAD]
    direct = compute_metrics(
        np.zeros_like(ref),
        ref,
        spacing=tuple(reversed(SPACING_XYZ)),
        metrics=plan.metrics,
        labels=[1, 2],
        nsd_tolerance_mm=2.0,
    )
    frame = store.results_frame(run_ids=[result.run.id])
    for row in frame[(frame["case_id"] == BAD) & frame["metric"].isin(plan.metrics)].itertuples():
        assert row.value == direct.values[row.label][row.metric]
    assert direct.values[1]["dice"] == 0.0 and math.isinf(direct.values[1]["hd95"])
    assert result.summary["error_counts"]["empty"] == 1
    assert any("edge-case" in line for line in result.summary["conventions"])


def test_hecktor_same_spacing_other_extent_is_resampled(
    hecktor: Dataset, workspace: Workspace
) -> None:
    """A cropped prediction (same spacing, other size and origin) scores like the full one."""
    full = _evaluate(hecktor, workspace)
    pred_path = hecktor.preds / f"{BAD}.nii.gz"
    import SimpleITK as sitk

    img = sitk.ReadImage(str(pred_path))
    arr = sitk.GetArrayFromImage(img)
    assert not arr[:, :, :1].any() and not arr[:, :1, :].any()  # nothing lost by the crop
    cropped = arr[:, 1:, 1:]
    write_label(pred_path, cropped, origin=(1.0, 1.0, 0.0))  # x, y shifted by one voxel
    again = evaluate_run(
        "hecktor",
        "all",
        hecktor.preds,
        workspace=workspace,
        data_root=hecktor.root,
        workers=1,
        run_name="cropped",
    )
    store = Store.open(again.store_url)
    a = store.results_frame(run_ids=[full.run.id]).set_index(["case_id", "label", "metric"])
    b = store.results_frame(run_ids=[again.run.id]).set_index(["case_id", "label", "metric"])
    assert np.allclose(a["value"], b["value"], equal_nan=True)
    assert store.errors_frame(run_ids=[again.run.id]).empty


def test_strict_tasks_reject_another_origin(btcv: Dataset, workspace: Workspace) -> None:
    write_label(btcv.preds / "0002.nii.gz", btcv.refs["0002"], origin=(0.0, 0.0, 5.0))
    result = evaluate_run(
        "btcv", "all", btcv.preds, workspace=workspace, data_root=btcv.root, workers=1
    )
    errors = Store.open(result.store_url).errors_frame(run_ids=[result.run.id])
    assert errors["error_class"].tolist() == ["geometry"]
    assert "origin" in errors["message"].iloc[0]
    assert SHAPE  # the fixture geometry is the reference geometry
