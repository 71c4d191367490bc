"""The HTTP API on a real uvicorn server on loopback, a real SQLite store, real uploads."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import requests

from tests.server.loopback_server import FILE_HEAD, PHASE_FIELD, Server, raw_upload, status_of


def test_a_team_uploads_and_sees_only_its_own(server: Server) -> None:
    archive = b"not really a docker archive" * 100
    got = server.submit("alpha", archive)
    assert got.status_code == 201, got.text
    body = got.json()
    assert body["archive_sha256"] == hashlib.sha256(archive).hexdigest()
    assert (server.uploads / f"{body['id']}.tar").read_bytes() == archive
    assert [p.name for p in server.uploads.iterdir()] == [f"{body['id']}.tar"]  # no partials
    mine = requests.get(f"{server.url}/api/submissions", headers=server.auth("alpha"), timeout=9)
    assert [s["id"] for s in mine.json()] == [body["id"]]
    theirs = requests.get(
        f"{server.url}/api/submissions/{body['id']}", headers=server.auth("beta"), timeout=9
    )
    assert theirs.status_code == 404  # not even its existence
    assert (
        requests.get(f"{server.url}/api/submissions", headers=server.auth("beta"), timeout=9).json()
        == []
    )
    every = requests.get(f"{server.url}/api/submissions", headers=server.auth("org"), timeout=9)
    assert [s["id"] for s in every.json()] == [body["id"]]
    for name, value in {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}.items():
        assert got.headers[name] == value


def test_unauthenticated_forged_and_wrong_role_requests(server: Server) -> None:
    assert server.submit(None, b"x").status_code == 401
    forged = {"Authorization": "Bearer " + server.tokens["alpha"][:-2] + "xx"}
    assert (
        requests.get(f"{server.url}/api/submissions", headers=forged, timeout=9).status_code == 401
    )
    assert requests.get(f"{server.url}/api/submissions", timeout=9).status_code == 401
    assert server.submit("org", b"x").status_code == 403  # organisers do not submit
    assert server.submit("alpha", b"x", phase="../etc").status_code == 409
    public = requests.get(f"{server.url}/api/challenge", timeout=9)
    assert public.status_code == 200 and public.json()["phases"][0]["name"] == "final"
    assert "/api/submissions" in requests.get(f"{server.url}/openapi.json", timeout=9).text


def test_size_and_submission_limits(server: Server) -> None:
    big = server.submit("alpha", b"0" * (1024 * 1024 + 1))
    assert big.status_code == 413 and not any(server.uploads.iterdir())
    assert server.submit("alpha", b"a").status_code == 201
    assert server.submit("alpha", b"b").status_code == 201
    third = server.submit("alpha", b"c")
    assert third.status_code == 429 and "per day: 2" in third.json()["detail"]
    assert len(list(server.uploads.iterdir())) == 2


def test_failed_authentications_are_rate_limited(server: Server) -> None:
    bad = {"Authorization": "Bearer nope"}
    codes = [
        requests.get(f"{server.url}/api/submissions", headers=bad, timeout=9).status_code
        for _ in range(12)
    ]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
    # a valid token from the same address still passes: failures lock nobody else out
    mine = requests.get(f"{server.url}/api/submissions", headers=server.auth("alpha"), timeout=9)
    assert mine.status_code == 200


def test_the_pages_sign_in_and_the_form_needs_its_csrf_token(server: Server) -> None:
    import re

    public = requests.get(server.url, timeout=9)
    assert public.status_code == 200 and 'id="phase-final"' in public.text
    assert "limits: 2 per day." in public.text  # words, not a dict
    links = re.findall(r'href="(/[^"]*)"', public.text)  # the site's own
    assert links and all(requests.get(server.url + x, timeout=9).ok for x in set(links))
    assert requests.head(server.url, timeout=9).status_code == 200  # uptime checks
    assert requests.head(f"{server.url}/login", timeout=9).status_code == 200
    assert "Content-Security-Policy" in public.headers
    web = requests.Session()
    bad = web.post(f"{server.url}/login", data={"token": "nope"}, timeout=9)
    assert bad.status_code == 401 and "ccbench_session" not in web.cookies
    org = web.post(f"{server.url}/login", data={"token": server.tokens["org"]}, timeout=9)
    assert org.status_code == 401  # the pages are for teams
    ok = web.post(
        f"{server.url}/login", data={"token": server.tokens["alpha"]}, timeout=9,
        allow_redirects=False,
    )  # fmt: skip
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert server.tokens["alpha"] not in cookie  # a signed digest, never the token
    team = web.get(f"{server.url}/team", timeout=9)
    assert team.status_code == 200 and 'id="upload"' in team.text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', team.text)
    assert csrf is not None
    files = {"file": ("algo.tar.gz", b"abc", "application/gzip")}
    forged = web.post(
        f"{server.url}/team/submit", data={"csrf": "0" * 64, "phase": "final"}, files=files,
        timeout=9,
    )  # fmt: skip
    assert forged.status_code == 403
    done = web.post(
        f"{server.url}/team/submit", data={"csrf": csrf.group(1), "phase": "final"},
        files=files, timeout=9,
    )  # fmt: skip
    assert done.status_code == 200 and "received" in done.text
    assert "<td>1</td>" in done.text  # the list shows the new submission
    # another client with the cookie of no session, or a tampered one, is sent to sign in
    stranger = requests.get(f"{server.url}/team", timeout=9, allow_redirects=False)
    assert stranger.status_code == 303 and stranger.headers["location"] == "/login"
    tampered = requests.get(
        f"{server.url}/team", cookies={"ccbench_session": web.cookies["ccbench_session"] + "x"},
        timeout=9, allow_redirects=False,
    )  # fmt: skip
    assert tampered.status_code == 303
    # a second sign-in (the same token, the same second) is its own session and CSRF token
    other = requests.Session()
    other.post(f"{server.url}/login", data={"token": server.tokens["alpha"]}, timeout=9)
    assert other.cookies["ccbench_session"] != web.cookies["ccbench_session"]
    second = re.search(r'name="csrf" value="([0-9a-f]+)"', other.get(f"{server.url}/team").text)
    assert second is not None and second.group(1) != csrf.group(1)
    crossed = other.post(
        f"{server.url}/team/submit", data={"csrf": csrf.group(1), "phase": "final"},
        files=files, timeout=9,
    )  # fmt: skip
    assert crossed.status_code == 403  # one session's token does not pass for another


def test_concurrent_uploads_over_http_cannot_exceed_the_limit(server: Server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(lambda i: server.submit("beta", b"x" * 1000 * i).status_code, range(1, 9))
        )
    assert sorted(codes) == [201, 201] + [429] * 6
    assert len(list(server.uploads.iterdir())) == 2  # the refused archives are not kept


def test_a_retried_upload_with_its_idempotency_key_is_the_same_submission(server: Server) -> None:
    files = {"file": ("algo.tar.gz", b"archive", "application/gzip")}
    headers = {**server.auth("alpha"), "Idempotency-Key": "upload-7f3a"}
    first = requests.post(
        f"{server.url}/api/submissions", headers=headers, data={"phase": "final"}, files=files,
        timeout=9,
    )  # fmt: skip
    again = requests.post(
        f"{server.url}/api/submissions", headers=headers, data={"phase": "final"}, files=files,
        timeout=9,
    )  # fmt: skip
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.json()["replayed"] is True
    assert len(list(server.uploads.iterdir())) == 1  # counted once, stored once
    assert server.submit("alpha", b"other").status_code == 201  # the limit's second place is free
    beta = {**server.auth("beta"), "Idempotency-Key": "upload-7f3a"}  # keys are per team
    other = requests.post(
        f"{server.url}/api/submissions", headers=beta, data={"phase": "final"}, files=files,
        timeout=9,
    )  # fmt: skip
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    bad = {**server.auth("beta"), "Idempotency-Key": "../x"}
    refused = requests.post(
        f"{server.url}/api/submissions", headers=bad, data={"phase": "final"}, files=files,
        timeout=9,
    )  # fmt: skip
    assert refused.status_code == 400


def test_forms_posted_from_another_site_are_refused_and_nothing_is_reflected(
    server: Server,
) -> None:
    evil = {"Origin": "https://evil.example"}
    login = requests.post(
        f"{server.url}/login", data={"token": server.tokens["alpha"]}, headers=evil, timeout=9,
        allow_redirects=False,
    )  # fmt: skip
    assert login.status_code == 403 and "set-cookie" not in login.headers  # no login CSRF
    cross = {"Sec-Fetch-Site": "cross-site"}
    assert (
        requests.post(
            f"{server.url}/login", data={"token": "x"}, headers=cross, timeout=9
        ).status_code
        == 403
    )
    web = requests.Session()
    web.post(f"{server.url}/login", data={"token": server.tokens["alpha"]}, timeout=9)
    page = web.get(f"{server.url}/team?message=Email+your+token+to+x&refused=nope", timeout=9)
    assert "Email your token" not in page.text  # messages are codes, never request text
    out = web.post(f"{server.url}/logout", timeout=9, allow_redirects=False)
    assert out.status_code == 303 and "ccbench_session=" in out.headers["set-cookie"]
    assert "Max-Age=0" in out.headers["set-cookie"]  # the browser drops the session
    after = web.get(f"{server.url}/team", timeout=9, allow_redirects=False)
    assert after.status_code == 303


def test_a_busy_store_stalls_the_upload_not_every_other_client(
    server: Server, tmp_path: Path
) -> None:
    import sqlite3

    db = sqlite3.connect(str(tmp_path / "server.sqlite"), timeout=1)
    db.execute("BEGIN IMMEDIATE")  # another writer holds the store
    result: dict[str, int] = {}
    upload = threading.Thread(
        target=lambda: result.update(code=server.submit("alpha", b"x").status_code)
    )
    upload.start()
    time.sleep(0.5)  # the upload now waits for the store
    start = time.monotonic()
    public = requests.get(f"{server.url}/api/challenge", timeout=20)
    assert public.status_code == 200 and time.monotonic() - start < 5
    db.rollback()
    db.close()
    upload.join(timeout=60)
    assert result["code"] == 201


def test_the_pages_inline_script_is_allowed_by_its_hash_and_no_other(server: Server) -> None:
    import base64
    import re

    page = requests.get(server.url, timeout=9)
    (code,) = re.findall(r"<script>(.*?)</script>", page.text, flags=re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    policy = page.headers["Content-Security-Policy"]
    assert f"script-src 'self' 'sha256-{digest}'" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1]  # no other inline script
    assert "Strict-Transport-Security" not in page.headers  # plain HTTP on loopback


def test_refusals_come_before_the_body_is_read(server: Server) -> None:
    huge = 50 * 1024**3  # 50 GB announced, never sent: a server reading first would hang
    with raw_upload(server.url, {}, b"", length=huge) as conn:
        assert status_of(conn) == 401  # no token: answered at once
    with raw_upload(server.url, server.auth("alpha"), b"", length=huge) as conn:
        assert status_of(conn) == 413  # over the size limit by its Content-Length
    # within the Content-Length limit, the phase checked when the file begins
    assert server.submit("alpha", b"a").status_code == 201
    assert server.submit("alpha", b"b").status_code == 201
    with raw_upload(
        server.url, server.auth("alpha"), PHASE_FIELD + FILE_HEAD + b"x" * 100, length=1 << 20
    ) as conn:
        assert status_of(conn) == 429  # the day's limit is used: the file is not waited for
    with raw_upload(
        server.url, server.auth("beta"), PHASE_FIELD.replace(b"final", b"dev") + FILE_HEAD,
        length=1 << 20,
    ) as conn:  # fmt: skip
        assert status_of(conn) == 409
    assert sorted(p.name for p in server.uploads.iterdir()) == ["1.tar", "2.tar"]  # no partials


def test_a_team_holds_two_uploads_in_flight_at_most(server: Server) -> None:
    started = PHASE_FIELD + FILE_HEAD + b"x" * 1000
    stalled = [
        raw_upload(server.url, server.auth("alpha"), started, length=500_000) for _ in range(2)
    ]
    deadline = time.monotonic() + 10
    while len(list(server.uploads.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # both are being received
    third = server.submit("alpha", b"c")
    assert third.status_code == 429 and "in flight" in third.json()["detail"]
    assert server.submit("beta", b"d").status_code == 201  # another team is not held up
    for conn in stalled:
        conn.close()  # dropped mid-upload: their partial files go
    deadline = time.monotonic() + 10
    while len(list(server.uploads.iterdir())) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p.name for p in server.uploads.iterdir()] == ["1.tar"]
    assert server.submit("alpha", b"e").status_code == 201  # its places are free again


def test_malformed_uploads_are_400_or_415_and_leave_nothing(server: Server) -> None:
    def post(body: bytes, content_type: str = "multipart/form-data; boundary=XyZ") -> int:
        return requests.post(
            f"{server.url}/api/submissions", data=body, timeout=9,
            headers={**server.auth("alpha"), "Content-Type": content_type},
        ).status_code  # fmt: skip

    end = b"\r\n--XyZ--\r\n"
    assert post(b"phase=final", "application/x-www-form-urlencoded") == 415
    assert post(FILE_HEAD + b"data" + end) == 400  # the file before its phase
    assert post(PHASE_FIELD + end) == 400  # no file
    second = FILE_HEAD.replace(b'"a.tar"', b'"b.tar"')
    assert post(PHASE_FIELD + FILE_HEAD + b"one\r\n" + second + b"two" + end) == 400
    assert post(PHASE_FIELD.replace(b"final", b"f" * 10_000) + FILE_HEAD + b"x" + end) == 400
    assert post(b"garbage without boundaries") == 400
    assert post(PHASE_FIELD + FILE_HEAD + b"ok" + end) == 201  # the same framing, well formed
    assert [p.name for p in server.uploads.iterdir()] == ["1.tar"]
    assert (server.uploads / "1.tar").read_bytes() == b"ok"


def test_an_idempotency_key_names_one_upload_only(server: Server) -> None:
    def upload(data: bytes, key: str) -> requests.Response:
        return requests.post(
            f"{server.url}/api/submissions", data={"phase": "final"}, timeout=9,
            headers={**server.auth("alpha"), "Idempotency-Key": key},
            files={"file": ("a.tar", data, "application/x-tar")},
        )  # fmt: skip

    assert upload(b"first", "k-1").status_code == 201
    other = upload(b"second", "k-1")  # the same key, another archive: refused, not replayed
    assert other.status_code == 422 and "another upload" in other.json()["detail"]
    again = upload(b"first", "k-1")
    assert again.status_code == 201 and again.json()["replayed"] is True
    assert len(list(server.uploads.iterdir())) == 1


def test_a_stalled_upload_is_cut_off_and_frees_its_place(tmp_path: Path) -> None:
    slow = Server(tmp_path, upload_idle_s=1.0)
    try:
        started = PHASE_FIELD + FILE_HEAD + b"x" * 1000
        with raw_upload(slow.url, slow.auth("alpha"), started, length=500_000) as conn:
            begun = time.monotonic()
            assert status_of(conn) == 408  # silent for a second: cut off, not waited for
            assert time.monotonic() - begun < 5
        assert not list(slow.uploads.iterdir())  # its partial file went with it
        assert slow.submit("alpha", b"a").status_code == 201  # the place is free
    finally:
        slow.stop()


def test_the_failure_counts_stay_bounded_in_memory() -> None:
    from evaluator.server.app import _FailureLimiter

    limiter = _FailureLimiter(per_minute=2, max_clients=100)
    for i in range(1000):  # failures from a thousand (spoofed) addresses
        limiter.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter._seen) == 100
    limiter.failed("attacker")
    limiter.failed("attacker")
    assert limiter.blocked("attacker") and not limiter.blocked("10.0.0.1")


def test_a_refused_upload_closes_its_connection_and_a_truncated_one_is_400(
    server: Server,
) -> None:
    with raw_upload(server.url, {}, b"", length=10**12) as conn:
        answer = b""
        while chunk := conn.recv(65536):  # the server closes: no body is waited for
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 401") and b"connection: close" in answer.lower()
    body = PHASE_FIELD + FILE_HEAD + b"cut short, no closing boundary"
    cut = requests.post(
        f"{server.url}/api/submissions", data=body, timeout=9,
        headers={**server.auth("alpha"), "Content-Type": "multipart/form-data; boundary=XyZ"},
    )  # fmt: skip
    assert cut.status_code == 400 and "closing boundary" in cut.json()["detail"]
    assert not list(server.uploads.iterdir())


def test_an_internal_error_is_a_plain_500_with_the_security_headers(tmp_path: Path) -> None:
    from evaluator.server.app import SECURITY_HEADERS, create_app
    from evaluator.server.loopback import on_loopback

    spare = Server(tmp_path / "a")
    spare.stop()
    app = create_app(spare.state, "demo", tmp_path / "uploads", secret=b"k" * 32)

    def boom() -> None:
        raise RuntimeError("secret detail")

    app.add_api_route("/boom", boom)
    with on_loopback(app) as url:
        got = requests.get(f"{url}/boom", timeout=9)
    assert got.status_code == 500 and "secret detail" not in got.text
    for name, value in SECURITY_HEADERS.items():
        assert got.headers[name] == value


def test_a_killed_servers_partial_files_are_swept(tmp_path: Path) -> None:
    import os

    from evaluator.server.app import sweep_partials

    old = [tmp_path / ".upload-abc", tmp_path / ".7.untagged.tar"]
    fresh, kept = tmp_path / ".upload-live", tmp_path / "7.tar"
    for path in [*old, fresh, kept]:
        path.write_bytes(b"x")
    for path in [*old, kept]:
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    assert sorted(sweep_partials(tmp_path)) == sorted(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".upload-live", "7.tar"]


def test_a_team_reads_its_per_case_results_on_a_phase_that_is_not_hidden(server: Server) -> None:
    public = server.submit("alpha", b"a", phase="sanity").json()["id"]
    hidden = server.submit("alpha", b"b").json()["id"]

    def cases(sid: int, who: str) -> requests.Response:
        return requests.get(
            f"{server.url}/api/submissions/{sid}/cases", headers=server.auth(who), timeout=9
        )

    mine = cases(public, "alpha")
    assert mine.status_code == 200 and mine.json() == {"id": public, "results": []}
    assert cases(hidden, "alpha").status_code == 403  # the hidden test set: aggregates only
    assert cases(public, "beta").status_code == 404  # another team's: not even its existence
    boss = cases(hidden, "org")
    assert boss.status_code == 200 and "error" in boss.json()
    listed = requests.get(f"{server.url}/api/submissions", headers=server.auth("org"), timeout=9)
    assert {s["team"] for s in listed.json()} == {"alpha"}
