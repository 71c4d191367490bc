"""The web application of ``ccbench serve`` (FastAPI): the HTTP API teams and organisers call.

Every request is authorised by role: the public (no token), a team, the organiser. A token comes
as ``Authorization: Bearer <token>`` (:mod:`evaluator.server.auth`); a missing or unknown one is
401 on endpoints that need one, a token of the wrong role 403, and another team's submission is
404 (its existence is not revealed). Failed authentications are rate limited per client address
(429). Every answer carries security headers; nothing a request names reaches the file system:
uploads are written under the server's own folder by submission id only.

This module imports FastAPI: only ``ccbench serve`` imports it (the ``serve`` extra).

Endpoints (the OpenAPI description is served at ``/openapi.json``):

* ``GET /api/challenge``: the challenge's phases, dates and limits (public);
* ``POST /api/submissions``: multipart ``phase`` + ``file`` (a ``docker save`` archive), a team
  only; streamed to disk with the size limit and hashed while it arrives; 201 with the
  submission, 413 over the size limit, 429 over the phase's submission limit. With an
  ``Idempotency-Key`` header a retried upload (after a dropped connection) answers the first
  one's submission instead of counting again;
* ``GET /api/submissions``: a team's own submissions (the organiser: all);
* ``GET /api/submissions/{id}``: one of them;
* ``GET /api/submissions/{id}/logs``: its container logs (the organiser; its team only on a
  phase that is not hidden);
* ``GET /api/submissions/{id}/cases``: its per-case results (the organiser; its team only on a
  phase that is not hidden).
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run time

import base64
import contextlib
import hashlib
import os
import re
import shutil
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import JSONResponse

from evaluator import __version__
from evaluator.errors import StoreError
from evaluator.evaluate.summary import jsonable
from evaluator.server.challenge import ChallengeError
from evaluator.server.state import LimitReached, Principal, ServerState, Submission
from evaluator.server.upload import Received, receive_archive

__all__ = ["SECURITY_HEADERS", "create_app"]

#: Headers on every answer.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
}
#: Failed authentications allowed per client address per minute before 429.
AUTH_FAILURES_PER_MINUTE = 10
#: Uploads one team may have in flight, and the server in all.
UPLOADS_PER_TEAM = 2
UPLOADS_AT_ONCE = 8
#: Free disk an upload leaves to the rest of the host, bytes (besides twice the archive limit).
DISK_RESERVE_BYTES = 1 << 30
_KEY_REUSED = "this Idempotency-Key was used for another upload (another phase or archive)"
#: The upload's body in the OpenAPI description (the endpoint reads it itself, streamed).
_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["phase", "file"],
                "properties": {
                    "phase": {"type": "string", "description": "The phase (before the file)."},
                    "file": {
                        "type": "string", "format": "binary",
                        "description": "A `docker save` archive (.tar or .tar.gz).",
                    },
                },
            }
        }
    },
}  # fmt: skip
#: An ``Idempotency-Key`` header: a retried upload with the same key is the same submission.
_KEY = re.compile(r"[A-Za-z0-9_.-]{1,100}")


class _FailureLimiter:
    """Counts failed authentications per client address in a sliding minute."""

    def __init__(self, per_minute: int, max_clients: int = 10_000) -> None:
        self.per_minute, self.max_clients = per_minute, max_clients  # bounded memory
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def blocked(self, client: str) -> bool:
        with self._lock:
            window = self._seen.get(client)
            if window is None:
                return False
            while window and window[0] < time.monotonic() - 60:
                window.popleft()
            if not window:
                del self._seen[client]  # no memory kept for addresses that stopped failing
            return len(window) >= self.per_minute

    def failed(self, client: str) -> None:
        with self._lock:
            now = time.monotonic()
            if client not in self._seen and len(self._seen) >= self.max_clients:
                for stale in [c for c, w in self._seen.items() if not w or w[-1] < now - 60]:
                    del self._seen[stale]  # addresses that stopped failing go first
                if len(self._seen) >= self.max_clients:  # then the longest quiet one
                    del self._seen[min(self._seen, key=lambda c: self._seen[c][-1])]
            self._seen[client].append(now)


def _submission_json(sub: Submission) -> dict[str, Any]:
    return {
        "id": sub.id,
        "phase": sub.phase,
        "status": sub.status,
        "error_class": sub.error_class,
        "created_at": sub.created_at.isoformat() + "Z",
        "archive_sha256": sub.archive_sha256,
    }


def sweep_partials(uploads: Path, *, older_than_s: float = 600.0) -> list[Path]:
    """Delete what a killed server left in ``uploads``: partial uploads (``.upload-*``) and
    untagged copies (``.*.untagged.tar``) untouched for ``older_than_s`` seconds (a live upload
    writes at least every minute, or is cut off). Returns what was deleted."""
    cutoff = time.time() - older_than_s
    gone = []
    for path in [*uploads.glob(".upload-*"), *uploads.glob(".*.untagged.tar")]:
        with contextlib.suppress(OSError):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                gone.append(path)
    return gone


class _UploadSlots:
    """Uploads in flight, per team and in all: one over either is refused (429) before its
    body is read (a team cannot hold the server's connections or disk with parallel uploads)."""

    def __init__(self, per_team: int, at_once: int) -> None:
        self.per_team, self.at_once = per_team, at_once
        self._held: dict[int | None, int] = defaultdict(int)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def take(self, team_id: int | None) -> Iterator[None]:
        with self._lock:
            if self._held[team_id] >= self.per_team or sum(self._held.values()) >= self.at_once:
                raise HTTPException(
                    429, "too many uploads in flight; try again shortly",
                    headers={"Retry-After": "10"},
                )  # fmt: skip
            self._held[team_id] += 1
        try:
            yield
        finally:
            with self._lock:
                self._held[team_id] -= 1
                if not self._held[team_id]:
                    del self._held[team_id]


def create_app(
    state: ServerState,
    challenge: str,
    uploads: Path,
    *,
    secret: bytes,
    upload_idle_s: float = 60.0,
) -> FastAPI:
    """The application serving ``challenge`` from ``state``; uploads go under ``uploads``.

    ``secret`` signs the pages' session cookies and their CSRF tokens (``ccbench serve`` keeps
    one per challenge in the workspace, readable by its owner only). An upload silent for
    ``upload_idle_s`` seconds is cut off (408).
    """
    app = FastAPI(title=f"ccbench challenge {challenge}", docs_url=None, redoc_url=None)
    limiter = _FailureLimiter(AUTH_FAILURES_PER_MINUTE)
    uploads.mkdir(parents=True, exist_ok=True)
    sweep_partials(uploads)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Any:
        try:
            response = await call_next(request)
        except Exception:  # a bug: a plain 500 with the headers (no traceback to the client)
            response = JSONResponse({"detail": "internal error"}, status_code=500)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.method == "POST" and response.status_code >= 400:
            # a refused upload: close rather than read (and throw away) the rest of its body
            response.headers["Connection"] = "close"
        if request.url.scheme == "https":  # behind the TLS proxy: browsers keep to HTTPS
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    @app.exception_handler(StoreError)
    async def store_error(request: Request, err: StoreError) -> JSONResponse:
        headers = dict(SECURITY_HEADERS) | {"Retry-After": "30"}
        return JSONResponse(
            {"detail": "the server's store is busy; try again shortly"}, status_code=503,
            headers=headers,
        )  # fmt: skip

    @app.exception_handler(ChallengeError)
    async def challenge_error(request: Request, err: ChallengeError) -> JSONResponse:
        status = 429 if isinstance(err, LimitReached) else 409
        return JSONResponse({"detail": str(err)}, status_code=status)

    def principal(request: Request) -> Principal | None:
        """The token's holder, None without a token; 401 for an unknown one, 429 when the
        client has failed too often."""
        header = request.headers.get("authorization")
        if header is None:
            return None
        client = request.client.host if request.client else "?"
        scheme, _, token = header.partition(" ")
        who = state.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if who is not None and who.challenge == challenge:
            return who  # a valid token always passes: failures elsewhere lock nobody out
        if limiter.blocked(client):
            raise HTTPException(429, "too many failed authentications; wait a minute")
        limiter.failed(client)
        raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})

    Who = Annotated[Principal | None, Depends(principal)]

    def need(who: Principal | None, *roles: str) -> Principal:
        if who is None:
            raise HTTPException(401, "a token is needed", headers={"WWW-Authenticate": "Bearer"})
        if who.role not in roles:
            raise HTTPException(403, f"for {' or '.join(roles)} tokens only")
        return who

    @app.get("/api/challenge")
    def challenge_info() -> dict[str, Any]:
        _, spec, is_open = state.challenge(challenge)
        return {
            "name": spec.name,
            "title": spec.title,
            "open": is_open,
            "upload": spec.upload.model_dump(),
            "phases": [
                {
                    "name": p.name, "task": p.task, "start": p.start.isoformat(),
                    "end": p.end.isoformat(), "limits": p.limits.model_dump(), "hidden": p.hidden,
                }
                for p in spec.phases
            ],
        }  # fmt: skip

    slots = _UploadSlots(UPLOADS_PER_TEAM, UPLOADS_AT_ONCE)

    async def receive(
        request: Request,
        team: Principal,
        key: str | None,
        check_form: Callable[[dict[str, str]], None] | None = None,
    ) -> dict[str, Any]:
        """Receive an upload: every check that needs no body first (the key, the team's
        uploads in flight, free disk), the fields before the file (``check_form``, the phase,
        the limits), then the file streamed to disk under the size limit and hashed, then the
        submission recorded with it (the limits checked again, atomically). Store and disk
        calls run in worker threads: they never block the event loop."""
        from starlette.concurrency import run_in_threadpool

        if key is not None and not _KEY.fullmatch(key):
            raise HTTPException(400, "Idempotency-Key: 1 to 100 of A-Z a-z 0-9 _ . -")
        _, spec, _ = await run_in_threadpool(state.challenge, challenge)
        limit = spec.upload.max_archive_mb * 1024 * 1024
        with slots.take(team.team_id):
            if shutil.disk_usage(uploads).free < 2 * limit + DISK_RESERVE_BYTES:
                raise HTTPException(507, "the server is short of disk space; try again later")
            earlier = (
                None if key is None else await run_in_threadpool(state.submission_by_key, team, key)
            )

            async def before_file(fields: dict[str, str]) -> None:
                if check_form is not None:
                    check_form(fields)
                phase = fields.get("phase")
                if not phase:
                    raise HTTPException(400, "the field 'phase' must come before the file")
                if earlier is not None:
                    if earlier.phase != phase:
                        raise HTTPException(422, _KEY_REUSED)
                    return
                await run_in_threadpool(state.may_submit, team, phase)

            got = await receive_archive(
                request, folder=uploads, max_bytes=limit, before_file=before_file,
                idle_s=upload_idle_s,
            )  # fmt: skip
            try:
                return await run_in_threadpool(record, team, got, key, earlier)
            finally:
                got.path.unlink(missing_ok=True)

    def record(
        team: Principal, got: Received, key: str | None, earlier: Submission | None
    ) -> dict[str, Any]:
        """Record the received upload as a submission (its archive moved to ``<id>.tar``
        before the job can be claimed), or answer the first upload made with ``key``."""
        if earlier is None:
            try:
                sid = state.create_submission(
                    team, got.fields["phase"], key=key, archive=(got.sha256, got.size),
                    before_commit=lambda sid: os.replace(got.path, uploads / f"{sid}.tar"),
                )  # fmt: skip
            except (StoreError, LimitReached):  # the same key's twin may have won the race
                earlier = state.submission_by_key(team, key) if key is not None else None
                if earlier is None:
                    raise
            else:
                return {**_submission_json(state.submission(sid)), "bytes": got.size}
        if earlier.archive_sha256 != got.sha256:
            raise HTTPException(422, _KEY_REUSED)
        return {**_submission_json(earlier), "bytes": earlier.archive_bytes, "replayed": True}

    @app.post(
        "/api/submissions",
        status_code=201,
        openapi_extra={"requestBody": _UPLOAD_BODY},
    )
    async def submit(request: Request, who: Who) -> dict[str, Any]:
        """Upload a ``docker save`` archive (``multipart/form-data``: the field ``phase``, then
        the file ``file``) to a phase; a team only."""
        return await receive(request, need(who, "team"), request.headers.get("idempotency-key"))

    @app.get("/api/submissions")
    def list_submissions(who: Who) -> list[dict[str, Any]]:
        """A team's own submissions (the organiser: every one), each with its run's scores."""
        holder = need(who, "team", "organiser")
        return described(state, challenge, holder, state.submissions(holder))

    @app.get("/api/submissions/{sid}")
    def one_submission(sid: int, who: Who) -> dict[str, Any]:
        holder = need(who, "team", "organiser")
        return described(state, challenge, holder, [visible(holder, sid)])[0]

    def visible(holder: Principal, sid: int) -> Submission:
        """The submission when ``holder`` may see it (404 otherwise, existence hidden)."""
        for sub in state.submissions(holder):
            if sub.id == sid:
                return sub
        raise HTTPException(404, "no such submission")

    @app.get("/api/submissions/{sid}/logs")
    def submission_logs(sid: int, who: Who) -> dict[str, Any]:
        """The container logs of a submission's run: the organiser always; its team only on a
        phase that is not hidden (logs can carry test data)."""
        holder = need(who, "team", "organiser")
        record = visible(holder, sid)
        _, spec, _ = state.challenge(challenge)
        if holder.role == "team" and spec.phase(record.phase).hidden:
            raise HTTPException(403, f"phase '{record.phase}' is hidden: no logs for teams")
        lines = [] if record.run_id is None else state.store.logs(record.run_id)
        return {"id": sid, "lines": [{"case": c, "stream": st, "message": m} for c, st, m in lines]}

    @app.get("/api/submissions/{sid}/cases")
    def submission_cases(sid: int, who: Who) -> dict[str, Any]:
        """Per-case results of a submission's run: the organiser always; its team only on a
        phase that is not hidden (per-case values would reveal the hidden test set)."""
        holder = need(who, "team", "organiser")
        record = visible(holder, sid)
        _, spec, _ = state.challenge(challenge)
        if holder.role == "team" and spec.phase(record.phase).hidden:
            raise HTTPException(403, f"phase '{record.phase}' is hidden: aggregates only")
        answer: dict[str, Any] = {"id": sid, "results": []}
        if holder.role == "organiser":
            answer["error"] = record.error
        if record.run_id is None:
            return answer
        frame = state.store.results_frame(run_ids=[record.run_id])
        rows = frame[["case_id", "label", "metric", "value"]].to_dict("records")
        for row in rows:
            row["value"] = jsonable(float(row["value"]))
        return {**answer, "results": rows}

    _pages(app, state, challenge, secret, limiter, receive)
    return app


