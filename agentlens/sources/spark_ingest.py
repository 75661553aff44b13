"""Distributed ingest on Apache Spark: trace files read across a cluster, each run built by agentlens's own
pipeline inside a task, the result written as a Parquet lake (agentlens.scale.lake).

    agentlens spark ingest traces/ --lake lake/ --master spark://host:7077
    spark-submit --master spark://host:7077 .../agentlens/sources/spark_submit.py --lake lake/ traces/

Two stages:

1. **Read** (one task per part of a file): the driver cuts each file into parts (JSON Lines at line starts, every
   `--part-mb` MB; a file of another kind, or gzip, is one part) while it hashes it, and each task reads its part
   with the file's adapter (the same `adapter.read` as `agentlens ingest`, quarantine records numbered by their
   line in the whole file). Each batch's rows are split by **run**: every canonical row (a span, a run given whole)
   carries its `run_id`, whatever the format (OTLP and Langfuse trace ids, LangSmith's, agent_runs row ids), so
   no format needs a key of its own. Quarantine records of no run (a line that is not JSON) go by their file and
   text. The rows go out as Arrow IPC, with a bucket: a hash of the run id.
2. **Build** (one task per group of buckets, after Spark's shuffle): all rows of a run meet in one task, even when
   its spans were in several files or parts. The task opens a DuckDB agentlens store of its own (a temporary
   file) and ingests what it received file by file, in the files' order, through the ordinary path
   (`ingest.ingest_batches`: deduplication, versions, run building, pricing, failure classifiers, quarantine
   flags): what a local ingest of the same files does for those runs. It then writes its runs, spans,
   failures and quarantine into the lake's staging folder, with the lake's own writer (scale/lake.py).

The driver writes `ingested_files` and `file_reads` for the files it read, moves the staged files into the lake
and writes its manifest last (all or nothing, as an export does).

Needs: agentlens installed on every worker (the tasks run its Python), the trace files and the lake's folder at
the same paths on the driver and the workers (one machine, or a shared file system), relative paths resolved
from the driver's working directory.

The fleet checks (`fleet_incidents`) compare runs across the whole fleet, which no build task sees: the driver
runs them once the tasks are done, in DuckDB over the runs and spans they staged (reading the few columns the
checks need), as `agentlens classify` does over a database.

Not done here (see docs/scale-out.md): rollups; adding to an existing lake (`--replace` rewrites it whole).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from .. import adapters, schema
from ..adapters.base import Bad, Batch
from ..adapters.records import BOM
from ..core.config import Config
from ..failures import fleet
from ..failures.policy import load_policy
from ..ingest import IngestError, Pipeline, files, read
from ..ingest import ingest_batches as _ingest_batches
from ..ingest.read import NotATrace
from ..scale import lake as L
from ..store import Store

PART_BYTES = 64 << 20  # a task reads a JSON Lines file's bytes in parts of about this size
MAX_FIRST_LINE = 256 << 20  # a first line longer than this: the file is read whole
BUCKETS_PER_TASK = 16  # buckets per build task: Spark hashes buckets to tasks, more of them even it out
BAD_COLUMNS = ("kind", "reason", "raw", "line", "run_id", "span_id", "stored")
READ_SCHEMA = "bucket int, file int, part int, seq int, kind string, payload binary"
BUILD_SCHEMA = "dir string, counts string"


class SparkIngestError(RuntimeError):
    """The distributed ingest cannot run as asked (the message says why)."""


@dataclass(frozen=True)
class Part:
    """Bytes [start, end) of a file, `lines_before` lines in, read by one task."""

    file: int  # the file's place in the ingest's order
    part: int  # the part's place in the file
    given: str  # the path as given (source_file), resolved from the driver's working directory
    format: str
    start: int
    end: int
    lines_before: int
    whole: bool  # read whole through the adapter's own opening (gzip, a CSV, one JSON document)


@dataclass
class InputFile:
    given: str
    path: Path
    format: str = ""
    digest: str = ""
    size: int = 0
    mtime: float = 0.0
    lines: int = 0
    ends_line: bool = True
    gzip: bool = False
    source: str | None = None  # a named source's name (`[sources.files]` of the config)
    status: str = "read"  # read | skipped_duplicate | skipped_unknown | failed
    message: str = ""
    quarantined: int = 0


@dataclass
class SparkIngested:
    """What a distributed ingest did."""

    lake: str
    files: list[InputFile] = field(default_factory=list)
    parts: int = 0
    tasks: int = 0
    tables: dict[str, int] = field(default_factory=dict)  # rows written, per table
    files_written: int = 0
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        read_ = [f for f in self.files if f.status == "read"]
        out = [f"distributed ingest into {self.lake}: {len(read_):,} file(s) in {self.parts:,} part(s), built in "
               f"{self.tasks:,} task(s), in {self.seconds:.1f} s"]
        for f in self.files:
            if f.status != "read":
                out.append(f"  {f.given}: {f.status.replace('_', ' ')}" + (f": {f.message}" if f.message else ""))
        out.append("  " + ", ".join(f"{t} {n:,}" for t, n in self.tables.items() if n) +
                   f" ({self.files_written:,} Parquet files)")
        return out


# --- the driver: which files, cut into parts ------------------------------------------------------------------------
def _first_line_is_json(path: Path) -> bool:
    """Whether a file is JSON Lines (its first line a JSON document of its own, as a pretty-printed document's
    is not), so that it can be read from any line's start."""
    with path.open("rb") as f:
        line = f.readline(MAX_FIRST_LINE).removeprefix(BOM).strip()
    if not line.startswith(b"{"):
        return False
    try:
        msgspec.json.decode(line)
        return True
    except msgspec.DecodeError:
        return False


