"""``ccbench submit --server``: the team's client against a real server on loopback."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.errors import SubmissionError
from evaluator.server.client import MultipartFile, submit_to_server
from tests.server.loopback_server import FILE_HEAD, PHASE_FIELD, Server, raw_upload


def test_the_client_streams_an_archive_and_names_every_refusal(
    server: Server, tmp_path: Path
) -> None:
    archive = tmp_path / "algo.tar.gz"
    archive.write_bytes(bytes(range(256)) * 2000)  # 512 kB, under the 1 MB limit
    got = submit_to_server(server.url, server.tokens["alpha"], archive, "final")
    assert got["status"] == "queued" and got["bytes"] == archive.stat().st_size
    assert got["archive_sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert (server.uploads / f"{got['id']}.tar").read_bytes() == archive.read_bytes()
    with pytest.raises(SubmissionError, match="no phase 'dev'; phases: final, sanity"):
        submit_to_server(server.url, server.tokens["alpha"], archive, "dev")
    with pytest.raises(SubmissionError, match="token was refused"):
        submit_to_server(server.url, "ccb_team_forged", archive, "final")
    big = tmp_path / "big.tar"
    big.write_bytes(b"0" * (1024 * 1024 + 1))
    with pytest.raises(SubmissionError, match="over the server's 1 MB"):
        submit_to_server(server.url, server.tokens["alpha"], big, "final")
    submit_to_server(server.url, server.tokens["alpha"], archive, "final")
    said: list[str] = []
    with pytest.raises(SubmissionError, match=r"HTTP 429\): .*per day: 2"):
        submit_to_server(server.url, server.tokens["alpha"], archive, "final", say=said.append)
    assert not [line for line in said if "busy" in line]  # the limit is not tried again
    with pytest.raises(SubmissionError, match="cannot connect"):
        submit_to_server("http://127.0.0.1:9", "t", archive, "final")
    with pytest.raises(SubmissionError, match="plain http would send the token"):
        submit_to_server("http://example.org", "t", archive, "final")
    assert len(list(server.uploads.iterdir())) == 2


def test_a_busy_server_is_tried_again_with_the_same_key(server: Server, tmp_path: Path) -> None:
    archive = tmp_path / "algo.tar"
    archive.write_bytes(b"layers" * 1000)
    started = PHASE_FIELD + FILE_HEAD + b"x"
    stalled = [raw_upload(server.url, server.auth("beta"), started, length=9000) for _ in "ab"]
    said: list[str] = []
    threading.Timer(1.0, lambda: [conn.close() for conn in stalled]).start()
    got = submit_to_server(
        server.url, server.tokens["beta"], archive, "final", max_wait_s=0.5, say=said.append
    )
    assert got["status"] == "queued" and not got.get("replayed")
    assert any("busy (HTTP 429)" in line for line in said)  # refused while two were in flight
    assert len(server.state.submissions(server.state.authenticate(server.tokens["beta"]))) == 1


def test_the_multipart_body_is_what_a_parser_reads(tmp_path: Path) -> None:
    from python_multipart import parse_form

    archive = tmp_path / "a b\u00e9.tar"
    archive.write_bytes(b"\r\n--not-the-boundary\r\n" * 100)
    body = MultipartFile({"phase": "final"}, "file", archive)
    raw = b"".join(iter(lambda: body.read(777), b""))
    assert len(raw) == len(body)
    fields: dict[bytes, bytes] = {}
    files: dict[bytes, bytes] = {}
    parse_form(
        {"Content-Type": body.content_type, "Content-Length": str(len(raw))},
        __import__("io").BytesIO(raw),
        lambda f: fields.update({f.field_name: f.value}),
        lambda f: files.update({f.field_name: (f.file_object.seek(0), f.file_object.read())[1]}),
    )
    assert fields == {b"phase": b"final"}
    assert files == {b"file": archive.read_bytes()}


def test_ccbench_submit_server_with_the_token_from_the_environment(
    server: Server, tmp_path: Path
) -> None:
    archive = tmp_path / "algo.tar"
    archive.write_bytes(b"x" * 100)
    runner = CliRunner()
    env = {"CCBENCH_TOKEN": server.tokens["alpha"]}
    args = ["submit", "--server", server.url, "--image-file", str(archive), "--phase", "final"]
    done = runner.invoke(app, args, env=env)
    assert done.exit_code == 0, done.output
    assert "submission 1 to phase final: queued" in done.output
    refused = runner.invoke(app, [*args, "--name", "x"], env=env)
    assert refused.exit_code != 0 and "--server uploads --image-file" in refused.output
    no_token = runner.invoke(app, args, env={"CCBENCH_TOKEN": ""})
    assert no_token.exit_code != 0 and "token" in no_token.output
    local = runner.invoke(app, ["submit", "--image-file", str(archive)])
    assert local.exit_code != 0 and "--name and --task" in local.output
    threading.Timer(  # the second upload ends (failed) while the client waits for it
        1.0, lambda: server.state.set_submission(2, status="failed", error_class="ImageError")
    ).start()
    waited = runner.invoke(app, [*args, "--wait"], env=env)
    assert waited.exit_code == 1, waited.output
    assert "submission 2: failed (ImageError)" in waited.output
