"""The DuckDB store: opening and migrating a database, and the queries that return polars DataFrames.

`Store` is the thin layer every part of agentlens works through: pricing, the failure classifiers and
the metrics take a Store and run their SQL on `store.con`. Writing data in is the ingest package's
(agentlens.ingest); `agentlens.Lens` (agentlens.api) is a Store that can also ingest.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import duckdb
import polars as pl

from .. import schema
from ..core.config import Config
from ..core.results import Result
from ..scale import connect as scale_connect
from ..scale import is_spark_url, is_store_url, spark_connect
from . import chunks, owner, queries
from .errors import DatabaseBusy, DatabaseMissing, DatabaseUnavailable, StoreError
from .locking import lock_holder

if TYPE_CHECKING:
    from .remote import RemoteConnection

__all__ = ["DEFAULT_DB", "DatabaseBusy", "DatabaseMissing", "DatabaseUnavailable", "Store", "StoreError",
           "default_db_path", "memory_limit", "out_of_memory_advice"]

DEFAULT_DB = "agentlens.duckdb"
DEFAULT_MEMORY_LIMIT = "1GB"  # DuckDB's cap; override with $AGENTLENS_MEMORY_LIMIT

# Told before a migration that rewrites whole tables, with the connection, the database path, the
# migration's name and the rows of the tables it rewrites; gives back a callback told each table as it
# starts (agentlens.present.progress.migration_notice shows it on stderr).
Announce = Callable[[duckdb.DuckDBPyConnection, str, str, dict[str, int]],
                    AbstractContextManager[Callable[[str], None]]]


DEFAULT_WAIT = 60.0  # seconds to wait for a database another process holds without serving it

# Starts serving a database this process holds to other processes (agentlens.server.serve); returns a handle
# with `stop()`.
Serve = Callable[["Store"], Any]


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
    """An agentlens database: the DuckDB connection (`con`), migrated, and queries over it.

    Whoever holds the database file serves it (store/owner.py): opening a database another process holds
    makes this Store its client (`remote`), whose `con` sends each statement there; write operations
    (store.ops) run there too. Otherwise the file is opened here: read-write and served to others when
    `serve` is given (agentlens.server.serve), else read-only when `read_only`."""

    con: duckdb.DuckDBPyConnection
    remote: RemoteConnection | None = None
    serving: Any = None
    clickhouse: Any = None  # a ClickHouse store (agentlens.scale): its connection, which `con` is too
    spark: Any = None  # a lake read on Spark (spark://host:port?lake=DIR, agentlens.scale): its connection, `con` too

    def __init__(self, path: str | Path | None = None, config: Config | None = None, read_only: bool = False,
                 announce: Announce | None = None, serve: Serve | None = None, create: bool = True,
                 wait: float = DEFAULT_WAIT, notify: Callable[[str], None] | None = None):
        """`read_only`: this Store only reads (without `serve`, the file is opened read-only and never
        created or migrated). `serve`: when no process holds the database, hold it here and serve it to
        others. `create`: a missing database may be created. `wait`: seconds to wait while another process
        holds the file without serving it (an older agentlens, DuckDB's own CLI, a read-only reader).
        `notify` hears once what we wait for. DuckDB's memory is capped at $AGENTLENS_MEMORY_LIMIT
        (default 1GB): larger work spills to a temporary folder beside the database. `announce` hears of a
        migration that rewrites whole tables before it runs (see `Announce`)."""
        self.path = str(path) if path is not None else default_db_path()
        self.config = config or Config()
        self.read_only = read_only
        self._opened = (read_only, announce, serve, create, wait, notify)
        self._connect(announce, serve, create, wait, notify)

    def reopen(self) -> None:
        """Open the database again after the process that held it went away (a client's OwnerGone): as its
        owner now, or as a client of the process that took it over meanwhile. Temporary tables of the old
        session are gone. For long-running writers (the receiver); a notebook opens the database again."""
        if self.remote is None:
            return
        try:
            self.remote.close()
        except Exception:
            pass
        self.remote = None
        read_only, announce, serve, create, wait, notify = self._opened
        self.read_only = read_only
        self._connect(announce, serve, create, wait, notify)

    @classmethod
    def attach(cls, con: duckdb.DuckDBPyConnection, path: str, config: Config) -> Store:
        """A Store on a connection of a database this process holds (the server's sessions)."""
        store = cls.__new__(cls)
        store.path, store.config, store.read_only, store.con = path, config, False, con
        return store

    def _connect(self, announce: Announce | None, serve: Serve | None, create: bool, wait: float,
                 notify: Callable[[str], None] | None) -> None:
        if is_spark_url(self.path):  # spark://host:port?lake=DIR (agentlens.scale.sparkconn): read-only
            try:
                self.spark = spark_connect(self.path)
            except (RuntimeError, ValueError) as e:  # SparkError, LakeMissing, StoreURLError: one line says it
                raise DatabaseUnavailable(str(e)) from None
            self.path = self.spark.url.display()
            self.read_only = True
            self.con = cast(duckdb.DuckDBPyConnection, self.spark)
            return
        if is_store_url(self.path):  # clickhouse://..., clickhouse+chdb://... (agentlens.scale)
            try:
                self.clickhouse = scale_connect(self.path)
            except RuntimeError as e:  # scale.engine.EngineError: the server or the data folder cannot be used
                raise DatabaseUnavailable(str(e)) from None
            self.path = self.clickhouse.url.display()
            # duck-types the part of DuckDB's connection agentlens uses (scale/connection.py)
            self.con = cast(duckdb.DuckDBPyConnection, self.clickhouse)
            return
        memory = self.path in ("", ":memory:") or self.path.startswith(":memory:")
        if not memory and not Path(self.path).exists() and not create:
            raise DatabaseMissing(f"{self.path}: no such database")
        deadline = time.monotonic() + max(wait, 0.0)
        told = False
        attempt = 0
        while True:
            if not memory:
                ep = owner.endpoint(self.path)
                info = owner.read_info(ep)
                if info is not None and info.pid != os.getpid():
                    if owner.alive(info.pid):
                        from .remote import OwnerGone, RemoteConnection  # pyarrow.flight: only when needed

                        try:
                            self.remote = RemoteConnection(ep.location, self.path, self.config, info.pid)
                            # duck-types the part of DuckDB's connection agentlens uses (store/remote.py)
                            self.con = cast(duckdb.DuckDBPyConnection, self.remote)
                            self.read_only = self.read_only or not info.writes
                            return
                        except (OwnerGone, OSError):
                            pass  # starting or stopping: look again below
                    else:
                        owner.clear(ep, info.pid)  # a dead owner's leftovers
            try:
                self._open_file(announce, serve if not memory else None)
                return
            except duckdb.IOException as e:
                holder = lock_holder(e)
                if holder is None:
                    raise DatabaseUnavailable(f"{self.path}: cannot open the database: {str(e).splitlines()[0]}") from None
                pid = _pid_of(holder)
                who = owner.describe_process(pid) if pid else holder
                if time.monotonic() >= deadline:
                    raise DatabaseBusy(
                        f"{self.path}: held by {who}, which does not serve it to other processes; "
                        f"gave up after {wait:g} s: stop that process or try again when it is done") from None
                if notify is not None and not told and attempt >= 3:
                    notify(f"{self.path} is held by {who}; waiting up to {wait:g} s ...")
                    told = True
                time.sleep(min(owner.wait_backoff(attempt), max(deadline - time.monotonic(), 0.01)))
                attempt += 1

    def _open_file(self, announce: Announce | None, serve: Serve | None) -> None:
        """Open the file here: read-write to serve it (or read-only when the file cannot be written), or
        read-only for a reader that does not serve."""
        read_only = self.read_only and serve is None
        if serve is not None and not read_only and Path(self.path).exists() and not _writable(self.path):
            read_only = True  # a file we may only read: served for reading
        try:
            self.con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.IOException:
            raise
        except duckdb.Error as e:
            raise DatabaseUnavailable(f"{self.path}: cannot open the database: {str(e).splitlines()[0]}") from None
        self.read_only = read_only if serve is not None else self.read_only
        self.con.execute("SET TimeZone = 'UTC'")
        # DuckDB draws its own progress bar on stderr for statements over 2 s; ours (rich) is the one
        self.con.execute("SET enable_progress_bar = false")
        self.con.execute("SET memory_limit = ?", [memory_limit()])
        if not read_only:
            schema.migrate(self.con, None if announce is None else (
                lambda name, rows: announce(self.con, self.path, name, rows)))
        if serve is not None:
            try:
                self.serving = serve(self)
            except BaseException:
                self.con.close()  # not served, not held: the next opener must not find it locked by us
                raise

    def local_path(self) -> str:
        """The DuckDB database this process writes into: the store itself (api.Lens: with a ClickHouse
        store, this process's work database). What lives beside it (the receiver's spool) goes there."""
        return self.path

    def check_writable(self) -> None:
        if self.read_only and self.remote is None:
            raise DatabaseUnavailable(f"{self.path}: opened read-only; this needs to write to it")

    # -- lifecycle ----------------------------------------------------------------------------------
    def close(self) -> None:
        if self.serving is not None:
            self.serving.stop()  # running requests of other processes finish first
            self.serving = None
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
        shown = self.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]  # not duckdb_settings(): 3 ms
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
            "LLM calls by model": self.sql(queries.BY_MODEL),
            "runs by feature": self.sql(queries.BY_FEATURE),
        }
        q = self.sql(queries.QUARANTINE_BY_KIND)
        if q.height:
            tables["quarantine by kind"] = q
        return Result("agentlens: what is in the database", facts, tables)


def _pid_of(holder: str) -> int | None:
    m = re.search(r"PID (\d+)", holder)
    return int(m.group(1)) if m else None


def _writable(path: str) -> bool:
    """Whether the file and its folder (DuckDB writes a WAL beside it) can be written."""
    return os.access(path, os.W_OK) and os.access(Path(path).resolve().parent, os.W_OK)
