"""Entry pages show the provenance the store holds for the entry (team, image, digest, interface,
submission time, backend), never "–" for a value the store has, and still nothing path-like."""

from __future__ import annotations

import html
import re

import pytest

from evaluator.store import Store
from leaderboards.site import entry_slug, publish_leaderboard
from tests.leaderboards.official_stores import btcv_board

DIGEST = "sha256:" + "ab" * 32
MANIFEST = {
    "name": "perfect",
    "team": "Team Ümlaut",
    "image": "ghcr.io/acme/seg:1.2",
    "image_digest": DIGEST,
    "interface": "batch",
    "submitted": "2025-03-01T14:05:09+02:00",
    "backend": "docker",
    "command": ["python", "/opt/app/predict.py"],  # a path: never published
}
#: A manifest whose values look like host paths: shown as "–".
PATHLIKE = {"team": "/srv/private/team", "image": "file:///srv/img.tar", "interface": "batch"}


def _provenance(page: str) -> dict[str, str]:
    block = page.split('<dl class="prov">')[1].split("</dl>")[0]
    pairs = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", block, re.S)
    return {html.unescape(k): html.unescape(v) for k, v in pairs}


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    root = tmp_path_factory.mktemp("provenance")
    board = btcv_board(
        root, entries=("perfect", "shifted"), manifests={"perfect": MANIFEST, "shifted": PATHLIKE}
    )
    with Store.open(workspace=board.workspace) as db:
        info = db.entry("perfect")
        assert info is not None and info.image == MANIFEST["image"] and info.image_digest == DIGEST
        run = db.find_run("btcv-perfect")
        assert run is not None and run.image_digest is None  # only the entries table has it
    index = publish_leaderboard(
        "btcv", "all", workspace=board.workspace, out=root / "site", n_resamples=10
    )
    folder = index.parent / "btcv--all" / "entries"
    return {
        e: _provenance((folder / f"{entry_slug(e)}.html").read_text())
        for e in ("perfect", "shifted")
    }


def test_entry_page_shows_the_stored_provenance(pages: dict[str, dict[str, str]]) -> None:
    prov = pages["perfect"]
    assert prov["team"] == "Team Ümlaut"
    assert prov["image"] == "ghcr.io/acme/seg:1.2"
    assert prov["image digest"] == DIGEST
    assert prov["interface"] == "batch"
    assert prov["submitted (UTC)"] == "2025-03-01 12:05:09"
    assert prov["backend"] == "docker"
    assert prov["run"] == "btcv-perfect"
    assert "/opt/app" not in str(prov)


def test_pathlike_provenance_stays_hidden(pages: dict[str, dict[str, str]]) -> None:
    prov = pages["shifted"]
    assert prov["team"] == "–" and prov["image"] == "–"
    assert prov["interface"] == "batch"
    assert prov["submitted (UTC)"] == "–" and prov["backend"] == "–"  # the store has none
