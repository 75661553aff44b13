"""The Parquet lake: the canonical tables as Parquet files in a folder, for DuckDB, Spark, ClickHouse, polars and
pandas alike (`agentlens export --lake DIR`; `agentlens spark ingest ... --lake DIR` writes the same layout).

    DIR/_agentlens_lake.json                      the manifest: what the lake is (written last, atomically)
    DIR/runs/day=YYYY-MM-DD/part-<uuid>.parquet   runs, spans, failures: by the UTC day of the RUN's start
    DIR/spans/day=.../...                         (a run's spans and failures sit in its day; `day=unknown`
    DIR/failures/day=.../...                       for a run with no start)
    DIR/quarantine/part-<uuid>.parquet            every other table of the contract, whole
    ...

Columns: exactly the contract's (agentlens.schema), in its order, typed as `ARROW_TYPES` says; the `day`
partition column is the folder's, not in the files.

Writes are all-or-nothing for a reader of the manifest: files are written into a staging folder
(`DIR/.staging-<id>/`, which no reader's glob reaches), moved to their final names (new, unique names: a
file, once in the lake, never changes), then the manifest is replaced (a temp file renamed over it), and only
then the files it no longer lists are deleted. An export killed before the rename leaves the previous
manifest, whose files are all still there; the next export deletes what the dead one left.

Incremental: each export compares, per run, a signature of its rows in the database with the same signature
of its rows in the lake (`SIGNATURES`): the run's `ingested_at` (it moves whenever the run is rebuilt from
new spans), its start (its day), its costs (`agentlens reprice` changes those in place), its spans' ids and
computed costs, and its failures' modes, spans and `classified_at` (a new classification). A partition is
rewritten whole, from the database, when a run in it changed, arrived, left (its start moved to another day:
both days are rewritten) or is gone; the others are left as they are. The other tables are rewritten when
their content changed (a hash of all their rows, kept in the manifest). An export with nothing new writes
nothing (not even the manifest).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from .. import schema

LAYOUT_VERSION = 1
MANIFEST = "_agentlens_lake.json"
LOCK = ".agentlens_lake.lock"
STAGING_PREFIX = ".staging-"
PER_RUN = ("runs", "spans", "failures")  # partitioned by the day of their run's start
UNKNOWN_DAY = "unknown"

# Contract types as Parquet/Arrow types every reader takes: no unsigned integers (Spark reads UINT64 as
# DECIMAL(20,0)); the rollups' histograms `MAP(INTEGER, UBIGINT)` are written as map<int32, int64> (counts).
ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),  # JSON text; ClickHouse would read a JSON-annotated column as its JSON type, which rejects arrays
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
    "UBIGINT": pa.int64(),
    "MAP(INTEGER, UBIGINT)": pa.map_(pa.int32(), pa.int64()),
}
# How DuckDB gets a contract column to that type before writing it.
_CASTS = {"JSON": "VARCHAR", "UBIGINT": "BIGINT", "MAP(INTEGER, UBIGINT)": "MAP(INTEGER, BIGINT)"}

# The UTC day of a run's start (a TIMESTAMPTZ AT TIME ZONE 'UTC' is the UTC wall clock, whatever the session's zone).
DAY = f"coalesce(strftime(started_at AT TIME ZONE 'UTC', '%Y-%m-%d'), '{UNKNOWN_DAY}')"


class LakeError(RuntimeError):
    """The folder cannot be used as a lake as asked (the message says why)."""


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a table's files in the lake."""
    return pa.schema([(c.name, ARROW_TYPES[c.type]) for c in schema.TABLES[table]])


def columns_sql(table: str, alias: str = "") -> str:
    """The contract columns of a DuckDB table, cast to the lake's types."""
    p = f"{alias}." if alias else ""
    return ", ".join(f'{p}"{c.name}"::{_CASTS[c.type]} AS "{c.name}"' if c.type in _CASTS else f'{p}"{c.name}"'
                     for c in schema.TABLES[table])


def contract_fingerprint() -> str:
    """The contract's columns and types, hashed: a lake of another contract is rewritten whole."""
    import hashlib

    text = ";".join(f"{t}:" + ",".join(f"{c.name} {c.type}" for c in cols) for t, cols in schema.TABLES.items())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- the manifest -----------------------------------------------------------------------------------------------
