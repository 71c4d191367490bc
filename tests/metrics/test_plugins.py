"""User metrics: declared with ``user_metric``, found through a real entry point or a path,
scored by ``compute_metrics`` with their own edge-case rows, and never able to stop an
evaluation."""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from evaluator.errors import UnknownMetricError, UserMetricError
from evaluator.metrics import plugins
from evaluator.metrics.api import compute_metrics
from evaluator.metrics.examples import component_count_error, volume_error_ml
from evaluator.metrics.plugins import (
    ENTRY_POINT_GROUP,
    ENV_METRICS,
    activate,
    load_user_metric,
    registered,
    resolve_metric_options,
    user_metric,
)
from evaluator.metrics.registry import EDGE_CASES, METRICS

#: A user's package: one metric that counts its calls, one that fails on a marked voxel.
PLUGIN = """
import numpy as np
from evaluator.metrics.plugins import user_metric

CALLS = []


@user_metric(name="toy_overlap", higher_is_better=True, best=1.0, worst=0.0, both_empty=1.0,
             ref_empty=0.0, pred_empty=0.0, description="|P and R| / |R|")
def toy_overlap(pred, ref, *, spacing):
    CALLS.append(pred.shape)
    return float(np.count_nonzero(pred & ref)) / float(np.count_nonzero(ref))


@user_metric(name="toy_fragile", higher_is_better=False, best=0.0, worst=9.0, both_empty=0.0,
             ref_empty=None, pred_empty=None, description="fails on a prediction at voxel 0")
def toy_fragile(pred, ref, *, spacing):
    if pred.flat[0]:
        raise ZeroDivisionError("the corner voxel")
    return 1.0


not_a_metric = 3
"""


def write_plugin(root: Path, name: str = "toyplugin", *, entry: str = "toy_overlap") -> Path:
    """A package ``name`` and its installed metadata (``.dist-info`` with the entry point)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.py").write_text(PLUGIN)
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry} = {name}:toy_overlap\n")
    return root


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The registry, the activated metrics and CCBENCH_METRICS restored after the test."""
    monkeypatch.delenv(ENV_METRICS, raising=False)
    saved = (dict(METRICS), dict(EDGE_CASES), dict(plugins._ACTIVE), dict(plugins._REFS))
    yield
    for live, old in zip((METRICS, EDGE_CASES, plugins._ACTIVE, plugins._REFS), saved, strict=True):
        live.clear()
        live.update(old)  # type: ignore[arg-type]


@pytest.fixture
def installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_registry: None
) -> Iterator[Path]:
    """The toy plugin installed on sys.path (a real distribution with a real entry point)."""
    root = write_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    yield root
    sys.modules.pop("toyplugin", None)


def test_the_entry_point_registers_the_metric(installed: Path) -> None:
    assert "toyplugin:toy_overlap=toy_overlap" in plugins.entry_point_refs()
    assert "toy_overlap" in activate()
    assert METRICS["toy_overlap"].kind == "user"
    assert METRICS["toy_overlap"].higher_is_better
    assert EDGE_CASES["toy_overlap"].ref_empty == 0.0
    assert plugins.user_metric_ref("toy_overlap") == "toyplugin:toy_overlap"


def test_an_entry_point_named_unlike_its_metric_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_registry: None
) -> None:
    root = write_plugin(tmp_path / "site", "otherplugin", entry="overlap")
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    with pytest.raises(UserMetricError, match=r"entry point 'overlap'.*points to metric 'toy_"):
        activate()
    sys.modules.pop("otherplugin", None)


def test_the_environment_variable_registers_too(
    clean_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_METRICS, "evaluator.metrics.examples:volume_error_ml, ")
    assert activate() == ("volume_error_ml",)


def test_compute_metrics_scores_a_user_metric_per_label(installed: Path) -> None:
    (name,) = activate(entry_points=False, refs=["toyplugin:toy_overlap"])
    module = importlib.import_module("toyplugin")
    ref = np.zeros((3, 6, 6), np.uint8)
    ref[1, 1:4, 1:4] = 1  # 9 voxels of label 1
    ref[2, 4:6, 4:6] = 2  # 4 voxels of label 2
    pred = np.zeros_like(ref)
    pred[1, 1:4, 1:3] = 1  # 6 of the 9
    result = compute_metrics(pred, ref, spacing=(2.0, 1.0, 1.0), metrics=["dice", name])
    assert result.values[1][name] == pytest.approx(6 / 9)
    # label 2 has no prediction: the declared pred_empty value, the function not called
    assert result.values[2][name] == 0.0
    assert module.CALLS == [(3, 6, 6)]
    assert list(result.values[1]) == ["dice", name]
    both_empty = compute_metrics(
        np.zeros_like(ref), np.zeros_like(ref), spacing=(1, 1, 1), metrics=[name]
    )
    assert both_empty.values[1][name] == 1.0 and len(module.CALLS) == 1


