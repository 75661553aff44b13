"""The owner's side: serving a database this process holds to the other agentlens processes.

While a process holds a database (`agentlens collect`, `agentlens serve`, an ingest, a notebook's Lens),
other processes cannot open the file; they reach it through this server instead (store/owner.py finds it,
store/remote.py is the client). Arrow Flight over a Unix socket in a private folder:

- a session per client: a DuckDB connection of this database (`con.cursor()`), so each client has its own
  temp tables and registered tables, and reads the last committed state while a write is under way;
- `do_get`: one statement of a session, its result as Arrow; `do_put`: a table registered in a session;
- actions: `open` / `close` a session, `unregister`, `ping`, and `call`, which runs a write operation
  (store.ops: publishing a staged file, rollup, classify, reprice) under the database's write lock with
  the client's config;
- statements that write to the database's own tables (INSERT / UPDATE / DELETE / COPY / ALTER, CREATE and
  DROP of tables that are not temporary, explicit transactions) take the same write lock, so writers take
  turns and readers never wait for them.

Only the user who runs the owner can reach the socket (a 0700 folder); what arrives is trusted like the
user's own command line (a `call` carries pickled arguments).
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import pickle
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.flight as fl

# the modules whose write operations a client may call (importing them registers them in store.ops.OPS)
from . import failures as _failures  # noqa: F401
from . import ingest as _ingest  # noqa: F401
from . import pricing as _pricing  # noqa: F401
from .core.config import Config
from .core.cursor import TYPES_KEY
from .metrics import alert_state as _alert_state  # noqa: F401
from .metrics import rollups as _rollups  # noqa: F401
from .store import owner
from .store.db import Store
from .store.ops import OPS, write_lock
from .store.remote import decode_params

SESSION_IDLE_SECONDS = 600.0  # a session unused this long is closed (a client that went away without closing)
LOCK_IDLE_SECONDS = 30.0  # ... or this long while it holds the write lock inside a transaction
REAP_EVERY_SECONDS = 1.0  # how often sessions are checked: their client process is gone, or idle too long


def idle_limits() -> tuple[float, float]:
    """(session, write lock) idle limits in seconds: $AGENTLENS_SESSION_IDLE_SECONDS and
    $AGENTLENS_LOCK_IDLE_SECONDS, else SESSION_IDLE_SECONDS and LOCK_IDLE_SECONDS."""
    def seconds(name: str, default: float) -> float:
        try:
            return max(float(os.environ.get(name) or default), 0.1)
        except ValueError:
            return default

    return (seconds("AGENTLENS_SESSION_IDLE_SECONDS", SESSION_IDLE_SECONDS),
            seconds("AGENTLENS_LOCK_IDLE_SECONDS", LOCK_IDLE_SECONDS))

_TEMP_DDL = re.compile(r"^\s*(CREATE\s+(OR\s+REPLACE\s+)?(TEMP|TEMPORARY)\b|DROP\s+(TABLE|VIEW|MACRO)\s+(IF\s+EXISTS\s+)?_)",
                       re.I)
_TEMP_DML = re.compile(r"^\s*(INSERT\s+(OR\s+\w+\s+)?INTO|DELETE\s+FROM|UPDATE)\s+_", re.I)


@dataclass
class Session:
    sid: str
    con: duckdb.DuckDBPyConnection
    config: Config
    client: tuple[int, dt.datetime] | None = None  # the client's PID and its start (to see it die)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one statement at a time per session
    in_transaction: bool = False
    holds_write: bool = False
    used: float = field(default_factory=time.monotonic)  # when its last request started or ended
    registered: dict[str, pa.Table] = field(default_factory=dict)

    @property
    def holder(self) -> tuple[str, str]:
        """Who holds the write lock when this session does (see store.ops.WriteLock)."""
        return ("session", self.sid)

    def client_gone(self) -> bool:
        if self.client is None:
            return False
        pid, since = self.client
        return not owner.alive(pid) or owner.started(pid) != since  # another process with its PID: gone too


def _error(e: BaseException) -> fl.FlightServerError:
    """An exception as the client rebuilds it (store.remote._error)."""
    return fl.FlightServerError("agentlens-error: " + json.dumps([type(e).__name__, str(e)]))


def _writes(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[bool, str | None]:
    """(whether the text writes the database's own tables (temporary ones are the session's), and 'begin'
    / 'end' when its last transaction statement starts or ends a transaction, else None)."""
    statements = con.extract_statements(sql)
    writes, tx = len(statements) != 1, None  # several statements in one text: take the lock for all of them
    T = duckdb.StatementType
    for st in statements:
        kind, text = st.type, st.query.lstrip()
        if kind == T.TRANSACTION:
            tx = "begin" if text.upper().startswith(("BEGIN", "START")) else "end"
        elif kind in (T.INSERT, T.UPDATE, T.DELETE):
            writes = writes or not _TEMP_DML.match(text)
        elif kind in (T.CREATE, T.DROP):
            writes = writes or not _TEMP_DDL.match(text)
        elif kind in (T.COPY, T.ALTER, T.ATTACH, T.DETACH, T.VACUUM, T.LOAD, T.CALL):
            writes = True
    return writes, tx


def _with_types(table: pa.Table, types: list[Any]) -> pa.Table:
    """The result with its columns' DuckDB types in the schema's metadata: the client's fetchall() builds
    Python values as DuckDB's would from them (core.cursor.python_values)."""
    meta = dict(table.schema.metadata or {})
    meta[TYPES_KEY] = json.dumps([str(t) for t in types]).encode()
    return table.replace_schema_metadata(meta)


