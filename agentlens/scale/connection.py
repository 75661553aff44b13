"""A ClickHouse database behind the part of DuckDB's connection that agentlens uses (the pattern of
store/remote.py): `execute(...).fetchall()` / `.fetchone()`, `sql(...).pl()` / `.to_arrow_table()`,
`register` / `unregister`. A Store whose `con` is one of these reads the canonical tables from ClickHouse:
every statement is translated (translate.py) and checked against the conformance record
(conformance.py) first, and one that has not passed the conformance suite is refused with
`NotSupportedOnClickHouse`, never run with other semantics.

`native(sql, params)` runs ClickHouse SQL as written (`{name:Type}` parameters), for what a person writes
for ClickHouse itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import polars as pl
import pyarrow as pa
from sqlglot import exp

from .. import schema
from ..core.cursor import Result
from . import conformance, ddl
from . import search as search_words
from .engine import Engine, EngineError, open_engine
from .translate import NotSupported, contract_tables, param_type, param_value, parse, translate
from .url import StoreURL


class NotSupportedOnClickHouse(NotSupported):
    """A statement agentlens does not run on ClickHouse yet (the message says which and why)."""


def _arrow(table: Any) -> pa.Table:
    if isinstance(table, pl.DataFrame):
        return table.to_arrow()
    if isinstance(table, pa.Table):
        return table
    return pa.table(table)


_ARROW_TO_DUCK = {
    pa.string(): "VARCHAR", pa.large_string(): "VARCHAR", pa.float64(): "DOUBLE", pa.int64(): "BIGINT",
    pa.int32(): "INTEGER", pa.bool_(): "BOOLEAN",
}
_DUCK_TO_CH = {"VARCHAR": "String", "DOUBLE": "Float64", "BIGINT": "Int64", "INTEGER": "Int32", "BOOLEAN": "Bool"}


def _duck_name(ch_type: str) -> str:
    """A ClickHouse column type by the DuckDB name the translation's schema uses."""
    t = ch_type.replace("LowCardinality(", "").replace("Nullable(", "").rstrip(")")
    for duck, ch in _DUCK_TO_CH.items():
        if t == ch:
            return duck
    return "TIMESTAMPTZ" if t.startswith("DateTime") else "VARCHAR"


def one_run(query: str, tree: exp.Expr, params: Any, positional: int,
            fetch: Callable[[str, Any], pa.Table]) -> pa.Table | None:
    """Per-run work stays in DuckDB: a statement that reads the canonical tables of one run only (every table
    it reads filtered by `run_id = ?` of the same value, as the trace waterfall's recursive layout) runs as
    written, in DuckDB, on that run's rows (`fetch(table, run_id)` from the other engine). None for any other
    statement."""
    from .translate import bind

    values = bind(params, positional)
    run_ids = set()
    for t in tree.find_all(exp.Table):
        if t.name not in schema.TABLES:
            if t.name in {c.alias for c in tree.find_all(exp.CTE)}:
                continue
            return None
        sel = t.find_ancestor(exp.Select)
        where = sel.args.get("where") if sel is not None else None
        keys = [eq.expression.name for eq in (where.find_all(exp.EQ) if where is not None else ())
                if isinstance(eq.this, exp.Column) and eq.this.name == "run_id"
                and isinstance(eq.expression, exp.Placeholder)]
        if not keys:
            return None
        run_ids |= {values.get(k) for k in keys}
    if len(run_ids) != 1:
        return None
    import duckdb

    (run_id,) = run_ids
    local = duckdb.connect()
    try:
        local.execute("SET TimeZone = 'UTC'")
        local.execute(schema.contract_ddl())
        for name in {t.name for t in tree.find_all(exp.Table)} & set(schema.TABLES):
            local.register("_rows", fetch(name, run_id))
            local.execute(f"INSERT INTO {name} SELECT * FROM _rows")  # noqa: S608 - a contract table
            local.unregister("_rows")
        return local.sql(query, params=params).to_arrow_table()
    finally:
        local.close()