def test_the_examples_against_hand_counts(clean_registry: None) -> None:
    ref = np.zeros((2, 8, 8), bool)
    ref[0, 0:2, 0:2] = ref[1, 5:8, 5:8] = True  # 4 + 9 voxels, two components
    pred = np.zeros_like(ref)
    pred[0, 0:2, 0:3] = True  # 6 voxels, one component
    spacing = (2.0, 0.5, 0.5)  # 0.5 mm^3 per voxel
    assert volume_error_ml(pred, ref, spacing=spacing) == pytest.approx((13 - 6) * 0.5 / 1000)
    assert component_count_error(pred, ref, spacing=spacing) == 1.0
    activate(["evaluator.metrics.examples:volume_error_ml"], entry_points=False)
    mapped = compute_metrics(
        pred.astype(np.uint8), ref.astype(np.uint8), spacing=spacing, metrics=["volume_error_ml"]
    )
    assert mapped.values[1]["volume_error_ml"] == pytest.approx(0.0035)


def test_a_failing_user_metric_is_a_named_error(installed: Path) -> None:
    activate(["toyplugin:toy_fragile"], entry_points=False)
    pred = np.zeros((1, 3, 3), np.uint8)
    ref = pred.copy()
    ref[0, 1, 1] = 1
    pred[0, 0, 0] = 1
    with pytest.raises(UserMetricError, match="'toy_fragile' raised ZeroDivisionError"):
        compute_metrics(pred, ref, spacing=(1, 1, 1), metrics=["toy_fragile"])


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no colon", "use module.path:attribute"),
        ("no_such_module_xyz:metric", "cannot import 'no_such_module_xyz'"),
        ("evaluator.metrics.examples:nothing", "has no 'nothing'"),
        ("evaluator.metrics.registry:METRICS", "is a dict, not a metric declared"),
    ],
)
def test_a_bad_reference_is_a_named_error(ref: str, message: str) -> None:
    with pytest.raises(UserMetricError, match=message):
        load_user_metric(ref)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "Dice!"}, "use lower-case letters"),
        ({"name": "dice"}, "a built-in metric has that name"),
        ({"unit": "inch"}, "unit 'inch'"),
        ({"best": math.nan}, "best must be a number"),
        ({"ref_empty": "zero"}, "ref_empty must be a number or None"),
    ],
)
def test_a_wrong_declaration_is_a_named_error(changes: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "name": "fine",
        "higher_is_better": True,
        "best": 1.0,
        "worst": 0.0,
        "both_empty": 1.0,
        "ref_empty": 0.0,
        "pred_empty": 0.0,
        "description": "x",
    }
    with pytest.raises(UserMetricError, match=message):
        user_metric(**{**fields, **changes})(lambda p, r, *, spacing: 0.0)  # type: ignore[arg-type]


def test_metric_options_and_registered_restores(clean_registry: None) -> None:
    with pytest.raises(UnknownMetricError, match=r"module\.path:attribute"):
        resolve_metric_options(["not_a_metric"])
    with registered(["evaluator.metrics.examples:component_count_error"]):
        assert resolve_metric_options(["component_count_error", "dice"]) == (
            ("component_count_error", "dice"),
            (),
        )
        assert "component_count_error" in METRICS
    assert "component_count_error" not in METRICS
    assert ENV_METRICS not in __import__("os").environ


