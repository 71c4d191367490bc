from __future__ import annotations

import math
import os
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from evaluator.errors import StoreError
from evaluator.store import (
    ENV_STORE,
    CaseError,
    ComponentRow,
    ResultRow,
    RunBusyError,
    Store,
    resolve_store_url,
)
from evaluator.workspace import Workspace


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'sub' / 'results.sqlite'}")


def _run(store: Store, name: str = "r", **overrides: object):
    kwargs: dict = {"name": name, "task": "hecktor", "split": "test", "parameters": {"a": 1}}
    kwargs.update(overrides)
    return store.get_or_create_run(**kwargs)


def test_url_resolution_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    monkeypatch.delenv(ENV_STORE, raising=False)
    assert resolve_store_url(workspace=ws) == f"sqlite:///{tmp_path / 'results.sqlite'}"
    monkeypatch.setenv(ENV_STORE, "sqlite:///env.sqlite")
    assert resolve_store_url(workspace=ws) == "sqlite:///env.sqlite"
    assert resolve_store_url("sqlite:///cli.sqlite", workspace=ws) == "sqlite:///cli.sqlite"
    monkeypatch.delenv(ENV_STORE)
    with pytest.raises(StoreError, match=ENV_STORE):
        resolve_store_url()


def test_open_creates_file_and_tables(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "s.sqlite"
    Store.open(f"sqlite:///{path}").close()
    assert path.is_file()


def test_bad_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open results store"):
        Store.open("nosuchdialect://x")


def test_record_case_round_trip_with_nan_and_components(store: Store) -> None:
    run = _run(store, entry="team-a", image_digest="sha256:abc", dataset_fingerprint="fp")
    assert run.status == "running" and run.entry == "team-a" and run.parameters == {"a": 1}
    store.record_case(
        run.id,
        "CHUM-001",
        [
            ResultRow(1, "dice", 0.75),
            ResultRow(2, "dice", math.nan),
            ResultRow(2, "hd95", math.inf),
        ],
        components=[ComponentRow(2, "cc_dice", 0, 0.5), ComponentRow(2, "cc_dice", 1, 1.0)],
        seconds=0.25,
    )
    frame = store.results_frame(task="hecktor", split="test")
    assert list(frame.columns) == [
        "run_id", "run", "task", "split", "entry", "case_id", "label", "metric", "value",
    ]  # fmt: skip
    values = {(r.label, r.metric): r.value for r in frame.itertuples()}
    assert values[(1, "dice")] == 0.75
    assert math.isnan(values[(2, "dice")])
    assert values[(2, "hd95")] == math.inf
    assert set(frame["entry"]) == {"team-a"}
    comps = store.components_frame(run_ids=[run.id])
    assert comps["component"].tolist() == [0, 1] and comps["value"].tolist() == [0.5, 1.0]
    assert store.completed_cases(run.id) == {"CHUM-001"}
    assert store.cases_frame(run_ids=[run.id])["seconds"].tolist() == [0.25]


def test_record_case_replaces_earlier_rows(store: Store) -> None:
    run = _run(store)
    store.record_case(run.id, "c1", [ResultRow(1, "dice", 0.1), ResultRow(1, "iou", 0.2)])
    store.record_case(
        run.id, "c1", [ResultRow(1, "dice", 0.0)], error=CaseError("missing", "no file")
    )
    frame = store.results_frame(run_ids=[run.id])
    assert frame[["metric", "value"]].values.tolist() == [["dice", 0.0]]
    errors = store.errors_frame(run_ids=[run.id])
    assert errors[["case_id", "error_class", "message"]].values.tolist() == [
        ["c1", "missing", "no file"]
    ]
    assert store.cases_frame(run_ids=[run.id])["status"].tolist() == ["error"]


def test_record_case_is_one_transaction(store: Store) -> None:
    run = _run(store)
    # a duplicate (label, metric) violates the primary key half-way through the insert
    with pytest.raises(StoreError):
        store.record_case(run.id, "c1", [ResultRow(1, "dice", 0.1), ResultRow(1, "dice", 0.2)])
    assert store.completed_cases(run.id) == set()
    assert store.results_frame(run_ids=[run.id]).empty


def test_get_or_create_resumes_same_settings_and_refuses_others(store: Store) -> None:
    first = _run(store)
    store.record_case(first.id, "c1", [ResultRow(1, "dice", 1.0)])
    again = _run(store)
    assert again.id == first.id and store.completed_cases(again.id) == {"c1"}
    with pytest.raises(StoreError, match=r"split: stored 'test', asked 'val'"):
        _run(store, split="val")
    with pytest.raises(StoreError, match="parameters"):
        _run(store, parameters={"a": 2})


def test_finish_reset_aggregates_and_logs(store: Store) -> None:
    run = _run(store)
    store.record_case(run.id, "c1", [ResultRow(1, "dice", 1.0)])
    store.log(run.id, "hello", case_id="c1", stream="stdout")
    store.finish_run(run.id, aggregates=[ResultRow(0, "aggregated_dice", 0.8)])
    info = store.get_run(run.id)
    assert info.status == "finished" and info.finished_at is not None
    agg = store.aggregates_frame(run_ids=[run.id])
    assert agg[["label", "metric", "value"]].values.tolist() == [[0, "aggregated_dice", 0.8]]
    assert store.logs(run.id) == [("c1", "stdout", "hello")]
    store.reset_run(run.id)
    assert store.get_run(run.id).status == "running"
    assert store.completed_cases(run.id) == set()
    assert store.aggregates_frame(run_ids=[run.id]).empty and store.logs(run.id) == []


def test_filters_and_listing(store: Store) -> None:
    a = _run(store, "a", entry="x")
    b = _run(store, "b", task="btcv", entry="y")
    for run in (a, b):
        store.record_case(run.id, "c", [ResultRow(1, "dice", float(run.id))])
    assert store.results_frame(task="btcv")["run"].tolist() == ["b"]
    assert store.results_frame(entry="x")["run"].tolist() == ["a"]
    assert [r.name for r in store.list_runs(task="hecktor")] == ["a"]
    assert [r.name for r in store.list_runs(entry="y")] == ["b"]
    assert store.find_run("nope") is None
    with pytest.raises(StoreError, match="no run with id 999"):
        store.get_run(999)


def test_two_handles_see_the_same_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    with Store.open(url) as one:
        run = _run(one)
        one.record_case(run.id, "c", [ResultRow(1, "dice", 0.5)])
    with Store.open(url) as two:
        assert two.completed_cases(run.id) == {"c"}
        assert two.ensure_entry("e") == two.ensure_entry("e", image="img:1")


def _plant_claim(store: Store, run_id: int, **row: Any) -> None:
    """Write a claim row as another process would (the table as the database has it)."""
    table = sa.Table("run_claims", sa.MetaData(), autoload_with=store.engine)
    with store.engine.begin() as conn:
        conn.execute(table.delete().where(table.c.run_id == run_id))
        conn.execute(table.insert().values(run_id=run_id, **row))


def _my_claim_row(store: Store, run_id: int) -> dict[str, Any]:
    """This process's identity as a claim row, read back from a real claim (then released)."""
    with store.claim_run(run_id):
        holder = store.claim_holder(run_id)
    assert holder is not None
    return {
        "owner": f"{holder.owner}-other",
        "host": holder.host,
        "machine": holder.machine,
        "pid": holder.pid,
        "pid_start": holder.pid_start,
        "claimed_at": holder.claimed_at,
        "heartbeat_at": holder.heartbeat_at,
    }


def test_claim_is_exclusive_and_released(store: Store) -> None:
    run = _run(store)
    with store.claim_run(run.id, wait=False) as claim:
        holder = store.claim_holder(run.id)
        assert holder is not None and holder.pid == os.getpid()
        assert holder.host == socket.gethostname() and holder.owner == claim.owner
        with pytest.raises(StoreError, match="already claimed by this process"):
            store.claim_run(run.id, wait=False)
        claim.heartbeat()
    assert claim.released and store.claim_holder(run.id) is None
    with pytest.raises(RunBusyError, match="no longer holds"):
        claim.heartbeat()
    again = store.claim_run(run.id)
    again.release()
    again.release()  # idempotent
    assert store.claim_holder(run.id) is None
    with pytest.raises(StoreError, match="no run with id 999"):
        store.claim_run(999)


def test_claim_of_a_live_local_process_is_busy_and_of_a_reused_pid_taken_over(
    store: Store,
) -> None:
    run = _run(store)
    alive = _my_claim_row(store, run.id)  # this process, alive, under another owner token
    _plant_claim(store, run.id, **alive)
    with pytest.raises(RunBusyError) as busy:
        store.claim_run(run.id, wait=False)
    message = str(busy.value)
    assert f"run 'r' (id {run.id})" in message
    assert f"process {os.getpid()} on host {socket.gethostname()}" in message
    assert store.claim_holder(run.id).owner == alive["owner"]  # type: ignore[union-attr]
    if alive["pid_start"] is not None:  # the same pid with another start time: a reused pid
        _plant_claim(store, run.id, **{**alive, "pid_start": alive["pid_start"] - 1})
        with store.claim_run(run.id, wait=False) as claim:
            assert store.claim_holder(run.id).owner == claim.owner  # type: ignore[union-attr]


def test_claim_of_another_host_lives_by_its_heartbeat(store: Store) -> None:
    run = _run(store)
    now = datetime.now(UTC).replace(tzinfo=None)  # the store keeps naive UTC times
    row = {
        "owner": "elsewhere:4242:abc",
        "host": "elsewhere",
        "machine": "other-boot/pid:[1]",
        "pid": 4242,
        "pid_start": 1,
        "claimed_at": now,
        "heartbeat_at": now - timedelta(seconds=120),
    }
    _plant_claim(store, run.id, **row)
    with pytest.raises(RunBusyError, match=r"process 4242 on host elsewhere") as refused:
        store.claim_run(run.id, wait=False)
    # the age is measured when the claim is refused: 120 s plus the time since `now`, rounded
    elapsed = (datetime.now(UTC).replace(tzinfo=None) - now).total_seconds()
    age = re.search(r"last heartbeat (\d+) s", str(refused.value))
    assert age is not None, refused.value
    assert 120 <= int(age.group(1)) <= round(120 + elapsed), (refused.value, elapsed)
    with store.claim_run(run.id, wait=False, stale_after_s=60) as claim:
        assert store.claim_holder(run.id).owner == claim.owner  # type: ignore[union-attr]


def test_record_case_refreshes_only_this_process_claim(store: Store) -> None:
    run, other = _run(store), _run(store, "other")
    long_ago = datetime(2000, 1, 1)
    table = sa.Table("run_claims", sa.MetaData(), autoload_with=store.engine)
    with store.claim_run(run.id) as claim:
        with store.engine.begin() as conn:
            conn.execute(table.update().values(heartbeat_at=long_ago))
        store.record_case(run.id, "c1", [ResultRow(1, "dice", 1.0)])
        holder = store.claim_holder(run.id)
        assert holder is not None and holder.owner == claim.owner
        assert holder.heartbeat_at > long_ago
    _plant_claim(
        store, other.id, owner="elsewhere:1:x", host="elsewhere", machine=None, pid=1,
        pid_start=None, claimed_at=long_ago, heartbeat_at=long_ago,
    )  # fmt: skip
    store.record_case(other.id, "c1", [ResultRow(1, "dice", 1.0)])
    assert store.claim_holder(other.id).heartbeat_at == long_ago  # type: ignore[union-attr]
