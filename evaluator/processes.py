"""Which process owns a thing (a container, a scratch folder, a claim), and whether it lives.

An owner is ``host:pid:start`` where ``start`` is the process's start time in clock ticks after
boot (``/proc/<pid>/stat``, field 22): a pid that the kernel has reused for another process has
another start time, so a dead owner is never mistaken for a live one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from dataclasses import dataclass

__all__ = [
    "Owner",
    "current_owner",
    "die_with_parent",
    "local_process_alive",
    "machine_id",
    "proc_stat",
    "start_ticks",
]


def proc_stat(pid: int) -> tuple[str | None, int | None]:
    """State letter and start time (clock ticks after boot) of ``pid`` from ``/proc/<pid>/stat``.

    ``(None, None)`` when there is no such file (no such process, or no ``/proc``). The command
    name (field 2) may hold spaces and parentheses, so fields are counted after its last ``)``.

    Examples
    --------
    >>> proc_stat(os.getpid())[0] in ("R", "S")
    True
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None, None
    fields = text[text.rfind(")") + 2 :].split()  # fields[0] is field 3 (state)
    try:
        return fields[0], int(fields[19])  # field 22: starttime
    except (IndexError, ValueError):
        return None, None


def start_ticks(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks after boot; None when it is gone.

    Examples
    --------
    >>> start_ticks(os.getpid()) is not None
    True
    """
    return proc_stat(pid)[1]


def machine_id() -> str | None:
    """Boot id and pid namespace: equal exactly for processes that can see each other's pids."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            boot = handle.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}/{namespace}"[:200]


def local_process_alive(pid: int, start: int | None) -> bool:
    """Whether process ``pid`` of this machine still runs and is the one started at ``start``.

    A zombie (killed, not yet reaped by its parent) counts as dead; so does a process that got the
    pid later (another start time).
    """
    state, now = proc_stat(pid)
    if state is not None:
        if state in ("Z", "X", "x"):
            return False
        return start is None or now is None or now == start
    # no /proc/<pid>: the process is gone, or there is no /proc, or it hides other users'
    # processes (hidepid); the kernel still says whether the pid exists
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


@dataclass(frozen=True)
class Owner:
    """A process identity that survives pid reuse.

    Examples
    --------
    >>> me = current_owner()
    >>> Owner.parse(str(me)) == me, me.alive()
    (True, True)
    >>> Owner(me.host, me.pid, (me.start or 0) + 1).alive()  # same pid, another process
    False
    """

    host: str
    pid: int
    start: int | None

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{'' if self.start is None else self.start}"

    @classmethod
    def parse(cls, text: str) -> Owner:
        """The inverse of ``str(owner)``; ValueError for anything else."""
        host, pid, start = text.rsplit(":", 2)
        return cls(host, int(pid), int(start) if start else None)

    @property
    def local(self) -> bool:
        """Whether the owner runs on this host."""
        return self.host == socket.gethostname()

    def alive(self) -> bool:
        """True while the process runs (only decidable on its own host: elsewhere True)."""
        if not self.local:
            return True
        return local_process_alive(self.pid, self.start)


def current_owner() -> Owner:
    """This process."""
    pid = os.getpid()
    return Owner(socket.gethostname(), pid, start_ticks(pid))


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent exits (Linux ``PR_SET_PDEATHSIG``).

    Called in a child process (a scoring worker, or a local-backend command before ``exec``);
    a no-op where ``prctl`` does not exist.
    """
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
