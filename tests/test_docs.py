"""The README documents every column and every command, generated from the code."""

from __future__ import annotations

from agentlens import docs, schema
from conftest import ROOT


def test_readme_sections_are_current():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert docs.render(text) == text, "README.md is out of date: run `.venv/bin/python -m agentlens.docs`"


def test_every_column_is_documented():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for table, cols in schema.TABLES.items():
        assert f"#### `{table}`" in text
        for c in cols:
            assert f"| `{c.name}` | {c.type} |" in text


def test_readme_names_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()
