"""Is `agentlens runs --search` fast on a million runs? The search index against a scan, in the same run.

    .venv/bin/python bench/search.py --db bench/data/runs-100k.duckdb              # 10 copies: 1M runs
    .venv/bin/python bench/search.py --db bench/data/runs-100k.duckdb --copies 1   # the database as it is

The database is one that `agentlens ingest` made of `bench/gen.py`'s OTLP (`gen.py bench/data --runs 100k`,
then `agentlens ingest bench/data/runs-100k.otlp.jsonl --db bench/data/runs-100k.duckdb`); it is copied,
and its runs and spans inserted again `--copies - 1` times under new run ids (same text, same
distribution: 100k runs make 1M runs and 10M spans), each copy in its own transaction as an ingest would.
Then, timed:

- **index build**: `explore.search.rebuild` of the whole database (and its size beside the database's);
- **incremental**: 1% more runs (a copy of 10k runs) inserted, then `sync` (what every ingest adds);
- per query (a rare error message, an order id, a common word, a phrase found nowhere), the median of
  `--repeat`: the **baseline**, a plain `ILIKE '%text%'` over every text column of runs and spans (what
  the explorer's search did on input and output, widened to everything a run holds; once by default, it
  takes seconds); the **search**
  through the library (`count_runs` + `find_runs` with `RunFilter(text=...)`, a page of 20, newest first:
  the page answered from the index a page at a time, the count from tantivy's count), and the same with
  the page's names and previews (`describe=True`, what `agentlens runs` shows); the **full path**,
  the same page and count after `search.prepare` collected every match (what every search did before pages
  came from the index: tantivy's matches all collected, joined to `runs`); the same two with `--status
  error` besides (**filtered**: its page from the index in rounds, its count by the full path); the search
  with the 1% of runs not yet indexed (**search + tail**); and the **scan** of every run's words with no
  index (`search.scan_only`, once: what a search costs when the index is missing). Beside them, the same
  page and count with no search, without and with the names and previews.

The ratios reported are baseline ÷ search and full path ÷ search, each measured here. Prints a table and
writes bench/out/search.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import agentlens  # noqa: E402
from agentlens import explore  # noqa: E402
from agentlens.explore import search  # noqa: E402

QUERIES = {
    "rare error message": "503 Service Unavailable",
    "an order id": "ord_000123",
    "a common word": "refund",
    "found nowhere": "insufficient merchant balance",
}
COPY_RUNS = """
INSERT INTO runs SELECT * REPLACE (run_id || $suffix AS run_id, now() AS ingested_at) FROM runs
WHERE run_id NOT LIKE '%-%' AND ($limit IS NULL OR hash(run_id) % 100 < $limit)
"""
COPY_SPANS = """
INSERT INTO spans SELECT * REPLACE (run_id || $suffix AS run_id) FROM spans
WHERE run_id NOT LIKE '%-%' AND ($limit IS NULL OR hash(run_id) % 100 < $limit)
"""
BASELINE = """
SELECT count(*) FROM runs WHERE input ILIKE $p OR output ILIKE $p OR run_id IN (
  SELECT run_id FROM spans WHERE input ILIKE $p OR output ILIKE $p OR tool_arguments ILIKE $p
    OR tool_result ILIKE $p OR status_message ILIKE $p OR events::VARCHAR ILIKE $p)