SESSION_COOKIE = "ccbench_session"
#: What the team page may say after an upload (codes, never text from the request).
_MESSAGES = {
    "limit": "Not accepted: the phase's submission limit is reached.",
    "upload": "Not accepted: the phase is closed, unknown, or the archive too large.",
    "busy": "Not accepted now: the server is busy with other uploads; try again shortly.",
}
#: How long a page session lasts, seconds.
SESSION_MAX_AGE_S = 12 * 3600


def _pages(
    app: FastAPI,
    state: ServerState,
    challenge: str,
    secret: bytes,
    limiter: _FailureLimiter,
    receive: Any,
) -> None:
    """The HTML pages: the public leaderboard, sign-in, a team's submissions and upload form.

    A team signs in with its token; the session cookie (HttpOnly, SameSite=Strict) holds the
    token's digest and a nonce (each sign-in its own session), signed with ``secret``, never
    the token. Every form carries a CSRF token, an
    HMAC of the session under ``secret``, checked on POST (403 otherwise).
    """
    import hmac

    import jinja2
    from fastapi.responses import HTMLResponse, RedirectResponse
    from itsdangerous import BadSignature, URLSafeTimedSerializer

    from evaluator.server.auth import hash_token

    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.PackageLoader("evaluator.server", "templates"),
                jinja2.PackageLoader("leaderboards", "templates"),
            ]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    signer = URLSafeTimedSerializer(secret, salt="ccbench-session")

    def csrf_of(cookie: str) -> str:
        """The CSRF token of a session: new at each sign-in, void when the session ends."""
        return hmac.new(secret, b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()

    def session(request: Request) -> tuple[Principal, str] | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            held = signer.loads(cookie, max_age=SESSION_MAX_AGE_S)
        except BadSignature:
            return None
        digest = held.get("token") if isinstance(held, dict) else None
        if not isinstance(digest, str):
            return None
        who = state.holder(digest)
        if who is None or who.challenge != challenge or who.role != "team":
            return None
        return who, cookie

    def page(name: str, request: Request, status: int = 200, **context: Any) -> HTMLResponse:
        _, spec, _ = state.challenge(challenge)
        held = session(request)
        html = env.get_template(name).render(
            title=spec.title or spec.name, challenge=spec.name,
            who=held[0].team if held else None, root="/", generated="", version=__version__,
            **context,
        )  # fmt: skip
        # the pages' own inline script (table sorting) runs, no other: its hash in the CSP
        hashes = " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"
            for code in re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
        )
        policy = SECURITY_HEADERS["Content-Security-Policy"] + f"; script-src 'self' {hashes}"
        return HTMLResponse(
            html, status_code=status, headers={"Content-Security-Policy": policy.strip()}
        )

    @app.api_route(
        "/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False
    )
    def index(request: Request) -> HTMLResponse:
        _, _, is_open = state.challenge(challenge)
        return page(
            "server-index.html", request, phases=leaderboard_rows(state, challenge),
            open_text="Taking submissions." if is_open else "Not taking submissions.",
        )  # fmt: skip

    @app.api_route(
        "/login", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False
    )
    def login_form(request: Request) -> HTMLResponse:
        return page("server-login.html", request, error="")

    def same_origin(request: Request) -> None:
        """Refuse a form posted from another site (login CSRF): the browser's ``Origin`` (or
        ``Sec-Fetch-Site``) must be this server."""
        origin = request.headers.get("origin")
        site = request.headers.get("sec-fetch-site")
        own = f"{request.url.scheme}://{request.url.netloc}"
        # browsers that send Sec-Fetch-Site say it; older ones send Origin ("null" is opaque)
        same = site in ("same-origin", "none") if site is not None else origin in (None, own)
        if not same:
            raise HTTPException(403, "a form of this site only")

    @app.post("/logout", response_model=None)
    def logout(request: Request) -> Any:
        same_origin(request)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.post("/login", response_model=None)
    def login(request: Request, token: Annotated[str, Form()]) -> Any:
        same_origin(request)
        client = request.client.host if request.client else "?"
        who = state.authenticate(token)
        if who is None or who.challenge != challenge or who.role != "team":
            if limiter.blocked(client):
                return page("server-login.html", request, 429, error="Too many attempts; wait.")
            limiter.failed(client)
            return page("server-login.html", request, 401, error="Unknown team token.")
        response = RedirectResponse("/team", status_code=303)
        response.set_cookie(
            SESSION_COOKIE, signer.dumps({"token": hash_token(token), "nonce": os.urandom(8).hex()}), max_age=SESSION_MAX_AGE_S,
            httponly=True, samesite="strict", secure=request.url.scheme == "https",
        )  # fmt: skip
        return response

    @app.get("/team", response_model=None)
    def team_page(request: Request, received: int | None = None, refused: str = "") -> Any:
        held = session(request)
        if held is None:
            return RedirectResponse("/login", status_code=303)
        who, cookie = held
        _, spec, _ = state.challenge(challenge)
        rows = [
            {
                "id": d["id"], "phase": d["phase"], "status": d["status"],
                "error": d["error_class"], "created": d["created_at"][:19].replace("T", " "),
                "scores": ", ".join(
                    f"{m} {v:.3f}" if isinstance(v, float) else f"{m} {v}"
                    for m, v in d.get("scores", {}).items()
                ),
            }
            for d in described(state, challenge, who, state.submissions(who))
        ]  # fmt: skip
        return page(
            "server-team.html", request, csrf=csrf_of(cookie), submissions=rows,
            phases=[p.name for p in spec.phases], message=_MESSAGES.get(refused, "")
            if received is None else f"submission {received} received",
        )  # fmt: skip

    @app.post("/team/submit", response_model=None)
    async def team_submit(request: Request) -> Any:
        """The upload form (fields ``csrf``, ``phase``, then ``file``): the session and the
        form's origin checked before the body is read, its CSRF token before the file."""
        same_origin(request)
        held = session(request)
        if held is None:
            raise HTTPException(401, "sign in first")
        who, cookie = held

        def check_form(fields: dict[str, str]) -> None:
            if not hmac.compare_digest(fields.get("csrf", ""), csrf_of(cookie)):
                raise HTTPException(403, "the form's CSRF token does not match the session")

        try:
            sub = await receive(request, who, None, check_form)
            target = f"/team?received={int(sub['id'])}"
        except LimitReached:
            target = "/team?refused=limit"
        except HTTPException as err:
            if err.status_code in (401, 403):
                raise
            busy = err.status_code in (429, 507)  # uploads in flight, or disk: try later
            target = "/team?refused=busy" if busy else "/team?refused=upload"
        except ChallengeError:
            target = "/team?refused=upload"
        return RedirectResponse(target, status_code=303)


