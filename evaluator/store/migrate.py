"""Schema revisions of the results store: bring any store to the newest one (Alembic).

:func:`upgrade` runs whenever a store is opened (:meth:`evaluator.store.Store.open`):

- a new, empty database gets the tables of :mod:`evaluator.store.schema` and is stamped with
  :data:`HEAD`;
- a store of an older revision runs the migrations of ``evaluator/store/migrations/versions``
  up to :data:`HEAD`, in one transaction where the database has transactional DDL (PostgreSQL);
- a store written before the schema had revisions (wave 1: tables but no ``alembic_version``)
  is taken as revision :data:`BASELINE`, then upgraded;
- a store of a revision this ccbench does not know (written by a newer ccbench) is refused with
  :class:`~evaluator.errors.StoreError`, never touched.

A store at :data:`HEAD` costs one ``SELECT`` (Alembic is not even imported). Concurrent openers
are serialised: SQLite by the caller's ``flock`` (:meth:`Store.open`), PostgreSQL by a
transaction-level advisory lock taken here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from evaluator.errors import StoreError

__all__ = ["BASELINE", "HEAD", "MIGRATIONS", "current_revision", "run_migrations", "upgrade"]

#: The newest revision (the last file of ``migrations/versions``; a test checks they agree).
HEAD = "0004"
#: The revision of stores written before revisions existed (wave 1).
BASELINE = "0001"
#: Alembic's script folder.
MIGRATIONS = Path(__file__).with_name("migrations")
#: Key of PostgreSQL's advisory lock held while a store is set up or upgraded.
_PG_LOCK_KEY = 0x6363_6265_6E63  # "ccbenc"


def _config(connection: sa.Connection | None = None, url: str | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url)
    config.attributes["connection"] = connection
    return config


def known_revisions() -> list[str]:
    """Every revision of ``migrations/versions``, oldest first."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_config())
    return [s.revision for s in reversed(list(scripts.walk_revisions()))]


def current_revision(connection: sa.Connection) -> str | None:
    """The store's revision: ``alembic_version``'s, :data:`BASELINE` for a wave-1 store, None
    for an empty database."""
    tables = set(sa.inspect(connection).get_table_names())
    if "alembic_version" in tables:
        row = connection.execute(sa.text("SELECT version_num FROM alembic_version")).first()
        return None if row is None else str(row[0])
    return BASELINE if "runs" in tables else None


def upgrade(engine: sa.Engine, *, url: str) -> None:
    """Bring the store behind ``engine`` to :data:`HEAD` (see the module doc).

    Raises
    ------
    StoreError
        The store's revision is unknown here (a newer ccbench wrote it).
    """
    with engine.connect() as conn:
        if _fast_revision(conn) == HEAD:
            return
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        revision = current_revision(conn)
        if revision == HEAD:
            return  # another opener upgraded it while we waited for the lock
        from alembic import command

        config = _config(conn)
        if revision is None:
            from evaluator.store.schema import metadata

            metadata.create_all(conn)
            command.stamp(config, HEAD)
            return
        if revision not in known_revisions():
            raise StoreError(
                f"results store {url} has schema revision {revision}, which this ccbench does "
                f"not know (newest known: {HEAD}): it was written by a newer ccbench; upgrade "
                "ccbench to read it"
            )
        if "alembic_version" not in sa.inspect(conn).get_table_names():
            command.stamp(config, BASELINE)
        command.upgrade(config, HEAD)


def _fast_revision(conn: sa.Connection) -> str | None:
    """``alembic_version``'s revision with one query; None when there is no such table."""
    try:
        with conn.begin():
            row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
    except sa.exc.DBAPIError:
        return None
    return None if row is None else str(row[0])


def run_migrations(context: Any) -> None:
    """The body of ``migrations/env.py``: run Alembic's migrations on the handed-over
    connection, or on ``sqlalchemy.url`` (``alembic -x url=...`` for developers)."""
    from evaluator.store.schema import metadata

    connection = context.config.attributes.get("connection")
    options = {"target_metadata": metadata, "render_as_batch": True}
    if connection is not None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise StoreError("give the store's URL: alembic -x url=sqlite:///results.sqlite ...")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, **options)
        with context.begin_transaction():
            context.run_migrations()
