"""Dataset studies on the AutoPET phantom: analytic drop oracles, store, resumption, outputs, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy import ndimage
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.datasets.base import open_dataset
from evaluator.datasets.phantoms import write_phantoms
from evaluator.errors import SimulationError
from evaluator.simulate.dataset import (
    REF_COMPONENTS,
    DatasetStudy,
    DatasetStudyResult,
    redraw_dataset_study,
    run_dataset_study,
    study_rows,
    summarize,
)
from evaluator.simulate.operators import Order
from evaluator.store import Store
from evaluator.workspace import Workspace

TASK = "autopet-phantom"


@pytest.fixture(scope="module")
def phantom_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """Five small AutoPET phantom cases: two negatives, 2, 6 and 33 lesions."""
    ws = Workspace(tmp_path_factory.mktemp("sim") / "ws").ensure()
    write_phantoms("autopet", workspace=ws, cases=5, size="48x48x40")
    return ws


def _volumes(ws: Workspace) -> dict[str, np.ndarray]:
    """Component voxel counts of every case, by an independent labeller (scipy, 26-conn.)."""
    out = {}
    for case in open_dataset(TASK, workspace=ws).cases():
        ref = sitk.GetArrayFromImage(case.read_label()) == 1
        lab, n = ndimage.label(ref, structure=np.ones((3, 3, 3)))
        out[case.case_id] = np.bincount(lab.ravel())[1:] if n else np.zeros(0, int)
    return out


def _drop_study(ws: Workspace, order: Order) -> DatasetStudyResult:
    """Drop the ``order`` components, n = 0..3, on the phantom workspace (no plots)."""
    return run_dataset_study(
        TASK, "all", op="drop", order=order, workspace=ws, n_max=3, workers=1, plots=False
    )


def _assert_same_rows(
    a: pd.DataFrame, b: pd.DataFrame, key: list[str], *, check_dtype: bool = True
) -> None:
    """Both frames hold the same rows, whatever their order."""
    pd.testing.assert_frame_equal(
        a.sort_values(key).reset_index(drop=True),
        b.sort_values(key).reset_index(drop=True),
        check_dtype=check_dtype,
    )


@pytest.fixture(scope="module")
def drop_smallest(phantom_ws: Workspace) -> pd.DataFrame:
    return _drop_study(phantom_ws, "smallest").rows


def _value(rows: pd.DataFrame, case: str, n: int, metric: str) -> float:
    hit = rows[(rows["case_id"] == case) & (rows["n"] == n) & (rows["metric"] == metric)]
    assert len(hit) == 1, (case, n, metric)
    return float(hit["value"].iloc[0])


def test_drop_matches_the_analytic_dice_and_cc_dice(
    phantom_ws: Workspace, drop_smallest: pd.DataFrame
) -> None:
    volumes = _volumes(phantom_ws)
    assert sorted(len(v) for v in volumes.values())[-1] >= 5
    for case, vols in volumes.items():
        count = len(vols)
        for n in range(4):
            part = drop_smallest[(drop_smallest["case_id"] == case) & (drop_smallest["n"] == n)]
            if count == 0 or count < (n + 1 if n else 0):
                assert part.empty, (case, n)  # too few components: the case does not take part
                continue
            assert _value(drop_smallest, case, n, REF_COMPONENTS) == count
            kept = vols.sum() - np.sort(vols)[:n].sum()
            assert _value(drop_smallest, case, n, "dice") == pytest.approx(
                2 * kept / (vols.sum() + kept), abs=1e-12
            )
            # a dropped component scores 0, every other one is perfect in its own region
            assert _value(drop_smallest, case, n, "cc_dice") == pytest.approx((count - n) / count)
            assert _value(drop_smallest, case, n, "lesion_recall") == pytest.approx(
                (count - n) / count
            )
            if n == 0:
                assert _value(drop_smallest, case, 0, "hd95") == 0.0
                assert _value(drop_smallest, case, 0, "cc_nsd") == 1.0


def test_results_are_in_the_store_one_run_per_n(
    phantom_ws: Workspace, drop_smallest: pd.DataFrame
) -> None:
    study = DatasetStudy(TASK, "all", "drop", "smallest", n_max=3)
    with Store.open(workspace=phantom_ws) as db:
        for n in range(4):
            run = db.find_run(study.run_name(n))
            assert run is not None and run.status == "finished"
            assert run.parameters["n"] == n and run.parameters["op"] == "drop"
            assert len(db.completed_cases(run.id)) == 5  # negatives recorded with no rows
        stored = study_rows(db, study)
    _assert_same_rows(stored, drop_smallest, ["case_id", "n", "metric"], check_dtype=False)


def test_resume_after_interruption_gives_the_rows_of_a_clean_run(
    phantom_ws: Workspace, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'resume.sqlite'}"

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    kwargs = dict(
        op="erode", order="largest", workspace=phantom_ws, n_max=2, workers=1, plots=False
    )
    with pytest.raises(KeyboardInterrupt):
        run_dataset_study(TASK, "all", store=url, out=tmp_path / "a", on_case=stop, **kwargs)
    resumed = run_dataset_study(TASK, "all", store=url, out=tmp_path / "a", **kwargs)
    assert resumed.scored == 4 and resumed.skipped == 1
    again = run_dataset_study(TASK, "all", store=url, out=tmp_path / "a", **kwargs)
    assert again.scored == 0 and again.skipped == 5
    clean = run_dataset_study(
        TASK, "all", store=f"sqlite:///{tmp_path / 'clean.sqlite'}", out=tmp_path / "b", **kwargs
    )
    _assert_same_rows(resumed.rows, clean.rows, ["case_id", "label", "n", "metric"])


def test_two_workers_give_the_same_numbers(phantom_ws: Workspace, tmp_path: Path) -> None:
    kwargs = dict(op="insert", order="smallest", workspace=phantom_ws, n_max=2, plots=False)
    one = run_dataset_study(
        TASK,
        "all",
        workers=1,
        store=f"sqlite:///{tmp_path / '1.sqlite'}",
        out=tmp_path / "1",
        **kwargs,
    )
    two = run_dataset_study(
        TASK,
        "all",
        workers=2,
        store=f"sqlite:///{tmp_path / '2.sqlite'}",
        out=tmp_path / "2",
        **kwargs,
    )
    _assert_same_rows(one.rows, two.rows, ["case_id", "label", "n", "metric"])
    # inserted components are false positives: precision falls, the reference is fully found
    rows = one.rows
    at2 = rows[rows["n"] == 2].set_index(["case_id", "metric"])["value"]
    assert (at2.xs("lesion_precision", level="metric") < 1).all()
    assert (at2.xs("lesion_recall", level="metric") == 1).all()
    assert (at2.xs("fp_volume_ml", level="metric") > 0).all()


def test_outputs_redraw_from_the_store_and_sensitivity(
    phantom_ws: Workspace, drop_smallest: pd.DataFrame, tmp_path: Path
) -> None:
    _drop_study(phantom_ws, "largest")
    study = DatasetStudy(TASK, "all", "drop", "smallest", n_max=3)
    with Store.open(workspace=phantom_ws) as db:
        result = redraw_dataset_study(study, db, tmp_path / "redrawn")
    names = {p.name for p in result.files}
    assert {
        "drop_smallest_cases.csv",
        "drop_summary.csv",
        "drop.png",
        "drop.svg",
        "drop_fixed.png",
        "drop_fixed.svg",
        "sensitivity.csv",
        "sensitivity.md",
    } <= names
    cases = pd.read_csv(tmp_path / "redrawn" / "drop_smallest_cases.csv", dtype={"case_id": str})
    assert len(cases) == len(drop_smallest)
    summary = result.summary
    fixed = summary[summary["subset"] == "fixed"]
    # the fixed subset holds the same cases at every n (here: the cases with >= 4 lesions)
    assert fixed.groupby(["order", "metric"])["cases"].nunique().max() == 1
    sens = result.sensitivity.set_index(["op", "metric"])
    # dropping the smallest barely moves Dice, dropping the largest moves it a lot;
    # CC-Dice moves exactly the same for both (each dropped component counts 1/count)
    assert abs(sens.loc[("drop", "dice"), "smallest_n1"]) < 0.1 * abs(
        sens.loc[("drop", "dice"), "largest_n1"]
    )
    assert sens.loc[("drop", "cc_dice"), "ratio_nmax"] == pytest.approx(1.0)
    assert sens.loc[("drop", "cc_dice"), "smallest_n1"] < 0
    markdown = (tmp_path / "redrawn" / "sensitivity.md").read_text()
    assert "| drop | cc_dice |" in markdown


def test_summarize_fixed_subset_and_quartiles() -> None:
    rows = pd.DataFrame(
        {
            "order": "largest",
            "case_id": ["a", "b", "c", "d", "a", "b", "a"],
            "label": 1,
            "n": [1, 1, 1, 1, 2, 2, 3],
            "metric": "dice",
            "value": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
        }
    )
    every = summarize(rows).set_index("n")
    assert every.loc[1, "median"] == pytest.approx(0.25)
    assert every.loc[1, "q25"] == pytest.approx(np.quantile([0.1, 0.2, 0.3, 0.4], 0.25))
    assert every["cases"].tolist() == [4, 2, 1]
    fixed = summarize(rows, n_max=3).set_index("n")
    assert fixed["cases"].tolist() == [1, 1, 1] and fixed.loc[1, "median"] == 0.1


def test_bad_study_parameters_raise() -> None:
    with pytest.raises(SimulationError, match="unknown operation"):
        DatasetStudy(TASK, "all", "shift", "smallest")  # type: ignore[arg-type]
    with pytest.raises(SimulationError, match="order"):
        DatasetStudy(TASK, "all", "drop", "middle")  # type: ignore[arg-type]
    with pytest.raises(SimulationError, match="n_max"):
        DatasetStudy(TASK, "all", "drop", "largest", n_max=0)


# ---- CLI ----------------------------------------------------------------------------------------


def test_cli_simulate_dataset_and_toy(phantom_ws: Workspace, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(
        app,
        [
            "simulate",
            "dataset",
            "--task",
            TASK,
            "--split",
            "all",
            "--op",
            "enlarge",
            "--order",
            "largest",
            "--n-max",
            "2",
            "--workers",
            "1",
            "--out",
            str(out),
            "--workspace",
            str(phantom_ws.root),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "enlarge.png").is_file() and (out / "sensitivity.md").is_file()
    assert "simulation" in result.output
    toy = runner.invoke(
        app,
        [
            "simulate",
            "toy",
            "--scale",
            "0.12",
            "--study",
            "erode_smallest",
            "--out",
            str(tmp_path / "t"),
        ],
    )
    assert toy.exit_code == 0, toy.output
    assert (tmp_path / "t" / "toy_results.csv").is_file()
    assert (tmp_path / "t" / "toy_erode_smallest.svg").is_file()


def test_cli_bad_operation_is_a_usage_error(phantom_ws: Workspace) -> None:
    result = CliRunner().invoke(
        app,
        ["simulate", "dataset", "-t", TASK, "--op", "melt", "-w", str(phantom_ws.root)],
    )
    assert result.exit_code == 2  # typer's usage error: the choices come from `Operation`
    message = " ".join(result.output.replace("│", " ").split())  # unwrap the error panel
    assert "'melt' is not one of 'drop', 'enlarge', 'insert', 'erode'" in message
    assert "Traceback" not in result.output
