"""``ccbench submit``: register a local container image as an entry (``submissions/<name>.yaml``).

The image must exist in the local Docker engine; its content id (``sha256:...``) is recorded as
the entry's digest, and a run refuses to start when the image behind the tag has changed. The
tasks must be known to the registry and the resources within the organiser's limits.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluator.errors import SubmissionError
from evaluator.runner.contract import (
    EntryKind,
    Interface,
    Manifest,
    Resources,
    SandboxLimits,
    check_labels,
    invalid_fields,
    manifest_path,
    write_manifest,
)

if TYPE_CHECKING:
    import tarfile

    from evaluator.runner.docker_backend import DockerBackend

__all__ = [
    "DEFAULT_MAX_ARCHIVE_BYTES",
    "MANIFEST_KEYS",
    "METADATA_FILES",
    "ArchiveImage",
    "archive_members",
    "exact_keys",
    "load_image_archive",
    "open_archive",
    "prescan_archive",
    "read_archive",
    "submit_image",
]

#: Largest image archive ``ccbench submit --image-file`` loads (grand-challenge takes 10 GB).
DEFAULT_MAX_ARCHIVE_BYTES = 10 * 2**30
#: Most entries an image archive may hold.
_MAX_MEMBERS = 200_000
#: A Docker image reference ``[registry/]name[:tag]`` (lower-case name components).
_REFERENCE = re.compile(
    r"(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
)


@dataclass(frozen=True)
class ArchiveImage:
    """The one image of a ``docker save`` archive: its content id and its tags."""

    image_id: str
    tags: tuple[str, ...]


#: Largest extended header (a pax record set, a GNU long name) an archive member may have.
MAX_HEADER_BYTES = 64 * 1024
#: An archive's metadata files (what ``docker load`` reads names and tags from).
METADATA_FILES = ("manifest.json", "index.json", "repositories", "oci-layout")


def open_archive(path: Path) -> tarfile.TarFile:
    """Open an image archive (``.tar``, ``.tar.gz``, ...) for :func:`archive_members`.

    Extended headers (pax records, GNU long names) over :data:`MAX_HEADER_BYTES` are refused
    before they are read: Python would hold one whole in memory, and a few kB of gzip can
    declare gigabytes.
    """
    import tarfile

    prescan_archive(path)
    return tarfile.open(path, mode="r:*", tarinfo=_bounded_tarinfo())


#: The pax records an image archive may use (what ``docker save`` and common tar writers emit).
_PAX_KEYS = frozenset(
    {b"path", b"linkpath", b"size", b"mtime", b"atime", b"ctime", b"uid", b"gid", b"uname",
     b"gname"}
)  # fmt: skip
#: Longest member name (a ``docker save`` name is ``blobs/sha256/<64 hex>``).
MAX_NAME_CHARS = 1024


def prescan_archive(path: Path) -> None:
    """Walk an archive's raw tar headers before Python's ``tarfile`` parses them.

    ``tarfile`` accepts what Go's reader (the engine's) does not, and some of it costs
    memory or time out of proportion to the upload (a pax record set built quadratically, a
    backtracking regular expression, a negative size that rewinds the stream). Here every
    header's size field must be a plain octal (or positive base-256) number, extended headers
    at most :data:`MAX_HEADER_BYTES` with strictly formed records of the keys in
    :data:`_PAX_KEYS` only, and no global pax header.

    Raises
    ------
    SubmissionError
        Naming the first header that breaks a rule.
    """
    import bz2
    import gzip
    import lzma

    with path.open("rb") as probe:
        magic = probe.read(6)
    opener: Any = (
        gzip.open if magic[:2] == b"\x1f\x8b"
        else bz2.open if magic[:3] == b"BZh"
        else lzma.open if magic == b"\xfd7zXZ\x00"
        else open
    )  # fmt: skip

    def refuse(offset: int, why: str) -> SubmissionError:
        return SubmissionError(f"image archive {path}: the tar header at byte {offset} {why}")

    offset = 0
    try:
        with opener(path, "rb") as tar:
            while len(block := tar.read(512)) == 512 and block != bytes(512):
                if not _checksum_holds(block):  # tarfile reads no further either
                    if offset == 0:
                        raise SubmissionError(f"image archive {path}: not a readable tar file")
                    break
                field = block[124:136]
                if field[0] == 0x80:  # base-256, positive
                    size = int.from_bytes(field[1:], "big")
                elif re.fullmatch(rb" *[0-7]*[ \x00]*", field):
                    size = int(field.strip(b"\x00 ") or b"0", 8)
                else:
                    raise refuse(offset, f"has a size field that is not a size: {field!r}")
                kind, padded = block[156:157], size + (-size % 512)
                if kind in (b"g", b"x", b"L", b"K"):
                    if kind == b"g":
                        raise refuse(offset, "is a global pax header")
                    if size > MAX_HEADER_BYTES:
                        raise refuse(offset, f"extends over {MAX_HEADER_BYTES} bytes")
                    body = tar.read(padded)[:size]
                    wrong = _pax_problem(body) if kind == b"x" else None
                    if wrong is not None:
                        raise refuse(offset, wrong)
                    if kind != b"x" and len(body) > MAX_NAME_CHARS:
                        raise refuse(offset, f"names over {MAX_NAME_CHARS} characters")
                else:
                    while padded > 0:  # skip the member's data
                        padded -= len(chunk := tar.read(min(padded, 1 << 20)))
                        if not chunk:
                            break
                offset += 512 + size + (-size % 512)
    except (OSError, EOFError, ValueError, lzma.LZMAError) as err:
        raise SubmissionError(f"image archive {path}: not a readable archive ({err})") from err


def _checksum_holds(block: bytes) -> bool:
    """Whether a tar header's checksum field matches its bytes (unsigned or signed sum)."""
    field = block[148:156].strip(b"\x00 ")
    if not re.fullmatch(rb"[0-7]{1,8}", field):
        return False
    blanked = block[:148] + b" " * 8 + block[156:]
    signed = sum(b - 256 if b > 127 else b for b in blanked)
    return int(field, 8) in (sum(blanked), signed)


