"""The results store against a real PostgreSQL server.

A throw-away cluster is initialised in a temporary folder for the test session (Debian's
``postgresql`` package is installed with apt-get when ``initdb``/``pg_ctl`` are missing and the
tests run as root), listens on 127.0.0.1 only, and is stopped and removed at the end. Every test
gets its own fresh database. Without a server (no binaries and no way to install them, no
``psycopg``) the tests are skipped with the reason.
"""

from __future__ import annotations

import math
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from evaluator.errors import StoreError
from evaluator.store import CaseError, ComponentRow, ResultRow, Store
from evaluator.workspace import Workspace
from tests.store_helpers import open_concurrently

from . import test_store as sqlite_suite

#: PostgreSQL refuses to run as root; as root the cluster belongs to this system user.
_PG_USER = "postgres"
#: Role owning the test databases (created by initdb, trust authentication on 127.0.0.1).
_ROLE = "ccbench"


def _bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: from PATH, else the newest Debian one."""
    initdb = shutil.which("initdb")
    if initdb is not None:
        folder = Path(os.path.realpath(initdb)).parent
        if (folder / "pg_ctl").is_file():
            return folder
    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()]
    debian.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1)
    return debian[-1] if debian else None


def _install_postgres() -> str | None:
    """Install Debian's ``postgresql`` package; the reason it could not be done, or None."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "initdb/pg_ctl not found and cannot apt-get install postgresql (not root/Debian)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
    ):
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"{' '.join(cmd)}: {err}"
        if proc.returncode != 0:
            return f"{' '.join(cmd)} failed: {(proc.stderr or proc.stdout)[-500:]}"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[sa.Engine]:
    """An AUTOCOMMIT engine on the ``postgres`` database of a private, throw-away server."""
    pytest.importorskip("psycopg", reason="psycopg (v3) is not installed")
    bindir = _bindir()
    if bindir is None:
        reason = _install_postgres()
        bindir = _bindir()
        if bindir is None:
            pytest.skip(reason or "postgresql installed but initdb/pg_ctl not found")
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="ccbench-pg-"))
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_PG_USER)
        except KeyError:
            shutil.rmtree(root)
            pytest.skip(f"running as root and there is no '{_PG_USER}' user to own the cluster")
        shutil.chown(root, user=_PG_USER)
        prefix = ["runuser", "-u", _PG_USER, "--"]
    data, log, port = root / "data", root / "server.log", _free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {root} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    pg_ctl = [*prefix, str(bindir / "pg_ctl"), "-D", str(data)]
    initdb = [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", _ROLE, "-E", "UTF8"]
    commands = [
        [*prefix, *initdb, "--no-sync"],
        [*pg_ctl, "-l", str(log), "-w", "-t", "60", "-o", options, "start"],
    ]
    started = False
    try:
        for cmd in commands:
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            except (OSError, subprocess.TimeoutExpired) as err:
                pytest.skip(f"cannot start PostgreSQL: {err}")
            if proc.returncode != 0:
                server_log = log.read_text(errors="replace")[-500:] if log.exists() else ""
                pytest.skip(
                    f"cannot start PostgreSQL ({cmd[len(prefix)]} exited {proc.returncode}): "
                    f"{proc.stderr[-500:]} {server_log}"
                )
            started = cmd[-1] == "start"
        url = sa.URL.create(
            "postgresql+psycopg", username=_ROLE, host="127.0.0.1", port=port, database="postgres"
        )
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        yield engine
        engine.dispose()
    finally:
        if started:
            subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_admin: sa.Engine) -> Iterator[str]:
    """The URL of a new, empty database on the session's server, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with postgres_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield postgres_admin.url.set(database=name).render_as_string(hide_password=False)
    with postgres_admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Store]:
    with Store.open(postgres_url) as store:
        yield store


def _sqlite_cases() -> list[Callable[[Store], None]]:
    """The behaviours of the SQLite suite that take only a store: run them on PostgreSQL too."""
    return [
        sqlite_suite.test_record_case_round_trip_with_nan_and_components,
        sqlite_suite.test_record_case_replaces_earlier_rows,
        sqlite_suite.test_record_case_is_one_transaction,
        sqlite_suite.test_get_or_create_resumes_same_settings_and_refuses_others,
        sqlite_suite.test_finish_reset_aggregates_and_logs,
        sqlite_suite.test_filters_and_listing,
        sqlite_suite.test_claim_is_exclusive_and_released,
        sqlite_suite.test_claim_of_a_live_local_process_is_busy_and_of_a_reused_pid_taken_over,
        sqlite_suite.test_claim_of_another_host_lives_by_its_heartbeat,
        sqlite_suite.test_record_case_refreshes_only_this_process_claim,
    ]


@pytest.mark.parametrize("behaviour", _sqlite_cases(), ids=lambda f: f.__name__[5:])
def test_sqlite_suite_on_postgres(behaviour: Callable[[Store], None], pg_store: Store) -> None:
    assert pg_store.engine.dialect.name == "postgresql"
    behaviour(pg_store)


def _fill(store: Store) -> None:
    """The same writes on any store: edge values, unicode, errors, logs, two runs and entries."""
    values = [0.1 + 0.2, 1e-300, -0.0, math.nan, math.inf, -math.inf, 1.7976931348623157e308]
    for k, name in enumerate(("first", "second")):
        run = sqlite_suite._run(store, name, entry=f"team-{k}", parameters={"k": k, "q": [1.5]})
        for c, case_id in enumerate(("CHUM-002", "CHUM-001", "Ünïcödé ✓ case")):
            rows = [ResultRow(label, "dice", values[(c + label + k) % 7]) for label in (1, 2)]
            rows.append(ResultRow(1, "hd95", values[(c + 4) % 7]))
            comps = [ComponentRow(2, "cc_dice", j, values[(j + c) % 7]) for j in range(3)]
            error = CaseError("nan", "prédiction ✗ " * 500) if c == 2 else None
            store.record_case(run.id, case_id, rows, components=comps, error=error, seconds=0.5)
        store.log(run.id, "stdout line ✓", case_id="CHUM-001", stream="stdout")
        store.finish_run(run.id, aggregates=[ResultRow(0, "aggregated_dice", math.nan)])


def test_frames_equal_the_same_writes_on_sqlite(pg_store: Store, tmp_path: Path) -> None:
    lite = Store.open(f"sqlite:///{tmp_path / 'same.sqlite'}")
    _fill(pg_store)
    _fill(lite)
    for reader in ("results", "components", "errors", "cases", "aggregates"):
        pg_frame = getattr(pg_store, f"{reader}_frame")()
        lite_frame = getattr(lite, f"{reader}_frame")()
        assert len(pg_frame) > 0, reader
        pd.testing.assert_frame_equal(pg_frame, lite_frame, check_exact=True, obj=reader)
    values = pg_store.results_frame(run_ids=[1])["value"]
    assert values.isna().sum() > 0 and math.inf in set(values) and -math.inf in set(values)
    for run in pg_store.list_runs():
        twin = lite.find_run(run.name)
        assert twin is not None and run.parameters == twin.parameters
        assert run.entry == twin.entry and run.status == twin.status == "finished"
        assert run.finished_at is not None and twin.finished_at is not None
    assert pg_store.logs(1) == lite.logs(1) == [("CHUM-001", "stdout", "stdout line ✓")]


def test_reopen_resumes_and_entries_are_shared(postgres_url: str) -> None:
    with Store.open(postgres_url) as one:
        run = sqlite_suite._run(one)
        one.record_case(run.id, "c1", [ResultRow(1, "dice", 0.5)])
    with Store.open(postgres_url) as two:
        again = sqlite_suite._run(two)
        assert again.id == run.id and two.completed_cases(run.id) == {"c1"}
        assert two.ensure_entry("e") == two.ensure_entry("e", image="img:1")


def test_tables_created_concurrently_by_many_workers(postgres_url: str) -> None:
    """Workers opening a fresh shared database at the same moment all succeed."""
    assert open_concurrently(postgres_url, 6) == []
    with Store.open(postgres_url) as store:
        assert set(sa.inspect(store.engine).get_table_names()) >= {"runs", "results", "cases"}


def test_value_too_long_for_its_column_is_a_store_error_and_writes_nothing(
    pg_store: Store,
) -> None:
    run = sqlite_suite._run(pg_store)
    with pytest.raises(StoreError, match="too long"):
        pg_store.record_case(run.id, "c" * 301, [ResultRow(1, "dice", 0.5)])
    assert pg_store.completed_cases(run.id) == set()
    assert pg_store.results_frame(run_ids=[run.id]).empty


def test_evaluate_run_on_postgres_equals_sqlite(
    postgres_url: str, workspace: Workspace, tmp_path: Path
) -> None:
    from evaluator.datasets.phantoms import write_phantoms
    from evaluator.evaluate import evaluate_run
    from evaluator.simulate.degraded import write_degraded_predictions

    write_phantoms("hecktor", workspace=workspace, cases=2)
    pred = write_degraded_predictions(
        "hecktor-phantom", "all", tmp_path / "pred", workspace=workspace, seed=5, quality=0.5
    )
    lite_url = f"sqlite:///{tmp_path / 'lite.sqlite'}"
    results = {}
    for url in (postgres_url, lite_url):
        results[url] = evaluate_run(
            "hecktor-phantom",
            "all",
            pred,
            workspace=workspace,
            workers=1,
            store=url,
            out=tmp_path / ("pg" if url == postgres_url else "lite"),
        )
    pg, lite = results[postgres_url], results[lite_url]
    assert pg.store_url == postgres_url and pg.scored == 2 and pg.run.status == "finished"
    with Store.open(postgres_url) as store, Store.open(lite_url) as lite_store:
        pg_frame = store.results_frame(run_ids=[pg.run.id]).drop(columns="run_id")
        lite_frame = lite_store.results_frame(run_ids=[lite.run.id]).drop(columns="run_id")
        assert len(pg_frame) > 0 and pg_frame["value"].notna().any()
        pd.testing.assert_frame_equal(pg_frame, lite_frame, check_exact=True)
        assert store.get_run(pg.run.id).status == "finished"
    assert pg.summary["aggregates"] == lite.summary["aggregates"]
    again = evaluate_run(
        "hecktor-phantom", "all", pred, workspace=workspace, workers=1, store=postgres_url,
        out=tmp_path / "pg",
    )  # fmt: skip
    assert (again.run.id, again.scored) == (pg.run.id, 0)


def test_wave1_store_upgraded_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    """The wave-1 store's rows copied into a wave-1 schema on PostgreSQL (no revision table),
    then opened by this ccbench by two processes at once: upgraded once, numbers kept."""
    from alembic import command

    from evaluator.store.migrate import BASELINE, HEAD, _config

    from .test_store_migrations import _schema_diff, _wave1_store

    sqlite_url, _ = _wave1_store(tmp_path)
    source = sa.create_engine(sqlite_url)
    target = sa.create_engine(postgres_url)
    with target.begin() as conn:
        command.upgrade(_config(conn), BASELINE)
        conn.execute(sa.text("DROP TABLE alembic_version"))
    old = sa.MetaData()
    old.reflect(source)
    with source.connect() as src, target.begin() as dst:
        for table in old.sorted_tables:
            rows = [dict(r._mapping) for r in src.execute(table.select())]
            if rows:
                dst.execute(table.insert(), rows)
        for name in ("entries", "runs", "run_logs"):  # serials follow the copied ids
            dst.execute(
                sa.text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 1) FROM {name}))")
            )  # fmt: skip
    with source.connect() as src:
        before = sorted(src.execute(sa.text("SELECT * FROM results")).fetchall())
    assert open_concurrently(postgres_url, 4) == []
    with Store.open(postgres_url) as store:
        assert store.schema_revision() == HEAD
        kinds = sorted((r.name, r.kind) for r in store.list_runs())
        assert [k for _, k in kinds].count("study") == 2
        assert dict(kinds)["threshold--hecktor-phantom"] == "baseline"
        assert len(store.artifacts(kind="predictions")) == 3
        new = store.get_or_create_run(name="n", task="btcv", split="test", parameters={})
        assert new.id > max(r.id for r in store.list_runs() if r.name != "n")
    with target.connect() as conn:
        after = sorted(conn.execute(sa.text("SELECT * FROM results")).fetchall())
    assert after == before
    assert _schema_diff(target) == []


def test_server_limits_and_job_claims_hold_on_postgres(postgres_url: str) -> None:
    """``ccbench serve`` on PostgreSQL: 12 uploads from 6 processes against a limit of 2 per
    day (the team row's ``FOR UPDATE`` serialises them), and 8 workers claiming 3 jobs."""
    from concurrent.futures import ProcessPoolExecutor

    from evaluator.server.challenge import ChallengeSpec
    from evaluator.server.state import ServerState
    from tests.server.test_state import NOW, SPEC, _claim, _submit

    database = sa.make_url(postgres_url).database
    with sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(  # a database whose default the server's rules would not hold under
            sa.text(
                f"ALTER DATABASE \"{database}\" SET default_transaction_isolation = 'serializable'"
            )
        )
    state = ServerState(Store.open(postgres_url))
    with state.store.transaction() as conn:  # the store pins its own
        assert conn.execute(sa.text("SHOW transaction_isolation")).scalar() == "read committed"
    state.create_challenge(ChallengeSpec.model_validate(SPEC), actor="org")
    state.set_open("demo", True, actor="org")
    for team in ("alpha", "beta"):
        state.add_team("demo", team, actor="org")
    alpha = state.issue_token("demo", role="team", team="alpha", actor="org")
    with ProcessPoolExecutor(6) as pool:
        got = list(pool.map(_submit, [postgres_url] * 12, [alpha] * 12))
    assert got.count("ok") == 2 and got.count("limit") == 10
    beta = state.authenticate(state.issue_token("demo", role="team", team="beta", actor="org"))
    assert beta is not None
    state.create_submission(beta, "final", now=NOW)
    with ProcessPoolExecutor(4) as pool:
        claimed = [
            c for c in pool.map(_claim, [postgres_url] * 8, [f"w{i}" for i in range(8)]) if c
        ]
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 3
