"""Waiting for the database while another process writes to it.

DuckDB lets one process at a time open a database file for writing, and no process read it
meanwhile: opening fails with `Could not set lock on file ...: Conflicting lock is held in PROGRAM
(PID n)`. Scheduled jobs (`agentlens rollup`, `agentlens alerts` from cron) meet that whenever an
ingest is running, so they wait and retry, saying what they wait for, instead of crashing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

import duckdb

T = TypeVar("T")
_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class DatabaseBusy(RuntimeError):
    """The database stayed locked by another process for longer than we were willing to wait."""


def lock_holder(error: BaseException) -> str | None:
    """`PROGRAM (PID n)` when the error is DuckDB's lock conflict, else None."""
    if not isinstance(error, duckdb.IOException):
        return None
    text = str(error)
    if "Could not set lock" not in text and "Conflicting lock" not in text:
        return None
    m = _HOLDER.search(text)
    return f"{m['program']} (PID {m['pid']})" if m else "another process"


def open_when_free(
    opener: Callable[[], T],
    path: str,
    wait: float,
    notify: Callable[[str], None] | None = None,
    poll: float = 0.25,
    max_poll: float = 5.0,
) -> T:
    """Call `opener` until the database is free, for up to `wait` seconds (0: try once).
    `notify` hears once that we are waiting, and for whom. Raises DatabaseBusy after `wait`."""
    deadline = time.monotonic() + max(wait, 0)
    told = False
    delay = poll
    while True:
        try:
            return opener()
        except duckdb.IOException as e:
            holder = lock_holder(e)
            if holder is None:
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise DatabaseBusy(
                    f"{path}: locked by {holder} (an ingest or another writer?) for longer than "
                    f"{wait:g}s; try again later or give a longer --wait"
                ) from None
            if notify is not None and not told:
                notify(f"{path} is locked by {holder}; waiting up to {wait:g}s for it to finish ...")
                told = True
            time.sleep(min(delay, left))
            delay = min(delay * 2, max_poll)
