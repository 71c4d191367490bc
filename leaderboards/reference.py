"""Published results from the literature, shown next to measured leaderboards.

The numbers live in ``leaderboards/reference_results.yaml``, transcribed exactly as printed in
their source (APEX Table 2 and its ChestXDet table, the CC-Metrics thesis Table 16, MultiTalent
Table 1), each row citing the line of the source text it was copied from. They are display data
only: always marked "reported in <source>", never mixed into computed rankings.
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
class ReferenceTable:
    """One published table.

    Attributes
    ----------
    id : str
        Stable identifier, e.g. ``"apex-table2"``.
    source : str
        What the table is ("reported in ..."), e.g. ``"APEX, Table 2 (...)"``.
    file : str
        Source text the rows were transcribed from.
    tasks : tuple of str
        Tasks whose leaderboards show the table.
    columns : dict
        Printed column -> metric name of :data:`evaluator.metrics.METRICS` (or None).
    rows : tuple of ReferenceRow
    """

    id: str
    source: str
    file: str
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
        return ReferenceTable(
            id=str(raw["id"]),
            source=str(raw["source"]),
            file=str(raw["file"]),
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
