"""The DuckDB store: opening and migrating, ingesting files (one transaction per file), and
queries returning polars DataFrames.

Ingest guarantees (see `Lens.ingest_batches` for how memory stays bounded):
- one transaction per file: Ctrl-C or a crash mid-file leaves the database as it was before it;
- a file whose bytes were ingested before is skipped (SHA-256 in `ingested_files`), and a span
  already stored (same run_id and span_id) is never stored twice, so re-ingesting adds nothing;
- what cannot be read goes to `quarantine` with its raw text and the reason; the rest goes in;
  an error in one file does not stop the others.
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import adapters, schema
from . import sql as Q
from .adapters.base import Bad, Batch
from .config import Config
from .duck import out_of_memory, transaction
from .results import Result

DEFAULT_DB = "agentlens.duckdb"
SNIFF_BYTES = 64 * 1024
MAX_RAW_FILE = 1 << 20  # an unreadable file's first MiB is kept in the quarantine
DEFAULT_MEMORY_LIMIT = "1GB"  # DuckDB's cap; override with $AGENTLENS_MEMORY_LIMIT
MIGRATION_NOTICE_ROWS = 100_000  # a table rewrite of fewer rows takes a second or two: not announced
BUILD_CHUNK_RUNS = 20_000  # runs built (and pipeline steps run) per statement, to bound memory
# ... and fewer when their spans' weights (_span_weights) add up to more than this; None: a quarter of DuckDB's
# memory limit (measured at 1 GB, before root attributes weighed more: runs with 60 KB prompts were built in
# chunks of 256 MB of text, and ran out of memory in chunks of 384 MB)
BUILD_CHUNK_BYTES: int | None = None
# the span columns holding long text (prompts, outputs, payloads): what building and classifying a run
# hold in memory grows with them, so chunks are weighed by their bytes
LONG_TEXT_COLUMNS = ("input", "output", "attributes", "events", "resource_attributes", "tool_arguments",
                     "tool_result", "tool_calls", "tool_definitions", "status_message")
# what a root or agent span's attributes weigh on top of their text: building a run parses them as JSON
PARSED_ATTRIBUTES_EXTRA = 4


def default_db_path() -> str:
    return os.environ.get("AGENTLENS_DB") or DEFAULT_DB


class IngestError(Exception):
    """A file could not be read at all (the message names the file and the problem)."""


@dataclass
class FileResult:
    path: str
    format: str | None = None
    status: str = "ingested"  # ingested | skipped_duplicate | skipped_unknown | failed
    runs: int = 0
    spans: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    message: str | None = None


@dataclass
class IngestSummary:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def runs(self) -> int:
        return sum(f.runs for f in self.files)

    @property
    def spans(self) -> int:
        return sum(f.spans for f in self.files)

    @property
    def quarantined(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for f in self.files:
            total.update(f.quarantined)
        return total

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    def result(self) -> Result:
        q = self.quarantined
        facts: dict[str, Any] = {
            "files ingested": self.count("ingested"),
            "files skipped (already ingested)": self.count("skipped_duplicate"),
            "files skipped (not a trace format)": self.count("skipped_unknown"),
            "files failed": self.count("failed"),
            "runs added or updated": self.runs,
            "spans added": self.spans,
            "records quarantined": sum(q.values()),
            "seconds": round(self.seconds, 2),
        }
        tables = {}
        if q:
            tables["quarantined by kind"] = pl.DataFrame(
                {"kind": list(q), "records": list(q.values())}
            ).sort("records", descending=True)
        problems = [f for f in self.files if f.status == "failed" or f.quarantined]
        if problems:
            tables["files with problems"] = pl.DataFrame({
                "file": [f.path for f in problems],
                "status": [f.status for f in problems],
                "quarantined": [sum(f.quarantined.values()) for f in problems],
                "message": [f.message or ", ".join(f"{k}: {v}" for k, v in f.quarantined.items()) for f in problems],
            })
        return Result("ingest summary", facts, tables)

    def __str__(self) -> str:
        return str(self.result())

    def _repr_html_(self) -> str:
        return self.result()._repr_html_()


ProgressFn = Callable[[int], None]
Step = Callable[["Lens"], None]


def iter_files(paths: Iterable[str | Path]) -> Iterator[tuple[Path, bool]]:
    """Files under the given paths (folders recursively, sorted; hidden entries skipped).
    Yields (path, named_explicitly)."""
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts):
                    yield f, False
        elif p.exists():
            yield p, True
        else:
            raise IngestError(f"{p}: no such file or directory")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _open(path: Path) -> IO[bytes]:
    f = path.open("rb")
    if f.read(2) == b"\x1f\x8b":
        f.seek(0)
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    f.seek(0)
    return f


def out_of_memory_advice(e: BaseException) -> str:
    """What to tell a user whose DuckDB ran out of memory (see duck.out_of_memory)."""
    limit = os.environ.get("AGENTLENS_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
    return (f"DuckDB ran out of memory at its limit of {limit} ({str(e).splitlines()[0]}); "
            "raise $AGENTLENS_MEMORY_LIMIT (e.g. 4GB) and run it again")


# _span_weights in SQL, for stored spans (bytes of UTF-8: strlen); staged spans are weighed in Arrow, where a
# DuckDB query per batch took 3 ms against 0.5 (tests/test_ingest.py checks the two agree)
SPAN_WEIGHT_SQL = (" + ".join(f"coalesce(strlen({c}), 0)" for c in LONG_TEXT_COLUMNS)
                   + f" + CASE WHEN parent_span_id IS NULL OR kind = 'agent' THEN {PARSED_ATTRIBUTES_EXTRA} * coalesce(strlen(attributes), 0) "
                   "ELSE 0 END")


def _span_weights(spans: pa.Table) -> pa.Array:
    """Bytes of memory a span asks of building and classifying its run, roughly: its long text, and five
    times the attributes of a root or agent span, which building a run parses as JSON (a parse takes several
    times the text; with a long prompt in a root's attributes, that was most of the memory)."""
    lengths = [pc.fill_null(pc.binary_length(spans[c]), 0) for c in LONG_TEXT_COLUMNS]
    parsed = pc.or_(pc.is_null(spans["parent_span_id"]), pc.equal(spans["kind"], "agent"))
    extra = pc.multiply(pc.if_else(pc.fill_null(parsed, False), lengths[LONG_TEXT_COLUMNS.index("attributes")], 0),
                        PARSED_ATTRIBUTES_EXTRA)
    return functools.reduce(pc.add, lengths, extra).cast(pa.int64())


class _Stage:
    """A file's batches as Parquet files in a temporary folder: spans, given runs, quarantine records.
    Each row carries `_row`, its order in the file, so that the first of two duplicates wins."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.spans = self.runs = self.bad = 0  # files written of each kind
        self.rows = 0
        self.bad_kinds: Counter[str] = Counter()

    def glob(self, kind: str) -> str:
        return str(self.folder / f"{kind}-*.parquet")

    def _write(self, kind: str, table: pa.Table, n: int) -> None:
        table = table.append_column("_row", pa.array(range(self.rows, self.rows + table.num_rows), pa.int64()))
        if kind == "spans":  # `_bytes`: what the span weighs in a chunk of runs (Q.STAGE_REBUILD)
            table = table.append_column("_bytes", _span_weights(table))
        self.rows += table.num_rows
        pq.write_table(table, self.folder / f"{kind}-{n:06d}.parquet", compression="lz4")

    def add(self, batch: Batch) -> None:
        if batch.runs is not None and batch.runs.num_rows:
            self._write("runs", batch.runs, self.runs)
            self.runs += 1
        if batch.spans is not None and batch.spans.num_rows:
            self._write("spans", batch.spans, self.spans)
            self.spans += 1
        if batch.bad:
            self._write("bad", pa.table({
                "line": pa.array([b.line for b in batch.bad], pa.int64()),
                "kind": [b.kind for b in batch.bad], "reason": [b.reason for b in batch.bad],
                "raw": [b.raw for b in batch.bad], "run_id": pa.array([b.run_id for b in batch.bad], pa.string()),
                "span_id": pa.array([b.span_id for b in batch.bad], pa.string()),
                "stored": pa.array([b.stored for b in batch.bad], pa.bool_()),
            }), self.bad)
            self.bad += 1
            self.bad_kinds.update(b.kind for b in batch.bad)

    def drop(self, kind: str) -> None:
        """Delete the staged files of a kind once they are stored: the staged spans of a large file are a
        quarter of its size on disk (29 GB of OTLP: ~7 GB), not to be held through the rest of its publish."""
        for f in self.folder.glob(f"{kind}-*.parquet"):
            f.unlink()

    def close(self) -> None:
        pass


class Lens:
    """An agentlens database. `lens = agentlens.open("agentlens.duckdb")`."""

    def __init__(
        self,
        path: str | Path | None = None,
        config: Config | None = None,
        read_only: bool = False,
        steps: tuple[Step, ...] = (),
        file_steps: tuple[Step, ...] = (),
        staged_steps: tuple[Step, ...] = (),
    ):
        """`steps` run inside each file's transaction after its runs are built, in order, once per
        chunk of the runs the file touched (their ids are in the temp table `_affected`);
        `file_steps` run once per file after them (see agentlens.pipeline). `staged_steps` run first, in
        a file of new runs only, per chunk of its runs, before they are stored: they read the chunk's staged
        spans (narrow columns, `_narrow`) and may fill `_staged_span_costs` and `_staged_run_costs`, which the
        spans' insert and the runs' build take their cost columns from (sql.STAGE_SPAN_COSTS_TABLE: why).

        DuckDB's memory is capped at $AGENTLENS_MEMORY_LIMIT (default 1GB): larger work spills to a
        temporary folder beside the database instead of growing the process."""
        self.path = str(path) if path is not None else default_db_path()
        self.config = config or Config()
        self.steps = steps
        self.file_steps = file_steps
        self.staged_steps = staged_steps
        self.con = duckdb.connect(self.path, read_only=read_only)
        self.con.execute("SET TimeZone = 'UTC'")
        # DuckDB draws its own progress bar on stderr for statements over 2 s; ours (rich) is the one
        self.con.execute("SET enable_progress_bar = false")
        self.con.execute("SET memory_limit = ?", [os.environ.get("AGENTLENS_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT])
        if not read_only:
            schema.migrate(self.con, self._announce_rewrite)
            self.con.execute("CREATE TEMP TABLE IF NOT EXISTS _affected (run_id VARCHAR)")
            self._sweep_stages()

    @contextmanager
    def _announce_rewrite(self, name: str, rows: dict[str, int]) -> Iterator[Callable[[str], None]]:
        """A migration that rewrites whole tables, on a database large enough for it to take a while: say
        so on stderr (what, how many rows, once), with a progress bar per table from DuckDB's own progress
        of the running statement."""
        if sum(rows.values()) < MIGRATION_NOTICE_ROWS:
            yield lambda table: None
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        what = " and ".join(f"{n:,} {t}" for t, n in rows.items())
        console.print(f"agentlens: upgrading {self.path} to schema {name}: rewriting {what} "
                      "(once; about 12 s per million spans)", markup=False, highlight=False)
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
                done = self.con.query_progress()
                if tasks and done >= 0:
                    bar.update(tasks[-1], completed=min(done, 100))

        poller = threading.Thread(target=poll, daemon=True)
        # DuckDB tracks a statement's progress only with its progress bar on; it is not to print it
        self.con.execute("SET enable_progress_bar_print = false")
        self.con.execute("SET enable_progress_bar = true")
        with bar:
            poller.start()
            try:
                yield on_table
            finally:
                stop.set()
                poller.join()
                self.con.execute("SET enable_progress_bar = false")
                self.con.execute("RESET enable_progress_bar_print")
        console.print(f"agentlens: {name} done in {time.perf_counter() - t0:.1f} s", markup=False, highlight=False)

    # -- lifecycle ----------------------------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Lens:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- ingest -------------------------------------------------------------------------------------
    def ingest(
        self,
        *paths: str | Path,
        format: str | None = None,
        progress: bool | None = None,
    ) -> IngestSummary:
        """Ingest files and folders (`.gz` too), and `postgresql://...?table=` URLs of live agent_runs
        tables (read incrementally, see agentlens.sources.postgres). The format is sniffed unless given.
        `progress`: a progress bar (None: only when there is more than 20 MB to read)."""
        from .sources import ingest_url, is_url  # live sources write through this store

        t0 = time.perf_counter()
        summary = IngestSummary()
        forced = adapters.by_name(format) if format else None
        urls = [str(p) for p in paths if is_url(p)]
        files = list(iter_files(p for p in paths if not is_url(p)))
        total = sum(f.stat().st_size for f, _ in files)
        show = progress if progress is not None else total > 20 * 1024 * 1024
        bar = _Progress(total, show)
        try:
            for path, explicit in files:
                res = self._ingest_file(path, explicit, forced, bar.advance_fn(path))
                bar.done(path)
                summary.files.append(res)
        finally:
            bar.close()
        for url in urls:  # postgresql://...?table=agent_runs: a live table, read incrementally
            summary.files.append(ingest_url(self, url))
        summary.seconds = time.perf_counter() - t0
        return summary

    def _ingest_file(
        self, path: Path, explicit: bool, forced: ModuleType | None, advance: ProgressFn
    ) -> FileResult:
        t0 = time.perf_counter()
        res = FileResult(str(path))
        stat = path.stat()
        digest = _sha256(path)
        seen = self._one(Q.FILE_SEEN, [digest])
        if seen is not None:
            res.status = "skipped_duplicate"
            res.message = f"same bytes as {seen[0]}, ingested {seen[1]:%Y-%m-%d %H:%M:%S}"
            return res
        try:
            with _open(path) as f:
                head = f.read(SNIFF_BYTES)
                if head.startswith(b"PAR1"):  # Parquet keeps its column names in the footer: sniff it too
                    f.seek(max(len(head), stat.st_size - SNIFF_BYTES))
                    head += f.read()
        except (OSError, EOFError) as e:
            return self._fail(res, path, "unreadable_file", f"{path}: cannot read: {e}")
        adapter = forced or adapters.sniff(head, path.name)
        if adapter is None:
            if explicit and head.strip():
                return self._fail(
                    res, path, "unreadable_file",
                    f"{path}: not a known trace format (OTLP JSON, Langfuse or LangSmith exports, "
                    "agent_runs CSV/JSONL/Parquet); "
                    "give --format to read it as one",
                )
            res.status = "skipped_unknown"
            return res
        res.format = adapter.NAME

        def record(done: FileResult) -> None:
            done.seconds = time.perf_counter() - t0
            self.con.execute(
                Q.RECORD_FILE,
                [digest, str(path), stat.st_size, stat.st_mtime, done.format, done.runs, done.spans,
                 sum(done.quarantined.values()), done.seconds],
            )

        try:
            with _open(path) as stream:
                return self.ingest_batches(str(path), adapter.NAME, adapter.read(stream, str(path), self.config),
                                           before_commit=record, advance=advance)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # one bad file never stops the others
            if out_of_memory(e):  # the file is fine, the memory limit too low for it
                return self._fail(FileResult(str(path), adapter.NAME), path, "out_of_memory",
                                  f"{path}: nothing of the file was stored: {out_of_memory_advice(e)}")
            return self._fail(FileResult(str(path), adapter.NAME), path, "unreadable_file",
                              f"{path}: {type(e).__name__}: {e}")

    def ingest_batches(
        self,
        name: str,
        format: str,
        batches: Iterable[Batch],
        before_commit: Callable[[FileResult], None] | None = None,
        advance: ProgressFn | None = None,
    ) -> FileResult:
        """Store adapter batches in one transaction, exactly as a file's are: spans deduplicated, runs
        rebuilt, the pipeline steps run, what could not be read quarantined under `name`. Sources that
        are not files (a live table, the OTLP receiver) write through this. `before_commit` runs last
        inside the transaction (e.g. to record how far a source has been read). Any error rolls back
        and propagates.

        Bounded memory whatever the input size: the batches are first staged as Parquet files in a
        temporary folder (nothing touches the database while the input is read), then published in a
        few set-based statements that DuckDB streams to disk, and runs are built and the steps run in
        chunks of `BUILD_CHUNK_RUNS` runs, fewer when their long text passes `BUILD_CHUNK_BYTES`."""
        t0 = time.perf_counter()
        res = FileResult(name, format)
        with tempfile.TemporaryDirectory(prefix=self._stage_prefix(), dir=self._stage_parent()) as tmp:
            stage = _Stage(Path(tmp))
            for batch in batches:
                stage.add(batch)
                if batch.bytes_read and advance is not None:
                    advance(batch.bytes_read)
            stage.close()
            res.quarantined.update(stage.bad_kinds)
            try:
                with transaction(self.con):
                    res.spans, res.runs = self._publish(stage, name)
                    res.seconds = time.perf_counter() - t0
                    if before_commit is not None:
                        before_commit(res)
            finally:
                # The settings the publish changed, put back once the transaction is over: inside a failed one,
                # DuckDB refuses every statement, and the refusal would hide the error that failed it.
                self.con.execute("RESET VARIABLE agentlens_span_floor")
                self.con.execute("RESET preserve_insertion_order")
        return res

    def _stage_prefix(self) -> str:
        return f".{Path(self.path).name}.stage-"

    def _sweep_stages(self) -> None:
        """Remove staging folders a killed ingest left behind (this connection holds the only write
        lock on the database, so no other ingest of it is running)."""
        parent = self._stage_parent()
        if parent is None:
            return
        for stale in Path(parent).glob(self._stage_prefix() + "*"):
            shutil.rmtree(stale, ignore_errors=True)

    def _stage_parent(self) -> str | None:
        """Stage next to the database (same disk, usually larger than /tmp); in-memory: the system's."""
        if self.path in (":memory:", "") or self.path.startswith(":memory:"):
            return None
        return str(Path(self.path).resolve().parent)

    def _publish(self, stage: _Stage, name: str) -> tuple[int, int]:
        """Inside the file's transaction: spans, given runs and quarantine from the stage, then runs
        built and the pipeline steps run, chunk by chunk. Returns (spans added, runs touched)."""
        con = self.con
        con.execute(Q.STAGE_KEYS, [stage.glob("spans")]) if stage.spans else con.execute(
            "CREATE OR REPLACE TEMP TABLE _staged (run_id VARCHAR, span_id VARCHAR, _row BIGINT, _bytes BIGINT)")
        con.execute(Q.STAGE_STORED_RUNS)
        # sql.SPAN_FLOOR_EXPR: a file of new runs only (no run given whole, none stored before) needs none of
        # the stored spans, which then sit below the first rowid it adds
        floor = 0
        new_runs_only = not stage.runs and self._one("SELECT count(*) FROM _stored_runs") == (0,)
        if new_runs_only:
            floor = con.execute(Q.NEXT_SPAN_ROWID).fetchall()[0][0]
        con.execute("SET VARIABLE agentlens_span_floor = ?", [floor])  # reset by ingest_batches, after the transaction
        return self._publish_staged(stage, name, new_runs_only)

    def _publish_staged(self, stage: _Stage, name: str, new_runs_only: bool = False) -> tuple[int, int]:
        con = self.con
        spans_added = 0
        if stage.runs:
            con.execute(Q.STAGE_GIVEN, [stage.glob("runs")])
        else:
            con.execute("CREATE OR REPLACE TEMP TABLE _given (run_id VARCHAR)")
        con.execute(Q.STAGE_SPAN_COSTS_TABLE)
        con.execute(Q.STAGE_RUN_COSTS_TABLE)
        chunk_bytes = self.chunk_bytes()
        chunking = {"n": BUILD_CHUNK_RUNS, "b": chunk_bytes, "nb": BUILD_CHUNK_RUNS * chunk_bytes}
        con.execute(Q.STAGE_REBUILD, chunking)
        if stage.spans:
            con.execute(Q.STAGE_DUPLICATES)
            con.execute(Q.STAGE_EXISTING)
            con.execute(Q.STAGE_SKIP)
            if new_runs_only and self.staged_steps:
                self._staged_steps(stage)
            # Without insertion order each DuckDB thread compresses and writes its row groups as they fill;
            # with it, the uncompressed rows were held (spilling past memory_limit) until they could be
            # appended in order. With the skip by `_row` (sql.STAGE_SKIP), the insert of 1M spans went from
            # 28 s to 17 s. Locality stays: a staged batch is appended by one thread, so spans near each
            # other in the file stay near in storage; duplicates are decided by `_row`, not storage order.
            con.execute("SET preserve_insertion_order = false")
            row = self._one(Q.PUBLISH_SPANS, [stage.glob("spans")])
            con.execute("RESET preserve_insertion_order")  # on an error, by ingest_batches
            stage.drop("spans")  # read no more: the spans are in `spans`
            # nor are the file-sized key tables: at 1M runs `_staged` alone holds 10M keys, most of DuckDB's 1 GB
            # while the runs are built, priced and classified (_rebuild keeps what those need: runs and weights)
            for table in ("_staged", "_dups", "_existing", "_skip", "_staged_span_costs"):
                con.execute(f"DROP TABLE {table}")
            spans_added = int(row[0]) if row else 0
        given = 0
        con.execute(Q.STAGE_PRIOR_TIMES)
        if stage.runs:
            con.execute(Q.DELETE_GIVEN_RUNS)
            row = self._one(Q.PUBLISH_GIVEN_RUNS, [stage.glob("runs")])
            given = int(row[0]) if row else 0
        if stage.bad:
            con.execute(Q.PUBLISH_QUARANTINE, [name, stage.glob("bad")])

        rebuilt = 0
        con.execute(Q.STAGE_REBUILD_RIDS)
        for (chunk,) in con.execute("SELECT DISTINCT chunk FROM _rebuild ORDER BY chunk").fetchall():
            con.execute(Q.CHUNK_BUILD, [chunk])
            con.execute(Q.CHUNK_BUILD_RIDS, [chunk])
            con.execute(Q.DELETE_BUILT_RUNS)
            row = self._one(Q.BUILD_RUNS)
            rebuilt += int(row[0]) if row else 0
        orphans = self._one(Q.ORPHANS_QUARANTINED)
        if orphans and orphans[0]:
            con.execute(Q.RESOLVE_ORPHANS)
        con.execute(Q.FLAG_ORPHANS)
        for table in ("_build", "_build_rids", "_rebuild_rids"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
        if self.steps or self.file_steps:
            con.execute(Q.STAGE_TOUCHED, chunking)
            self._run_steps("_touched", self.steps)
            for file_step in self.file_steps:
                file_step(self)
        return spans_added, rebuilt + given

    def _staged_steps(self, stage: _Stage) -> None:
        """The staged steps, per chunk of the file's runs (`_rebuild`), on their staged spans' narrow columns."""
        con = self.con
        con.execute(Q.STAGE_NARROW, [stage.glob("spans")])
        self._run_steps("_rebuild", self.staged_steps, lambda chunk: con.execute(Q.CHUNK_NARROW, [chunk]))
        con.execute("DROP TABLE _narrow_file")
        con.execute("DROP TABLE IF EXISTS _narrow")

    def _run_steps(self, chunks: str, steps: tuple[Step, ...], prepare: Callable[[int], Any] | None = None) -> None:
        """Each chunk of the temp table `chunks` (_rebuild or _touched) in order: its run ids into `_affected`,
        `prepare(chunk)` if given, then the steps."""
        con = self.con
        for (chunk,) in con.execute(f"SELECT DISTINCT chunk FROM {chunks} ORDER BY chunk").fetchall():  # noqa: S608 - a fixed temp table's name
            con.execute("DELETE FROM _affected")
            con.execute(f"INSERT INTO _affected SELECT run_id FROM {chunks} WHERE chunk = ?", [chunk])  # noqa: S608
            if prepare is not None:
                prepare(chunk)
            for step in steps:
                step(self)

    def chunk_bytes(self) -> int:
        """What the runs built or classified together may weigh (`_span_weights`): `BUILD_CHUNK_BYTES`, else
        a quarter of DuckDB's memory limit."""
        return BUILD_CHUNK_BYTES or self.memory_limit_bytes() // 4

    def memory_limit_bytes(self) -> int:
        """DuckDB's memory limit in bytes (it shows it as e.g. '953.6 MiB')."""
        shown = self.con.execute("SELECT value FROM duckdb_settings() WHERE name = 'memory_limit'").fetchall()[0][0]
        m = re.fullmatch(r"([\d.]+)\s*(bytes|[KMGT]i?B)", shown.strip())
        if not m:
            return 1 << 30
        unit = m.group(2)
        power = 0 if unit == "bytes" else "KMGT".index(unit[0]) + 1
        return int(float(m.group(1)) * (1024 if "i" in unit else 1000) ** power)

    def _one(self, query: str, params: list[Any] | None = None) -> tuple[Any, ...] | None:
        """First row of a statement (DuckDB wants every result consumed before the next statement)."""
        rows = self.con.execute(query, params).fetchall()
        return rows[0] if rows else None

    def _fail(self, res: FileResult, path: Path, kind: str, message: str) -> FileResult:
        res.status, res.message = "failed", message
        try:
            with path.open("rb") as f:
                raw = f.read(MAX_RAW_FILE)
        except OSError:
            raw = b""
        bad = Bad(kind, message, raw.decode("utf-8", "backslashreplace"))
        self._quarantine([bad], str(path), res)
        return res

    def _quarantine(self, bad: list[Bad], source_file: str, res: FileResult) -> None:
        if not bad:
            return
        self.con.executemany(
            Q.INSERT_QUARANTINE,
            [[source_file, b.line, b.kind, b.reason, b.raw, b.run_id, b.span_id, b.stored] for b in bad],
        )
        res.quarantined.update(b.kind for b in bad)

    # -- queries ------------------------------------------------------------------------------------
    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Any SQL over the canonical tables, values bound as parameters, as a polars DataFrame."""
        rel = self.con.sql(query, params=params)
        return rel.pl() if rel is not None else pl.DataFrame()

    def runs(
        self,
        since: dt.datetime | str | None = None,
        until: dt.datetime | str | None = None,
        status: str | None = None,
        limit: int | None = None,
        order_by: str = "started_at",
        descending: bool = True,
        **equals: Any,
    ) -> pl.DataFrame:
        """Runs, newest first. Keyword filters are equality on run columns: `lens.runs(feature="refund")`."""
        cols = {c.name for c in schema.RUN_COLUMNS}
        where, params = [], []
        for name, value in (("status", status), *equals.items()):
            if value is None:
                continue
            if name not in cols:
                raise ValueError(f"unknown run column {name!r}; columns: {', '.join(sorted(cols))}")
            where.append(f'"{name}" = ?')
            params.append(value)
        if since is not None:
            where.append("started_at >= ?::TIMESTAMPTZ")
            params.append(since)
        if until is not None:
            where.append("started_at < ?::TIMESTAMPTZ")
            params.append(until)
        if order_by not in cols:
            raise ValueError(f"unknown run column {order_by!r}")
        q = "SELECT * FROM runs"
        if where:
            q += " WHERE " + " AND ".join(where)
        q += f' ORDER BY "{order_by}" {"DESC" if descending else "ASC"} NULLS LAST, run_id'
        if limit is not None:
            q += " LIMIT ?"
            params.append(int(limit))
        return self.sql(q, params)

    def spans(self, run_id: str) -> pl.DataFrame:
        """The spans of one run in start order."""
        return self.sql(Q.SPANS_OF_RUN, [run_id])

    def quarantine(self, kind: str | None = None) -> pl.DataFrame:
        if kind is None:
            return self.sql("SELECT * FROM quarantine ORDER BY id")
        return self.sql("SELECT * FROM quarantine WHERE kind = ? ORDER BY id", [kind])

    def overview(self) -> Result:
        """What is in the database: runs, spans, time range, sources, models, features."""
        ov = self.sql(Q.OVERVIEW).row(0, named=True)
        facts = {
            "database": self.path,
            "runs": ov["runs"], "spans": ov["spans"], "runs with error status": ov["error_runs"],
            "first run": ov["first_run"], "last run": ov["last_run"],
            "input tokens": ov["input_tokens"], "output tokens": ov["output_tokens"],
            "cached input tokens": ov["cached_input_tokens"],
            f"cost (USD, {ov['runs_with_cost']:,} of {ov['runs']:,} runs have one)":
                ov["cost_usd"],
            "quarantined records": ov["quarantined"],
        }
        tables = {
            "runs by source": self.sql(Q.BY_SOURCE),
            "LLM spans by model": self.sql(Q.BY_MODEL),
            "runs by feature": self.sql(Q.BY_FEATURE),
        }
        q = self.sql(Q.QUARANTINE_BY_KIND)
        if q.height:
            tables["quarantine by kind"] = q
        return Result("agentlens: what is in the database", facts, tables)


class _Progress:
    """A rich progress bar over the bytes of all files (shown only when asked or large)."""

    def __init__(self, total: int, show: bool):
        self.bar = None
        if show:
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
                TimeRemainingColumn(), TextColumn("{task.description}"), transient=False,
            )
            self.task = self.bar.add_task("", total=total)
            self.bar.start()
        self._base = 0
        self._file_done = 0

    def advance_fn(self, path: Path) -> ProgressFn:
        size = path.stat().st_size
        if self.bar is not None:
            self.bar.update(self.task, description=path.name)

        def advance(nbytes: int) -> None:  # bytes of decompressed input: scale to the file's size
            if self.bar is not None:
                self.bar.update(self.task, completed=self._base + min(nbytes, size))

        self._file_done = size
        return advance

    def done(self, path: Path) -> None:
        self._base += self._file_done
        if self.bar is not None:
            self.bar.update(self.task, completed=self._base)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
