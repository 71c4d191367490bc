"""The results store: every per-case number of every run, in one SQL database.

SQLite by default (``results.sqlite`` in the workspace, :attr:`Workspace.store_url`); any
SQLAlchemy URL works (``postgresql+psycopg://user@host/ccbench`` for a shared server). The URL is
chosen by :func:`resolve_store_url`: an explicit ``--store URL``, then ``CCBENCH_STORE``, then the
workspace default.

Tables
------
``entries``
    One row per submitted entry (name, image, image digest, manifest JSON).
``runs``
    One row per evaluation run: task, split, entry, image digest, dataset fingerprint, ccbench
    version, parameters (JSON), started/finished (UTC), status (``running``, ``finished``,
    ``failed``), kind (``entry``, ``study``, ``baseline``: :data:`~evaluator.store.schema.RunKind`).
``cases``
    One row per scored case of a run: the marker that the case is complete (``scored`` or
    ``error``) and the seconds it took. :meth:`Store.completed_cases` reads this table.
``results``
    ``(run, case, label, metric, value)``; NaN is stored as SQL ``NULL`` and read back as NaN.
``components``
    Per-component values of the CC-Metrics: ``(run, case, label, metric, component, value)``,
    ``component`` numbering the reference components from 0.
``case_errors``
    ``(run, case, error class, message)`` for predictions that could not be scored as given.
``aggregates``
    Run-level numbers that are not means of per-case values (HECKTOR aggregated Dice, COCO AP).
``run_logs``
    Free text lines of a run (container stdout/stderr, warnings).
``artifacts``
    The files and folders a stage wrote for a run (predictions, data root, results, summary,
    container logs, a study's figures and tables): ``(run, kind, path, note, time)``. With the
    tables above, the only input of the leaderboards.
``run_claims``
    Which process is scoring a run right now (:meth:`Store.claim_run`): owner token, host, pid
    and the pid's start time, claimed/heartbeat times (UTC). At most one row per run.

The schema has a revision (Alembic): :meth:`Store.open` creates a new store at the newest one
and upgrades an older store first (:mod:`evaluator.store.migrate`); the tables are defined once,
in :mod:`evaluator.store.schema`.

Every write of one case (its results, components, error and ``cases`` marker) happens in ONE
transaction (:meth:`Store.record_case`), so a process killed at any moment leaves either all of a
case or nothing of it; re-running the same command scores only what is missing.

Concurrency
-----------
Many processes may open and write one store at once. A new SQLite file is set up (write-ahead log,
tables) by one opener at a time, under an ``flock`` on the sidecar file ``<database>.lock``: the
switch of a new file to WAL writes its first page, and SQLite answers a second opener caught
half-way through that switch with ``database is locked`` at once, without waiting for the busy
timeout. Two processes starting the same run name get the same run
(:meth:`Store.get_or_create_run`); :meth:`Store.claim_run` makes the second one wait until the
first has finished scoring it, and takes over the claim of a holder that died (``kill -9``).
"""

from evaluator.store.core import (
    ENV_STORE,
    ArtifactInfo,
    CaseError,
    ClaimHolder,
    ComponentRow,
    EntryInfo,
    ResultRow,
    RunBusyError,
    RunClaim,
    RunFilter,
    RunInfo,
    Store,
    resolve_store_url,
    shown_url,
)
from evaluator.store.schema import ARTIFACT_KINDS, RUN_KINDS, ArtifactKind, RunKind

__all__ = [
    "ARTIFACT_KINDS",
    "ENV_STORE",
    "RUN_KINDS",
    "ArtifactInfo",
    "ArtifactKind",
    "CaseError",
    "ClaimHolder",
    "ComponentRow",
    "EntryInfo",
    "ResultRow",
    "RunBusyError",
    "RunClaim",
    "RunFilter",
    "RunInfo",
    "RunKind",
    "Store",
    "resolve_store_url",
    "shown_url",
]
