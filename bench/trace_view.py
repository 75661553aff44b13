"""How long a 2,000-span trace view takes: target under one second.

    .venv/bin/python bench/trace_view.py                 # 2,000 spans, 7 repetitions
    .venv/bin/python bench/trace_view.py --spans 5000 --repeat 5 --no-browser

Generates one seeded run of N spans (an agent root; steps of chain -> LLM call with ~1.5 KB of
messages, tool call with arguments and result, retriever, and a sub-agent with its own LLM and tool
calls; 5% of tool calls fail with an exception event), ingests it into a fresh database, then
measures, as the median of --repeat runs:

- `layout`: the depth-first waterfall layout query (trace.trace_layout);
- `figure`: building the plotly waterfall from it (plots.trace_waterfall);
- `trace_view`: the whole notebook widget, TraceView(lens, run_id): the run header, layout,
  failures, the waterfall as a plotly output and the first span's detail panel (what a user waits for in Jupyter);
- `select_span`: selecting another span (detail panel + moving the outline, the waterfall redrawn);
- `report_trace`: the report's trace section with every span's details, rendered to HTML;
- in headless Chromium when /usr/bin/chromium and playwright are there: `browser_load` (opening
  the report of that run until every figure is drawn) and `browser_plot` (Plotly.newPlot of the
  2,000-span waterfall alone).

Prints a table and writes bench/out/trace_view.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import agentlens  # noqa: E402
from agentlens.explore.trace import trace_layout  # noqa: E402
from agentlens.present import plots  # noqa: E402
from agentlens.present.report import build_report  # noqa: E402

NS0 = 1_795_000_000_000_000_000
WORDS = ("order refund shipping tracking invoice account customer parcel warehouse label return "
         "payment card address delivery status carrier update please thanks urgent").split()


def _kv(k: str, v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"key": k, "value": {"boolValue": v}}
    if isinstance(v, int):
        return {"key": k, "value": {"intValue": str(v)}}
    if isinstance(v, float):
        return {"key": k, "value": {"doubleValue": v}}
    return {"key": k, "value": {"stringValue": str(v)}}


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def generate(n_spans: int, seed: int = 7) -> tuple[str, dict[str, Any]]:
    """One OTLP document holding a single run of exactly n_spans spans."""
    rng = random.Random(seed)
    trace = f"{rng.getrandbits(128):032x}"
    ids = iter(f"{i + 1:016x}" for i in range(n_spans + 1))
    spans: list[dict[str, Any]] = []
    t = NS0

    def add(parent: str | None, name: str, start: int, dur: int, attrs: dict[str, Any],
            error: bool = False) -> str:
        sid = next(ids)
        s: dict[str, Any] = {"traceId": trace, "spanId": sid, "name": name, "kind": 1,
                             "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + dur),
                             "attributes": [_kv(k, v) for k, v in attrs.items()], "status": {}}
        if parent:
            s["parentSpanId"] = parent
        if error:
            s["status"] = {"code": 2, "message": "upstream returned 503"}
            s["events"] = [{"name": "exception", "timeUnixNano": str(start + dur), "attributes": [
                _kv("exception.type", "ServiceUnavailable"), _kv("exception.message", "upstream returned 503"),
                _kv("exception.stacktrace", "Traceback (most recent call last):\n" + _text(rng, 60))]}]
        spans.append(s)
        return sid

    root = add(None, "invoke_agent support", t, 0, {"gen_ai.operation.name": "invoke_agent",
                                                     "gen_ai.agent.name": "support", "feature": "bench"})
    step = 0
    while len(spans) + 8 <= n_spans:
        step += 1
        t0 = t
        chain = add(root, f"step {step}", t, 0, {"traceloop.span.kind": "workflow"})
        msgs = json.dumps([{"role": "system", "parts": [{"type": "text", "content": _text(rng, 40)}]},
                           {"role": "user", "parts": [{"type": "text", "content": _text(rng, 200)}]}])
        llm_attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                     "gen_ai.provider.name": "openai", "gen_ai.input.messages": msgs,
                     "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                         {"type": "text", "content": _text(rng, 30)}]}]),
                     "gen_ai.usage.input_tokens": rng.randint(200, 3000), "gen_ai.usage.output_tokens": rng.randint(5, 300)}
        d = rng.randint(300, 2500) * 1_000_000
        add(chain, "chat gpt-4o-mini", t, d, llm_attrs)
        t += d
        d = rng.randint(20, 400) * 1_000_000
        add(chain, "execute_tool get_order", t, d,
            {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_order",
             "gen_ai.tool.call.arguments": json.dumps({"order_id": f"A-{rng.randint(10000, 99999)}"}),
             "gen_ai.tool.call.result": json.dumps({"status": "shipped", "note": _text(rng, 40)})},
            error=rng.random() < 0.05)
        t += d
        d = rng.randint(20, 200) * 1_000_000
        add(chain, "retrieve kb", t, d, {"openinference.span.kind": "RETRIEVER", "input.value": _text(rng, 12)})
        t += d
        sub = add(chain, "invoke_agent checker", t, 0, {"gen_ai.operation.name": "invoke_agent"})
        for name in ("chat gpt-4o-mini", "execute_tool lookup_customer", "chat gpt-4o-mini"):
            d = rng.randint(50, 1200) * 1_000_000
            attrs = dict(llm_attrs) if name.startswith("chat") else {
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_customer",
                "gen_ai.tool.call.arguments": '{"customer_id": "c1"}', "gen_ai.tool.call.result": _text(rng, 30)}
            add(sub, name, t, d, attrs)
            t += d
        spans[-4]["endTimeUnixNano"] = str(t)  # the sub-agent spans its children
        spans[-8]["endTimeUnixNano"] = str(t)  # the chain too
        del t0
    while len(spans) < n_spans:
        add(root, "guardrail check", t, 5_000_000, {"openinference.span.kind": "GUARDRAIL"})
        t += 5_000_000
    spans[0]["endTimeUnixNano"] = str(t)
    return trace, {"resourceSpans": [{"resource": {"attributes": [_kv("service.name", "bench")]},
                                      "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}]}]}


def median_time(fn: Any, repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def browser(report_path: Path, repeat: int) -> dict[str, float] | None:
    chromium = Path("/usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not chromium.exists():
        return None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    loads, plots_ms = [], []
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=str(chromium), args=flags,
                                                   headless=True, viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        for _ in range(repeat):
            page.goto(report_path.as_uri(), wait_until="load")
            page.wait_for_function("document.querySelector('[data-trace-key] .main-svg') !== null")
            loads.append(page.evaluate("performance.now()"))
            plots_ms.append(page.evaluate("""async () => {
                const gd = document.querySelector('[data-trace-key]');
                const t0 = performance.now();
                await Plotly.newPlot(gd, gd.data, gd.layout);
                return performance.now() - t0; }"""))
        ctx.close()
    return {"browser_load": statistics.median(loads) / 1000, "browser_plot": statistics.median(plots_ms) / 1000}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spans", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "trace_view.json")
    args = ap.parse_args(argv)

    from agentlens.widgets import TraceView

    with tempfile.TemporaryDirectory() as tmp:
        trace, doc = generate(args.spans)
        src = Path(tmp) / "big.otlp.json"
        src.write_text(json.dumps(doc))
        lens = agentlens.open(Path(tmp) / "bench.duckdb")
        lens.ingest(src)
        n = lens.sql("SELECT count(*) AS n FROM spans WHERE run_id = ?", [trace])["n"][0]
        TraceView(lens, trace)  # warm up: imports, the widget classes, DuckDB caches
        layout = trace_layout(lens, trace)
        results: dict[str, float] = {}
        results["layout"], layout = median_time(lambda: trace_layout(lens, trace), args.repeat)
        results["figure"], _ = median_time(lambda: plots.trace_waterfall(layout), args.repeat)
        results["trace_view"], view = median_time(lambda: TraceView(lens, trace), args.repeat)
        ids = layout["span_id"].to_list()
        picks = iter(ids[len(ids) // 2:] * 2)
        results["select_span"], _ = median_time(lambda: view.select_span(next(picks)), args.repeat)
        report_file = Path(tmp) / "report.html"
        results["report_trace"], _ = median_time(
            lambda: build_report(lens, run_ids=[trace], sections=(
                __import__("agentlens.present.report", fromlist=["traces_section"]).traces_section,)).save(report_file),
            max(1, args.repeat // 2))
        if not args.no_browser:
            b = browser(report_file, max(1, args.repeat // 2))
            if b:
                results.update(b)
        size = report_file.stat().st_size
        lens.close()

    print(f"trace view of one run with {n:,} spans (median of {args.repeat}; report and browser: "
          f"{max(1, args.repeat // 2)})")
    for k, v in results.items():
        print(f"  {k:<14} {v * 1000:9.1f} ms")
    print(f"  report file    {size / 1e6:9.1f} MB")
    verdict = "under" if results["trace_view"] < 1.0 else "OVER"
    print(f"TraceView: {results['trace_view']:.3f} s, {verdict} the 1 s target")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"spans": int(n), "repeat": args.repeat, "seconds": results,
                                    "report_bytes": size}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
