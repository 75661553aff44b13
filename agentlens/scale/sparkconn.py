"""A Parquet lake read on Spark behind the part of DuckDB's connection that agentlens uses (as
ClickHouseConnection, connection.py): `execute(...).fetchall()` / `.fetchone()`, `sql(...).pl()` /
`.to_arrow_table()`, `register` / `unregister`. A Store whose `con` is one of these reads the canonical tables
from the lake (`spark://host:port?lake=DIR`): every statement is translated to Spark SQL (sparksql.py) and
checked against the Spark conformance record (conformance.py, `conformance_spark.txt`) first, and one that has
not passed the conformance suite is refused with `NotSupportedOnSpark`, never run with other semantics.

The lake (written by `agentlens export --lake` and the distributed ingest; docs/scale-out.md, Spark):
`DIR/<table>/day=YYYY-MM-DD/*.parquet` for runs, spans and failures, `DIR/<table>/*.parquet` for the other
contract tables, `DIR/_agentlens_lake.json`. Each table is a temporary view of this connection's own Spark
session (`newSession()`: its views are its own), with the contract's columns exactly (the partition column
`day` dropped; a table the lake lacks reads as empty). Read-only: writes are refused.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
from sqlglot import exp

from .. import schema
from . import conformance
from . import sparksql as sq
from .connection import _ARROW_TO_DUCK, CursorMethods, Result, _arrow, one_run
from .spark import SparkError
from .translate import NotSupported, parse
from .url import SparkURL

MANIFEST = "_agentlens_lake.json"
READ_ONLY = ("the lake is read-only here: it is written by `agentlens export --lake` or the distributed ingest "
             "(`agentlens spark ingest`)")


class NotSupportedOnSpark(NotSupported):
    """A statement agentlens does not run on Spark (the message says which and why)."""


class LakeMissing(SparkError):
    """The lake named is not there, or is not an agentlens lake."""


_SPARK_TYPES = {"VARCHAR": "string", "JSON": "string", "TIMESTAMPTZ": "timestamp", "DOUBLE": "double",
                "BIGINT": "bigint", "INTEGER": "int", "BOOLEAN": "boolean", "MAP(INTEGER, UBIGINT)": "map<int,bigint>"}


def spark_type(duck: str) -> str:
    return _SPARK_TYPES[duck]


def check_lake(lake: str) -> None:
    """A local lake must be a folder with the manifest (a URL Spark reads, s3a:// and so on, is left to it)."""
    if "://" in lake and not lake.startswith("file://"):
        return
    path = Path(lake.removeprefix("file://"))
    if not path.is_dir():
        raise LakeMissing(f"{lake}: no such lake (a folder `agentlens export --lake` writes)")
    if not (path / MANIFEST).is_file():
        raise LakeMissing(f"{lake}: not an agentlens lake (no {MANIFEST}; `agentlens export --lake` writes one)")


def check_master(url: SparkURL, timeout: float = 5.0) -> None:
    """Fail fast when nothing listens at the master's address (Spark itself retries for a minute)."""
    try:
        with socket.create_connection((url.host, url.port), timeout=timeout):
            pass
    except OSError as e:
        raise SparkError(f"{url.master}: cannot reach the Spark master ({e.strerror or e}); start one "
                         "(`agentlens spark cluster`) or check --engine") from None


class SparkConnection(CursorMethods):
    """The lake on Spark (see the module's docstring). `mode`: "enforce" refuses statements the conformance suite
    has not passed; "record" (the suite itself) runs every statement that translates and remembers what it ran
    in `ran`. `spark`: a SparkSession to work in (a new session of it: views apart); else one is started on the
    URL's master (and stopped by `close`)."""

    def __init__(self, url: SparkURL, spark: Any = None):
        from .spark import session

        self.url = url
        check_lake(url.lake)
        self._owned = spark is None
        if spark is None:
            from pyspark import SparkContext
            from pyspark.sql import SparkSession

            running = SparkContext._active_spark_context  # one Spark application per process
            if running is not None:
                if running.master != url.master:
                    raise SparkError(f"{url.master}: this process already runs Spark on {running.master}; "
                                     "open the lake there, or in another process")
                spark, self._owned = SparkSession.builder.getOrCreate(), False  # that application's session
            else:
                check_master(url)
                spark = session(url.master, app="agentlens")
        self._root = spark
        self.spark = spark.newSession()
        self.spark.conf.set("spark.sql.session.timeZone", "UTC")
        self.spark.conf.set("spark.sql.ansi.enabled", "false")  # DuckDB: NULL for x / 0, as Spark without ANSI
        self.mode = "enforce"
        self.ran: list[tuple[str, str, str]] = []  # (fingerprint, who, DuckDB SQL) in record mode
        self._registered: dict[str, dict[str, str]] = {}
        self._last: Result | None = None
        self.statements = 0
        self.seconds = 0.0
        self._views()

    # -- the lake's tables ------------------------------------------------------------------------------
    def _views(self) -> None:
        """Each contract table as a view of this session, read with the contract's schema given (no file is
        opened to infer one; a column a file lacks reads as NULL); the partition column `day` dropped."""
        base = self.url.lake.rstrip("/")
        remote = "://" in base and not base.startswith("file://")
        for table, cols in schema.TABLES.items():
            ddl = ", ".join(f"`{c.name}` {spark_type(c.type)}" for c in cols)
            local = None if remote else Path(base.removeprefix("file://")) / table
            df = None
            if local is None or (local.is_dir() and any(local.rglob("*.parquet"))):
                partitioned = local is None or any(p.name.startswith("day=") for p in local.iterdir())
                try:
                    df = self.spark.read.schema(ddl + (", `day` string" if partitioned else "")).parquet(f"{base}/{table}")
                except Exception as e:
                    if local is not None:  # a local table whose files Spark cannot read
                        raise LakeMissing(f"{base}/{table}: cannot read the lake's table: "
                                          f"{str(e).strip().splitlines()[0]}") from None
                    df = None  # a remote lake without this table: empty, as a local one
            df = self.spark.createDataFrame([], ddl) if df is None else df.select(*[c.name for c in cols])
            df.createOrReplaceTempView(table)

    def _tables(self) -> dict[str, dict[str, str]]:
        t = {n: {c.name: c.type for c in cols} for n, cols in schema.TABLES.items()}
        t.update(self._registered)
        return t

    # -- what DuckDB's connection offers ------------------------------------------------------------------
    def _run(self, query: str, params: Any) -> Result:
        fp, conds, name = conformance.fingerprints(query)
        try:
            kind = parse(query)[0]
        except NotSupported:
            kind = None
        if kind is not None and not isinstance(kind, exp.Query | exp.Create | exp.Drop):
            raise NotSupportedOnSpark(f"not supported on Spark: {name}: {READ_ONLY}")  # a write, first of all
        if self.mode == "enforce":
            passed = conformance.passed("spark")
            missing = [c for c in conds if c not in passed]
            if fp not in passed:
                raise NotSupportedOnSpark(
                    f"not supported on Spark yet: {name} has not passed the conformance suite (statement {fp}); "
                    "it runs on DuckDB")
            if missing:
                raise NotSupportedOnSpark(
                    f"not supported on Spark yet: {name}: a filter condition has not passed the conformance "
                    f"suite (condition {missing[0]}); it runs on DuckDB")
        t0 = time.perf_counter()
        try:
            tree, positional = parse(query)
            if isinstance(tree, exp.Create | exp.Drop):
                table = self._ddl(tree, params, positional)
            elif not isinstance(tree, exp.Query):
                raise NotSupported(READ_ONLY)
            else:
                try:
                    tr = sq.translate(query, params, self._tables(), None, cast(exp.Expr, tree), positional)
                    table = None
                except NotSupported:
                    table = one_run(query, tree, params, positional, self._fetch_run)
                    if table is None:
                        raise
                if table is None:
                    table = self._collect(tr.sql, tr.params)
        except NotSupported as e:
            raise NotSupportedOnSpark(f"not supported on Spark yet: {name}: {e}") from None
        self.seconds += time.perf_counter() - t0
        self.statements += 1
        if self.mode == "record":
            self.ran.append((fp, name, query))
            self.ran += [(c, f"{name} (a filter condition)", query) for c in conds]
        return Result(table)

    def _df(self, sql: str, args: dict[str, Any]) -> Any:
        try:
            return self.spark.sql(sql, args=args or None)
        except Exception as e:  # Spark's AnalysisException / ParseException: the translation is wrong here
            if type(e).__name__ in ("AnalysisException", "ParseException", "PySparkTypeError", "PySparkValueError"):
                raise NotSupported(f"Spark cannot run the translation: {str(e).strip().splitlines()[0]}") from None
            raise

    def _collect(self, sql: str, args: dict[str, Any]) -> pa.Table:
        df = self._df(sql, args)
        try:
            return df.toArrow()
        except Exception as e:  # a job that failed on the cluster (lost executors, a file gone): its first line
            raise SparkError(f"Spark failed: {str(e).strip().splitlines()[0]}") from None

    def _fetch_run(self, table: str, run_id: Any) -> pa.Table:
        return self._collect(f"SELECT * FROM `{table}` WHERE run_id = :r", {"r": run_id})  # noqa: S608 - a contract table

    def _ddl(self, tree: exp.Expr, params: Any, positional: int) -> pa.Table:
        """`CREATE [OR REPLACE] TEMP TABLE name AS query` and `DROP TABLE [IF EXISTS] name` of this connection's
        own tables (a temporary view of this session, its rows computed once)."""
        made = self._temp_table(tree, READ_ONLY, f"CREATE of anything but a TEMP TABLE ... AS query ({READ_ONLY})")
        if made is None:
            return pa.table({})
        name, query = made
        tr = sq.translate("", params, self._tables(), None, query, positional)
        data = self._collect(tr.sql, tr.params)
        self.register(name, data)
        return pa.table({})

    def executemany(self, query: str, parameters: Iterable[Sequence[Any]]) -> None:
        raise NotSupportedOnSpark(f"not supported on Spark: {READ_ONLY}")

    def register(self, name: str, table: Any) -> SparkConnection:
        """A small table the next statements read by name (the model context windows, the budget caps): a
        temporary view of this connection's session, dropped by `unregister`."""
        data = _arrow(table)
        types = {}
        for f in data.schema:
            if pa.types.is_timestamp(f.type):
                types[f.name] = "TIMESTAMPTZ"
            elif f.type in _ARROW_TO_DUCK:
                types[f.name] = _ARROW_TO_DUCK[f.type]
            elif pa.types.is_null(f.type):
                types[f.name] = "VARCHAR"
                data = data.set_column(data.schema.get_field_index(f.name), f.name, pa.nulls(len(data), pa.string()))
            else:
                raise NotSupportedOnSpark(f"not supported on Spark yet: registering a column of {f.type}")
        ddl = ", ".join(f"`{n}` {spark_type(t)}" for n, t in types.items())
        df = self.spark.createDataFrame(data, ddl) if data.num_rows else self.spark.createDataFrame([], ddl)
        df.createOrReplaceTempView(name)
        self._registered[name] = types
        return self

    def unregister(self, name: str) -> SparkConnection:
        if name in self._registered:
            self.spark.catalog.dropTempView(name)
            del self._registered[name]
        return self

    def close(self) -> None:
        for name in list(self._registered):
            self.unregister(name)
        if self._owned:
            self._root.stop()


__all__ = ["LakeMissing", "NotSupportedOnSpark", "SparkConnection"]
