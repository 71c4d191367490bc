"""A team's side of ``ccbench serve``: ``ccbench submit --server URL --token T --image-file F``.

The archive is streamed (never read into memory) as ``multipart/form-data``, the field
``phase`` before the file, to ``POST /api/submissions``. Before it, the challenge's phases and
size limit and the token are checked with two small requests, so that a refusal is a clear
message rather than a connection closed mid-upload. A dropped connection or a busy server (502,
503, 504, 429 with ``Retry-After``) is retried with the same ``Idempotency-Key``: the server
counts and stores the upload once however often it is sent.
"""

from __future__ import annotations

import ipaddress
import time
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from evaluator.errors import SubmissionError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["MultipartFile", "submit_to_server", "wait_for_submission"]

#: Answers worth sending the upload again for (429 only with ``Retry-After``: uploads in
#: flight; the phase's limit comes without it).
RETRIED_STATUS = (429, 502, 503, 504)
#: Statuses after which a submission changes no more (until the organiser reruns it).
FINAL_STATUS = ("finished", "failed", "error")


class MultipartFile:
    """A ``multipart/form-data`` body of text fields and one file, read in chunks.

    ``len()`` is the body's size (the ``Content-Length``); ``read(n)`` yields it piece by
    piece, the file straight from disk.
    """

    def __init__(self, fields: dict[str, str], name: str, path: Path) -> None:
        self.boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
            for key, value in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{path.name.encode("ascii", "replace").decode()}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self._head, self._tail = head, f"\r\n--{self.boundary}--\r\n".encode()
        self._path = path
        self._size = len(head) + path.stat().st_size + len(self._tail)
        self._file: IO[bytes] | None = None
        self._stage = 0

    def __len__(self) -> int:
        return self._size

    def read(self, n: int = -1) -> bytes:
        n = n if n and n > 0 else 1 << 20
        if self._stage == 0:
            self._stage, self._file = 1, self._path.open("rb")
            return self._head
        if self._stage == 1:
            assert self._file is not None
            data = self._file.read(n)
            if data:
                return data
            self._file.close()
            self._stage = 2
            return self._tail
        return b""


