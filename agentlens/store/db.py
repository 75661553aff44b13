"""The DuckDB store: opening and migrating a database, and the queries that return polars DataFrames.

`Store` is the thin layer every part of agentlens works through: pricing, the failure classifiers and
the metrics take a Store and run their SQL on `store.con`. Writing data in is the ingest package's
(agentlens.ingest); `agentlens.Lens` (agentlens.api) is a Store that can also ingest.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from .. import schema
from ..core.config import Config
from ..core.results import Result
from . import chunks, queries

DEFAULT_DB = "agentlens.duckdb"
DEFAULT_MEMORY_LIMIT = "1GB"  # DuckDB's cap; override with $AGENTLENS_MEMORY_LIMIT

# Told before a migration that rewrites whole tables, with the connection, the database path, the
# migration's name and the rows of the tables it rewrites; gives back a callback told each table as it
# starts (agentlens.present.progress.migration_notice shows it on stderr).
Announce = Callable[[duckdb.DuckDBPyConnection, str, str, dict[str, int]],
                    AbstractContextManager[Callable[[str], None]]]


def default_db_path() -> str:
    return os.environ.get("AGENTLENS_DB") or DEFAULT_DB


def memory_limit() -> str:
    """DuckDB's memory limit as configured: $AGENTLENS_MEMORY_LIMIT, else DEFAULT_MEMORY_LIMIT."""
    return os.environ.get("AGENTLENS_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT


def out_of_memory_advice(e: BaseException) -> str:
    """What to tell a user whose DuckDB ran out of memory (see core.duck.out_of_memory)."""
    return (f"DuckDB ran out of memory at its limit of {memory_limit()} ({str(e).splitlines()[0]}); "
            "raise $AGENTLENS_MEMORY_LIMIT (e.g. 4GB) and run it again")


class Store:
    """An agentlens database: the DuckDB connection (`con`), migrated, and queries over it."""

    def __init__(self, path: str | Path | None = None, config: Config | None = None, read_only: bool = False,
                 announce: Announce | None = None):
        """DuckDB's memory is capped at $AGENTLENS_MEMORY_LIMIT (default 1GB): larger work spills to a
        temporary folder beside the database instead of growing the process. `announce` hears of a
        migration that rewrites whole tables before it runs (see `Announce`)."""
        self.path = str(path) if path is not None else default_db_path()
        self.config = config or Config()
        self.read_only = read_only
        self.con = duckdb.connect(self.path, read_only=read_only)
        self.con.execute("SET TimeZone = 'UTC'")
        # DuckDB draws its own progress bar on stderr for statements over 2 s; ours (rich) is the one
        self.con.execute("SET enable_progress_bar = false")
        self.con.execute("SET memory_limit = ?", [memory_limit()])
        if not read_only:
            schema.migrate(self.con, None if announce is None else (
                lambda name, rows: announce(self.con, self.path, name, rows)))

    # -- lifecycle ----------------------------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- memory ---------------------------------------------------------------------------------------
    def chunk_bytes(self) -> int:
        """What the runs built or classified together may weigh (store.chunks): `BUILD_CHUNK_BYTES`, else a
        quarter of DuckDB's memory limit."""
        return chunks.BUILD_CHUNK_BYTES or self.memory_limit_bytes() // 4

    def memory_limit_bytes(self) -> int:
        """DuckDB's memory limit in bytes (it shows it as e.g. '953.6 MiB')."""
        shown = self.con.execute("SELECT value FROM duckdb_settings() WHERE name = 'memory_limit'").fetchall()[0][0]
        m = re.fullmatch(r"([\d.]+)\s*(bytes|[KMGT]i?B)", shown.strip())
        if not m:
            return 1 << 30
        unit = m.group(2)
        power = 0 if unit == "bytes" else "KMGT".index(unit[0]) + 1
        return int(float(m.group(1)) * (1024 if "i" in unit else 1000) ** power)

    def one(self, query: str, params: list[Any] | None = None) -> tuple[Any, ...] | None:
        """First row of a statement (DuckDB wants every result consumed before the next statement)."""
        rows = self.con.execute(query, params).fetchall()
        return rows[0] if rows else None

    # -- queries ------------------------------------------------------------------------------------
    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Any SQL over the canonical tables, values bound as parameters, as a polars DataFrame."""
        rel = self.con.sql(query, params=params)
        return rel.pl() if rel is not None else pl.DataFrame()

    def runs(
        self,
        since: dt.datetime | str | None = None,
        until: dt.datetime | str | None = None,
        status: str | None = None,
        limit: int | None = None,
        order_by: str = "started_at",
        descending: bool = True,
        **equals: Any,
    ) -> pl.DataFrame:
        """Runs, newest first. Keyword filters are equality on run columns: `lens.runs(feature="refund")`."""
        cols = {c.name for c in schema.RUN_COLUMNS}
        where, params = [], []
        for name, value in (("status", status), *equals.items()):
            if value is None:
                continue
            if name not in cols:
                raise ValueError(f"unknown run column {name!r}; columns: {', '.join(sorted(cols))}")
            where.append(f'"{name}" = ?')
            params.append(value)
        if since is not None:
            where.append("started_at >= ?::TIMESTAMPTZ")
            params.append(since)
        if until is not None:
            where.append("started_at < ?::TIMESTAMPTZ")
            params.append(until)
        if order_by not in cols:
            raise ValueError(f"unknown run column {order_by!r}")
        q = "SELECT * FROM runs"
        if where:
            q += " WHERE " + " AND ".join(where)
        q += f' ORDER BY "{order_by}" {"DESC" if descending else "ASC"} NULLS LAST, run_id'
        if limit is not None:
            q += " LIMIT ?"
            params.append(int(limit))
        return self.sql(q, params)

    def spans(self, run_id: str) -> pl.DataFrame:
        """The spans of one run in start order."""
        return self.sql(queries.SPANS_OF_RUN, [run_id])

    def quarantine(self, kind: str | None = None) -> pl.DataFrame:
        if kind is None:
            return self.sql("SELECT * FROM quarantine ORDER BY id")
        return self.sql("SELECT * FROM quarantine WHERE kind = ? ORDER BY id", [kind])

    def overview(self) -> Result:
        """What is in the database: runs, spans, time range, sources, models, features."""
        ov = self.sql(queries.OVERVIEW).row(0, named=True)
        facts = {
            "database": self.path,
            "runs": ov["runs"], "spans": ov["spans"], "runs with error status": ov["error_runs"],
            "first run": ov["first_run"], "last run": ov["last_run"],
            "input tokens": ov["input_tokens"], "output tokens": ov["output_tokens"],
            "cached input tokens": ov["cached_input_tokens"],
            f"cost (USD, {ov['runs_with_cost']:,} of {ov['runs']:,} runs have one)":
                ov["cost_usd"],
            "quarantined records": ov["quarantined"],
        }
        tables = {
            "runs by source": self.sql(queries.BY_SOURCE),
            "LLM spans by model": self.sql(queries.BY_MODEL),
            "runs by feature": self.sql(queries.BY_FEATURE),
        }
        q = self.sql(queries.QUARANTINE_BY_KIND)
        if q.height:
            tables["quarantine by kind"] = q
        return Result("agentlens: what is in the database", facts, tables)