class OwnerServer(fl.FlightServerBase):
    """Serves `store` (held by this process) on its endpoint; see the module's docstring."""

    def __init__(self, store: Store, ep: owner.Endpoint):
        self.store = store
        self.ep = ep
        self.sessions: dict[str, Session] = {}
        self.calls: dict[str, tuple[str, float]] = {}  # write operations under way: id -> (name, since)
        self._guard = threading.Lock()
        self._lock = write_lock(store.path)
        self._closing = threading.Event()
        self.session_idle, self.lock_idle = idle_limits()
        super().__init__(ep.location)

    # -- sessions -------------------------------------------------------------------------------------
    def _open_session(self, payload: dict[str, Any] | None, pid: int | None) -> str:
        con = self.store.con.cursor()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        sid = uuid.uuid4().hex
        # the client's PID, to close its session when it dies; only when we see that process (a client in
        # another PID namespace, a container sharing the socket folder, would otherwise look dead at once)
        client = None
        if isinstance(pid, int) and pid > 0 and (since := owner.started(pid)) is not None:
            client = (pid, since)
        with self._guard:
            self.sessions[sid] = Session(sid, con, _config(payload, self.store.config), client)
        return sid

    def _session(self, sid: str) -> Session:
        with self._guard:
            s = self.sessions.get(sid)
        if s is None:
            raise fl.FlightServerError("agentlens-error: " + json.dumps(
                ["SessionGone", "the process holding the database has no session of this client: it closed it "
                 "(idle too long) or is not the process that opened it; open the database again"]))
        s.used = time.monotonic()
        return s

    def _close_session(self, sid: str) -> None:
        with self._guard:
            s = self.sessions.pop(sid, None)
        if s is None:
            return
        with s.lock:
            if s.in_transaction:
                try:
                    s.con.execute("ROLLBACK")
                except duckdb.Error:
                    pass
            if s.holds_write:
                s.holds_write = False
                self._lock.release(s.holder)
            s.con.close()

    def reap(self) -> list[str]:
        """Close the sessions of clients that went away without closing them: their process is gone (a
        client killed in the middle of a transaction: rolled back, the write lock freed), or they were idle
        longer than the limit (`lock_idle` while holding the write lock in a transaction, else
        `session_idle`; see idle_limits). A session whose statement is running is not idle. Returns the
        closed sessions' ids."""
        now = time.monotonic()
        with self._guard:
            sessions = list(self.sessions.values())
        stale = [s.sid for s in sessions if not s.lock.locked() and (
            s.client_gone() or now - s.used > (self.lock_idle if s.holds_write else self.session_idle))]
        for sid in stale:
            self._close_session(sid)
        return stale

    # -- Flight ---------------------------------------------------------------------------------------
    def do_get(self, context: fl.ServerCallContext, ticket: fl.Ticket) -> fl.RecordBatchStream:
        q = json.loads(ticket.ticket)
        s = self._session(q["session"])
        with s.lock:
            try:
                table = self._run(s, q["sql"], decode_params(q.get("params")))
            except BaseException as e:
                raise _error(e) from None
            finally:
                s.used = time.monotonic()
        return fl.RecordBatchStream(table)

    def _run(self, s: Session, sql: str, params: Any) -> pa.Table:
        """One statement of a session. A transaction holds the write lock from BEGIN to its end; a statement
        that writes outside one holds it while it runs."""
        writes, tx = _writes(s.con, sql)
        if (writes or tx == "begin") and not s.holds_write:
            if not self.store_writes():
                raise duckdb.InvalidInputException(f"{self.store.path} is read-only here: its owner opened it read-only")
            self._lock.acquire(s.holder)
            s.holds_write = True
        try:
            rel = s.con.sql(sql, params=params)
            table = _with_types(rel.to_arrow_table(), rel.types) if rel is not None else pa.table({})
            if tx == "begin":
                s.in_transaction = True
        finally:
            if tx == "end":  # COMMIT, ROLLBACK, and a COMMIT that failed: DuckDB rolled the transaction back
                s.in_transaction = False
            if s.holds_write and not s.in_transaction:
                s.holds_write = False
                self._lock.release(s.holder)
        return table

    def store_writes(self) -> bool:
        return not self.store.read_only

    def do_put(self, context: fl.ServerCallContext, descriptor: fl.FlightDescriptor,
               reader: fl.MetadataRecordBatchReader, writer: fl.FlightMetadataWriter) -> None:
        q = json.loads(descriptor.command)
        s = self._session(q["session"])
        table = reader.read_all()
        with s.lock:
            s.registered[q["name"]] = table
            s.con.register(q["name"], table)

    def do_action(self, context: fl.ServerCallContext, action: fl.Action) -> Any:
        kind = action.type
        body = action.body.to_pybytes()
        if kind == "call":
            yield fl.Result(self._call(pickle.loads(body)))
            return
        q = json.loads(body) if body else {}
        if kind == "ping":
            now = time.monotonic()
            with self._guard:
                calls = [{"op": name, "seconds": round(now - since, 3)} for name, since in self.calls.values()]
                sessions = len(self.sessions)
            out: Any = {"pid": os.getpid(), "database": self.store.path, "writes": self.store_writes(),
                        "calls": calls, "sessions": sessions}
        elif kind == "open":
            if self._closing.is_set():
                raise fl.FlightUnavailableError("the database's owner is shutting down")
            out = {"session": self._open_session(q.get("config"), q.get("pid"))}
        elif kind == "close":
            self._close_session(q["session"])
            out = {}
        elif kind == "unregister":
            s = self._session(q["session"])
            with s.lock:
                s.con.unregister(q["name"])
                s.registered.pop(q["name"], None)
            out = {}
        else:
            raise fl.FlightServerError(f"unknown action {kind!r}")
        yield fl.Result(json.dumps(out).encode())

    def _call(self, req: dict[str, Any]) -> bytes:
        """A write operation of a client: on a connection of its own, with the client's config, under the lock."""
        fn = OPS.get(req["op"])
        if fn is None:
            return pickle.dumps({"error": RuntimeError(f"the database's owner has no write operation {req['op']!r}")})
        con = self.store.con.cursor()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        session = Store.attach(con, self.store.path, _config(req.get("config"), self.store.config))
        cid = uuid.uuid4().hex
        try:
            if not self.store_writes():
                raise duckdb.InvalidInputException(f"{self.store.path} is read-only here: its owner opened it read-only")
            with self._lock:
                with self._guard:
                    self.calls[cid] = (req["op"], time.monotonic())
                value = fn(session, *req["args"], **req["kwargs"])
            return pickle.dumps({"value": value})
        except Exception as e:
            try:
                return pickle.dumps({"error": e})
            except Exception:
                return pickle.dumps({"error": RuntimeError(f"{type(e).__name__}: {e}")})
        finally:
            with self._guard:
                self.calls.pop(cid, None)
            con.close()

    def stop(self) -> None:
        """Stop serving: no new sessions; running requests finish; then the endpoint is removed."""
        self._closing.set()
        owner.clear(self.ep, os.getpid())
        self.shutdown()
        with self._guard:
            sids = list(self.sessions)
        for sid in sids:
            self._close_session(sid)


