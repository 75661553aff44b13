"""Many small files in one publish: a folder of 10,000 single-trace downloads is not 10,000 transactions.

A publish has a fixed cost (the pipeline's statements over the runs it touched, the fleet checks, the
search index, the commit): ~0.45 s, which for a file of one run is nearly all of it. Files up to
`SMALL_FILE_BYTES` are read whole into memory as they come (each by its adapter, as ever: a file that
cannot be read fails alone), and their rows published together, per format, once `BATCH_BYTES` or
`BATCH_FILES` are held, and at the end. Each file is still recorded in `ingested_files` and `file_reads`,
and its quarantine records name it, with their line. If the publish of a batch fails, its files are
published one by one, so that one file's problem never costs the others.

A batch's counts (runs added, changed...) are those of the batch: the first file of the batch carries
them in the summary, the others say which file they were published with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa

from ..adapters.base import Bad, Batch
from ..core.duck import interrupted
from ..store import Store, StoreError
from . import files, read
from . import sql as Q
from .publish import OnCommit, ProgressFn, ingest_batches, namespaced, quarantine, record_prefix
from .stage import FIRST_BAD
from .steps import Pipeline
from .summary import FileResult, IngestSummary

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
    """The small files of an ingest, held per format until a batch of them is published."""

    def __init__(self, store: Store, pipeline: Pipeline, source: str | None, summary: IngestSummary):
        self.store, self.pipeline, self.source, self.summary = store, pipeline, source, summary
        self.groups: dict[str, _Group] = {}

    def takes(self, part: files.Read) -> bool:
        return part.size - part.offset <= SMALL_FILE_BYTES

    def add(self, path: Path, part: files.Read, digest: str, adapter: ModuleType,
            advance: ProgressFn | None) -> None:
        """Read the file whole (an error propagates: the file fails alone) and hold its rows."""
        if any(f.digest == digest for g in self.groups.values() for f in g.files):
            self.summary.files.append(FileResult(str(path), adapter.NAME, "skipped_duplicate",
                                                 message="same bytes as a file of this ingest"))
            return
        with files.open_part(path, part) as stream:
            batches = list(files.renumbered(adapter.read(stream, str(path), self.store.config), part.lines_before))
        if advance is not None:
            advance(part.size - part.offset)
        res = FileResult(str(path), adapter.NAME)
        bad = [b for x in batches for b in x.bad]
        res.quarantined.update(b.kind for b in bad)
        res.first_bad = [(b.line, b.kind, b.reason) for b in bad[:FIRST_BAD]]
        group = self.groups.setdefault(adapter.NAME, _Group())
        group.files.append(_File(path, part, digest, adapter.NAME, path.stat().st_mtime, batches, res))
        group.nbytes += part.size - part.offset
        if group.nbytes >= BATCH_BYTES or len(group.files) >= BATCH_FILES:
            self._publish(adapter.NAME)

    def flush(self) -> None:
        for format in list(self.groups):
            self._publish(format)

    def _publish(self, format: str) -> None:
        group = self.groups.pop(format, None)
        if group is None or not group.files:
            return
        t0 = time.time()
        if len(group.files) == 1:
            self._one(group.files[0])
            return
        try:
            res = ingest_batches(self.store, str(group.files[0].path), format, _rows(group.files), self.pipeline,
                                 on_commit=_records(group.files, self.source), source=self.source)
        except (KeyboardInterrupt, SystemExit, StoreError):
            raise
        except Exception as e:
            if interrupted(e):
                raise KeyboardInterrupt from None
            for f in group.files:  # one file's problem must not cost the others: one by one
                self._one(f)
            return
        first = group.files[0].res
        for name in ("runs", "spans", "runs_added", "runs_changed", "runs_unchanged", "spans_changed",
                     "spans_unchanged", "spans_outdated"):
            setattr(first, name, getattr(res, name))
        first.seconds = time.time() - t0
        first.message = res.message
        for f in group.files:
            if f is not group.files[0]:
                f.res.message = f"published with {first.path} and {len(group.files) - 2:,} other file(s)"
            self.summary.files.append(f.res)

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

