"""The :class:`Store` and its run claims (the package doc has the tables and concurrency)."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict, Unpack

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from evaluator.errors import StoreError
from evaluator.processes import local_process_alive, machine_id, start_ticks
from evaluator.store.migrate import HEAD, current_revision, upgrade
from evaluator.store.schema import (
    ARTIFACT_KINDS,
    PER_RUN_TABLES,
    RUN_KINDS,
    ArtifactKind,
    RunKind,
    aggregates_table,
    artifacts_table,
    case_errors_table,
    cases_table,
    components_table,
    entries_table,
    prompts_table,
    results_table,
    run_claims_table,
    run_logs_table,
    runs_table,
)
from evaluator.workspace import Workspace

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ENV_STORE",
    "ArtifactInfo",
    "CaseError",
    "ClaimHolder",
    "ComponentRow",
    "EntryInfo",
    "ResultRow",
    "RunBusyError",
    "RunClaim",
    "RunFilter",
    "RunInfo",
    "Store",
    "resolve_store_url",
    "shown_url",
]

#: Environment variable holding a SQLAlchemy URL of the results store.
ENV_STORE = "CCBENCH_STORE"

#: How long a SQLite statement waits for another connection's lock before giving up.
_BUSY_TIMEOUT_S = 30.0
#: How long an opener waits for another one setting up the same SQLite file.
_SETUP_LOCK_TIMEOUT_S = 120.0


class RunBusyError(StoreError):
    """Another live process is scoring the run (:meth:`Store.claim_run` with ``wait=False``).

    The message names the run and the holder's host and pid.
    """


class RunFilter(TypedDict, total=False):
    """Filters of the ``*_frame`` readers; each one given must match."""

    task: str | None
    split: str | None
    run_ids: Sequence[int] | None
    entry: str | None
    case_ids: Sequence[str] | None


class ResultRow(NamedTuple):
    """One number of one case: ``value`` of ``metric`` for ``label`` (NaN allowed)."""

    label: int
    metric: str
    value: float


class ComponentRow(NamedTuple):
    """One per-component value of a CC metric; ``component`` numbers reference components.

    Rows whose ``metric`` starts with ``component:`` describe the component itself (voxels,
    volume, centre, detected: :meth:`evaluator.metrics.api.ComponentInfo.fields`).
    """

    label: int
    metric: str
    component: int
    value: float


@dataclass(frozen=True)
class CaseError:
    """Why a case's prediction could not be scored as given.

    ``error_class`` is one of the short names of :data:`evaluator.evaluate.ERROR_CLASSES`
    (``missing``, ``undecodable``, ``geometry``, ``nan``, ``label``, ``empty``) or any other short
    name a caller chooses (e.g. ``container``).
    """

    error_class: str
    message: str


@dataclass(frozen=True)
class EntryInfo:
    """One row of the ``entries`` table: an entry and its provenance.

    ``manifest`` is what ``ccbench submit`` recorded (team, interface, resources, submitted
    time ...), empty for entries known only by name (``ccbench evaluate --entry``).
    """

    name: str
    image: str | None
    image_digest: str | None
    manifest: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(frozen=True)
class RunInfo:
    """One row of the ``runs`` table."""

    id: int
    name: str
    task: str
    split: str
    entry: str | None
    image_digest: str | None
    dataset_fingerprint: str | None
    ccbench_version: str | None
    parameters: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    status: str = "running"
    kind: RunKind = "entry"


@dataclass(frozen=True)
class ArtifactInfo:
    """One row of the ``artifacts`` table: a file or folder a stage wrote for a run.

    ``kind`` is one of :data:`~evaluator.store.schema.ARTIFACT_KINDS`; ``path`` is absolute, as
    recorded (it may have been moved or deleted since).
    """

    run_id: int
    run: str
    kind: ArtifactKind
    path: str
    note: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class ClaimHolder:
    """The process holding the claim of a run (one row of ``run_claims``).

    ``host`` is the holder's host name and ``pid`` its process id there; ``pid_start`` the
    process's start time in clock ticks after boot (``/proc/<pid>/stat`` field 22; None where
    there is no ``/proc``), which tells the holder from a later process given the same pid.
    ``machine`` (boot id and pid namespace) tells apart hosts, such as containers, that share a
    name. Times are UTC.
    """

    run_id: int
    owner: str
    host: str
    machine: str | None
    pid: int
    pid_start: int | None
    claimed_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True)
class _Process:
    """Who this process is, as written into ``run_claims``."""

    owner: str
    host: str
    machine: str | None
    pid: int
    pid_start: int | None

    def values(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "host": self.host,
            "machine": self.machine,
            "pid": self.pid,
            "pid_start": self.pid_start,
        }

    def is_local(self, holder: ClaimHolder) -> bool:
        """Whether ``holder`` runs on this machine, where its pid can be looked at."""
        return holder.host == self.host and holder.machine == self.machine


def _this_process() -> _Process:
    return _process_identity(os.getpid())


@functools.lru_cache(maxsize=4)
def _process_identity(pid: int) -> _Process:
    """This process (cached per pid, so a forked child gets its own owner token)."""
    host = socket.gethostname()
    return _Process(
        owner=f"{host}:{pid}:{uuid.uuid4().hex[:12]}",
        host=host,
        machine=machine_id(),
        pid=pid,
        pid_start=start_ticks(pid),
    )


class RunClaim:
    """This process's claim to score one run, from :meth:`Store.claim_run`.

    Use as a context manager (leaving the block releases the claim) or call :meth:`release`.
    :meth:`Store.record_case` refreshes the heartbeat of the run's claim held by this process;
    call :meth:`heartbeat` during long stretches without cases, so that processes on other
    hosts do not take the claim over as stale.
    """

    def __init__(self, store: Store, run_id: int, owner: str) -> None:
        self.store = store
        self.run_id = run_id
        self.owner = owner
        self.released = False

    def _mine(self) -> sa.ColumnElement[bool]:
        return sa.and_(
            run_claims_table.c.run_id == self.run_id, run_claims_table.c.owner == self.owner
        )

    def heartbeat(self) -> None:
        """Record that the holder is alive.

        Raises
        ------
        RunBusyError
            The claim was released, or taken over by another process as stale.
        """
        with self.store._begin() as conn:
            updated = conn.execute(
                run_claims_table.update().where(self._mine()).values(heartbeat_at=_now())
            ).rowcount
        if updated != 1:
            holder = self.store.claim_holder(self.run_id)
            now = "nobody" if holder is None else f"process {holder.pid} on {holder.host}"
            raise RunBusyError(
                f"run {self.run_id}: this process no longer holds its claim (now held by {now})"
            )

    def release(self) -> None:
        """Give the claim up (a no-op when it is released or no longer ours)."""
        if self.released:
            return
        with self.store._begin() as conn:
            conn.execute(run_claims_table.delete().where(self._mine()))
        self.released = True

    def __enter__(self) -> RunClaim:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc is None:
            self.release()
            return
        # do not hide the error that ends the block; a claim left behind is taken over once
        # this process has exited
        with contextlib.suppress(StoreError):
            self.release()

    def __repr__(self) -> str:
        state = "released" if self.released else "held"
        return f"RunClaim(run_id={self.run_id}, owner={self.owner!r}, {state})"


def resolve_store_url(url: str | None = None, *, workspace: Workspace | None = None) -> str:
    """The store URL: ``url``, then ``CCBENCH_STORE``, then the workspace's SQLite file.

    Examples
    --------
    >>> from pathlib import Path
    >>> resolve_store_url("sqlite://")
    'sqlite://'
    >>> resolve_store_url(workspace=Workspace(Path("/tmp/ws"))) in (
    ...     "sqlite:////tmp/ws/results.sqlite", os.environ.get(ENV_STORE))
    True
    """
    if url:
        return url
    env = os.environ.get(ENV_STORE)
    if env:
        return env
    if workspace is None:
        raise StoreError(f"no store given: pass a URL, set {ENV_STORE} or give a workspace")
    return workspace.store_url


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _to_sql(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _params_json(parameters: Mapping[str, Any]) -> str:
    return json.dumps(dict(parameters), sort_keys=True, default=str)


class Store:
    """A connection to the results database.

    Open with :meth:`open`; tables are created when missing. All methods raise
    :class:`~evaluator.errors.StoreError` on database failures.

    Examples
    --------
    >>> store = Store.open("sqlite://")
    >>> run = store.get_or_create_run(name="r1", task="btcv", split="test", parameters={})
    >>> store.record_case(run.id, "0001", [ResultRow(1, "dice", 0.5)])
    >>> sorted(store.completed_cases(run.id))
    ['0001']
    >>> store.results_frame(run_ids=[run.id])[["case_id", "label", "metric", "value"]].values.tolist()
    [['0001', 1, 'dice', 0.5]]
    """

    def __init__(self, engine: sa.Engine, url: str) -> None:
        self.engine = engine
        self.url = url

    @property
    def shown_url(self) -> str:
        """The URL as messages show it: any password replaced by ``***``."""
        return shown_url(self.url)

    @classmethod
    def open(
        cls, url: str | None = None, *, workspace: Workspace | None = None, create: bool = True
    ) -> Store:
        """Open (and create if needed) the store at ``url`` (see :func:`resolve_store_url`).

        A new database gets the tables; a store written by an older ccbench is upgraded to
        the newest schema revision first (:mod:`evaluator.store.migrate`), one written by a
        newer ccbench is refused.
        Any number of processes may open the same new SQLite file at the same moment: they set
        it up one after the other, under an ``flock`` on ``<database>.lock``.

        ``create=False`` (the read-only commands: ``leaderboard``, ``logs``) refuses a SQLite
        file that does not exist instead of creating it and its folders. A SQLite file this
        process may not write (the file or its folder) is opened read-only, as it is (it must
        be at the newest schema revision, and nobody should write it meanwhile).
        """
        resolved = resolve_store_url(url, workspace=workspace)
        try:
            options: dict[str, Any] = {}
            parsed = sa.make_url(resolved)
            if parsed.get_backend_name() == "sqlite" and "timeout" not in parsed.query:
                options["connect_args"] = {"timeout": _BUSY_TIMEOUT_S}
            if parsed.get_backend_name() == "postgresql":
                # the server's rules (limits, job claims) rest on row locks and conditional
                # UPDATEs re-checked under READ COMMITTED: pinned, whatever the server's default
                options["isolation_level"] = "READ COMMITTED"
            database = parsed.database if parsed.get_backend_name() == "sqlite" else None
            # a SQLite file on disk (not ":memory:", not a "file:" URI): its absolute path
            on_disk = (
                os.path.abspath(database)
                if database and database != ":memory:" and not database.startswith("file:")
                else None
            )
            if on_disk is not None:
                if not create and not os.path.exists(on_disk):
                    raise StoreError(
                        f"no results store at {on_disk}: nothing has been scored into it yet "
                        "(check --store / CCBENCH_STORE / --workspace)"
                    )
                if os.path.exists(on_disk) and not _writable(on_disk):
                    return cls._open_read_only(on_disk, resolved, options)
            engine = sa.create_engine(resolved, **options)
            setup_lock: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
            if on_disk is not None:
                os.makedirs(os.path.dirname(on_disk), exist_ok=True)
                setup_lock = _setup_lock(on_disk)
            if engine.dialect.name == "sqlite":
                sa.event.listen(engine, "connect", _sqlite_pragmas)
            with setup_lock:
                _set_up(engine, shown_url(resolved))
        except (SQLAlchemyError, OSError, ValueError, ImportError) as err:
            # ValueError: a malformed URL (a port that is not a number); ImportError: a database
            # whose driver is not installed (mysql:// without MySQLdb)
            raise StoreError(f"cannot open results store {shown_url(resolved)}: {err}") from err
        return cls(engine, resolved)

    @classmethod
    def _open_read_only(cls, database: str, url: str, options: dict[str, Any]) -> Store:
        """A SQLite store this process cannot write, opened immutable (no lock, no WAL files)."""
        from urllib.parse import quote

        engine = sa.create_engine(
            f"sqlite:///file:{quote(database)}?mode=ro&immutable=1&uri=true", **options
        )
        revision = None
        with contextlib.suppress(SQLAlchemyError), engine.connect() as conn:
            revision = current_revision(conn)
        if revision != HEAD:
            engine.dispose()
            raise StoreError(
                f"results store {database} is read-only here (no write permission on the file "
                f"or its folder) and at schema revision {revision or 'unknown'}, not {HEAD}: "
                "open it once with write access to upgrade it"
            )
        return cls(engine, url)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- entries --------------------------------------------------------------------------

    def ensure_entry(
        self,
        name: str,
        *,
        image: str | None = None,
        image_digest: str | None = None,
        manifest: Mapping[str, Any] | None = None,
    ) -> int:
        """Return the id of entry ``name``, creating it (or updating its image) as needed."""
        values = {
            "image": image,
            "image_digest": image_digest,
            "manifest": None if manifest is None else json.dumps(dict(manifest), default=str),
        }
        try:
            try:
                return self._upsert_entry(name, values)
            except sa.exc.IntegrityError:
                # another process added the same name between the select and the insert
                return self._upsert_entry(name, values)
        except SQLAlchemyError as err:
            raise StoreError(f"results store {self.shown_url}: {err}") from err

    def entry(self, name: str) -> EntryInfo | None:
        """Entry ``name`` with its provenance, or None.

        Examples
        --------
        >>> store = Store.open("sqlite://")
        >>> _ = store.ensure_entry("thr", image="ccbench/thr:1", manifest={"team": "A"})
        >>> info = store.entry("thr")
        >>> info.image, info.manifest["team"]
        ('ccbench/thr:1', 'A')
        """
        with self._connect() as conn:
            row = conn.execute(sa.select(entries_table).where(entries_table.c.name == name)).first()
        if row is None:
            return None
        try:
            manifest = json.loads(row.manifest) if row.manifest else {}
        except ValueError:
            manifest = {}
        return EntryInfo(
            name=row.name,
            image=row.image,
            image_digest=row.image_digest,
            manifest=manifest if isinstance(manifest, dict) else {},
            created_at=row.created_at,
        )

    def _upsert_entry(self, name: str, values: Mapping[str, Any]) -> int:
        """Select entry ``name`` and update it, or insert it; database errors unwrapped."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(entries_table.c.id).where(entries_table.c.name == name)
            ).first()
            if row is None:
                result = conn.execute(
                    entries_table.insert().values(name=name, created_at=_now(), **values)
                )
                return int(result.inserted_primary_key[0])  # type: ignore[index]
            updates = {k: v for k, v in values.items() if v is not None}
            if updates:
                conn.execute(
                    entries_table.update().where(entries_table.c.id == row.id).values(**updates)
                )
            return int(row.id)

    # ---- runs -----------------------------------------------------------------------------

    def get_or_create_run(
        self,
        *,
        name: str,
        task: str,
        split: str,
        parameters: Mapping[str, Any],
        entry: str | None = None,
        image_digest: str | None = None,
        dataset_fingerprint: str | None = None,
        ccbench_version: str | None = None,
        kind: RunKind = "entry",
    ) -> RunInfo:
        """Return run ``name``, creating it when new.

        An existing run is returned as it is (to be resumed) when its task, split, entry, kind
        and parameters equal the ones given; otherwise :class:`StoreError` says what differs (use
        another run name, or :meth:`reset_run`). Race-free: when another process creates the
        same name between the look-up and the insert, its run is returned (or refused) the
        same way. To score a run that others may be scoring, hold :meth:`claim_run`.
        """
        existing = self.find_run(name)
        if existing is None:
            try:
                return self.create_run(
                    name=name,
                    task=task,
                    split=split,
                    parameters=parameters,
                    entry=entry,
                    image_digest=image_digest,
                    dataset_fingerprint=dataset_fingerprint,
                    ccbench_version=ccbench_version,
                    kind=kind,
                )
            except StoreError:
                existing = self.find_run(name)  # created by another process just now
                if existing is None:  # not the unique name: something else is wrong
                    raise
        wanted = {
            "task": task,
            "split": split,
            "entry": entry,
            "kind": kind,
            "parameters": json.loads(_params_json(parameters)),
        }
        got = {
            "task": existing.task,
            "split": existing.split,
            "entry": existing.entry,
            "kind": existing.kind,
            "parameters": existing.parameters,
        }
        diff = [k for k in wanted if wanted[k] != got[k]]
        if diff:
            detail = "; ".join(_difference(k, got[k], wanted[k]) for k in diff)
            raise StoreError(
                f"run '{name}' already exists in {self.shown_url} with other settings ({detail}); "
                "choose another --run-name or pass --force"
            )
        return existing

    def create_run(
        self,
        *,
        name: str,
        task: str,
        split: str,
        parameters: Mapping[str, Any],
        entry: str | None = None,
        image_digest: str | None = None,
        dataset_fingerprint: str | None = None,
        ccbench_version: str | None = None,
        kind: RunKind = "entry",
    ) -> RunInfo:
        """Insert a new run with status ``running``; the name must be new.

        ``kind`` is one of :data:`~evaluator.store.schema.RUN_KINDS`.
        """
        if kind not in RUN_KINDS:
            raise StoreError(f"unknown run kind {kind!r} (one of {', '.join(RUN_KINDS)})")
        try:
            entry_id = (
                None if entry is None else self.ensure_entry(entry, image_digest=image_digest)
            )
            with self.engine.begin() as conn:
                result = conn.execute(
                    runs_table.insert().values(
                        name=name,
                        task=task,
                        split=split,
                        entry_id=entry_id,
                        image_digest=image_digest,
                        dataset_fingerprint=dataset_fingerprint,
                        ccbench_version=(
                            _ccbench_version() if ccbench_version is None else ccbench_version
                        ),
                        parameters=_params_json(parameters),
                        started_at=_now(),
                        status="running",
                        kind=kind,
                    )
                )
                run_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        except sa.exc.IntegrityError as err:
            raise StoreError(f"run '{name}' already exists in {self.shown_url}") from err
        except SQLAlchemyError as err:
            raise StoreError(f"cannot create run '{name}' in {self.shown_url}: {err}") from err
        return self.get_run(run_id)

    def _run_select(self) -> sa.Select[Any]:
        return sa.select(runs_table, entries_table.c.name.label("entry_name")).select_from(
            runs_table.outerjoin(entries_table, runs_table.c.entry_id == entries_table.c.id)
        )

    @staticmethod
    def _run_info(row: Any) -> RunInfo:
        return RunInfo(
            id=int(row.id),
            name=row.name,
            task=row.task,
            split=row.split,
            entry=row.entry_name,
            image_digest=row.image_digest,
            dataset_fingerprint=row.dataset_fingerprint,
            ccbench_version=row.ccbench_version,
            parameters=json.loads(row.parameters),
            started_at=row.started_at,
            finished_at=row.finished_at,
            status=row.status,
            kind=row.kind,
        )

    def get_run(self, run_id: int) -> RunInfo:
        """The run with id ``run_id``; :class:`StoreError` if there is none."""
        with self._connect() as conn:
            row = conn.execute(self._run_select().where(runs_table.c.id == run_id)).first()
        if row is None:
            raise StoreError(f"no run with id {run_id} in {self.shown_url}")
        return self._run_info(row)

    def find_run(self, name: str) -> RunInfo | None:
        """The run called ``name``, or None."""
        with self._connect() as conn:
            row = conn.execute(self._run_select().where(runs_table.c.name == name)).first()
        return None if row is None else self._run_info(row)

    def list_runs(
        self,
        *,
        task: str | None = None,
        split: str | None = None,
        entry: str | None = None,
        status: str | None = None,
        kind: RunKind | Sequence[RunKind] | None = None,
    ) -> list[RunInfo]:
        """Runs matching every filter given, oldest first; ``kind`` one kind or several."""
        query = self._run_select().order_by(runs_table.c.id)
        if kind is not None:
            kinds = [kind] if isinstance(kind, str) else list(kind)
            query = query.where(runs_table.c.kind.in_(kinds))
        if task is not None:
            query = query.where(runs_table.c.task == task)
        if split is not None:
            query = query.where(runs_table.c.split == split)
        if entry is not None:
            query = query.where(entries_table.c.name == entry)
        if status is not None:
            query = query.where(runs_table.c.status == status)
        with self._connect() as conn:
            return [self._run_info(row) for row in conn.execute(query)]

    def reset_run(self, run_id: int) -> None:
        """Delete every case, result, error, aggregate and log of a run; status ``running``."""
        with self._begin() as conn:
            for table in PER_RUN_TABLES:
                conn.execute(table.delete().where(table.c.run_id == run_id))
            conn.execute(
                runs_table.update()
                .where(runs_table.c.id == run_id)
                .values(status="running", started_at=_now(), finished_at=None)
            )

    def update_run(
        self,
        run_id: int,
        *,
        image_digest: str | None = None,
        dataset_fingerprint: str | None = None,
        ccbench_version: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        """Fill in provenance fields of a run (those given); ``parameters`` replaces the run's
        settings (a run scored again from scratch with other ones, ``evaluate --force``)."""
        values = {
            k: v
            for k, v in {
                "image_digest": image_digest,
                "dataset_fingerprint": dataset_fingerprint,
                "ccbench_version": ccbench_version,
                "parameters": None if parameters is None else _params_json(parameters),
            }.items()
            if v is not None
        }
        if values:
            with self._begin() as conn:
                conn.execute(runs_table.update().where(runs_table.c.id == run_id).values(**values))

    def set_status(self, run_id: int, status: str) -> None:
        """Set a run's status (``running``, ``finished``, ``failed``) without touching its rows."""
        with self._begin() as conn:
            conn.execute(runs_table.update().where(runs_table.c.id == run_id).values(status=status))

    def finish_run(
        self,
        run_id: int,
        *,
        status: str = "finished",
        aggregates: Iterable[ResultRow] = (),
    ) -> None:
        """Mark a run finished (or ``failed``) and replace its run-level aggregate numbers."""
        with self._begin() as conn:
            conn.execute(aggregates_table.delete().where(aggregates_table.c.run_id == run_id))
            rows = [
                {
                    "run_id": run_id,
                    "label": int(r.label),
                    "metric": r.metric,
                    "value": _to_sql(r.value),
                }
                for r in aggregates
            ]
            if rows:
                conn.execute(aggregates_table.insert(), rows)
            conn.execute(
                runs_table.update()
                .where(runs_table.c.id == run_id)
                .values(status=status, finished_at=_now())
            )

    # ---- artifacts ------------------------------------------------------------------------

    def add_artifact(
        self,
        run_id: int,
        kind: ArtifactKind,
        path: str | os.PathLike[str],
        *,
        note: str | None = None,
    ) -> None:
        """Record that a stage wrote ``path`` (made absolute) for run ``run_id``.

        Recording the same (run, kind, path) again updates its note and time.

        Examples
        --------
        >>> store = Store.open("sqlite://")
        >>> run = store.get_or_create_run(name="r1", task="btcv", split="test", parameters={})
        >>> store.add_artifact(run.id, "predictions", "/data/pred")
        >>> [(a.kind, a.path) for a in store.artifacts(run_ids=[run.id])]
        [('predictions', '/data/pred')]
        """
        if kind not in ARTIFACT_KINDS:
            raise StoreError(f"unknown artifact kind {kind!r} (one of {', '.join(ARTIFACT_KINDS)})")
        where = sa.and_(
            artifacts_table.c.run_id == run_id,
            artifacts_table.c.kind == kind,
            artifacts_table.c.path == os.fspath(os.path.abspath(path)),
        )
        values = {"note": note, "created_at": _now()}
        with self._begin() as conn:
            if conn.execute(artifacts_table.update().where(where).values(**values)).rowcount:
                return
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    artifacts_table.insert().values(
                        run_id=run_id, kind=kind, path=os.path.abspath(path), **values
                    )
                )
        except sa.exc.IntegrityError:
            pass  # recorded by another process just now
        except SQLAlchemyError as err:
            raise StoreError(f"results store {self.shown_url}: {err}") from err

    def artifacts(
        self,
        *,
        run_ids: Sequence[int] | None = None,
        kind: ArtifactKind | None = None,
        task: str | None = None,
        split: str | None = None,
        run_kind: RunKind | None = None,
    ) -> list[ArtifactInfo]:
        """Recorded artifacts matching every filter given, in the order they were recorded."""
        query = (
            sa.select(artifacts_table, runs_table.c.name.label("run_name"))
            .select_from(
                artifacts_table.join(runs_table, artifacts_table.c.run_id == runs_table.c.id)
            )
            .order_by(artifacts_table.c.id)
        )
        if run_ids is not None:
            query = query.where(artifacts_table.c.run_id.in_(list(run_ids)))
        if kind is not None:
            query = query.where(artifacts_table.c.kind == kind)
        if task is not None:
            query = query.where(runs_table.c.task == task)
        if split is not None:
            query = query.where(runs_table.c.split == split)
        if run_kind is not None:
            query = query.where(runs_table.c.kind == run_kind)
        with self._connect() as conn:
            return [
                ArtifactInfo(
                    run_id=int(row.run_id),
                    run=row.run_name,
                    kind=row.kind,
                    path=row.path,
                    note=row.note,
                    created_at=row.created_at,
                )
                for row in conn.execute(query)
            ]

    def schema_revision(self) -> str | None:
        """The store's schema revision (:data:`evaluator.store.migrate.HEAD` once opened)."""
        with self._connect() as conn:
            return current_revision(conn)

    # ---- claims ---------------------------------------------------------------------------

    def claim_run(
        self,
        run_id: int,
        *,
        wait: bool = True,
        poll_s: float = 0.5,
        on_wait: Callable[[str], None] | None = None,
        stale_after_s: float = 600.0,
    ) -> RunClaim:
        """Claim run ``run_id`` for this process, so that no other process scores it meanwhile.

        The claim is one row of ``run_claims``, inserted atomically (the run id is its primary
        key). When another process holds it, the holder is checked: on this machine (same host
        name, boot and pid namespace) it is alive while its pid runs with the recorded start
        time; on another host, while its heartbeat is younger than ``stale_after_s``. The claim of
        a dead holder (killed, crashed, pid reused) is taken over at once, atomically (delete
        that holder's row, insert ours, in one transaction).

        Parameters
        ----------
        run_id
            The run (it must exist).
        wait
            While a live holder has the claim: poll until it is free (True), or raise
            :class:`RunBusyError` (False).
        poll_s
            Seconds between polls while waiting.
        on_wait
            Called once, with a message naming the run and the holder's host and pid, when the
            claim must be waited for.
        stale_after_s
            A holder on another host with no heartbeat for this many seconds counts as dead.

        Returns
        -------
        RunClaim
            Held until released: leave its ``with`` block or call :meth:`RunClaim.release`.

        Raises
        ------
        RunBusyError
            ``wait=False`` and a live process holds the claim.
        StoreError
            No such run; this process holds the claim already; database failures.

        Examples
        --------
        >>> store = Store.open("sqlite://")
        >>> run = store.get_or_create_run(name="r1", task="btcv", split="test", parameters={})
        >>> with store.claim_run(run.id, on_wait=print) as claim:
        ...     store.record_case(run.id, "0001", [ResultRow(1, "dice", 0.5)])
        ...     store.claim_holder(run.id).pid == os.getpid()
        True
        >>> store.claim_holder(run.id) is None
        True
        """
        me = _this_process()
        told = False
        while True:
            if self._insert_claim(run_id, me):
                return RunClaim(self, run_id, me.owner)
            holder = self.claim_holder(run_id)
            if holder is None:  # released meanwhile, or there is no such run
                self.get_run(run_id)
                continue
            if holder.owner == me.owner:
                raise StoreError(
                    f"run {run_id} is already claimed by this process (pid {me.pid}); "
                    "release that claim first"
                )
            if not self._holder_alive(holder, me, stale_after_s):
                if self._take_over_claim(run_id, holder.owner, me):
                    return RunClaim(self, run_id, me.owner)
                continue  # another process took it over or it was released: look again
            message = self._busy_message(holder, me, wait=wait, stale_after_s=stale_after_s)
            if not wait:
                raise RunBusyError(message)
            if on_wait is not None and not told:
                on_wait(message)
            told = True
            time.sleep(poll_s)

    def claim_holder(self, run_id: int) -> ClaimHolder | None:
        """The process holding the claim of run ``run_id``, or None."""
        with self._connect() as conn:
            row = conn.execute(
                sa.select(run_claims_table).where(run_claims_table.c.run_id == run_id)
            ).first()
        if row is None:
            return None
        return ClaimHolder(
            run_id=int(row.run_id),
            owner=row.owner,
            host=row.host,
            machine=row.machine,
            pid=int(row.pid),
            pid_start=None if row.pid_start is None else int(row.pid_start),
            claimed_at=row.claimed_at,
            heartbeat_at=row.heartbeat_at,
        )

    def _insert_claim(self, run_id: int, me: _Process) -> bool:
        """Insert this process's claim row; False when the run already has one."""
        now = _now()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    run_claims_table.insert().values(
                        run_id=run_id, claimed_at=now, heartbeat_at=now, **me.values()
                    )
                )
        except sa.exc.IntegrityError:
            return False
        except SQLAlchemyError as err:
            raise StoreError(f"cannot claim run {run_id} in {self.shown_url}: {err}") from err
        return True

    def _take_over_claim(self, run_id: int, stale_owner: str, me: _Process) -> bool:
        """Replace the claim of ``stale_owner`` by ours in one transaction; False if it is gone."""
        now = _now()
        try:
            with self.engine.begin() as conn:
                gone = conn.execute(
                    run_claims_table.delete().where(
                        run_claims_table.c.run_id == run_id,
                        run_claims_table.c.owner == stale_owner,
                    )
                ).rowcount
                if gone != 1:
                    return False
                conn.execute(
                    run_claims_table.insert().values(
                        run_id=run_id, claimed_at=now, heartbeat_at=now, **me.values()
                    )
                )
        except sa.exc.IntegrityError:
            return False
        except SQLAlchemyError as err:
            raise StoreError(f"cannot claim run {run_id} in {self.shown_url}: {err}") from err
        return True

    @staticmethod
    def _holder_alive(holder: ClaimHolder, me: _Process, stale_after_s: float) -> bool:
        if me.is_local(holder):
            return local_process_alive(holder.pid, holder.pid_start)
        return (_now() - holder.heartbeat_at).total_seconds() < stale_after_s

    def _busy_message(
        self, holder: ClaimHolder, me: _Process, *, wait: bool, stale_after_s: float
    ) -> str:
        try:
            run = f"run '{self.get_run(holder.run_id).name}' (id {holder.run_id})"
        except StoreError:
            run = f"run {holder.run_id}"
        age = max(0.0, (_now() - holder.heartbeat_at).total_seconds())
        message = (
            f"{run} is being scored by process {holder.pid} on host {holder.host} "
            f"(claimed {holder.claimed_at:%Y-%m-%d %H:%M:%S} UTC, last heartbeat {age:.0f} s "
            "ago)"
        )
        if not me.is_local(holder):
            message += f"; it counts as dead after {stale_after_s:.0f} s without a heartbeat"
        if wait:
            return message + "; waiting for it to finish"
        return message + "; wait for it to finish, or stop that process"

    # ---- cases ----------------------------------------------------------------------------

    def record_case(
        self,
        run_id: int,
        case_id: str,
        rows: Iterable[ResultRow],
        *,
        error: CaseError | None = None,
        components: Iterable[ComponentRow] = (),
        seconds: float | None = None,
    ) -> None:
        """Write everything about one case in ONE transaction, replacing earlier rows of it.

        Parameters
        ----------
        run_id
            The run.
        case_id
            The case.
        rows
            Per-label metric values (NaN allowed: stored as NULL).
        error
            Set when the prediction could not be scored as given; the case still counts as
            complete (its rows are the worst-case values).
        components
            Per-component CC values.
        seconds
            Wall time spent on the case.
        """
        result_rows = [
            {
                "run_id": run_id,
                "case_id": case_id,
                "label": int(r.label),
                "metric": r.metric,
                "value": _to_sql(r.value),
            }
            for r in rows
        ]
        component_rows = [
            {
                "run_id": run_id,
                "case_id": case_id,
                "label": int(c.label),
                "metric": c.metric,
                "component": int(c.component),
                "value": _to_sql(c.value),
            }
            for c in components
        ]
        me = _this_process()
        with self._begin() as conn:
            # a claim of this run held by this process: its heartbeat (no row: no-op)
            conn.execute(
                run_claims_table.update()
                .where(run_claims_table.c.run_id == run_id, run_claims_table.c.owner == me.owner)
                .values(heartbeat_at=_now())
            )
            for table in (results_table, components_table, case_errors_table, cases_table):
                conn.execute(
                    table.delete().where(table.c.run_id == run_id, table.c.case_id == case_id)
                )
            if result_rows:
                conn.execute(results_table.insert(), result_rows)
            if component_rows:
                conn.execute(components_table.insert(), component_rows)
            if error is not None:
                conn.execute(
                    case_errors_table.insert().values(
                        run_id=run_id,
                        case_id=case_id,
                        error_class=error.error_class,
                        message=error.message,
                    )
                )
            conn.execute(
                cases_table.insert().values(
                    run_id=run_id,
                    case_id=case_id,
                    status="scored" if error is None else "error",
                    seconds=seconds,
                    completed_at=_now(),
                )
            )

    def completed_cases(self, run_id: int) -> set[str]:
        """Ids of the cases of a run whose rows are all written."""
        with self._connect() as conn:
            return {
                row.case_id
                for row in conn.execute(
                    sa.select(cases_table.c.case_id).where(cases_table.c.run_id == run_id)
                )
            }

    def log(
        self, run_id: int, message: str, *, case_id: str | None = None, stream: str = "log"
    ) -> None:
        """Append one log line (container stdout/stderr, warnings) to a run."""
        with self._begin() as conn:
            conn.execute(
                run_logs_table.insert().values(
                    run_id=run_id,
                    case_id=case_id,
                    stream=stream,
                    message=message,
                    created_at=_now(),
                )
            )

    # ---- reading --------------------------------------------------------------------------

    def _frame(
        self,
        table: sa.Table,
        columns: Sequence[str],
        order: Sequence[str],
        filters: RunFilter,
    ) -> pd.DataFrame:
        import pandas as pd

        query = (
            sa.select(
                table.c.run_id,
                runs_table.c.name.label("run"),
                runs_table.c.task,
                runs_table.c.split,
                entries_table.c.name.label("entry"),
                *[table.c[c] for c in columns],
            )
            .select_from(
                table.join(runs_table, table.c.run_id == runs_table.c.id).outerjoin(
                    entries_table, runs_table.c.entry_id == entries_table.c.id
                )
            )
            .order_by(table.c.run_id, *[table.c[c] for c in order])
        )
        if filters.get("task") is not None:
            query = query.where(runs_table.c.task == filters["task"])
        if filters.get("split") is not None:
            query = query.where(runs_table.c.split == filters["split"])
        run_ids = filters.get("run_ids")
        if run_ids is not None:
            query = query.where(table.c.run_id.in_(list(run_ids)))
        if filters.get("entry") is not None:
            query = query.where(entries_table.c.name == filters["entry"])
        case_ids = filters.get("case_ids")
        if case_ids is not None and "case_id" in table.c:
            query = query.where(table.c.case_id.in_(list(case_ids)))
        with self._connect() as conn:
            records = [dict(row._mapping) for row in conn.execute(query)]
        frame = pd.DataFrame.from_records(
            records, columns=["run_id", "run", "task", "split", "entry", *columns]
        )
        if "value" in frame:
            frame["value"] = frame["value"].astype(float)
        return frame

    def results_frame(self, **filters: Unpack[RunFilter]) -> pd.DataFrame:
        """Per-case results, long format, for the runs matching every filter given.

        Parameters
        ----------
        **filters
            ``task``, ``split``, ``entry`` (names), ``run_ids`` (a sequence of run ids) and
            ``case_ids`` (per-case tables only).

        Returns
        -------
        pandas.DataFrame
            Columns ``run_id, run, task, split, entry, case_id, label, metric, value``; one row
            per (run, case, label, metric), sorted by run, case, label, metric; NaN where a
            metric is undefined for the case (e.g. Dice of an AutoPET negative case).
        """
        columns = ["case_id", "label", "metric", "value"]
        return self._frame(results_table, columns, columns[:3], filters)

    def components_frame(self, **filters: Unpack[RunFilter]) -> pd.DataFrame:
        """Per-component CC values: ``... case_id, label, metric, component, value``."""
        columns = ["case_id", "label", "metric", "component", "value"]
        return self._frame(components_table, columns, columns[:4], filters)

    def errors_frame(self, **filters: Unpack[RunFilter]) -> pd.DataFrame:
        """Per-case errors: ``... case_id, error_class, message``."""
        columns = ["case_id", "error_class", "message"]
        return self._frame(case_errors_table, columns, columns[:1], filters)

    def cases_frame(self, **filters: Unpack[RunFilter]) -> pd.DataFrame:
        """Completed cases: ``... case_id, status, seconds``."""
        columns = ["case_id", "status", "seconds"]
        return self._frame(cases_table, columns, columns[:1], filters)

    def aggregates_frame(self, **filters: Unpack[RunFilter]) -> pd.DataFrame:
        """Run-level aggregates: ``... label, metric, value`` (label 0: over all labels)."""
        columns = ["label", "metric", "value"]
        return self._frame(aggregates_table, columns, columns[:2], filters)

    def logs(self, run_id: int) -> list[tuple[str | None, str, str]]:
        """A run's log lines as ``(case_id, stream, message)``, in order."""
        with self._connect() as conn:
            rows = conn.execute(
                sa.select(
                    run_logs_table.c.case_id, run_logs_table.c.stream, run_logs_table.c.message
                )
                .where(run_logs_table.c.run_id == run_id)
                .order_by(run_logs_table.c.id)
            )
            return [(r.case_id, r.stream, r.message) for r in rows]

    def record_prompts(self, run_id: int, prompts: Mapping[str, Mapping[str, Any]]) -> None:
        """Store what each case's container was given (``/input/prompts.json``), replacing any
        earlier prompts of those cases, in one transaction."""
        rows = [
            {"run_id": run_id, "case_id": case_id, "content": json.dumps(prompt, sort_keys=True)}
            for case_id, prompt in prompts.items()
        ]
        if not rows:
            return
        with self._begin() as conn:
            conn.execute(
                prompts_table.delete().where(
                    prompts_table.c.run_id == run_id,
                    prompts_table.c.case_id.in_(list(prompts)),
                )
            )
            conn.execute(prompts_table.insert(), rows)

    def prompts(self, run_id: int) -> dict[str, dict[str, Any]]:
        """The prompts :meth:`record_prompts` stored for a run, by case."""
        with self._connect() as conn:
            rows = conn.execute(
                sa.select(prompts_table.c.case_id, prompts_table.c.content)
                .where(prompts_table.c.run_id == run_id)
                .order_by(prompts_table.c.case_id)
            )
            return {r.case_id: json.loads(r.content) for r in rows}

    # ---- plumbing -------------------------------------------------------------------------

    def transaction(self) -> _Guard:
        """A connection in one transaction, database errors raised as StoreError: for modules
        that keep their own tables in the store (:mod:`evaluator.server.state`)."""
        return _Guard(self, begin=True)

    def _connect(self) -> _Guard:
        return _Guard(self, begin=False)

    def _begin(self) -> _Guard:
        return _Guard(self, begin=True)