@dataclass
class LakeFile:
    path: str  # relative to the lake, with / separators
    rows: int
    bytes: int
    day: str | None = None  # the partition (per-run tables)

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "rows": self.rows, "bytes": self.bytes}
        if self.day is not None:
            d["day"] = self.day
        return d


@dataclass
class Manifest:
    files: dict[str, list[LakeFile]] = field(default_factory=dict)  # table -> files
    signatures: dict[str, str] = field(default_factory=dict)  # unpartitioned table -> content hash
    watermark: dict[str, Any] = field(default_factory=dict)
    written_by: str = ""
    written_at: str = ""
    exports: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "layout_version": LAYOUT_VERSION,
            "schema_version": schema.SCHEMA_VERSION,
            "contract": contract_fingerprint(),
            "written_by": self.written_by,
            "written_at": self.written_at,
            "exports": self.exports,
            "watermark": self.watermark,
            "tables": {t: {"partitioned_by": "day" if t in PER_RUN else None,
                           "columns": [[c.name, str(ARROW_TYPES[c.type])] for c in schema.TABLES[t]],
                           "rows": sum(f.rows for f in self.files.get(t, [])),
                           "signature": self.signatures.get(t),
                           "files": [f.as_json() for f in self.files.get(t, [])]}
                       for t in schema.TABLES},
        }

    def listed(self) -> set[str]:
        return {f.path for fs in self.files.values() for f in fs}


def read_manifest(lake: Path) -> Manifest | None:
    """The lake's manifest; None when there is none. LakeError when it is not one this agentlens reads, or
    it is of another contract (then the caller rewrites the lake whole)."""
    p = lake / MANIFEST
    if not p.exists():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LakeError(f"{p}: not a readable lake manifest: {e}") from None
    if data.get("layout_version") != LAYOUT_VERSION:
        raise LakeError(f"{p}: a lake of layout version {data.get('layout_version')!r}; this agentlens writes "
                        f"version {LAYOUT_VERSION}: export to a new folder")
    m = Manifest(watermark=data.get("watermark") or {}, written_by=data.get("written_by", ""),
                 written_at=data.get("written_at", ""), exports=int(data.get("exports") or 0))
    if data.get("contract") != contract_fingerprint():
        m.exports = -1  # another contract: every table is rewritten (see export)
        return m
    for t, info in (data.get("tables") or {}).items():
        if t not in schema.TABLES:
            continue
        m.files[t] = [LakeFile(f["path"], int(f["rows"]), int(f["bytes"]), f.get("day")) for f in info.get("files", [])]
        if info.get("signature"):
            m.signatures[t] = str(info["signature"])
    return m


