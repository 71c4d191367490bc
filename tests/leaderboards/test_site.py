"""The published site: every plot and download, escaping, self-containment, the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evaluator.cli import app
from leaderboards.site import entry_slug, publish_leaderboard
from tests.leaderboards.conftest import HOSTILE, PhantomBoard


@pytest.fixture(scope="module")
def site(phantom_board: PhantomBoard, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    return publish_leaderboard(
        phantom_board.task,
        phantom_board.split,
        workspace=phantom_board.workspace,
        out=out,
        seed=0,
        n_resamples=50,
    )


def test_every_plot_and_download_is_written(site: Path, phantom_board: PhantomBoard) -> None:
    board = site.parent / f"{phantom_board.task}--{phantom_board.split}"
    stems = ["rank_blob", "rank_heatmap", "scatter_dice_vs_cc_dice", "gallery_dice_vs_cc_dice"]
    stems += ["cases_dice", "cases_hd95", "cases_fp_volume_ml"]
    for stem in stems:
        for suffix in (".png", ".svg"):
            path = board / "plots" / f"{stem}{suffix}"
            assert path.stat().st_size > 1000, path
    assert (board / "plots" / "rank_blob.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    payload = json.loads((board / "downloads" / "leaderboard.json").read_text())
    assert [r["entry"] for r in payload["overall"]] == phantom_board.order
    for name in ("ranking.csv", "metrics.csv", "results.csv"):
        assert (board / "downloads" / name).stat().st_size > 0
    assert "autopet-phantom" in site.read_text()


def test_submission_strings_are_escaped(site: Path) -> None:
    pages = list(site.parent.rglob("*.html"))
    assert len(pages) == 2 + 4  # index, task page, four entry pages
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for page in pages:
        text = page.read_text()
        assert HOSTILE not in text, page
        assert text.count("<script>") == 1, page  # only the site's own inline script
    entry_page = site.parent / "autopet-phantom--all" / "entries" / f"{entry_slug(HOSTILE)}.html"
    text = entry_page.read_text()
    assert escaped in text
    assert "container said" not in text  # the run's log line is never published


def test_site_is_self_contained(site: Path) -> None:
    for page in site.parent.rglob("*.html"):
        text = page.read_text()
        refs = re.findall(r'(?:src|href)="([^"]*)"', text)
        assert refs, page
        for ref in refs:
            assert not re.match(r"^[a-z]+://|^//", ref), (page, ref)
            if ref.startswith("data:"):
                continue
            assert (page.parent / ref.split("#")[0]).exists(), (page, ref)


def test_reported_rows_are_marked_and_not_ranked(site: Path) -> None:
    text = (site.parent / "autopet-phantom--all" / "index.html").read_text()
    assert "reported in" in text and "APEX, Table 2" in text and "Table 16" in text
    payload = json.loads(
        (site.parent / "autopet-phantom--all/downloads/leaderboard.json").read_text()
    )
    assert {r["entry"] for r in payload["overall"]} == set(payload["entries"])
    assert "nnUNet" not in payload["entries"]


def test_cli_publishes_and_reports_missing_runs(
    phantom_board: PhantomBoard, tmp_path: Path
) -> None:
    runner = CliRunner()
    ws = str(phantom_board.workspace.root)
    args = ["leaderboard", "--task", phantom_board.task, "--split", "all", "--resamples", "20"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "s"), "--workspace", ws])
    assert result.exit_code == 0, result.output
    assert "index.html" in result.output and (tmp_path / "s" / "index.html").exists()
    bad = runner.invoke(app, ["leaderboard", "--task", "btcv-phantom", "--workspace", ws])
    assert bad.exit_code == 1
    assert "no finished run" in bad.output
