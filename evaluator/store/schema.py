"""The tables of the results store, as SQLAlchemy Core metadata (the schema's one definition).

The schema has a revision (Alembic, ``evaluator/store/migrations``): a new store gets these
tables and the newest revision; an older store is upgraded by the migrations when it is opened
(:func:`evaluator.store.migrate.upgrade`). A change here needs a migration, and
``tests/test_store_migrations.py`` fails until the migrated schema equals this one.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias, get_args

import sqlalchemy as sa

__all__ = [
    "ARTIFACT_KINDS",
    "PER_RUN_TABLES",
    "RUN_KINDS",
    "ArtifactKind",
    "RunKind",
    "aggregates_table",
    "artifacts_table",
    "audit_table",
    "case_errors_table",
    "cases_table",
    "challenges_table",
    "components_table",
    "entries_table",
    "jobs_table",
    "metadata",
    "prompts_table",
    "results_table",
    "run_claims_table",
    "run_logs_table",
    "runs_table",
    "submissions_table",
    "teams_table",
    "tokens_table",
]

#: What a run is: a submitted entry's scores, a degradation study's scores, the scores of a
#: reference algorithm (``ccbench baselines build``), or the training of a learned baseline
#: (``ccbench baselines train``: no scores, its artifacts are the weights, log and curve).
#: Leaderboards rank ``entry`` and ``baseline`` runs and show ``study`` runs as the degradation
#: plots.
RunKind: TypeAlias = Literal["entry", "study", "baseline", "training"]
RUN_KINDS: tuple[RunKind, ...] = get_args(RunKind)

#: Files and folders a stage wrote for a run, recorded in the ``artifacts`` table: what the
#: leaderboards read besides the numbers (they open no other path).
#:
#: ``predictions``: the folder (or ChestXDet JSON) that was scored; ``data``: the data root the
#: run was scored against; ``results``, ``summary``: ``results.csv`` and ``summary.json`` of
#: ``ccbench evaluate``; ``logs``: the container logs folder of ``ccbench run``; ``container``:
#: its ``container.json``; ``plot``, ``table``: a degradation study's figures (PNG) and CSVs (and
#: a training's curve); ``weights``: the folder of a trained model (``config.json``, ``model.pt``).
ArtifactKind: TypeAlias = Literal[
    "predictions", "data", "results", "summary", "logs", "container", "plot", "table", "weights"
]
ARTIFACT_KINDS: tuple[ArtifactKind, ...] = get_args(ArtifactKind)

metadata = sa.MetaData()

entries_table = sa.Table(
    "entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("image", sa.String(500)),
    sa.Column("image_digest", sa.String(200)),
    sa.Column("manifest", sa.Text),
    sa.Column("created_at", sa.DateTime),
)

runs_table = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(300), nullable=False, unique=True),
    sa.Column("task", sa.String(100), nullable=False),
    sa.Column("split", sa.String(100), nullable=False),
    sa.Column("entry_id", sa.Integer, sa.ForeignKey("entries.id")),
    sa.Column("image_digest", sa.String(200)),
    sa.Column("dataset_fingerprint", sa.String(200)),
    sa.Column("ccbench_version", sa.String(50)),
    sa.Column("parameters", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False, server_default="entry"),
)


def _case_key() -> tuple[sa.Column[Any], sa.Column[Any]]:
    """Fresh ``run_id`` + ``case_id`` primary-key columns of a per-case table."""
    return (
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("case_id", sa.String(300), primary_key=True),
    )


cases_table = sa.Table(
    "cases",
    metadata,
    *_case_key(),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("seconds", sa.Float),
    sa.Column("completed_at", sa.DateTime),
)

results_table = sa.Table(
    "results",
    metadata,
    *_case_key(),
    sa.Column("label", sa.Integer, primary_key=True),
    sa.Column("metric", sa.String(100), primary_key=True),
    sa.Column("value", sa.Float, nullable=True),
)

components_table = sa.Table(
    "components",
    metadata,
    *_case_key(),
    sa.Column("label", sa.Integer, primary_key=True),
    sa.Column("metric", sa.String(100), primary_key=True),
    sa.Column("component", sa.Integer, primary_key=True),
    sa.Column("value", sa.Float, nullable=True),
)

case_errors_table = sa.Table(
    "case_errors",
    metadata,
    *_case_key(),
    sa.Column("error_class", sa.String(50), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
)

aggregates_table = sa.Table(
    "aggregates",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("label", sa.Integer, primary_key=True),
    sa.Column("metric", sa.String(100), primary_key=True),
    sa.Column("value", sa.Float, nullable=True),
)

run_logs_table = sa.Table(
    "run_logs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("case_id", sa.String(300)),
    sa.Column("stream", sa.String(20), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime),
)

run_claims_table = sa.Table(
    "run_claims",
    metadata,
    sa.Column(
        "run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True, autoincrement=False
    ),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("machine", sa.String(200)),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("pid_start", sa.BigInteger),
    sa.Column("claimed_at", sa.DateTime, nullable=False),
    sa.Column("heartbeat_at", sa.DateTime, nullable=False),
)

artifacts_table = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("created_at", sa.DateTime),
    sa.UniqueConstraint("run_id", "kind", "path", name="uq_artifacts_run_kind_path"),
)

#: What a prompted entry was given for each case (``/input/prompts.json``: the text targets, the
#: clicks of the run's budget), as JSON, so a published interactive score can be traced to the
#: clicks that produced it. Written by ``ccbench run``; kept when the run is scored again.
prompts_table = sa.Table(
    "prompts",
    metadata,
    *_case_key(),
    sa.Column("content", sa.Text, nullable=False),
)

#: Tables whose rows belong to one scoring of a run (:meth:`Store.reset_run` empties them);
#: the artifacts stay (the same command writes the same files again).
PER_RUN_TABLES = (
    results_table,
    components_table,
    case_errors_table,
    cases_table,
    aggregates_table,
    run_logs_table,
)

# -- ``ccbench serve``: challenges, teams, tokens, submissions, the job queue, the audit log ----

#: A challenge (``ccbench challenge init``): its definition file as read, JSON
#: (:class:`evaluator.server.challenge.ChallengeSpec`), and whether it takes submissions.
challenges_table = sa.Table(
    "challenges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("open", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

teams_table = sa.Table(
    "teams",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("challenge_id", sa.Integer, sa.ForeignKey("challenges.id"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("challenge_id", "name", name="uq_teams_challenge_name"),
)

#: Bearer tokens, stored as SHA-256 digests only (:mod:`evaluator.server.auth`); ``team_id`` is
#: NULL for an organiser's token.
tokens_table = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("challenge_id", sa.Integer, sa.ForeignKey("challenges.id"), nullable=False),
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id")),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime),
)

#: A team's upload to a phase: the archive's digest and size, the image it loaded to, the run
#: it became; ``day`` (UTC, ``YYYY-MM-DD``) is what the per-day limit counts; ``client_key``
#: the client's ``Idempotency-Key`` (a retried upload is the same submission).
submissions_table = sa.Table(
    "submissions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("challenge_id", sa.Integer, sa.ForeignKey("challenges.id"), nullable=False),
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id"), nullable=False),
    sa.Column("phase", sa.String(64), nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("archive_sha256", sa.String(64)),
    sa.Column("archive_bytes", sa.BigInteger),
    sa.Column("image_digest", sa.String(200)),
    sa.Column("entry", sa.String(200)),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id")),
    sa.Column("error_class", sa.String(50)),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("client_key", sa.String(100)),
    sa.UniqueConstraint("team_id", "client_key", name="uq_submissions_team_client_key"),
)

#: The job queue: one row per submission to run; ``state`` queued -> running -> done/failed.
#: A worker claims a job in one UPDATE (``WHERE state = 'queued'``) and keeps ``heartbeat_at``
#: fresh; a running job whose heartbeat is stale is queued again, so a restarted server loses
#: none.
jobs_table = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "submission_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False, unique=True
    ),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("worker", sa.String(200)),
    sa.Column("heartbeat_at", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

#: What organisers did (``ccbench challenge ...`` and the organiser's API calls), in order.
audit_table = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("challenge_id", sa.Integer, sa.ForeignKey("challenges.id")),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
)
