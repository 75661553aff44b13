"""The agentlens benchmark: ingest throughput and memory against baselines, incremental cost, query latency.

    python bench/run.py [--sizes 10k,100k] [--repeat 3] [--out bench/out]
    python bench/run.py --smoke          # 1k runs once, well under a minute (CI: checks the harness works)

For each size (runs; ~10 spans per run), in this order:
1. generate the files if missing (bench/gen.py, into bench/data/);
2. agentlens: `agentlens.open(db).ingest(file)` of the OTLP file, a fresh process and a fresh database per
   repetition: wall time (open + ingest + close, inside the process), MB/s, spans/s, peak RSS of the
   process and its ingest workers (the larger of `ru_maxrss` from `os.wait4` on that child, and of the
   sum over the process tree sampled every 0.1 s), database size;
3. baseline 1, same file, same measurements: DuckDB's own `read_json` with an explicit `columns=` schema
   and UNNEST of resourceSpans -> scopeSpans -> spans into a persisted table (the naive ingest); then the
   floors, each alone: storing what agentlens stored (copied from its database into a fresh one), and decoding
   the file's JSON in Python: what the machine allows at best (`floors`);
4. baseline 2: pandas `json_normalize` of the spans + a groupby per trace (latency percentiles and token
   totals), what one writes by hand in a notebook; skipped above a file size where it would not fit in memory
   (and when pandas is not installed: `pip install pandas`);
5. incremental: into a copy of an ingested database, ingest a file with 1% more runs; its time as a fraction
   of the full ingest (ideal: about 1%);
6. the agent_runs CSV of the same number of rows, one ingest (rows/s);
7. queries on the ingested database, in a fresh read-only process, each through the library function the
   notebooks, CLI and widgets call (`QUERY_LABELS`): the runs page and the run explorer's first page, a
   trace's spans and waterfall layout, golden signals by feature and per day, cost by feature and by
   customer, the failure report; first call and median of several;
8. optionally (`--replicate-to 1m`, on by default for full runs) the same queries on a copy of the largest
   database replicated in SQL to 1M runs / ~10M spans: the query targets are stated at 1M runs; then the
   largest size's 1% file ingested into copies of it (does a small ingest's time grow with the database?).

Writes bench/RESULTS.md (a smoke run writes bench/out/RESULTS-smoke.md instead) and the raw numbers as
JSON in bench/out/. Needs only the project's dependencies, plus pandas for baseline 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import gen  # noqa: E402 - bench/gen.py, beside this file

MB = 1e6

# --- baseline 1: DuckDB read_json + UNNEST (the naive ingest) -------------------------------------------

ANY_VALUE = ("STRUCT(stringValue VARCHAR, intValue VARCHAR, doubleValue DOUBLE, boolValue BOOLEAN, "
             "bytesValue VARCHAR, arrayValue JSON, kvlistValue JSON)")
KEY_VALUES = f"STRUCT(key VARCHAR, value {ANY_VALUE})[]"
OTLP_COLUMNS = {
    "resourceSpans": (
        f"STRUCT(resource STRUCT(attributes {KEY_VALUES}), scopeSpans STRUCT("
        "scope STRUCT(name VARCHAR, version VARCHAR), "
        "spans STRUCT(traceId VARCHAR, spanId VARCHAR, parentSpanId VARCHAR, name VARCHAR, kind INTEGER, "
        "startTimeUnixNano VARCHAR, endTimeUnixNano VARCHAR, "
        f"attributes {KEY_VALUES}, "
        f"events STRUCT(timeUnixNano VARCHAR, name VARCHAR, attributes {KEY_VALUES})[], "
        "status STRUCT(code INTEGER, message VARCHAR))[]"
        ")[])[]"
    ),
}
BASELINE_SQL = """
CREATE TABLE spans AS
WITH docs AS (
  SELECT unnest(resourceSpans) AS rs
  FROM read_json(?, format = 'newline_delimited', columns = ?, maximum_object_size = 268435456)
),
scopes AS (SELECT rs.resource.attributes AS resource_attributes, unnest(rs.scopeSpans) AS ss FROM docs),
sp AS (SELECT resource_attributes, ss.scope.name AS scope_name, unnest(ss.spans) AS s FROM scopes)
SELECT s.traceId AS trace_id, s.spanId AS span_id, nullif(s.parentSpanId, '') AS parent_span_id,
       s.name AS name, s.kind AS kind,
       make_timestamp(CAST(s.startTimeUnixNano AS BIGINT) // 1000) AS started_at,
       make_timestamp(CAST(s.endTimeUnixNano AS BIGINT) // 1000) AS ended_at,
       coalesce(s.status.code, 0) AS status_code, s.status.message AS status_message,
       s.attributes AS attributes, s.events AS events,
       resource_attributes, scope_name
FROM sp
"""

# --- queries -----------------------------------------------------------------------------------------

SAMPLE_RUN_IDS_SQL = "SELECT run_id FROM runs USING SAMPLE reservoir(10 ROWS) REPEATABLE (42) ORDER BY run_id"

# Replicating a database (queries at 1M runs without a 1M-run ingest): copies get new ids and shifted times.
# Each copy is read from the original file attached read-only as `src` (reading and writing the same table
# would make DuckDB materialise the whole source first), one INSERT per copy, with a memory limit.
_SHIFTED = ("t.started_at + to_days(CAST($copy * 30 AS INTEGER)) AS started_at, "
            "t.ended_at + to_days(CAST($copy * 30 AS INTEGER)) AS ended_at, ")
REPLICATE_SQL = {  # one INSERT per table, the same shifts (fixed table names, values bound)
    table: f"""
INSERT INTO {table}
SELECT t.* REPLACE ({shift}t.run_id || '-r' || CAST($copy AS VARCHAR) AS run_id)
FROM src.{table} t
"""  # noqa: S608 - the table name is one of the literals below, never a value
    for table, shift in (("runs", _SHIFTED), ("spans", _SHIFTED), ("failures", ""))
    # failures: the copies' detections (the failure report, the run explorer's failure modes); fleet incidents
    # are not copied (their windows would need recomputing, and no measured query reads them but the report's
    # short list)
}


# === child side: one measured task per process =========================================================

def _self_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _code_hash(pkg_dir: Path) -> str:
    """Hash of the package's sources: tells whether the code changed between measurements."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(pkg_dir.rglob("*.py")):
        h.update(p.relative_to(pkg_dir).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:12]


def _import_agentlens() -> Any:
    """agentlens with the modules `open` and ingest use imported (the package imports them lazily):
    import time stays out of the timings, as the interpreter's start-up does."""
    import agentlens
    import agentlens.api
    import agentlens.ingest.steps  # the pricing and classification steps

    return agentlens


def child_agentlens(db: str, file: str) -> dict[str, Any]:
    agentlens = _import_agentlens()
    code = _code_hash(Path(agentlens.__file__).parent)
    idle = _self_rss_mb()
    t0 = time.perf_counter()
    lens = agentlens.open(db)
    s = lens.ingest(file, progress=False)
    lens.close()
    wall = time.perf_counter() - t0
    f = s.files[0]
    if f.status != "ingested":
        raise SystemExit(f"agentlens did not ingest {file}: {f.status} {f.message}")
    return {"wall_s": wall, "ingest_s": s.seconds, "spans": s.spans, "runs": s.runs,
            "quarantined": sum(s.quarantined.values()), "idle_rss_mb": idle, "code_hash": code}


def child_baseline(db: str, file: str) -> dict[str, Any]:
    import duckdb

    idle = _self_rss_mb()
    t0 = time.perf_counter()
    con = duckdb.connect(db)
    con.execute(BASELINE_SQL, [file, OTLP_COLUMNS])
    spans = con.execute("SELECT count(*) FROM spans").fetchall()[0][0]
    con.close()
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "spans": spans, "idle_rss_mb": idle}


def child_pandas(file: str) -> dict[str, Any]:
    """What one writes in a notebook: json.loads every line, flatten spans, json_normalize, groupby."""
    import pandas as pd

    idle = _self_rss_mb()
    t0 = time.perf_counter()
    spans = []
    with open(file, encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            for rs in doc["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    for s in ss["spans"]:
                        s["attributes"] = {a["key"]: next(iter(a["value"].values()), None)
                                           for a in s.get("attributes", [])}
                        spans.append(s)
    df = pd.json_normalize(spans)
    del spans

    def num(col: str) -> pd.Series:
        if col not in df:
            return pd.Series(float("nan"), index=df.index)
        return pd.to_numeric(df[col], errors="coerce")

    df["start"] = pd.to_datetime(df["startTimeUnixNano"].astype("int64"), unit="ns")
    df["end"] = pd.to_datetime(df["endTimeUnixNano"].astype("int64"), unit="ns")
    df["duration_ms"] = (df["end"] - df["start"]).dt.total_seconds() * 1000
    df["input_tokens"] = num("attributes.gen_ai.usage.input_tokens").fillna(num("attributes.llm.token_count.prompt"))
    df["output_tokens"] = num("attributes.gen_ai.usage.output_tokens").fillna(
        num("attributes.llm.token_count.completion"))
    g = df.groupby("traceId")
    per_trace = g.agg(start=("start", "min"), end=("end", "max"), spans=("spanId", "count"),
                      input_tokens=("input_tokens", "sum"), output_tokens=("output_tokens", "sum"))
    per_trace["span_p50_ms"] = g["duration_ms"].quantile(0.5)
    per_trace["span_p95_ms"] = g["duration_ms"].quantile(0.95)
    per_trace["latency_ms"] = (per_trace["end"] - per_trace["start"]).dt.total_seconds() * 1000
    overall = per_trace["latency_ms"].quantile([0.5, 0.95, 0.99])
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "spans": len(df), "traces": len(per_trace), "idle_rss_mb": idle,
            "trace_latency_p50_ms": float(overall.iloc[0]), "columns": df.shape[1]}


# What a user waits for on an ingested database, each through the library function the notebooks, the
# CLI and the widgets call (never a hand-written query). Each call gets the lens and a sampled run id: the
# trace view's calls take another sampled run each time (a warm cache for one run would flatter them), the
# others repeat the same call.
QUERY_LABELS = {
    "runs_page": "`lens.runs(limit=50)`",
    "explorer_page": "the run explorer's first page (`explore.find_runs(limit=50)` + `count_runs`)",
    "trace_view": "a trace view's spans (`lens.spans(run_id)`)",
    "trace_layout": "a trace's waterfall layout (`trace.trace_layout`)",
    "golden_signals": "golden signals by feature (`signals(lens, by=\"feature\")`)",
    "signals_daily": "golden signals per day (`signals(lens, every=\"1d\")`)",
    "costs": "cost by feature (`costs.by(lens, by=\"feature\")`)",
    "costs_by_customer": "cost by customer (`costs.by(lens, by=\"customer_id\")`)",
    "failures": "failure report (`failures.report(lens)`: counts per mode, worst runs, fleet incidents)",
}


def _query_calls() -> dict[str, Callable[[Any, str], Any]]:
    from agentlens import costs, explore
    from agentlens.explore import trace
    from agentlens.failures.report import report as failure_report
    from agentlens.metrics.signals import signals

    def explorer_page(lens: Any, _run: str) -> Any:  # what the run explorer widget shows on opening
        return explore.find_runs(lens, limit=50), explore.count_runs(lens)

    calls: dict[str, Callable[[Any, str], Any]] = {
        "runs_page": lambda lens, _r: lens.runs(limit=50),
        "explorer_page": explorer_page,
        "trace_view": lambda lens, r: lens.spans(r),
        "trace_layout": lambda lens, r: trace.trace_layout(lens, r),
        "golden_signals": lambda lens, _r: signals(lens, by="feature"),
        "signals_daily": lambda lens, _r: signals(lens, every="1d"),
        "costs": lambda lens, _r: costs.by(lens, by="feature"),
        "costs_by_customer": lambda lens, _r: costs.by(lens, by="customer_id"),
        "failures": lambda lens, _r: failure_report(lens),
    }
    assert calls.keys() == QUERY_LABELS.keys()
    return calls


PER_RUN_QUERIES = ("trace_view", "trace_layout")


def child_queries(db: str, repeat: int) -> dict[str, Any]:
    agentlens = _import_agentlens()
    calls = _query_calls()
    t0 = time.perf_counter()
    lens = agentlens.open(db, read_only=True)
    open_s = time.perf_counter() - t0
    run_ids = [r[0] for r in lens.con.execute(SAMPLE_RUN_IDS_SQL).fetchall()]
    out: dict[str, Any] = {"open_s": open_s, "runs_in_db": lens.con.execute("SELECT count(*) FROM runs").fetchall()[0][0],
                           "spans_in_db": lens.con.execute("SELECT count(*) FROM spans").fetchall()[0][0]}
    for key, call in calls.items():
        per_run = key in PER_RUN_QUERIES
        times = []
        for i in range(1 + (len(run_ids) - 1 if per_run else repeat)):
            rid = run_ids[i % len(run_ids)] if per_run else run_ids[0]
            t = time.perf_counter()
            result = call(lens, rid)
            times.append(time.perf_counter() - t)
            if i == 0:  # an empty answer would time nothing: every query must find something here
                first = result[0] if isinstance(result, tuple) else getattr(result, "counts", result)
                assert getattr(first, "height", 1) > 0, f"{key} returned nothing on {db}"
        out[key] = {"first_s": times[0], "median_s": statistics.median(times[1:] or times), "all_s": times[1:]}
    lens.close()
    return out


def child_replicate(src: str, dst: str, factor: int) -> dict[str, Any]:
    import duckdb

    shutil.copyfile(src, dst)
    t0 = time.perf_counter()
    con = duckdb.connect(dst)
    con.execute("SET memory_limit = '4GB'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("ATTACH ? AS src (READ_ONLY)", [src])
    for i in range(1, factor):
        for sql in REPLICATE_SQL.values():
            con.execute(sql, {"copy": i})
        con.execute("CHECKPOINT")
    con.execute("DETACH src")
    con.close()
    return {"wall_s": time.perf_counter() - t0}


# What an ingest stores (the tables an agentlens ingest fills), copied by the store floor
STORED_TABLES = ("spans", "runs", "failures", "fleet_incidents", "quarantine", "ingested_files")


def child_floor_store(dst: str, src: str) -> dict[str, Any]:
    """The storing floor: what an ingest stores, read from an ingested database and written into a fresh agentlens
    database, open to close, DuckDB's memory capped as in an ingest (written from a DuckDB file, the fastest
    source measured: from LZ4 Parquet staged as the ingest stages, 15.7 s instead of 10.6 s at 100k runs).
    The reading of the source is measured alone after it (`read_s`): the floor is the difference. No reader,
    normaliser or run builder could make an ingest of the same rows faster than that."""
    agentlens = _import_agentlens()
    t0, c0 = time.perf_counter(), time.process_time()
    lens = agentlens.open(dst)
    lens.con.execute("ATTACH ? AS src (READ_ONLY)", [src])
    rows = {}
    for table in STORED_TABLES:
        sql = f"INSERT INTO {table} BY NAME SELECT * FROM src.{table}"  # noqa: S608 - fixed names, no value
        rows[table] = lens.con.execute(sql).fetchall()[0][0]
    lens.con.execute("DETACH src")
    lens.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    # the copy's reading of the source, measured alone (every column of every row, as the copy reads them): the
    # report takes it off, so that the floor is the writing only (a little under it: the two overlap in the copy)
    source = agentlens.open(src, read_only=True)  # DuckDB's memory capped as for the copy
    t0, c0 = time.perf_counter(), time.process_time()
    for table in STORED_TABLES:
        cols = source.con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
                                  "AND schema_name = 'main'", [table]).fetchall()
        every = ", ".join(f'sum(strlen("{n}"))' if t in ("VARCHAR", "JSON") else f'count("{n}")' for n, t in cols)
        source.con.execute(f"SELECT {every} FROM {table}").fetchall()  # noqa: S608 - the table's own column names
    source.close()
    return {"wall_s": wall, "work_cpu_s": cpu, "rows": rows,
            "read_s": time.perf_counter() - t0, "read_cpu_s": time.process_time() - c0}


def child_floor_decode(file: str) -> dict[str, Any]:
    """The decoding floor of a Python reader: every line of the file decoded to Python objects by msgspec (the
    JSON decoder the OTLP adapter uses, among the fastest for Python), on one core, nothing else done."""
    import msgspec

    decode = msgspec.json.Decoder().decode
    t0, c0 = time.perf_counter(), time.process_time()
    docs = 0
    with open(file, "rb") as f:
        for line in f:
            if line.strip():
                decode(line)
                docs += 1
    return {"wall_s": time.perf_counter() - t0, "work_cpu_s": time.process_time() - c0, "docs": docs}


CHILD_TASKS = {"agentlens": child_agentlens, "baseline": child_baseline, "pandas": child_pandas,
               "queries": child_queries, "replicate": child_replicate, "floor_store": child_floor_store,
               "floor_decode": child_floor_decode}


def hide_pandas() -> None:
    """Make `import pandas` fail in this process and in the ingest worker processes it starts (they
    inherit the environment: bench/hide_pandas/ on their PYTHONPATH, whose sitecustomize does the same)."""
    folder = str(HERE / "hide_pandas")
    sys.path.insert(0, folder)
    import _hide_pandas

    _hide_pandas.install()
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (folder, os.environ.get("PYTHONPATH")) if p)


def child_main(task: str, args: list[str]) -> None:
    fn = CHILD_TASKS[task]
    if task in ("agentlens", "queries") and not os.environ.get("AGENTLENS_BENCH_SEE_PANDAS"):
        # agentlens does not depend on pandas, but pyarrow imports it (~0.8 s) on the first conversion of
        # Python objects when it is installed, as it is here for baseline 2: hide it, so agentlens is measured
        # as installed with its own dependencies (--agentlens-sees-pandas to measure with it).
        hide_pandas()
    conv = [int(a) if a.isdigit() else a for a in args]
    result = fn(*conv)
    result["self_maxrss_mb"] = _self_rss_mb()
    sys.stdout.write("\n@@RESULT@@" + json.dumps(result, default=str) + "\n")


# === parent side ========================================================================================

def _busy_cpu_s() -> float | None:
    """CPU seconds spent by the whole machine so far (all cores, not idle), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


OTHER_LOAD: list[float] = []  # per measurement: cores used by other processes meanwhile
MAX_RSS_BYTES = 0  # memory guard for children (set from --max-rss-gb)
CODE_HASHES: dict[str, int] = {}  # agentlens source hashes seen by the ingest children, in order


class ChildFailed(RuntimeError):
    def __init__(self, message: str, result: dict[str, Any]):
        super().__init__(message)
        self.result = result


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _tree_rss_bytes(pid: int) -> int:
    """RSS of a process and all its descendants (agentlens's ingest workers), from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += _rss_bytes(p)
        try:
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (OSError, ValueError):
            pass
    return total


def run_child(task: str, *args: Any) -> dict[str, Any]:
    """Run one task in a fresh interpreter; its peak RSS and CPU time come from the kernel via wait4.
    `other_load` is the CPU used by other processes meanwhile, in cores (0: the machine was ours).
    A child whose RSS passes the memory guard (--max-rss-gb) is killed: ChildFailed, with what was seen."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", task, *map(str, args)]
    busy0 = _busy_cpu_s()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    chunks: list[bytes] = []
    errs: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(p.stdout.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    def relay() -> None:  # the child's stderr, passed on as it comes and kept for a failure's reason
        for line in p.stderr:  # type: ignore[union-attr]
            errs.append(line)
            sys.stderr.buffer.write(line)
            sys.stderr.flush()

    err_reader = threading.Thread(target=relay, daemon=True)
    err_reader.start()
    killed = None
    tree_peak = 0
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        rss = _tree_rss_bytes(p.pid)
        tree_peak = max(tree_peak, rss)
        if MAX_RSS_BYTES and rss > MAX_RSS_BYTES and killed is None:
            killed = rss
            log(f"  memory guard: {task} reached {rss / 2**30:.1f} GiB RSS; killing it (--max-rss-gb)")
            p.kill()
        time.sleep(0.1)
    reader.join()
    err_reader.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    process_s = time.perf_counter() - t0
    out = b"".join(chunks).decode("utf-8", "replace")
    err = b"".join(errs).decode("utf-8", "replace")
    # ru_maxrss (KiB on Linux) of wait4 is the largest of the process and its reaped descendants, not their
    # sum: with worker processes, the sum sampled every 0.1 s (tree_peak) is the larger, honest figure.
    # CPU time from wait4 includes the reaped descendants'.
    seen = {"peak_rss_mb": max(usage.ru_maxrss / 1024, tree_peak / 2**20), "process_s": process_s,
            "cpu_s": usage.ru_utime + usage.ru_stime, "self_or_largest_maxrss_mb": usage.ru_maxrss / 1024,
            "tree_peak_rss_mb": tree_peak / 2**20}
    if killed is not None:
        seen["killed_at_rss_mb"] = killed / 2**20
        raise ChildFailed(f"{task} killed by the memory guard at {killed / 2**30:.1f} GiB RSS after "
                          f"{process_s:.0f} s", seen)
    if p.returncode != 0 or "@@RESULT@@" not in out:
        raise ChildFailed(f"{task} exited {p.returncode} after {process_s:,.0f} s: {_reason(err)}", seen)
    res = json.loads(out.rsplit("@@RESULT@@", 1)[1])
    res.update(seen)  # peak_rss_mb: ru_maxrss is KiB on Linux
    busy1 = _busy_cpu_s()
    if busy0 is not None and busy1 is not None:
        res["other_load"] = max(0.0, (busy1 - busy0 - res["cpu_s"]) / process_s)
        OTHER_LOAD.append(res["other_load"])
    if "code_hash" in res:
        CODE_HASHES.setdefault(res["code_hash"], len(CODE_HASHES))
    if res.get("other_load", 0) > 0.25:
        log(f"  note: other processes used {res['other_load']:.2f} cores during this measurement")
    return res


def db_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + ".wal")) if p.exists())


def summarize(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def repeated(name: str, repeat: int, budget_s: float, fn) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Run fn(i) up to `repeat` times, stopping early when another repetition would exceed the budget, or
    at the first failure. Returns (successful repetitions, the failure or None)."""
    reps: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for i in range(repeat):
        try:
            r = fn(i)
        except ChildFailed as e:
            log(f"  {name} rep {i + 1}/{repeat}: FAILED: {e}")
            return reps, {"error": str(e), **e.result}
        reps.append(r)
        spent = time.perf_counter() - t0
        log(f"  {name} rep {i + 1}/{repeat}: {r['wall_s']:.2f} s, peak RSS {r['peak_rss_mb']:,.0f} MB")
        if i + 1 < repeat and spent + spent / (i + 1) > budget_s:
            log(f"  {name}: stopping after {i + 1} repetition(s) (time budget {budget_s:.0f} s)")
            break
    return reps, None


def ingest_stats(measured: tuple[list[dict[str, Any]], dict[str, Any] | None], file_bytes: int) -> dict[str, Any]:
    reps, failure = measured
    if not reps:
        return {"failed": failure["error"] if failure else "no repetition", "failure": failure}
    walls = [r["wall_s"] for r in reps]
    spans = reps[0]["spans"]
    return {
        "reps": len(reps),
        "wall_s": summarize(walls),
        "cpu_s": summarize([r["cpu_s"] for r in reps]),
        "other_load": max(r.get("other_load", 0) for r in reps),
        "mb_per_s": summarize([file_bytes / MB / w for w in walls]),
        "spans_per_s": summarize([spans / w for w in walls]),
        "peak_rss_mb": summarize([r["peak_rss_mb"] for r in reps]),
        "idle_rss_mb": statistics.median(r.get("idle_rss_mb", 0) for r in reps),
        "db_mb": summarize([r.get("db_bytes", 0) / MB for r in reps]) if "db_bytes" in reps[0] else None,
        "spans": spans,
        "raw": reps,
        "failure": failure,  # a later repetition that failed, if any
    }


def mem_total_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def git_revision() -> str | None:
    """The checked-out commit, read from .git without running git."""
    try:
        head = (ROOT / ".git" / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:12]
        ref = head[5:]
        p = ROOT / ".git" / ref
        if p.exists():
            return p.read_text().strip()[:12]
        packed = ROOT / ".git" / "packed-refs"
        for line in packed.read_text().splitlines() if packed.exists() else ():
            if line.endswith(" " + ref):
                return line[:12]
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    import duckdb

    try:
        import importlib.metadata as md
        agentlens_version = md.version("agentlens")
    except Exception:  # not installed as a distribution
        agentlens_version = "?"
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": cpu_model,
        "memory_gib": round(mem_total_bytes() / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "agentlens": agentlens_version,
        "git_revision": git_revision(),
    }


def bench_size(runs: int, a: argparse.Namespace, work: Path) -> dict[str, Any]:
    data = a.data
    log(f"== {runs:,} runs ==")
    files = gen.generate(data, runs, seed=a.seed)
    extra_runs = max(1, runs // 100)
    extra = gen.generate(data, extra_runs, seed=a.seed, offset=runs, csv_too=False)["otlp"]
    otlp, csv_file = files["otlp"], files["csv"]
    size = otlp.stat().st_size
    res: dict[str, Any] = {"runs": runs, "file": str(otlp.relative_to(ROOT) if otlp.is_relative_to(ROOT) else otlp),
                           "file_bytes": size, "extra_runs": extra_runs, "extra_file_bytes": extra.stat().st_size,
                           "extra_file": str(extra.relative_to(ROOT) if extra.is_relative_to(ROOT) else extra)}

    # agentlens, fresh DB each repetition; the last database is kept for the incremental check and queries
    kept = work / f"agentlens-{runs}.duckdb"

    def agentlens_rep(i: int) -> dict[str, Any]:
        db = work / f"agentlens-{runs}-rep{i}.duckdb"
        db.unlink(missing_ok=True)
        r = run_child("agentlens", db, otlp)
        r["db_bytes"] = db_size(db)
        kept.unlink(missing_ok=True)
        db.replace(kept)
        return r

    log(f"agentlens ingest of {otlp.name} ({size / MB:,.0f} MB)")
    res["agentlens"] = ingest_stats(repeated("agentlens", a.repeat, a.budget, agentlens_rep), size)
    ok = "failed" not in res["agentlens"]
    res["spans"] = res["agentlens"]["spans"] if ok else None

    log("baseline: DuckDB read_json + UNNEST")
    res["baseline_read_json"] = ingest_stats(repeated(
        "read_json", a.repeat, a.budget, lambda i: into_fresh_db("baseline", work / f"baseline-{runs}.duckdb", otlp)),
        size)
    if res["spans"] is None and "spans" in res["baseline_read_json"]:
        res["spans"] = res["baseline_read_json"]["spans"]
    res["ratio_vs_read_json"] = (res["agentlens"]["mb_per_s"]["median"]
                                 / res["baseline_read_json"]["mb_per_s"]["median"]
                                 if ok and "mb_per_s" in res["baseline_read_json"] else None)

    if ok:
        res["floors"] = floors(kept, otlp, a, work)

    # pandas: json.loads + json_normalize hold every span as Python objects: ~5x the file in memory
    limit = a.pandas_max_mb * MB
    try:
        import pandas  # noqa: F401
        have_pandas = True
    except ImportError:
        have_pandas = False
    if not have_pandas:
        res["baseline_pandas"] = {"skipped": "pandas is not installed (pip install pandas)"}
        log("pandas baseline skipped: pandas is not installed (pip install pandas)")
    elif size > limit:
        res["baseline_pandas"] = {"skipped": f"file over {a.pandas_max_mb:,} MB (--pandas-max-mb): "
                                             "json.loads + json_normalize need ~5x the file in memory"}
        log(f"pandas baseline skipped: {res['baseline_pandas']['skipped']}")
    else:
        log("baseline: pandas json_normalize + groupby")
        res["baseline_pandas"] = ingest_stats(repeated("pandas", a.repeat, a.budget,
                                                       lambda i: run_child("pandas", otlp)), size)

    if not ok:
        res["incremental"] = res["queries"] = None
        log("incremental check and queries skipped: the agentlens ingest failed")
        if not a.no_csv:
            res["agent_runs_csv"] = _csv_ingest(runs, csv_file, work)
        return res
    log(f"incremental: +{extra_runs:,} runs ({extra.stat().st_size / MB:,.1f} MB) into the {runs:,}-run database")
    res["incremental"] = incremental(kept, extra, a, work)
    if "wall_s" in res["incremental"]:
        res["incremental"]["fraction_of_full"] = (res["incremental"]["wall_s"]["median"]
                                                  / res["agentlens"]["wall_s"]["median"])
        res["incremental"]["data_fraction"] = extra.stat().st_size / size

    if not a.no_csv:
        res["agent_runs_csv"] = _csv_ingest(runs, csv_file, work)

    log("queries")
    res["queries"] = run_child("queries", kept, a.query_repeat)
    q = res["queries"]
    log("  " + ", ".join(f"{k} {q[k]['median_s'] * 1000:,.1f} ms" for k in QUERY_LABELS if k in q))
    return res


def into_fresh_db(task: str, db: Path, *args: Any) -> dict[str, Any]:
    """One repetition of a child task writing a database `db` (its first argument), made fresh for it and
    deleted after; its size is kept (`db_bytes`)."""
    db.unlink(missing_ok=True)
    r = run_child(task, db, *args)
    r["db_bytes"] = db_size(db)
    db.unlink()
    return r


def floors(kept: Path, otlp: Path, a: argparse.Namespace, work: Path) -> dict[str, Any]:
    """How close to the machine: the two parts of an ingest no design of agentlens can avoid, each alone.
    Storing what the ingest stored (child_floor_store) and decoding the file's JSON in Python
    (child_floor_decode). `bound_s`: the wall time of an ideal ingest with a Python reader, both overlapped
    on every core with nothing else to do: max(storing's wall, (storing's CPU + decoding's CPU) / cores)."""
    log("floors: the ingested rows stored alone; the file's JSON decoded alone")
    store, f1 = repeated("store floor", a.repeat, a.budget,
                         lambda i: into_fresh_db("floor_store", work / "floor-store.duckdb", kept))
    decode, f2 = repeated("decode floor", a.repeat, a.budget, lambda i: run_child("floor_decode", otlp))
    out: dict[str, Any] = {}
    for key, reps, failure in (("store", store, f1), ("decode", decode, f2)):
        out[key] = ({"reps": len(reps), "wall_s": summarize([r["wall_s"] for r in reps]),
                     "work_cpu_s": summarize([r["work_cpu_s"] for r in reps]),
                     "peak_rss_mb": summarize([r["peak_rss_mb"] for r in reps]), "raw": reps}
                    if reps else {"failed": failure["error"] if failure else "no repetition", "failure": failure})
    if "wall_s" in out["store"] and "wall_s" in out["decode"]:
        cores = os.cpu_count() or 1
        st, de = out["store"], out["decode"]
        # writing only: the copy's time less its reading of the source, measured alone
        st["write_s"] = statistics.median(r["wall_s"] - r["read_s"] for r in store)
        st["write_cpu_s"] = statistics.median(r["work_cpu_s"] - r["read_cpu_s"] for r in store)
        st["read_s"] = statistics.median(r["read_s"] for r in store)
        out["cores"] = cores
        out["bound_s"] = max(st["write_s"], (st["write_cpu_s"] + de["work_cpu_s"]["median"]) / cores)
    return out


def incremental(db_src: Path, extra: Path, a: argparse.Namespace, work: Path) -> dict[str, Any]:
    """`extra` (new runs) ingested into a copy of `db_src`, fresh for each repetition."""
    def rep(i: int) -> dict[str, Any]:
        db = work / f"incremental-{db_src.stem}.duckdb"
        shutil.copyfile(db_src, db)
        # the copy's pages are dirty: without this, the ingest's checkpoint (fsync) waits for all of them
        # to reach the disk (5.7 GB for the replicated database: 3.5 s measured instead of 2.3 s)
        os.sync()
        before = db_size(db)
        r = run_child("agentlens", db, extra)
        r["db_growth_bytes"] = db_size(db) - before
        db.unlink()
        return r

    inc, failure = repeated("incremental", a.repeat, a.budget, rep)
    if not inc:
        return {"failed": failure["error"] if failure else "?", "failure": failure}
    wall = statistics.median(r["wall_s"] for r in inc)
    return {"reps": len(inc), "wall_s": summarize([r["wall_s"] for r in inc]),
            "mb_per_s": extra.stat().st_size / MB / wall, "peak_rss_mb": summarize([r["peak_rss_mb"] for r in inc]),
            "raw": inc, "failure": failure}


def _csv_ingest(runs: int, csv_file: Path, work: Path) -> dict[str, Any]:
    log(f"agent_runs CSV ingest of {csv_file.name} ({csv_file.stat().st_size / MB:,.0f} MB)")
    db = work / f"agent-runs-{runs}.duckdb"
    db.unlink(missing_ok=True)
    try:
        r = run_child("agentlens", db, csv_file)
    except ChildFailed as e:
        log(f"  agent_runs CSV: FAILED: {e}")
        return {"failed": str(e), "failure": e.result, "file_bytes": csv_file.stat().st_size}
    r["db_bytes"] = db_size(db)
    db.unlink(missing_ok=True)
    log(f"  agent_runs CSV: {r['wall_s']:.2f} s ({r['runs'] / r['wall_s']:,.0f} rows/s)")
    return {"file_bytes": csv_file.stat().st_size, "rows": r["runs"], "wall_s": r["wall_s"],
            "rows_per_s": r["runs"] / r["wall_s"], "mb_per_s": csv_file.stat().st_size / MB / r["wall_s"],
            "peak_rss_mb": r["peak_rss_mb"], "raw": r}


def bench_replicated(src: Path, src_runs: int, target: int, a: argparse.Namespace, work: Path,
                     extra: Path | None = None) -> dict[str, Any]:
    factor = -(-target // src_runs)
    dst = work / f"replicated-{target}.duckdb"
    dst.unlink(missing_ok=True)
    log(f"== queries at {src_runs * factor:,} runs: the {src_runs:,}-run database replicated {factor}x in SQL ==")
    rep = run_child("replicate", src, dst, factor)
    log(f"  replicated in {rep['wall_s']:.0f} s ({db_size(dst) / MB:,.0f} MB)")
    q = run_child("queries", dst, a.query_repeat)
    q["replicated_from_runs"] = src_runs
    q["factor"] = factor
    q["db_mb"] = db_size(dst) / MB
    if extra is not None:  # does the cost of a small ingest grow with the database?
        log(f"  incremental: {extra.name} ({extra.stat().st_size / MB:,.1f} MB) into the replicated database")
        q["incremental"] = incremental(dst, extra, a, work)
        q["incremental"]["extra_file_bytes"] = extra.stat().st_size
    dst.unlink()
    log("  " + ", ".join(f"{k} {q[k]['median_s'] * 1000:,.1f} ms" for k in QUERY_LABELS if k in q))
    return q


# === report ==============================================================================================

def _fmt_range(s: dict[str, float], fmt: str, reps: int) -> str:
    med = format(s["median"], fmt)
    if reps <= 1:
        return med
    return f"{med} ({format(s['min'], fmt)}–{format(s['max'], fmt)})"


def _reason(stderr: str) -> str:
    """A failed child's reason: the last line of its stderr (the exception, or SystemExit's message), with
    this checkout's paths made relative."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return (lines[-1] if lines else "no message").replace(f"{ROOT}{os.sep}", "")


def _why(failed: str) -> str:
    """The end of a failure's message (the reason comes last), for a table cell."""
    return failed if len(failed) <= 160 else "..." + failed[-160:]


def _ms(s: float) -> str:
    return f"{s * 1000:,.1f}" if s < 10 else f"{s * 1000:,.0f}"


def _failed_cell(st: dict[str, Any]) -> str:
    f = st.get("failure") or {}
    if "killed_at_rss_mb" in f:
        return (f"**failed: killed by the memory guard at {f['killed_at_rss_mb']:,.0f} MB RSS** "
                f"after {f['process_s']:,.0f} s")
    return "**failed**: " + st["failed"].splitlines()[0][:400]


def _runs(s: dict[str, Any]) -> str:
    return f"{s['runs']:,}" + (" †" if s.get("carried_from") else "")


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    sizes = report["sizes"]
    hashes = report.get("agentlens_code_hashes") or []
    lines = [
        "# agentlens benchmark results",
        "",
        f"Generated by `bench/run.py {report['argv']}` on {m['date']} in {report['total_s'] / 60:.0f} min. "
        "See bench/README.md for what is measured and how to read it.",
        "",
        f"Machine: {m['cores']} cores ({m['cpu'] or 'unknown CPU'}), {m['memory_gib']} GiB RAM, {m['os']}; "
        f"Python {m['python']}, DuckDB {m['duckdb']}, agentlens {m['agentlens']}"
        + (f" (commit {m['git_revision']} plus any uncommitted changes)" if m.get("git_revision") else "") + ".",
        "",
        ("**The agentlens sources changed while this ran** (source hashes, in order: " + ", ".join(hashes)
         + "): measurements may be of different code." if len(hashes) > 1 else
         f"agentlens sources: hash {hashes[0] if hashes else '?'}, the same in every measurement."),
        "",
        *([f"**Merged**: the rows marked † come from an earlier run, {report['merged_from']['file']} of "
           f"{report['merged_from']['date']} (agentlens source hashes "
           + ", ".join(report['merged_from']['agentlens_code_hashes'] or ['?'])
           + f", others' CPU median {report['merged_from']['other_load']['median']:.2f} max "
           + f"{report['merged_from']['other_load']['max']:.2f} cores); the others from this run."
           + (f" The replicated 1M-run query row was first measured in {report['replicated']['carried_from']}."
              if (report.get("replicated") or {}).get("carried_from") else ""), ""]
          if report.get("merged_from") else []),
        (f"Other processes' CPU use during the measurements: median {report['other_load']['median']:.2f}, "
         f"max {report['other_load']['max']:.2f} cores of {m['cores']}"
         + (": **the machine was shared**, wall times are pessimistic (CPU times less so)." if
            report["other_load"]["max"] > 0.25 else " (the machine was otherwise idle).")),
        "",
        f"Input: bench/gen.py synthetic OTLP JSON Lines (seed {report['seed']}), ~10 spans per run, prompts and "
        "outputs of 200-2,000 characters. Files are read from the OS page cache (generated just before, or "
        "read by an earlier repetition). "
        + ("The agentlens processes could import pandas (`--agentlens-sees-pandas`). " if
           report.get("agentlens_sees_pandas") else
           "pandas is hidden from the agentlens processes (agentlens does not depend on it; when installed, "
           "pyarrow imports it on first use, ~0.8 s per process). ")
        + "Child processes are killed above "
        f"{report['max_rss_gb']:.1f} GiB RSS (memory guard, `--max-rss-gb`"
        + (f"; {report['merged_from']['max_rss_gb']:.1f} GiB in the earlier run" if
           (report.get("merged_from") or {}).get("max_rss_gb") else "") + ").",
        "",
        "## Ingest",
        "",
        "Median over the repetitions, (min–max) when there were several. Wall time is measured inside the "
        "process (open, ingest, close); peak RSS is the process's maximum resident set from the kernel "
        "(`wait4`), including the interpreter and DuckDB's buffers, or, when larger, the summed RSS of the process and its ingest worker processes sampled every 0.1 s. CPU s is the process's user + system time "
        "(interpreter start-up included): above the wall time means it used more than one core. Others' CPU: "
        "the most cores other processes used during one of the repetitions.",
        "",
        "| runs | spans | file MB | ingest | reps | wall s | CPU s | MB/s | spans/s | peak RSS MB | DB MB "
        "| others' CPU |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in sizes:
        spans = f"{s['spans']:,}" if s.get("spans") else "?"
        for key, name in (("agentlens", "**agentlens**"), ("baseline_read_json", "DuckDB read_json + UNNEST"),
                          ("baseline_pandas", "pandas json_normalize + groupby")):
            st = s.get(key)
            if st is None:
                continue
            head = f"| {_runs(s)} | {spans} | {s['file_bytes'] / MB:,.0f} | {name} |"
            if "skipped" in st:
                lines.append(f"{head} – | skipped: {st['skipped']} | | | | | | |")
                continue
            if "failed" in st:
                lines.append(f"{head} – | {_failed_cell(st)} | | | | | | |")
                continue
            n = st["reps"]
            db = _fmt_range(st["db_mb"], ",.0f", n) if st.get("db_mb") else "–"
            lines.append(
                f"{head} {n} | {_fmt_range(st['wall_s'], ',.2f', n)} | {st['cpu_s']['median']:,.1f} | "
                f"{_fmt_range(st['mb_per_s'], ',.1f', n)} | {_fmt_range(st['spans_per_s'], ',.0f', n)} | "
                f"{_fmt_range(st['peak_rss_mb'], ',.0f', n)} | {db} | {st.get('other_load', 0):.2f} |")
    lines += [
        "",
        "## agentlens against the baselines",
        "",
        "Throughput ratio = agentlens MB/s ÷ baseline MB/s on the same file (the inverse ratio of the median wall "
        "times; \"best of reps\" compares the fastest repetitions, the least disturbed on a shared machine). "
        "Above 1: agentlens is faster; the project's target is ≥ 3 against read_json. The CPU-time ratio is "
        "the least sensitive to other load (both use every core: read_json its threads, agentlens its worker processes for reading, DuckDB threads after). Note that the "
        "baselines do much less: read_json stores OTLP as it is (nested attribute lists, no normalisation, no "
        "runs); the pandas notebook computes one table in memory and stores nothing.",
        "",
        "| runs | vs DuckDB read_json (median) | vs read_json (best of reps) | vs pandas (median) | "
        "CPU time: read_json ÷ agentlens | peak RSS: agentlens ÷ read_json |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for s in sizes:
        al, rj, pd_ = s["agentlens"], s["baseline_read_json"], s.get("baseline_pandas") or {}
        both = "wall_s" in al and "wall_s" in rj
        vs_rj = f"{s['ratio_vs_read_json']:.2f}x" if s.get("ratio_vs_read_json") else "–"
        best = f"{rj['wall_s']['min'] / al['wall_s']['min']:.2f}x" if both else "–"
        vs_pd = (f"{al['mb_per_s']['median'] / pd_['mb_per_s']['median']:.2f}x"
                 if "mb_per_s" in pd_ and "mb_per_s" in al else "–")
        cpu = f"{rj['cpu_s']['median'] / al['cpu_s']['median']:.2f}" if both else "–"
        rss = f"{al['peak_rss_mb']['median'] / rj['peak_rss_mb']['median']:.2f}" if both else "–"
        lines.append(f"| {_runs(s)} | {vs_rj} | {best} | {vs_pd} | {cpu} | {rss} |")
    if any((s.get("floors") or {}).get("bound_s") for s in sizes):
        lines += [
            "",
            "## How close to the machine",
            "",
            "The two parts of an ingest that no design of agentlens avoids, each measured alone on the same data "
            "(median of the repetitions): **storing** what the ingest stored (its tables copied from the ingested "
            "database into a fresh one, open to close, DuckDB's memory capped as in an ingest, less the copy's "
            "reading of the source, measured alone: no reading of the file, no normalising or building runs), and "
            "**decoding** the file's JSON to Python objects with msgspec, the decoder the OTLP adapter uses, on "
            "one core. The best ratio any reader could reach against read_json is read_json's wall ÷ storing's "
            "(reading for free); a reader in Python also decodes: its bound is max(storing's wall, (storing's CPU "
            "+ decoding's CPU) ÷ cores), both perfectly overlapped on every core, and nothing else done (no "
            "normalising, no runs, no pricing, no classifying).",
            "",
            "| runs | read_json wall s | storing: wall s (CPU s; the copy's reading taken off) | "
            "decoding, 1 core: wall s | "
            "ideal ingest with a Python reader: s | best ratio to read_json: any reader | "
            "with a Python reader | agentlens now |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in sizes:
            fl, rj, al = s.get("floors") or {}, s["baseline_read_json"], s["agentlens"]
            if not fl.get("bound_s") or "wall_s" not in rj or "wall_s" not in al:
                continue
            st, de, rjw = fl["store"], fl["decode"], rj["wall_s"]["median"]
            lines.append(
                f"| {_runs(s)} | {rjw:,.2f} | {st['write_s']:,.2f} ({st['write_cpu_s']:,.1f}; "
                f"{st['read_s']:,.2f} s of reading) | "
                f"{de['wall_s']['median']:,.2f} | {fl['bound_s']:,.2f} | {rjw / st['write_s']:.2f}x | "
                f"{rjw / fl['bound_s']:.2f}x | {rjw / al['wall_s']['median']:.2f}x |")
    lines += [
        "",
        "## Incremental ingest",
        "",
        "A file with 1% more runs (new runs, later times) ingested into a copy of the database built above; the "
        "last row: the largest size's file into a copy of the replicated database of the Queries section "
        "(the time of a small ingest should not grow with the database).",
        "",
        "| runs in DB | added runs | added MB | reps | wall s | fraction of the full ingest's time | "
        "fraction of the data | MB/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in sizes:
        inc = s.get("incremental")
        head = f"| {_runs(s)} | {s['extra_runs']:,} | {s['extra_file_bytes'] / MB:,.1f} |"
        if inc is None:
            lines.append(f"{head} – | not measured: the full ingest failed | | | |")
        elif "failed" in inc:
            lines.append(f"{head} – | {_failed_cell(inc)} | | | |")
        else:
            lines.append(f"{head} {inc['reps']} | {_fmt_range(inc['wall_s'], ',.2f', inc['reps'])} | "
                         f"{inc['fraction_of_full']:.1%} | {inc['data_fraction']:.1%} | {inc['mb_per_s']:,.1f} |")
    r = report.get("replicated") or {}
    inc = r.get("incremental")
    if inc:  # the same file into the replicated database: the cost of a small ingest should not grow with it
        head = (f"| {r['runs_in_db']:,} (replicated{' †' if r.get('carried_from') else ''}) | "
                f"{r['replicated_from_runs'] // 100:,} | {inc['extra_file_bytes'] / MB:,.1f} |")
        if "failed" in inc:
            lines.append(f"{head} – | {_failed_cell(inc)} | | | |")
        else:
            lines.append(f"{head} {inc['reps']} | {_fmt_range(inc['wall_s'], ',.2f', inc['reps'])} | "
                         "– (no full ingest at this size) | – | " f"{inc['mb_per_s']:,.1f} |")
    if any(s.get("agent_runs_csv") for s in sizes):
        lines += ["", "## agent_runs CSV ingest (one repetition)", "",
                  "| rows | file MB | wall s | rows/s | MB/s | peak RSS MB |", "|---:|---:|---:|---:|---:|---:|"]
        for s in sizes:
            c = s.get("agent_runs_csv")
            if c and "failed" in c:
                lines.append(f"| {_runs(s)} | {c['file_bytes'] / MB:,.0f} | {_failed_cell(c)} | | | |")
            elif c:
                lines.append(f"| {c['rows']:,}{' †' if s.get('carried_from') else ''} | {c['file_bytes'] / MB:,.0f} | {c['wall_s']:,.2f} | "
                             f"{c['rows_per_s']:,.0f} | {c['mb_per_s']:,.1f} | {c['peak_rss_mb']:,.0f} |")
    lines += [
        "",
        "## Queries",
        "",
        "In a fresh read-only process on the ingested database, each through the library function the notebooks, "
        "CLI and widgets call. \"first\" is the first call after opening; \"median\" is over "
        f"{report['query_repeat']} more calls (a trace's queries: over 9 other sampled runs). Milliseconds, "
        "including the conversion to polars DataFrames.",
        "",
    ]
    dbs = [(s["queries"], f"{s['queries']['runs_in_db']:,} runs" + (" †" if s.get("carried_from") else ""))
           for s in sizes if s.get("queries")]
    if report.get("replicated"):
        r = report["replicated"]
        dbs.append((r, f"{r['runs_in_db']:,} runs (the {r['replicated_from_runs']:,}-run DB replicated {r['factor']}x "
                       "in SQL)" + (" †" if r.get("carried_from") else "")))
    lines += ["| query | " + " | ".join(f"{name}: first / median" for _, name in dbs) + " |",
              "|---|" + "---:|" * len(dbs),
              "| (spans in the database; time to open it) | "
              + " | ".join(f"{q['spans_in_db']:,}; {_ms(q['open_s'])}" for q, _ in dbs) + " |"]
    for key, label in QUERY_LABELS.items():
        if any(key in q for q, _ in dbs):
            lines.append(f"| {label} | " + " | ".join(
                f"{_ms(q[key]['first_s'])} / {_ms(q[key]['median_s'])}" if key in q else "–" for q, _ in dbs) + " |")
    lines += ["", "## Targets (from the project's issues)", "", "| target | measured | met? |", "|---|---|---|"]
    lines += [f"| {t} | {v} | {ok} |" for t, v, ok in targets(report)]
    lines += ["", "Raw numbers: " + report["json_path"], ""]
    return "\n".join(lines)


def targets(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    sizes = report["sizes"]
    big = sizes[-1]
    out = []
    ratios = [s for s in sizes if s.get("ratio_vs_read_json")]
    if ratios:
        each = "; ".join(f"{s['ratio_vs_read_json']:.2f}x at {s['runs']:,} runs" for s in ratios)
        bounded = [s for s in ratios if (s.get("floors") or {}).get("bound_s")]
        if bounded:  # what the machine allows: see "How close to the machine"
            each += " (best possible: " + "; ".join(
                f"{s['baseline_read_json']['wall_s']['median'] / s['floors']['store']['write_s']:.2f}x "
                f"for any reader, {s['baseline_read_json']['wall_s']['median'] / s['floors']['bound_s']:.2f}x "
                f"for a Python one at {s['runs']:,} runs" for s in bounded) + ")"
        ok = all(s["ratio_vs_read_json"] >= 3 for s in ratios)
        out.append(("ingest ≥ 3x the DuckDB read_json baseline's throughput", each, "yes" if ok else "**no**"))
    else:
        out.append(("ingest ≥ 3x the DuckDB read_json baseline's throughput", "not measured", "**no**"))
    for s in [s for s in sizes if (s.get("spans") or 0) >= 1_000_000] or [big]:
        al = s["agentlens"]
        what = f"{s['spans'] or 0:,} spans / {s['file_bytes'] / MB:,.0f} MB"
        if "failed" in al:
            f = al.get("failure") or {}
            rss = f.get("killed_at_rss_mb") or f.get("peak_rss_mb") or 0
            label, ok = f"over {rss:,.0f} MB (the ingest of {what} failed: {_why(al['failed'])})", "**no**"
        else:
            rss = al["peak_rss_mb"]["max"]
            label, ok = f"{rss:,.0f} MB (max over reps) ingesting {what}", "yes" if rss < 2000 else "**no**"
        if (s.get("spans") or 0) < 1_000_000:
            ok += " (no 1M-span file measured)"
        out.append(("peak RSS well under 2 GB ingesting a file of 1M spans (and under 2 GB at 1M runs)", label, ok))
    # the largest database queried; an ingested one rather than a replicated one of the same size
    real = next((s["queries"] for s in reversed(sizes) if s.get("queries")), None)
    replicated = report.get("replicated")
    q_big = (replicated if replicated and (real is None or replicated["runs_in_db"] > real["runs_in_db"])
             else real)
    if q_big is None:
        out.append(("golden signals by feature over 1M runs < 1 s", "not measured", "–"))
        out.append(("a trace view's data < 100 ms", "not measured", "–"))
    else:
        where = f"{q_big['runs_in_db']:,} runs" + (" (replicated)" if q_big is replicated else " (ingested)")
        g = q_big["golden_signals"]["median_s"]
        ok = "yes" if g < 1 else "**no**"
        if q_big["runs_in_db"] < 1_000_000:
            ok += " (measured below 1M runs)"
        out.append(("golden signals by feature over 1M runs < 1 s", f"{_ms(g)} ms at {where}", ok))
        views = [q_big[k] for k in PER_RUN_QUERIES if k in q_big]  # the spans and the waterfall layout
        tv, tv_first = max(v["median_s"] for v in views), max(v["first_s"] for v in views)
        out.append(("a trace view's data < 100 ms",
                    f"{_ms(tv)} ms at {where} ({_ms(tv_first)} ms first call; the slower of its spans and its "
                    "waterfall layout)", "yes" if tv < 0.1 else "**no**"))
    incs = [s for s in sizes if s.get("incremental") and "fraction_of_full" in s["incremental"]]
    if incs:
        # every size judged ("about 1%": at most 1.5x the data's fraction), and the small file again into the
        # replicated database, against the same file into the database it was made for
        parts = [f"{s['incremental']['fraction_of_full']:.1%} at {s['runs']:,} runs" for s in incs]
        ok = all(s["incremental"]["fraction_of_full"] <= 1.5 * s["incremental"]["data_fraction"] for s in incs)
        big = (report.get("replicated") or {}).get("incremental") or {}
        same = next((s for s in incs if s.get("extra_file_bytes") == big.get("extra_file_bytes")), None)
        if "wall_s" in big and same is not None:
            parts.append(f"{same['extra_runs']:,} runs into {report['replicated']['runs_in_db']:,} (replicated): "
                         f"{big['wall_s']['median']:.2f} s against {same['incremental']['wall_s']['median']:.2f} s "
                         f"into {same['runs']:,}")
        out.append(("1% more data costs ~1% of the time (at most 1.5% here)",
                    "of the full ingest's time for 1% more data: " + "; ".join(parts), "yes" if ok else "**no**"))
    else:
        out.append(("1% more data costs ~1% of the time", "not measured", "–"))
    return out


def merge(report: dict[str, Any], old: dict[str, Any], path: Path) -> None:
    """Sizes measured in an earlier run and not in this one are carried over, marked with where they came from."""
    have = {s["runs"] for s in report["sizes"]}
    name = Path(old.get("json_path") or path).name  # the run's own file, not latest.json (overwritten next)
    source = f"{name} ({old['machine']['date']})"
    for s in old["sizes"]:
        if s["runs"] not in have:
            report["sizes"].append({"carried_from": source, **s})
    report["sizes"].sort(key=lambda s: s["runs"])
    if not report.get("replicated") and old.get("replicated"):
        report["replicated"] = {"carried_from": source, **old["replicated"]}  # keep where it was first measured
    report["merged_from"] = {"file": name, "date": old["machine"]["date"],
                             "agentlens_code_hashes": old.get("agentlens_code_hashes", []),
                             "other_load": old.get("other_load"), "max_rss_gb": old.get("max_rss_gb")}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child_main(argv[1], argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10k,100k", help="comma-separated run counts (default 10k,100k)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions per measurement (default 3)")
    ap.add_argument("--budget", type=float, default=900,
                    help="seconds per measurement and size: fewer repetitions when the next would exceed it")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="raw JSON results (default bench/out)")
    ap.add_argument("--data", type=Path, default=gen.DEFAULT_OUT, help="generated files (default bench/data)")
    ap.add_argument("--results", type=Path, default=None, help="markdown report (default bench/RESULTS.md)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--query-repeat", type=int, default=9)
    ap.add_argument("--pandas-max-mb", type=int, default=None,
                    help="skip the pandas baseline above this file size (default: RAM / 10; it needs ~5x the file)")
    ap.add_argument("--replicate-to", type=gen.parse_count, default=1_000_000,
                    help="also time queries on the largest DB replicated to this many runs (0: off; default 1m)")
    ap.add_argument("--no-csv", action="store_true", help="skip the agent_runs CSV ingest")
    ap.add_argument("--max-rss-gb", type=float, default=None,
                    help="kill a measured process above this RSS, to protect the machine (default: 60%% of RAM)")
    ap.add_argument("--smoke", action="store_true", help="1k runs once, fast: checks the harness works")
    ap.add_argument("--agentlens-sees-pandas", action="store_true",
                    help="let the agentlens processes import pandas (pyarrow then imports it: ~0.8 s per process)")
    ap.add_argument("--render", type=Path, metavar="JSON", help="only rewrite the markdown from a raw JSON result")
    ap.add_argument("--merge", type=Path, metavar="JSON",
                    help="carry over from an earlier raw JSON result the sizes (and 1M-run queries) not measured now")
    a = ap.parse_args(argv)
    if a.smoke:
        a.sizes, a.repeat, a.query_repeat, a.replicate_to = "1k", 1, 3, 0
        a.results = a.results or a.out / "RESULTS-smoke.md"
    a.results = (a.results or HERE / "RESULTS.md").resolve()
    if a.render:
        a.results.write_text(render(json.loads(a.render.read_text())))
        log(f"rendered {a.results} from {a.render}")
        return
    a.out, a.data = a.out.resolve(), a.data.resolve()
    if a.pandas_max_mb is None:
        a.pandas_max_mb = max(50, int(mem_total_bytes() / 10 / MB))
    sizes = sorted(gen.parse_count(s) for s in a.sizes.split(",") if s.strip())
    if a.agentlens_sees_pandas:
        os.environ["AGENTLENS_BENCH_SEE_PANDAS"] = "1"
    global MAX_RSS_BYTES
    if a.max_rss_gb is None:
        a.max_rss_gb = round(0.6 * mem_total_bytes() / 2**30, 1) or 8.0
    MAX_RSS_BYTES = int(a.max_rss_gb * 2**30)

    t0 = time.perf_counter()
    a.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = a.out / ("smoke.json" if a.smoke else f"bench-{stamp}.json")
    report: dict[str, Any] = {
        "argv": " ".join(x.replace(str(ROOT) + os.sep, "") for x in argv),  # no machine paths in RESULTS.md
        "machine": machine(), "seed": a.seed, "query_repeat": a.query_repeat,
        "max_rss_gb": a.max_rss_gb, "agentlens_sees_pandas": bool(a.agentlens_sees_pandas),
        "sizes": [], "replicated": None,
        "json_path": str(json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT) else json_path),
    }
    work = Path(tempfile.mkdtemp(prefix="agentlens-bench-", dir=a.out))
    try:
        for runs in sizes:
            report["sizes"].append(bench_size(runs, a, work))
        done = [s["runs"] for s in report["sizes"] if s.get("queries")]
        if a.replicate_to and done and done[-1] < a.replicate_to:
            try:
                last = next(s for s in report["sizes"] if s["runs"] == done[-1])
                report["replicated"] = bench_replicated(work / f"agentlens-{done[-1]}.duckdb", done[-1],
                                                        a.replicate_to, a, work, ROOT / last["extra_file"])
            except ChildFailed as e:
                log(f"replicated queries FAILED: {e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["total_s"] = time.perf_counter() - t0
    if a.merge:
        merge(report, json.loads(a.merge.read_text()), a.merge)
    report["other_load"] = summarize(OTHER_LOAD or [0.0])
    report["agentlens_code_hashes"] = list(CODE_HASHES)
    json_path.write_text(json.dumps(report, indent=1, default=str))
    if not a.smoke:
        (a.out / "latest.json").write_text(json.dumps(report, indent=1, default=str))
    md = render(report)
    a.results.write_text(md)
    print(md)
    log(f"done in {report['total_s']:.0f} s: {a.results}, {json_path}")


if __name__ == "__main__":
    main()
