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
    board = site.parent / "autopet-phantom--all"
    views = list((board / "cases").glob("*.html"))  # the explorer's case views
    assert views
    # index, metric definitions, task page, what each metric sees, four entries, case views
    assert len(pages) == 4 + 4 + len(views)
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


def test_publishing_reports_its_stages(phantom_board: PhantomBoard, tmp_path: Path) -> None:
    from leaderboards.site import PUBLISH_STAGES

    ticks: list[tuple[int, int | None, str]] = []
    publish_leaderboard(
        phantom_board.task,
        "all",
        workspace=phantom_board.workspace,
        out=tmp_path / "s",
        n_resamples=10,
        progress=lambda *tick: ticks.append(tick),
    )
    n = len(PUBLISH_STAGES)
    assert ticks == [(i, n, stage) for i, stage in enumerate(PUBLISH_STAGES)] + [
        (n, n, "published")
    ]


def test_cli_publishes_with_progress_on_stderr_and_reports_missing_runs(
    phantom_board: PhantomBoard, tmp_path: Path
) -> None:
    """Not a terminal: plain progress lines on stderr (stdout keeps the result); none with -q."""
    runner = CliRunner()
    ws = str(phantom_board.workspace.root)
    args = ["leaderboard", "--task", phantom_board.task, "--split", "all", "--resamples", "10"]
    loud = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--workspace", ws])
    assert loud.exit_code == 0, loud.output
    assert "index.html" in loud.stdout and (tmp_path / "a" / "index.html").exists()
    lines = loud.stderr.splitlines()
    assert lines[0].startswith(f"leaderboard {phantom_board.task}/all: 0/5 results (")
    assert lines[-1].startswith(f"leaderboard {phantom_board.task}/all: 5/5 published (")
    assert "leaderboard site" in loud.stdout and "0/5" not in loud.stdout
    quiet = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--workspace", ws, "-q"])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == "" and "leaderboard site" in quiet.stdout
    bad = runner.invoke(app, ["leaderboard", "--task", "btcv-phantom", "--workspace", ws])
    assert bad.exit_code == 1
    assert "no finished run" in bad.output


def test_index_says_what_each_board_shows(site: Path, phantom_board: PhantomBoard) -> None:
    import html

    from evaluator.datasets.registry import load_registry

    text = html.unescape(site.read_text())
    spec = load_registry().task(phantom_board.task)
    measures = text.split('id="measures"')[1].split('id="reading"')[0]
    assert spec.dataset in measures and all(label in measures for label in spec.labels.values())
    assert "Weighted mean of per-metric ranks" in measures  # the board's ranking rule
    reading = text.split('id="reading"')[1]
    for words in ("1 = best", "worst value", "resampled with replacement", "P(first)"):
        assert words in reading, words
    assert 'href="metrics.html"' in text


#: Hand-checked rows of the metric registry's edge cases: both empty, reference empty,
#: prediction empty, as metrics.html shows them.
EDGES = {
    "dice": ("1", "0", "0"),
    "hd95": ("0", "∞", "∞"),
    "lesion_tp": ("formula", "formula", "formula"),
    "fp_volume_ml": ("0", "formula", "0"),
    "fn_volume_ml": ("0", "0", "formula"),
    "coco_ap": ("NaN", "0", "0"),
}


def test_metrics_page_lists_every_metric_with_its_edge_cases(site: Path) -> None:
    import html

    from evaluator.metrics.registry import METRICS

    text = (site.parent / "metrics.html").read_text()
    rows = dict(re.findall(r'<tr id="(\w+)">(.*?)</tr>', text, re.S))
    assert list(rows) == list(METRICS)
    for name, edges in EDGES.items():
        cells = [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[name], re.S)]
        assert tuple(cells[-3:]) == edges, (name, cells)
        assert METRICS[name].description in html.unescape(rows[name])
    board = (site.parent / "autopet-phantom--all" / "index.html").read_text()
    for metric in re.findall(r'<h3 id="metric-(\w+)">', board):
        assert f'href="../metrics.html#{metric}"' in board, metric


def test_an_older_listing_is_described_from_the_registry(
    phantom_board: PhantomBoard, tmp_path: Path
) -> None:
    old = {"task": "btcv", "split": "all", "dataset": "BTCV", "path": "btcv--all/index.html"}
    old |= {"entries": 2, "cases": 3, "leader": "a", "published": "2025-01-01 00:00"}
    (tmp_path / "site.json").write_text(json.dumps([old]))
    index = publish_leaderboard(
        phantom_board.task, "all", workspace=phantom_board.workspace, out=tmp_path, n_resamples=10
    )
    text = index.read_text()
    assert "BTCV (Beyond the Cranial Vault" in text and "segmentation of 13 classes" in text
    assert [b["task"] for b in json.loads((tmp_path / "site.json").read_text())] == [
        "autopet-phantom",
        "btcv",
    ]


def test_figures_are_shown_at_the_size_they_were_drawn(site: Path) -> None:
    from PIL import Image

    board = site.parent / "autopet-phantom--all"
    page = (board / "index.html").read_text()
    figures = re.findall(r"<figure[^>]*>(.*?)</figure>", page, re.S)
    assert len(figures) == len(list((board / "plots").glob("*.png")))
    for figure in figures:
        png = re.search(r'<img src="([^"]+)"[^>]*width="(\d+)" height="(\d+)"', figure)
        assert png is not None, figure
        with Image.open(board / png[1]) as image:
            dpi = image.info["dpi"][0]
            expected = (round(image.width * 96 / dpi), round(image.height * 96 / dpi))
        assert (int(png[2]), int(png[3])) == expected, png[1]
        assert f'<a class="zoom" href="{png[1]}"' in figure  # the image opens the full PNG
        svg = Path(png[1]).with_suffix(".svg").as_posix()
        assert (f'href="{svg}"' in figure) == (board / svg).exists(), figure
