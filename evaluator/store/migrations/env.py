"""Alembic's environment for the results store (loaded by Alembic, never imported).

The work is in :func:`evaluator.store.migrate.run_migrations`: it runs the migrations on the
connection that :func:`evaluator.store.migrate.upgrade` hands over, or on the URL of
``sqlalchemy.url`` when a developer runs ``alembic`` by hand.
"""

from alembic import context

from evaluator.store.migrate import run_migrations

run_migrations(context)
