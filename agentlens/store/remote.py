"""The client side of a database another process holds: a connection whose statements run there.

`RemoteConnection` offers what agentlens's own code asks of a DuckDB connection (`execute` with
`fetchall` / `fetchone`, `executemany`, `sql(...).pl()` / `.to_arrow_table()`, `register`) and sends each
statement to the owner (agentlens.server) over Arrow Flight on a Unix socket, in a session of its own
there (a DuckDB connection of the owner's database: its temp tables and registered tables are this
client's). Results come back as Arrow. DuckDB's errors come back as the same exception classes, so code
that catches `duckdb.CatalogException` works either way. `call` runs a write operation (store.ops)
in the owner.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.flight as fl

from ..core.config import Config
from .errors import StoreError

CALL_TIMEOUT = None  # a write operation may take as long as it takes (an ingest of a large file)
PING_TIMEOUT = 2.0  # seconds an owner has to answer that it is alive
OPEN_TIMEOUT = 10.0  # ... and to open a session (a busy owner on a loaded machine can take a while)
TYPES_KEY = b"agentlens.types"  # a result's schema metadata: its columns' DuckDB types (JSON list), see Result


class OwnerGone(StoreError, ConnectionError):
    """The process holding the database stopped answering (it exited, was killed, or is shutting down), or
    no longer knows this client's session. Open the database again: the next process to open it takes it
    over. The CLI exits 3."""


class RemoteError(RuntimeError):
    """An error inside the owner that is not DuckDB's (the message says what and where)."""


def _error(e: fl.FlightError, where: str, owner_pid: int | None = None) -> BaseException:
    """The exception the owner raised, rebuilt here: DuckDB's classes by name, else RemoteError; OwnerGone
    when the owner cannot be reached or does not know the session."""
    text = str(e)
    marker = "agentlens-error:"
    if marker in text:
        payload = text.split(marker, 1)[1].strip()
        try:  # gRPC appends its own words after the JSON (". Detail: Failed. gRPC client debug context: ...")
            kind, message = json.JSONDecoder().raw_decode(payload)[0]
        except ValueError:
            kind, message = "Error", payload.split("\n", 1)[0]
        if kind == "SessionGone":
            return OwnerGone(f"{where}: {message}")
        cls = getattr(duckdb, kind, None)
        if isinstance(cls, type) and issubclass(cls, duckdb.Error):
            return cls(message)
        if kind in ("ValueError", "KeyError", "LookupError", "FileNotFoundError", "PermissionError"):
            return {"ValueError": ValueError, "KeyError": KeyError, "LookupError": LookupError,
                    "FileNotFoundError": FileNotFoundError, "PermissionError": PermissionError}[kind](message)
        return RemoteError(f"{kind}: {message}")
    if isinstance(e, fl.FlightUnavailableError | fl.FlightCancelledError | fl.FlightTimedOutError):
        return OwnerGone(f"{where}: the process holding the database{_pid(owner_pid)} stopped answering (it exited "
                         "or was killed): open the database again, the next process to open it takes it over")
    return RemoteError(text.splitlines()[0] if text else type(e).__name__)


def _pid(pid: int | None) -> str:
    return f" (PID {pid})" if pid else ""


