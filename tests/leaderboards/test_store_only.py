"""The store is the leaderboards' only input: they open the paths it records, and no other.

The slice gallery reads the predictions and images named by the runs' recorded artifacts, not
the run parameters; study figures are the ones a study recorded for the board's task and split,
not whatever lies in the workspace's ``simulations`` folder, and only figures ccbench drew are
copied (no link on the way, regular files, matplotlib PNG/SVG): a store row cannot publish
``/etc/passwd`` or a patient's image.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from evaluator.datasets.phantoms import MARKER
from evaluator.simulate.dataset import run_dataset_study
from evaluator.store import Store
from evaluator.workspace import Workspace
from leaderboards.site import publish_leaderboard

from .conftest import PhantomBoard, copy_store


def _copy_store(board: PhantomBoard, tmp_path: Path) -> str:
    return copy_store(board, tmp_path / "results.sqlite")


def _publish(board: PhantomBoard, url: str, out: Path, *, show_images: bool | None = True) -> Path:
    """The site folder."""
    publish_leaderboard(
        board.task,
        board.split,
        workspace=board.workspace,
        out=out,
        store=url,
        n_resamples=20,
        show_images=show_images,
    )
    return out


def test_gallery_reads_the_recorded_predictions_only(
    phantom_board: PhantomBoard, tmp_path: Path
) -> None:
    url = _copy_store(phantom_board, tmp_path)
    site = _publish(phantom_board, url, tmp_path / "with")
    assert list(site.rglob("gallery_dice_vs_cc_dice.png"))
    assert list(site.rglob("cases/img/*-axial.png"))  # the explorer's case views
    with Store.open(url) as db:
        runs = db.list_runs(task=phantom_board.task)
        assert all(Path(r.parameters["pred"]).is_dir() for r in runs)  # still on disk
        with db.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM artifacts WHERE kind = 'predictions'"))
    site = _publish(phantom_board, url, tmp_path / "without")
    assert not list(site.rglob("gallery*")), "the gallery opened a path the store does not record"
    assert not list(site.rglob("cases/img/*")), "a case view opened an unrecorded path"
    views = list(site.rglob("cases/*.html"))
    assert views  # the component tables still come from the store, without slices
    assert all("no longer where the run recorded them" in v.read_text() for v in views)


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
        # a real figure, so that only the task tells it apart
        shutil.copyfile(next(p for p in result.files if p.suffix == ".png"), tmp_path / "o.png")
        db.add_artifact(other.id, "plot", tmp_path / "o.png")
        other_split = db.get_or_create_run(
            name="simulate/split", task=phantom_board.task, split="test",
            parameters={}, kind="study",
        )  # fmt: skip
        db.add_artifact(other_split.id, "plot", tmp_path / "o.png")
        study_runs = [
            r for r in db.list_runs(kind="study", task=phantom_board.task) if r.split == "all"
        ]
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


def test_only_figures_ccbench_drew_are_published(
    phantom_board: PhantomBoard, tmp_path: Path
) -> None:
    """Store rows naming a link to /etc/passwd, a patient-like PNG (also through a linked
    folder), a folder and a named pipe: none reaches the site, and publishing does not fail."""
    import os

    url = _copy_store(phantom_board, tmp_path)
    result = run_dataset_study(
        phantom_board.task, "all", op="drop", order="largest", workspace=phantom_board.workspace,
        n_max=1, store=url, out=tmp_path / "study", workers=1,
    )  # fmt: skip
    figure = next(p for p in result.files if p.suffix == ".png")
    evil = tmp_path / "evil"
    evil.mkdir()
    shutil.copyfile(figure, evil / "a.png")  # a real figure whose SVG is a link
    (evil / "a.svg").symlink_to("/etc/passwd")
    Image.new("L", (8, 8)).save(evil / "scan.png")  # an image, not a figure
    (tmp_path / "linked").symlink_to(evil, target_is_directory=True)
    (evil / "d.png").mkdir()
    shutil.copyfile(figure, evil / "f.png")
    (evil / "f.svg").mkdir()  # a folder where the SVG should be
    os.mkfifo(evil / "p.png")
    with Store.open(url) as db:
        run = db.list_runs(kind="study", task=phantom_board.task)[0]
        for path in ("a.png", "a.svg", "scan.png", "d.png", "f.png", "f.svg", "p.png"):
            db.add_artifact(run.id, "plot", evil / path)
        db.add_artifact(run.id, "plot", tmp_path / "linked" / "scan.png")
    site = _publish(phantom_board, url, tmp_path / "site")
    board = site / f"{phantom_board.task}--all"
    plots = sorted(p.name for p in (board / "plots").glob("simulation_evil_*"))
    assert plots == ["simulation_evil_a.png", "simulation_evil_f.png"]  # no SVG of either
    passwd = Path("/etc/passwd").read_bytes()
    assert all(p.read_bytes() != passwd for p in board.rglob("*") if p.is_file())
    assert not list(board.rglob("*scan*"))


def test_a_failed_publication_keeps_the_previous_board(
    phantom_board: PhantomBoard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import leaderboards.site as site_module

    url = _copy_store(phantom_board, tmp_path)
    site = _publish(phantom_board, url, tmp_path / "site")
    board = site / f"{phantom_board.task}--all"
    before = (board / "index.html").read_text()

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(site_module, "_downloads", broken)
    with pytest.raises(OSError, match="disk full"):
        _publish(phantom_board, url, tmp_path / "site")
    assert (board / "index.html").read_text() == before
    assert [p.name for p in site.iterdir() if p.name.startswith(".")] == []


def test_images_are_shown_by_default_only_for_data_written_as_phantoms(
    phantom_board: PhantomBoard, tmp_path: Path
) -> None:
    """A phantom task scored on another data root (real scans, say) shows no slices by default."""
    url = _copy_store(phantom_board, tmp_path)
    site = _publish(phantom_board, url, tmp_path / "phantom", show_images=None)
    assert list(site.rglob("gallery*")), "phantom data: the gallery is shown by default"
    real = tmp_path / "real"
    shutil.copytree(phantom_board.workspace.phantoms / "autopet", real)
    (real / MARKER).unlink()
    with Store.open(url) as db, db.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE artifacts SET path = :p WHERE kind = 'data'"), {"p": str(real)}
        )
    site = _publish(phantom_board, url, tmp_path / "real-site", show_images=None)
    assert not list(site.rglob("gallery*"))
    site = _publish(phantom_board, url, tmp_path / "asked", show_images=True)
    assert list(site.rglob("gallery*")), "the organiser can still ask for them"
