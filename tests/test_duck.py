"""agentlens.core.duck: a failed statement inside a transaction reports its own error, not DuckDB's refusal of
the unregister that follows it."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from agentlens.core.duck import registered


def test_the_error_that_aborts_a_transaction_is_the_one_raised():
    con = duckdb.connect()
    con.execute("CREATE TABLE t (a INTEGER PRIMARY KEY)")
    con.execute("INSERT INTO t VALUES (1)")
    con.execute("BEGIN TRANSACTION")
    with pytest.raises(duckdb.ConstraintException, match="Duplicate key"):
        with registered(con, "_x", pa.table({"a": [1]})):
            con.execute("INSERT INTO t SELECT a FROM _x")
    con.execute("ROLLBACK")
    with registered(con, "_x", pa.table({"a": [2]})):
        assert con.execute("SELECT a FROM _x").fetchall() == [(2,)]
    with pytest.raises(duckdb.CatalogException):  # unregistered after the block
        con.execute("SELECT a FROM _x").fetchall()
