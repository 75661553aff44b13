"""Every named SQL text parses and binds against the migrated schema."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agentlens.adapters.base import RUN_SCHEMA, SPAN_SCHEMA
from agentlens.ingest import sql as Q
from agentlens.store import queries, runsql, tables

ALL_SQL = {**Q.ALL_SQL, **runsql.ALL_SQL, **queries.ALL_SQL}


@pytest.mark.parametrize("name", sorted(ALL_SQL))
def test_sql_parses_and_binds(lens, tmp_path, name):
    text = ALL_SQL[name]
    con = lens.con
    # the temp tables and staged Parquet files the ingest statements read
    for table in ("_given",):
        con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (run_id VARCHAR, chunk BIGINT)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _rebuild (run_id VARCHAR, first_row BIGINT, bytes BIGINT, chunk BIGINT)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _staged (run_id VARCHAR, span_id VARCHAR, _row BIGINT, _bytes BIGINT, ended_at TIMESTAMPTZ)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _dups (run_id VARCHAR, span_id VARCHAR, keep BIGINT)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _existing (rid BIGINT, run_id VARCHAR, span_id VARCHAR)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _versions (run_id VARCHAR, span_id VARCHAR, _row BIGINT, rid BIGINT, "
                "ended_at TIMESTAMPTZ, started_at TIMESTAMPTZ, answered BOOLEAN, bytes BIGINT, h VARCHAR, keep BOOLEAN, differs BOOLEAN)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _replaced (rid BIGINT)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _given_rows (run_id VARCHAR, _row BIGINT, span_row BIGINT)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _given_pick (run_id VARCHAR, _row BIGINT)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _stored_runs (run_id VARCHAR)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _skip (_row BIGINT)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _rebuild_rids (chunk BIGINT, rid BIGINT)")
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS _narrow_file (chunk BIGINT, {tables.NARROW.columns})")
    for shared in tables.SHARED:
        con.execute(shared.create())
    staged = {"spans": SPAN_SCHEMA, "runs": RUN_SCHEMA, "bad": pa.schema(
        [("line", pa.int64()), ("kind", pa.string()), ("reason", pa.string()), ("raw", pa.string()),
         ("run_id", pa.string()), ("span_id", pa.string()), ("stored", pa.bool_())])}
    for kind, schema in staged.items():
        schema = schema.append(pa.field("_row", pa.int64()))
        if kind == "spans":
            schema = schema.append(pa.field("_bytes", pa.int64()))
        pq.write_table(schema.empty_table(), tmp_path / f"{kind}-0.parquet")
    statements = con.extract_statements(text)
    assert len(statements) == 1
    # statements reading staged Parquet or chunk sizes get those; the rest a key and NULLs
    staged_path = {k: str(tmp_path / f"{k}-0.parquet") for k in staged}
    params = {
        "STAGE_KEYS": [staged_path["spans"]], "PUBLISH_SPANS": [staged_path["spans"]],
        "STAGE_NARROW": [staged_path["spans"]],
        "STAGE_GIVEN_NO_SPANS": [staged_path["runs"]], "PUBLISH_GIVEN_RUNS": [staged_path["runs"]],
        "STAGE_GIVEN_ROWS": [staged_path["runs"], staged_path["spans"]], "STAGE_VERSIONS": [staged_path["spans"]],
        "PUBLISH_QUARANTINE": {"name": "source.jsonl", "glob": staged_path["bad"]},
        "RECORD_FILES": ["[]"], "LAST_READS": ["", ["a"]], "FILES_SEEN": [["a"]], "RECORD_READ": ["a.jsonl", "", "otlp", 10, "f", 1, True], "RECORD_READS": ["[]"], "QUARANTINE_FILES": ["[]"],
        "STAGE_REBUILD": {"n": 100, "b": 1000, "nb": 100_000}, "STAGE_TOUCHED": {"n": 100, "b": 1000, "nb": 100_000},
        "STAGE_PRIOR": [0],
    }.get(name)
    if params is None:
        n = text.count("?")
        params = ["x"] + [None] * (n - 1) if n else []  # a key where a key is required
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(text, params or None).fetchall()
    finally:
        con.execute("ROLLBACK")


def test_temp_tables_are_declared_where_they_are_shared():
    """A temp table one package fills and another reads is declared in store/tables.py (with what it holds);
    every other temp table is created in the package that reads it."""
    import re

    from conftest import ROOT

    shared = {t.name for t in tables.SHARED}
    used: dict[str, set[str]] = {}
    created: dict[str, set[str]] = {}
    for path in (ROOT / "agentlens").rglob("*.py"):
        pkg = path.relative_to(ROOT / "agentlens").parts[0]
        text = path.read_text(encoding="utf-8")
        for name in re.findall(r"\b(?:FROM|JOIN|INTO|UPDATE)\s+(_[a-z][a-z_]*)\b", text):
            used.setdefault(name, set()).add(pkg)
        for name in re.findall(r"TEMP TABLE (?:IF NOT EXISTS )?(_[a-z][a-z_]*)\b", text):
            created.setdefault(name, set()).add(pkg)
        for name in re.findall(r"""registered\([^,]+,\s*["'](_[a-z][a-z_]*)["']""", text):
            created.setdefault(name, set()).add(pkg)
        for name in re.findall(r"""\.register\(\s*["'](_[a-z][a-z_]*)["']""", text):
            created.setdefault(name, set()).add(pkg)
    assert used, "no temp table found: the pattern is broken"
    undeclared = {name: sorted(pkgs - created.get(name, set()))
                  for name, pkgs in used.items() if name not in shared and pkgs - created.get(name, set())}
    assert not undeclared, f"temp tables read by a package that neither creates them nor finds them declared: {undeclared}"
    for t in tables.SHARED:  # declared ones are created from their declaration, not by a CREATE ... AS elsewhere
        assert t.name not in created, f"{t.name} is declared in store/tables.py but created by hand in {created[t.name]}"