"""


def median_time(fn: Any, repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def copy_runs(lens: Any, suffix: str, limit: int | None = None) -> None:
    con = lens.con
    con.execute("BEGIN")
    con.execute(COPY_RUNS, {"suffix": suffix, "limit": limit})
    con.execute(COPY_SPANS, {"suffix": suffix, "limit": limit})
    con.execute("COMMIT")


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True, help="an ingested database of bench/gen.py's runs")
    ap.add_argument("--copies", type=int, default=10, help="the runs this many times (default 10: 100k -> 1M)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline-repeat", type=int, default=1, help="repetitions of the (slow) ILIKE scan")
    ap.add_argument("--work", type=Path, default=None, help="folder for the copy (default: a temporary one)")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "search.json")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        db = Path(tmp) / "search.duckdb"
        shutil.copy(args.db, db)
        lens = agentlens.open(db)
        shutil.rmtree(search.index_path(lens) or Path(tmp) / "none", ignore_errors=True)
        t0 = time.perf_counter()
        for k in range(1, args.copies):
            copy_runs(lens, f"-{k}")
        runs, spans = lens.one("SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM spans)") or (0, 0)
        print(f"{runs:,} runs, {spans:,} spans made in {time.perf_counter() - t0:.0f} s")
        r: dict[str, Any] = {"runs": runs, "spans": spans, "repeat": args.repeat}
        lens.con.execute("CHECKPOINT")
        r["database_bytes"] = db.stat().st_size

        t0 = time.perf_counter()
        st = search.rebuild(lens)
        r["index_build_s"] = time.perf_counter() - t0
        assert st.path is not None
        r["index_bytes"] = folder_bytes(st.path)
        print(f"index of {st.documents:,} runs built in {r['index_build_s']:.0f} s, "
              f"{r['index_bytes'] / 1e6:.0f} MB (database {r['database_bytes'] / 1e6:.0f} MB)")

        def plain(describe: bool = False) -> int:  # `agentlens runs` with no search: a page of 20 and the count
            explore.find_runs(lens, explore.RunFilter(), limit=20, describe=describe)
            return explore.count_runs(lens, explore.RunFilter())

        r["no_search_s"], _ = median_time(plain, args.repeat)
        r["no_search_described_s"], _ = median_time(lambda: plain(True), args.repeat)
        print(f"no search: a page of 20 runs and the count {r['no_search_s'] * 1000:.0f} ms, "
              f"with the names and previews {r['no_search_described_s'] * 1000:.0f} ms")
        queries: dict[str, dict[str, Any]] = {}
        for label, text in QUERIES.items():
            flt = explore.RunFilter(text=text)

            def searched(flt: explore.RunFilter = flt, describe: bool = False) -> int:
                n = explore.count_runs(lens, flt)
                explore.find_runs(lens, flt, limit=20, describe=describe)
                return n

            def fresh(flt: explore.RunFilter = flt, describe: bool = False) -> int:
                search.forget(lens)  # each repetition searches again
                return searched(flt, describe)

            def full(flt: explore.RunFilter = flt) -> int:
                search.forget(lens)
                search.prepare(lens, str(flt.text))  # every match collected: the page and count read them
                return searched(flt)

            pattern = f"%{text}%"
            base_s, base_n = median_time(lambda p=pattern: lens.one(BASELINE, {"p": p})[0], args.baseline_repeat)
            search_s, n = median_time(fresh, args.repeat)
            full_s, full_n = median_time(full, args.repeat)
            assert full_n == n, (full_n, n)
            cli_s, _ = median_time(lambda flt=flt: fresh(flt, True), args.repeat)
            err = flt.with_(status="error")
            ferr_s, nerr = median_time(lambda err=err: fresh(err), args.repeat)
            fullerr_s, _ = median_time(lambda err=err: full(err), args.repeat)
            queries[label] = {"text": text, "baseline_s": base_s, "baseline_matches": base_n,
                              "search_s": search_s, "matches": n, "full_path_s": full_s, "described_s": cli_s,
                              "filtered_s": ferr_s, "filtered_full_path_s": fullerr_s, "filtered_matches": nerr}
            print(f"  {label:<20} baseline {base_s * 1000:9.0f} ms ({base_n:,})   search {search_s * 1000:7.1f} ms "
                  f"({n:,})   x{base_s / search_s:,.0f}   full path {full_s * 1000:7.1f} ms (x{full_s / search_s:,.1f})"
                  f"   with names and previews {cli_s * 1000:7.1f} ms"
                  f"   --status error: {ferr_s * 1000:7.1f} ms, full path {fullerr_s * 1000:7.1f} ms "
                  f"(x{fullerr_s / ferr_s:,.1f}) ({nerr:,})")

        # 1% more runs: the sync an ingest adds, and a search while they are not indexed yet
        copy_runs(lens, "-new", 1)
        search.forget(lens)
        for label, text in QUERIES.items():
            flt = explore.RunFilter(text=text)
            tail_s, n = median_time(lambda flt=flt: (search.forget(lens), explore.count_runs(lens, flt))[1],
                                    args.repeat)
            queries[label]["search_tail_s"] = tail_s
            queries[label]["matches_tail"] = n
            print(f"  {label:<20} search + 1% not indexed {tail_s * 1000:7.0f} ms ({n:,})")
        t0 = time.perf_counter()
        st = search.sync(lens)
        r["sync_1pct_s"] = time.perf_counter() - t0
        print(f"sync of 1% more runs: {r['sync_1pct_s']:.1f} s")
        label, text = "rare error message", QUERIES["rare error message"]
        t0 = time.perf_counter()
        n = search.scan_only(lens, text)
        queries[label]["scan_only_s"] = time.perf_counter() - t0
        print(f"  {label:<20} scan of every run's words (no index) {queries[label]['scan_only_s']:.1f} s ({n:,})")
        r["queries"] = queries
        lens.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
