"""An ingest's rows, from the DuckDB work database where they were built, to ClickHouse.

An ingest process (`agentlens ingest`, `agentlens collect`) with a ClickHouse store does its per-run work as
ever, in DuckDB: on a work database of its own (`agentlens-work.duckdb`, `--work-db`), which holds the spans of
the runs it received, so that a run is rebuilt whole as its spans arrive. Inside each file's (or batch's)
transaction, once its runs are built, priced and classified, `Shipper.step` writes the runs it touched to
ClickHouse: the run rows, all their spans, their failures (the run's whole set, with a marker row so that a
run found clean again reads clean), their search words (search.py) and the quarantine records since the last
ship, each row with a newer
`_version`. Writing a run again is harmless (the views read the newest version), so a file whose transaction
fails after its rows were shipped is shipped again when it is ingested again.

All the spans of a run must reach the same process (one work database sees a run whole): route by trace id
(docs/scale-out.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import duckdb
import pyarrow as pa

from . import search
from .connection import ClickHouseConnection
from .migrate import copy_rows, select_contract

# The search words of the runs of a query on a DuckDB connection (agentlens.explore.search.run_words, passed in
# by the layer that may import it): (run_id, ingested_us, words) tables.
Words = Callable[[duckdb.DuckDBPyConnection, str], Iterable[pa.Table]]

TOUCHED = "WHERE run_id IN (SELECT run_id FROM _touched)"


def version() -> int:
    """A row version: microseconds now, never twice the same in this process."""
    global _last
    v = max(time.time_ns() // 1000, _last + 1)
    _last = v
    return v


_last = 0


class Shipper:
    """Writes what a work database built to one ClickHouse store (see the module's docstring)."""

    def __init__(self, ch: ClickHouseConnection, words: Words | None = None):
        self.ch = ch
        self.words = words
        self.shipped = {"runs": 0, "spans": 0, "failures": 0, "quarantine": 0, "ingested_files": 0, "run_words": 0}

    def step(self, store: object) -> None:
        """A file step of the ingest pipeline (agentlens.ingest.steps): the runs in `_touched`, inside the file's
        transaction (an error stops the file, which rolls back and is ingested again next time)."""
        duck: duckdb.DuckDBPyConnection = store.con  # type: ignore[attr-defined]
        v = version()
        self.shipped["runs"] += copy_rows(duck, self.ch, "runs", select_contract("runs", TOUCHED), None, v)
        self.shipped["spans"] += copy_rows(duck, self.ch, "spans", select_contract("spans", TOUCHED), None, v)
        self.shipped["failures"] += copy_rows(duck, self.ch, "failures", select_contract("failures", TOUCHED), None, v)
        copy_rows(duck, self.ch, "failures", "SELECT DISTINCT run_id FROM _touched", None, v, {"_marker": 1})
        if self.words is not None:  # what `runs --search` reads on ClickHouse (search.py)
            self.shipped["run_words"] += search.write(self.ch, self.words(duck, "SELECT DISTINCT run_id FROM _touched"), v)
        self.quarantine(duck)

    def quarantine(self, duck: duckdb.DuckDBPyConnection) -> None:
        """The quarantine records added since the last ship (their ids grow in the work database)."""
        duck.execute("CREATE TABLE IF NOT EXISTS scale_shipped (what VARCHAR PRIMARY KEY, last_id BIGINT)")
        rows = duck.execute("SELECT last_id FROM scale_shipped WHERE what = 'quarantine'").fetchall()
        last = rows[0][0] if rows else 0
        n = copy_rows(duck, self.ch, "quarantine", select_contract("quarantine", "WHERE id > ?"), [last], version())
        if n:
            top = duck.execute("SELECT max(id) FROM quarantine").fetchall()[0][0]
            duck.execute("INSERT OR REPLACE INTO scale_shipped VALUES ('quarantine', ?)", [top])
            self.shipped["quarantine"] += n

    def files(self, duck: duckdb.DuckDBPyConnection, since: float) -> None:
        """The `ingested_files` rows recorded since `since` (a time.time()): they commit after the file's steps."""
        self.shipped["ingested_files"] += copy_rows(
            duck, self.ch, "ingested_files",
            select_contract("ingested_files", "WHERE ingested_at >= to_timestamp(?)"), [since], version())
        self.quarantine(duck)  # a file that failed whole is quarantined outside any publish