def _pax_problem(body: bytes) -> str | None:
    """What is wrong with a pax header's records (strict ``<length> <key>=<value>\\n``, keys of
    :data:`_PAX_KEYS` only), or None."""
    pos = 0
    while pos < len(body):
        head = re.match(rb"([1-9][0-9]{0,7}) ", body[pos : pos + 10])
        if head is None:
            return "has a malformed pax record"
        length = int(head.group(1))
        record = body[pos + len(head.group(0)) : pos + length]
        key, equals, _ = record.partition(b"=")
        if pos + length > len(body) or not record.endswith(b"\n") or not equals:
            return "has a malformed pax record"
        if key not in _PAX_KEYS:
            return f"has the pax record {key[:40]!r}, which image archives do not use"
        pos += length
    return None


@functools.cache
def _bounded_tarinfo() -> type[tarfile.TarInfo]:
    import tarfile

    def bounded(method: Any) -> Any:
        def read(self: tarfile.TarInfo, tar: tarfile.TarFile) -> Any:
            if self.size > MAX_HEADER_BYTES:
                raise tarfile.SubsequentHeaderError(  # type: ignore[attr-defined]
                    f"an extended header of {self.size} bytes (at most {MAX_HEADER_BYTES})"
                )
            return method(self, tar)

        return read

    return type(
        "BoundedTarInfo",
        (tarfile.TarInfo,),
        {
            "_proc_pax": bounded(tarfile.TarInfo._proc_pax),  # type: ignore[attr-defined]
            "_proc_gnulong": bounded(tarfile.TarInfo._proc_gnulong),  # type: ignore[attr-defined]
        },
    )


