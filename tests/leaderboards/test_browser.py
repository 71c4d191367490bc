"""The site in a real browser: headless Chromium (Debian's package) driven by selenium.

The set-up installs ``chromium`` and ``chromium-driver`` with apt-get when they are missing and
the tests run as root (as in CI); elsewhere the tests are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leaderboards.site import publish_leaderboard
from tests.leaderboards.conftest import HOSTILE, PhantomBoard

pytestmark = pytest.mark.browser

_PACKAGES = ["chromium", "chromium-driver"]


def _binaries() -> tuple[str | None, str | None]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    return browser, shutil.which("chromedriver")


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver, installed from Debian's packages when missing."""
    browser, driver = _binaries()
    if (browser is None or driver is None) and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", *_PACKAGES]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True)
            subprocess.run(install, env=env, capture_output=True)
        browser, driver = _binaries()
    if browser is None or driver is None:
        pytest.skip("headless Chromium not available (apt-get install chromium chromium-driver)")
    return browser, driver


@pytest.fixture(scope="module")
def driver(chromium: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium[0]
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(chromium[1]), options=options)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="module")
def site(phantom_board: PhantomBoard, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return publish_leaderboard(
        phantom_board.task,
        phantom_board.split,
        workspace=phantom_board.workspace,
        out=tmp_path_factory.mktemp("browser-site"),
        n_resamples=30,
    )


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def test_pages_load_without_console_errors(driver: Any, site: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    pages = sorted(site.parent.rglob("*.html"))
    assert len(pages) == 6
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