def _check_url(url: str, allow_http: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SubmissionError(f"--server {url!r}: give https://host[:port]")
    if parts.scheme == "http" and not allow_http:
        try:
            loopback = ipaddress.ip_address(parts.hostname).is_loopback
        except ValueError:
            loopback = parts.hostname == "localhost"
        if not loopback:
            raise SubmissionError(
                f"--server {url!r}: plain http would send the token unencrypted; use https "
                "(or --allow-http on a network you trust)"
            )
    return url.rstrip("/")


def _detail(answer: Any) -> str:
    try:
        return str(answer.json().get("detail", answer.text))[:500]
    except ValueError:
        return answer.text[:500]


def submit_to_server(
    url: str,
    token: str,
    archive: Path,
    phase: str,
    *,
    retries: int = 4,
    allow_http: bool = False,
    timeout_s: float = 3600.0,
    max_wait_s: float = 300.0,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Upload ``archive`` (a ``docker save`` archive) to ``phase`` of the challenge at ``url``.

    Parameters
    ----------
    url
        The server, ``https://host[:port]`` (plain ``http`` only to loopback, or with
        ``allow_http``).
    token
        The team's token.
    archive
        The archive file; streamed.
    phase
        The phase's name.
    retries
        Tries again after a dropped connection or a busy server (waits 2, 4, 8, ... s, or
        what ``Retry-After`` says), with the same ``Idempotency-Key``.
    timeout_s
        Seconds the server may stay silent during the upload.
    max_wait_s
        The longest wait between two tries, seconds.
    say
        Called with progress messages.

    Returns
    -------
    dict
        The server's answer: the submission's ``id``, ``phase``, ``status``,
        ``archive_sha256``, ``bytes``.

    Raises
    ------
    SubmissionError
        The server refused (naming the HTTP status and its reason) or cannot be reached.
    """
    import requests

    base = _check_url(url, allow_http)
    if not archive.is_file():
        raise SubmissionError(f"{archive}: no such archive file")
    auth = {"Authorization": f"Bearer {token}"}
    try:
        info = requests.get(f"{base}/api/challenge", timeout=30)
        info.raise_for_status()
        challenge = info.json()
        mine = requests.get(f"{base}/api/submissions", headers=auth, timeout=30)
    except requests.ConnectionError as err:
        raise SubmissionError(f"{base}: cannot connect (is the server running?)") from err
    except (requests.RequestException, ValueError) as err:
        raise SubmissionError(f"{base}: not a ccbench server that answers: {err}") from err
    if mine.status_code != 200:
        raise SubmissionError(f"{base}: the token was refused (HTTP {mine.status_code})")
    phases = {p["name"]: p for p in challenge.get("phases", [])}
    if phase not in phases:
        raise SubmissionError(f"{base}: no phase {phase!r}; phases: {', '.join(phases)}")
    limit_mb = int(challenge.get("upload", {}).get("max_archive_mb", 0)) or None
    size = archive.stat().st_size
    if limit_mb is not None and size > limit_mb * 1024 * 1024:
        raise SubmissionError(f"{archive}: {size >> 20} MB, over the server's {limit_mb} MB")
    key = uuid.uuid4().hex
    for attempt in range(retries + 1):
        body = MultipartFile({"phase": phase}, "file", archive)
        headers = {**auth, "Idempotency-Key": key, "Content-Type": body.content_type}
        wait = 2.0 ** (attempt + 1)
        try:
            say(f"uploading {archive.name} ({size >> 20} MB) to {base}, phase {phase}")
            answer = requests.post(
                f"{base}/api/submissions", data=body, headers=headers, timeout=timeout_s
            )
        except requests.RequestException as err:
            if attempt == retries:
                raise SubmissionError(f"{base}: the upload failed: {err}") from err
            say(f"the upload was interrupted ({type(err).__name__}); again in {wait:.0f} s")
        else:
            if answer.status_code in (200, 201):
                return dict(answer.json())
            busy = answer.status_code in RETRIED_STATUS and (
                answer.status_code != 429 or "Retry-After" in answer.headers
            )  # a 429 without Retry-After is the phase's limit: sending again changes nothing
            if not busy or attempt == retries:
                raise SubmissionError(
                    f"{base}: the upload was refused (HTTP {answer.status_code}): {_detail(answer)}"
                )
            after = answer.headers.get("Retry-After", "")
            wait = float(after) if after.isdigit() else wait
            say(f"the server is busy (HTTP {answer.status_code}); again in {wait:.0f} s")
        time.sleep(min(wait, max_wait_s))
    raise AssertionError("unreachable")  # pragma: no cover


def wait_for_submission(
    url: str,
    token: str,
    submission: int,
    *,
    allow_http: bool = False,
    poll_s: float = 5.0,
    timeout_s: float = 24 * 3600.0,
) -> dict[str, Any]:
    """Poll a submission until it is finished, failed or an error; its last state.

    Raises
    ------
    SubmissionError
        It did not end within ``timeout_s``, or the server refused.
    """
    import requests

    base = _check_url(url, allow_http)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer = requests.get(
                f"{base}/api/submissions/{int(submission)}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        except requests.RequestException:
            answer = None
        if answer is not None and answer.status_code == 200:
            state = dict(answer.json())
            if state.get("status") in FINAL_STATUS:
                return state
        elif answer is not None and answer.status_code not in RETRIED_STATUS:
            raise SubmissionError(f"{base}: HTTP {answer.status_code}: {_detail(answer)}")
        if time.monotonic() > deadline:
            raise SubmissionError(f"submission {submission} did not end in {timeout_s:.0f} s")
        time.sleep(poll_s)
