"""The site in a real browser: headless Chromium (Debian's package) driven by selenium.

The set-up installs ``chromium`` and ``chromium-driver`` with apt-get when they are missing and
the tests run as root (as in CI); elsewhere the tests are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from leaderboards.site import publish_leaderboard
from tests.leaderboards.conftest import HOSTILE, StudiedBoard

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(studied_board: StudiedBoard, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The phantom board with its degradation studies: the sensitivity panel and page, and
    the explorer's case views, are on it."""
    board = studied_board.board
    return publish_leaderboard(
        board.task,
        board.split,
        workspace=board.workspace,
        out=tmp_path_factory.mktemp("browser-site"),
        store=studied_board.url,
        n_resamples=30,
    )


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def test_pages_load_without_console_errors(driver: Any, site: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    pages = sorted(site.parent.rglob("*.html"))
    board = site.parent / "autopet-phantom--all"
    # index, metric definitions, task page, what each metric sees, four entries, case views
    assert {p.name for p in pages if p.parent == board} == {"index.html", "sensitivity.html"}
    assert len(list((board / "entries").glob("*.html"))) == 4
    assert list((board / "cases").glob("*.html"))
    for page in pages:
        driver.get(page.as_uri())
        assert driver.find_element(By.TAG_NAME, "h1").text, page
        assert _severe(driver) == [], page
    board = site.parent / "autopet-phantom--all" / "index.html"
    driver.get(board.as_uri())
    images = driver.find_elements(By.CSS_SELECTOR, "figure img")
    assert len(images) >= 5
    # lazy images below the fold may not be loaded yet; scroll through the page first
    driver.execute_script("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
    driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    broken = driver.execute_script(
        "return Array.from(document.images).filter(i => i.complete && i.naturalWidth === 0)"
        ".map(i => i.src)"
    )
    assert broken == []
    driver.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "leaderboard.png"
    assert driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_hostile_entry_name_is_text_not_script(driver: Any, site: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.get((site.parent / "autopet-phantom--all" / "index.html").as_uri())
    names = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#ranking tbody td a")]
    assert HOSTILE in names
    assert len(driver.find_elements(By.TAG_NAME, "script")) == 1


def test_sorting_a_table_by_clicking_headers(driver: Any, site: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.get((site.parent / "autopet-phantom--all" / "index.html").as_uri())

    def column(index: int) -> list[str]:
        rows = driver.find_elements(By.CSS_SELECTOR, "#ranking tbody tr")
        return [r.find_elements(By.TAG_NAME, "td")[index].text for r in rows]

    headers = driver.find_elements(By.CSS_SELECTOR, "#ranking thead th")
    assert column(0) == ["1", "2", "3", "4"]
    headers[0].click()  # rank, ascending (already)
    headers[0].click()  # rank, descending
    assert column(0) == ["4", "3", "2", "1"]
    assert headers[0].get_attribute("aria-sort") == "descending"
    headers[1].click()  # entry names, alphabetical
    names = column(1)
    assert names == sorted(names, key=str.lower)
    assert names != ["perfect", "good", "fair", HOSTILE]


@pytest.fixture(scope="module")
def infinite_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The BTCV task page of a board whose raw HD95 and ASSD values include inf."""
    from tests.leaderboards.official_stores import btcv_board

    root = tmp_path_factory.mktemp("browser-inf")
    board = btcv_board(root)
    index = publish_leaderboard(
        "btcv", "all", workspace=board.workspace, out=root / "site", n_resamples=30
    )
    return index.parent / "btcv--all" / "index.html"


def test_official_section_first_and_no_infinite_mean(
    driver: Any, infinite_site: Path, tmp_path: Path
) -> None:
    import csv
    import re

    from selenium.webdriver.common.by import By

    with (infinite_site.parent / "downloads" / "results.csv").open() as f:
        raw = [r for r in csv.DictReader(f) if r["metric"] in ("hd95", "assd")]
    assert any(r["value"] == "inf" for r in raw)  # the board's raw values are infinite
    driver.get(infinite_site.as_uri())
    assert _severe(driver) == []
    sections = driver.find_elements(By.TAG_NAME, "h2")
    assert sections[0].get_attribute("id") == "official"
    assert sections[0].text == "BTCV (per-organ Dice): official score and ranking"
    checked = 0
    for table in driver.find_elements(By.CSS_SELECTOR, "main table"):
        headers = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
        columns = [i for i, h in enumerate(headers) if "mean" in h.lower() or h == "95% CI"]
        for row in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
            cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
            for i in columns:
                assert "∞" not in cells[i] and "inf" not in cells[i].lower(), (headers[i], cells)
                assert not re.search(r"–\s*–", cells[i]), (headers[i], cells)
                if headers[i] == "95% CI":
                    assert re.fullmatch(r"\d+\.\d+ – \d+\.\d+", cells[i]), cells
                checked += 1
    assert checked > 50  # official, per-organ and per-metric tables were read
    shot = tmp_path / "btcv.png"
    assert driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


#: Window widths of the layout test, CSS px: a desktop browser and a phone.
DESKTOP, PHONE = 1400, 390

#: What the layout test measures on a page: the viewport and document widths, and every table
#: that is rendered (not inside a closed ``<details>``) with the width of its parent.
_LAYOUT = """
const tables = Array.from(document.querySelectorAll('main table'))
  .filter(t => t.offsetParent !== null)
  .map(t => ({name: t.id || t.className, width: t.offsetWidth,
              parent: t.parentElement.clientWidth,
              scrolls: t.parentElement.classList.contains('scroll')}));
return {inner: window.innerWidth, doc: document.documentElement.scrollWidth,
        body: document.body.scrollWidth, height: document.documentElement.scrollHeight,
        chrome: window.outerHeight - window.innerHeight, tables: tables};
"""


def _site_root(page: Path) -> Path:
    """The folder of a published site: the nearest folder above ``page`` with ``site.json``."""
    return next(p for p in page.parents if (p / "site.json").is_file())


def _load_every_image(driver: Any) -> list[str]:
    """Load the page's lazy images (eager, scrolled to the bottom); the ones that failed."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
    driver.execute_script("window.scrollTo(0, document.documentElement.scrollHeight)")
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return Array.from(document.images).every(i => i.complete)")
    )
    return list(
        driver.execute_script(
            "return Array.from(document.images).filter(i => i.naturalWidth === 0).map(i => i.src)"
        )
    )


def _layout_faults(layout: dict[str, Any], width: int, name: str) -> list[str]:
    """Everything wider than it may be at this window width, with the measured widths: the
    document or body (never), a table wider than its parent (only on the phone, and only
    inside its own ``.scroll`` wrapper)."""
    faults = [
        f"{name} at {width} px: {what}.scrollWidth {layout[key]} > innerWidth {layout['inner']}"
        for what, key in (("documentElement", "doc"), ("body", "body"))
        if layout[key] > layout["inner"]
    ]
    for table in layout["tables"]:
        if table["width"] > table["parent"] and not (width == PHONE and table["scrolls"]):
            faults.append(
                f"{name} at {width} px: table {table['name']!r} is {table['width']} px wide "
                f"in a {table['parent']} px parent"
                + ("" if table["scrolls"] else " (not in a .scroll wrapper)")
            )
    return faults


def _full_page_screenshot(driver: Any, layout: dict[str, Any], width: int, path: Path) -> None:
    """Resize the window to the whole document, then save a screenshot of it to ``path``."""
    driver.set_window_size(width, layout["height"] + layout["chrome"])
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path)), path


@pytest.mark.parametrize("board", ["site", "infinite_site"])
def test_every_page_fits_a_desktop_and_a_phone(
    driver: Any, board: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Every page at 1400 and 390 px, its disclosures open: nothing scrolls sideways but a
    table inside its own ``.scroll`` wrapper on the phone; every image loads; no console
    error. Full-page screenshots go to ``tmp_path`` and, when CCBENCH_SCREENSHOTS names a
    folder, there too."""
    root = _site_root(request.getfixturevalue(board))
    pages = sorted(root.rglob("*.html"))
    assert {"index.html", "metrics.html"} <= {p.name for p in pages}
    faults: list[str] = []
    measured: list[str] = []
    shots: list[Path] = []
    tables = 0
    _severe(driver)  # drop what earlier tests left in the log
    try:
        for width in (DESKTOP, PHONE):
            for page in pages:
                name = page.relative_to(root).as_posix()
                driver.set_window_size(width, 900)
                driver.get(page.as_uri())
                driver.execute_script(
                    "document.querySelectorAll('details').forEach(d => d.open = true)"
                )
                faults += [
                    f"{name} at {width} px: image {src} did not load"
                    for src in _load_every_image(driver)
                ]
                layout = driver.execute_script(_LAYOUT)
                assert layout["inner"] == width, (name, layout["inner"], width)
                measured.append(
                    f"{name} @ {width}: documentElement {layout['doc']}, body {layout['body']}, "
                    f"innerWidth {layout['inner']}"
                )
                faults += _layout_faults(layout, width, name)
                tables += len(layout["tables"])
                faults += [f"{name} at {width} px: console {e['message']}" for e in _severe(driver)]
                shot = tmp_path / f"{width}px" / name.replace("/", "__").replace(".html", ".png")
                _full_page_screenshot(driver, layout, width, shot)
                shots.append(shot)
    finally:
        driver.set_window_size(1280, 1600)
    assert faults == [], "\n".join([*faults, "measured:", *measured])
    assert tables > 2 * len(pages)  # the ranking, per-metric and entry tables were measured
    assert all(s.stat().st_size > 0 for s in shots)
    target = os.environ.get("CCBENCH_SCREENSHOTS")
    if target:
        for shot in shots:
            dest = Path(target) / board / shot.relative_to(tmp_path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, dest)