def scan(f: InputFile, part_bytes: int) -> list[tuple[int, int, int]]:
    """One pass over a file: its SHA-256 and lines, and where to cut it: (start, end, lines_before) at line starts
    every ~part_bytes."""
    h = hashlib.sha256()
    cuts: list[tuple[int, int]] = [(0, 0)]  # (offset, lines before)
    done = lines = 0
    last = 0
    target = part_bytes
    with f.path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            if done + len(chunk) >= target:  # the first line start at or after the target
                i = chunk.find(b"\n", max(0, target - done - 1))
                if i >= 0 and done + i + 1 < f.size:
                    cuts.append((done + i + 1, lines + chunk.count(b"\n", 0, i + 1)))
                    target = done + i + 1 + part_bytes
            lines += chunk.count(b"\n")
            last = chunk[-1]
            done += len(chunk)
    f.digest, f.lines, f.ends_line, f.size = h.hexdigest(), lines, last == ord("\n"), done
    ends = [c[0] for c in cuts[1:]] + [done]
    return [(s, e, n) for (s, n), e in zip(cuts, ends, strict=True)]


def plan(paths: Iterable[str | Path], format: str | None = None, part_bytes: int = PART_BYTES,
         config: Config | None = None) -> tuple[list[InputFile], list[Part], list[tuple[str, Bad]]]:
    """The files under `paths` (as `agentlens ingest` finds them), the parts their reading is cut into, and the
    quarantine records of files that cannot be read at all."""
    forced = adapters.by_name(format) if format else None
    named = files.source_names(config or Config())
    out: list[InputFile] = []
    parts: list[Part] = []
    bad: list[tuple[str, Bad]] = []
    seen: dict[str, str] = {}
    for path, explicit in list(read.iter_files(paths)):  # IngestError for a missing path, before any is read
        f = InputFile(str(path), path.resolve(), source=files.source_of(path, named))
        out.append(f)
        try:
            st = path.stat()
            f.size, f.mtime = st.st_size, st.st_mtime
            head = read.head(path)
            adapter = read.adapter_for(path, head, explicit, forced)
        except (OSError, EOFError) as e:
            f.status, f.message = "failed", f"{path}: cannot read: {e}"
        except NotATrace as e:
            f.status, f.message = "failed", str(e)
        else:
            if adapter is None:
                f.status = "skipped_unknown"
                continue
            f.format = adapter.NAME
        if f.status == "failed":
            bad.append((f.given, Bad("unreadable_file", f.message, read.raw_excerpt(path))))
            f.quarantined = 1
            continue
        with f.path.open("rb") as fh:
            f.gzip = fh.read(2) == b"\x1f\x8b"
        lines = not f.gzip and f.format in files.LINE_FORMATS and _first_line_is_json(f.path)
        cuts = scan(f, part_bytes if lines else 1 << 62)
        key = f.digest if not f.source else f"{f.digest}@{f.source}"  # as ingested_files keys it
        if key in seen:
            f.status, f.message = "skipped_duplicate", f"same bytes as {seen[key]}"
            continue
        seen[key] = f.given
        index = len(seen) - 1
        for i, (start, end, before) in enumerate(cuts):
            parts.append(Part(index, i, f.given, f.format, start, end, before, whole=not lines))
    return out, parts, bad


