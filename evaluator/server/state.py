"""What ``ccbench serve`` keeps in the store: challenges, teams, tokens, submissions, jobs, audit.

Every rule that must hold under concurrency is one statement or one locked transaction, never a
read in Python followed by a write:

* **Submission limits** (:meth:`ServerState.create_submission`): the team's row is locked
  (``SELECT ... FOR UPDATE``: PostgreSQL serialises two uploads of one team on it; SQLite has one
  writer at a time) and the new row is inserted by ``INSERT ... SELECT ... WHERE`` the counts of
  the team's submissions to the phase, today and in total, are under the limits. Two concurrent
  uploads cannot both take the last place.
* **Job claims** (:meth:`ServerState.claim_job`): ``UPDATE jobs SET state = 'running' ... WHERE
  id = ? AND`` (it is queued, or running with a heartbeat older than ``stale_after_s``): of two
  workers, one changes the row and the other sees no row changed. A job whose worker died (the
  server was restarted mid-run) is claimed again once its heartbeat is stale, so no job is lost.

Times are stored as naive UTC (the store's convention).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from evaluator.server.auth import Role, hash_token, new_token
from evaluator.server.challenge import ChallengeError, ChallengeSpec, PhaseSpec
from evaluator.store.schema import (
    audit_table,
    challenges_table,
    jobs_table,
    submissions_table,
    teams_table,
    tokens_table,
)
from evaluator.workspace import check_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from evaluator.store import Store

__all__ = [
    "Job",
    "LimitReached",
    "Principal",
    "ServerState",
    "Submission",
]


class LimitReached(ChallengeError):
    """A team's submission over a phase's limit (per day or in total)."""


@dataclass(frozen=True)
class Principal:
    """Who a request is: an organiser of a challenge, or a team of it."""

    role: Role
    challenge_id: int
    challenge: str
    team_id: int | None = None
    team: str | None = None


@dataclass(frozen=True)
class Submission:
    """Everything the store holds of one submission (a team sees its own; the organiser and
    the job runner every one)."""

    id: int
    challenge: str
    team: str
    phase: str
    status: str
    created_at: datetime
    entry: str | None = None
    run_id: int | None = None
    image_digest: str | None = None
    archive_sha256: str | None = None
    archive_bytes: int | None = None
    error_class: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Job:
    id: int
    submission_id: int
    state: str
    attempts: int
    worker: str | None


#: Statuses of a submission: ``queued``, ``running``, ``finished`` (scored), ``failed`` (the
#: submission's fault: its archive, image or containers) and ``error`` (the server's: no Docker
#: engine, the store, the data; the organiser reruns it). An ``error`` is not counted against
#: the team's limits.
UNCOUNTED = ("error",)
#: Tries of a job before it is given up (a job whose run kills the server each time).
MAX_ATTEMPTS = 3


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _new_id(result: sa.CursorResult[object]) -> int:
    """The primary key of the row an INSERT made."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the INSERT made no row")
    return int(key[0])


def _team_id(conn: sa.Connection, cid: int, challenge: str, team: str) -> int:
    """The id of a challenge's team (:class:`ChallengeError` naming both when there is none)."""
    row = conn.execute(
        sa.select(teams_table.c.id).where(
            teams_table.c.challenge_id == cid, teams_table.c.name == team
        )
    ).first()
    if row is None:
        raise ChallengeError(f"challenge '{challenge}' has no team '{team}'")
    return int(row.id)


