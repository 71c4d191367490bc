"""The workspace: one folder that holds generated data, the results store and every output.

Resolution order: an explicit path (``--workspace``), then ``CCBENCH_WORKSPACE``, then
``./.ccbench`` in the current directory. Nothing outside the workspace is written, so two
workspaces never interfere. The environment is read when :func:`resolve_workspace` is called,
never at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_WORKSPACE",
    "ENV_WORKSPACE",
    "NAME_CHARACTERS",
    "Workspace",
    "check_name",
    "resolve_workspace",
    "safe_name",
]

ENV_WORKSPACE = "CCBENCH_WORKSPACE"
DEFAULT_WORKSPACE = ".ccbench"

#: Names that become file or folder names (runs, entries): letters, digits, ``_.-``, starting
#: with a letter or digit, so never ``..``, never a slash, never hidden.
NAME_CHARACTERS = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def check_name(name: str, *, what: str, max_length: int = 200) -> str:
    """Return ``name`` when it may become a file name inside the workspace, else raise.

    Raises
    ------
    InvalidNameError
        Naming ``what`` and the rule.

    Examples
    --------
    >>> check_name("autopet-test-mine", what="run name")
    'autopet-test-mine'
    >>> check_name("../../tmp/x", what="run name")
    Traceback (most recent call last):
    ...
    evaluator.errors.InvalidNameError: run name '../../tmp/x': use letters, digits and _.- only, starting with a letter or digit (at most 200 characters)
    """
    import re

    from evaluator.errors import InvalidNameError

    if len(name) > max_length or not re.fullmatch(NAME_CHARACTERS, name):
        raise InvalidNameError(
            f"{what} {name!r}: use letters, digits and _.- only, starting with a letter or "
            f"digit (at most {max_length} characters)"
        )
    return name


def safe_name(text: str, *, max_length: int = 200) -> str:
    """``text`` made into a valid name (other characters become ``_``).

    Examples
    --------
    >>> safe_name("my predictions/../x")
    'my_predictions_.._x'
    """
    import re

    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", text).lstrip("._-")[:max_length]
    return cleaned or "run"


@dataclass(frozen=True)
class Workspace:
    """Paths inside one workspace folder.

    Examples
    --------
    >>> ws = Workspace(Path("/tmp/ws"))
    >>> ws.store_url
    'sqlite:////tmp/ws/results.sqlite'
    >>> ws.phantoms / "autopet"
    PosixPath('/tmp/ws/phantoms/autopet')
    """

    root: Path

    @property
    def data(self) -> Path:
        """Real datasets (default roots of the tasks in ``datasets.yaml``)."""
        return self.root / "data"

    @property
    def phantoms(self) -> Path:
        """Phantom datasets written by ``ccbench data phantoms``."""
        return self.root / "phantoms"

    @property
    def splits(self) -> Path:
        """Split files written by ``ccbench data split``."""
        return self.root / "splits"

    @property
    def runs(self) -> Path:
        """One folder per evaluation run (results.csv, summary.json, logs)."""
        return self.root / "runs"

    @property
    def images(self) -> Path:
        """Base-image build folders and downloaded wheels."""
        return self.root / "images"

    @property
    def simulations(self) -> Path:
        """Degradation studies."""
        return self.root / "simulations"

    @property
    def submissions(self) -> Path:
        """Entry manifests (``<name>.yaml``) written by ``ccbench submit`` and ``baselines build``."""
        return self.root / "submissions"

    @property
    def sites(self) -> Path:
        """The published leaderboard site (``ccbench leaderboard`` default output)."""
        return self.root / "site"

    @property
    def tmp(self) -> Path:
        """Scratch space (container inputs/outputs); emptied by the code that uses it."""
        return self.root / "tmp"

    @property
    def store_path(self) -> Path:
        """The SQLite results store."""
        return self.root / "results.sqlite"

    @property
    def store_url(self) -> str:
        """SQLAlchemy URL of the default store."""
        return f"sqlite:///{self.store_path}"

    def ensure(self) -> Workspace:
        """Create the workspace folder (not its sub-folders) and return self."""
        self.root.mkdir(parents=True, exist_ok=True)
        return self


def resolve_workspace(path: str | os.PathLike[str] | None = None) -> Workspace:
    """Return the workspace for an explicit path, ``CCBENCH_WORKSPACE`` or ``./.ccbench``.

    Parameters
    ----------
    path
        Explicit workspace folder; wins over the environment.

    Returns
    -------
    Workspace
        With an absolute root; the folder is not created.

    Examples
    --------
    >>> resolve_workspace("/tmp/elsewhere").root
    PosixPath('/tmp/elsewhere')
    """
    if path is None:
        path = os.environ.get(ENV_WORKSPACE) or DEFAULT_WORKSPACE
    return Workspace(Path(path).expanduser().absolute())
