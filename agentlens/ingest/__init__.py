"""The ingest: trace files (and live sources) into the store, one transaction per file (or per batch of
small files).

    read.py      which files, ingested before or not, which adapter reads them
    files.py     how far each file was read (`file_reads`): a file that grew is read from where it stopped
    batch.py     small files read on every core and published together, a batch per format
    stage.py     the adapter's batches as Parquet beside the database (nothing touches it yet)
    publish.py   the stage into the tables in one transaction: spans, runs built, steps run
    steps.py     the pipeline steps run inside that transaction (pricing, failure modes, fleet checks)
    sql.py       the statements of the publish; tables.py: the temp tables they share
    summary.py   what an ingest did

Guarantees:
- one transaction per file (per batch of small files): Ctrl-C or a crash mid-file leaves the database as
  it was before it;
- a file whose bytes were ingested before is skipped (SHA-256 in `ingested_files`); a file that only grew
  is read from where the last read stopped (files.py);
- a record is identified by its source and its key (publish.record_prefix): a span by (run_id, span_id),
  a run given whole by its run_id. The same content read again adds nothing; other content is a new
  version, and the version kept, whole, does not depend on the order the files come in (sql.py);
- what cannot be read goes to `quarantine` with its raw text and the reason; the rest goes in;
  an error in one file does not stop the others.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from .. import adapters
from ..adapters.base import Bad
from ..core.duck import interrupted, out_of_memory
from ..store import Store, StoreError, out_of_memory_advice
from . import batch, files, read
from . import sql as Q
from .publish import Field, OnCommit, ProgressFn, ingest_batches, quarantine, record_prefix
from .read import IngestError, NotATrace
from .steps import Pipeline, Step
from .summary import COUNTS, FileResult, IngestSummary

__all__ = ["COUNTS", "Field", "FileResult", "IngestError", "IngestSummary", "OnCommit", "Pipeline", "Progress",
           "Step", "ingest_batches", "ingest_files", "record_prefix"]


class Progress(Protocol):
    """How an ingest reports its progress over the bytes of its files (agentlens.present.progress draws
    it as a bar)."""

    def advance_fn(self, path: Path) -> ProgressFn: ...

    def done(self, path: Path) -> None: ...


def ingest_files(store: Store, paths: Iterable[str | Path], pipeline: Pipeline, format: str | None = None,
                 progress: Progress | None = None, summary: IngestSummary | None = None,
                 source: str | None = None) -> IngestSummary:
    """Ingest files and folders (`.gz` too) into the store, each file in its own transaction. The format
    is sniffed unless given. `source`: the source's name, a namespace of record ids of its own
    (publish.record_prefix); by default the config's `[sources.files]` name the sources of the files whose
    path matches their globs (files.source_names). A file read before is read from where that read stopped when it only grew
    (files.py). Raises IngestError for a path that does not exist, before reading any."""
    t0 = time.perf_counter()
    summary = summary if summary is not None else IngestSummary()
    forced = adapters.by_name(format) if format else None
    entries = list(read.iter_files(paths))
    named = files.source_names(store.config) if source is None else []
    by_source: dict[str | None, list[Path]] = {}
    for p, _ in entries:
        by_source.setdefault(source or files.source_of(p, named), []).append(p)
    plans: dict[Path, files.Read] = {}
    seen: dict[str, tuple[str, Any]] = {}
    small: dict[str | None, batch.SmallFiles] = {}
    for name, group in by_source.items():
        p_, s_ = _look_up(store, group, name)
        plans.update(p_)
        seen.update(s_)
        small[name] = batch.SmallFiles(store, pipeline, name, summary)
    source_of = {p: name for name, group in by_source.items() for p in group}
    for path, explicit in entries:
        advance = progress.advance_fn(path) if progress is not None else None
        name = source_of[path]
        res = _ingest_file(store, path, explicit, forced, pipeline, advance, name, small[name], plans.get(path),
                           seen)
        if progress is not None:
            progress.done(path)
        if res is not None:
            summary.files.append(res)
    for s in small.values():
        s.flush()
    summary.seconds += time.perf_counter() - t0
    return summary


def _look_up(store: Store, paths: list[Path], source: str | None
             ) -> tuple[dict[Path, files.Read], dict[str, tuple[str, Any]]]:
    """What the database knows of many files at once (a query per file cost ~3 ms each, 30 s for 10,000
    small files): the plans of the small files (how far each was read, their digests) and the digests
    already ingested."""
    known = files.last_reads(store, paths, source)
    plans = {}
    for p in paths:
        try:
            if p.stat().st_size <= batch.SMALL_FILE_BYTES:
                plans[p] = files.plan(store, p, source, known)
        except OSError:
            pass  # said by _ingest_file, which tries again
    digests = [_digest(r, source) for r in plans.values()]
    seen = {r[0]: (r[1], r[2]) for r in store.con.execute(Q.FILES_SEEN, [digests]).fetchall()} if digests else {}
    return plans, seen


def _digest(part: files.Read, source: str | None) -> str:
    """A file's key in `ingested_files`: its SHA-256, and the source's name (the same bytes as another
    source's are read again, into that source)."""
    return part.digest if not source else f"{part.digest}@{source}"


def _ingest_file(store: Store, path: Path, explicit: bool, forced: ModuleType | None, pipeline: Pipeline,
                 advance: ProgressFn | None, source: str | None = None, small: batch.SmallFiles | None = None,
                 planned: files.Read | None = None, known: dict[str, tuple[str, Any]] | None = None,
                 ) -> FileResult | None:
    """The file into the store in its own transaction; a small file is left to `small`, which publishes it
    with others in one transaction (and returns None). `planned`, `known`: looked up already (_look_up)."""
    res = FileResult(str(path))
    try:
        stat = path.stat()
        part = planned if planned is not None else files.plan(store, path, source)
    except OSError as e:
        return _fail(store, res, path, "unreadable_file", f"{path}: cannot read: {e}")
    digest = _digest(part, source)
    seen = (known.get(digest) if planned is not None and known is not None
            else store.one(Q.FILE_SEEN, [digest]))
    if seen is not None:
        res.status = "skipped_duplicate"
        res.message = f"same bytes as {seen[0]}, ingested {seen[1]:%Y-%m-%d %H:%M:%S}"
        return res
    try:
        adapter = read.adapter_for(path, read.head(path), explicit, forced) if not part.tail else \
            (forced or adapters.by_name(part.format or ""))
    except (OSError, EOFError) as e:
        return _fail(store, res, path, "unreadable_file", f"{path}: cannot read: {e}")
    except NotATrace as e:
        return _fail(store, res, path, "unreadable_file", str(e))
    if adapter is None:
        res.status = "skipped_unknown"
        return res
    res.format = adapter.NAME

    if small is not None and small.takes(part):
        try:
            small.add(path, part, digest, adapter, advance)
            return None
        except (KeyboardInterrupt, SystemExit, StoreError):
            raise
        except Exception as e:  # one bad file never stops the others
            if interrupted(e):
                raise KeyboardInterrupt from None
            return _fail(store, FileResult(str(path), adapter.NAME), path, "unreadable_file",
                         f"{path}: {type(e).__name__}: {e}")
    recorded = OnCommit(Q.RECORD_FILE, (digest, str(path), part.size, stat.st_mtime, Field("format"), Field("runs"),
                                        Field("spans"), Field("quarantined"), Field("seconds")))
    ledger = OnCommit(Q.RECORD_READ, part.record(adapter.NAME))
    try:
        with files.open_part(path, part) as stream:
            batches = files.renumbered(read.batches(adapter, stream, path, store.config), part.lines_before)
            res = ingest_batches(store, str(path), adapter.NAME, batches, pipeline, on_commit=(recorded, ledger),
                                 advance=advance, digest=digest, source=source)
            if part.tail and res.status == "ingested":
                res.message = part.grew()
            return res
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
