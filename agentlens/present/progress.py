"""Progress on stderr while long work runs: the ingest's bar over the bytes of its files, and the notice
of a migration that rewrites whole tables (with a bar per table, from DuckDB's own progress)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ..core.textsafe import visible
from ..schema import REWRITE_NOTES

MIGRATION_NOTICE_ROWS = 100_000  # a table rewrite of fewer rows takes a second or two: not announced


class IngestBar:
    """A rich progress bar over the bytes of all files (agentlens.ingest.Progress)."""

    def __init__(self, total: int):
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.bar = Progress(
            TextColumn("[bold]ingest"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            TimeRemainingColumn(), TextColumn("{task.description}", markup=False), transient=False,
        )
        self.task = self.bar.add_task("", total=total)
        self.bar.start()
        self._base = 0
        self._file_done = 0

    def advance_fn(self, path: Path) -> Callable[[int], None]:
        size = path.stat().st_size
        self.bar.update(self.task, description=visible(path.name, newlines=False))  # a file's name is anyone's

        def advance(nbytes: int) -> None:  # bytes of decompressed input: scale to the file's size
            self.bar.update(self.task, completed=self._base + min(nbytes, size))

        self._file_done = size
        return advance

    def done(self, path: Path) -> None:
        self._base += self._file_done
        self.bar.update(self.task, completed=self._base)

    def close(self) -> None:
        self.bar.stop()


@contextmanager
def migration_notice(con: duckdb.DuckDBPyConnection, path: str, name: str,
                     rows: dict[str, int]) -> Iterator[Callable[[str], None]]:
    """A migration that rewrites whole tables, on a database large enough for it to take a while: say so on
    stderr (what, how many rows, once), with a progress bar per table from DuckDB's own progress of the
    running statement (store.db.Announce)."""
    if sum(rows.values()) < MIGRATION_NOTICE_ROWS:
        yield lambda table: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    what = " and ".join(f"{n:,} {t}" for t, n in rows.items())
    note = REWRITE_NOTES.get(name, "rewriting {what} (once)").format(what=what)
    console.print(visible(f"agentlens: upgrading {path} to schema {name}: {note}"), markup=False, highlight=False)
    t0 = time.perf_counter()
    bar = Progress(TextColumn("[bold]migrate"), TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(), console=console, transient=True)
    tasks: list[TaskID] = []
    stop = threading.Event()

    def on_table(table: str) -> None:
        if tasks:
            bar.update(tasks[-1], completed=100)
        tasks.append(bar.add_task(f"{table} ({rows[table]:,} rows)", total=100))

    def poll() -> None:  # DuckDB reports the progress of the statement running on the connection
        while not stop.wait(0.2):
            done = con.query_progress()
            if tasks and done >= 0:
                bar.update(tasks[-1], completed=min(done, 100))

    poller = threading.Thread(target=poll, daemon=True)
    # DuckDB tracks a statement's progress only with its progress bar on; it is not to print it
    con.execute("SET enable_progress_bar_print = false")
    con.execute("SET enable_progress_bar = true")
    with bar:
        poller.start()
        try:
            yield on_table
        finally:
            stop.set()
            poller.join()
            con.execute("SET enable_progress_bar = false")
            con.execute("RESET enable_progress_bar_print")
    console.print(f"agentlens: {name} done in {time.perf_counter() - t0:.1f} s", markup=False, highlight=False)


class StepBar:
    """A bar per step of a long job on a DuckDB connection (a lake export: its tables, one statement each),
    each following DuckDB's own progress of the running statement; on stderr, gone when done."""

    def __init__(self, con: duckdb.DuckDBPyConnection, label: str = "export"):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

        self.con = con
        self.bar = Progress(TextColumn(f"[bold]{label}"), TextColumn("{task.description}", markup=False), BarColumn(),
                            TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                            console=Console(stderr=True), transient=True)
        self.tasks: list[TaskID] = []
        self.stop = threading.Event()
        self.poller = threading.Thread(target=self._poll, daemon=True)

    def step(self, what: str) -> None:
        if self.tasks:
            self.bar.update(self.tasks[-1], completed=100)
        self.tasks.append(self.bar.add_task(visible(what, newlines=False), total=100))

    def _poll(self) -> None:
        while not self.stop.wait(0.2):
            done = self.con.query_progress()
            if self.tasks and done >= 0:
                self.bar.update(self.tasks[-1], completed=min(done, 100))

    def __enter__(self) -> StepBar:
        self.con.execute("SET enable_progress_bar_print = false")
        self.con.execute("SET enable_progress_bar = true")
        self.bar.start()
        self.poller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.poller.join()
        self.bar.stop()
        with contextlib.suppress(duckdb.Error):
            self.con.execute("SET enable_progress_bar = false")
            self.con.execute("RESET enable_progress_bar_print")
