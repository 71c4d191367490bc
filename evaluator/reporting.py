"""Rich tables and summaries printed by the CLI.

Each function takes the result object of one library call and a :class:`rich.console.Console`;
none of them computes anything.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

__all__ = ["kv_table"]


def kv_table(title: str, rows: dict[str, Any]) -> Table:
    """A two-column key/value table.

    Examples
    --------
    >>> kv_table("run", {"task": "autopet"}).row_count
    1
    """
    table = Table(title=title, show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in rows.items():
        table.add_row(key, str(value))
    return table




# ---- datasets: phantoms ---------------------------------------------------------------------

# ---- datasets: splits and checks ------------------------------------------------------------

# ---- metrics ----------------------------------------------------------------------------------

# ---- evaluate ---------------------------------------------------------------------------------

# ---- runner -----------------------------------------------------------------------------------

# ---- simulate ---------------------------------------------------------------------------------
