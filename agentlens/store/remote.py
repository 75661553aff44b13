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
from collections.abc import Iterable, Sequence
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.flight as fl

from ..core.config import Config
from ..core.cursor import Result
from .errors import StoreError

CALL_TIMEOUT = None  # a write operation may take as long as it takes (an ingest of a large file)
PING_TIMEOUT = 2.0  # seconds an owner has to answer that it is alive
OPEN_TIMEOUT = 10.0  # ... and to open a session (a busy owner on a loaded machine can take a while)


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
