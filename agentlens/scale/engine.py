"""The two ways to reach ClickHouse, behind one small interface: `query` (Arrow out, values bound as
ClickHouse query parameters `{name:Type}`), `command` (DDL and statements without a result) and `insert`
(an Arrow table into a table).

- `ChdbEngine`: ClickHouse's own engine inside this process (PyPI `chdb`), its data in a folder. chdb holds
  one data folder per process, and one process at a time may open a folder.
- `ServerEngine`: a ClickHouse server over HTTP (PyPI `clickhouse-connect`).

Both run every statement with `SETTINGS` (below): the semantics the translated SQL relies on.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pyarrow as pa

from .url import StoreURL

# What the translation (translate.py) relies on, set on every session:
# - join_use_nulls: outer joins give NULLs for missing rows (as DuckDB), not 0 / '';
# - prefer_column_name_to_alias: a select alias does not capture a same-named column elsewhere in the query;
# - session_timezone: times are read and shown in UTC;
# - allow_experimental_analyzer stays as the engine ships it (the new analyzer is the default since 24.3).
SETTINGS: dict[str, Any] = {
    "join_use_nulls": 1,
    "prefer_column_name_to_alias": 1,
    "session_timezone": "UTC",
    "cast_keep_nullable": 1,
}


class EngineError(RuntimeError):
    """ClickHouse refused a statement (the message is ClickHouse's first line)."""


class Engine(Protocol):
    description: str

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table: ...

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None: ...

    def insert(self, table: str, data: pa.Table) -> None: ...

    def close(self) -> None: ...


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class ChdbEngine:
    """ClickHouse in this process (chdb). One Session per data folder per process, shared."""

    _sessions: ClassVar[dict[str, Any]] = {}
    _current: ClassVar[dict[str, str]] = {}  # the database each session is in (USE)
    lock = threading.RLock()  # one statement at a time in the process's session

    def __init__(self, path: str, database: str = "agentlens"):
        from chdb import session as chs  # the 180 MB engine: only when a chdb store is opened

        self.description = f"chdb:{path}"
        self.path = str(Path(path).resolve())
        self.database = database
        with self.lock:
            s = self._sessions.get(self.path)
            if s is None:
                if self._sessions:
                    other = next(iter(self._sessions))
                    raise EngineError(f"clickhouse+chdb://{path}: this process has {other} open, and chdb "
                                      "opens one data folder per process (use ?database=NAME for another "
                                      "database in that folder)")
                try:
                    s = chs.Session(self.path)
                except Exception as e:
                    raise EngineError(f"clickhouse+chdb://{path}: cannot open: {_first_line(e)}") from None
                self._sessions[self.path] = s
                for k, v in SETTINGS.items():
                    s.query(f"SET {k} = {v!r}", "Null")
            self.session = s
            s.query(f"CREATE DATABASE IF NOT EXISTS {database}", "Null")

    def _use(self) -> None:
        if self._current.get(self.path) != self.database:
            self.session.query(f"USE {self.database}", "Null")
            self._current[self.path] = self.database

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        try:
            with self.lock:
                self._use()
                table = self.session.query(sql, "ArrowTable", params=_chdb_params(params))
        except Exception as e:  # chdb raises its own RuntimeError with ClickHouse's message
            raise EngineError(_first_line(e)) from None
        return table if isinstance(table, pa.Table) else pa.table({})

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        try:
            with self.lock:
                self._use()
                self.session.query(sql, "Null", params=_chdb_params(params))
        except Exception as e:
            raise EngineError(_first_line(e)) from None

    def insert(self, table: str, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, data.schema) as w:
            w.write_table(data)
        cols = ", ".join(f"`{c}`" for c in data.column_names)
        try:
            with self.lock:
                self._use()
                ins = self.session.send_insert(f"INSERT INTO {table} ({cols})", "ArrowStream")
                ins.append(sink.getvalue())
                ins.finish()
        except Exception as e:
            raise EngineError(_first_line(e)) from None

    def close(self) -> None:
        pass  # the session stays for the process: chdb opens one data folder per process

    @classmethod
    def close_all(cls) -> None:
        """Close the process's session (its data folder may then be opened by another process)."""
        with cls.lock:
            for s in cls._sessions.values():
                s.close()
            cls._sessions.clear()
            cls._current.clear()


def _chdb_params(params: dict[str, Any] | None) -> dict[str, str] | None:
    """chdb reads each parameter from its text in ClickHouse's escaped format (as a server reads the HTTP
    `param_NAME` arguments): NULL is `\\N`, strings escape backslash, tab and newline."""
    if not params:
        return None
    return {k: param_text(v) for k, v in params.items()}


def param_text(v: Any) -> str:
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list | tuple):
        return "[" + ",".join(_literal(x) for x in v) + "]"
    return _escape(str(v))


def _escape(s: str) -> str:
    return (s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
            .replace("\0", "\\0"))


def _literal(v: Any) -> str:
    """An element of an array parameter, as a ClickHouse literal."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"


class ServerEngine:
    """A ClickHouse server over HTTP (clickhouse-connect)."""

    def __init__(self, url: StoreURL):
        import clickhouse_connect

        self.description = url.display()
        try:
            admin = clickhouse_connect.get_client(host=url.host, port=url.port, username=url.user,
                                                  password=url.password, secure=url.secure)
            admin.command(f"CREATE DATABASE IF NOT EXISTS {url.database}")
            admin.close()
            self.client = clickhouse_connect.get_client(
                host=url.host, port=url.port, username=url.user, password=url.password, secure=url.secure,
                database=url.database, settings=dict(SETTINGS))
        except Exception as e:
            raise EngineError(f"{url.display()}: cannot connect: {_first_line(e)}") from None

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        try:
            return self.client.query_arrow(sql, parameters=params or None)
        except Exception as e:
            raise EngineError(_first_line(e)) from None

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        try:
            self.client.command(sql, parameters=params or None)
        except Exception as e:
            raise EngineError(_first_line(e)) from None

    def insert(self, table: str, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        try:
            self.client.insert_arrow(table, data)
        except Exception as e:
            raise EngineError(_first_line(e)) from None

    def close(self) -> None:
        self.client.close()


def open_engine(url: StoreURL) -> Engine:
    if url.kind == "chdb":
        return ChdbEngine(url.path, url.database)
    return ServerEngine(url)
