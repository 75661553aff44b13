"""A whole DuckDB database into a ClickHouse store (`agentlens store migrate --to URL`): every table of the
contract, read from DuckDB as Arrow record batches and inserted as they come (bounded memory). Rows get
the version of the migration; running it again writes the same rows with a newer version, which the views
read as one (idempotent)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from .. import schema
from . import search
from .connection import ClickHouseConnection
from .ddl import storage

BATCH_ROWS = 100_000


@dataclass
class Moved:
    tables: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def select_contract(table: str, where: str = "") -> str:
    """The contract columns of a DuckDB table as ClickHouse takes them (JSON as text)."""
    cols = ", ".join(f'"{c.name}"::VARCHAR AS "{c.name}"' if c.type == "JSON" else f'"{c.name}"'
                     for c in schema.TABLES[table])
    return f"SELECT {cols} FROM {table} {where}"  # noqa: S608 - contract names; `where` is fixed SQL of the caller


def copy_rows(duck: duckdb.DuckDBPyConnection, ch: ClickHouseConnection, table: str, query: str,
              params: list[object] | None, version: int, extra: dict[str, int] | None = None) -> int:
    """The rows of `query` (DuckDB) into the storage table of `table`, with `_version` (and `extra` constant
    columns). Returns the rows."""
    import pyarrow as pa

    reader = duck.sql(query, params=params).to_arrow_reader(BATCH_ROWS)
    n = 0
    try:
        for batch in reader:
            t = pa.Table.from_batches([batch])
            t = t.append_column("_version", pa.array([version] * t.num_rows, pa.uint64()))
            for name, value in (extra or {}).items():
                t = t.append_column(name, pa.array([value] * t.num_rows, pa.uint8()))
            ch.engine.insert(storage(table), t)
            n += t.num_rows
    finally:
        reader.close()  # DuckDB runs nothing else on the connection while a result is open
    return n


def migrate(duck: duckdb.DuckDBPyConnection, ch: ClickHouseConnection,
            on_table: Callable[[str, int], None] | None = None,
            words: Callable[[duckdb.DuckDBPyConnection, str], Iterable[pa.Table]] | None = None) -> Moved:
    """`words`: the search words of the runs of a query (agentlens.explore.search.run_words), written to the
    store for `runs --search` (search.py); without it, a search of the store says its runs have none."""
    t0 = time.perf_counter()
    moved = Moved()
    version = time.time_ns() // 1000
    have = {r[0] for r in duck.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    for table in schema.TABLES:
        if table not in have:
            continue
        moved.tables[table] = copy_rows(duck, ch, table, select_contract(table), None, version)
        if on_table is not None:
            on_table(table, moved.tables[table])
    if words is not None and "runs" in have:
        moved.tables["run_words"] = search.write(ch, words(duck, "SELECT run_id FROM runs"), version)
        if on_table is not None:
            on_table("run_words", moved.tables["run_words"])
    moved.seconds = time.perf_counter() - t0
    return moved
