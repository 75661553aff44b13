"""Write operations run where the database is, one at a time.

A function that writes to the database (publishing a staged file, a rollup, re-classifying, repricing)
is marked `@write_op("name")`. Called on a Store that holds the database, it runs here under the
database's write lock, so that two writers in one process never race (DuckDB would fail one of them with
a transaction conflict). Called on a Store that is a client of another process holding the database (see
owner.py), it runs there: the arguments travel to the owner (agentlens.server), which runs the same
function under its write lock with the caller's config, and the result travels back. Readers never take
the lock: DuckDB gives each reader the last committed state while a write is under way.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from .db import Store

F = TypeVar("F", bound=Callable[..., Any])

OPS: dict[str, Callable[..., Any]] = {}  # name -> the function itself (what an owner runs for a client)


class WriteLock:
    """One writer at a time on a database. The holder is a thread (a write operation, run here or for a
    client) or a client's session in the owner (agentlens.server: an explicit transaction, which spans
    several requests that the server may run on different threads). Reentrant for its holder: a write
    operation may call another. Unlike `threading.RLock`, a session's hold does not belong to the thread
    that took it: another thread ends it (the session's COMMIT, or the reaper of a client that died)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._holder: object = None
        self._depth = 0

    @staticmethod
    def _me() -> object:
        return ("thread", threading.get_ident())

    def acquire(self, holder: object = None) -> None:
        holder = self._me() if holder is None else holder
        with self._cond:
            while self._depth and self._holder != holder:
                self._cond.wait()
            self._holder = holder
            self._depth += 1

    def release(self, holder: object = None) -> None:
        holder = self._me() if holder is None else holder
        with self._cond:
            if not self._depth or self._holder != holder:
                raise RuntimeError(f"write lock released by {holder!r}, which does not hold it")
            self._depth -= 1
            if not self._depth:
                self._holder = None
                self._cond.notify_all()

    @property
    def holder(self) -> object:
        """Who holds it now (None: free)."""
        with self._cond:
            return self._holder

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_LOCKS: dict[str, WriteLock] = {}
_LOCKS_GUARD = threading.Lock()


def write_lock(path: str) -> WriteLock:
    """The process's lock for writing to the database at `path` (see WriteLock)."""
    key = os.path.realpath(path) if path and not path.startswith(":memory:") else f"{path}:{id(threading)}"
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = WriteLock()
        return lock


def write_op(name: str) -> Callable[[F], F]:
    """Mark `fn(store, ...)` as a write operation named `name` (see the module's docstring)."""

    def mark(fn: F) -> F:
        if name in OPS and OPS[name] is not fn:
            raise ValueError(f"write operation {name!r} is defined twice")
        OPS[name] = fn

        @functools.wraps(fn)
        def run(store: Store, *args: Any, **kwargs: Any) -> Any:
            if store.remote is not None:
                return store.remote.call(name, args, kwargs, store.config)
            store.check_writable()
            with write_lock(store.path):
                return fn(store, *args, **kwargs)

        return cast(F, run)

    return mark