class Result:
    """A statement's result, as DuckDB's cursor gives it."""

    def __init__(self, table: pa.Table):
        self.table = table
        self._rows: list[tuple[Any, ...]] | None = None
        self._at = 0

    def _all(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            meta = self.table.schema.metadata or {}
            types = json.loads(meta[TYPES_KEY]) if TYPES_KEY in meta else [None] * self.table.num_columns
            cols = [python_values(c, t) for c, t in zip(self.table.columns, types, strict=True)]
            self._rows = list(zip(*cols, strict=True)) if cols else []
        return self._rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows = self._all()[self._at:]
        self._at = len(self._all())
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self._all()
        if self._at >= len(rows):
            return None
        self._at += 1
        return rows[self._at - 1]

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        rows = self._all()[self._at:self._at + size]
        self._at += len(rows)
        return rows

    def pl(self) -> pl.DataFrame:
        return pl.from_arrow(self.table)  # type: ignore[return-value]

    def to_arrow_table(self) -> pa.Table:
        return self.table

    arrow = to_arrow_table

    def fetch_arrow_table(self) -> pa.Table:
        return self.table


class RemoteConnection:
    """A session in the owner of a database (see the module's docstring)."""

    def __init__(self, location: str, database: str, config: Config | None = None, owner_pid: int | None = None):
        self.location = location
        self.database = database
        self.owner_pid = owner_pid
        self.client = fl.connect(location)
        self._last: Result | None = None
        self._registered: dict[str, pa.Table] = {}
        # our PID: the owner closes our session (rolling back a transaction, freeing the write lock) when we die
        self.session = self._action("open", {"config": _config_payload(config), "pid": os.getpid()},
                                    timeout=OPEN_TIMEOUT)["session"]

    # -- the wire -------------------------------------------------------------------------------------
    def _action(self, kind: str, body: dict[str, Any], timeout: float | None = None) -> Any:
        opts = fl.FlightCallOptions(timeout=timeout)
        try:
            results = list(self.client.do_action(fl.Action(kind, json.dumps(body).encode()), opts))
        except fl.FlightError as e:
            raise _error(e, self.database, self.owner_pid) from None
        return json.loads(results[0].body.to_pybytes()) if results else None

    def _get(self, query: str, params: Any) -> Result:
        ticket = json.dumps({"session": self.session, "sql": query, "params": _params(params)}, default=str)
        try:
            table = self.client.do_get(fl.Ticket(ticket.encode())).read_all()
        except fl.FlightError as e:
            raise _error(e, self.database, self.owner_pid) from None
        return Result(table)

    # -- what DuckDB's connection offers --------------------------------------------------------------
    def execute(self, query: str, parameters: Any = None) -> Result:
        self._last = self._get(query, parameters)
        return self._last

    def executemany(self, query: str, parameters: Iterable[Sequence[Any]]) -> None:
        for row in parameters:
            self._get(query, list(row))

    def sql(self, query: str, params: Any = None, **kw: Any) -> Result | None:
        res = self._get(query, params if params is not None else kw.get("params"))
        return res

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._last.fetchall() if self._last is not None else []

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._last.fetchone() if self._last is not None else None

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        return self._last.fetchmany(size) if self._last is not None else []

    def register(self, name: str, table: Any) -> RemoteConnection:
        if isinstance(table, pl.DataFrame):
            table = table.to_arrow()
        elif not isinstance(table, pa.Table):
            table = pa.table(table)
        descriptor = fl.FlightDescriptor.for_command(json.dumps({"session": self.session, "name": name}).encode())
        try:
            writer, _ = self.client.do_put(descriptor, table.schema)
            writer.write_table(table)
            writer.close()
        except fl.FlightError as e:
            raise _error(e, self.database, self.owner_pid) from None
        self._registered[name] = table
        return self

    def unregister(self, name: str) -> RemoteConnection:
        self._action("unregister", {"session": self.session, "name": name})
        self._registered.pop(name, None)
        return self

    def call(self, op: str, args: tuple[Any, ...], kwargs: dict[str, Any], config: Config) -> Any:
        """Run the write operation `op` (store.ops) in the owner, with this client's config."""
        body = pickle.dumps({"op": op, "args": args, "kwargs": kwargs, "config": _config_payload(config)})
        try:
            results = list(self.client.do_action(fl.Action("call", body), fl.FlightCallOptions(timeout=CALL_TIMEOUT)))
        except fl.FlightError as e:
            raise _error(e, self.database, self.owner_pid) from None
        outcome = pickle.loads(results[0].body.to_pybytes())
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def ping(self) -> dict[str, Any]:
        return self._action("ping", {}, timeout=PING_TIMEOUT)  # type: ignore[no-any-return]

    def close(self) -> None:
        try:
            self._action("close", {"session": self.session}, timeout=PING_TIMEOUT)
        except (OwnerGone, RemoteError, duckdb.Error):
            pass
        self.client.close()


# -- results as DuckDB gives them --------------------------------------------------------------------------
# A result comes as Arrow; `fetchall()` / `fetchone()` build Python values from it. Most types come out as
# DuckDB's own fetchall gives them; these do not, and are converted (the owner sends the DuckDB types of the
# columns in the schema's metadata, TYPES_KEY): HUGEINT (what sum() of integers gives) comes as a Decimal
# (DuckDB: int), INTERVAL as pyarrow's MonthDayNano (DuckDB: timedelta, a month as 30 days), MAP as a list
# of pairs (DuckDB: dict), UUID as text (DuckDB: uuid.UUID), TIMESTAMPTZ with zoneinfo's UTC (DuckDB:
# pytz's). Frames (`.pl()`) need nothing: DuckDB's own `.pl()` is polars.from_arrow of the same Arrow.


def python_values(column: pa.ChunkedArray | pa.Array, duckdb_type: str | None) -> list[Any]:
    """A column's values as DuckDB's fetchall gives them (see above)."""
    values = column.to_pylist()
    convert = _converter(column.type, duckdb_type)
    if convert is None:
        return values
    return [None if v is None else convert(v) for v in values]


def _converter(t: pa.DataType, duckdb_type: str | None) -> Callable[[Any], Any] | None:
    if duckdb_type in ("HUGEINT", "UHUGEINT"):
        return int
    if duckdb_type == "UUID":
        return uuid.UUID
    if pa.types.is_timestamp(t) and t.tz:
        tz = _tzinfo(t.tz)
        return lambda v: v.astimezone(tz)
    if pa.types.is_interval(t):
        return _timedelta
    if pa.types.is_map(t):
        key, item = _converter(t.key_type, None), _converter(t.item_type, None)
        k = key or (lambda x: x)
        i = item or (lambda x: x)
        return lambda v: {k(a) if a is not None else None: i(b) if b is not None else None for a, b in v}
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        inner_type = duckdb_type[:-2] if duckdb_type and duckdb_type.endswith("[]") else None
        inner = _converter(t.value_type, inner_type)
        if inner is None:
            return None
        return lambda v: [None if x is None else inner(x) for x in v]
    if pa.types.is_struct(t):
        fields = {t.field(j).name: _converter(t.field(j).type, None) for j in range(t.num_fields)}
        convert = {n: f for n, f in fields.items() if f is not None}
        if not convert:
            return None
        return lambda v: {n: x if x is None or n not in convert else convert[n](x) for n, x in v.items()}
    return None


def _timedelta(v: Any) -> dt.timedelta:
    """An Arrow month-day-nano interval as DuckDB gives an INTERVAL: a month is 30 days."""
    return dt.timedelta(days=v.months * 30 + v.days, microseconds=v.nanoseconds // 1000)


def _tzinfo(name: str) -> dt.tzinfo:
    """The time zone object DuckDB's own fetchall puts on TIMESTAMPTZ values (pytz's, a dependency of DuckDB's
    conversion)."""
    try:
        import pytz

        return pytz.timezone(name)  # type: ignore[no-any-return]
    except Exception:
        import zoneinfo

        return zoneinfo.ZoneInfo(name)


def _config_payload(config: Config | None) -> dict[str, Any] | None:
    return None if config is None else config.payload()


def _params(params: Any) -> Any:
    """Parameters as JSON: positional lists and named dicts; datetimes as ISO text, which DuckDB casts back
    where the statement casts them (agentlens's statements bind times as `?::TIMESTAMPTZ` or compare them
    with TIMESTAMPTZ columns)."""
    if params is None:
        return None
    if isinstance(params, dict):
        return {"named": {k: _value(v) for k, v in params.items()}}
    return {"positional": [_value(v) for v in params]}


def _value(v: Any) -> Any:
    import datetime as dt
    import decimal

    if isinstance(v, dt.datetime | dt.date | dt.time):
        return {"$t": type(v).__name__, "v": v.isoformat()}
    if isinstance(v, dt.timedelta):
        return {"$t": "timedelta", "v": v.total_seconds()}
    if isinstance(v, decimal.Decimal):
        return {"$t": "decimal", "v": str(v)}
    if isinstance(v, bytes):
        return {"$t": "bytes", "v": v.hex()}
    if isinstance(v, list | tuple):
        return [_value(x) for x in v]
    return v


def decode_params(payload: Any) -> Any:
    """The owner's side of `_params`."""
    if payload is None:
        return None
    if "named" in payload:
        return {k: _decode(v) for k, v in payload["named"].items()}
    return [_decode(v) for v in payload["positional"]]


def _decode(v: Any) -> Any:
    import datetime as dt
    import decimal

    if isinstance(v, dict) and "$t" in v:
        t, x = v["$t"], v["v"]
        if t == "datetime":
            return dt.datetime.fromisoformat(x)
        if t == "date":
            return dt.date.fromisoformat(x)
        if t == "time":
            return dt.time.fromisoformat(x)
        if t == "timedelta":
            return dt.timedelta(seconds=x)
        if t == "decimal":
            return decimal.Decimal(x)
        if t == "bytes":
            return bytes.fromhex(x)
    if isinstance(v, list):
        return [_decode(x) for x in v]
    return v
