"""A metric of the user's own, registered through a real entry point of an installed
distribution, is scored by ``ccbench evaluate``, ranked by ``ccbench leaderboard`` and measured
by ``ccbench simulate dataset`` (commands run as a user runs them, in fresh processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from evaluator.datasets.base import open_dataset
from evaluator.datasets.phantoms import write_phantoms
from evaluator.simulate.degraded import write_degraded_predictions
from evaluator.store import Store
from evaluator.workspace import Workspace
from tests.metrics.test_plugins import write_plugin

TASK = "autopet-phantom"


def _ccbench(*args: str, env: dict[str, str], code: int = 0) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ccbench"), *args, "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == code, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.mark.heavy  # test_demo runs this path end to end in CI
def test_a_registered_metric_is_scored_ranked_and_studied(tmp_path: Path) -> None:
    root = write_plugin(tmp_path / "plugin")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
        "COLUMNS": "200",
    }
    env.pop("CCBENCH_METRICS", None)
    ws = Workspace(tmp_path / "ws").ensure()
    write_phantoms("autopet", workspace=ws, cases=3)
    where = ["--workspace", str(ws.root)]
    preds = {}
    for seed, (entry, quality) in enumerate({"sharp": 0.9, "blurred": 0.5}.items()):
        preds[entry] = write_degraded_predictions(
            TASK, "all", tmp_path / entry, workspace=ws, seed=seed, quality=quality
        )
        _ccbench(
            "evaluate", "-t", TASK, "--split", "all", "--pred", str(preds[entry]),
            "--entry", entry, "--run-name", entry, *where, env=env,
        )  # fmt: skip
    # the registered metric in the store, against numpy on the files
    dataset = open_dataset(TASK, workspace=ws)
    with Store.open(workspace=ws) as db:
        run = db.find_run("sharp")
        assert run is not None and run.parameters["user_metrics"] == ["toyplugin:toy_overlap"]
        stored = db.results_frame(run_ids=[run.id]).query("metric == 'toy_overlap'")
    assert len(stored) == 3
    for row in stored.itertuples():
        label = dataset.case(row.case_id).label
        assert label is not None
        ref = sitk.GetArrayFromImage(sitk.ReadImage(str(label))) == row.label
        pred_file = next(preds["sharp"].glob(f"{row.case_id}.*"))
        pred = sitk.GetArrayFromImage(sitk.ReadImage(str(pred_file))) == row.label
        if not ref.any():  # a negative case: the profile scores only its negative-case metrics
            assert np.isnan(row.value)
            continue
        assert row.value == pytest.approx(np.count_nonzero(pred & ref) / np.count_nonzero(ref))
    # a metric added to a finished run: the one setting that differs is named, --force rescores
    sharp = [
        "evaluate", "-t", TASK, "--split", "all", "--pred", str(preds["sharp"]), "--entry",
        "sharp", "--run-name", "sharp", "--metric", "evaluator.metrics.examples:volume_error_ml",
        *where,
    ]  # fmt: skip
    refused = " ".join(_ccbench(*sharp, env=env, code=1).split())
    assert "parameters user_metrics: stored ['toyplugin:toy_overlap'], asked" in refused
    assert str(preds["sharp"]) not in refused  # only what differs, not every setting
    _ccbench(*sharp, "--force", env=env)
    # a second metric named on the command line, studied with the registered one
    _ccbench(
        "simulate", "dataset", "-t", TASK, "--split", "all", "--op", "drop", "--order", "both",
        "--n-max", "1", "--metric", "evaluator.metrics.examples:component_count_error",
        *where, env=env,
    )  # fmt: skip
    sensitivity = (ws.simulations / f"{TASK}-all" / "sensitivity.csv").read_text()
    assert "drop,toy_overlap," in sensitivity and "drop,component_count_error," in sensitivity
    _ccbench("leaderboard", "-t", TASK, "--split", "all", "--resamples", "10", *where, env=env)
    board = (ws.sites / f"{TASK}--all" / "index.html").read_text()
    assert 'id="metric-toy_overlap"' in board  # ranked: its own per-metric table
    panel = board[board.index('id="sensitivity-panel"') :]
    panel = panel[: panel.index("</table>")]
    assert "toy_overlap</a> <span" in panel and "yours" in panel
    assert "metrics.html#toy_overlap" in panel
    definitions = (ws.sites / "metrics.html").read_text()
    assert 'id="toy_overlap"' in definitions and "Your metrics" in definitions
    # scored for one entry only, and not registered where the board is published: named
    assert "Metric evaluator.metrics.examples:volume_error_ml is not ranked" in board
    page = (ws.sites / f"{TASK}--all" / "sensitivity.html").read_text()
    # studied, but not known where the board was published: shown without a verdict
    assert 'component_count_error <span class="tag">not known here</span>' in page