# --- stage 1: read a part, rows out by run ----------------------------------------------------------------------------
def _ipc(t: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, t.schema) as w:
        w.write_table(t)
    return bytes(sink.getvalue().to_pybytes())


def _table(b: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(b)).read_all()


def _bucket(key: str, buckets: int) -> int:
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % buckets


def _open_part(p: Part) -> Any:
    path = Path(p.given)
    if p.whole:
        return read.open_input(path)
    return files.open_range(path, p.start, p.end)


def read_part(p: Part, config: Config, buckets: int) -> Iterator[tuple[int, int, int, int, str, bytes]]:
    """The rows of a part of a file, as (bucket, file, part, seq, kind, Arrow IPC)."""
    adapter = adapters.by_name(p.format)
    seq = 0
    with _open_part(p) as stream:
        batches = read.batches(adapter, stream, Path(p.given), config)
        for b in files.renumbered(batches, p.lines_before) if not p.whole else batches:
            for kind, t in (("spans", b.spans), ("runs", b.runs)):
                if t is None or not t.num_rows:
                    continue
                keys = pa.array([_bucket(r, buckets) for r in t.column("run_id").to_pylist()], pa.int32())
                for k in sorted(set(keys.to_pylist())):
                    sub = t.filter(pc.equal(keys, k))
                    yield k, p.file, p.part, seq, kind, _ipc(sub)
                    seq += 1
            by: dict[int, list[Bad]] = {}
            for x in b.bad:
                key = x.run_id if x.run_id is not None else f"{p.given}\0{x.raw}"
                by.setdefault(_bucket(key, buckets), []).append(x)
            for k, xs in sorted(by.items()):
                t = pa.Table.from_pylist([{c: getattr(x, c) for c in BAD_COLUMNS} for x in xs],
                                         schema=pa.schema([("kind", pa.string()), ("reason", pa.string()),
                                                           ("raw", pa.string()), ("line", pa.int64()),
                                                           ("run_id", pa.string()), ("span_id", pa.string()),
                                                           ("stored", pa.bool_())]))
                yield k, p.file, p.part, seq, "bad", _ipc(t)
                seq += 1


def _read_task(parts: list[Part], config: Config, buckets: int, cwd: str) -> Any:
    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        _chdir(cwd)
        for rb in batches:
            for i in rb.column(0).to_pylist():
                rows = list(read_part(parts[i], config, buckets))
                if rows:
                    cols = list(zip(*rows, strict=True))
                    yield pa.RecordBatch.from_arrays(
                        [pa.array(cols[0], pa.int32()), pa.array(cols[1], pa.int32()), pa.array(cols[2], pa.int32()),
                         pa.array(cols[3], pa.int32()), pa.array(cols[4], pa.string()),
                         pa.array(cols[5], pa.binary())], names=["bucket", "file", "part", "seq", "kind", "payload"])
    return task


def _chdir(cwd: str) -> None:
    """Relative paths (as given on the command line, recorded in `source_file`) mean what they meant on the
    driver."""
    if os.getcwd() != cwd and os.path.isdir(cwd):
        os.chdir(cwd)


