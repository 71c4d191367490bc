"""The README's tour, executed as written, so that it cannot drift from what ccbench does.

Every fenced block between ``<!-- tour:start -->`` and ``<!-- tour:end -->`` is taken in order:
a block whose first line is ``# file: PATH`` is a file the reader saves (written to ``PATH``),
every ``bash`` block is run. The whole tour runs as one bash script with ``set -euo pipefail`` in
an empty folder (its own ``./.ccbench`` workspace) where ``.venv`` is this environment; any
non-zero exit fails the test and names the command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evaluator.cli import app

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
START, END = "<!-- tour:start -->", "<!-- tour:end -->"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
_FILE = re.compile(r"# file: (\S+)")
#: The tour's image tag (the test runs the tour with a unique tag in its place).
TOUR_IMAGE = "my-model:1"


def tour_blocks(text: str) -> list[tuple[str, str]]:
    """``(kind, body)`` of each tour block, in order: kind is ``bash`` or ``file:PATH``."""
    if text.count(START) != 1 or text.count(END) != 1:
        raise ValueError(f"README needs exactly one {START} and one {END}")
    body = text[text.index(START) : text.index(END)]
    blocks = []
    for lang, code in _FENCE.findall(body):
        first = code.splitlines()[0] if code else ""
        match = _FILE.fullmatch(first)
        if match:
            blocks.append((f"file:{match.group(1)}", code))
        elif lang == "bash":
            blocks.append(("bash", code))
        else:
            raise ValueError(f"a ```{lang} block in the tour is neither bash nor '# file: PATH'")
    return blocks


def tour_script(text: str) -> str:
    """The tour as one bash script: files written with here-documents, commands as written."""
    lines = ["set -euo pipefail", "trap 'echo \"tour failed at: $BASH_COMMAND\" >&2' ERR"]
    for kind, code in tour_blocks(text):
        if kind == "bash":
            lines.append(code)
            continue
        path = kind.removeprefix("file:")
        assert "CCBENCH_TOUR_EOF" not in code
        lines += [
            f"mkdir -p {shlex.quote(str(Path(path).parent))}",
            f"cat > {shlex.quote(path)} <<'CCBENCH_TOUR_EOF'",
            code.rstrip("\n"),
            "CCBENCH_TOUR_EOF",
        ]
    return "\n".join(lines) + "\n"


def _ccbench_commands(text: str) -> list[list[str]]:
    """The command words (``["data", "phantoms"]``) of every ``ccbench`` line of the tour."""
    groups = {"data", "images", "simulate", "baselines"}
    found = []
    for kind, code in tour_blocks(text):
        if kind != "bash":
            continue
        for line in code.replace("\\\n", " ").splitlines():  # continued lines joined
            words = shlex.split(line, comments=True)
            for i, word in enumerate(words):
                if word == "ccbench" and i + 1 < len(words):
                    n = 2 if words[i + 1] in groups else 1
                    found.append(words[i + 1 : i + 1 + n])
    return found


def test_the_tour_is_parsed_into_files_and_commands() -> None:
    text = README.read_text(encoding="utf-8")
    kinds = [kind for kind, _ in tour_blocks(text)]
    assert {"file:my-model/predict.py", "file:my-model/Dockerfile", "file:lesions.py"} <= set(kinds)
    script = tour_script(text)
    for needed in ("ccbench submit", "ccbench run", "ccbench leaderboard", "docker build"):
        assert needed in script
    # a stray block is an error, not silently skipped
    with pytest.raises(ValueError, match="neither bash"):
        tour_blocks(f"{START}\n```python\nprint(1)\n```\n{END}")


def test_every_tour_command_exists() -> None:
    """Each ``ccbench ...`` of the tour names a command (its ``--help`` works)."""
    commands = _ccbench_commands(README.read_text(encoding="utf-8"))
    assert len(commands) >= 10
    runner = CliRunner()
    for words in {tuple(c) for c in commands}:
        result = runner.invoke(app, [*words, "--help"])
        assert result.exit_code == 0, (words, result.output)


@pytest.mark.docker
@pytest.mark.slow
def test_readme_tour_runs_verbatim(docker_backend: Any, tmp_path: Path) -> None:
    """The tour as written, but for its image tag: a unique one, so that a reader's own
    ``my-model:1`` (or a concurrent run's) is never replaced or removed by the test."""
    from evaluator.runner.baselines import entry_tag
    from evaluator.workspace import Workspace

    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    text = README.read_text(encoding="utf-8")
    own_tag = f"ccbench-test/tour-{uuid.uuid4().hex[:12]}:1"
    assert TOUR_IMAGE in tour_script(text)
    script = tmp_path / "tour.sh"
    script.write_text(tour_script(text).replace(TOUR_IMAGE, own_tag))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CCBENCH_") and k not in ("VIRTUAL_ENV", "COLUMNS")
    }
    try:
        proc = subprocess.run(
            ["bash", str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=1500,
            check=False,
        )
        assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    finally:  # the tour's own tags: its image and the baseline built in its workspace
        threshold = entry_tag("ccbench", "threshold", Workspace(tmp_path / ".ccbench"))
        subprocess.run(["docker", "rmi", own_tag, threshold], capture_output=True, check=False)
    # what the reader was promised: their files, a scored local try, a site with both entries
    workspace = tmp_path / ".ccbench"
    assert sorted(p.name for p in (tmp_path / "my_predictions").iterdir()) == sorted(
        case["prediction"]
        for case in json.loads((tmp_path / "test-cases.json").read_text())["cases"]
    )
    assert (workspace / "runs" / "my-first-try" / "results.csv").is_file()
    board = (workspace / "site" / "autopet-phantom--test" / "index.html").read_text()
    assert "my-model" in board and "my-first-try" in board and "threshold" in board
    assert "volume (ml)" in " ".join(proc.stdout.split())  # metrics --per-component
    study = workspace / "simulations" / "autopet-phantom-test" / "sensitivity.csv"
    assert "drop,missed_voxel_share," in study.read_text()  # the reader's own metric, studied
    assert "not refused" not in proc.stdout.lower()
