"""Is the run explorer responsive on a million runs? Times its queries on N synthetic runs.

    .venv/bin/python bench/run_explorer.py                # 1,000,000 runs, 5 repetitions
    .venv/bin/python bench/run_explorer.py --runs 100000

The runs are made by SQL straight into the `runs` table of a fresh database (the explorer reads only
`runs`, and `failures` for its failure-mode filter; ingesting a million traces is bench/run.py's
job): 30 days, 8 features, 2,000 customers, 5 models, 4% failed, costs and durations log-normal-ish,
3% of runs with a failure mode. Measured, as the median of --repeat: opening the widget (the first
page, the count and the dimension values), paging, sorting by cost, filtering (feature + status,
a time window, a cost range, a failure mode, a text search of input/output), and the same through
`agentlens.explore` alone. Prints a table and writes bench/out/run_explorer.json.
"""

from __future__ import annotations

import argparse
import json
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

FILL = """
INSERT INTO runs BY NAME
SELECT
  printf('%032x', i) AS run_id, 'otlp' AS source, 'support-agent' AS agent_name,
  TIMESTAMPTZ '2026-10-01 00:00:00+00' + to_microseconds((i * 2592000000000 // $n)::BIGINT) AS started_at,
  (100 + (hash(i) % 30000))::DOUBLE AS duration_ms,
  CASE WHEN hash(i * 7) % 25 = 0 THEN 'error' ELSE 'ok' END AS status,
  'user_' || (hash(i * 3) % 50000) AS user_id, 'sess_' || (i // 3) AS session_id,
  'cust_' || lpad((hash(i * 5) % 2000)::VARCHAR, 4, '0') AS customer_id,
  ['refund', 'shipping', 'billing', 'account', 'order_status', 'returns', 'loyalty', 'search'][(1 + hash(i * 11) % 8)::BIGINT]
    AS feature,
  'production' AS environment,
  ['gpt-4o', 'gpt-4o-mini', 'claude-3-5-sonnet', 'o4-mini', 'gemini-2.0-flash'][(1 + hash(i * 13) % 5)::BIGINT] AS model,
  (200 + hash(i * 17) % 20000)::BIGINT AS input_tokens, (5 + hash(i * 19) % 800)::BIGINT AS output_tokens,
  (hash(i * 23) % 100000) / 1e6 AS cost_usd, (1 + hash(i) % 6)::INTEGER AS llm_calls,
  (hash(i) % 5)::INTEGER AS tool_calls, (3 + hash(i) % 12)::INTEGER AS span_count,
  (CASE WHEN hash(i * 7) % 25 = 0 THEN 1 ELSE 0 END)::INTEGER AS error_count,
  'Hello, where is my order A-' || (10000 + hash(i * 29) % 90000) || '? It has not arrived.' AS input,
  'Your order ships tomorrow.' AS output, now() AS ingested_at
FROM range($n) t(i)
"""
FAILURES = """
INSERT INTO failures (run_id, mode, span_id, severity, explanation, evidence)
SELECT run_id, ['tool_error', 'timeout', 'rate_limited', 'refusal'][(1 + hash(run_id) % 4)::BIGINT], NULL, 'high',
       'synthetic', '{}'
FROM runs WHERE hash(run_id) % 33 = 0
"""


def median_time(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "run_explorer.json")
    args = ap.parse_args(argv)

    from agentlens.widgets import RunExplorer

    with tempfile.TemporaryDirectory() as tmp:
        lens = agentlens.open(Path(tmp) / "explorer.duckdb")
        t0 = time.perf_counter()
        lens.con.execute(FILL, {"n": args.runs})
        lens.con.execute(FAILURES)
        print(f"{args.runs:,} runs made in {time.perf_counter() - t0:.1f} s")
        RunExplorer(lens)  # warm up
        r: dict[str, float] = {}
        r["open widget"] = median_time(lambda: RunExplorer(lens, page_size=20), args.repeat)
        ex = RunExplorer(lens, page_size=20)
        pages = iter(range(1, 10_000))
        r["next page"] = median_time(lambda: ex.go_to_page(next(pages)), args.repeat)
        r["page 40,000"] = median_time(lambda: ex.go_to_page(40_000), args.repeat)
        flip = iter([True, False] * args.repeat)
        r["sort by cost"] = median_time(lambda: ex.sort_by("cost_usd", next(flip)), args.repeat)
        r["feature + status"] = median_time(lambda: ex.set_filter(replace=True, feature="refund", status="error"),
                                            args.repeat)
        r["one day"] = median_time(lambda: ex.set_filter(replace=True, since="2026-10-12", until="2026-10-13"),
                                   args.repeat)
        r["cost range"] = median_time(lambda: ex.set_filter(replace=True, min_cost_usd=0.09, max_cost_usd=0.095),
                                      args.repeat)
        r["failure mode"] = median_time(lambda: ex.set_filter(replace=True, failure_mode="timeout"), args.repeat)
        r["text search"] = median_time(lambda: ex.set_filter(replace=True, text="A-12345"), args.repeat)
        r["select run"] = median_time(lambda: ex.select_row(0), args.repeat)
        flt = explore.RunFilter(equals={"feature": "refund"}, status="error")
        r["find_runs (no widget)"] = median_time(lambda: explore.find_runs(lens, flt, "cost_usd", limit=20), args.repeat)
        r["count_runs (no widget)"] = median_time(lambda: explore.count_runs(lens, flt), args.repeat)
        lens.close()
    print(f"run explorer on {args.runs:,} runs (median of {args.repeat})")
    for k, v in r.items():
        print(f"  {k:<24} {v * 1000:8.1f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": args.runs, "repeat": args.repeat, "seconds": r}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
