"""Shared fixtures: every test gets its own workspace, so nothing is written outside tmp."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evaluator.workspace import ENV_WORKSPACE, Workspace

#: Why a ``heavy`` test is skipped unless asked for (``--run-heavy`` or ``CCBENCH_HEAVY=1``).
HEAVY_REASON = (
    "heavy (training, or an end-to-end path `ccbench demo` also runs in test_demo): "
    "run with --run-heavy or CCBENCH_HEAVY=1"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-heavy", action="store_true", help="also run the tests marked heavy (opt-in)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-heavy") or os.environ.get("CCBENCH_HEAVY") == "1":
        return
    skip = pytest.mark.skip(reason=HEAVY_REASON)
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_WORKSPACE, str(tmp_path / "ws"))


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A fresh, existing workspace folder."""
    return Workspace(tmp_path / "ws").ensure()


def processes_with_env(marker: str) -> list[int]:
    """Pids of the processes (other than this one) whose environment holds ``marker``.

    A test sets a unique ``NAME=value`` marker in a child's environment; every process that
    child starts (forkserver, scoring workers, containers' watchdogs) inherits it.
    """
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


#: 8 cases of 48x48x40 voxels: 2 held out; fold 0 trains on 4 or 5 and validates on the rest.
TINY_SIZE = "48x48x40"


@pytest.fixture(scope="session")
def _autopet_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evaluator.datasets.phantoms import write_phantoms
    from evaluator.datasets.splits import make_split

    ws = Workspace(tmp_path_factory.mktemp("learn") / "ws").ensure()
    write_phantoms("autopet", workspace=ws, cases=8, size=TINY_SIZE, seed=3)
    make_split("autopet-phantom", workspace=ws, seed=0)
    return ws.root


@pytest.fixture
def autopet_ws(_autopet_source: Path, tmp_path: Path) -> Workspace:
    """A workspace of its own holding the tiny AutoPET phantom and its split."""
    root = tmp_path / "ws"
    shutil.copytree(_autopet_source, root)
    return Workspace(root)


@pytest.fixture(scope="session")
def _chestxdet_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evaluator.datasets.phantoms import write_phantoms
    from evaluator.datasets.splits import make_split

    ws = Workspace(tmp_path_factory.mktemp("learn2d") / "ws").ensure()
    write_phantoms("chestxdet", workspace=ws, cases=10, size="256x256", seed=3)
    make_split("chestxdet-phantom", workspace=ws, seed=0)
    return ws.root


@pytest.fixture
def chestxdet_ws(_chestxdet_source: Path, tmp_path: Path) -> Workspace:
    """A workspace of its own holding a small ChestXDet phantom (256x256) and its split."""
    root = tmp_path / "ws"
    shutil.copytree(_chestxdet_source, root)
    return Workspace(root)


@pytest.fixture(scope="session")
def nnunet_trained(_autopet_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """nnU-Net trained for 2 iterations on the tiny AutoPET phantom: ``(workspace, result)``."""
    from evaluator.learn.nnunet_train import train_nnunet

    root = tmp_path_factory.mktemp("nnunet") / "ws"
    shutil.copytree(_autopet_source, root)
    ws = Workspace(root)
    return ws, train_nnunet("autopet-phantom", workspace=ws, iterations=2)


# -- headless Chromium (the published site's tests, the challenge server's upload form) --------

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
