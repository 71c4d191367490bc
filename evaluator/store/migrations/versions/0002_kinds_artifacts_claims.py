"""Run kinds, recorded artifacts and run claims.

- ``runs.kind``: ``entry``, ``study`` or ``baseline``. Existing runs are classified from what
  wave 1 recorded: a ``simulation`` key in the parameters is a degradation study; an entry whose
  manifest names the team ``ccbench baselines`` (what ``ccbench baselines build`` submitted) is
  a baseline; anything else is an entry.
- ``artifacts``: the files a stage wrote for a run. Existing runs get what their parameters
  name: the scored predictions (``pred``) and the data root (``data_root``, when one was
  given). A study's figures are recorded when ``ccbench simulate dataset`` next runs.
- ``run_claims``: which process scores a run (created here unless a development build made it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: The team of the entries ``ccbench baselines build`` submitted in wave 1.
_BASELINE_TEAM = "ccbench baselines"

_runs = sa.table(
    "runs",
    sa.column("id", sa.Integer),
    sa.column("entry_id", sa.Integer),
    sa.column("parameters", sa.Text),
    sa.column("kind", sa.String),
)
_entries = sa.table("entries", sa.column("id", sa.Integer), sa.column("manifest", sa.Text))
_artifacts = sa.table(
    "artifacts",
    sa.column("run_id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("path", sa.Text),
    sa.column("note", sa.Text),
    sa.column("created_at", sa.DateTime),
)


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def upgrade() -> None:
    bind = op.get_bind()
    if "run_claims" not in sa.inspect(bind).get_table_names():
        op.create_table(
            "run_claims",
            sa.Column(
                "run_id",
                sa.Integer,
                sa.ForeignKey("runs.id"),
                primary_key=True,
                autoincrement=False,
            ),
            sa.Column("owner", sa.String(200), nullable=False),
            sa.Column("host", sa.String(255), nullable=False),
            sa.Column("machine", sa.String(200)),
            sa.Column("pid", sa.Integer, nullable=False),
            sa.Column("pid_start", sa.BigInteger),
            sa.Column("claimed_at", sa.DateTime, nullable=False),
            sa.Column("heartbeat_at", sa.DateTime, nullable=False),
        )
    op.add_column("runs", sa.Column("kind", sa.String(20), nullable=False, server_default="entry"))
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("created_at", sa.DateTime),
        sa.UniqueConstraint("run_id", "kind", "path", name="uq_artifacts_run_kind_path"),
    )
    teams = {
        row.id: _json(row.manifest).get("team")
        for row in bind.execute(sa.select(_entries.c.id, _entries.c.manifest))
    }
    now = datetime.now(UTC).replace(tzinfo=None)
    found: list[dict[str, Any]] = []
    for row in bind.execute(sa.select(_runs.c.id, _runs.c.entry_id, _runs.c.parameters)):
        parameters = _json(row.parameters)
        if "simulation" in parameters:
            kind = "study"
        elif teams.get(row.entry_id) == _BASELINE_TEAM:
            kind = "baseline"
        else:
            kind = "entry"
        if kind != "entry":
            bind.execute(_runs.update().where(_runs.c.id == row.id).values(kind=kind))
        for key, artifact in (("pred", "predictions"), ("data_root", "data")):
            if isinstance(parameters.get(key), str) and parameters[key]:
                found.append(
                    {
                        "run_id": row.id,
                        "kind": artifact,
                        "path": parameters[key],
                        "note": "recorded by wave 1 in the run parameters",
                        "created_at": now,
                    }
                )
    if found:
        bind.execute(_artifacts.insert(), found)


def downgrade() -> None:
    op.drop_table("artifacts")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("kind")
    op.drop_table("run_claims")