class _Guard:
    """A connection (optionally in a transaction) whose database errors become StoreError."""

    def __init__(self, store: Store, *, begin: bool) -> None:
        self.store = store
        self.begin = begin
        self._ctx: Any = None

    def __enter__(self) -> sa.Connection:
        try:
            self._ctx = self.store.engine.begin() if self.begin else self.store.engine.connect()
            return self._ctx.__enter__()
        except SQLAlchemyError as err:
            raise StoreError(f"results store {self.store.shown_url}: {err}") from err

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self._ctx.__exit__(exc_type, exc, tb)
        except SQLAlchemyError as err:
            raise StoreError(f"results store {self.store.shown_url}: {err}") from err
        if isinstance(exc, SQLAlchemyError):
            raise StoreError(f"results store {self.store.shown_url}: {exc}") from exc


def _difference(key: str, stored: Any, asked: Any) -> str:
    """One setting that differs, short: a dictionary by its differing keys only.

    Examples
    --------
    >>> _difference("parameters", {"a": 1, "b": [1]}, {"a": 1, "b": [1, 2], "c": 3})
    'parameters b: stored [1], asked [1, 2]; parameters c: stored None, asked 3'
    """

    def short(value: Any) -> str:
        text = repr(value)
        return text if len(text) <= 120 else text[:117] + "..."

    if isinstance(stored, dict) and isinstance(asked, dict):
        keys = sorted(k for k in set(stored) | set(asked) if stored.get(k) != asked.get(k))
        return "; ".join(
            f"{key} {k}: stored {short(stored.get(k))}, asked {short(asked.get(k))}" for k in keys
        )
    return f"{key}: stored {short(stored)}, asked {short(asked)}"


