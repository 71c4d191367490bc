"""docs/sandbox.md names a test for each guarantee: every test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("tests", "tests/runner", "tests/evaluate", "tests/leaderboards")


def _find(file_name: str) -> Path:
    for folder in FOLDERS:
        path = ROOT / folder / Path(file_name).name
        if path.is_file() and (
            folder.endswith(str(Path(file_name).parent)) or "/" not in file_name
        ):
            return path
    path = ROOT / file_name
    assert path.is_file(), f"docs/sandbox.md names {file_name}, which does not exist"
    return path


def test_every_named_test_exists() -> None:
    text = (ROOT / "docs" / "sandbox.md").read_text()
    names = re.findall(r"`([\w/]+\.py)::(\w+)(?:\[[^\]]*\])?`", text)
    following = re.findall(r"`::(\w+)`", text)
    assert len(names) > 20 and following
    for file_name, test in names:
        source = _find(file_name).read_text()
        assert f"def {test}(" in source, f"{file_name}::{test} named in docs/sandbox.md is gone"
    every_test = "".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    for test in following:
        assert f"def {test}(" in every_test, f"::{test} named in docs/sandbox.md is gone"