def test_a_prediction_that_breaks_a_user_metric_gets_its_worst_value(
    installed: Path, tmp_path: Path
) -> None:
    """Scored through ``score_case`` (what every evaluation runs): the other metrics are kept,
    the failing user metric gets its worst value and the operator a note."""
    import SimpleITK as sitk

    from evaluator.datasets.base import Case
    from evaluator.datasets.registry import load_registry
    from evaluator.evaluate import make_plan
    from evaluator.scoring import CaseJob, score_case

    reg = load_registry()
    spec = reg.task("autopet-phantom")
    plan = make_plan(spec, reg.profile(spec), user_metrics=["toyplugin:toy_fragile"])
    # the registered (entry point) metric first, then the one named for this evaluation
    assert plan.user_metrics == ("toyplugin:toy_overlap", "toyplugin:toy_fragile")
    ref = np.zeros((4, 6, 6), np.uint8)
    ref[1:3, 2:4, 2:4] = 1
    pred = ref.copy()
    pred[0, 0, 0] = 1  # the voxel the metric fails on
    paths = {}
    for name, array in (("ref", ref), ("pred", pred)):
        paths[name] = tmp_path / f"{name}.nii.gz"
        sitk.WriteImage(sitk.GetImageFromArray(array), str(paths[name]))
    case = Case(case_id="c1", channels={"CT": paths["ref"]}, label=paths["ref"])
    outcome = score_case(CaseJob(case, plan, prediction=paths["pred"]))
    values = {r.metric: r.value for r in outcome.rows if r.label == 1}
    assert values["toy_fragile"] == 9.0  # its declared worst value
    assert values["toy_overlap"] == 1.0  # the other user metric is kept
    assert values["dice"] == pytest.approx(2 * 8 / (8 + 9))  # the built-ins are kept
    assert outcome.error is None
    assert len(outcome.notes) == 1 and "ZeroDivisionError: the corner voxel" in outcome.notes[0]
    fields = {r.metric for r in outcome.components}
    assert {"component:voxels", "component:centre_x_mm", "component:detected"} <= fields


def test_the_metrics_command_takes_a_reference(clean_registry: None, tmp_path: Path) -> None:
    import json

    import SimpleITK as sitk
    from typer.testing import CliRunner

    from evaluator.cli import app

    ref = np.zeros((4, 5, 5), np.uint8)
    ref[1:3, 1:4, 1:4] = 1  # 18 voxels
    pred = ref.copy()
    pred[1] = 0  # 9 left
    paths = []
    for name, array in (("pred", pred), ("ref", ref)):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing((2.0, 2.0, 2.5))  # 10 mm^3 per voxel
        paths.append(str(tmp_path / f"{name}.nii.gz"))
        sitk.WriteImage(image, paths[-1])
    runner = CliRunner()
    result = runner.invoke(
        app, ["metrics", *paths, "-m", "dice,evaluator.metrics.examples:volume_error_ml", "--json"]
    )
    assert result.exit_code == 0, result.output
    values = json.loads(result.output)["values"]["1"]
    assert values["volume_error_ml"] == pytest.approx(9 * 10 / 1000)
    assert values["dice"] == pytest.approx(2 * 9 / 27)
    bad = runner.invoke(app, ["metrics", *paths, "-m", "dice,nomodule_xyz:f"])
    assert bad.exit_code == 1
    assert "cannot import 'nomodule_xyz'" in bad.output and "Traceback" not in bad.output


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "returned nan, outside its declared range"),
        (-1e300, r"returned -1e\+300, outside its declared range \[0, 9\]"),
        (9.5, "returned 9.5, outside"),
        ("0.5", "returned str, not a number"),
    ],
)
def test_a_value_the_declaration_does_not_allow_is_a_failure(value: object, message: str) -> None:
    """NaN would drop the case from every mean, a value past the bounds would rank it better
    than possible: both are refused like an exception."""
    metric = user_metric(
        name="bounded", higher_is_better=False, best=0.0, worst=9.0, both_empty=0.0,
        ref_empty=None, pred_empty=None, description="x",
    )(lambda pred, ref, *, spacing: value)  # fmt: skip
    mask = np.ones((2, 2), bool)
    with pytest.raises(UserMetricError, match=message):
        metric(mask, mask, spacing=(1.0, 1.0))


def test_a_failing_metric_stops_a_study_naming_the_case(installed: Path, tmp_path: Path) -> None:
    import SimpleITK as sitk

    from evaluator.datasets.base import Case
    from evaluator.datasets.registry import load_registry
    from evaluator.errors import SimulationError
    from evaluator.evaluate import make_plan
    from evaluator.simulate.dataset import DatasetStudy, StudyJob, simulate_case

    reg = load_registry()
    spec = reg.task("autopet-phantom")
    plan = make_plan(spec, reg.profile(spec), user_metrics=["toyplugin:toy_fragile"])
    ref = np.zeros((4, 6, 6), np.uint8)
    ref[0, 0, 0] = 1  # a lesion at the voxel the metric fails on: the perfect copy fails
    ref[2:4, 3:5, 3:5] = 1
    path = tmp_path / "ref.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(ref), str(path))
    case = Case(case_id="c7", channels={"CT": path}, label=path)
    study = DatasetStudy("autopet-phantom", "all", "drop", "smallest", n_max=1)
    with pytest.raises(SimulationError, match=r"drop-smallest, case c7, label 1, n = 0: .*fragile"):
        simulate_case(StudyJob(case, plan, study, (0, 1)))
