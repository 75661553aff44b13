"""Every named SQL text parses and binds against the migrated schema."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agentlens.adapters.base import RUN_SCHEMA, SPAN_SCHEMA
from agentlens.ingest import sql as Q
from agentlens.store import queries, runsql

ALL_SQL = {**Q.ALL_SQL, **runsql.ALL_SQL, **queries.ALL_SQL}


@pytest.mark.parametrize("name", sorted(ALL_SQL))
def test_sql_parses_and_binds(lens, tmp_path, name):
    text = ALL_SQL[name]
    con = lens.con
    # the temp tables and staged Parquet files the ingest statements read
    for table in ("_build", "_given", "_touched"):
        con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (run_id VARCHAR, chunk BIGINT)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _rebuild (run_id VARCHAR, first_row BIGINT, bytes BIGINT, chunk BIGINT)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _staged (run_id VARCHAR, span_id VARCHAR, _row BIGINT, _bytes BIGINT)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _dups (run_id VARCHAR, span_id VARCHAR, keep BIGINT)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _existing (run_id VARCHAR, span_id VARCHAR)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _stored_runs (run_id VARCHAR)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _skip (_row BIGINT)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _build_rids (rid BIGINT)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _rebuild_rids (chunk BIGINT, rid BIGINT)")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _narrow_file (chunk BIGINT, _row BIGINT)")
    con.execute(Q.STAGE_SPAN_COSTS_TABLE)
    con.execute(Q.STAGE_RUN_COSTS_TABLE)
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
        "STAGE_GIVEN": [staged_path["runs"]], "PUBLISH_GIVEN_RUNS": [staged_path["runs"]],
        "PUBLISH_QUARANTINE": ["source.jsonl", staged_path["bad"]],
        "STAGE_REBUILD": {"n": 100, "b": 1000, "nb": 100_000}, "STAGE_TOUCHED": {"n": 100, "b": 1000, "nb": 100_000},
    }.get(name)
    if params is None:
        n = text.count("?")
        params = ["x"] + [None] * (n - 1) if n else []  # a key where a key is required
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(text, params or None).fetchall()
    finally:
        con.execute("ROLLBACK")