def _config(payload: dict[str, Any] | None, default: Config) -> Config:
    return Config.from_payload(payload) if payload else default


class Serving:
    """This process's serving of one database: the server thread, the endpoint files, the idle reaper."""

    def __init__(self, store: Store):
        self.ep = owner.endpoint(store.path)
        try:
            self.ep.socket.unlink()  # a dead owner's socket (the caller checked that its owner is gone)
        except FileNotFoundError:
            pass
        self.server = OwnerServer(store, self.ep)
        self.thread = threading.Thread(target=self.server.serve, name="agentlens-owner", daemon=True)
        self.thread.start()
        os.chmod(self.ep.socket, 0o600)
        owner.write_info(self.ep, owner.OwnerInfo(os.getpid(), owner.command_line(os.getpid()) or " ".join(sys.argv),
                                                  store.path, owner.now_iso(), not store.read_only))
        self._stop = threading.Event()
        self.reaper = threading.Thread(target=self._reap, name="agentlens-reaper", daemon=True)
        self.reaper.start()

    def _reap(self) -> None:
        while not self._stop.wait(REAP_EVERY_SECONDS):
            self.server.reap()

    def stop(self) -> None:
        self._stop.set()
        self.server.stop()
        self.thread.join(timeout=10)


_SERVING: dict[str, list[Any]] = {}  # database key -> [Serving, how many Stores of this process hold it]
_SERVING_GUARD = threading.Lock()


class _Handle:
    """One Store's share of its process's serving of a database: the last one to stop ends it."""

    def __init__(self, key: str):
        self.key = key
        self.stopped = False

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        with _SERVING_GUARD:
            entry = _SERVING[self.key]
            entry[1] -= 1
            last = entry[1] == 0
            if last:
                del _SERVING[self.key]
        if last:
            entry[0].stop()


def serve(store: Store) -> _Handle:
    """Serve `store` (which holds its database) to other processes while it is open: the process's first
    Store of a database starts the server, the last one to close stops it."""
    key = owner.db_key(store.path)
    with _SERVING_GUARD:
        entry = _SERVING.get(key)
        if entry is None:
            entry = _SERVING[key] = [Serving(store), 0]
        entry[1] += 1
    return _Handle(key)


@atexit.register
def _stop_all() -> None:
    """At exit, stop serving (running requests finish) and remove the endpoints."""
    with _SERVING_GUARD:
        entries = list(_SERVING.values())
        _SERVING.clear()
    for serving, _ in entries:
        try:
            serving.stop()
            serving.server.store.con.close()  # the process is ending: nothing uses the database any more
        except Exception:
            pass
