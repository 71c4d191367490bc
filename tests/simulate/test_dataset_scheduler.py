"""``ccbench simulate dataset --scheduler local``: a Dask cluster started for the call gives the
rows of the default local pool."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.datasets.phantoms import write_phantoms
from evaluator.simulate.dataset import run_dataset_study
from evaluator.workspace import Workspace

TASK = "autopet-phantom"


def test_cli_scheduler_local_gives_the_pool_rows(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws").ensure()
    write_phantoms("autopet", workspace=ws, cases=3, size="48x48x40")
    study = dict(op="insert", order="smallest", workspace=ws, n_max=1, plots=False)
    pool = run_dataset_study(
        TASK, "all", workers=1, store=f"sqlite:///{tmp_path / 'pool.sqlite'}", **study
    )
    url = f"sqlite:///{tmp_path / 'dask.sqlite'}"
    args = ["simulate", "dataset", "--task", TASK, "--split", "all", "--op", "insert"]
    args += ["--order", "smallest", "--n-max", "1", "--store", url, "--workspace", str(ws.root)]
    args += ["--out", str(tmp_path / "out"), "--scheduler", "local", "--workers", "2", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    stored = run_dataset_study(TASK, "all", workers=1, store=url, **study)  # nothing left to do
    key = ["case_id", "label", "n", "metric"]
    pd.testing.assert_frame_equal(
        stored.rows.sort_values(key).reset_index(drop=True),
        pool.rows.sort_values(key).reset_index(drop=True),
    )
