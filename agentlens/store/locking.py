"""Reading DuckDB's lock conflict: who holds a database file.

DuckDB lets one process at a time open a database file for writing, and no process read it meanwhile:
opening fails with `Could not set lock on file ...: Conflicting lock is held in PROGRAM (PID n)`. agentlens
processes serve what they hold (owner.py), so this is met only with a process that does not: the Store
waits for it, then names it (store.db).
"""

from __future__ import annotations

import re
from typing import TypeVar

import duckdb

T = TypeVar("T")
_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def lock_holder(error: BaseException) -> str | None:
    """`PROGRAM (PID n)` when the error is DuckDB's lock conflict, else None."""
    if not isinstance(error, duckdb.IOException):
        return None
    text = str(error)
    if "Could not set lock" not in text and "Conflicting lock" not in text:
        return None
    m = _HOLDER.search(text)
    return f"{m['program']} (PID {m['pid']})" if m else "another process"