def archive_members(
    tar: tarfile.TarFile, path: Path, *, max_unpacked: int, max_members: int = _MAX_MEMBERS
) -> Iterator[tuple[tarfile.TarInfo, str]]:
    """Each member of an image archive with its name, streamed (no index of members kept).

    Only what ``docker load`` reads the same way as Python's ``tarfile`` passes:

    * names canonical: relative, no ``..``, no ``//`` or ``/./`` (a leading ``./`` and a root
      ``.`` entry are allowed), each once, never under a member that is not a directory (a
      symlinked folder would let a later member write through it);
    * regular files, directories, symbolic links that stay inside the archive and hard links
      to an earlier file only; no sparse files and no ``GNU.sparse.*`` pax records (Python and
      Go disagree on their names and sizes);
    * the metadata files (:data:`METADATA_FILES`) regular files of at most 1 MiB.

    Otherwise a second ``x/../manifest.json``, or one behind a link, could carry tags that a
    check of ``manifest.json`` never saw. Open the archive with :func:`open_archive`.

    Raises
    ------
    SubmissionError
        A member that breaks those rules, more than ``max_members`` members or
        ``max_unpacked`` bytes (each member's header counted).
    """
    import posixpath
    import tarfile

    seen: set[str] = set()
    files: set[str] = set()  # regular files: what a hard link may name
    not_dirs: set[str] = set()  # what no other member may lie under
    unpacked = count = 0

    def refuse(why: str) -> SubmissionError:
        return SubmissionError(f"image archive {path}: {why}")

    while (member := tar.next()) is not None:
        tar.members = []  # type: ignore[attr-defined]  # keep no index of entries
        count += 1
        if member.size < 0 or len(member.name) + len(member.linkname) > MAX_NAME_CHARS:
            raise refuse(f"the entry {member.name[:80]!r} has a negative size or too long a name")
        unpacked += member.size + tarfile.BLOCKSIZE
        if unpacked > max_unpacked or count > max_members:
            raise refuse(f"more than {max_unpacked} bytes or {max_members} entries unpacked")
        if member.issparse() or any(k.startswith("GNU.sparse") for k in member.pax_headers):
            raise refuse(f"the entry {member.name!r} is a sparse file")
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise refuse(f"the entry {member.name!r} is not a file, folder or link")
        if any(ord(c) < 32 or ord(c) == 127 for c in member.name + member.linkname):
            raise refuse(f"the entry {member.name!r} has a control character in its name")
        raw = member.name.removeprefix("./")
        if raw in ("", ".") and member.isdir():
            continue
        name = posixpath.normpath(raw) if raw else ""
        if not raw or name != raw.rstrip("/") or name == ".." or name.startswith(("/", "../")):
            raise refuse(f"the entry {member.name!r} is not a plain name")
        if name in seen:
            raise refuse(f"the entry {name!r} comes twice")
        parts = name.split("/")
        if any("/".join(parts[:k]) in not_dirs for k in range(1, len(parts))):
            raise refuse(f"the entry {name!r} lies under a link or a file")
        if member.issym():
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
                raise refuse(f"the link {name!r} points outside the archive")
        if member.islnk() and posixpath.normpath(member.linkname.removeprefix("./")) not in files:
            raise refuse(f"the hard link {name!r} names no earlier file")
        seen.add(name)
        if not member.isdir():
            not_dirs.add(name)
        if member.isreg():
            files.add(name)
        if name in METADATA_FILES and (not member.isreg() or member.size > 1 << 20):
            raise refuse(f"{name} is not a file of at most 1 MiB")
        yield member, name


#: The keys of a ``manifest.json`` item.
MANIFEST_KEYS = frozenset({"Config", "RepoTags", "Layers", "LayerSources"})
#: Largest image config read for its digest, bytes.
_CONFIG_BYTES = 8 << 20


def exact_keys(item: object, known: frozenset[str]) -> dict[str, object] | None:
    """``item``'s keys, or None when one of them matches a ``known`` key only when case is
    ignored (Go's JSON decoder, the engine's, folds case and would read it as that key)."""
    if not isinstance(item, dict):
        return {}
    folded = {k.casefold(): k for k in known}
    for key in item:
        wanted = folded.get(str(key).casefold())
        if wanted is not None and wanted != key:
            return None
        # Go folds more than casefold() (the long s, the Kelvin sign): any non-ASCII key is out
        if not str(key).isascii():
            return None
    return dict(item)