def leaderboard_rows(state: ServerState, challenge: str) -> list[dict[str, Any]]:
    """Per phase, each team's best finished submission (its run's means over cases), best
    first: what the public sees (on a hidden phase only its ``public_metrics``)."""
    from evaluator.datasets.registry import load_registry
    from evaluator.metrics.registry import METRICS

    _, spec, _ = state.challenge(challenge)
    registry = load_registry()
    out = []
    for phase in spec.phases:
        profile = registry.profile(registry.task(phase.task))
        metrics = list(phase.public_metrics or profile.metrics)
        scored = state.scored_submissions(challenge, phase.name)
        means = _run_means(state, [run for _, _, run in scored], metrics)
        raw = [(sid, team, [means.get((run, m)) for m in metrics]) for sid, team, run in scored]
        if metrics:
            sign = -1.0 if METRICS[metrics[0]].higher_is_better else 1.0
            raw.sort(key=lambda r: (r[2][0] is None, sign * (r[2][0] or 0.0), r[0]))
        best: dict[str, list[float | None]] = {}
        for _, team, vals in raw:  # best first: each team's best submission, no ids (they
            best.setdefault(team, vals)  # would tell how often and when each team submitted)
        rows = [
            {"team": team, "cells": ["–" if v is None else f"{v:.3f}" for v in vals]}
            for team, vals in best.items()
        ]
        out.append(
            {
                "name": phase.name, "task": phase.task, "split": phase.split,
                "start": phase.start.isoformat(), "end": phase.end.isoformat(),
                "limits": phase.limits.model_dump(), "hidden": phase.hidden,
                "limits_text": _limits_text(phase.limits.per_day, phase.limits.total),
                "metrics": metrics, "rows": rows,
            }
        )  # fmt: skip
    return out


