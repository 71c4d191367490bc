"""Shared fixtures: every test gets its own workspace, so nothing is written outside tmp."""

from __future__ import annotations

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