class CursorMethods:
    """What a connection standing in for DuckDB's offers on top of its own `_run(query, params) -> Result`: the
    cursor methods agentlens calls (`execute` keeps the result for `fetchall` / `fetchone`, `sql` returns it),
    and the parse of the one DDL it takes, a temp table of its own (`_temp_table`). ClickHouseConnection and
    SparkConnection share them."""

    _last: Result | None
    _registered: dict[str, dict[str, str]]

    def _run(self, query: str, params: Any) -> Result:
        raise NotImplementedError

    def unregister(self, name: str) -> Any:
        raise NotImplementedError

    def execute(self, query: str, parameters: Any = None) -> Result:
        self._last = self._run(query, parameters)
        return self._last

    def sql(self, query: str, params: Any = None, **kw: Any) -> Result:
        return self._run(query, params if params is not None else kw.get("params"))

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._last.fetchall() if self._last is not None else []

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._last.fetchone() if self._last is not None else None

    def _temp_table(self, tree: exp.Expr, no_drop: str, no_create: str) -> tuple[str, exp.Query] | None:
        """`CREATE [OR REPLACE] TEMP TABLE name AS query`: its name and query, for the caller to make; `DROP
        TABLE [IF EXISTS] name` of this connection's own tables: done here (None). Anything else is refused with
        `no_drop` / `no_create`."""
        if isinstance(tree, exp.Drop):
            name = tree.this.name if isinstance(tree.this, exp.Table) else ""
            if tree.args.get("kind", "").upper() != "TABLE" or \
                    (name not in self._registered and not tree.args.get("exists")):
                raise NotSupported(no_drop)
            self.unregister(name)
            return None
        props = tree.args.get("properties")
        temporary = props is not None and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions)
        query = tree.expression
        if tree.args.get("kind", "").upper() != "TABLE" or not temporary or not isinstance(query, exp.Query):
            raise NotSupported(no_create)
        return tree.this.name, query


