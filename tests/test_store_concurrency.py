"""The results store under real concurrency: real processes, one real SQLite file, no mocks.

Each test starts fresh Python processes (``python -c``) that import the store and wait at a
barrier so that they hit the database at the same moment, as processes started together by a
shell or a scheduler do. The barrier is a lock: the test holds an exclusive ``flock`` on a gate
file, each child blocks on a shared one (no CPU spent waiting) and all wake when it is dropped.
"""

from __future__ import annotations

import fcntl
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from evaluator.store import RunBusyError, Store

REPO = Path(__file__).resolve().parents[1]

#: Imported by every child: the barrier, and the store.
_PRELUDE = """
import fcntl, os, sys, time
from pathlib import Path
from evaluator.store import ResultRow, Store

def barrier(folder):
    with open(Path(folder, "gate")) as gate:
        Path(folder, f"ready-{os.getpid()}").touch()
        fcntl.flock(gate, fcntl.LOCK_SH)
"""


class Child:
    """A ``python -c`` process whose output lines are read as they come."""

    def __init__(self, body: str, *args: str) -> None:
        code = _PRELUDE + textwrap.dedent(body)
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def expect(self, prefix: str, timeout: float = 20.0) -> str:
        """The next output line starting with ``prefix`` (earlier lines are kept in lines)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} within {timeout} s: {self.lines}") from None
            if line is None:
                self.proc.wait()
                raise AssertionError(
                    f"exited {self.proc.returncode} before {prefix!r}: {self.lines}"
                )
            self.lines.append(line)
            if line.startswith(prefix):
                return line

    def finish(self, timeout: float = 30.0, *, check: bool = True) -> list[str]:
        """Wait for the exit; all output lines. ``check``: fail on a non-zero exit."""
        self.proc.wait(timeout=timeout)
        while (line := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(line)
        assert not check or self.proc.returncode == 0, "\n".join(self.lines)
        return self.lines


@pytest.fixture
def children() -> Iterator[list[Child]]:
    """Children started by a test; any left running at its end are killed."""
    started: list[Child] = []
    yield started
    for child in started:
        if child.proc.poll() is None:
            child.proc.kill()
        child.proc.wait()
        child._reader.join(timeout=10)


class Barrier:
    """Children call ``barrier(folder)``; :meth:`release` lets ``n`` of them go at once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._gate = open(folder / "gate", "w")  # noqa: SIM115 - held until release
        fcntl.flock(self._gate, fcntl.LOCK_EX)

    def release(self, n: int, timeout: float = 60.0) -> None:
        """Wait until ``n`` children stand at the barrier, then let them all go."""
        deadline = time.monotonic() + timeout
        while (ready := len(list(self.folder.glob("ready-*")))) < n:
            assert time.monotonic() < deadline, f"only {ready} of {n} children ready"
            time.sleep(0.02)
        time.sleep(0.05)  # the last one from its touch() to its flock()
        self._gate.close()


def _assert_all_succeeded(children: list[Child], last_line: str) -> None:
    """Every child exited 0 with a last line starting ``last_line``; else how many failed, why."""
    failed = []
    for child in children:
        lines = child.finish(check=False)
        if child.proc.returncode != 0 or not lines or not lines[-1].startswith(last_line):
            failed.append(next((line for line in reversed(lines) if "Error:" in line), "?"))
    assert failed == [], f"{len(failed)} of {len(children)} processes failed: {sorted(set(failed))}"


_OPEN_AND_RECORD = """
barrier(sys.argv[1])
i = sys.argv[3]
db = Store.open(f"sqlite:///{sys.argv[2]}")
run = db.get_or_create_run(name=f"run-{i}", task="t", split="s", parameters={"i": i})
db.record_case(run.id, "case", [ResultRow(1, "dice", 0.5)])
print("OK")
"""


@pytest.mark.parametrize("first_write_held_s", [0.0, 0.5], ids=["racing", "first_write_held"])
def test_new_store_opened_by_16_processes_at_once(
    tmp_path: Path, children: list[Child], first_write_held_s: float
) -> None:
    """16 processes open one new SQLite file at the same moment; each adds a run and a case.

    ``first_write_held``: another connection is half-way through writing the new file's first
    page when they start (the parent holds its write lock for a moment), the state in which a
    racing opener met SQLite's immediate ``database is locked`` from ``PRAGMA journal_mode``.
    """
    path, n, barrier = tmp_path / "new.sqlite", 16, Barrier(tmp_path)
    children.extend(Child(_OPEN_AND_RECORD, str(tmp_path), str(path), str(i)) for i in range(n))
    writer = None
    if first_write_held_s:
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
    barrier.release(n)
    if writer is not None:
        time.sleep(first_write_held_s)
        writer.execute("ROLLBACK")
        writer.close()
    _assert_all_succeeded(children, "OK")
    with Store.open(f"sqlite:///{path}") as db:
        assert sorted(r.name for r in db.list_runs()) == sorted(f"run-{i}" for i in range(n))
        assert len(db.cases_frame()) == n


