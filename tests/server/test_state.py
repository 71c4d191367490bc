"""The server's tables in a real SQLite store: tokens, limits under concurrent uploads, the
job queue surviving a dead worker, the audit log."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evaluator.server.challenge import ChallengeError, ChallengeSpec
from evaluator.server.state import LimitReached, ServerState
from evaluator.store import Store

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
SPEC = {
    "name": "demo",
    "phases": [
        {
            "name": "final", "task": "autopet-phantom", "split": "test",
            "start": "2026-12-01T00:00:00Z", "end": "2027-01-01T00:00:00Z",
            "limits": {"per_day": 2, "total": 3},
        }
    ],
}  # fmt: skip


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'server.sqlite'}"


@pytest.fixture
def state(url: str) -> ServerState:
    s = ServerState(Store.open(url))
    s.create_challenge(ChallengeSpec.model_validate(SPEC), actor="org")
    s.set_open("demo", True, actor="org")
    for team in ("alpha", "beta"):
        s.add_team("demo", team, actor="org")
    return s


def test_tokens_name_their_holder_and_forged_ones_nobody(state: ServerState) -> None:
    alpha = state.issue_token("demo", role="team", team="alpha", actor="org")
    org = state.issue_token("demo", role="organiser", team=None, actor="org")
    who = state.authenticate(alpha)
    assert who is not None and (who.role, who.team) == ("team", "alpha")
    boss = state.authenticate(org)
    assert boss is not None and boss.role == "organiser" and boss.team is None
    for forged in ("", alpha[:-1], alpha + "x", "ccb_org_" + alpha[9:], org.upper()):
        assert state.authenticate(forged) is None
    with pytest.raises(ChallengeError, match="no team 'gamma'"):
        state.issue_token("demo", role="team", team="gamma", actor="org")
    with pytest.raises(ChallengeError, match="has a team 'alpha' already"):
        state.add_team("demo", "alpha", actor="org")
    actions = [a for _, _, a, _ in state.audit_log("demo")]
    assert actions == ["init", "open", "add-team", "add-team", "token", "token"]
    stored = state.store.engine.connect().exec_driver_sql("SELECT token_hash FROM tokens").all()
    assert alpha not in str(stored) and org not in str(stored)  # digests only


def test_limits_per_day_and_in_total(state: ServerState) -> None:
    alpha = state.authenticate(state.issue_token("demo", role="team", team="alpha", actor="o"))
    assert alpha is not None
    state.create_submission(alpha, "final", now=NOW)
    state.create_submission(alpha, "final", now=NOW)
    with pytest.raises(LimitReached, match="per day: 2"):
        state.create_submission(alpha, "final", now=NOW)
    state.create_submission(alpha, "final", now=NOW + timedelta(days=1))
    with pytest.raises(LimitReached, match="in total: 3"):
        state.create_submission(alpha, "final", now=NOW + timedelta(days=2))
    beta = state.authenticate(state.issue_token("demo", role="team", team="beta", actor="o"))
    assert beta is not None
    state.create_submission(beta, "final", now=NOW)  # limits are per team
    assert len(state.submissions(alpha)) == 3 and len(state.submissions(beta)) == 1
    with pytest.raises(ChallengeError, match="takes submissions from"):
        state.create_submission(beta, "final", now=datetime(2027, 1, 1, tzinfo=UTC))
    state.set_open("demo", False, actor="org")
    with pytest.raises(ChallengeError, match="closed"):
        state.create_submission(beta, "final", now=NOW)


def _submit(url: str, token: str) -> str:
    state = ServerState(Store.open(url))
    who = state.authenticate(token)
    assert who is not None
    try:
        state.create_submission(who, "final", now=NOW)
        return "ok"
    except LimitReached:
        return "limit"


def test_concurrent_uploads_cannot_exceed_the_limit(state: ServerState, url: str) -> None:
    token = state.issue_token("demo", role="team", team="alpha", actor="org")
    with ProcessPoolExecutor(6) as pool:
        got = list(pool.map(_submit, [url] * 12, [token] * 12))
    assert got.count("ok") == 2 and got.count("limit") == 10
    who = state.authenticate(token)
    assert who is not None and len(state.submissions(who)) == 2


def _claim(url: str, worker: str) -> int | None:
    job = ServerState(Store.open(url)).claim_job(worker)
    return None if job is None else job.id


def test_each_job_is_claimed_once_and_a_dead_workers_job_again(
    state: ServerState, url: str
) -> None:
    alpha = state.authenticate(state.issue_token("demo", role="team", team="alpha", actor="o"))
    beta = state.authenticate(state.issue_token("demo", role="team", team="beta", actor="o"))
    assert alpha is not None and beta is not None
    for who in (alpha, alpha, beta):
        state.create_submission(who, "final", now=NOW)
    with ProcessPoolExecutor(4) as pool:
        claimed = list(pool.map(_claim, [url] * 8, [f"w{i}" for i in range(8)]))
    jobs = [c for c in claimed if c is not None]
    assert sorted(jobs) == [1, 2, 3]  # each job once, the other workers none
    # the worker of job 1 dies: its heartbeat goes stale and another worker takes the job over
    assert state.claim_job("late") is None
    again = state.claim_job("late", stale_after_s=-1)
    assert again is not None and again.attempts == 2 and again.worker == "late"
    first = claimed.index(again.id)
    assert not state.finish_job(again.id, f"w{first}", state="done")  # no longer its job
    assert state.finish_job(again.id, "late", state="done")
    assert not state.heartbeat(again.id, "late")  # finished


def test_export_has_everything_but_the_tokens(state: ServerState) -> None:
    token = state.issue_token("demo", role="team", team="alpha", actor="org")
    who = state.authenticate(token)
    assert who is not None
    state.create_submission(who, "final", now=NOW)
    data = state.export("demo")
    assert data["teams"] == ["alpha", "beta"] and data["open"] is True
    subs = data["submissions"]
    assert isinstance(subs, list) and [s["team"] for s in subs] == ["alpha"]
    assert [a["action"] for a in data["audit"]][-1] == "token"  # type: ignore[index]
    assert token not in str(data)


def test_a_server_claims_its_own_challenges_jobs_and_gives_up_a_killer_job(
    state: ServerState,
) -> None:
    other = dict(SPEC, name="other")
    state.create_challenge(ChallengeSpec.model_validate(other), actor="org")
    state.set_open("other", True, actor="org")
    state.add_team("other", "gamma", actor="org")
    gamma = state.authenticate(state.issue_token("other", role="team", team="gamma", actor="o"))
    assert gamma is not None
    sid = state.create_submission(gamma, "final", now=NOW)
    assert state.claim_job("w", challenge="demo") is None  # not demo's job
    for attempt in range(1, 4):  # the job's run kills its worker each time
        job = state.claim_job(f"w{attempt}", challenge="other", stale_after_s=-1)
        assert job is not None and job.attempts == attempt
        with pytest.raises(ChallengeError, match="queued or running"):
            state.requeue(sid, actor="org")  # never while a worker may hold it
    assert state.claim_job("w4", challenge="other", stale_after_s=-1) is None
    record = state.submission(sid)
    assert (record.status, record.error_class) == ("failed", "TooManyAttempts")
    state.requeue(sid, actor="org")  # once given up, the organiser may run it again
    again = state.claim_job("w5", challenge="other")
    assert again is not None and again.attempts == 1


def test_a_revoked_token_authenticates_nobody(state: ServerState) -> None:
    first = state.issue_token("demo", role="team", team="alpha", actor="org")
    second = state.issue_token("demo", role="team", team="alpha", actor="org")
    beta = state.issue_token("demo", role="team", team="beta", actor="org")
    assert state.revoke("demo", team="alpha", actor="org") == 2
    assert state.authenticate(first) is None and state.authenticate(second) is None
    assert state.authenticate(beta) is not None  # other teams keep theirs
    fresh = state.issue_token("demo", role="team", team="alpha", actor="org")
    assert state.authenticate(fresh) is not None
    assert state.audit_log("demo")[-2][2] == "revoke"


def test_server_faults_are_not_counted_and_the_precheck_agrees(state: ServerState) -> None:
    alpha = state.authenticate(state.issue_token("demo", role="team", team="alpha", actor="o"))
    assert alpha is not None
    first = state.create_submission(alpha, "final", now=NOW)
    state.set_submission(first, status="error", error_class="DockerUnavailableError")
    state.may_submit(alpha, "final", now=NOW)  # the server's fault gave the place back
    state.create_submission(alpha, "final", now=NOW)
    second = state.create_submission(alpha, "final", now=NOW)
    state.set_submission(second, status="failed", error_class="SubmissionError")
    with pytest.raises(LimitReached):  # the submission's own failure is counted
        state.may_submit(alpha, "final", now=NOW)
    with pytest.raises(LimitReached):
        state.create_submission(alpha, "final", now=NOW)
    with pytest.raises(ChallengeError, match="takes submissions from"):
        state.may_submit(alpha, "final", now=NOW + timedelta(days=60))


def test_a_submission_is_recorded_with_its_archive_or_not_at_all(state: ServerState) -> None:
    alpha = state.authenticate(state.issue_token("demo", role="team", team="alpha", actor="o"))
    assert alpha is not None

    def fail(sid: int) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        state.create_submission(alpha, "final", now=NOW, archive=("ab" * 32, 5), before_commit=fail)
    assert state.submissions(alpha) == []  # no submission ...
    assert state.claim_job("w", stale_after_s=60) is None  # ... and no job without its archive
    moved: list[int] = []
    sid = state.create_submission(
        alpha, "final", now=NOW, archive=("cd" * 32, 7), key="k1", before_commit=moved.append
    )
    assert moved == [sid]
    sub = state.submission(sid)
    assert (sub.archive_sha256, sub.archive_bytes, sub.team) == ("cd" * 32, 7, "alpha")
    found = state.submission_by_key(alpha, "k1")
    assert found is not None and found.id == sid
