"""A results store holding four entries of known quality on AutoPET phantoms (built once)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from evaluator.workspace import Workspace

#: Entry name -> quality of its degraded predictions (1 = the references); the construction
#: implies this order. The worst entry's name is hostile: the site must escape it.
HOSTILE = "<script>alert(1)</script>"
QUALITIES = {"perfect": 1.0, "good": 0.75, "fair": 0.45, HOSTILE: 0.1}
TASK = "autopet-phantom"


@dataclass(frozen=True)
class PhantomBoard:
    workspace: Workspace
    task: str
    split: str
    order: list[str]


@pytest.fixture(scope="session")
def phantom_board(tmp_path_factory: pytest.TempPathFactory) -> PhantomBoard:
    """Five AutoPET phantom cases, four entries evaluated into the workspace's store."""
    from evaluator.datasets.phantoms import write_phantoms
    from evaluator.evaluate import evaluate_run
    from evaluator.simulate.degraded import write_degraded_predictions
    from evaluator.store import Store

    ws = Workspace(tmp_path_factory.mktemp("board") / "ws").ensure()
    write_phantoms("autopet", workspace=ws, cases=5)
    for number, (entry, quality) in enumerate(QUALITIES.items()):
        pred = write_degraded_predictions(
            TASK, "all", ws.root / "preds" / f"e{number}", workspace=ws, seed=1, quality=quality
        )
        evaluate_run(
            TASK, "all", pred, workspace=ws, workers=1, entry=entry, run_name=f"run-{number}"
        )
    with Store.open(workspace=ws) as db:
        run = db.find_run("run-3")
        assert run is not None
        db.log(run.id, f"container said {HOSTILE}", stream="container")
    return PhantomBoard(ws, TASK, "all", list(QUALITIES))


def copy_store(board: PhantomBoard, target: Path) -> str:
    """A private copy of the session's store (SQLite's backup API: WAL pages included)."""
    import sqlite3

    src = sqlite3.connect(board.workspace.root / "results.sqlite")
    dst = sqlite3.connect(target)
    src.backup(dst)
    src.close()
    dst.close()
    return f"sqlite:///{target}"


@dataclass(frozen=True)
class StudiedBoard:
    """The phantom board's store copied, with drop studies (smallest and largest, n <= 1)."""

    board: PhantomBoard
    url: str
    sensitivity_csv: Path


@pytest.fixture(scope="session")
def studied_board(
    phantom_board: PhantomBoard, tmp_path_factory: pytest.TempPathFactory
) -> StudiedBoard:
    from evaluator.simulate.dataset import run_dataset_study

    root = tmp_path_factory.mktemp("studied")
    url = copy_store(phantom_board, root / "results.sqlite")
    for order in ("smallest", "largest"):
        run_dataset_study(
            phantom_board.task, phantom_board.split, op="drop", order=order,  # type: ignore[arg-type]
            workspace=phantom_board.workspace, n_max=1, store=url, out=root / "study", workers=1,
        )  # fmt: skip
    return StudiedBoard(phantom_board, url, root / "study" / "sensitivity.csv")
