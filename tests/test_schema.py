"""The canonical tables are a public contract: their column names, types and order are pinned
here, literally, so that a change to schema.py must also change this file (and the README)."""

from __future__ import annotations

import duckdb
import pytest

import agentlens
from agentlens import schema

CONTRACT = {
    "runs": [
        ("run_id", "VARCHAR"),
        ("source", "VARCHAR"),
        ("agent_name", "VARCHAR"),
        ("started_at", "TIMESTAMPTZ"),
        ("ended_at", "TIMESTAMPTZ"),
        ("duration_ms", "DOUBLE"),
        ("status", "VARCHAR"),
        ("user_id", "VARCHAR"),
        ("session_id", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("feature", "VARCHAR"),
        ("environment", "VARCHAR"),
        ("model", "VARCHAR"),
        ("input_tokens", "BIGINT"),
        ("output_tokens", "BIGINT"),
        ("cached_input_tokens", "BIGINT"),
        ("cache_write_input_tokens", "BIGINT"),
        ("reasoning_tokens", "BIGINT"),
        ("cost_usd", "DOUBLE"),
        ("llm_calls", "INTEGER"),
        ("tool_calls", "INTEGER"),
        ("span_count", "INTEGER"),
        ("error_count", "INTEGER"),
        ("input", "VARCHAR"),
        ("output", "VARCHAR"),
        ("attributes", "JSON"),
        ("root_span_id", "VARCHAR"),
        ("service_name", "VARCHAR"),
        ("ingested_at", "TIMESTAMPTZ"),
    ],
    "spans": [
        ("run_id", "VARCHAR"),
        ("span_id", "VARCHAR"),
        ("parent_span_id", "VARCHAR"),
        ("name", "VARCHAR"),
        ("kind", "VARCHAR"),
        ("started_at", "TIMESTAMPTZ"),
        ("ended_at", "TIMESTAMPTZ"),
        ("duration_ms", "DOUBLE"),
        ("status", "VARCHAR"),
        ("status_message", "VARCHAR"),
        ("error_type", "VARCHAR"),
        ("model", "VARCHAR"),
        ("provider", "VARCHAR"),
        ("input_tokens", "BIGINT"),
        ("output_tokens", "BIGINT"),
        ("cached_input_tokens", "BIGINT"),
        ("cache_write_input_tokens", "BIGINT"),
        ("reasoning_tokens", "BIGINT"),
        ("cost_usd", "DOUBLE"),
        ("tool_name", "VARCHAR"),
        ("tool_call_id", "VARCHAR"),
        ("tool_arguments", "VARCHAR"),
        ("tool_result", "VARCHAR"),
        ("tool_calls", "JSON"),
        ("tool_definitions", "JSON"),
        ("finish_reason", "VARCHAR"),
        ("time_to_first_token_ms", "DOUBLE"),
        ("input", "VARCHAR"),
        ("output", "VARCHAR"),
        ("attributes", "JSON"),
        ("events", "JSON"),
        ("resource_attributes", "JSON"),
        ("scope_name", "VARCHAR"),
        ("service_name", "VARCHAR"),
        ("user_id", "VARCHAR"),
        ("session_id", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("feature", "VARCHAR"),
        ("environment", "VARCHAR"),
        ("source", "VARCHAR"),
        ("source_file", "VARCHAR"),
    ],
    "quarantine": [
        ("id", "BIGINT"),
        ("ingested_at", "TIMESTAMPTZ"),
        ("source_file", "VARCHAR"),
        ("line", "BIGINT"),
        ("kind", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("raw", "VARCHAR"),
        ("run_id", "VARCHAR"),
        ("span_id", "VARCHAR"),
        ("stored", "BOOLEAN"),
    ],
    "ingested_files": [
        ("content_hash", "VARCHAR"),
        ("path", "VARCHAR"),
        ("size_bytes", "BIGINT"),
        ("mtime", "TIMESTAMPTZ"),
        ("format", "VARCHAR"),
        ("ingested_at", "TIMESTAMPTZ"),
        ("runs", "BIGINT"),
        ("spans", "BIGINT"),
        ("quarantined", "BIGINT"),
        ("seconds", "DOUBLE"),
    ],
}


def _columns(con, table):
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [(n, t.replace("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")) for n, t in rows]


@pytest.mark.parametrize("table", sorted(CONTRACT))
def test_migrated_database_matches_the_contract(tmp_path, table):
    with agentlens.open(tmp_path / "c.duckdb") as lens:
        assert _columns(lens.con, table) == CONTRACT[table]


@pytest.mark.parametrize("table", sorted(CONTRACT))
def test_schema_module_matches_the_contract(table):
    assert [(c.name, c.type) for c in schema.TABLES[table]] == CONTRACT[table]


def test_span_kinds():
    assert schema.SPAN_KINDS == ("agent", "llm", "tool", "retriever", "embedding", "chain", "guardrail", "other")


def test_migrations_are_recorded_and_idempotent(tmp_path):
    db = tmp_path / "m.duckdb"
    with agentlens.open(db) as lens:
        names = [r[0] for r in lens.con.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()]
    assert names == [n for n, _ in schema.MIGRATIONS]
    con = duckdb.connect(str(db))
    assert schema.migrate(con) == []  # nothing left to apply
    con.close()
