"""The store is the leaderboards' only input: they open the paths it records, and no other.

The slice gallery reads the predictions and images named by the runs' recorded artifacts, not
the run parameters; study figures are the ones a study recorded for the board's task (or the task
it is a phantom of), not whatever lies in the workspace's ``simulations`` folder.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from evaluator.simulate.dataset import run_dataset_study
from evaluator.store import Store
from evaluator.workspace import Workspace
from leaderboards.site import publish_leaderboard

from .conftest import PhantomBoard


def _copy_store(board: PhantomBoard, tmp_path: Path) -> str:
    """A private copy of the session's store (SQLite's backup API: WAL pages included)."""
    target = tmp_path / "results.sqlite"
    src = sqlite3.connect(board.workspace.root / "results.sqlite")
    dst = sqlite3.connect(target)
    src.backup(dst)
    src.close()
    dst.close()
    return f"sqlite:///{target}"


def _publish(board: PhantomBoard, url: str, out: Path) -> Path:
    """The site folder."""
    publish_leaderboard(
        board.task,
        board.split,
        workspace=board.workspace,
        out=out,
        store=url,
        n_resamples=20,
        show_images=True,
    )
    return out


def test_gallery_reads_the_recorded_predictions_only(
    phantom_board: PhantomBoard, tmp_path: Path
) -> None:
    url = _copy_store(phantom_board, tmp_path)
    site = _publish(phantom_board, url, tmp_path / "with")
    assert list(site.rglob("gallery_dice_vs_cc_dice.png"))
    with Store.open(url) as db:
        runs = db.list_runs(task=phantom_board.task)
        assert all(Path(r.parameters["pred"]).is_dir() for r in runs)  # still on disk
        with db.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM artifacts WHERE kind = 'predictions'"))
    site = _publish(phantom_board, url, tmp_path / "without")
    assert not list(site.rglob("gallery*")), "the gallery opened a path the store does not record"


def test_study_figures_are_the_recorded_ones_of_the_task(
    phantom_board: PhantomBoard, tmp_path: Path
) -> None:
    url = _copy_store(phantom_board, tmp_path)
    ws: Workspace = phantom_board.workspace
    result = run_dataset_study(
        phantom_board.task,
        "all",
        op="drop",
        order="largest",
        workspace=ws,
        n_max=1,
        store=url,
        out=tmp_path / "study",
        workers=1,
    )
    recorded = sorted(p.name for p in result.files if p.suffix == ".png")
    assert recorded
    # a figure lying in the workspace's simulations folder but never recorded
    planted = ws.simulations / f"{phantom_board.task}-planted"
    planted.mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(planted / "planted.png")
    with Store.open(url) as db:
        # a study of another task whose name starts with this one's
        other = db.get_or_create_run(
            name="simulate/other", task=f"{phantom_board.task}-big", split="all",
            parameters={}, kind="study",
        )  # fmt: skip
        Image.new("RGB", (4, 4)).save(tmp_path / "other.png")
        db.add_artifact(other.id, "plot", tmp_path / "other.png")
        study_runs = db.list_runs(kind="study", task=phantom_board.task)
        assert len(study_runs) == 2  # n = 0 and n = 1
        assert {a.kind for a in db.artifacts(run_ids=[study_runs[0].id])} == {"plot", "table"}
    site = _publish(phantom_board, url, tmp_path / "site")
    shown = sorted(
        p.name for p in (site / f"{phantom_board.task}--all" / "plots").glob("simulation_*.png")
    )
    assert shown == [f"simulation_study_{name}" for name in recorded]


@pytest.mark.parametrize("kind", ["baseline"])
def test_baselines_are_ranked_and_marked(
    phantom_board: PhantomBoard, tmp_path: Path, kind: str
) -> None:
    url = _copy_store(phantom_board, tmp_path)
    with Store.open(url) as db, db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE runs SET kind = :k WHERE name = 'run-2'"), {"k": kind})
    site = _publish(phantom_board, url, tmp_path / "site")
    page = (site / f"{phantom_board.task}--all" / "index.html").read_text()
    assert page.count('<span class="tag">baseline</span>') == 1
    row = next(line for line in page.splitlines() if '<span class="tag">baseline' in line)
    assert ">fair</a>" in row  # run-2 is the entry "fair"
