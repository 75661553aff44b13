"""The Queries table on ClickHouse (chdb, in-process) beside DuckDB, at many runs, and ingest throughput into
a ClickHouse store. Ratios against DuckDB measured in the same run.

    python bench/scale.py --runs 10m              # queries at 10M runs (~100M spans): hours of disk and CPU
    python bench/scale.py --runs 1m --base 10k    # a 10k-run ingest replicated to 1M runs in each engine
    python bench/scale.py --smoke                 # 10k runs, once: checks the harness

How: `bench/gen.py` writes `--base` runs of OTLP; they are ingested into DuckDB (agentlens) and moved to
ClickHouse (`agentlens.scale.migrate`); then each engine replicates its own rows to `--runs` runs (new run
ids, start times shifted by one hour per copy) with one INSERT ... SELECT per table. The replicated spans
keep every column the queries read and leave the long text out (input, output, attributes, events, tool
payloads: NULL in the copies; the base rows keep theirs), which keeps 100M spans on this machine's disk; no
query of the table reads those columns. Each query then runs through the library function a user calls
(bench/run.py's QUERY_LABELS; on ClickHouse the trace layout runs in DuckDB on the run's rows fetched from
ClickHouse), in a fresh process per engine: the first call and the median of `--repeat` more; then the
terminal's commands (`agentlens runs`, `session`, `compare`: TERMINAL_LABELS) the same way. `runs --search` is
not timed here: the replicated copies have no span text, and neither the DuckDB index nor the ClickHouse
words were made for them (bench/search.py times the DuckDB search at 1M runs).

Ingest: the same file ingested into a DuckDB database and into a ClickHouse store (runs built in the work
database, then shipped), one process each; and `--procs N` processes building their share of the runs in
work databases of their own at once (the per-run work), then shipping them: chdb lets one process at a
time hold its data folder, so here the shipping (`store migrate` of each work database, the search's words
included) is one process after the other; a server takes the inserts of all of them at once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import QUERY_LABELS  # noqa: E402 - the Queries table of bench/run.py

SKIP: tuple[str, ...] = ()  # every query of the table runs on both (the trace layout: per-run, in DuckDB)

DUCK_TEXT = ("input", "output", "attributes", "events", "resource_attributes", "tool_arguments", "tool_result",
             "tool_calls", "tool_definitions", "status_message")


def parse_n(s: str) -> int:
    s = s.lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1], 1)
    return int(float(s.rstrip("km")) * mult)


def sh(*args: str) -> None:
    subprocess.run(args, check=True)


def child(task: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", task, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench/scale.py: {task} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- children -----------------------------------------------------------------------------------------------
def c_ingest(db: str, *files: str) -> dict[str, Any]:
    import agentlens.api as api

    t = time.perf_counter()
    lens = api.Lens(db, serve=False, work_db=os.environ.get("AGENTLENS_WORK_DB"))
    lens.ingest(*files)
    lens.close()
    return {"seconds": time.perf_counter() - t}


def c_migrate(src: str, url: str) -> dict[str, Any]:
    import agentlens.api as api
    from agentlens.scale import connect
    from agentlens.scale.migrate import migrate

    t = time.perf_counter()
    from agentlens.explore.search import run_words

    duck = api.Lens(src, serve=False, read_only=True)
    moved = migrate(duck.con, connect(url), words=run_words)  # the search's words too, as an ingest ships them
    return {"seconds": time.perf_counter() - t, "rows": moved.tables}


def c_replicate_duck(db: str, factor: str) -> dict[str, Any]:
    import duckdb

    from agentlens import schema

    t = time.perf_counter()
    con = duckdb.connect(db)
    con.execute("SET preserve_insertion_order = false")
    for table, cols in (("runs", schema.RUN_COLUMNS), ("spans", schema.SPAN_COLUMNS),
                        ("failures", schema.FAILURE_COLUMNS)):
        sel = []
        for c in cols:
            if c.name == "run_id":
                sel.append("x.run_id || '-' || k.k AS run_id")
            elif c.type == "TIMESTAMPTZ" and c.name in ("started_at", "ended_at"):
                sel.append(f"x.{c.name} + to_hours(k.k) AS {c.name}")
            elif table == "spans" and c.name in DUCK_TEXT:
                sel.append(f"NULL AS {c.name}")
            else:
                sel.append(f"x.{c.name}")
        con.execute(f"CREATE TEMP TABLE base AS SELECT * FROM {table}")  # noqa: S608 - fixed names
        con.execute(f"INSERT INTO {table} SELECT {', '.join(sel)} FROM base x, "  # noqa: S608 - fixed names
                    "range(1, ?) k(k)", [int(factor)])
        con.execute("DROP TABLE base")
    con.execute("CHECKPOINT")
    n = con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
    con.close()
    return {"seconds": time.perf_counter() - t, "runs": n}


def c_replicate_ch(url: str, factor: str) -> dict[str, Any]:
    from agentlens import schema
    from agentlens.scale import connect

    t = time.perf_counter()
    ch = connect(url)
    for table, cols in (("runs", schema.RUN_COLUMNS), ("spans", schema.SPAN_COLUMNS),
                        ("failures", schema.FAILURE_COLUMNS)):
        sel = []
        for c in cols:
            if c.name == "run_id":
                sel.append("concat(x.run_id, '-', toString(k.number)) AS run_id")
            elif c.name in ("started_at", "ended_at"):
                sel.append(f"x.{c.name} + toIntervalHour(k.number) AS {c.name}")
            elif table == "spans" and c.name in DUCK_TEXT:
                sel.append(f"NULL AS {c.name}")
            else:
                sel.append(f"x.{c.name}")
        names = ", ".join(f"`{c.name}`" for c in cols)
        hidden = ", _version, _marker" if table == "failures" else ", _version"
        ch.engine.command(
            f"INSERT INTO {table}_rows ({names}{hidden}) SELECT {', '.join(sel)}{hidden.replace(', ', ', x.')} "  # noqa: S608 - fixed names
            f"FROM {table}_rows x CROSS JOIN (SELECT number FROM numbers(1, {int(factor) - 1})) k")
    for table in ("runs_rows", "spans_rows", "failures_rows"):  # merged, as a store some hours old would be
        ch.engine.command(f"OPTIMIZE TABLE {table} FINAL")
    n = ch.native("SELECT count() AS n FROM runs")["n"][0]
    return {"seconds": time.perf_counter() - t, "runs": int(n)}


def c_queries(target: str, repeat: str) -> dict[str, Any]:
    from run import _query_calls

    import agentlens.api as api

    calls = {k: v for k, v in _query_calls().items() if k not in SKIP}
    lens = api.Lens(target, serve=False, read_only=True)
    run_ids = lens.runs(limit=5)["run_id"].to_list()
    out: dict[str, Any] = {}
    for key, call in calls.items():
        times = []
        for i in range(1 + int(repeat)):
            t = time.perf_counter()
            call(lens, run_ids[i % len(run_ids)])
            times.append(time.perf_counter() - t)
        out[key] = {"first_s": times[0], "median_s": statistics.median(times[1:])}
    return out


# The terminal's commands (issue 22) at the same size: what `agentlens runs`, `session` and `compare` run.
TERMINAL_LABELS = {
    "runs_cmd": "`agentlens runs` (`find_runs(limit=20, describe=True)` + `count_runs`)",
    "runs_filtered": "`agentlens runs --status error --min-cost 0.001 --sort cost_usd`",
    "session": "`agentlens session ID` (`session.session`, a session of 100 copies of one)",
    "compare": "`agentlens compare --dimension feature --values A,B` (`compare.compare_values`)",
}


def c_terminal(target: str, repeat: str) -> dict[str, Any]:
    import agentlens.api as api
    from agentlens.explore import compare, runs, session

    lens = api.Lens(target, serve=False, read_only=True)
    # statements the ClickHouse store runs (in the conformance record): the most common values
    sess = next(v for v in runs.dimension_values(lens, "session_id", limit=3)["value"] if v != runs.NONE_VALUE)
    feats = [v for v in runs.dimension_values(lens, "feature", limit=3)["value"] if v != runs.NONE_VALUE]
    err = runs.RunFilter(status="error", min_cost_usd=0.001)
    calls = {
        "runs_cmd": lambda: (runs.find_runs(lens, limit=20, describe=True), runs.count_runs(lens)),
        "runs_filtered": lambda: (runs.find_runs(lens, err, sort="cost_usd", limit=20, describe=True),
                                  runs.count_runs(lens, err)),
        "session": lambda: session.session(lens, sess),
        "compare": lambda: compare.compare_values(lens, "feature", feats[0], feats[-1]),
    }
    out: dict[str, Any] = {}
    for key, call in calls.items():
        times = []
        for _ in range(1 + int(repeat)):
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)
        out[key] = {"first_s": times[0], "median_s": statistics.median(times[1:])}
    return out


def c_search_ch(duck: str, url: str, factor: str, repeat: str) -> dict[str, Any]:
    """`runs --search` on the ClickHouse store at full size: the base runs' words made from the DuckDB database
    (explore.search.run_words, as `store migrate` does), replicated as the runs were (the copies' words those of
    their original: the copies' spans have no text, the words stand for what an ingest would have shipped)."""
    import duckdb
    from search import QUERIES  # bench/search.py's queries

    import agentlens.api as api
    from agentlens.explore import runs
    from agentlens.explore import search as S
    from agentlens.explore.search import run_words
    from agentlens.scale import connect
    from agentlens.scale import search as ch_search

    t = time.perf_counter()
    ch = connect(url)
    if ch.native("SELECT count() AS n FROM run_words_rows")["n"][0] == 0:
        con = duckdb.connect(duck, read_only=True)
        ch_search.write(ch, run_words(con, "SELECT run_id FROM runs WHERE run_id NOT LIKE '%-%'"), 1)
        con.close()
        ch.engine.command(f"INSERT INTO run_words_rows SELECT concat(run_id, '-', toString(k.number)), ingested_at, "  # noqa: S608 - an int
                          f"words, _version FROM run_words_rows CROSS JOIN (SELECT number FROM numbers(1, "
                          f"{int(factor) - 1})) k WHERE run_id NOT LIKE '%-%'")
        ch.engine.command("OPTIMIZE TABLE run_words_rows FINAL")
    out: dict[str, Any] = {"words_s": time.perf_counter() - t}
    ch.close()
    lens = api.Lens(url, serve=False, read_only=True)
    for label, text in QUERIES.items():
        flt = runs.RunFilter(text=text)
        times, n = [], 0
        for _ in range(1 + int(repeat)):
            S.forget(lens)  # search again each time (a page and its count share one search)
            t = time.perf_counter()
            n = runs.count_runs(lens, flt)
            runs.find_runs(lens, flt, limit=20)
            times.append(time.perf_counter() - t)
        out[label] = {"first_s": times[0], "median_s": statistics.median(times[1:]), "matches": n}
    return out


CHILDREN = {"search_ch": c_search_ch, "ingest": c_ingest, "migrate": c_migrate, "replicate_duck": c_replicate_duck,
            "replicate_ch": c_replicate_ch, "queries": c_queries, "terminal": c_terminal}


# --- the run ------------------------------------------------------------------------------------------------------
def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(CHILDREN[sys.argv[2]](*sys.argv[3:])))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="10m")
    ap.add_argument("--base", default="10k")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default=str(HERE / "data" / "scale"))
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="go on from the stages a run of the same --work finished")
    a = ap.parse_args()
    if a.smoke:
        a.runs, a.base, a.repeat = "10k", "10k", 1
    base, total = parse_n(a.base), parse_n(a.runs)
    factor = max(1, total // base)
    work = Path(a.work)
    state = work / "results.json"
    res: dict[str, Any] = {"base_runs": base, "runs": base * factor, "cores": os.cpu_count()}
    if a.reuse and state.exists():
        res = json.loads(state.read_text())
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    data = work / "data"

    def stage(name: str, fn: Any) -> None:  # each stage once; the results kept after each
        if name not in res:
            res[name] = fn()
            state.write_text(json.dumps(res, indent=1))

    if not (data.exists() and a.reuse):
        sh(sys.executable, str(HERE / "gen.py"), str(data), "--runs", str(base))
    otlp = next(data.glob("*.otlp.jsonl"))

    if not a.skip_ingest and "ingest_parallel" not in res:
        for old in ("i-duck.duckdb", "i-work.duckdb", "i-ch", "i-par", *(f"w{p}.duckdb" for p in range(a.procs))):
            shutil.rmtree(work / old, ignore_errors=True) if (work / old).is_dir() else (work / old).unlink(missing_ok=True)
        # ingest throughput: DuckDB, a ClickHouse store (work database + ship), N processes building at once
        res["ingest_duckdb"] = child("ingest", str(work / "i-duck.duckdb"), str(otlp))
        os.environ["AGENTLENS_WORK_DB"] = str(work / "i-work.duckdb")
        res["ingest_clickhouse"] = child("ingest", f"clickhouse+chdb://{work / 'i-ch'}", str(otlp))
        half = parse_n(a.base) // a.procs
        parts = []
        for p in range(a.procs):
            sh(sys.executable, str(HERE / "gen.py"), str(work / f"part{p}"), "--runs", str(half),
               "--offset", str(p * half))
            parts.append(next((work / f"part{p}").glob("*.otlp.jsonl")))
        t = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, __file__, "--child", "ingest", str(work / f"w{p}.duckdb"),
                                   str(parts[p])], stdout=subprocess.DEVNULL) for p in range(a.procs)]
        for pr in procs:
            assert pr.wait() == 0
        build = time.perf_counter() - t
        ship = [child("migrate", str(work / f"w{p}.duckdb"), f"clickhouse+chdb://{work / 'i-par'}")["seconds"]
                for p in range(a.procs)]
        res["ingest_parallel"] = {"procs": a.procs, "build_s": build, "ship_s": ship, "runs": half * a.procs}
        del os.environ["AGENTLENS_WORK_DB"]

        state.write_text(json.dumps(res, indent=1))

    duck = str(work / "q.duckdb")
    url = f"clickhouse+chdb://{work / 'q-ch'}"
    stage("ingest_q", lambda: child("ingest", duck, str(otlp)))
    stage("migrate", lambda: child("migrate", duck, url))
    if factor > 1:
        stage("replicate_duckdb", lambda: child("replicate_duck", duck, str(factor)))
        stage("replicate_clickhouse", lambda: child("replicate_ch", url, str(factor)))
    stage("queries_duckdb", lambda: child("queries", duck, str(a.repeat)))
    stage("queries_clickhouse", lambda: child("queries", url, str(a.repeat)))
    stage("terminal_duckdb", lambda: child("terminal", duck, str(a.repeat)))
    stage("terminal_clickhouse", lambda: child("terminal", url, str(a.repeat)))
    stage("search_clickhouse", lambda: child("search_ch", duck, url, str(factor), str(a.repeat)))
    res["disk_gb"] = {"duckdb": Path(duck).stat().st_size / 1e9,
                      "clickhouse": sum(f.stat().st_size for f in (work / "q-ch").rglob("*") if f.is_file()) / 1e9}
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / f"scale-{a.runs}.json").write_text(json.dumps(res, indent=1))
    print(render(res))


