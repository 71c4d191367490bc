"""Published results from the literature, shown next to measured leaderboards.

The numbers live in ``leaderboards/reference_results.yaml``, transcribed exactly as printed in
their source (APEX Tables 2 and 3, the CC-Metrics thesis Table 16, MultiTalent Table 1). Each
table carries the full citation of its publication (:class:`Citation`), the protocol the numbers
were measured with, and whether that protocol is the board's (``comparable``; when it is not,
``caveat`` says why and the board shows the table as "not directly comparable"). Each row keeps a
machine-readable pointer to the line of the paper's text it was copied from (``file``, ``line``).
They are display data only: always marked "reported in <source>", never mixed into computed
rankings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evaluator.errors import RegistryError

__all__ = [
    "REFERENCE_FILE",
    "Citation",
    "ReferenceRow",
    "ReferenceTable",
    "load_reference_tables",
    "parse_reported",
    "reference_tables_for",
]

#: The data file of published results.
REFERENCE_FILE = Path(__file__).with_name("reference_results.yaml")

_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:±\s*(\d+(?:\.\d+)?))?\s*$")


@dataclass(frozen=True)
class ReferenceRow:
    """One published method: printed values per column, and the source line they come from."""

    method: str
    line: int
    values: dict[str, str]


@dataclass(frozen=True)
class Citation:
    """The publication a table comes from.

    Examples
    --------
    >>> Citation("Doe, J.", "A title", "A venue", 2024, "Table 2").text
    'Doe, J.: A title. A venue (2024), Table 2.'
    """

    authors: str
    title: str
    venue: str
    year: int
    table: str

    @property
    def text(self) -> str:
        """The citation as one line: authors, title, venue, year, table."""
        return f"{self.authors}: {self.title}. {self.venue} ({self.year}), {self.table}."


@dataclass(frozen=True)
class ReferenceTable:
    """One published table.

    Attributes
    ----------
    id : str
        Stable identifier, e.g. ``"apex-table2"``.
    source : str
        What the table is ("reported in ..."), e.g. ``"APEX, Table 2 (...)"``.
    file : str
        The paper's text the rows were transcribed from (a machine-readable pointer; each row's
        ``line`` is the line in it).
    citation : Citation
        The publication, with the table number.
    protocol : str
        How the numbers were measured (data, split, 2D/3D, aggregation).
    comparable : bool
        Whether that protocol is the board's (3D volumes per case, ccbench's split and metric
        definitions).
    caveat : str
        Why the numbers are not directly comparable ("" when they are).
    tasks : tuple of str
        Tasks whose leaderboards show the table.
    columns : dict
        Printed column -> metric name of :data:`evaluator.metrics.METRICS` (or None).
    rows : tuple of ReferenceRow
    """

    id: str
    source: str
    file: str
    citation: Citation
    protocol: str
    comparable: bool
    caveat: str
    tasks: tuple[str, ...]
    columns: dict[str, str | None]
    rows: tuple[ReferenceRow, ...]


def parse_reported(text: str) -> tuple[float, float | None] | None:
    """A printed value as ``(mean, sd)``; None when it is not a number (``"_"``, text).

    Examples
    --------
    >>> parse_reported("57.5 ± 0.9")
    (57.5, 0.9)
    >>> parse_reported("127")
    (127.0, None)
    >>> parse_reported("single model") is None
    True
    """
    match = _NUMBER.match(text)
    if match is None:
        return None
    sd = match.group(2)
    return float(match.group(1)), None if sd is None else float(sd)


def _table(raw: Any, file: Path) -> ReferenceTable:
    try:
        columns = {str(k): (None if v is None else str(v)) for k, v in raw["columns"].items()}
        rows = []
        for row in raw["rows"]:
            values = {str(k): str(v) for k, v in row["values"].items()}
            unknown = set(values) - set(columns)
            if unknown:
                raise RegistryError(
                    f"{file}: table '{raw['id']}', row '{row['method']}': unknown columns "
                    f"{sorted(unknown)}"
                )
            rows.append(ReferenceRow(str(row["method"]), int(row["line"]), values))
        cited = raw["citation"]
        citation = Citation(
            authors=str(cited["authors"]),
            title=str(cited["title"]),
            venue=str(cited["venue"]),
            year=int(cited["year"]),
            table=str(cited["table"]),
        )
        comparable = raw["comparable"]
        caveat = str(raw.get("caveat") or "").strip()
        if not isinstance(comparable, bool) or (not comparable and not caveat):
            raise RegistryError(
                f"{file}: table '{raw['id']}': 'comparable' must be true or false, and a table "
                f"that is not comparable needs a 'caveat' saying why (got comparable="
                f"{comparable!r}, caveat={caveat!r})"
            )
        return ReferenceTable(
            id=str(raw["id"]),
            source=str(raw["source"]),
            file=str(raw["file"]),
            citation=citation,
            protocol=" ".join(str(raw["protocol"]).split()),
            comparable=comparable,
            caveat=" ".join(caveat.split()),
            tasks=tuple(str(t) for t in raw["tasks"]),
            columns=columns,
            rows=tuple(rows),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise RegistryError(f"{file}: malformed reference table {raw!r:.80}: {err}") from err


def load_reference_tables(path: Path | None = None) -> list[ReferenceTable]:
    """Read every published table of the data file.

    Raises
    ------
    RegistryError
        When the file cannot be read or a table lacks a field.

    Examples
    --------
    >>> [t.id for t in load_reference_tables()][:2]
    ['apex-table2', 'apex-chestxdet']
    """
    file = path or REFERENCE_FILE
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise RegistryError(f"{file}: cannot be read as YAML: {err}") from err
    if not isinstance(raw, dict) or not isinstance(raw.get("tables"), list):
        raise RegistryError(f"{file}: expected a mapping with a 'tables' list")
    return [_table(t, file) for t in raw["tables"]]


def reference_tables_for(task: str, path: Path | None = None) -> list[ReferenceTable]:
    """The published tables shown on ``task``'s leaderboard.

    Examples
    --------
    >>> [t.id for t in reference_tables_for("btcv-phantom")]
    ['multitalent-table1']
    """
    return [t for t in load_reference_tables(path) if task in t.tasks]
