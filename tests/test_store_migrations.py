"""Schema revisions of the results store: a store written by the previous release is upgraded.

The oracle is a real store written by the wave-1 release (``tests/data/stores/wave1.sql``, see
its README), loaded into a real SQLite file: opening it with this ccbench must keep every number,
classify every run (entry, study, baseline) and record the artifacts its parameters named; the
migrated schema must equal :mod:`evaluator.store.schema` exactly (Alembic's own comparison), as
must a schema built by the migrations alone from an empty database.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from evaluator.errors import StoreError
from evaluator.store import ResultRow, Store
from evaluator.store.migrate import BASELINE, HEAD, _config, known_revisions
from evaluator.store.schema import metadata
from leaderboards.data import load_leaderboard_data
from tests.store_helpers import open_concurrently

WAVE1 = Path(__file__).parent / "data" / "stores" / "wave1.sql"


def _wave1_store(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "wave1.sqlite"
    con = sqlite3.connect(path)
    con.executescript(WAVE1.read_text())
    con.close()
    return f"sqlite:///{path}", path


def _rows(path: Path, query: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(path)
    try:
        return sorted(con.execute(query).fetchall())
    finally:
        con.close()


def _schema_diff(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def test_head_is_the_newest_migration_and_the_chain_is_linear() -> None:
    revisions = known_revisions()
    assert revisions[0] == BASELINE
    assert revisions[-1] == HEAD
    assert len(revisions) == len(set(revisions))


def test_wave1_store_is_upgraded_and_keeps_every_number(tmp_path: Path) -> None:
    url, path = _wave1_store(tmp_path)
    tables = ("results", "components", "aggregates", "cases", "case_errors", "entries")
    before = {t: _rows(path, f"SELECT * FROM {t}") for t in tables}
    runs_before = _rows(path, "SELECT id, name, task, split, status, parameters FROM runs")
    assert "alembic_version" not in sa.inspect(sa.create_engine(url)).get_table_names()
    with Store.open(url) as store:
        assert store.schema_revision() == HEAD
        kinds = {r.name: r.kind for r in store.list_runs()}
        assert kinds == {
            "alpha--hecktor-phantom": "entry",
            "beta--hecktor-phantom": "entry",
            "threshold--hecktor-phantom": "baseline",  # team "ccbench baselines" in wave 1
            "simulate/hecktor-phantom/all/drop-largest/n00": "study",
            "simulate/hecktor-phantom/all/drop-largest/n01": "study",
        }
        artifacts = {(a.run, a.kind): a.path for a in store.artifacts()}
        pred = {r.name: r.parameters["pred"] for r in store.list_runs(kind="entry")}
        assert artifacts == {
            (name, "predictions"): pred[name]
            for name in ("alpha--hecktor-phantom", "beta--hecktor-phantom")
        } | {
            ("threshold--hecktor-phantom", "predictions"): store.find_run(
                "threshold--hecktor-phantom"
            ).parameters["pred"]  # type: ignore[union-attr]
        }
    assert {t: _rows(path, f"SELECT * FROM {t}") for t in tables} == before
    runs_after = _rows(path, "SELECT id, name, task, split, status, parameters FROM runs")
    assert runs_after == runs_before
    assert _schema_diff(sa.create_engine(url)) == []
    with Store.open(url) as store:
        # then the store works as a current one: claims, new runs, kinds
        run = store.get_or_create_run(
            name="gamma", task="hecktor-phantom", split="all", parameters={}, entry="gamma"
        )
        with store.claim_run(run.id, wait=False):
            store.record_case(run.id, "c1", [ResultRow(1, "dice", 0.5)])
        assert store.find_run("gamma").kind == "entry"  # type: ignore[union-attr]


def test_the_leaderboard_of_an_upgraded_store_ranks_entries_and_baselines_not_studies(
    tmp_path: Path,
) -> None:
    url, _ = _wave1_store(tmp_path)
    with Store.open(url) as store:
        data = load_leaderboard_data("hecktor-phantom", "all", store=store)
        assert sorted(data.entries) == ["alpha", "beta", "threshold"]
        assert data.runs["threshold"].kind == "baseline"
        assert data.artifact("alpha", "predictions") == Path(data.runs["alpha"].parameters["pred"])
        assert data.artifact("alpha", "data") is None  # wave 1 recorded no default data root
        assert data.study_plots == []  # figures are recorded when the study is next drawn


def test_migrations_alone_build_the_current_schema(tmp_path: Path) -> None:
    """From an empty database through every migration: the same tables as a new store."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'steps.sqlite'}")
    with engine.begin() as conn:
        command.upgrade(_config(conn), HEAD)
    assert _schema_diff(engine) == []
    fresh = Store.open(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    assert fresh.schema_revision() == HEAD
    assert _schema_diff(fresh.engine) == []


def test_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    url, _ = _wave1_store(tmp_path)
    Store.open(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.downgrade(_config(conn), BASELINE)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("runs")}
    assert "kind" not in columns
    assert "artifacts" not in sa.inspect(engine).get_table_names()
    with Store.open(url) as store:
        assert store.find_run("threshold--hecktor-phantom").kind == "baseline"  # type: ignore[union-attr]
        assert len(store.artifacts(kind="predictions")) == 3


def test_a_store_of_a_newer_ccbench_is_refused_untouched(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.sqlite'}"
    Store.open(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        conn.execute(sa.text("CREATE TABLE later_table (x INTEGER)"))
    with pytest.raises(StoreError, match=r"schema revision 9999.*newer ccbench"):
        Store.open(url)
    assert "later_table" in sa.inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "9999"


def test_run_kinds_and_artifacts(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'k.sqlite'}")
    study = store.get_or_create_run(
        name="s", task="btcv", split="test", parameters={}, kind="study"
    )
    entry = store.get_or_create_run(name="e", task="btcv", split="test", parameters={})
    assert (study.kind, entry.kind) == ("study", "entry")
    with pytest.raises(StoreError, match="kind"):  # same name, other kind: not the same run
        store.get_or_create_run(name="s", task="btcv", split="test", parameters={})
    with pytest.raises(StoreError, match="unknown run kind 'board'"):
        store.create_run(name="x", task="btcv", split="test", parameters={}, kind="board")  # type: ignore[arg-type]
    assert [r.name for r in store.list_runs(kind="study")] == ["s"]
    assert [r.name for r in store.list_runs(kind=("entry", "baseline"))] == ["e"]
    store.add_artifact(study.id, "plot", tmp_path / "drop.png", note="first")
    store.add_artifact(
        study.id, "plot", tmp_path / "drop.png", note="again"
    )  # updated, not doubled
    store.add_artifact(entry.id, "predictions", "relative/pred")
    with pytest.raises(StoreError, match="unknown artifact kind 'secret'"):
        store.add_artifact(entry.id, "secret", "/etc/passwd")  # type: ignore[arg-type]
    plots = store.artifacts(kind="plot", task="btcv", run_kind="study")
    assert [(a.run, a.path, a.note) for a in plots] == [("s", str(tmp_path / "drop.png"), "again")]
    (pred,) = store.artifacts(run_ids=[entry.id])
    assert pred.path == str(Path("relative/pred").absolute())
    assert store.artifacts(kind="plot", task="autopet") == []
    assert store.artifacts(kind="plot", run_kind="entry") == []


def test_concurrent_openers_upgrade_a_wave1_store_once(tmp_path: Path) -> None:
    url, path = _wave1_store(tmp_path)
    assert open_concurrently(url, 6) == []
    assert _rows(path, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert len(_rows(path, "SELECT * FROM artifacts")) == 3  # backfilled once


def test_read_commands_do_not_create_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "nothere.sqlite"
    with pytest.raises(StoreError, match=r"no results store at .*nothere\.sqlite"):
        Store.open(f"sqlite:///{missing}", create=False)
    assert not (tmp_path / "typo").exists()


def test_a_store_this_process_cannot_write_is_read_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import evaluator.store.core as core

    path = tmp_path / "current.sqlite"
    with Store.open(f"sqlite:///{path}") as store:
        run = store.get_or_create_run(name="r", task="btcv", split="all", parameters={})
        store.record_case(run.id, "c1", [ResultRow(1, "dice", 0.5)])
    old_url, _ = _wave1_store(tmp_path)
    monkeypatch.setattr(core, "_writable", lambda database: False)
    before = sorted(p.name for p in tmp_path.iterdir())
    with Store.open(f"sqlite:///{path}", create=False) as store:
        assert store.results_frame(run_ids=[run.id])["value"].tolist() == [0.5]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no lock, no WAL files
    with pytest.raises(StoreError, match=r"read-only here .* open it once with write access"):
        Store.open(old_url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ccbench:s3cret-pw@127.0.0.1:1/ccbench",  # nobody listens
        "postgresql://ccbench:s3cret-pw@127.0.0.1:notaport/ccbench",  # malformed
        "mysql://ccbench:s3cret-pw@127.0.0.1/ccbench",  # no driver installed
    ],
)
def test_store_messages_hide_the_password(url: str) -> None:
    with pytest.raises(StoreError, match="cannot open results store") as info:
        Store.open(url)
    assert "s3cret-pw" not in str(info.value)