# --- stage 2: build the runs of a group of buckets ---------------------------------------------------------------------
def build(rows: Iterable[pa.RecordBatch], names: list[tuple[str, str, str | None]], config: Config, staging: Path,
          pipeline: Pipeline) -> dict[str, Any] | None:
    """The rows a build task received, ingested file by file into a DuckDB store of its own, then written to a
    staging folder of the lake. Returns {dir, counts} (None when it received nothing)."""
    with tempfile.TemporaryDirectory(prefix="agentlens-spark-build-") as tmp:
        spool = Path(tmp) / "rows"
        index: dict[int, list[tuple[int, int, str, int, int]]] = {}  # file -> (part, seq, kind, offset, size)
        with spool.open("wb") as out:
            for rb in rows:
                cols = rb.to_pydict()
                for f, part, seq, kind, payload in zip(cols["file"], cols["part"], cols["seq"], cols["kind"],
                                                       cols["payload"], strict=True):
                    index.setdefault(f, []).append((part, seq, kind, out.tell(), len(payload)))
                    out.write(payload)
        if not index:
            return None
        store = Store(Path(tmp) / "build.duckdb", config)
        counts: dict[str, int] = {}
        try:
            with spool.open("rb") as src:
                def batches(entries: list[tuple[int, int, str, int, int]]) -> Iterator[Batch]:
                    for _, _, kind, offset, size in sorted(entries):
                        src.seek(offset)
                        t = _table(src.read(size))
                        if kind == "spans":
                            yield Batch(spans=t)
                        elif kind == "runs":
                            yield Batch(runs=t)
                        else:
                            yield Batch(bad=[Bad(**r) for r in t.to_pylist()])

                for f in sorted(index):
                    given, fmt, source = names[f]
                    res = _ingest_batches(store, given, fmt, batches(index[f]), pipeline, source=source)
                    if res.status == "failed":
                        raise SparkIngestError(f"{given}: {res.message}")
                    counts[given] = sum(res.quarantined.values())
            out_dir = staging / f"t-{uuid.uuid4().hex[:12]}"
            write_tables(store.con, out_dir, ("runs", "spans", "failures", "quarantine"))
        finally:
            store.close()
    return {"dir": str(out_dir), "counts": counts}


def write_tables(con: duckdb.DuckDBPyConnection, out_dir: Path, tables: Iterable[str]) -> None:
    """Tables of a store into a staging folder of the lake, with the lake's writer."""
    out_dir.mkdir(parents=True)
    tables = list(tables)
    if any(t in L.PER_RUN for t in tables):
        con.execute(f"CREATE OR REPLACE TEMP TABLE _lake_days AS SELECT run_id, {L.DAY} AS day FROM runs")  # noqa: S608 - fixed SQL
    for t in tables:
        if t in L.PER_RUN:
            L.stage_per_run(con, t, out_dir)
        elif con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]:  # noqa: S608 - a contract table
            L.stage_whole(con, t, out_dir)


def _build_task(names: list[tuple[str, str, str | None]], config: Config, staging: str, cwd: str) -> Any:
    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        _chdir(cwd)
        # the per-run pipeline of an ingest; the fleet checks compare runs across the fleet: a task has its share
        pipeline = dataclasses.replace(Pipeline.default(), file=())
        done = build(batches, names, config, Path(staging), pipeline)
        if done is not None:
            yield pa.RecordBatch.from_pydict({"dir": [done["dir"]], "counts": [json.dumps(done["counts"])]})
    return task


# --- the job ------------------------------------------------------------------------------------------------------------
def ingest(spark: Any, paths: Iterable[str | Path], lake: str | Path, config: Config | None = None,
           format: str | None = None, tasks: int | None = None, part_bytes: int = PART_BYTES,
           replace: bool = False) -> SparkIngested:
    """The trace files under `paths`, ingested on the cluster of `spark` (a SparkSession) into a new lake at `lake`
    (see the module's docstring). `tasks`: build tasks (default: twice the cluster's cores). `replace`: replace
    a lake already there."""
    t0 = time.perf_counter()
    config = config or Config()
    lake = Path(lake).resolve()
    with L.locked(lake):
        old = L.read_manifest(lake)
        if old is not None and not replace:
            raise SparkIngestError(f"{lake} holds a lake already: --replace rewrites it from these files "
                                   "(a distributed ingest does not add to a lake)")
        L.check_folder(lake, old)
        L.clean(lake, old)
        res = SparkIngested(str(lake))
        try:
            res.files, parts, failed = plan(paths, format, part_bytes, config)
        except IngestError as e:
            raise SparkIngestError(str(e)) from None
        res.stages["plan"] = time.perf_counter() - t0
        names = [(f.given, f.format, f.source) for f in res.files if f.status == "read"]
        res.parts = len(parts)
        n_tasks = tasks or max(2, 2 * int(spark.sparkContext.defaultParallelism))
        buckets = n_tasks * BUCKETS_PER_TASK
        root = L.staging_dir(lake)
        try:
            dirs: list[Path] = []
            if parts:
                t1 = time.perf_counter()
                cwd = os.getcwd()
                rows = spark.range(0, len(parts), 1, len(parts)).mapInArrow(
                    _read_task(parts, config, buckets, cwd), READ_SCHEMA)
                built = rows.repartition(n_tasks, "bucket").mapInArrow(
                    _build_task(names, config, str(root), cwd), BUILD_SCHEMA).collect()
                res.stages["read_and_build"] = time.perf_counter() - t1
                res.tasks = len(built)
                by_file = {f.given: f for f in res.files}
                for r in built:
                    dirs.append(Path(r["dir"]))
                    for given, n in json.loads(r["counts"]).items():
                        by_file[given].quarantined += n
            t2 = time.perf_counter()
            driver = root / "driver"
            built_files = {t: [str(d / f.path) for d in dirs for f in L.staged_files(d).get(t, [])]
                           for t in ("runs", "spans")}
            _driver_tables(res.files, failed, driver, built_files, config)
            found: dict[str, list[L.LakeFile]] = {}
            for d in [driver, *dirs]:
                for t, fs in L.staged_files(d).items():
                    found.setdefault(t, []).extend(fs)
            listed = L.placeholders(found, driver)
            m = L.Manifest(files=listed, watermark={"runs": sum(f.rows for f in listed.get("runs", []))},
                           written_by="agentlens spark ingest", written_at=dt.datetime.now(dt.UTC).isoformat(),
                           exports=1)
            L.publish(lake, [driver, *dirs], m, old)
            res.stages["publish"] = time.perf_counter() - t2
            res.tables = {t: sum(f.rows for f in fs) for t, fs in listed.items()}
            res.files_written = sum(len(fs) for fs in listed.values())
        finally:
            shutil.rmtree(root, ignore_errors=True)
    res.seconds = time.perf_counter() - t0
    return res


