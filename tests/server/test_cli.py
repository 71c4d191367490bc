"""The organiser's commands, ``ccbench challenge ...``, on a real SQLite store in a workspace."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from evaluator.cli import app
from tests.server.test_challenge import GOOD


def test_an_organiser_sets_up_runs_and_exports_a_challenge(tmp_path: Path) -> None:
    from evaluator.server.state import ServerState
    from evaluator.store import Store
    from evaluator.workspace import Workspace

    runner = CliRunner()
    ws = ["--workspace", str(tmp_path / "ws")]
    env = {"CCBENCH_STORE": "", "COLUMNS": "200"}

    def run(*args: str, ok: bool = True) -> str:
        done = runner.invoke(app, ["challenge", *args, *ws], env=env)
        assert (done.exit_code == 0) == ok, done.output
        return done.output

    (tmp_path / "c.yaml").write_text(GOOD)
    init = run("init", str(tmp_path / "c.yaml"))
    assert "2 phase(s)" in init and "phase sanity is not hidden" in init
    run("add-team", "autopet-demo", "lab-a")
    token = run("token", "autopet-demo", "--team", "lab-a").strip()
    assert token.startswith("ccb_") and len(token) > 40
    assert run("token", "autopet-demo", ok=False)  # --team or --organiser
    run("open", "autopet-demo")
    state = ServerState(Store.open(workspace=Workspace(tmp_path / "ws")))
    who = state.authenticate(token)
    assert who is not None and who.team == "lab-a"
    sid = state.create_submission(who, "sanity", now=datetime(2026, 12, 10, tzinfo=UTC))
    job = state.claim_job("w", stale_after_s=60)
    assert job is not None and state.finish_job(job.id, "w", state="failed")
    state.set_submission(
        sid, status="failed", error_class="SubmissionError", error="no manifest\x1b[2J[bold]x[/]"
    )
    listed = run("submissions", "autopet-demo")
    assert "lab-a" in listed and "SubmissionError: no manifest" in listed
    assert "\x1b" not in listed and "[bold]x[/]" in listed  # no escapes, markup shown as text
    assert f"submission {sid} queued again" in run("rerun", "autopet-demo", str(sid))
    assert state.submission(sid).status == "queued"
    assert "challenge 'another' has no submission" in run("rerun", "another", str(sid), ok=False)
    assert "1 token(s) revoked" in run("revoke", "autopet-demo", "--team", "lab-a")
    assert state.authenticate(token) is None
    run("close", "autopet-demo")
    run("export", "autopet-demo", "-o", str(tmp_path / "e.json"))
    exported = json.loads((tmp_path / "e.json").read_text())
    assert token not in (tmp_path / "e.json").read_text()
    actions = [a["action"] for a in exported["audit"]]
    assert actions[:3] == ["init", "add-team", "token"] and "rerun" in actions
