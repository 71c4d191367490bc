"""`ccbench demo` is the main job: it runs end to end, every step ok, in a fresh workspace."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from evaluator.demo import demo_steps, demo_tasks, run_demo
from evaluator.workspace import Workspace

pytestmark = pytest.mark.slow


def test_demo_runs_every_step(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    out = io.StringIO()
    ok = run_demo(ws, seed=0, console=Console(file=out, width=160))
    text = out.getvalue()
    assert ok, text[-4000:]
    assert text.count("step failed") == 0
    for step in demo_steps():
        assert step.title.split(" (")[0] in text
    site = json.loads((ws.sites / "site.json").read_text())
    assert sorted(b["task"] for b in site) == sorted(f"{t}-phantom" for t in demo_tasks())
    assert "5/5 hostile prediction files refused" in text
    assert not any(ws.tmp.iterdir()) if ws.tmp.exists() else True
