"""The top of the library: `Lens`, a store that can also ingest, and `open()`.

    lens = agentlens.open("agentlens.duckdb")       # or $AGENTLENS_DB, else ./agentlens.duckdb
    lens.ingest("traces/")                           # files, folders, .gz, postgresql:// tables
    lens.runs(feature="refund"); lens.spans(run_id); lens.sql("SELECT ...")

The library shows nothing by itself: what a person sees while it works (a bar over a long ingest, the
notice of a migration that rewrites whole tables) comes in as hooks, `bar` and `announce`.
`agentlens.open()` (agentlens.present.session) is this `open()` with the terminal's hooks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from . import ingest as _ingest
from .adapters.base import Batch
from .core.config import Config
from .ingest import FileResult, IngestSummary, OnCommit, Pipeline, Progress, Step
from .ingest.read import iter_files
from .ingest.stage import sweep_stages
from .sources import ingest_url, is_url
from .store import DatabaseUnavailable, Store
from .store.db import DEFAULT_WAIT, Announce

SHOW_INGEST_BAR_BYTES = 20 * 1024 * 1024
DEFAULT_WORK_DB = "agentlens-work.duckdb"  # a ClickHouse store's per-process work database (Lens.work)  # the ingest's bar shows for inputs over this, unless asked


class Bar(Progress, Protocol):
    """A progress bar over the bytes of an ingest's files (agentlens.present.progress.IngestBar)."""

    def close(self) -> None: ...


