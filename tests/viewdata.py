"""Small hand-built traces for the widget, report and browser tests (expected values are worked out
by hand in the tests from the numbers here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import agentlens
from conftest import doc, jsonl, span

NS = 1_795_000_000_000_000_000  # 2026-11-18T...Z
S = 1_000_000_000
MS = 1_000_000

# The nested run: root agent 0-10 s; an LLM call, a failing tool (exception event), a second LLM call,
# and a chain with a retriever below it (depth 2).
NESTED = "0af7651916cd43dd8448eb211c80319c"
ROOT, LLM1, TOOL, LLM2, CHAIN, RETR = ("a000000000000001", "a000000000000002", "a000000000000003",
                                       "a000000000000004", "a000000000000005", "a000000000000006")

# The malicious run: every text field an attacker controls carries markup that would run if rendered.
EVIL = "0bf7651916cd43dd8448eb211c80319c"
EVIL_ROOT, EVIL_LLM, EVIL_TOOL = "b000000000000001", "b000000000000002", "b000000000000003"
SCRIPT = "<script>window.__xss = 1</script>"
IMG = '<img src=x onerror="window.__xss = 2">'
LINK = "[click me](javascript:window.__xss=3)"
SVG = "<svg onload=window.__xss=4>"
EVIL_NAME = "<b>get_order</b><img src=x onerror=window.__xss=5>"

MODEL = "acme-test-model"  # unknown to genai-prices: cost is the reported llm.cost.total only


def _messages(*pairs: tuple[str, str]) -> str:
    return json.dumps([{"role": r, "parts": [{"type": "text", "content": c}]} for r, c in pairs])


def nested_run() -> dict:
    llm = {"gen_ai.operation.name": "chat", "gen_ai.request.model": MODEL, "gen_ai.provider.name": "acme"}
    return doc(
        span(NESTED, ROOT, None, "invoke_agent support", NS, NS + 10 * S,
             {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support", "feature": "refund",
              "customer_id": "c-nested"}),
        span(NESTED, LLM1, ROOT, "chat acme", NS + 100 * MS, NS + 2 * S,
             {**llm, "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10, "llm.cost.total": 0.25,
              "gen_ai.input.messages": _messages(("user", "please refund order A-1")),
              "gen_ai.output.messages": _messages(("assistant", "calling refund_order"))}),
        span(NESTED, TOOL, ROOT, "execute_tool refund_order", NS + 2 * S, NS + 3 * S,
             {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "refund_order",
              "gen_ai.tool.call.arguments": '{"order_id": "A-1"}', "gen_ai.tool.call.result": '{"error": "gateway"}'},
             status={"code": 2, "message": "gateway said no"},
             events=[{"name": "exception", "timeUnixNano": str(NS + 3 * S), "attributes": [
                 {"key": "exception.type", "value": {"stringValue": "PaymentGatewayError"}},
                 {"key": "exception.message", "value": {"stringValue": "gateway said no"}},
                 {"key": "exception.stacktrace", "value": {"stringValue": "Traceback: refund.py line 9"}}]}]),
        span(NESTED, LLM2, ROOT, "chat acme", NS + 3 * S, NS + 5 * S,
             {**llm, "gen_ai.usage.input_tokens": 200, "gen_ai.usage.output_tokens": 20, "llm.cost.total": 0.5}),
        span(NESTED, CHAIN, ROOT, "chain summarise", NS + 5 * S, NS + 9 * S, {"traceloop.span.kind": "workflow"}),
        span(NESTED, RETR, CHAIN, "retrieve docs", NS + 6 * S, NS + 7 * S,
             {"openinference.span.kind": "RETRIEVER"}),
    )


def evil_run() -> dict:
    return doc(
        span(EVIL, EVIL_ROOT, None, "invoke_agent support", NS + 20 * S, NS + 24 * S,
             {"gen_ai.operation.name": "invoke_agent", "feature": f"ord{SCRIPT}", "customer_id": IMG,
              "input.value": f"Where is my order? {SCRIPT} {IMG} {LINK}", "output.value": f"Sorry {SVG}"}),
        span(EVIL, EVIL_LLM, EVIL_ROOT, "chat acme", NS + 20 * S + 100 * MS, NS + 22 * S,
             {"gen_ai.operation.name": "chat", "gen_ai.request.model": MODEL,
              "gen_ai.usage.input_tokens": 50, "gen_ai.usage.output_tokens": 5,
              "gen_ai.input.messages": _messages(("user", f"Where is my order? {SCRIPT} {IMG} {LINK}")),
              "gen_ai.output.messages": _messages(("assistant", f"I will look {SVG}"))}),
        span(EVIL, EVIL_TOOL, EVIL_ROOT, EVIL_NAME, NS + 22 * S, NS + 23 * S,
             {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": EVIL_NAME,
              "gen_ai.tool.call.arguments": json.dumps({"q": SCRIPT}), "gen_ai.tool.call.result": f"{SVG} {IMG}"},
             status={"code": 2, "message": f"failed: {SCRIPT}"}),
    )


def many_runs(n: int = 25) -> list[dict]:
    """Run i: starts at NS + i min, lasts (i + 1) * 100 ms, feature refund when i % 3 == 0 else
    billing, customer c{i % 5}, status error when i % 4 == 0, reported cost i * 0.01 USD,
    input tokens 10 * i."""
    docs = []
    for i in range(n):
        trace = f"{i + 1:032x}"
        root, llm = f"{i + 1:08x}00000001", f"{i + 1:08x}00000002"
        t0 = NS + 3600 * S + i * 60 * S
        docs.append(doc(
            span(trace, root, None, "invoke_agent bot", t0, t0 + (i + 1) * 100 * MS,
                 {"gen_ai.operation.name": "invoke_agent", "feature": "refund" if i % 3 == 0 else "billing",
                  "customer_id": f"c{i % 5}"},
                 status={"code": 2, "message": "boom"} if i % 4 == 0 else None),
            span(trace, llm, root, "chat acme", t0 + MS, t0 + (i + 1) * 50 * MS,
                 {"gen_ai.operation.name": "chat", "gen_ai.request.model": MODEL,
                  "gen_ai.usage.input_tokens": 10 * i, "gen_ai.usage.output_tokens": 1, "llm.cost.total": i * 0.01}),
        ))
    return docs


def write_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [jsonl(folder / "nested.jsonl", nested_run()), jsonl(folder / "evil.jsonl", evil_run()),
            jsonl(folder / "many.jsonl", *many_runs())]


MANY_IDS = [f"{i + 1:032x}" for i in range(25)]  # run i of many_runs


def build_template(folder: Path) -> Path:
    """A database with the nested, malicious and 25 small runs (copy it per test with `copy_db`)."""
    write_all(folder / "traces")
    with agentlens.open(folder / "template.duckdb") as lens:
        lens.ingest(folder / "traces")
    return folder / "template.duckdb"


def copy_db(template: Path, folder: Path) -> Path:
    path = folder / "v.duckdb"
    shutil.copy(template, path)
    return path
