"""Many small files in one publish: a folder of 10,000 single-trace downloads is not 10,000 transactions.

A publish has a fixed cost (the pipeline's statements over the runs it touched, the fleet checks, the
search index, the commit): ~0.45 s, which for a file of one run is nearly all of it. Files up to
`SMALL_FILE_BYTES` are held as the ingest finds them, then read in one stream on every core (chunks of
files sent to the worker processes of agentlens.adapters.parallel, each file read by its adapter, as ever:
a file that cannot be read fails alone), and their rows published together, per format, each time
`BATCH_BYTES` or `BATCH_FILES` of them are read, and at the end. Each file is still recorded in `ingested_files` and `file_reads`,
and its quarantine records name it, with their line. If the publish of a batch fails, its files are
published one by one, so that one file's problem never costs the others.

A batch's counts (runs added, changed...) are those of the batch: the first file of the batch carries
them in the summary, the others say which file they were published with.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa

from .. import adapters
from ..adapters import parallel
from ..adapters.base import Bad, Batch
from ..core.config import Config
from ..core.duck import interrupted
from ..store import Store, StoreError
from . import files, read
from . import sql as Q
from .publish import OnCommit, ProgressFn, ingest_batches, namespaced, quarantine, record_prefix
from .stage import FIRST_BAD
from .steps import Pipeline
from .summary import COUNTS, FileResult, IngestSummary

FILE_END = "_file_end"  # the marker batch after each file's batches from a worker (read_files)
CHUNK_BYTES = 1 << 20  # of small files sent to a worker at once
SMALL_FILE_BYTES = 4 << 20  # files up to this size are read into memory and published in batches
BATCH_BYTES = 64 << 20  # of file bytes held before a batch is published
BATCH_FILES = 5_000
STAGE_ROWS = 50_000  # rows concatenated per staged Parquet file


@dataclass
class _File:
    path: Path
    part: files.Read
    digest: str
    format: str
    mtime: float
    batches: list[Batch]
    res: FileResult


@dataclass
class _Group:
    files: list[_File] = field(default_factory=list)
    nbytes: int = 0


class SmallFiles:
    """The small files of an ingest: held as they are found, then read in one stream over the worker
    processes (started once), and published per format each time a batch of them is read."""

    def __init__(self, store: Store, pipeline: Pipeline, source: str | None, summary: IngestSummary):
        self.store, self.pipeline, self.source, self.summary = store, pipeline, source, summary
        self.pending: list[_File] = []
        self.digests: set[str] = set()

    def takes(self, part: files.Read) -> bool:
        return part.size - part.offset <= SMALL_FILE_BYTES

    def add(self, path: Path, part: files.Read, digest: str, adapter: ModuleType,
            advance: ProgressFn | None) -> None:
        """Hold the file until `flush`."""
        if digest in self.digests:
            self.summary.files.append(FileResult(str(path), adapter.NAME, "skipped_duplicate",
                                                 message="same bytes as a file of this ingest"))
            return
        self.digests.add(digest)
        self.pending.append(_File(path, part, digest, adapter.NAME, path.stat().st_mtime, [],
                                  FileResult(str(path), adapter.NAME, message=part.grew())))
        if advance is not None:
            advance(part.size - part.offset)

    def flush(self) -> None:
        """Read the files held (a file that cannot be read fails alone) and publish them, a batch per
        format each time one holds BATCH_BYTES or BATCH_FILES, the rest at the end."""
        pending, self.pending, self.digests = self.pending, [], set()
        groups: dict[str, _Group] = {}
        for f in self._read(pending):
            group = groups.setdefault(f.format, _Group())
            group.files.append(f)
            group.nbytes += f.part.size - f.part.offset
            if group.nbytes >= BATCH_BYTES or len(group.files) >= BATCH_FILES:
                self._publish(groups.pop(f.format).files)
        for group in groups.values():
            self._publish(group.files)

    def _publish(self, ready: list[_File]) -> None:
        t0 = time.time()
        if len(ready) == 1:
            self._one(ready[0])
            return
        format = ready[0].format
        try:
            res = ingest_batches(self.store, str(ready[0].path), format, _rows(ready), self.pipeline,
                                 on_commit=_records(ready, self.source), source=self.source)
        except (KeyboardInterrupt, SystemExit, StoreError):
            raise
        except Exception as e:
            if interrupted(e):
                raise KeyboardInterrupt from None
            for f in ready:  # one file's problem must not cost the others: one by one
                self._one(f)
            return
        first = ready[0].res
        for name in COUNTS:
            setattr(first, name, getattr(res, name))
        first.seconds = time.time() - t0
        first.message = "; ".join(m for m in (first.message, res.message) if m) or None
        for f in ready:
            if f is not ready[0]:
                f.res.message = "; ".join(m for m in (f.res.message, f"published with {first.path} and "
                                                      f"{len(ready) - 2:,} other file(s)") if m)
            self.summary.files.append(f.res)

    def _read(self, group: list[_File]) -> Iterator[_File]:
        """The files with their batches, read on every core (agentlens.adapters.parallel: chunks of files of
        about CHUNK_BYTES, each file by its adapter in a worker), in order; a file that cannot be read fails
        alone, and is left out."""
        if not group:
            return
        chunks, chunk, size = [], [], 0
        for i, f in enumerate(group):
            chunk.append((str(f.path), f.format, f.part.offset, f.part.size, f.part.lines_before))
            size += f.part.size - f.part.offset
            if size >= CHUNK_BYTES or i == len(group) - 1:
                chunks.append((chunk, 0, True, 0))
                chunk, size = [], 0
        fn = functools.partial(read_files, config=self.store.config)
        by_path = {str(f.path): f for f in group}
        held: list[Batch] = []
        for b in parallel.read_chunks(iter(chunks), fn):
            end = next((x for x in b.bad if x.kind == FILE_END), None)
            if end is None:
                held.append(b)
                continue
            f = by_path[end.raw]
            if end.reason:  # the file could not be read: it fails, alone
                f.res.status, f.res.message = "failed", f"{f.path}: {end.reason}"
                quarantine(self.store, [Bad("unreadable_file", f.res.message, read.raw_excerpt(f.path))],
                           str(f.path), f.res)
                self.summary.files.append(f.res)
            else:
                f.batches = held
                bad = [x for y in held for x in y.bad]
                f.res.quarantined.update(x.kind for x in bad)
                f.res.first_bad = [(x.line, x.kind, x.reason) for x in bad[:FIRST_BAD]]
                yield f
            held = []

    def _one(self, f: _File) -> None:
        """A file published alone (as ingest._ingest_file does)."""
        recorded = OnCommit(Q.RECORD_FILE_ONCE, (f.digest, str(f.path), f.part.size, f.mtime, f.format, None, None,
                                                 sum(f.res.quarantined.values()), None))
        ledger = OnCommit(Q.RECORD_READ, f.part.record(f.format))
        try:
            res = ingest_batches(self.store, str(f.path), f.format, iter(f.batches), self.pipeline,
                                 on_commit=(recorded, ledger), source=self.source)
        except (KeyboardInterrupt, SystemExit, StoreError):
            raise
        except Exception as e:
            if interrupted(e):
                raise KeyboardInterrupt from None
            res = FileResult(str(f.path), f.format, "failed", message=f"{f.path}: {type(e).__name__}: {e}")
            quarantine(self.store, [Bad("unreadable_file", res.message or "", read.raw_excerpt(f.path))], str(f.path),
                       res)
        else:
            res.message = "; ".join(m for m in (f.res.message, res.message) if m) or None
        self.summary.files.append(res)


def _rows(group: list[_File]) -> list[Batch]:
    """The group's spans and runs concatenated into few batches (one staged Parquet file per STAGE_ROWS
    rows, not one per file); quarantine records go in with each file's name (_records). Runs and spans
    are concatenated in the same file order, so a run given whole stays beside its span (sql.STAGE_GIVEN_ROWS)."""
    out: list[Batch] = []
    spans: list[pa.Table] = []
    runs: list[pa.Table] = []
    rows = 0

    def cut() -> None:
        nonlocal rows
        if spans or runs:
            out.append(Batch(spans=pa.concat_tables(spans) if spans else None,
                             runs=pa.concat_tables(runs) if runs else None))
        spans.clear()
        runs.clear()
        rows = 0

    for f in group:
        for b in f.batches:
            if b.spans is not None and b.spans.num_rows:
                spans.append(b.spans)
                rows += b.spans.num_rows
            if b.runs is not None and b.runs.num_rows:
                runs.append(b.runs)
        if rows >= STAGE_ROWS:
            cut()
    cut()
    return out


def _records(group: list[_File], source: str | None) -> tuple[OnCommit, ...]:
    """What commits with a batch: each file in `ingested_files` and `file_reads`, and its quarantine
    records under its name, as parameters of a few statements (a publish may run in another process)."""
    prefix = record_prefix(source, group[0].format)
    done = [(f.digest, str(f.path), f.part.size, f.mtime, f.format, sum(f.res.quarantined.values()))
            for f in group]
    reads = [f.part.record(f.format) for f in group]
    bad: list[tuple[Any, ...]] = []
    for f in group:
        for b in (x for nb in namespaced(f.batches, prefix) for x in nb.bad):
            bad.append((str(f.path), b.line, b.kind, b.reason, b.raw, b.run_id, b.span_id, b.stored))
    statements = [OnCommit(Q.RECORD_FILES, (_json(done, ("content_hash", "path", "size_bytes", "mtime", "format",
                                                         "quarantined")),)),
                  OnCommit(Q.RECORD_READS, (_json(reads, files.READ_FIELDS),))]
    if bad:
        statements.append(OnCommit(Q.QUARANTINE_FILES, (_json(bad, ("source_file", "line", "kind", "reason", "raw",
                                                                    "run_id", "span_id", "stored")),)))
    return tuple(statements)


def _json(rows: list[tuple[Any, ...]], names: tuple[str, ...]) -> str:
    """Rows as one JSON text, a single bound parameter (read back with DuckDB's json functions)."""
    import json

    return json.dumps([dict(zip(names, r, strict=True)) for r in rows])


def read_files(items: list[tuple[str, str, int, int, int]], first_line: int, final: bool, *,
               config: Config) -> list[Batch]:
    """A chunk of small files (path, format, offset, size, lines before), each read by its adapter (in a
    worker process: agentlens.adapters.parallel). After each file's batches, a batch with one FILE_END
    record (raw: the path; reason: why the file could not be read, else empty); a file that could not be
    read gives none of its batches."""
    out: list[Batch] = []
    for path, format, offset, size, lines_before in items:
        start = len(out)
        try:
            part = files.Read(Path(path), "", "", size, "", offset=offset, lines_before=lines_before)
            adapter = adapters.by_name(format)
            with files.open_part(Path(path), part) as stream:
                out += files.renumbered(read.batches(adapter, stream, Path(path), config), lines_before)
            out.append(Batch(bad=[Bad(FILE_END, "", path)]))
        except Exception as e:  # whatever the file does, it fails alone
            del out[start:]
            out.append(Batch(bad=[Bad(FILE_END, f"{type(e).__name__}: {e}" or type(e).__name__, path)]))
    return out
