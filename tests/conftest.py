"""Shared fixtures: every test gets its own workspace, so nothing is written outside tmp."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evaluator.workspace import ENV_WORKSPACE, Workspace


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
