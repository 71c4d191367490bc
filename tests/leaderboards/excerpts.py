"""The lines of the source texts that ``reference_results.yaml`` cites, kept in the repository.

:func:`excerpts_from` picks, per text, the cited line of every row and the line after it (a
wrapped cell), and the lines that hold the citation's title, first author and table label.
``scripts/reference_excerpts.py`` writes them to :data:`EXCERPTS`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from leaderboards.reference import load_reference_tables

__all__ = ["EXCERPTS", "excerpts_from", "load_excerpts", "normalised"]

EXCERPTS = Path(__file__).resolve().parents[1] / "data" / "reference_excerpts.json"
#: The longest run of lines searched for a citation's title.
_TITLE_LINES = 4


def normalised(text: str) -> str:
    """Lower case, markup and punctuation marks used in the texts removed, spaces collapsed."""
    return " ".join(re.sub(r"[*#_<>/\\]|\bsup\b", " ", text).lower().split())


def _citation_lines(lines: list[str], table: Any) -> set[int]:
    """1-based numbers of the lines holding the title, the first author and the table label."""
    wanted: set[int] = set()
    title = normalised(table.citation.title)
    for start in range(len(lines)):
        window = range(start, min(start + _TITLE_LINES, len(lines)))
        if title in normalised(" ".join(lines[i] for i in window)):
            end = next(e for e in window if title in normalised(" ".join(lines[start : e + 1])))
            wanted.update(range(start + 1, end + 2))
            break
    author = table.citation.authors.split(",")[0]
    label = re.compile(rf"\b{re.escape(table.citation.table)}\b")
    for number, line in enumerate(lines, start=1):
        if author in line:
            wanted.add(number)
            break
    for number, line in enumerate(lines, start=1):
        if label.search(line):
            wanted.add(number)
            break
    return wanted


def excerpts_from(seeds: Path) -> dict[str, dict[str, Any]]:
    """Excerpts of the source texts in `seeds`: ``{file: {"lines": {number: text}}}``."""
    picked: dict[str, set[int]] = {}
    texts: dict[str, list[str]] = {}
    for table in load_reference_tables():
        lines = texts.setdefault(
            table.file, (seeds / table.file).read_text(encoding="utf-8").splitlines()
        )
        numbers = picked.setdefault(table.file, set())
        for row in table.rows:
            numbers.update(n for n in (row.line, row.line + 1) if n <= len(lines))
        numbers.update(_citation_lines(lines, table))
    return {
        file: {"lines": {str(n): texts[file][n - 1] for n in sorted(numbers)}}
        for file, numbers in sorted(picked.items())
    }


def load_excerpts() -> dict[str, dict[int, str]]:
    """The excerpts in the repository: file -> line number -> text."""
    data = json.loads(EXCERPTS.read_text(encoding="utf-8"))
    return {file: {int(n): t for n, t in v["lines"].items()} for file, v in data.items()}