def shown_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages.

    Examples
    --------
    >>> shown_url("postgresql://ccbench:secret@db.example/ccbench")
    'postgresql://ccbench:***@db.example/ccbench'
    """
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "<store URL>"


def _writable(database: str) -> bool:
    """Whether this process may write a SQLite file and create its journal files beside it."""
    return os.access(database, os.W_OK) and os.access(os.path.dirname(database), os.W_OK)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Write-ahead log with ``synchronous=NORMAL``: a commit survives a killed process (the
    resume guarantee) without an fsync per case; only a power cut may lose the last cases, which
    a re-run then scores again."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        _journal_mode_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _journal_mode_wal(cursor: Any, timeout_s: float = _BUSY_TIMEOUT_S) -> None:
    """``PRAGMA journal_mode = WAL``, retried while another connection holds a lock.

    On a file not yet in WAL mode (a new, empty one) the switch writes the first page: it reads
    the file, then upgrades to a write lock. SQLite does not call the busy handler for that
    upgrade (a connection that already reads could deadlock), so when another connection is
    half-way through the same switch, or any first write, the pragma fails at once with
    ``database is locked`` whatever the busy timeout. It is retried here until ``timeout_s``.
    Openers of :meth:`Store.open` do not even meet each other here (they hold the setup lock);
    this covers any other program writing the file.
    """
    import sqlite3

    deadline = time.monotonic() + timeout_s
    delay = 0.002
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.fetchall()
            return
        except sqlite3.OperationalError as err:
            busy = (getattr(err, "sqlite_errorcode", 0) & 0xFF) in (5, 6)  # BUSY, LOCKED
            if not (busy or "locked" in str(err)) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(2 * delay, 0.1)


@contextlib.contextmanager
def _setup_lock(database: str, timeout_s: float = _SETUP_LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<database>.lock`` while a SQLite store is set up.

    One opener at a time switches a new file to WAL and creates missing tables; the others wait
    (the lock is the kernel's, so it goes with a killed holder). The lock file stays (removing it
    would let two openers lock two different files). Without ``fcntl`` (not POSIX) or where the
    lock file cannot be opened (a read-only folder) the setup runs unlocked and relies on the
    retries of :func:`_journal_mode_wal` and :func:`_set_up`.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = f"{database}.lock"
    fd: int | None = None
    for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
        try:
            fd = os.open(path, flags | os.O_CLOEXEC, 0o666)
            break
        except OSError:
            continue
    if fd is None:
        yield
        return
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"cannot open results store {database}: another process has been setting "
                        f"it up for over {timeout_s:.0f} s (holding {path})"
                    ) from None
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)  # releases the lock


def _ccbench_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ccbench")
    except PackageNotFoundError:
        return "unknown"


def _set_up(engine: sa.Engine, url: str, attempts: int = 5) -> None:
    """Create or upgrade the schema (:func:`evaluator.store.migrate.upgrade`); another process
    doing the same at the same moment is fine.

    A race the locks do not cover (another program creating the same tables) shows as ``table
    ... already exists`` (SQLite: OperationalError; PostgreSQL: ProgrammingError) or, on
    PostgreSQL, as a unique violation of the system catalogues (IntegrityError ``duplicate key
    value ... pg_type_typname_nsp_index``); the next attempt then finds the tables.
    """
    for attempt in range(attempts):
        try:
            upgrade(engine, url=url)
            return
        except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError) as err:
            raced = "already exists" in str(err) or "duplicate key" in str(err)
            if not raced or attempt == attempts - 1:
                raise