def test_same_run_name_created_by_8_processes_at_once(
    tmp_path: Path, children: list[Child]
) -> None:
    """``get_or_create_run`` of one name (and one entry) by 8 processes: one run, one id."""
    url, n, barrier = f"sqlite:///{tmp_path / 's.sqlite'}", 8, Barrier(tmp_path)
    Store.open(url).close()
    body = """
    barrier(sys.argv[1])
    db = Store.open(sys.argv[2])
    run = db.get_or_create_run(
        name="same", task="t", split="s", parameters={"p": [1, 2]}, entry="team"
    )
    print("RUN", run.id)
    """
    children.extend(Child(body, str(tmp_path), url) for _ in range(n))
    barrier.release(n)
    _assert_all_succeeded(children, "RUN ")
    ids = {child.lines[-1] for child in children}
    with Store.open(url) as db:
        runs = db.list_runs()
        assert [(r.name, r.entry) for r in runs] == [("same", "team")]
        assert ids == {f"RUN {runs[0].id}"}
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM entries")).scalar() == 1


#: A process scoring run "same" as ``evaluate`` should: claim it, then score what is missing.
_SCORE = """
db = Store.open(sys.argv[1])
run = db.get_or_create_run(name="same", task="t", split="s", parameters={})
with db.claim_run(run.id, poll_s=0.05, on_wait=lambda m: print("WAIT", m)):
    print("CLAIMED")
    done = db.completed_cases(run.id)
    todo = [c for c in ("c1", "c2", "c3") if c not in done]
    for case in todo:
        db.record_case(run.id, case, [ResultRow(1, "dice", 1.0), ResultRow(2, "dice", 0.5)])
    db.finish_run(run.id)
    print("SCORED", len(todo))
    while not Path(sys.argv[2]).exists():  # hold the claim until told
        time.sleep(0.01)
print("RELEASED")
"""


def test_second_process_waits_for_the_claim_and_then_scores_nothing(
    tmp_path: Path, children: list[Child]
) -> None:
    url, release = f"sqlite:///{tmp_path / 's.sqlite'}", tmp_path / "release"
    first = Child(_SCORE, url, str(release))
    children.append(first)
    first.expect("CLAIMED")
    first.expect("SCORED 3")
    second = Child(_SCORE, url, str(release))
    children.append(second)
    wait = second.expect("WAIT")
    assert f"run 'same' (id 1) is being scored by process {first.proc.pid}" in wait
    assert f"on host {socket.gethostname()}" in wait and "waiting for it to finish" in wait
    time.sleep(0.3)  # six polls: still waiting, and told once
    assert second.proc.poll() is None and second._queue.empty()
    release.touch()
    assert first.finish()[-1] == "RELEASED"
    lines = second.finish()
    assert lines == [wait, "CLAIMED", "SCORED 0", "RELEASED"]
    with Store.open(url) as db:
        assert len(db.list_runs()) == 1 and db.get_run(1).status == "finished"
        assert sorted(db.completed_cases(1)) == ["c1", "c2", "c3"]
        assert len(db.results_frame()) == 6
        assert db.claim_holder(1) is None


_HOLD = """
db = Store.open(sys.argv[1])
run = db.get_or_create_run(name="r", task="t", split="s", parameters={})
with db.claim_run(run.id, wait=False):
    print("CLAIMED", run.id)
    while not Path(sys.argv[2]).exists():
        time.sleep(0.01)
print("RELEASED")
"""


@pytest.mark.parametrize("reaped", [True, False], ids=["reaped", "zombie"])
def test_claim_of_a_killed_holder_is_taken_over_at_once(
    tmp_path: Path, children: list[Child], reaped: bool
) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    holder = Child(_HOLD, url, str(tmp_path / "never"))
    children.append(holder)
    run_id = int(holder.expect("CLAIMED").split()[1])
    os.kill(holder.proc.pid, signal.SIGKILL)
    if reaped:
        holder.proc.wait()
    else:  # killed but not yet waited for by its parent: a zombie, which is as dead
        deadline = time.monotonic() + 10
        while Path(f"/proc/{holder.proc.pid}/stat").read_text().split(") ")[1][0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
    with Store.open(url) as db:
        stale = db.claim_holder(run_id)
        assert stale is not None and stale.pid == holder.proc.pid
        started = time.monotonic()
        with db.claim_run(run_id, wait=False) as claim:
            assert time.monotonic() - started < 2.0
            now = db.claim_holder(run_id)
            assert now is not None and now.owner == claim.owner and now.pid == os.getpid()
        assert db.claim_holder(run_id) is None


def test_busy_claim_without_wait_raises_naming_the_holder(
    tmp_path: Path, children: list[Child]
) -> None:
    url, release = f"sqlite:///{tmp_path / 's.sqlite'}", tmp_path / "release"
    holder = Child(_HOLD, url, str(release))
    children.append(holder)
    run_id = int(holder.expect("CLAIMED").split()[1])
    with Store.open(url) as db:
        with pytest.raises(RunBusyError) as busy:
            db.claim_run(run_id, wait=False)
        message = str(busy.value)
        assert f"run 'r' (id {run_id}) is being scored by process {holder.proc.pid}" in message
        assert f"on host {socket.gethostname()}" in message
        release.touch()
        assert holder.finish()[-1] == "RELEASED"
        with db.claim_run(run_id, wait=False):
            assert db.claim_holder(run_id).pid == os.getpid()  # type: ignore[union-attr]
