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
  submission, 413 over the size limit, 429 over the phase's submission limit;
* ``GET /api/submissions``: a team's own submissions (the organiser: all);
* ``GET /api/submissions/{id}``: one of them.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run time

import hashlib
import os
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse

from evaluator.server.challenge import ChallengeError
from evaluator.server.state import LimitReached, Principal, ServerState

__all__ = ["SECURITY_HEADERS", "create_app"]

#: Headers on every answer.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
}
#: Failed authentications allowed per client address per minute before 429.
AUTH_FAILURES_PER_MINUTE = 10
_CHUNK = 1 << 20


class _FailureLimiter:
    """Counts failed authentications per client address in a sliding minute."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def blocked(self, client: str) -> bool:
        with self._lock:
            window = self._seen[client]
            while window and window[0] < time.monotonic() - 60:
                window.popleft()
            return len(window) >= self.per_minute

    def failed(self, client: str) -> None:
        with self._lock:
            self._seen[client].append(time.monotonic())


def _submission_json(sub: Any) -> dict[str, Any]:
    return {
        "id": sub.id,
        "phase": sub.phase,
        "status": sub.status,
        "created_at": sub.created_at.isoformat() + "Z",
    }


def create_app(state: ServerState, challenge: str, uploads: Path) -> FastAPI:
    """The application serving ``challenge`` from ``state``; uploads go under ``uploads``."""
    app = FastAPI(title=f"ccbench challenge {challenge}", docs_url=None, redoc_url=None)
    limiter = _FailureLimiter(AUTH_FAILURES_PER_MINUTE)
    uploads.mkdir(parents=True, exist_ok=True)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

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
        if limiter.blocked(client):
            raise HTTPException(429, "too many failed authentications; wait a minute")
        scheme, _, token = header.partition(" ")
        who = state.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if who is None or who.challenge != challenge:
            limiter.failed(client)
            raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
        return who

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
            "phases": [
                {
                    "name": p.name, "task": p.task, "start": p.start.isoformat(),
                    "end": p.end.isoformat(), "limits": p.limits.model_dump(), "hidden": p.hidden,
                }
                for p in spec.phases
            ],
        }  # fmt: skip

    @app.post("/api/submissions", status_code=201)
    async def submit(who: Who, phase: Annotated[str, Form()], file: UploadFile) -> dict[str, Any]:
        team = need(who, "team")
        _, spec, _ = state.challenge(challenge)
        spec.phase(phase)  # 409 naming the phases
        limit = spec.upload.max_archive_mb * 1024 * 1024
        fd, partial = _temporary(uploads)
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := await file.read(_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise HTTPException(
                            413, f"the archive is over {spec.upload.max_archive_mb} MB"
                        )
                    digest.update(chunk)
                    out.write(chunk)
            sid = state.create_submission(team, phase)
            os.replace(partial, uploads / f"{sid}.tar")
        finally:
            Path(partial).unlink(missing_ok=True)
        state.record_archive(sid, sha256=digest.hexdigest(), size=size)
        (sub,) = [s for s in state.submissions(team) if s.id == sid]
        return {**_submission_json(sub), "archive_sha256": digest.hexdigest(), "bytes": size}

    @app.get("/api/submissions")
    def list_submissions(who: Who) -> list[dict[str, Any]]:
        holder = need(who, "team", "organiser")
        return [_submission_json(s) for s in state.submissions(holder)]

    @app.get("/api/submissions/{sid}")
    def one_submission(sid: int, who: Who) -> dict[str, Any]:
        holder = need(who, "team", "organiser")
        for sub in state.submissions(holder):
            if sub.id == sid:
                return _submission_json(sub)
        raise HTTPException(404, "no such submission")

    return app


def _temporary(folder: Path) -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(prefix=".upload-", dir=folder)