def read_archive(path: Path, *, max_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES) -> ArchiveImage:
    """Read the image id and tags of a ``docker save`` archive (``.tar`` or ``.tar.gz``).

    Only ``manifest.json`` is read (docker's and the OCI layout both have it); the archive
    must hold exactly one image, be at most ``max_bytes`` on disk and unpack to at most four
    times that.

    Raises
    ------
    SubmissionError
        Not a readable archive, no or several images, too large.
    """
    import hashlib
    import json
    import posixpath
    import tarfile

    try:
        size = path.stat().st_size
    except OSError as err:
        raise SubmissionError(f"image archive {path}: cannot be read ({err.strerror})") from err
    if size > max_bytes:
        raise SubmissionError(
            f"image archive {path}: {size / 2**30:.2f} GiB is more than the "
            f"{max_bytes / 2**30:.2f} GiB accepted"
        )
    manifests = []
    digests: dict[str, str] = {}  # a small file's name -> the SHA-256 of its bytes
    try:
        with open_archive(path) as tar:
            for member, name in archive_members(tar, path, max_unpacked=4 * max_bytes):
                handle = tar.extractfile(member) if member.isreg() else None
                if name == "manifest.json" and handle is not None:
                    manifests.append(json.loads(handle.read(1 << 20)))
                elif handle is not None and member.size <= _CONFIG_BYTES:
                    digests[name] = hashlib.sha256(handle.read()).hexdigest()
    except (tarfile.TarError, OSError, EOFError, ValueError, RecursionError) as err:
        raise SubmissionError(
            f"image archive {path}: not a readable `docker save` archive ({err})"
        ) from err
    if len(manifests) != 1:
        raise SubmissionError(
            f"image archive {path}: expected one manifest.json, found {len(manifests)}"
        )
    manifest = manifests[0]
    if not isinstance(manifest, list) or len(manifest) != 1 or not isinstance(manifest[0], dict):
        count = len(manifest) if isinstance(manifest, list) else 0
        raise SubmissionError(
            f"image archive {path}: expected exactly one image in manifest.json, found {count}"
        )
    if exact_keys(manifest[0], MANIFEST_KEYS) is None:
        raise SubmissionError(
            f"image archive {path}: manifest.json has a key that differs from "
            f"{', '.join(sorted(MANIFEST_KEYS))} only in case (the engine would read it)"
        )
    config = str(manifest[0].get("Config", ""))
    digest = config.rsplit("/", 1)[-1].removesuffix(".json")
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise SubmissionError(f"image archive {path}: manifest.json names no image config")
    if digests.get(posixpath.normpath(config)) != digest:  # the engine names it by its bytes
        raise SubmissionError(
            f"image archive {path}: the image config {config} is missing, a link, or not the "
            "file its name says (its SHA-256 differs)"
        )
    tags = tuple(str(t) for t in manifest[0].get("RepoTags") or ())
    bad = [t for t in tags if not _REFERENCE.fullmatch(t)]
    if bad:
        raise SubmissionError(f"image archive {path}: {bad[0]!r} is not a valid image tag")
    return ArchiveImage(f"sha256:{digest}", tags)


def load_image_archive(
    path: Path,
    *,
    backend: DockerBackend,
    max_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES,
    replace_tags: bool = False,
) -> ArchiveImage:
    """Load a ``docker save`` archive into the local engine; return its image id and tags.

    A tag of the archive that already names another local image is refused (loading would
    silently move it) unless ``replace_tags``.

    Raises
    ------
    SubmissionError
        See :func:`read_archive`; a tag conflict; the engine refuses the archive.
    """
    import docker

    found = read_archive(path, max_bytes=max_bytes)
    for tag in found.tags:
        try:
            current = str(backend.client.images.get(tag).id)
        except docker.errors.ImageNotFound:
            continue
        if current != found.image_id and not replace_tags:
            raise SubmissionError(
                f"image archive {path}: its tag {tag} already names another local image "
                f"({current[:19]}); loading would move the tag. Retag the archive, remove the "
                "local image, or pass --replace-tags"
            )
    try:
        with path.open("rb") as fh:
            for _ in backend.client.api.load_image(fh):
                pass
    except docker.errors.APIError as err:
        raise SubmissionError(f"image archive {path}: the engine refused it: {err}") from err
    loaded = backend.image_id(found.image_id)
    if loaded != found.image_id:
        raise SubmissionError(f"image archive {path}: loaded {loaded}, expected {found.image_id}")
    return found


