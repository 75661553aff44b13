"""Every named SQL text parses and binds against the migrated schema."""

from __future__ import annotations

import pytest

from agentlens import sql as Q


@pytest.mark.parametrize("name", sorted(Q.ALL_SQL))
def test_sql_parses_and_binds(lens, name):
    text = Q.ALL_SQL[name]
    con = lens.con
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _batch AS SELECT * FROM spans LIMIT 0")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _batch_runs AS SELECT * EXCLUDE (ingested_at) FROM runs LIMIT 0")
    statements = con.extract_statements(text)
    assert len(statements) == 1
    n = text.count("?")
    con.execute("BEGIN TRANSACTION")
    try:
        params = ["x"] + [None] * (n - 1) if n else None  # a key where a key is required
        con.execute(text, params).fetchall()
    finally:
        con.execute("ROLLBACK")