class ClickHouseConnection(CursorMethods):
    """The canonical tables on ClickHouse (see the module's docstring). `mode`: "enforce" refuses statements
    the conformance suite has not passed; "record" (the suite itself) runs every statement that translates
    and remembers what it ran in `ran`."""

    def __init__(self, url: StoreURL, engine: Engine | None = None, migrate: bool = True):
        self.url = url
        self.engine = engine if engine is not None else open_engine(url)
        self.mode = "enforce"
        self.ran: list[tuple[str, str, str]] = []  # (fingerprint, who, DuckDB SQL) in record mode
        self._registered: dict[str, dict[str, str]] = {}  # name -> columns (types as DuckDB names them)
        self._tag = uuid.uuid4().hex[:12]  # this connection's tables are `<name>__<tag>` on ClickHouse
        self._last: Result | None = None
        self.statements = 0
        self.seconds = 0.0
        self.words_checked: Any = None  # the runs' stamp when every run had its search words (search.py)
        if migrate:
            self.migrate()

    # -- the schema -------------------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Create the tables and views of the contract, add the columns a newer contract has, and record the
        contract's migrations as applied. Idempotent."""
        e = self.engine
        e.command(ddl.MIGRATIONS_TABLE)
        e.command(search_words.DDL)  # the search's words: beside the contract, not in it (search.py)
        have = {r["name"] for r in e.query("SELECT name FROM schema_migrations").to_pylist()}
        pending = [name for name, _ in schema.MIGRATIONS if name not in have]
        if not pending:
            return []
        existing = {(r["table"], r["name"]) for r in e.query(
            "SELECT table, name FROM system.columns WHERE database = currentDatabase()").to_pylist()}
        for table, cols in schema.TABLES.items():
            e.command(ddl.create_table(table))
            for c in cols:
                if (ddl.storage(table), c.name) not in existing:
                    e.command(ddl.add_column(table, c))
            e.command(ddl.create_view(table))
        now = time.time_ns() // 1000
        for name in pending:
            e.command("INSERT INTO schema_migrations VALUES ({n:String}, fromUnixTimestamp64Micro({t:Int64}, 'UTC'))",
                      {"n": name, "t": now})
        return pending

    # -- what DuckDB's connection offers ------------------------------------------------------------------
    def _tables(self) -> dict[str, dict[str, str]]:
        t = contract_tables()
        t.update(self._registered)
        return t

    def _run(self, query: str, params: Any) -> Result:
        fp, conds, name = conformance.fingerprints(query)
        if self.mode == "enforce":
            passed = conformance.passed()
            missing = [c for c in conds if c not in passed]
            if fp not in passed:
                raise NotSupportedOnClickHouse(
                    f"not supported on ClickHouse yet: {name} has not passed the conformance suite "
                    f"(statement {fp}); it runs on DuckDB")
            if missing:
                raise NotSupportedOnClickHouse(
                    f"not supported on ClickHouse yet: {name}: a filter condition has not passed the conformance "
                    f"suite (condition {missing[0]}); it runs on DuckDB")
        try:
            tree, positional = parse(query)
            if isinstance(tree, exp.Create | exp.Drop):
                table = self._ddl(tree, params, positional)
            else:
                try:
                    tr = translate(query, params, self._tables(), self._renames(), cast(exp.Expr, tree), positional)
                    table = None
                except NotSupported:
                    table = self._one_run(query, tree, params, positional)
                    if table is None:
                        raise
        except NotSupported as e:
            raise NotSupportedOnClickHouse(f"not supported on ClickHouse yet: {name}: {e}") from None
        t0 = time.perf_counter()
        if table is None:
            table = self.engine.query(tr.sql, tr.params)
        self.seconds += time.perf_counter() - t0
        self.statements += 1
        if self.mode == "record":
            self.ran.append((fp, name, query))
            self.ran += [(c, f"{name} (a filter condition)", query) for c in conds]
        return Result(table)

    def _one_run(self, query: str, tree: exp.Expr, params: Any, positional: int) -> pa.Table | None:
        return one_run(query, tree, params, positional, lambda name, run_id: self.engine.query(
            f"SELECT * FROM {name} WHERE run_id = {{r:String}}", {"r": run_id}))  # noqa: S608 - a contract table

    def _renames(self) -> dict[str, str]:
        return {n: self._real(n) for n in self._registered}

    def _real(self, name: str) -> str:
        return f"{name}__{self._tag}"

    def real_name(self, name: str) -> str:
        """The name on ClickHouse of this connection's own table `name`."""
        return self._real(name)

    def create_native(self, name: str, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """This connection's own table `name` (a Memory table) made from ClickHouse SQL as written (the search's
        hits, search.py); the next statements read it by name, as a registered table."""
        real = self._real(name)
        values = {k: param_value(v) for k, v in (params or {}).items()}
        self.engine.command(f"DROP TABLE IF EXISTS `{real}`")
        self.engine.command(f"CREATE TABLE `{real}` ENGINE = Memory AS {sql}", values)
        cols = self.engine.query("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                                 "AND table = {t:String}", {"t": real}).to_pylist()
        self._registered[name] = {c["name"]: _duck_name(c["type"]) for c in cols}

    def _ddl(self, tree: exp.Expr, params: Any, positional: int) -> pa.Table:
        """`CREATE [OR REPLACE] TEMP TABLE name AS query` and `DROP TABLE [IF EXISTS] name` of this connection's
        own tables (a Memory table on ClickHouse, under a name of its own)."""
        made = self._temp_table(tree, "DROP of anything but a table this connection made",
                                "CREATE of anything but a TEMP TABLE ... AS query")
        if made is None:
            return pa.table({})
        name, query = made
        tr = translate("", params, self._tables(), self._renames(), query, positional)
        real = self._real(name)
        self.engine.command(f"DROP TABLE IF EXISTS `{real}`")
        self.engine.command(f"CREATE TABLE `{real}` ENGINE = Memory AS {tr.sql}", tr.params)
        cols = self.engine.query("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                                 "AND table = {t:String}", {"t": real}).to_pylist()
        self._registered[name] = {c["name"]: _duck_name(c["type"]) for c in cols}
        return pa.table({})

    def executemany(self, query: str, parameters: Iterable[Sequence[Any]]) -> None:
        raise NotSupportedOnClickHouse("not supported on ClickHouse yet: writes go through the ingest "
                                       "(agentlens.scale.ship) or `agentlens store migrate`")

    def register(self, name: str, table: Any) -> ClickHouseConnection:
        """A small table the next statements read by name (the model context windows, the budget caps): a
        Memory table in ClickHouse, dropped by `unregister`."""
        data = _arrow(table)
        types = {}
        for f in data.schema:
            duck = _ARROW_TO_DUCK.get(f.type)
            if duck is None:
                raise NotSupportedOnClickHouse(f"not supported on ClickHouse yet: registering a column of {f.type}")
            types[f.name] = duck
        cols = ", ".join(f"`{n}` Nullable({_DUCK_TO_CH[t]})" for n, t in types.items())
        real = self._real(name)
        self.engine.command(f"DROP TABLE IF EXISTS `{real}`")
        self.engine.command(f"CREATE TABLE `{real}` ({cols}) ENGINE = Memory")
        self.engine.insert(real, data)
        self._registered[name] = types
        return self

    def unregister(self, name: str) -> ClickHouseConnection:
        if name in self._registered:
            self.engine.command(f"DROP TABLE IF EXISTS `{self._real(name)}`")
            del self._registered[name]
        return self

    def close(self) -> None:
        for name in list(self._registered):
            self.unregister(name)
        self.engine.close()

    # -- ClickHouse as itself ----------------------------------------------------------------------------------
    def native(self, sql: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        """ClickHouse SQL as written, `{name:Type}` parameters bound from `params` (no translation)."""
        values = {k: param_value(v) for k, v in (params or {}).items()}
        return pl.from_arrow(self.engine.query(sql, values))  # type: ignore[return-value]


__all__ = ["ClickHouseConnection", "EngineError", "NotSupportedOnClickHouse", "Result", "param_type"]