class ServerState:
    """The server's tables in a results store (:class:`evaluator.store.Store`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- challenges, teams, tokens (the organiser's commands) --------------------------------

    def create_challenge(self, spec: ChallengeSpec, *, actor: str, update: bool = False) -> int:
        """Record a challenge definition; with ``update``, replace an existing one's.

        Raises
        ------
        ChallengeError
            A challenge of that name exists and ``update`` is False.
        """
        now = _now()
        with self.store.transaction() as conn:
            row = conn.execute(
                sa.select(challenges_table.c.id).where(challenges_table.c.name == spec.name)
            ).first()
            text = spec.model_dump_json()
            if row is not None and not update:
                raise ChallengeError(
                    f"challenge '{spec.name}' exists; `ccbench challenge init --update` replaces "
                    "its definition"
                )
            if row is None:
                cid = _new_id(
                    conn.execute(
                        challenges_table.insert().values(
                            name=spec.name, spec=text, open=False, created_at=now
                        )
                    )
                )
            else:
                cid = int(row.id)
                conn.execute(
                    challenges_table.update().where(challenges_table.c.id == cid).values(spec=text)
                )
            self._audit(conn, cid, actor, "init" if row is None else "update", {"spec": text})
        return cid

    def challenge(self, name: str) -> tuple[int, ChallengeSpec, bool]:
        """``(id, definition, open)`` of a challenge.

        Raises
        ------
        ChallengeError
            No such challenge.
        """
        with self.store.transaction() as conn:
            row = conn.execute(
                sa.select(challenges_table).where(challenges_table.c.name == name)
            ).first()
        if row is None:
            raise ChallengeError(f"no challenge '{name}' in {self.store.shown_url}")
        return int(row.id), ChallengeSpec.model_validate_json(row.spec), bool(row.open)

    def set_open(self, name: str, is_open: bool, *, actor: str) -> None:
        """Open a challenge to submissions, or close it (phases' dates still apply)."""
        cid, _, _ = self.challenge(name)
        with self.store.transaction() as conn:
            conn.execute(
                challenges_table.update().where(challenges_table.c.id == cid).values(open=is_open)
            )
            self._audit(conn, cid, actor, "open" if is_open else "close", {})

    def add_team(self, challenge: str, team: str, *, actor: str) -> int:
        """Add a team (a name that can be a path segment: letters, digits, ``_.-``)."""
        check_name(team, what="team name", max_length=64)
        cid, _, _ = self.challenge(challenge)
        with self.store.transaction() as conn:
            exists = conn.execute(
                sa.select(teams_table.c.id).where(
                    teams_table.c.challenge_id == cid, teams_table.c.name == team
                )
            ).first()
            if exists is not None:
                raise ChallengeError(f"challenge '{challenge}' has a team '{team}' already")
            tid = _new_id(
                conn.execute(
                    teams_table.insert().values(challenge_id=cid, name=team, created_at=_now())
                )
            )
            self._audit(conn, cid, actor, "add-team", {"team": team})
        return tid

    def issue_token(self, challenge: str, *, role: Role, team: str | None, actor: str) -> str:
        """A new token (returned once; only its digest is stored) for the organiser or a team."""
        cid, _, _ = self.challenge(challenge)
        if (role == "team") != (team is not None):
            raise ChallengeError("a team token names its team; an organiser token names none")
        token = new_token(role)
        with self.store.transaction() as conn:
            tid = None if team is None else _team_id(conn, cid, challenge, team)
            conn.execute(
                tokens_table.insert().values(
                    challenge_id=cid, team_id=tid, role=role, token_hash=hash_token(token),
                    created_at=_now(),
                )
            )  # fmt: skip
            self._audit(conn, cid, actor, "token", {"role": role, "team": team})
        return token

    def revoke(self, challenge: str, *, team: str | None, actor: str) -> int:
        """Revoke every live token of a team (or, with ``team=None``, of the organiser); their
        sessions end with them. Returns how many were revoked."""
        cid, _, _ = self.challenge(challenge)
        t = tokens_table
        with self.store.transaction() as conn:
            which = sa.and_(t.c.challenge_id == cid, t.c.revoked_at.is_(None))
            if team is None:
                which = sa.and_(which, t.c.team_id.is_(None))
            else:
                which = sa.and_(which, t.c.team_id == _team_id(conn, cid, challenge, team))
            done = conn.execute(t.update().where(which).values(revoked_at=_now())).rowcount
            self._audit(conn, cid, actor, "revoke", {"team": team, "tokens": done})
        return int(done)

    def authenticate(self, token: str) -> Principal | None:
        """Who holds ``token``; None for an unknown or revoked one."""
        return self.holder(hash_token(token))

    def holder(self, token_hash: str) -> Principal | None:
        """Who holds the token of this digest (a signed session cookie carries the digest)."""
        query = (
            sa.select(
                tokens_table.c.role,
                tokens_table.c.challenge_id,
                tokens_table.c.team_id,
                challenges_table.c.name.label("challenge"),
                teams_table.c.name.label("team"),
            )
            .join(challenges_table, challenges_table.c.id == tokens_table.c.challenge_id)
            .outerjoin(teams_table, teams_table.c.id == tokens_table.c.team_id)
            .where(tokens_table.c.token_hash == token_hash)
            .where(tokens_table.c.revoked_at.is_(None))
        )
        with self.store.transaction() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return Principal(row.role, int(row.challenge_id), row.challenge, row.team_id, row.team)

    # -- submissions (limits hold under concurrency) ----------------------------------------

    def submission_by_key(self, who: Principal, key: str) -> Submission | None:
        """The team's submission made with this ``Idempotency-Key``, if any."""
        s = submissions_table
        found = self._submissions(s.c.team_id == who.team_id, s.c.client_key == key)
        return found[0] if found else None

    def _limits_hold(
        self, who: Principal, phase: str, at: datetime | None
    ) -> tuple[PhaseSpec, str, list[sa.ColumnElement[bool]]]:
        """The phase (checked open), the UTC day of ``at`` and the SQL conditions under which
        ``who`` may submit once more to it (fewer than its limits counted)."""
        if who.team_id is None:
            raise ChallengeError("only a team submits")
        at = at or datetime.now(UTC)
        _, spec, is_open = self.challenge(who.challenge)
        spec_phase = spec.phase(phase)
        if not is_open:
            raise ChallengeError(f"challenge '{who.challenge}' is closed")
        if not spec_phase.is_open(at):
            raise ChallengeError(
                f"phase '{phase}' takes submissions from {spec_phase.start} to {spec_phase.end}"
            )
        day = at.astimezone(UTC).strftime("%Y-%m-%d")
        s = submissions_table
        mine = sa.and_(s.c.team_id == who.team_id, s.c.phase == phase)
        counted = s.c.status.not_in(UNCOUNTED)
        today = sa.select(sa.func.count()).where(mine, counted, s.c.day == day).scalar_subquery()
        total = sa.select(sa.func.count()).where(mine, counted).scalar_subquery()
        conditions: list[sa.ColumnElement[bool]] = []
        if spec_phase.limits.per_day is not None:
            conditions.append(today < spec_phase.limits.per_day)
        if spec_phase.limits.total is not None:
            conditions.append(total < spec_phase.limits.total)
        return spec_phase, day, conditions

    def _limit_reached(self, who: Principal, spec_phase: PhaseSpec) -> LimitReached:
        limits = spec_phase.limits
        return LimitReached(
            f"team '{who.team}' has used its submissions to phase '{spec_phase.name}' "
            f"(per day: {limits.per_day}, in total: {limits.total})"
        )

    def may_submit(self, who: Principal, phase: str, *, now: datetime | None = None) -> None:
        """Check, without recording anything, that ``who`` may submit to ``phase`` now: what
        the server asks before it reads an upload's body (:meth:`create_submission` checks
        again, atomically).

        Raises
        ------
        ChallengeError, LimitReached
            As :meth:`create_submission`.
        """
        spec_phase, _, conditions = self._limits_hold(who, phase, now)
        with self.store.transaction() as conn:
            if conn.execute(sa.select(sa.literal(1)).where(*conditions)).first() is None:
                raise self._limit_reached(who, spec_phase)

    def create_submission(
        self,
        who: Principal,
        phase: str,
        *,
        now: datetime | None = None,
        key: str | None = None,
        archive: tuple[str, int] | None = None,
        before_commit: Callable[[int], None] | None = None,
    ) -> int:
        """Record a team's submission to a phase and queue its job, within the phase's limits.

        ``archive`` is the upload's ``(SHA-256, bytes)``; ``before_commit(id)`` runs inside the
        transaction, before anyone can see the submission (the upload moved to its place), and
        an exception from it records nothing: a job is never queued without its archive.

        Raises
        ------
        ChallengeError
            The challenge is closed, the phase unknown or not open at ``now``, or ``who`` is
            not a team.
        LimitReached
            The team has used the phase's submissions for today (UTC) or in total.
        """
        at = now or datetime.now(UTC)
        spec_phase, day, conditions = self._limits_hold(who, phase, at)
        stamp = at.astimezone(UTC).replace(tzinfo=None)
        sha256, size = archive if archive is not None else (None, None)
        s = submissions_table
        values = sa.select(
            sa.literal(who.challenge_id), sa.literal(who.team_id), sa.literal(phase),
            sa.literal(day), sa.literal("queued"), sa.literal(stamp),
            sa.literal(key, sa.String(100)), sa.literal(sha256, sa.String(64)),
            sa.literal(size, sa.BigInteger()),
        ).where(*conditions)  # fmt: skip
        with self.store.transaction() as conn:
            conn.execute(  # serialise one team's uploads (PostgreSQL; SQLite has one writer)
                sa.select(teams_table.c.id).where(teams_table.c.id == who.team_id).with_for_update()
            )
            inserted = conn.execute(
                s.insert()
                .from_select(
                    [
                        "challenge_id", "team_id", "phase", "day", "status", "created_at",
                        "client_key", "archive_sha256", "archive_bytes",
                    ],
                    values,
                )
                .returning(s.c.id)
            ).first()  # fmt: skip
            if inserted is None:  # the WHERE held back the row: over a limit
                raise self._limit_reached(who, spec_phase)
            sid = int(inserted.id)
            if before_commit is not None:
                before_commit(sid)
            conn.execute(
                jobs_table.insert().values(
                    submission_id=sid, state="queued", attempts=0, created_at=_now()
                )
            )
        return sid

    def _submissions(self, *where: sa.ColumnElement[bool]) -> list[Submission]:
        s = submissions_table
        query = (
            sa.select(
                s, challenges_table.c.name.label("challenge"), teams_table.c.name.label("team")
            )
            .join(challenges_table, challenges_table.c.id == s.c.challenge_id)
            .join(teams_table, teams_table.c.id == s.c.team_id)
            .where(*where)
            .order_by(s.c.id)
        )
        with self.store.transaction() as conn:
            rows = conn.execute(query).all()
        return [
            Submission(
                r.id, r.challenge, r.team, r.phase, r.status, r.created_at, r.entry, r.run_id,
                r.image_digest, r.archive_sha256, r.archive_bytes, r.error_class, r.error,
            )
            for r in rows
        ]  # fmt: skip

    def submission(self, submission_id: int) -> Submission:
        """One submission, whoever made it (for the job runner and the organiser).

        Raises
        ------
        ChallengeError
            No such submission.
        """
        found = self._submissions(submissions_table.c.id == submission_id)
        if not found:
            raise ChallengeError(f"no submission {submission_id}")
        return found[0]

    def set_submission(self, submission_id: int, **values: object) -> None:
        """Update a submission's status, entry, run, image digest or error; a final status
        (``finished``, ``failed``) also stamps ``finished_at``."""
        allowed = {"status", "entry", "run_id", "image_digest", "error_class", "error"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"not submission fields: {sorted(unknown)}")
        if values.get("status") in ("finished", "failed"):
            values["finished_at"] = _now()
        with self.store.transaction() as conn:
            conn.execute(
                submissions_table.update()
                .where(submissions_table.c.id == submission_id)
                .values(**values)
            )

    def scored_submissions(self, challenge: str, phase: str) -> list[tuple[int, str, int]]:
        """``(submission id, team, run id)`` of a phase's finished submissions, in order."""
        cid, _, _ = self.challenge(challenge)
        s = submissions_table
        query = (
            sa.select(s.c.id, teams_table.c.name, s.c.run_id)
            .join(teams_table, teams_table.c.id == s.c.team_id)
            .where(s.c.challenge_id == cid, s.c.phase == phase, s.c.status == "finished")
            .where(s.c.run_id.is_not(None))
            .order_by(s.c.id)
        )
        with self.store.transaction() as conn:
            return [(int(r[0]), str(r[1]), int(r[2])) for r in conn.execute(query).all()]

    def submissions(self, who: Principal) -> list[Submission]:
        """The submissions ``who`` may see: a team its own, an organiser every one."""
        s = submissions_table
        if who.role == "organiser":
            return self._submissions(s.c.challenge_id == who.challenge_id)
        return self._submissions(s.c.challenge_id == who.challenge_id, s.c.team_id == who.team_id)

    def requeue(self, submission_id: int, *, actor: str, challenge: str | None = None) -> None:
        """Run a submission again (``ccbench challenge rerun``): its job back in the queue.

        Raises
        ------
        ChallengeError
            No such submission (of ``challenge``, when given), or it is queued or running.
        """
        sub = self.submission(submission_id)
        if challenge is not None and sub.challenge != challenge:
            raise ChallengeError(f"challenge '{challenge}' has no submission {submission_id}")
        with self.store.transaction() as conn:
            changed = conn.execute(
                jobs_table.update()
                .where(jobs_table.c.submission_id == submission_id)
                .where(jobs_table.c.state.in_(("done", "failed")))
                .values(state="queued", worker=None, attempts=0)
            )
            if changed.rowcount != 1:
                raise ChallengeError(
                    f"submission {submission_id} is queued or running; rerun it once it is done"
                )
            conn.execute(
                submissions_table.update()
                .where(submissions_table.c.id == submission_id)
                .values(status="queued", error_class=None, error=None, finished_at=None)
            )
            cid = conn.execute(
                sa.select(challenges_table.c.id).where(challenges_table.c.name == sub.challenge)
            ).scalar_one()
            self._audit(conn, int(cid), actor, "rerun", {"submission": submission_id})

    # -- the job queue ----------------------------------------------------------------------

    def claim_job(
        self,
        worker: str,
        *,
        stale_after_s: float = 120.0,
        challenge: str | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> Job | None:
        """Claim the oldest queued job, or a running one whose heartbeat is stale; None if none.

        ``challenge``: only that challenge's jobs (a server runs its own challenge's uploads).
        A stale job that has had ``max_attempts`` tries (it kills whatever runs it) is failed
        instead, its submission marked ``failed`` (error class ``TooManyAttempts``).
        """
        j = jobs_table
        stale = _now() - timedelta(seconds=stale_after_s)
        claimable = sa.or_(
            j.c.state == "queued", sa.and_(j.c.state == "running", j.c.heartbeat_at < stale)
        )
        query = sa.select(j.c.id, j.c.attempts, j.c.submission_id).where(claimable)
        if challenge is not None:
            cid, _, _ = self.challenge(challenge)
            query = query.join(submissions_table, submissions_table.c.id == j.c.submission_id)
            query = query.where(submissions_table.c.challenge_id == cid)
        with self.store.transaction() as conn:
            for row in conn.execute(query.order_by(j.c.id)).all():
                if row.attempts >= max_attempts:
                    gave_up = conn.execute(
                        j.update().where(j.c.id == row.id, claimable).values(state="failed")
                    )
                    if gave_up.rowcount == 1:
                        conn.execute(
                            submissions_table.update()
                            .where(submissions_table.c.id == row.submission_id)
                            .values(
                                status="failed", error_class="TooManyAttempts",
                                error=f"the job was started {row.attempts} times and never "
                                "finished", finished_at=_now(),
                            )
                        )  # fmt: skip
                    continue
                changed = conn.execute(
                    j.update()
                    .where(j.c.id == row.id, claimable)
                    .values(
                        state="running", worker=worker, heartbeat_at=_now(),
                        attempts=j.c.attempts + 1,
                    )
                )  # fmt: skip
                if changed.rowcount == 1:
                    got = conn.execute(sa.select(j).where(j.c.id == row.id)).one()
                    return Job(got.id, got.submission_id, got.state, got.attempts, got.worker)
        return None

    def heartbeat(self, job_id: int, worker: str) -> bool:
        """Keep a claimed job alive; False when another worker has taken it over."""
        with self.store.transaction() as conn:
            changed = conn.execute(
                jobs_table.update()
                .where(jobs_table.c.id == job_id, jobs_table.c.worker == worker)
                .where(jobs_table.c.state == "running")
                .values(heartbeat_at=_now())
            )
        return changed.rowcount == 1

    def finish_job(self, job_id: int, worker: str, *, state: str) -> bool:
        """Mark a claimed job ``done`` or ``failed``; False when it is no longer this worker's."""
        if state not in ("done", "failed"):
            raise ValueError(f"a job finishes as done or failed, not {state!r}")
        with self.store.transaction() as conn:
            changed = conn.execute(
                jobs_table.update()
                .where(jobs_table.c.id == job_id, jobs_table.c.worker == worker)
                .where(jobs_table.c.state == "running")
                .values(state=state, heartbeat_at=_now())
            )
        return changed.rowcount == 1

    def export(self, challenge: str) -> dict[str, object]:
        """Everything of a challenge but its tokens: definition, teams, submissions (with their
        runs and errors) and the audit log, as JSON-ready data (``ccbench challenge export``)."""
        cid, spec, is_open = self.challenge(challenge)
        with self.store.transaction() as conn:
            teams = conn.execute(
                sa.select(teams_table.c.id, teams_table.c.name).where(
                    teams_table.c.challenge_id == cid
                )
            ).all()
            subs = conn.execute(
                sa.select(submissions_table.c.id).where(submissions_table.c.challenge_id == cid)
            ).all()
        records = [self.submission(int(r.id)) for r in subs]
        return {
            "challenge": json.loads(spec.model_dump_json()),
            "open": is_open,
            "teams": sorted(str(t.name) for t in teams),
            "submissions": [vars(r) for r in records],
            "audit": [
                {"at": at.isoformat() + "Z", "actor": actor, "action": action, "detail": detail}
                for at, actor, action, detail in self.audit_log(challenge)
            ],
        }

    # -- the audit log ----------------------------------------------------------------------

    def audit_log(self, challenge: str) -> list[tuple[datetime, str, str, dict[str, object]]]:
        """``(at, actor, action, detail)`` of every organiser action on a challenge, in order."""
        cid, _, _ = self.challenge(challenge)
        with self.store.transaction() as conn:
            rows = conn.execute(
                sa.select(audit_table)
                .where(audit_table.c.challenge_id == cid)
                .order_by(audit_table.c.id)
            ).all()
        return [(r.at, r.actor, r.action, json.loads(r.detail)) for r in rows]

    @staticmethod
    def _audit(
        conn: sa.Connection, challenge_id: int, actor: str, action: str, detail: dict[str, object]
    ) -> None:
        conn.execute(
            audit_table.insert().values(
                challenge_id=challenge_id, actor=actor, action=action,
                detail=json.dumps(detail, sort_keys=True), at=_now(),
            )
        )  # fmt: skip
