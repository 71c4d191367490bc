"""A challenge server on loopback for the server's tests: uvicorn, a real SQLite store."""

from __future__ import annotations

import socket
from pathlib import Path

import requests

from evaluator.server.challenge import ChallengeSpec
from evaluator.server.loopback import on_loopback
from evaluator.server.state import ServerState
from evaluator.store import Store

SPEC = {
    "name": "demo",
    "upload": {"max_archive_mb": 1},
    "phases": [
        {
            "name": "final", "task": "autopet-phantom", "split": "test",
            "start": "2026-01-01T00:00:00Z", "end": "2099-01-01T00:00:00Z",
            "limits": {"per_day": 2},
        },
        {
            "name": "sanity", "task": "autopet-phantom", "split": "test", "hidden": False,
            "start": "2026-01-01T00:00:00Z", "end": "2099-01-01T00:00:00Z",
        },
    ],
}  # fmt: skip


class Server:
    def __init__(self, tmp_path: Path, **options: float) -> None:
        from evaluator.server.app import create_app

        self.state = ServerState(Store.open(f"sqlite:///{tmp_path / 'server.sqlite'}"))
        self.state.create_challenge(ChallengeSpec.model_validate(SPEC), actor="org")
        self.state.set_open("demo", True, actor="org")
        self.tokens = {}
        for team in ("alpha", "beta"):
            self.state.add_team("demo", team, actor="org")
            self.tokens[team] = self.state.issue_token("demo", role="team", team=team, actor="o")
        self.tokens["org"] = self.state.issue_token("demo", role="organiser", team=None, actor="o")
        self.uploads = tmp_path / "uploads"
        app = create_app(self.state, "demo", self.uploads, secret=b"k" * 32, **options)
        self._serving = on_loopback(app)
        self.url = self._serving.__enter__()

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def submit(self, who: str | None, data: bytes, phase: str = "final") -> requests.Response:
        headers = self.auth(who) if who else {}
        files = {"file": ("algo.tar.gz", data, "application/gzip")}
        return requests.post(
            f"{self.url}/api/submissions", headers=headers, data={"phase": phase}, files=files,
            timeout=30,
        )  # fmt: skip

    def stop(self) -> None:
        self._serving.__exit__(None, None, None)


def raw_upload(url: str, headers: dict[str, str], body: bytes, *, length: int) -> socket.socket:
    """Open a connection and send a POST to /api/submissions whose ``Content-Length`` says
    ``length`` but whose body is only ``body`` so far (the rest never comes)."""
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=10)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    conn.sendall(
        f"POST /api/submissions HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n"
        f"Content-Type: multipart/form-data; boundary=XyZ\r\n{head}\r\n".encode()
        + body
    )
    return conn


def status_of(conn: socket.socket) -> int:
    """The HTTP status the server answered on ``conn`` (waits for it)."""
    first = conn.recv(4096).split(b"\r\n", 1)[0]
    return int(first.split()[1])


PHASE_FIELD = b'--XyZ\r\nContent-Disposition: form-data; name="phase"\r\n\r\nfinal\r\n'
FILE_HEAD = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.tar"\r\n\r\n'
