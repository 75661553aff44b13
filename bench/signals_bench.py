"""Golden signals and rollups at scale: how long they take on a database of N runs.

    .venv/bin/python bench/signals_bench.py --source agentlens.duckdb --runs 1m --days 30

The source database (any ingested agentlens database; default: bench/data/runs-10k.otlp.jsonl
ingested into the work folder, else sample_traces/) is replicated in SQL up to --runs runs spread
over --days days (new run ids, times shifted; the large text columns are left NULL since no signal
reads them). Then, each in this process, warm (second call) unless said:

- raw signals: total, by feature, per day, by feature per hour over one week; LLM calls per model;
- rollup at 1h: the first (everything), a second (nothing new), after 1% new runs in new hours,
  after 1% of the runs rebuilt by late data spread over the whole history;
- signals read from the rollups: total, by feature, per day, by feature per day.

Prints one line per measurement and writes the numbers as JSON (--out).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import agentlens  # noqa: E402
from agentlens.metrics import rollups as RU  # noqa: E402
from agentlens.metrics import signals as S  # noqa: E402

BLANK_RUNS = ("input", "output", "attributes")
BLANK_SPANS = ("input", "output", "attributes", "events", "tool_result", "tool_arguments", "tool_calls",
               "tool_definitions", "resource_attributes")


def parse_count(s: str) -> int:
    s = s.lower().strip()
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1], 1)
    return int(float(s[:-1] if s[-1] in "km" else s) * mult)


def replicate(src: Path, dst: Path, runs: int, days: float) -> dict[str, Any]:
    """dst = src's runs and spans copied until there are `runs` runs, spread over `days` days."""
    t0 = time.perf_counter()
    shutil.copyfile(src, dst)
    lens = agentlens.open(dst)  # migrates
    con = lens.con
    n0 = con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
    copies = max(1, -(-runs // n0))
    lo, hi = con.execute("SELECT min(started_at), max(started_at) FROM runs").fetchall()[0]
    span_s = max((hi - lo).total_seconds(), 1.0)
    step_s = max(days * 86400 / copies, 1.0)
    con.execute("CREATE TEMP TABLE k AS SELECT i, to_seconds((i * ?)::BIGINT) AS shift FROM range(1, ?) t(i)",
                [step_s, copies])
    run_cols = ", ".join(f"NULL AS {c}" for c in BLANK_RUNS)
    span_cols = ", ".join(f"NULL AS {c}" for c in BLANK_SPANS)
    con.execute(f"""INSERT INTO runs SELECT r.* REPLACE (r.run_id || '-' || k.i AS run_id,
        r.started_at + k.shift AS started_at, r.ended_at + k.shift AS ended_at, {run_cols}) FROM runs r, k""")  # noqa: S608 - fixed names
    con.execute(f"""INSERT INTO spans SELECT s.* REPLACE (s.run_id || '-' || k.i AS run_id,
        s.started_at + k.shift AS started_at, s.ended_at + k.shift AS ended_at, {span_cols})
        FROM spans s, k WHERE s.run_id NOT LIKE '%-%'""")  # noqa: S608 - fixed names
    con.execute("CHECKPOINT")
    n = con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
    spans = con.execute("SELECT count(*) FROM spans").fetchall()[0][0]
    lens.close()
    return {"runs": n, "spans": spans, "source_runs": n0, "copies": copies, "source_hours": span_s / 3600,
            "seconds": time.perf_counter() - t0}


def timed(fn, *args, **kw) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def warm(fn, *args, **kw) -> dict[str, float]:
    first, _ = timed(fn, *args, **kw)
    second, out = timed(fn, *args, **kw)
    return {"first_s": first, "warm_s": second, "rows": getattr(out, "height", None)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=None, help="an ingested agentlens database to replicate")
    ap.add_argument("--runs", type=parse_count, default=1_000_000)
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--work", type=Path, default=HERE / "out" / "signals")
    ap.add_argument("--out", type=Path, default=None, help="JSON results (default: WORK/signals.json)")
    a = ap.parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    src = a.source
    if src is None:
        src = a.work / "source.duckdb"
        if not src.exists():
            data = HERE / "data" / "runs-10k.otlp.jsonl"
            with agentlens.open(src) as lens:
                lens.ingest(data if data.exists() else ROOT / "sample_traces")
    db = a.work / "signals.duckdb"
    if db.exists():
        db.unlink()
    report: dict[str, Any] = {"when": dt.datetime.now(dt.UTC).isoformat(), "cpus": os.cpu_count(),
                              "load_avg": os.getloadavg()}
    report["data"] = replicate(src, db, a.runs, a.days)
    d = report["data"]
    print(f"database: {d['runs']:,} runs, {d['spans']:,} spans over {a.days:g} days "
          f"(built in {d['seconds']:.0f} s)", flush=True)
    lens = agentlens.open(db)
    lens.con.execute("SET enable_progress_bar = false")
    hi = lens.con.execute("SELECT max(started_at) FROM runs").fetchall()[0][0]
    week = (hi - dt.timedelta(days=7)).replace(minute=0, second=0, microsecond=0)
    m: dict[str, Any] = {}

    def show(name: str, r: dict[str, Any]) -> None:
        m[name] = r
        extra = f"  first {r['first_s']:.2f} s" if "first_s" in r else ""
        print(f"{name:52s} {r.get('warm_s', r.get('seconds', 0)):7.2f} s{extra}", flush=True)

    show("raw signals, total", warm(S.signals, lens))
    show("raw signals by feature", warm(S.signals, lens, by="feature"))
    show("raw signals per day", warm(S.signals, lens, every="1d"))
    show("raw signals by feature per hour, last 7 days", warm(S.signals, lens, by="feature", every="1h", since=week))
    show("raw LLM calls per model", warm(S.llm_calls, lens))
    for name, kw in (("rollup 1h: first (everything)", {}), ("rollup 1h: again (nothing new)", {})):
        s, summary = timed(RU.rollup, lens, "1h", **kw)
        show(name, {"seconds": s, "buckets": summary.buckets, "rows": summary.rows})
    # 1% new runs, in the hours after the last one
    n = lens.con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
    k = max(1, n // 100)
    lens.con.execute("""CREATE TEMP TABLE fresh AS SELECT run_id AS old, run_id || '-new' AS new FROM runs
                        ORDER BY started_at DESC LIMIT ?""", [k])
    lens.con.execute("""INSERT INTO runs SELECT r.* REPLACE (f.new AS run_id,
        r.started_at + INTERVAL 1 DAY AS started_at, r.ended_at + INTERVAL 1 DAY AS ended_at, now() AS ingested_at)
        FROM runs r JOIN fresh f ON f.old = r.run_id""")
    lens.con.execute("""INSERT INTO spans SELECT s.* REPLACE (f.new AS run_id,
        s.started_at + INTERVAL 1 DAY AS started_at, s.ended_at + INTERVAL 1 DAY AS ended_at)
        FROM spans s JOIN fresh f ON f.old = s.run_id""")
    s, summary = timed(RU.rollup, lens, "1h")
    show(f"rollup 1h: after 1% new runs ({k:,}) in new hours",
         {"seconds": s, "buckets": summary.buckets, "rows": summary.rows})
    # 1% of the runs rebuilt (late spans), anywhere in the history
    lens.con.execute("UPDATE runs SET ingested_at = now() + INTERVAL 1 SECOND "
                     "WHERE run_id IN (SELECT run_id FROM runs USING SAMPLE 1 PERCENT (bernoulli, 7))")
    s, summary = timed(RU.rollup, lens, "1h")
    show("rollup 1h: after 1% of runs rebuilt across all hours",
         {"seconds": s, "buckets": summary.buckets, "rows": summary.rows})
    show("rollup signals, total", warm(RU.signals, lens))
    show("rollup signals by feature", warm(RU.signals, lens, by="feature"))
    show("rollup signals per day", warm(RU.signals, lens, every="1d"))
    show("rollup signals by feature per day", warm(RU.signals, lens, by="feature", every="1d"))
    show("rollup LLM calls per model", warm(RU.calls, lens, "llm"))
    rows = lens.con.execute("SELECT count(*) FROM rollup_runs").fetchall()[0][0]
    print(f"rollup_runs rows: {rows:,} for {n + k:,} runs")
    report["measurements"] = m
    report["rollup_runs_rows"] = rows
    lens.close()
    out = a.out or a.work / "signals.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"load average during the run: {os.getloadavg()}  (wrote {out})")


if __name__ == "__main__":
    main()