def described(
    state: ServerState, challenge: str, holder: Principal, subs: list[Submission]
) -> list[dict[str, Any]]:
    """Submissions as ``holder`` sees them: each finished one with its run's ``scores`` (the
    mean over cases, as on the board; a team on a hidden phase gets the phase's public metrics
    only, when it names some); for the organiser also the team and the error message."""
    from evaluator.datasets.registry import load_registry

    _, spec, _ = state.challenge(challenge)
    registry = load_registry()
    shown: dict[str, list[str]] = {}
    for phase in spec.phases:
        shown[phase.name] = list(registry.profile(registry.task(phase.task)).metrics)
        if holder.role == "team" and phase.hidden and phase.public_metrics:
            shown[phase.name] = list(phase.public_metrics)
    runs = [s.run_id for s in subs if s.run_id is not None and s.status == "finished"]
    means = _run_means(state, runs, sorted({m for ms in shown.values() for m in ms}))
    out = []
    for sub in subs:
        item = _submission_json(sub)
        if sub.run_id in runs:
            item["scores"] = {
                m: jsonable(means.get((int(sub.run_id), m), float("nan")))
                for m in shown.get(sub.phase, [])
            }
        if holder.role == "organiser":
            item |= {"team": sub.team, "error": sub.error}
        out.append(item)
    return out


def _limits_text(per_day: int | None, total: int | None) -> str:
    parts = [
        f"{per_day} per day" if per_day is not None else "",
        f"{total} in total" if total is not None else "",
    ]
    return ", ".join(p for p in parts if p) or "none"


def _run_means(
    state: ServerState, run_ids: list[int], metrics: list[str]
) -> dict[tuple[int, str], float]:
    """``(run, metric)`` -> the mean over cases of each case's mean over labels (NaN skipped,
    as ``ccbench evaluate``'s summary; a rejected case holds the metric's worst value)."""
    if not run_ids:
        return {}
    frame = state.store.results_frame(run_ids=run_ids)
    frame = frame[frame["metric"].isin(metrics)]
    per_case = frame.groupby(["run_id", "metric", "case_id"])["value"].mean()
    return {
        (int(run), str(metric)): float(value)
        for (run, metric), value in per_case.groupby(level=["run_id", "metric"]).mean().items()
        if value == value  # not NaN
    }
