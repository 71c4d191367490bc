"""Published rows: transcribed exactly from the cited source lines, mapped to known metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evaluator.datasets.registry import load_registry
from evaluator.errors import RegistryError
from evaluator.metrics.registry import METRICS
from leaderboards.reference import REFERENCE_FILE, load_reference_tables, parse_reported
from tests.leaderboards.excerpts import excerpts_from, load_excerpts, normalised

# The source texts live beside the repository (../shared/seeds) in CI; the lines the tables cite
# are kept in the repository (tests/data/reference_excerpts.json), so these tests run anywhere.
SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"


def _texts() -> dict[str, dict[int, str]]:
    """The cited lines: from the repository's excerpts, checked against the texts when present."""
    excerpts = load_excerpts()
    if SEEDS.is_dir():  # CI: the excerpts must be the source texts' lines, byte for byte
        fresh = {
            file: {int(n): t for n, t in v["lines"].items()}
            for file, v in excerpts_from(SEEDS).items()
        }
        assert fresh == excerpts, "run: python scripts/reference_excerpts.py"
    return excerpts


def test_tables_refer_to_known_tasks_and_metrics() -> None:
    tables = load_reference_tables()
    assert {t.id for t in tables} == {
        "apex-table2",
        "apex-chestxdet",
        "thesis-table16-autopet",
        "thesis-table16-hecktor",
        "multitalent-table1",
    }
    tasks = load_registry().tasks
    for table in tables:
        assert all(t in tasks for t in table.tasks)
        assert all(m is None or m in METRICS for m in table.columns.values())


def test_values_are_copied_from_the_cited_lines() -> None:
    texts = _texts()
    for table in load_reference_tables():
        lines = texts[table.file]
        for row in table.rows:
            cited = lines[row.line].replace("\t", " ")
            wrapped = " ".join((cited, lines.get(row.line + 1, ""))).replace("\t", " ")
            for column, value in row.values.items():
                # numbers must be on the cited line; a wrapped text cell may go on to the next
                where = (table.id, row.method, column, value, row.line)
                if parse_reported(value) is not None:
                    assert value in cited, where
                else:
                    assert all(word in wrapped for word in value.split()), where


def test_known_published_numbers() -> None:
    """Spot checks against the papers: thesis nnUNet Dice 67.5 / CC-Dice 47.4, APEX test Dice."""
    tables = {t.id: t for t in load_reference_tables()}
    nnunet = tables["thesis-table16-autopet"].rows[0]
    assert (nnunet.method, nnunet.values["Dice"], nnunet.values["CC-Dice"]) == (
        "nnUNet",
        "67.5",
        "47.4",
    )
    apex = tables["apex-table2"].rows[-1]
    assert parse_reported(apex.values["test Dice"]) == (73.01, 0.7)
    assert parse_reported("_") is None


def test_every_table_has_a_full_citation_and_protocol() -> None:
    for table in load_reference_tables():
        c = table.citation
        assert c.authors and c.title and c.venue and c.table.startswith("Table "), table.id
        assert 2000 < c.year < 2100, table.id
        assert table.protocol, table.id
        assert table.comparable or table.caveat, table.id  # not comparable: say why
        assert table.file.endswith(".txt") and all(r.line > 0 for r in table.rows)
        assert str(c.year) in c.text and c.table in c.text and c.title in c.text


def test_citations_name_the_text_the_rows_come_from() -> None:
    """The cited title, first author and table label are in the text the numbers come from."""
    texts = _texts()
    for table in load_reference_tables():
        text = "\n".join(texts[table.file].values())
        flat = normalised(text)
        assert normalised(table.citation.title) in flat, table.id
        first_author = table.citation.authors.split(",")[0]
        assert first_author in text, table.id
        assert re.search(rf"\b{table.citation.table}\b", text), table.id


def test_a_table_that_is_not_comparable_must_say_why(tmp_path: Path) -> None:
    text = REFERENCE_FILE.read_text(encoding="utf-8")
    broken = re.sub(r"    caveat: >-\n(      .*\n)+", "", text, count=1)
    assert broken != text
    path = tmp_path / "reference.yaml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(RegistryError, match="needs a 'caveat'"):
        load_reference_tables(path)
