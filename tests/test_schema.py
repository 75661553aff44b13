"""The canonical tables are a public contract: their column names, types and order are pinned
here, literally, so that a change to schema.py must also change this file (and the README)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import agentlens
from agentlens import schema
from agentlens.present import progress as store

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
        ("reported_cost_usd", "DOUBLE"),  # 0002_costs
        ("computed_cost_usd", "DOUBLE"),
        ("unpriced_llm_calls", "INTEGER"),
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
        ("computed_cost_usd", "DOUBLE"),  # 0002_costs
        ("price_source", "VARCHAR"),
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
    "failures": [  # 0004_failures
        ("run_id", "VARCHAR"),
        ("mode", "VARCHAR"),
        ("span_id", "VARCHAR"),
        ("severity", "VARCHAR"),
        ("explanation", "VARCHAR"),
        ("evidence", "JSON"),
        ("classified_at", "TIMESTAMPTZ"),
        ("policy_hash", "VARCHAR"),
    ],
    "fleet_incidents": [  # 0004_failures
        ("incident_id", "VARCHAR"),
        ("kind", "VARCHAR"),
        ("dimension", "VARCHAR"),
        ("value", "VARCHAR"),
        ("window_start", "TIMESTAMPTZ"),
        ("window_end", "TIMESTAMPTZ"),
        ("severity", "VARCHAR"),
        ("runs", "BIGINT"),
        ("explanation", "VARCHAR"),
        ("evidence", "JSON"),
        ("classified_at", "TIMESTAMPTZ"),
        ("policy_hash", "VARCHAR"),
    ],
    "rollup_runs": [  # 0003_rollups
        ("bucket_seconds", "INTEGER"),
        ("bucket_start", "TIMESTAMPTZ"),
        ("source", "VARCHAR"),
        ("agent_name", "VARCHAR"),
        ("environment", "VARCHAR"),
        ("feature", "VARCHAR"),
        ("model", "VARCHAR"),
        ("runs", "BIGINT"),
        ("errors", "BIGINT"),
        ("implicit_errors", "BIGINT"),
        ("rate_limited_runs", "BIGINT"),
        ("timed_runs", "BIGINT"),
        ("duration_sum_ms", "DOUBLE"),
        ("duration_max_ms", "DOUBLE"),
        ("latency_ok_hist", "MAP(INTEGER, UBIGINT)"),
        ("latency_error_hist", "MAP(INTEGER, UBIGINT)"),
        ("llm_calls", "BIGINT"),
        ("rate_limited_calls", "BIGINT"),
        ("tool_calls", "BIGINT"),
        ("input_tokens", "BIGINT"),
        ("output_tokens", "BIGINT"),
        ("cached_input_tokens", "BIGINT"),
        ("cost_usd", "DOUBLE"),
        ("runs_with_cost", "BIGINT"),
        ("rolled_at", "TIMESTAMPTZ"),
    ],
    "rollup_calls": [  # 0003_rollups
        ("bucket_seconds", "INTEGER"),
        ("bucket_start", "TIMESTAMPTZ"),
        ("kind", "VARCHAR"),
        ("name", "VARCHAR"),
        ("provider", "VARCHAR"),
        ("calls", "BIGINT"),
        ("errors", "BIGINT"),
        ("rate_limited_calls", "BIGINT"),
        ("input_tokens", "BIGINT"),
        ("output_tokens", "BIGINT"),
        ("max_input_tokens", "BIGINT"),
        ("latency_ok_hist", "MAP(INTEGER, UBIGINT)"),
        ("latency_error_hist", "MAP(INTEGER, UBIGINT)"),
        ("ttft_hist", "MAP(INTEGER, UBIGINT)"),
        ("input_tokens_hist", "MAP(INTEGER, UBIGINT)"),
        ("rolled_at", "TIMESTAMPTZ"),
    ],
    "rollup_buckets": [  # 0003_rollups
        ("bucket_seconds", "INTEGER"),
        ("bucket_start", "TIMESTAMPTZ"),
        ("runs", "BIGINT"),
        ("max_concurrency", "BIGINT"),
        ("rolled_at", "TIMESTAMPTZ"),
    ],
    "rollup_ledger": [  # 0003_rollups
        ("bucket_seconds", "INTEGER"),
        ("run_id", "VARCHAR"),
        ("started_at", "TIMESTAMPTZ"),
        ("ended_at", "TIMESTAMPTZ"),
        ("ingested_at", "TIMESTAMPTZ"),
        ("cost_usd", "DOUBLE"),
    ],
    "source_watermarks": [  # 0005_sources
        ("source", "VARCHAR"),
        ("kind", "VARCHAR"),
        ("watermark_created_at", "TIMESTAMPTZ"),
        ("watermark_id", "VARCHAR"),
        ("rows_read", "BIGINT"),
        ("updated_at", "TIMESTAMPTZ"),
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


def _database_at_0005(db: Path, rows: int = 5000) -> dict[str, list[tuple]]:
    """A database migrated to 0005, with `rows` spans and runs holding long text; returns their rows."""
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ)")
    for name, fn in schema.MIGRATIONS[:5]:
        fn(con)
        con.execute("INSERT INTO schema_migrations VALUES (?, now())", [name])
    text = "a prompt " * 300
    con.execute("INSERT INTO spans (run_id, span_id, kind, input, attributes, price_source) "
                "SELECT 'r' || i, 's' || i, 'llm', ? || i, json_object('k', i), 'genai-prices:x' FROM range(?) t(i)",
                [text, rows])
    con.execute("INSERT INTO runs (run_id, input, cost_usd, unpriced_llm_calls) "
                "SELECT 'r' || i, ? || i, i / 100, 0 FROM range(?) t(i)", [text, rows])
    before = {t: con.execute(f"SELECT * FROM {t} ORDER BY run_id").fetchall() for t in ("spans", "runs")}
    con.close()
    return before


@pytest.mark.slow
def test_a_large_table_rewrite_announces_itself_on_stderr(tmp_path, capsys, monkeypatch):
    """0006 rewrites spans and runs: minutes on a large database, so opening it says what is happening."""
    small, large = tmp_path / "small.duckdb", tmp_path / "large.duckdb"
    _database_at_0005(small, rows=100)
    _database_at_0005(large, rows=3000)
    monkeypatch.setattr(store, "MIGRATION_NOTICE_ROWS", 5000)  # spans + runs: 200 below it, 6,000 above
    agentlens.open(small).close()
    assert capsys.readouterr().err == ""
    agentlens.open(large).close()
    err = " ".join(capsys.readouterr().err.split())
    assert f"agentlens: upgrading {large} to schema 0006_zstd_text: rewriting 3,000 spans and 3,000 runs" in err
    assert "agentlens: 0006_zstd_text done in" in err
    with agentlens.open(large) as lens:  # applied once: nothing more to say, and DuckDB's bar is off again
        assert lens.con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)
    assert capsys.readouterr().err == ""


def test_0006_rebuilds_spans_and_runs_with_zstd_text_and_keeps_every_row(tmp_path):
    """A 0005 database: its rows come through 0006 unchanged, and the long text columns are then
    stored with ZSTD (DuckDB's default, FSST, left the database ~3.4x larger and slower to write)."""
    db = tmp_path / "v5.duckdb"
    before = _database_at_0005(db)
    with agentlens.open(db) as lens:
        for table in ("spans", "runs"):
            assert _columns(lens.con, table) == CONTRACT[table]
            assert lens.con.execute(f"SELECT * FROM {table} ORDER BY run_id").fetchall() == before[table]
        lens.con.execute("CHECKPOINT")
        stored = dict(lens.con.execute(
            "SELECT column_name || '.' || table_name, list(DISTINCT compression) FROM ("
            "  SELECT 'spans' AS table_name, * FROM pragma_storage_info('spans') UNION ALL"
            "  SELECT 'runs', * FROM pragma_storage_info('runs')) WHERE segment_type <> 'VALIDITY' GROUP BY 1"
        ).fetchall())
    assert stored["input.spans"] == ["ZSTD"] and stored["attributes.spans"] == ["ZSTD"]
    assert stored["input.runs"] == ["ZSTD"]
    assert "ZSTD" not in stored["run_id.spans"] and "ZSTD" not in stored["kind.spans"]
