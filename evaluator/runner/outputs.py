"""A container's ``/output``: a size-capped file system, and the one way files leave it.

Scratch folders
    Each container run gets ``<workspace>/tmp/run-<token>-<random>/`` holding ``input/`` (staged,
    mounted read-only), ``output/`` and ``owner.json`` (which process made it). When the harness
    runs as root, ``output/`` is a fresh **tmpfs mounted with a size cap and an inode cap**
    (``nosuid,nodev,noexec``): the kernel stops every write past the cap, however the files are
    named, nested or numbered, and unmounting frees everything at once. Without the right to
    mount, the cap falls back to polling the folder's size (recorded as
    ``output_enforcement: polling``). tmpfs pages count against the memory of the container
    that wrote them, so outputs are bounded by the entry's memory limit too.
Collection
    Files are **copied** out through file descriptors opened relative to the output folder with
    ``O_NOFOLLOW`` (no link is followed at any depth, a FIFO cannot block the reader), only
    regular files are taken, each is size-capped, and the copy is a new file owned by the harness
    with mode 0644 (no setuid, setgid or exec bit survives). The container's files are never
    moved, renamed or chmod-ed in place.
Reaping
    :func:`reap_scratch` removes scratch folders whose owner process is gone (after a ``kill -9``
    of ``ccbench run``), unmounting their output file system first.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from evaluator.ingest import accepted_suffix
from evaluator.processes import Owner, current_owner
from evaluator.textsafe import printable

__all__ = [
    "INSTANCES_OUTPUT",
    "OUTPUT_EXTENSIONS",
    "CollectedOutputs",
    "Scratch",
    "collect_batch_outputs",
    "collect_gc_output",
    "collect_instance_output",
    "folder_bytes",
    "open_scratch",
    "reap_scratch",
    "remove_scratch",
    "walk_tree",
]

#: Extensions a prediction may have, most specific first (the ingestion's allow-list).
OUTPUT_EXTENSIONS = (".nii.gz", ".nii", ".mha")

#: Unexpected files listed one by one before the rest are summarised.
_MAX_REJECTED = 50
#: Folder entries looked at in ``/output`` at most (the inode cap bounds them anyway).
_MAX_ENTRIES = 100_000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8
_MNT_DETACH = 2
_UNSAFE_MARK = "links are never followed"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

Enforcement = Literal["tmpfs", "polling"]


# --------------------------------------------------------------------------------------------
# scratch folders with a capped output file system
# --------------------------------------------------------------------------------------------


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _mount_tmpfs(target: Path, *, size_bytes: int, inodes: int, uid: int, gid: int) -> str | None:
    """Mount a capped tmpfs on ``target``; None when done, else why not (e.g. not root)."""
    if os.environ.get("CCBENCH_OUTPUT_FS") == "polling":
        return "CCBENCH_OUTPUT_FS=polling"
    options = f"size={max(size_bytes, 4096)},nr_inodes={inodes},mode=0755,uid={uid},gid={gid}"
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    result = _libc().mount(
        b"ccbench-output", os.fsencode(target), b"tmpfs", flags, options.encode()
    )
    if result != 0:
        return os.strerror(ctypes.get_errno())
    return None


def _unmount(target: Path) -> None:
    """Detach a mount (lazily, so a busy one goes as soon as it is free)."""
    if os.path.ismount(target):
        _libc().umount2(os.fsencode(target), _MNT_DETACH)


@dataclass
class Scratch:
    """One container run's scratch folder.

    Attributes
    ----------
    root
        ``<workspace>/tmp/run-<token>-<random>``.
    input_dir, output_dir
        Mounted at ``/input`` (read-only) and ``/output``.
    cap_bytes, max_files
        The output caps.
    enforcement
        ``tmpfs`` (kernel-enforced caps) or ``polling`` (size watched, files not capped).
    why_polling
        Why the tmpfs could not be mounted (empty with ``tmpfs``).
    """

    root: Path
    input_dir: Path
    output_dir: Path
    cap_bytes: int
    max_files: int
    enforcement: Enforcement
    why_polling: str = ""

    def exhausted(self) -> str | None:
        """Why the output file system is full (bytes or files), or None."""
        if self.enforcement != "tmpfs":
            return None
        try:
            fs = os.statvfs(self.output_dir)
        except OSError:
            return None
        if fs.f_favail == 0:
            return f"the output file limit ({self.max_files} files and folders) was reached"
        if fs.f_bavail * fs.f_frsize < 64 * 1024:
            return f"the output size cap ({self.cap_bytes / 2**20:.0f} MiB) was reached"
        return None


@contextmanager
def open_scratch(
    tmp: Path,
    *,
    token: str,
    cap_bytes: int,
    max_files: int,
    uid: int,
    gid: int,
) -> Iterator[Scratch]:
    """A scratch folder under ``tmp`` with a capped ``output/``; removed on every exit path.

    Parameters
    ----------
    tmp
        The workspace's scratch space.
    token
        The run's token (also in the containers' labels), part of the folder name.
    cap_bytes, max_files
        Output caps: total bytes, and files plus folders.
    uid, gid
        Owner of ``output/`` (the container's user).
    """
    tmp.mkdir(parents=True, exist_ok=True)
    root = tmp / f"run-{token}-{uuid.uuid4().hex[:8]}"
    root.mkdir(mode=0o711)
    owner = current_owner()
    (root / "owner.json").write_text(json.dumps({"owner": str(owner), "token": token}))
    input_dir, output_dir = root / "input", root / "output"
    input_dir.mkdir()
    output_dir.mkdir()
    why = _mount_tmpfs(output_dir, size_bytes=cap_bytes, inodes=max_files + 1, uid=uid, gid=gid)
    if why is not None and os.getuid() == 0:
        os.chown(output_dir, uid, gid)
    scratch = Scratch(
        root,
        input_dir,
        output_dir,
        cap_bytes,
        max_files,
        "polling" if why else "tmpfs",
        why or "",
    )
    try:
        yield scratch
    finally:
        remove_scratch(root)


def remove_scratch(root: Path) -> None:
    _unmount(root / "output")

    def _retry(func: object, p: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            Path(p).parent.chmod(0o700)
            if Path(p).is_dir() and not Path(p).is_symlink():
                Path(p).chmod(0o700)
        with contextlib.suppress(OSError):
            func(p)  # type: ignore[operator]

    shutil.rmtree(root, onerror=_retry)


def reap_scratch(tmp: Path) -> list[Path]:
    """Remove scratch folders whose owner process is gone; return them.

    Folders of live processes (another ``ccbench run`` at work) and of other hosts sharing the
    workspace are left alone.
    """
    removed: list[Path] = []
    if not tmp.is_dir():
        return removed
    for root in sorted(tmp.glob("run-*")):
        try:
            owner = Owner.parse(json.loads((root / "owner.json").read_text())["owner"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not ours, or being created right now
        if owner.alive():
            continue
        remove_scratch(root)
        removed.append(root)
    return removed


def walk_tree(folder: Path) -> Iterator[tuple[os.DirEntry[str], os.stat_result]]:
    """Every entry under ``folder`` with its own ``lstat``; links are not followed.

    Entries that vanish or cannot be read while the tree is walked (a container may be writing
    it) are skipped.
    """
    stack = [str(folder)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)
            yield entry, st


def folder_bytes(folder: Path) -> int:
    """Total size of the regular files under ``folder`` in bytes (links are not followed).

    Used only where the output cap cannot be mounted (polling).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a").write_bytes(b"123")
    >>> folder_bytes(d)
    3
    """
    return sum(st.st_size for _, st in walk_tree(folder) if stat.S_ISREG(st.st_mode))


# --------------------------------------------------------------------------------------------
# collection
# --------------------------------------------------------------------------------------------


@dataclass
class CollectedOutputs:
    """Outputs copied out of a container's ``/output``.

    Attributes
    ----------
    predictions
        Case id -> prediction file (a harness-owned copy under the destination folder).
    errors
        Case id -> why no usable output was found for it.
    rejected
        Other things found in ``/output`` and why they were ignored.
    unsafe
        Cases whose output was a link or not a regular file (error class ``unsafe``).
    """

    predictions: dict[str, Path] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    unsafe: set[str] = field(default_factory=set)

    def refuse(self, case_id: str, message: str) -> None:
        """Record why ``case_id`` has no usable output (links and special files: unsafe)."""
        self.errors[case_id] = message
        if _UNSAFE_MARK in message or "not a regular file" in message:
            self.unsafe.add(case_id)


def _name(text: str) -> str:
    """A container-chosen name made printable on one line (control characters dropped, line
    breaks shown as ``\\n``, length capped)."""
    return printable(text, limit=120, oneline=True)


def _listing(dir_fd: int) -> list[tuple[str, int]]:
    """``(name, st_mode)`` of a folder's entries, from lstat (no link followed), bounded."""
    out = []
    with os.scandir(dir_fd) as entries:
        for i, entry in enumerate(entries):
            if i >= _MAX_ENTRIES:
                break
            try:
                out.append((entry.name, entry.stat(follow_symlinks=False).st_mode))
            except OSError:
                continue
    return sorted(out)


def _open_subdir(dir_fd: int, name: str) -> int | None:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None


def _copy_out(dir_fd: int, name: str, dest: Path, *, max_bytes: int) -> str | None:
    """Copy regular file ``name`` (relative to ``dir_fd``) to a new harness-owned ``dest``.

    Returns why it was refused, or None when copied. The copy is mode 0644 whatever the
    source's mode (no setuid, setgid or exec bit).
    """
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as err:
        if err.errno == errno.ELOOP:
            try:
                target = os.readlink(name, dir_fd=dir_fd)
            except OSError:
                target = "?"
            return f"is a symbolic link (to {_name(target)!r}); {_UNSAFE_MARK}"
        return f"cannot be read ({err.strerror})"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return "is not a regular file"
        if st.st_size > max_bytes:
            return (
                f"is {st.st_size / 2**20:.1f} MiB, above the output cap of "
                f"{max_bytes / 2**20:.1f} MiB"
            )
        if st.st_size == 0:
            return "is empty (0 bytes)"
        dest.parent.mkdir(parents=True, exist_ok=True)
        out_fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        copied = 0
        with os.fdopen(out_fd, "wb") as out:
            while chunk := os.read(fd, 1 << 20):
                copied += len(chunk)
                if copied > max_bytes:
                    break
                out.write(chunk)
        if copied > max_bytes:  # grew while being copied
            dest.unlink()
            return f"grew past the output cap of {max_bytes / 2**20:.1f} MiB while copied"
        os.chmod(dest, 0o644)
        return None
    finally:
        os.close(fd)


def _suffix(name: str) -> str | None:
    ext = accepted_suffix(name)
    return ext if ext in OUTPUT_EXTENSIONS else None


def collect_batch_outputs(
    output_dir: Path, case_ids: Sequence[str], dest_dir: Path, *, max_bytes: int
) -> CollectedOutputs:
    """Copy ``/output/<case_id><ext>`` files of a batch run to ``dest_dir``.

    Parameters
    ----------
    output_dir
        The host folder mounted at ``/output``.
    case_ids
        Cases of the split; every one gets a prediction or an error.
    dest_dir
        Predictions folder of the run (created).
    max_bytes
        Cap for a single output file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out, dest = (pathlib.Path(tempfile.mkdtemp()) for _ in range(2))
    >>> _ = (out / "c1.mha").write_bytes(b"x")
    >>> (out / "c2.nii.gz").symlink_to("/etc/passwd")
    >>> got = collect_batch_outputs(out, ["c1", "c2", "c3"], dest, max_bytes=100)
    >>> sorted(got.predictions), sorted(got.errors)
    (['c1'], ['c2', 'c3'])
    >>> got.errors["c3"]
    'no output file (expected c3.nii.gz, .nii or .mha in /output)'
    """
    result = CollectedOutputs()
    wanted = set(case_ids)
    found: dict[str, list[tuple[str, str]]] = {}
    refused: dict[str, str] = {}  # case id -> a file named after it in a format not accepted
    try:
        dir_fd: int | None = os.open(output_dir, _DIR_FLAGS)
    except OSError:
        dir_fd = None
    if dir_fd is None:
        result.rejected.append("/output cannot be listed")
        names: list[tuple[str, int]] = []
    else:
        names = _listing(dir_fd)
    try:
        for name, _mode in names:
            ext = _suffix(name)
            stem = name[: -len(ext)] if ext else name
            if ext is None or stem not in wanted:
                if ext is None and name.split(".")[0] in wanted:
                    refused.setdefault(name.split(".")[0], name)
                if len(result.rejected) < _MAX_REJECTED:
                    result.rejected.append(
                        f"/output/{_name(name)}: not <case_id><ext> of a case in the split "
                        f"(ext: {', '.join(OUTPUT_EXTENSIONS)})"
                    )
                elif len(result.rejected) == _MAX_REJECTED:
                    result.rejected.append("/output: more unexpected files not listed")
                continue
            found.setdefault(stem, []).append((name, ext))
        for case_id in case_ids:
            files = found.get(case_id, [])
            if not files and case_id in refused:
                result.errors[case_id] = (
                    f"/output/{_name(refused[case_id])} is not an accepted format (write "
                    f"{case_id}{OUTPUT_EXTENSIONS[0]}, {', '.join(OUTPUT_EXTENSIONS[1:-1])} or "
                    f"{OUTPUT_EXTENSIONS[-1]}; formats whose header may name another file are "
                    "refused)"
                )
                continue
            if not files:
                result.errors[case_id] = (
                    f"no output file (expected {case_id}{OUTPUT_EXTENSIONS[0]}, "
                    f"{', '.join(OUTPUT_EXTENSIONS[1:-1])} or {OUTPUT_EXTENSIONS[-1]} in /output)"
                )
                continue
            if len(files) > 1:
                listed = ", ".join(_name(n) for n, _ in files)
                result.errors[case_id] = f"several output files ({listed}); write exactly one"
                continue
            name, ext = files[0]
            dest = dest_dir / f"{case_id}{ext}"
            assert dir_fd is not None
            problem = _copy_out(dir_fd, name, dest, max_bytes=max_bytes)
            if problem:
                result.refuse(case_id, f"/output/{_name(name)} {problem}")
                continue
            result.predictions[case_id] = dest
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
    return result


#: The one file an instance task's (2D, ChestXDet) batch run writes: COCO results of the split.
INSTANCES_OUTPUT = "predictions.json"


def collect_instance_output(
    output_dir: Path, case_ids: Sequence[str], dest_dir: Path, *, max_bytes: int
) -> CollectedOutputs:
    """Copy ``/output/predictions.json`` of an instance task's batch run to ``dest_dir``.

    The file holds every case's instances (COCO results, or ChestXDet style); it is copied as
    bytes (size-capped, never through a link) and parsed only by the evaluation, which reads a
    case without instances as an empty prediction. Every case of ``case_ids`` maps to the copy,
    or every one gets the same error.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out, dest = (pathlib.Path(tempfile.mkdtemp()) for _ in range(2))
    >>> _ = (out / "predictions.json").write_text("[]")
    >>> _ = (out / "c1.nii.gz").write_text("x")
    >>> got = collect_instance_output(out, ["c1", "c2"], dest, max_bytes=100)
    >>> sorted(got.predictions), got.rejected
    (['c1', 'c2'], ['/output/c1.nii.gz: not predictions.json (an instance task writes one COCO results file)'])
    """
    result = CollectedOutputs()
    try:
        dir_fd = os.open(output_dir, _DIR_FLAGS)
    except OSError:
        result.rejected.append("/output cannot be listed")
        for case_id in case_ids:
            result.errors[case_id] = f"no /output/{INSTANCES_OUTPUT}"
        return result
    try:
        names = [name for name, _ in _listing(dir_fd)]
        for name in names[:_MAX_REJECTED]:
            if name != INSTANCES_OUTPUT:
                result.rejected.append(
                    f"/output/{_name(name)}: not {INSTANCES_OUTPUT} (an instance task writes "
                    "one COCO results file)"
                )
        if INSTANCES_OUTPUT not in names:
            for case_id in case_ids:
                result.errors[case_id] = (
                    f"no output file (expected /output/{INSTANCES_OUTPUT}: the COCO results "
                    "of every case)"
                )
            return result
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / INSTANCES_OUTPUT
        problem = _copy_out(dir_fd, INSTANCES_OUTPUT, dest, max_bytes=max_bytes)
        for case_id in case_ids:
            if problem:
                result.refuse(case_id, f"/output/{INSTANCES_OUTPUT} {problem}")
            else:
                result.predictions[case_id] = dest
    finally:
        os.close(dir_fd)
    return result


def collect_gc_output(
    output_dir: Path,
    case_id: str,
    key: str,
    dest_dir: Path,
    *,
    slug: str,
    max_bytes: int,
) -> CollectedOutputs:
    """Copy ``/output/images/<slug>/<key>.mha`` (or the only image there) to ``dest_dir``.

    grand-challenge algorithms often name their output after the input uuid, some use a fixed
    name; exactly one image file in the slug folder is accepted either way. No link is followed
    on the way (``images`` and ``<slug>`` must be real folders).
    """
    result = CollectedOutputs()
    where = f"/output/images/{slug}"
    fds: list[int] = []
    try:
        fd: int | None = os.open(output_dir, _DIR_FLAGS)
        for part in ("images", slug):
            assert fd is not None
            fds.append(fd)
            fd = _open_subdir(fd, part)
            if fd is None:
                break
        if len(fds) == 2:  # /output/images opened: anything beside the slug folder is stray
            result.rejected += [
                f"/output/images/{_name(n)}: not the output folder images/{slug}"
                for n, _ in _listing(fds[1])[:_MAX_REJECTED]
                if n != slug
            ]
        if fd is None:
            result.errors[case_id] = f"no output folder {where}"
            return result
        fds.append(fd)
        names = [n for n, _ in _listing(fd) if _suffix(n)]
        preferred = [n for n in names if n.startswith(key)]
        pick = preferred or names
        if not pick:
            result.errors[case_id] = f"no output image in {where}"
            return result
        if len(pick) > 1:
            listed = ", ".join(_name(n) for n in pick[:10])
            result.errors[case_id] = f"several output images in {where} ({listed})"
            return result
        name = pick[0]
        dest = dest_dir / f"{case_id}{_suffix(name)}"
        problem = _copy_out(fd, name, dest, max_bytes=max_bytes)
        if problem:
            result.refuse(case_id, f"{where}/{_name(name)} {problem}")
            return result
        result.predictions[case_id] = dest
        return result
    except OSError as err:
        result.errors[case_id] = f"{where} cannot be read ({err.strerror})"
        return result
    finally:
        for opened in fds:
            os.close(opened)
