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
_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def write_lock(path: str) -> threading.RLock:
    """The process's lock for writing to the database at `path` (reentrant: a write op may call another)."""
    key = os.path.realpath(path) if path and not path.startswith(":memory:") else f"{path}:{id(threading)}"
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = threading.RLock()
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
