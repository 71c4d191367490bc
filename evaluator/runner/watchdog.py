"""The watchdog of one ``ccbench run``: no container outlives its run or its deadline.

``ccbench run`` starts this program in its own session (so a ``kill -9`` of the run, or of its
process group, does not take the watchdog along) with the run's token and owner. Every half
second it looks at the run's containers (label ``ccbench.run=<token>``):

* when the owner process is gone, it removes every one of them and the run's scratch folders
  (unmounting their output file systems), then exits;
* a container still running more than :data:`GRACE_S` seconds after its ``ccbench.deadline``
  label is killed (the run itself kills on time; this covers a harness that is stuck).

The run stops the watchdog when it ends normally.

Usage: ``python -m evaluator.runner.watchdog TOKEN OWNER TMP``
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

__all__ = ["GRACE_S", "main", "watch"]

#: Seconds past a container's deadline before the watchdog kills it.
GRACE_S = 10.0
_POLL_S = 0.5


def watch(token: str, owner_text: str, tmp: Path, *, poll_s: float = _POLL_S) -> int:
    """Watch until the owner ends; clean up after it if it died. Returns an exit status."""
    import docker

    from evaluator.processes import Owner
    from evaluator.runner.docker_backend import labelled_containers
    from evaluator.runner.outputs import remove_scratch

    owner = Owner.parse(owner_text)
    client = docker.from_env(timeout=30)
    while True:
        alive = owner.alive()
        with contextlib.suppress(docker.errors.DockerException, OSError):
            for container in labelled_containers(client, f"ccbench.run={token}"):
                deadline = float(container.labels.get("ccbench.deadline", "inf"))
                if not alive:
                    container.remove(force=True)
                elif time.time() > deadline + GRACE_S and container.status == "running":
                    container.kill()
        if not alive:
            for root in tmp.glob(f"run-{token}-*"):
                with contextlib.suppress(OSError):
                    remove_scratch(root)
            return 0
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``TOKEN OWNER TMP``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    return watch(args[0], args[1], Path(args[2]))


if __name__ == "__main__":
    sys.exit(main())