def render(res: dict[str, Any]) -> str:
    lines = [f"Queries at {res['runs']:,} runs ({res['base_runs']:,} ingested, replicated), {res['cores']} cores:", "",
             "| query | DuckDB first / median (ms) | ClickHouse (chdb) first / median (ms) | ClickHouse ÷ DuckDB (median) |",
             "|---|---|---|---|"]
    for dk, ck, labels in (("queries_duckdb", "queries_clickhouse", QUERY_LABELS),
                           ("terminal_duckdb", "terminal_clickhouse", TERMINAL_LABELS)):
        d, c = res.get(dk, {}), res.get(ck, {})
        for k in d:
            if k not in c:
                continue
            lines.append(f"| {labels[k]} | {d[k]['first_s'] * 1e3:,.0f} / {d[k]['median_s'] * 1e3:,.0f} | "
                         f"{c[k]['first_s'] * 1e3:,.0f} / {c[k]['median_s'] * 1e3:,.0f} | "
                         f"{c[k]['median_s'] / d[k]['median_s']:.2f} |")
    if "search_clickhouse" in res:
        sc = {k: v for k, v in res["search_clickhouse"].items() if isinstance(v, dict)}
        lines += ["", f"`runs --search` on ClickHouse at {res['runs']:,} runs (a page of 20 and the count): " + "; ".join(
            f"{k} ({v['matches']:,} runs) {v['first_s'] * 1e3:,.0f} / {v['median_s'] * 1e3:,.0f} ms"
            for k, v in sc.items())]
    if "ingest_duckdb" in res:
        n = res["base_runs"]
        dk, ck, par = res["ingest_duckdb"]["seconds"], res["ingest_clickhouse"]["seconds"], res["ingest_parallel"]
        lines += ["", f"Ingest of {n:,} runs: DuckDB {dk:.1f} s ({n / dk:,.0f} runs/s); ClickHouse store (work "
                  f"database + ship) {ck:.1f} s ({n / ck:,.0f} runs/s, {ck / dk:.2f}x DuckDB's time); "
                  f"{par['procs']} processes building at once {par['build_s']:.1f} s, then shipping one after "
                  f"the other {' + '.join(f'{s:.1f}' for s in par['ship_s'])} s"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
