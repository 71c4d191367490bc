"""``ccbench serve`` end to end: real uvicorn on loopback, real uploads of a ``docker save``
archive, the job runner loading it and running it sandboxed, the leaderboard by role."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from evaluator.workspace import Workspace

uvicorn = pytest.importorskip("uvicorn")

pytestmark = pytest.mark.slow

SPEC = {
    "name": "demo",
    "phases": [
        {
            "name": "final", "task": "autopet-phantom", "split": "test",
            "start": "2026-01-01T00:00:00Z", "end": "2099-01-01T00:00:00Z",
            "limits": {"per_day": 2}, "hidden": True, "public_metrics": ["dice"],
        }
    ],
}  # fmt: skip


#: A host tag that each uploaded archive names: it must keep pointing where it pointed.
VICTIM = "ccbench-test/victim:serve"


@pytest.fixture(scope="module")
def archive(test_images: dict[str, str], docker_backend: Any, tmp_path_factory: Any) -> Path:
    """The threshold baseline's image as a ``docker save`` archive whose manifest tags it as
    :data:`VICTIM`, a host tag of another image (an upload trying to move a host tag)."""
    import io
    import json
    import tarfile

    folder = tmp_path_factory.mktemp("archive")
    saved, path = folder / "saved.tar", folder / "algo.tar"
    image = docker_backend.client.images.get(test_images["baseline"])
    with saved.open("wb") as out:
        for chunk in image.save(named=True):  # with its tag, as `docker save name:tag`
            out.write(chunk)
    with tarfile.open(saved) as tin, tarfile.open(path, "w") as tout:
        for member in tin:
            data = tin.extractfile(member) if member.isfile() else None
            if member.name == "manifest.json" and data is not None:
                doc = json.loads(data.read())
                doc[0]["RepoTags"] = [VICTIM]
                raw = json.dumps(doc).encode()
                member.size, data = len(raw), io.BytesIO(raw)
            tout.addfile(member, data)
    saved.unlink()
    return path


@pytest.fixture
def victim(docker_backend: Any, test_images: dict[str, str]) -> Iterator[str]:
    """:data:`VICTIM` on an image other than the uploads'; its id."""
    baseline = docker_backend.client.images.get(test_images["baseline"]).id
    other = next(i for i in docker_backend.client.images.list() if i.id != baseline and i.tags)
    repository, tag = VICTIM.split(":")
    other.tag(repository, tag)
    yield str(other.id)
    docker_backend.client.images.remove(VICTIM)


