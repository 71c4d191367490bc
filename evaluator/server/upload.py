"""Uploads read as they arrive: a multipart body parsed chunk by chunk, checked before its file.

A framework's form parsing reads the whole body (spooled to a temporary file) before the
endpoint runs: anyone, even without a token, could fill the disk. Here nothing is read before
the endpoint has checked the token, and the file part is not read before ``before_file`` has
checked the fields that precede it (the phase, the form's CSRF token; is the team within its
limits?). The file is hashed while it is written, under the size limit, into a temporary file
in ``folder``; the caller moves it to its place or deletes it.

Form fields must come before the file (browsers send a form's fields in their order; the
``ccbench submit`` client sends ``phase`` first).
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run time

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request

__all__ = ["Received", "receive_archive"]

#: Bytes of multipart framing allowed around the file (boundaries, part headers, fields).
FRAMING_BYTES = 64 * 1024
#: Form fields before the file, and bytes per field.
MAX_FIELDS = 8
MAX_FIELD_BYTES = 4096


#: Seconds an upload may take before its average rate is held to ``min_rate``.
RATE_GRACE_S = 120.0
#: Seconds an upload may take at all.
MAX_UPLOAD_S = 2 * 3600.0


async def _paced(
    stream: AsyncIterator[bytes], *, idle_s: float, min_rate: float
) -> AsyncIterator[bytes]:
    """``stream``'s chunks, cut off (408) after ``idle_s`` without one or when slower than
    ``min_rate`` bytes/s on average after :data:`RATE_GRACE_S` seconds."""
    import asyncio
    import time

    start, total = time.monotonic(), 0
    while True:
        try:
            chunk = await asyncio.wait_for(anext(stream), idle_s)
        except StopAsyncIteration:
            return
        except TimeoutError as err:
            raise HTTPException(408, f"the upload stalled for {idle_s:.0f} s") from err
        total += len(chunk)
        elapsed = time.monotonic() - start
        if elapsed > RATE_GRACE_S and total < min_rate * elapsed:
            raise HTTPException(408, f"the upload is slower than {min_rate / 1024:.0f} kB/s")
        if elapsed > MAX_UPLOAD_S:
            raise HTTPException(408, f"the upload took over {MAX_UPLOAD_S / 3600:.0f} h")
        yield chunk


@dataclass(frozen=True)
class Received:
    """An upload on disk: its form fields, temporary path, SHA-256 and size (bytes)."""

    fields: dict[str, str]
    path: Path
    sha256: str
    size: int


class _Parts:
    """The parser's callbacks: fields collected, the file's data queued for the writer."""

    def __init__(self, file_field: str) -> None:
        self.file_field = file_field
        self.fields: dict[str, str] = {}
        self.in_file = False
        self.file_seen = False
        self.file_started = False  # set when the file part's headers end: check, then write
        self.ended = False  # the closing boundary was read
        self.pending: list[bytes] = []
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._data = bytearray()

    def on_part_begin(self) -> None:
        self._disposition, self._data = b"", bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        if len(self._header_value) > MAX_FIELD_BYTES:
            raise HTTPException(400, "a part's header is too long")

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if not name:
            raise HTTPException(400, "a part without a name")
        self._name = name
        if b"filename" in options or name == self.file_field:
            if name != self.file_field or self.file_seen:
                raise HTTPException(400, f"one file only, in the field '{self.file_field}'")
            self.in_file = self.file_seen = self.file_started = True
        elif len(self.fields) >= MAX_FIELDS or self.file_seen:
            raise HTTPException(400, "too many form fields, or a field after the file")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.pending.append(data[start:end])
            return
        self._data += data[start:end]
        if len(self._data) > MAX_FIELD_BYTES:
            raise HTTPException(400, f"the form field '{self._name}' is too long")

    def on_end(self) -> None:
        self.ended = True

    def on_part_end(self) -> None:
        if self.in_file:
            self.in_file = False
        else:
            self.fields[self._name] = self._data.decode("utf-8", "replace")


async def receive_archive(
    request: Request,
    *,
    folder: Path,
    max_bytes: int,
    before_file: Callable[[dict[str, str]], Awaitable[None]],
    file_field: str = "file",
    idle_s: float = 60.0,
    min_rate: float = 256 * 1024,
) -> Received:
    """Read a ``multipart/form-data`` upload into a temporary file in ``folder``.

    Parameters
    ----------
    request
        The request; its body is read here, once.
    folder
        Where the temporary file goes (``.upload-*``; the caller moves or deletes it).
    max_bytes
        The file's size limit, bytes: over it (or a ``Content-Length`` that says so) is 413,
        and nothing is kept.
    before_file
        Called with the fields read so far when the file part begins; raises to refuse the
        upload before its file is read.
    file_field
        The file part's name.
    idle_s, min_rate
        A client silent for ``idle_s`` seconds, or slower than ``min_rate`` bytes/s on average
        after :data:`RATE_GRACE_S`, or still sending after :data:`MAX_UPLOAD_S`, is cut off
        (408): a trickled upload cannot hold a place for long.

    Raises
    ------
    HTTPException
        415 not multipart, 400 malformed (no file, a second file, a field after the file or
        too long), 413 too large, 408 too slow; whatever ``before_file`` raises.
    """
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect

    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise HTTPException(415, "send multipart/form-data (the fields, then the file)")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes + FRAMING_BYTES:
        raise HTTPException(413, f"the archive is over {max_bytes >> 20} MB")
    parts = _Parts(file_field)
    callbacks: Any = {
        name: getattr(parts, name)
        for name in (
            "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
            "on_headers_finished", "on_part_data", "on_part_end", "on_end",
        )
    }  # fmt: skip
    parser = MultipartParser(options[b"boundary"], callbacks)
    digest, size, out = hashlib.sha256(), 0, None
    fd, name = await run_in_threadpool(tempfile.mkstemp, prefix=".upload-", dir=folder)
    path = Path(name)
    try:
        out = os.fdopen(fd, "wb")
        try:
            async for chunk in _paced(request.stream(), idle_s=idle_s, min_rate=min_rate):
                parser.write(chunk)
                if parts.file_started:
                    parts.file_started = False
                    await before_file(dict(parts.fields))
                if parts.pending:
                    data = b"".join(parts.pending)
                    parts.pending.clear()
                    size += len(data)
                    if size > max_bytes:
                        raise HTTPException(413, f"the archive is over {max_bytes >> 20} MB")
                    digest.update(data)
                    await run_in_threadpool(out.write, data)
            parser.finalize()
            if not parts.ended:
                raise HTTPException(400, "the body ended before its closing boundary")
        except ClientDisconnect as err:
            raise HTTPException(400, "the upload was interrupted; send it again") from err
        except FormParserError as err:
            raise HTTPException(400, f"a malformed multipart body: {err}") from err
        if not parts.file_seen:
            raise HTTPException(400, f"no file in the field '{file_field}'")
        await run_in_threadpool(out.close)
    except BaseException:  # refused, malformed, cancelled: nothing left behind
        if out is not None:
            out.close()
        else:
            os.close(fd)
        path.unlink(missing_ok=True)
        raise
    return Received(parts.fields, path, digest.hexdigest(), size)