class Lens(Store):
    """An agentlens database. `lens = agentlens.open("agentlens.duckdb")`.

    A Store (connection, migrations, queries) that ingests: files and folders, live sources, and the
    batches of sources that are not files, through the ingest pipeline (`Pipeline.default()`: pricing,
    failure modes, fleet checks). `steps`, `file_steps` and `staged_steps` replace its parts (tests)."""

    search_index = True  # keep the search index beside the database (explore.search); not a ClickHouse work db

    def __init__(
        self,
        path: str | Path | None = None,
        config: Config | None = None,
        read_only: bool = False,
        steps: tuple[Step, ...] | None = None,
        file_steps: tuple[Step, ...] | None = None,
        staged_steps: tuple[Step, ...] | None = None,
        announce: Announce | None = None,
        bar: Callable[[int], Bar] | None = None,
        serve: bool = True,
        create: bool | None = None,
        wait: float = DEFAULT_WAIT,
        notify: Callable[[str], None] | None = None,
        work_db: str | Path | None = None,
    ):
        """`work_db`: with a ClickHouse store (`clickhouse://...`, agentlens.scale), the DuckDB database where
        this process builds the runs it ingests before they are written to ClickHouse (default:
        $AGENTLENS_WORK_DB, else ./agentlens-work.duckdb; one per ingest process). `announce` hears of a migration that rewrites whole tables (store.db.Announce); `bar(total_bytes)`
        makes the progress bar of an ingest that shows one. `serve`: when no other process holds the
        database, hold it here and serve it to the others (agentlens.server) while this Lens is open; when
        one does, this Lens is its client. Without `serve`, a `read_only` Lens opens the file read-only (and
        holds it until closed). `create` (default: not `read_only`): a missing database may be created. See
        agentlens.store.Store for `wait` and `notify`."""
        super().__init__(path, config, read_only=read_only, announce=announce,
                         serve=_serve if serve else None, create=not read_only if create is None else create,
                         wait=wait, notify=notify)
        self.bar = bar
        default = Pipeline.default()
        self.pipeline = Pipeline(
            staged=default.staged if staged_steps is None else staged_steps,
            chunk=default.chunk if steps is None else steps,
            file=default.file if file_steps is None else file_steps,
        )
        if self.remote is None and self.clickhouse is None and not self.read_only:
            sweep_stages(self.path)
        self.work_db = work_db
        self._work: Lens | None = None
        self._shipper: Any = None  # staging folders of killed ingests (those of live processes stay)

    def ingest(self, *paths: str | Path, format: str | None = None, progress: bool | None = None,
               source: str | None = None) -> IngestSummary:
        """Ingest files and folders (`.gz` too), and `postgresql://...?table=` URLs of live agent_runs
        tables (read incrementally, see agentlens.sources.postgres). The format is sniffed unless given.
        `progress`: a progress bar (None: only when there is more than 20 MB to read). `source`: the
        source's name: its records are its own (run ids `NAME:id`), apart from other sources' with the
        same ids (a live table's name by default)."""
        self._not_a_lake()
        if self.clickhouse is not None:
            return self._ship(lambda work: work.ingest(*paths, format=format, progress=progress, source=source))
        t0 = time.perf_counter()
        urls = [str(p) for p in paths if is_url(p)]
        files = [p for p in paths if not is_url(p)]
        total = sum(f.stat().st_size for f, _ in iter_files(files))  # IngestError for a missing path, first
        show = progress if progress is not None else total > SHOW_INGEST_BAR_BYTES
        bar = self.bar(total) if show and self.bar is not None else None
        try:
            summary = _ingest.ingest_files(self, files, self.pipeline, format=format, progress=bar, source=source)
        finally:
            if bar is not None:
                bar.close()
        for url in urls:  # postgresql://...?table=agent_runs: a live table, read incrementally
            summary.files.append(ingest_url(self, url, self.pipeline, source))
        summary.seconds = time.perf_counter() - t0
        return summary

    def ingest_batches(self, name: str, format: str, batches: Iterable[Batch],
                       on_commit: tuple[OnCommit, ...] = (), advance: Callable[[int], None] | None = None) -> FileResult:
        """Store adapter batches in one transaction, exactly as a file's are (see ingest.ingest_batches)."""
        self._not_a_lake()
        if self.clickhouse is not None:
            return self._ship(lambda work: work.ingest_batches(name, format, batches, on_commit, advance))
        return _ingest.ingest_batches(self, name, format, batches, self.pipeline, on_commit, advance)

    def _not_a_lake(self) -> None:
        if self.spark is not None:
            raise DatabaseUnavailable(f"{self.path}: a lake on Spark is read here, never written: "
                                      "`agentlens export --lake DIR` or the distributed ingest (`agentlens spark "
                                      "ingest`) writes it")

    # -- a ClickHouse store: per-run work in a DuckDB work database, the rows shipped (agentlens.scale.ship) --
    def work(self) -> Lens:
        """The work database of this ingest process (ClickHouse stores only): opened here, never served (its
        runs are this process's: all spans of a run come to one process)."""
        if self._work is None:
            from .explore.search import run_words
            from .scale.ship import Shipper

            self._shipper = Shipper(self.clickhouse, words=run_words)  # the words `runs --search` reads there
            default = Pipeline.default()
            path = self.local_path()
            # fleet checks compare runs across the whole fleet: not on one process's share of it
            self._work = Lens(path, self.config, staged_steps=default.staged, steps=default.chunk,
                              file_steps=(self._shipper.step,), bar=self.bar, serve=False)
            self._work.search_index = False  # searched on ClickHouse (its words are shipped): no tantivy index
        return self._work

    def local_path(self) -> str:
        if self.clickhouse is None:
            return self.path
        return str(self.work_db or os.environ.get("AGENTLENS_WORK_DB") or DEFAULT_WORK_DB)

    def _ship(self, run: Callable[[Lens], Any]) -> Any:
        work = self.work()
        t0 = time.time()
        out = run(work)
        self._shipper.files(work.con, t0)
        return out

    def close(self) -> None:
        if self._work is not None:
            self._work.close()
            self._work = None
        super().close()

    def __enter__(self) -> Lens:
        return self


def open(path: str | Path | None = None, config: Config | str | Path | None = None,
         read_only: bool = False, *, announce: Announce | None = None,
         bar: Callable[[int], Bar] | None = None, wait: float = DEFAULT_WAIT,
         work_db: str | Path | None = None) -> Lens:
    """Open an agentlens database (created and migrated if needed, unless `read_only`). `path` defaults to
    $AGENTLENS_DB, else ./agentlens.duckdb. `config` is a Config or a TOML path. `announce` and `bar`: see
    Lens (agentlens.open passes the terminal's).

    Several processes use one database at once: the first to open it holds it and serves it to the others
    (a notebook, the CLI, cron jobs, `agentlens collect`), which send it their queries and writes; see the
    docs on concurrency. `read_only`: a missing database is an error rather than created.

    `path` may be a ClickHouse store: `clickhouse://host:8123/db` (a server) or `clickhouse+chdb:///dir` (the
    engine in this process); see agentlens.scale. Its reads run on ClickHouse; its ingests build runs in the
    DuckDB `work_db` and write them there."""
    cfg = config if isinstance(config, Config) else Config.load(config)
    return Lens(path, cfg, read_only=read_only, announce=announce, bar=bar, wait=wait, work_db=work_db)


def _serve(store: Store) -> Any:
    from .server import (
        serve,  # pyarrow.flight and the write operations: only in a process that holds a database
    )

    return serve(store)