class Server:
    def __init__(self, root: Path) -> None:
        from evaluator.datasets.phantoms import write_phantoms
        from evaluator.datasets.splits import make_split
        from evaluator.server.app import create_app
        from evaluator.server.challenge import ChallengeSpec
        from evaluator.server.loopback import on_loopback
        from evaluator.server.state import ServerState
        from evaluator.server.worker import Worker
        from evaluator.store import Store

        self.ws = Workspace(root / "ws").ensure()
        write_phantoms("autopet", workspace=self.ws, cases=10, size="small", seed=2)
        make_split("autopet-phantom", workspace=self.ws, seed=0)
        self.state = ServerState(Store.open(workspace=self.ws))
        self.state.create_challenge(ChallengeSpec.model_validate(SPEC), actor="org")
        self.state.set_open("demo", True, actor="org")
        self.tokens = {}
        for team in ("alpha", "beta"):
            self.state.add_team("demo", team, actor="org")
            self.tokens[team] = self.state.issue_token("demo", role="team", team=team, actor="o")
        self.tokens["org"] = self.state.issue_token("demo", role="organiser", team=None, actor="o")
        uploads = self.ws.root / "server" / "demo" / "uploads"
        app = create_app(self.state, "demo", uploads, secret=b"k" * 32)
        self._serving = on_loopback(app)
        self.url = self._serving.__enter__()
        self.worker = Worker(
            self.state, self.ws, uploads, name="test-worker", poll_s=0.5, challenge="demo"
        )
        self.worker.start()

    def get(self, path: str, who: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return requests.get(f"{self.url}{path}", headers=headers, timeout=30)

    def worker_backend(self) -> Any:
        from evaluator.runner.docker_backend import DockerBackend

        return DockerBackend().client

    def stop(self) -> None:
        self.worker.stop(timeout=60)
        self._serving.__exit__(None, None, None)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    yield s
    s.stop()


def _upload_in_the_browser(driver: Any, server: Server, token: str, archive: Path) -> str:
    """Sign in and upload through the team page's form in headless Chromium; the message."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 120)
    driver.get(f"{server.url}/login")
    driver.find_element(By.NAME, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form button").click()
    wait.until(ready.url_matches(r"/team$"))
    wait.until(ready.presence_of_element_located((By.NAME, "file"))).send_keys(str(archive))
    driver.find_element(By.CSS_SELECTOR, "#upload button").click()
    return str(wait.until(ready.presence_of_element_located((By.ID, "message"))).text)


def test_uploads_run_sandboxed_and_reach_the_board(
    server: Server, archive: Path, driver: Any, test_images: dict[str, str], victim: str
) -> None:
    from evaluator.server.client import submit_to_server

    ids = {
        "alpha": int(submit_to_server(server.url, server.tokens["alpha"], archive, "final")["id"])
    }
    with archive.open("rb") as fh:  # the other team with a plain multipart POST
        got = requests.post(
            f"{server.url}/api/submissions",
            headers={"Authorization": f"Bearer {server.tokens['beta']}"},
            data={"phase": "final"}, files={"file": ("algo.tar", fh)}, timeout=300,
        )  # fmt: skip
    assert got.status_code == 201, got.text
    ids["beta"] = got.json()["id"]
    message = _upload_in_the_browser(driver, server, server.tokens["alpha"], archive)
    assert message.startswith("submission ") and message.endswith(" received"), message
    ids["alpha-form"] = int(message.split()[1])
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        states = [s["status"] for s in server.get("/api/submissions", "org").json()]
        if all(s in ("finished", "failed", "error") for s in states):
            break
        time.sleep(2)
    for key, sid in ids.items():
        record = server.state.submission(sid)
        assert record.status == "finished", (record.error_class, record.error)
        assert record.entry == f"{key.split('-')[0]}.s{sid}" and record.run_id is not None
    # each team sees its own submissions only; the organiser every one
    mine = [s["id"] for s in server.get("/api/submissions", "alpha").json()]
    assert mine == [ids["alpha"], ids["alpha-form"]]
    assert server.get(f"/api/submissions/{ids['beta']}", "alpha").status_code == 404
    assert len(server.get("/api/submissions", "org").json()) == 3
    # logs: the hidden phase shows a team none, not even its own; the organiser every run's
    assert server.get(f"/api/submissions/{ids['alpha']}/logs", "alpha").status_code == 403
    assert server.get(f"/api/submissions/{ids['beta']}/logs", "alpha").status_code == 404
    logs = server.get(f"/api/submissions/{ids['alpha']}/logs", "org")
    assert logs.status_code == 200 and logs.json()["lines"]
    # scores: a team its own run's means of the hidden phase's public metrics; the organiser
    # every metric, the team and the error message
    (own,) = [s for s in server.get("/api/submissions", "alpha").json() if s["id"] == ids["alpha"]]
    assert set(own["scores"]) == {"dice"} and "error" not in own and "team" not in own
    every = {s["id"]: s for s in server.get("/api/submissions", "org").json()}
    assert {"dice", "hd95", "cc_dice"} <= set(every[ids["alpha"]]["scores"])
    assert every[ids["beta"]]["team"] == "beta" and every[ids["beta"]]["error"] is None
    assert every[ids["alpha"]]["scores"]["dice"] == own["scores"]["dice"]
    # per-case results: the organiser only (on a hidden phase)
    assert server.get(f"/api/submissions/{ids['alpha']}/cases", "alpha").status_code == 403
    assert server.get(f"/api/submissions/{ids['alpha']}/cases").status_code == 401
    cases = server.get(f"/api/submissions/{ids['alpha']}/cases", "org").json()["results"]
    assert {r["metric"] for r in cases} >= {"dice", "hd95"} and len(
        {r["case_id"] for r in cases}
    ) >= 1
    # each job released its hold on the loaded image; the host's own tag untouched
    from evaluator.server.worker import HOLD_REPOSITORY

    docker = server.worker_backend()
    holds = [t for image in docker.images.list(name=HOLD_REPOSITORY) for t in image.tags]
    assert not [t for t in holds if t.startswith(f"{HOLD_REPOSITORY}:demo-s")]
    assert docker.images.get(test_images["baseline"])
    assert docker.images.get(VICTIM).id == victim  # three uploads tagged it: never moved
    driver.refresh()  # the team page lists both, finished
    assert driver.page_source.count(">finished</td>") == 2
    # the public board: both teams, the hidden phase's public metric only
    board = server.get("/").text
    assert "alpha" in board and "beta" in board
    section = board[board.index('id="phase-final"') :]
    assert "<th>dice</th>" in section and "<th>iou</th>" not in section
    # the numbers are the runs' own: the mean over cases of each case's mean Dice over labels
    import re

    from evaluator.store import Store

    with Store.open(workspace=server.ws) as db:
        for team, sid in ((k, v) for k, v in ids.items() if "-" not in k):
            rows = db.results_frame(run_ids=[server.state.submission(sid).run_id])
            dice = rows[rows["metric"] == "dice"].groupby("case_id")["value"].mean().mean()
            row = re.search(rf"<td class=\"text\">{team}</td>.*?</tr>", section)
            assert row is not None and f"<td>{dice:.3f}</td>" in row.group(0), row
            assert every[sid]["scores"]["dice"] == pytest.approx(dice)


def _serve(ws: Workspace, port: int) -> Any:
    import os
    import subprocess
    import sys

    cli = "from evaluator.cli import main; main()"
    args = ["serve", "-c", "demo", "--port", str(port), "--stale-after", "3", "-w", str(ws.root)]
    proc = subprocess.Popen(
        [sys.executable, "-c", cli, *args], cwd=Path(__file__).parents[2],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        env={**os.environ, "CCBENCH_STORE": ""},
    )  # fmt: skip
    for _ in range(200):
        try:
            requests.get(f"http://127.0.0.1:{port}/api/challenge", timeout=1)
            return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(proc.stderr.read().decode() if proc.stderr else "no server")


def test_a_server_killed_mid_run_loses_no_job(
    tmp_path: Path, archive: Path, docker_backend: Any
) -> None:
    import os
    import signal

    from evaluator.datasets.phantoms import write_phantoms
    from evaluator.datasets.splits import make_split
    from evaluator.server.challenge import ChallengeSpec
    from evaluator.server.state import ServerState
    from evaluator.store import Store

    ws = Workspace(tmp_path / "ws").ensure()
    write_phantoms("autopet", workspace=ws, cases=10, size="small", seed=2)
    make_split("autopet-phantom", workspace=ws, seed=0)
    state = ServerState(Store.open(workspace=ws))
    state.create_challenge(ChallengeSpec.model_validate(SPEC), actor="org")
    state.set_open("demo", True, actor="org")
    state.add_team("demo", "alpha", actor="org")
    token = state.issue_token("demo", role="team", team="alpha", actor="org")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    first = _serve(ws, port)
    try:
        from evaluator.server.client import submit_to_server

        sid = submit_to_server(f"http://127.0.0.1:{port}", token, archive, "final")["id"]
        deadline = time.monotonic() + 120
        while state.submission(sid).status != "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert state.submission(sid).status == "running"
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the server dies mid-run, job and all
        first.wait()
    second = _serve(ws, port)
    try:
        deadline = time.monotonic() + 300
        while state.submission(sid).status == "running" and time.monotonic() < deadline:
            time.sleep(0.5)
        record = state.submission(sid)
        assert record.status == "finished", (record.error_class, record.error)
        job = state.claim_job("probe")  # nothing left to claim: the job was done
        assert job is None
        with state.store.engine.connect() as conn:
            attempts = conn.exec_driver_sql("SELECT attempts, state FROM jobs").all()
        assert [tuple(a) for a in attempts] == [(2, "done")]  # claimed again after the kill
        from evaluator.runner.docker_backend import labelled_containers

        left = labelled_containers(docker_backend.client, "ccbench.entry")
        assert not [c for c in left if c.labels.get("ccbench.entry") == f"alpha.s{sid}"]
        from evaluator.server.worker import HOLD_REPOSITORY

        holds = [t for i in docker_backend.client.images.list(name=HOLD_REPOSITORY) for t in i.tags]
        assert not [t for t in holds if t.startswith(f"{HOLD_REPOSITORY}:demo-s{sid}-")]
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=30)