def submit_image(
    image: str,
    *,
    name: str,
    tasks: Sequence[str],
    submissions_dir: Path = Path("submissions"),
    team: str = "",
    interface: Interface = "batch",
    resources: Resources | None = None,
    command: Sequence[str] | None = None,
    limits: SandboxLimits | None = None,
    overwrite: bool = False,
    backend: DockerBackend | None = None,
    image_digest: str | None = None,
    kind: EntryKind = "entry",
    prompts: Sequence[str] = (),
    labels: Mapping[str, Sequence[int | str]] | None = None,
) -> tuple[Manifest, Path]:
    """Check ``image`` exists, record its digest and write the entry's manifest.

    Parameters
    ----------
    image
        Image tag or id in the local engine.
    name
        Entry name (letters, digits, ``_.-``); the manifest is ``<submissions_dir>/<name>.yaml``.
    tasks
        Task names from ``datasets.yaml`` the entry is registered for.
    submissions_dir
        Manifests folder.
    team, interface, resources, command
        Stored in the manifest (``command`` overrides the image's CMD, and is what
        ``--backend local`` runs).
    limits
        Organiser bounds for ``resources``.
    overwrite
        Replace an existing manifest of the same name.
    backend
        Docker backend used to inspect the image [default: connect to the local engine].
    image_digest
        Record this digest without asking an engine (for entries run with ``--backend local``
        only); must look like ``sha256:<64 hex>``.
    kind
        ``baseline`` for a reference algorithm (marked as such on the leaderboards).
    prompts
        ``text`` and/or ``clicks``: what the entry reads from ``/input/prompts.json``
        (:mod:`evaluator.prompts.contract`).
    labels
        Task -> the labels the entry predicts (names or values); a task not named: every label.
        Checked against the registry (:func:`evaluator.runner.contract.manifest_labels`).

    Returns
    -------
    (Manifest, Path)
        The entry and where it was written.

    Raises
    ------
    SubmissionError
        Unknown task, image not found, manifest exists, bad name or resources, a declared
        label the task does not have.
    DockerUnavailableError
        No engine answers (and no ``image_digest`` was given).
    """
    from pydantic import ValidationError

    from evaluator.datasets.registry import load_registry

    registry = load_registry()
    unknown = [t for t in tasks if t not in registry.tasks]
    if unknown or not tasks:
        raise SubmissionError(
            f"entry {name}: unknown or no task(s) {unknown} (known: {', '.join(registry.tasks)})"
        )
    path = manifest_path(name, submissions_dir)
    if path.exists() and not overwrite:
        raise SubmissionError(f"entry {name} already exists ({path}); pass --overwrite to replace")
    check_labels(labels, tasks, where=f"entry {name} ({path})")
    if image_digest is None:
        if backend is None:
            from evaluator.runner.docker_backend import DockerBackend

            backend = DockerBackend()
        image_digest = backend.image_id(image)
    try:
        manifest = Manifest(
            name=name,
            team=team,
            image=image,
            image_digest=image_digest,
            interface=interface,
            tasks=tuple(tasks),
            resources=resources or Resources(),
            command=tuple(command) if command else None,
            submitted=datetime.now(UTC).isoformat(timespec="seconds"),
            kind=kind,
            prompts=tuple(prompts),  # type: ignore[arg-type]  # checked by the model
            labels={t: tuple(v) for t, v in labels.items()} if labels else None,
        )
    except ValidationError as err:
        raise SubmissionError(f"entry {name}: {invalid_fields(err)}") from err
    (limits or SandboxLimits()).check(manifest.resources, entry=name)
    return manifest, write_manifest(manifest, submissions_dir)