def write_manifest(lake: Path, m: Manifest) -> None:
    """Atomically: a temp file, synced, renamed over the manifest."""
    tmp = lake / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(m.as_json(), f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, lake / MANIFEST)
    with contextlib.suppress(OSError):  # the rename itself, durable (POSIX)
        fd = os.open(lake, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- the folder ---------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def locked(lake: Path) -> Iterator[None]:
    """One writer at a time per lake (an advisory lock on a file in it)."""
    lake.mkdir(parents=True, exist_ok=True)
    with (lake / LOCK).open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise LakeError(f"{lake}: another agentlens process is writing this lake now") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def check_folder(lake: Path, m: Manifest | None) -> None:
    """A folder with no manifest is used only when empty, or holding what an interrupted first export left."""
    if m is not None or not lake.exists():
        return
    ours = set(schema.TABLES) | {LOCK}
    foreign = [p.name for p in lake.iterdir() if p.name not in ours and not p.name.startswith(STAGING_PREFIX)
               and not p.name.startswith(f".{MANIFEST}")]
    if foreign:
        raise LakeError(f"{lake}: not empty and not a lake (no {MANIFEST}; it holds {', '.join(sorted(foreign)[:3])}): "
                        "give a new or empty folder")


def clean(lake: Path, m: Manifest | None) -> int:
    """Delete what no manifest lists: staging folders and files an interrupted export left, files a finished
    one replaced. Returns the files deleted."""
    listed = m.listed() if m is not None else set()
    n = 0
    for p in lake.iterdir() if lake.exists() else ():
        if p.name.startswith(STAGING_PREFIX) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(f".{MANIFEST}") and p.name.endswith(".tmp"):
            p.unlink(missing_ok=True)
    for t in schema.TABLES:
        d = lake / t
        if not d.is_dir():
            continue
        for f in d.rglob("*"):
            if f.is_file() and f.relative_to(lake).as_posix() not in listed:
                f.unlink()
                n += 1
        for sub in sorted((x for x in d.rglob("*") if x.is_dir()), key=lambda x: -len(x.parts)):
            with contextlib.suppress(OSError):
                sub.rmdir()  # only when empty
        with contextlib.suppress(OSError):
            d.rmdir()
    return n


def staging_dir(lake: Path) -> Path:
    s = lake / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    s.mkdir(parents=True)
    return s


# --- writing (DuckDB -> Parquet) ------------------------------------------------------------------------------------
COPY_OPTIONS = "FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000, ROW_GROUP_SIZE_BYTES '32MB'"


def stage_per_run(con: duckdb.DuckDBPyConnection, table: str, staging: Path, days_sql: str | None = None,
                  days_params: list[Any] | None = None) -> None:
    """A per-run table's rows into `staging/<table>/day=D/part-<uuid>.parquet`, each row in the day of its
    run's start (`_lake_days`: run_id, day, a temp table of the caller), only the days of `days_sql` when
    given (a query of one `day` column)."""
    where = f"WHERE d.day IN ({days_sql})" if days_sql else ""
    sql = (f"COPY (SELECT coalesce(d.day, '{UNKNOWN_DAY}') AS day, {columns_sql(table, 'x')} "  # noqa: S608 - contract names, fixed SQL
           f"FROM {table} x LEFT JOIN _lake_days d USING (run_id) {where}) "
           f"TO ? ({COPY_OPTIONS}, PARTITION_BY (day), FILENAME_PATTERN 'part-{{uuid}}', OVERWRITE_OR_IGNORE)")
    con.execute(sql, [*(days_params or []), str(staging / table)])


def stage_whole(con: duckdb.DuckDBPyConnection, table: str, staging: Path, where: str = "",
                params: list[Any] | None = None) -> None:
    """A table's rows (all, or those of `where`) into one file `staging/<table>/part-<uuid>.parquet`."""
    (staging / table).mkdir(parents=True, exist_ok=True)
    out = staging / table / f"part-{uuid.uuid4()}.parquet"
    con.execute(f"COPY (SELECT {columns_sql(table)} FROM {table} {where}) TO ? ({COPY_OPTIONS})",  # noqa: S608 - contract names
                [*(params or []), str(out)])


def stage_empty(table: str, staging: Path, day: str | None) -> None:
    """A file of no rows (the table's schema), so that a table with no rows can still be read by a glob."""
    import pyarrow.parquet as pq

    d = staging / table / (f"day={day}" if day is not None else "")
    d.mkdir(parents=True, exist_ok=True)
    pq.write_table(arrow_schema(table).empty_table(), d / f"part-{uuid.uuid4()}.parquet", compression="zstd")


def staged_files(staging: Path) -> dict[str, list[LakeFile]]:
    """The files in a staging folder, by table (paths relative to the staging folder, which mirrors the lake)."""
    import pyarrow.parquet as pq

    out: dict[str, list[LakeFile]] = {}
    for t in schema.TABLES:
        d = staging / t
        if not d.is_dir():
            continue
        for f in sorted(d.rglob("*.parquet")):
            rel = f.relative_to(staging).as_posix()
            day = f.parent.name.split("=", 1)[1] if f.parent.name.startswith("day=") else None
            out.setdefault(t, []).append(LakeFile(rel, pq.read_metadata(f).num_rows, f.stat().st_size, day))
    return out


def publish(lake: Path, staging_dirs: list[Path], new: Manifest, old: Manifest | None) -> None:
    """Move the staged files into the lake, replace the manifest, delete what it no longer lists."""
    for s in staging_dirs:
        for f in sorted(s.rglob("*.parquet")):
            dest = lake / f.relative_to(s)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(f, dest)
    write_manifest(lake, new)
    for s in staging_dirs:
        shutil.rmtree(s, ignore_errors=True)
    clean(lake, new)


def placeholders(files: dict[str, list[LakeFile]], staging: Path) -> dict[str, list[LakeFile]]:
    """Every table readable by a glob: an empty file for a table that has none; empty files dropped from a
    table that has others."""
    out: dict[str, list[LakeFile]] = {}
    for t in schema.TABLES:
        fs = files.get(t, [])
        full = [f for f in fs if f.rows > 0]
        if full:
            out[t] = full
        elif fs:
            out[t] = fs[:1]
        else:
            stage_empty(t, staging, UNKNOWN_DAY if t in PER_RUN else None)
            out[t] = staged_files(staging).get(t, [])[:1]
    return out


# --- the export of a DuckDB database ---------------------------------------------------------------------------------
# A run's signature, per table, computed alike over the database and over the lake: what changes when the
# run is rebuilt (ingested_at, its start), repriced (its costs, its spans' computed costs and price sources),
# or classified again (its failures' classified_at).
SIG_RUNS = "hash(ingested_at, started_at, cost_usd, reported_cost_usd, computed_cost_usd, unpriced_llm_calls)"
SIG_SPANS = "count(*)::VARCHAR || ':' || sum(hash(span_id, computed_cost_usd, price_source))::VARCHAR"
SIG_FAILURES = "count(*)::VARCHAR || ':' || sum(hash(mode, span_id, classified_at, policy_hash))::VARCHAR"

DB_SIGNATURES = f"""
CREATE OR REPLACE TEMP TABLE _lake_new AS
WITH r AS (SELECT run_id, {DAY} AS day, {SIG_RUNS} AS rs FROM runs),
s AS (SELECT run_id, {SIG_SPANS} AS ss FROM spans GROUP BY run_id),
f AS (SELECT run_id, {SIG_FAILURES} AS fs FROM failures GROUP BY run_id)
SELECT run_id, coalesce(r.day, '{UNKNOWN_DAY}') AS day, r.rs, s.ss, f.fs
FROM r FULL JOIN s USING (run_id) FULL JOIN f USING (run_id)
"""  # noqa: S608 - fixed SQL
LAKE_SIGNATURES = f"""
CREATE OR REPLACE TEMP TABLE _lake_old AS
WITH r AS (SELECT run_id, day, {SIG_RUNS} AS rs FROM _lake_old_runs),
s AS (SELECT run_id, any_value(day) AS day, {SIG_SPANS} AS ss FROM _lake_old_spans GROUP BY run_id),
f AS (SELECT run_id, any_value(day) AS day, {SIG_FAILURES} AS fs FROM _lake_old_failures GROUP BY run_id)
SELECT run_id, coalesce(r.day, s.day, f.day) AS day, r.rs, s.ss, f.fs
FROM r FULL JOIN s USING (run_id) FULL JOIN f USING (run_id)
"""  # noqa: S608 - fixed SQL
OLD_COLUMNS = {
    "runs": "run_id, ingested_at, started_at, cost_usd, reported_cost_usd, computed_cost_usd, unpriced_llm_calls",
    "spans": "run_id, span_id, computed_cost_usd, price_source",
    "failures": "run_id, mode, span_id, classified_at, policy_hash",
}
# The partitions to rewrite, per table: both days of every run whose rows there changed (or moved).
AFFECTED = """
CREATE OR REPLACE TEMP TABLE _lake_affected AS
WITH c AS (
  SELECT run_id, n.day AS new_day, o.day AS old_day,
         (n.rs IS DISTINCT FROM o.rs OR n.day IS DISTINCT FROM o.day) AND (n.rs IS NOT NULL OR o.rs IS NOT NULL) AS runs,
         (n.rs IS DISTINCT FROM o.rs OR n.ss IS DISTINCT FROM o.ss OR n.day IS DISTINCT FROM o.day)
           AND (n.ss IS NOT NULL OR o.ss IS NOT NULL) AS spans,
         (n.fs IS DISTINCT FROM o.fs OR n.day IS DISTINCT FROM o.day) AND (n.fs IS NOT NULL OR o.fs IS NOT NULL) AS failures
  FROM _lake_new n FULL JOIN _lake_old o USING (run_id)
),
ch AS (
  SELECT 'runs' AS tbl, run_id, new_day, old_day FROM c WHERE runs
  UNION ALL SELECT 'spans', run_id, new_day, old_day FROM c WHERE spans
  UNION ALL SELECT 'failures', run_id, new_day, old_day FROM c WHERE failures
),
n AS (SELECT tbl, count(DISTINCT run_id) AS runs FROM ch GROUP BY tbl)
SELECT DISTINCT ch.tbl, d.day, n.runs
FROM ch JOIN n USING (tbl), LATERAL (SELECT unnest([ch.new_day, ch.old_day]) AS day) d
WHERE d.day IS NOT NULL
"""


@dataclass
class TableWrite:
    table: str
    files: int = 0
    rows: int = 0
    bytes: int = 0
    partitions: int = 0  # rewritten (per-run tables)
    removed: int = 0  # partitions that became empty
    runs: int = 0  # runs whose rows changed


@dataclass
class Exported:
    """What an export wrote."""

    lake: str
    tables: dict[str, TableWrite] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    seconds: float = 0.0
    first: bool = False

    @property
    def files(self) -> int:
        return sum(t.files for t in self.tables.values())

    def lines(self) -> list[str]:
        if not self.tables:
            return [f"lake {self.lake}: up to date, nothing written ({self.seconds:.1f} s)"]
        out = []
        for w in self.tables.values():
            what = (f"{w.partitions:,} day partition(s) rewritten" + (f", {w.removed:,} emptied" if w.removed else "")
                    + f" ({w.runs:,} runs changed)") if w.table in PER_RUN else "rewritten"
            out.append(f"  {w.table}: {what}: {w.files:,} file(s), {w.rows:,} rows, {w.bytes / 1e6:,.1f} MB")
        kind = "written" if self.first else "updated"
        return [f"lake {self.lake} {kind} in {self.seconds:.1f} s:", *out,
                *([f"  unchanged: {', '.join(self.unchanged)}"] if self.unchanged else [])]


OnStep = Callable[[str], None]


# the temp table of each per-run table's rows in the lake (narrow columns and the day)
OLD_TABLES = {"runs": "CREATE OR REPLACE TEMP TABLE _lake_old_runs AS ",
              "spans": "CREATE OR REPLACE TEMP TABLE _lake_old_spans AS ",
              "failures": "CREATE OR REPLACE TEMP TABLE _lake_old_failures AS "}


def _old_tables(con: duckdb.DuckDBPyConnection, lake: Path, old: Manifest | None) -> None:
    """The narrow columns of the lake's per-run tables, with each row's day, as temp tables (OLD_TABLES)."""
    for t in PER_RUN:
        files = [str(lake / f.path) for f in (old.files.get(t, []) if old else [])]
        if files:
            con.execute(OLD_TABLES[t] + f"SELECT {OLD_COLUMNS[t]}, day "  # noqa: S608 - fixed names
                        "FROM read_parquet(?, hive_partitioning = true, hive_types_autocast = false)", [files])
        else:
            cols = ", ".join(f'"{c.name}"' for c in schema.TABLES[t] if c.name in OLD_COLUMNS[t].split(", "))
            con.execute(OLD_TABLES[t] + f"SELECT {cols}, NULL::VARCHAR AS day "  # noqa: S608
                        f"FROM {t} WHERE false")


def table_signature(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """A hash of a whole table's rows (order-insensitive)."""
    cols = ", ".join(f'"{c.name}"' for c in schema.TABLES[table])
    n, h = con.execute(f"SELECT count(*), sum(hash({cols}))::VARCHAR FROM {table}").fetchall()[0]  # noqa: S608 - contract names
    return f"{n}:{h}"


def watermark(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """How far the database's rows went when exported (for readers: what the lake holds)."""
    def iso(v: object) -> str | None:
        return v.astimezone(dt.UTC).isoformat() if isinstance(v, dt.datetime) else None

    r = con.execute("SELECT max(ingested_at), count(*) FROM runs").fetchall()[0]
    f = con.execute("SELECT max(classified_at) FROM failures").fetchall()[0]
    q = con.execute("SELECT max(id), max(ingested_at) FROM quarantine").fetchall()[0]
    return {"runs_ingested_at": iso(r[0]), "runs": int(r[1]), "failures_classified_at": iso(f[0]),
            "quarantine_id": q[0], "quarantine_ingested_at": iso(q[1])}


def export(con: duckdb.DuckDBPyConnection, lake: Path | str, on_step: OnStep | None = None,
           written_by: str = "agentlens export") -> Exported:
    """The database's contract tables into the lake at `lake` (created if missing), incrementally (see the
    module's docstring). `on_step(what)` is called before each long statement (a progress bar follows it)."""
    t0 = time.perf_counter()
    lake = Path(lake)
    step = on_step or (lambda what: None)
    with locked(lake):
        old = read_manifest(lake)
        check_folder(lake, old)
        if old is not None and old.exports < 0:  # another contract: rewritten whole
            old = Manifest()
        clean(lake, old)
        res = Exported(str(lake), first=old is None or not old.files)
        have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'"
                                          ).fetchall()}
        missing = [t for t in schema.TABLES if t not in have]
        if missing:
            raise LakeError(f"the database lacks the tables {', '.join(missing)}: open it with agentlens first "
                            "(it migrates it)")
        step("comparing runs")
        con.execute(DB_SIGNATURES)
        _old_tables(con, lake, old)
        con.execute(LAKE_SIGNATURES)
        con.execute(AFFECTED)
        con.execute("CREATE OR REPLACE TEMP TABLE _lake_days AS SELECT run_id, day FROM _lake_new")
        staging = staging_dir(lake)
        try:
            new_files: dict[str, list[LakeFile]] = {t: list(fs) for t, fs in (old.files if old else {}).items()}
            for t in PER_RUN:
                days = {r[0]: r[1] for r in con.execute(
                    "SELECT day, runs FROM _lake_affected WHERE tbl = ?", [t]).fetchall()}
                if not days:
                    continue
                step(f"{t} ({len(days):,} day partitions)")
                stage_per_run(con, t, staging, "SELECT day FROM _lake_affected WHERE tbl = ?", [t])
                written = staged_files(staging).get(t, [])
                kept = [f for f in new_files.get(t, []) if f.day not in days]
                new_files[t] = kept + written
                w = TableWrite(t, len(written), sum(f.rows for f in written), sum(f.bytes for f in written),
                               len({f.day for f in written}), len(set(days) - {f.day for f in written}),
                               next(iter(days.values())))
                res.tables[t] = w
            signatures = dict(old.signatures) if old else {}
            for t in schema.TABLES:
                if t in PER_RUN:
                    continue
                sig = table_signature(con, t)
                if old is not None and old.signatures.get(t) == sig and old.files.get(t):
                    res.unchanged.append(t)
                    continue
                step(t)
                stage_whole(con, t, staging)
                written = staged_files(staging).get(t, [])
                new_files[t] = written
                signatures[t] = sig
                res.tables[t] = TableWrite(t, len(written), sum(f.rows for f in written),
                                           sum(f.bytes for f in written))
            res.unchanged = [t for t in PER_RUN if t not in res.tables] + res.unchanged
            if not res.tables and old is not None:
                shutil.rmtree(staging, ignore_errors=True)
                res.seconds = time.perf_counter() - t0
                return res
            files = placeholders(new_files, staging)
            m = Manifest(files=files, signatures=signatures, watermark=watermark(con), written_by=written_by,
                         written_at=dt.datetime.now(dt.UTC).isoformat(), exports=(old.exports if old else 0) + 1)
            step("publishing")
            publish(lake, [staging], m, old)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            for tmp in ("_lake_new", "_lake_old", "_lake_affected", "_lake_days", *(f"_lake_old_{t}" for t in PER_RUN)):
                con.execute(f"DROP TABLE IF EXISTS {tmp}")
    res.seconds = time.perf_counter() - t0
    return res
