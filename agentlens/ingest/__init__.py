"""The ingest: trace files (and live sources) into the store, one transaction per file.

    read.py      which files, ingested before or not, which adapter reads them
    stage.py     the adapter's batches as Parquet beside the database (nothing touches it yet)
    publish.py   the stage into the tables in one transaction: spans, runs built, steps run
    steps.py     the pipeline steps run inside that transaction (pricing, failure modes, fleet checks)
    sql.py       the statements of the publish; tables.py: the temp tables they share
    summary.py   what an ingest did

Guarantees:
- one transaction per file: Ctrl-C or a crash mid-file leaves the database as it was before it;
- a file whose bytes were ingested before is skipped (SHA-256 in `ingested_files`), and a span
  already stored (same run_id and span_id) is never stored twice, so re-ingesting adds nothing;
- what cannot be read goes to `quarantine` with its raw text and the reason; the rest goes in;
  an error in one file does not stop the others.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Protocol

from .. import adapters
from ..adapters.base import Bad
from ..core.duck import interrupted, out_of_memory
from ..store import Store, StoreError, out_of_memory_advice
from . import read
from . import sql as Q
from .publish import Field, OnCommit, ProgressFn, ingest_batches
from .read import IngestError, NotATrace
from .steps import Pipeline, Step
from .summary import FileResult, IngestSummary

__all__ = ["Field", "FileResult", "IngestError", "IngestSummary", "OnCommit", "Pipeline", "Progress", "Step",
           "ingest_batches", "ingest_files"]


class Progress(Protocol):
    """How an ingest reports its progress over the bytes of its files (agentlens.present.progress draws
    it as a bar)."""

    def advance_fn(self, path: Path) -> ProgressFn: ...

    def done(self, path: Path) -> None: ...


def ingest_files(store: Store, paths: Iterable[str | Path], pipeline: Pipeline, format: str | None = None,
                 progress: Progress | None = None, summary: IngestSummary | None = None) -> IngestSummary:
    """Ingest files and folders (`.gz` too) into the store, each file in its own transaction. The format
    is sniffed unless given. Raises IngestError for a path that does not exist, before reading any."""
    t0 = time.perf_counter()
    summary = summary if summary is not None else IngestSummary()
    forced = adapters.by_name(format) if format else None
    for path, explicit in list(read.iter_files(paths)):
        res = _ingest_file(store, path, explicit, forced, pipeline,
                           progress.advance_fn(path) if progress is not None else None)
        if progress is not None:
            progress.done(path)
        summary.files.append(res)
    summary.seconds += time.perf_counter() - t0
    return summary


def _ingest_file(store: Store, path: Path, explicit: bool, forced: ModuleType | None, pipeline: Pipeline,
                 advance: ProgressFn | None) -> FileResult:
    res = FileResult(str(path))
    try:
        stat = path.stat()
        digest = read.sha256(path)
    except OSError as e:  # unreadable (permissions, a file removed meanwhile): this file alone fails
        return _fail(store, res, path, "unreadable_file", f"{path}: cannot read: {e}")
    seen = store.one(Q.FILE_SEEN, [digest])
    if seen is not None:
        res.status = "skipped_duplicate"
        res.message = f"same bytes as {seen[0]}, ingested {seen[1]:%Y-%m-%d %H:%M:%S}"
        return res
    try:
        adapter = read.adapter_for(path, read.head(path), explicit, forced)
    except (OSError, EOFError) as e:
        return _fail(store, res, path, "unreadable_file", f"{path}: cannot read: {e}")
    except NotATrace as e:
        return _fail(store, res, path, "unreadable_file", str(e))
    if adapter is None:
        res.status = "skipped_unknown"
        return res
    res.format = adapter.NAME

    recorded = OnCommit(Q.RECORD_FILE, (digest, str(path), stat.st_size, stat.st_mtime, Field("format"), Field("runs"),
                                        Field("spans"), Field("quarantined"), Field("seconds")))
    try:
        with read.open_input(path) as stream:
            return ingest_batches(store, str(path), adapter.NAME, read.batches(adapter, stream, path, store.config),
                                  pipeline, on_commit=(recorded,), advance=advance, digest=digest)
    except (KeyboardInterrupt, SystemExit, StoreError):
        raise  # StoreError: the database cannot be used now (its owner was killed...): not this file's fault
    except Exception as e:  # one bad file never stops the others
        if interrupted(e):  # Ctrl-C while DuckDB ran a statement: the user's stop, not the file's fault
            raise KeyboardInterrupt from None
        if out_of_memory(e):  # the file is fine, the memory limit too low for it
            return _fail(store, FileResult(str(path), adapter.NAME), path, "out_of_memory",
                         f"{path}: nothing of the file was stored: {out_of_memory_advice(e)}")
        return _fail(store, FileResult(str(path), adapter.NAME), path, "unreadable_file",
                     f"{path}: {type(e).__name__}: {e}")


def _fail(store: Store, res: FileResult, path: Path, kind: str, message: str) -> FileResult:
    res.status, res.message = "failed", message
    quarantine(store, [Bad(kind, message, read.raw_excerpt(path))], str(path), res)
    return res


def quarantine(store: Store, bad: list[Bad], source_file: str, res: FileResult | None = None) -> None:
    """Quarantine records outside a publish (a file that could not be read at all, a receiver's body)."""
    if not bad:
        return
    store.con.executemany(
        Q.INSERT_QUARANTINE,
        [[source_file, b.line, b.kind, b.reason, b.raw, b.run_id, b.span_id, b.stored] for b in bad],
    )
    if res is not None:
        res.quarantined.update(b.kind for b in bad)
        res.first_bad += [(b.line, b.kind, b.reason) for b in bad[:5]]


