"""The wave-1 schema: stores written before the schema had a revision.

A store without an ``alembic_version`` table but with a ``runs`` table is this revision
(:func:`evaluator.store.migrate.upgrade` stamps it, then upgrades). The tables are written out
as they were, not imported from :mod:`evaluator.store.schema`, so this file never changes.

Revision ID: 0001
Revises:
Create Date: 2026-11-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _case_key() -> list[sa.Column[object]]:
    return [
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("case_id", sa.String(300), primary_key=True),
    ]


def upgrade() -> None:
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("image", sa.String(500)),
        sa.Column("image_digest", sa.String(200)),
        sa.Column("manifest", sa.Text),
        sa.Column("created_at", sa.DateTime),
    )
    op.create_table(
        "runs",
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
    )
    op.create_table(
        "cases",
        *_case_key(),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("seconds", sa.Float),
        sa.Column("completed_at", sa.DateTime),
    )
    op.create_table(
        "results",
        *_case_key(),
        sa.Column("label", sa.Integer, primary_key=True),
        sa.Column("metric", sa.String(100), primary_key=True),
        sa.Column("value", sa.Float, nullable=True),
    )
    op.create_table(
        "components",
        *_case_key(),
        sa.Column("label", sa.Integer, primary_key=True),
        sa.Column("metric", sa.String(100), primary_key=True),
        sa.Column("component", sa.Integer, primary_key=True),
        sa.Column("value", sa.Float, nullable=True),
    )
    op.create_table(
        "case_errors",
        *_case_key(),
        sa.Column("error_class", sa.String(50), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_table(
        "aggregates",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("label", sa.Integer, primary_key=True),
        sa.Column("metric", sa.String(100), primary_key=True),
        sa.Column("value", sa.Float, nullable=True),
    )
    op.create_table(
        "run_logs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("case_id", sa.String(300)),
        sa.Column("stream", sa.String(20), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime),
    )


def downgrade() -> None:
    for table in (
        "run_logs",
        "aggregates",
        "case_errors",
        "components",
        "results",
        "cases",
        "runs",
        "entries",
    ):
        op.drop_table(table)