def _driver_tables(inputs: list[InputFile], failed: list[tuple[str, Bad]], out_dir: Path,
                   built: dict[str, list[str]], config: Config) -> None:
    """`ingested_files` and `file_reads` of the files read, the quarantine records of files that could not
    be read at all, and the fleet incidents (`built`: the runs and spans files the build tasks staged), written
    to the lake's staging folder."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        schema.migrate(con)
        if built["runs"]:
            # The fleet checks compare runs across the whole fleet: here, over every run the tasks built (DuckDB
            # reads the few columns they need from the staged Parquet), as `agentlens classify` does them.
            for t in ("runs", "spans"):
                if built[t]:
                    con.execute(f"DROP TABLE {t}")
                    con.read_parquet(built[t]).create_view(t)
            fleet.refresh(con, load_policy(config))
        now = dt.datetime.now(dt.UTC)
        for f in inputs:
            if f.status != "read":
                continue
            con.execute("INSERT INTO ingested_files VALUES (?, ?, ?, to_timestamp(?), ?, ?, NULL, NULL, ?, NULL)",
                        [f.digest if not f.source else f"{f.digest}@{f.source}", f.given, f.size, f.mtime, f.format,
                         now, f.quarantined])
            appendable = f.format in files.LINE_FORMATS and f.ends_line and not f.gzip
            con.execute("INSERT INTO file_reads VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [str(f.path), f.source or "", f.format, f.size, f.digest, f.lines, appendable, now])
        for given, b in failed:
            con.execute("INSERT INTO quarantine (ingested_at, source_file, line, kind, reason, raw, run_id, span_id, "
                        "stored) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [now, given, b.line, b.kind, b.reason, b.raw, b.run_id, b.span_id, b.stored])
        write_tables(con, out_dir, ("ingested_files", "file_reads", "quarantine", "fleet_incidents"))
    finally:
        con.close()


# --- spark-submit ---------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """`spark-submit [--master URL] .../agentlens/sources/spark_submit.py --lake DIR [--config FILE] [--format F]
    [--tasks N] [--replace] TRACE_FILES...`: the job, on the session spark-submit gives."""
    import argparse

    ap = argparse.ArgumentParser(prog="spark_ingest.py", description="agentlens's distributed ingest into a Parquet lake")
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--lake", required=True)
    ap.add_argument("--config")
    ap.add_argument("--format")
    ap.add_argument("--tasks", type=int)
    ap.add_argument("--replace", action="store_true")
    a = ap.parse_args(argv)
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("agentlens-ingest").getOrCreate()  # the master spark-submit was given
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    try:
        done = ingest(spark, a.paths, a.lake, Config.load(a.config), a.format, a.tasks, replace=a.replace)
    except (SparkIngestError, L.LakeError, ValueError, OSError) as e:
        sys.stderr.write(f"agentlens: {e}\n")
        return 2
    sys.stdout.write("\n".join(done.lines()) + "\n")
    return 0


