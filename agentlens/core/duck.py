"""DuckDB helpers for the code that runs inside an ingest's transaction."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

# `arrow` reads a DB-API result as Arrow on purpose (see there): DuckDB's advice against it, given for each
# call, is silenced for agentlens's own calls only
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning,
                        module=r"agentlens\.")


def arrow(con: duckdb.DuckDBPyConnection, query: str, params: Any = None) -> Any:
    """A statement's rows as an Arrow table, the statement planned once. `con.sql(query).to_arrow_table()`
    binds the statement to make the relation, then plans it again to run it: 4-15 ms each for the larger
    statements of a publish (classifiers, fleet checks), about all their time on a batch of one run. The
    DB-API result copies its rows once more, which costs nothing on the few rows these statements return."""
    return con.execute(query, params).to_arrow_table()


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: Any) -> Iterator[None]:
    """`table` (Arrow, polars) visible to SQL as `name` inside the block. A statement that fails inside a
    transaction aborts it, and DuckDB then refuses every statement, the unregister included: that refusal
    is dropped, so the error that failed the statement is the one the caller sees (and rolls back on)."""
    con.register(name, table)
    try:
        yield
    except BaseException:
        try:
            con.unregister(name)
        except duckdb.Error:
            pass
        raise
    con.unregister(name)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The block in one transaction: committed at its end, rolled back on any error. A COMMIT that fails
    (out of memory writing the last row groups) has already rolled back: the ROLLBACK's complaint that no
    transaction is active is dropped, so the caller sees why the COMMIT failed."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.TransactionException:
            pass
        raise


def out_of_memory(e: BaseException) -> bool:
    """DuckDB ran out of its memory limit (at COMMIT it says so in a TransactionException)."""
    text = str(e)
    return isinstance(e, duckdb.OutOfMemoryException) or (
        isinstance(e, duckdb.Error) and ("Out of Memory" in text or "failed to pin block" in text))


def interrupted(e: BaseException) -> bool:
    """DuckDB stopped a statement because the process got Ctrl-C (it raises that as an error of its own, or
    as a RuntimeError "Query interrupted"), not because the statement failed."""
    return isinstance(e, duckdb.InterruptException) or (isinstance(e, RuntimeError) and "Query interrupted" in str(e))
