"""A results store holding four entries of known quality on AutoPET phantoms (built once)."""

from __future__ import annotations

from dataclasses import dataclass

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
