"""Seeded generator of synthetic agent traces for the benchmark.

    python bench/gen.py [OUT_DIR] --runs 10000 [--seed 1] [--offset 0] [--jobs 2]

Writes, into OUT_DIR (default: bench/data/):

- `runs-<label>.otlp.jsonl`: OTLP JSON Lines, one `ExportTraceServiceRequest` per line holding a few
  traces (24-64 spans), as the OTel SDK file exporter behind a BatchSpanProcessor writes them: spans
  in end order, so a trace's children come before its root and a trace may straddle two lines.
  Each run is ~10.25 spans: an `invoke_agent` root (GenAI), a retriever, 2-5 rounds of LLM call +
  tool call, a final LLM call, and in a quarter of the runs an output guardrail (so 100k runs make
  just over 1M spans). Half of the runs use OpenInference attributes (flattened
  `llm.input_messages.N.*`, `llm.token_count.*`, `llm.tools.N.tool.json_schema` offering the agent's five tools, `metadata` JSON on
  every span), half the OTel GenAI ones (`gen_ai.input.messages` JSON, `gen_ai.usage.*`).
  Prompts and outputs are 200-2,000 characters (log-uniform), with newlines, quotes and non-ASCII
  text; ~2% of runs fail at the root and ~4% of tool calls fail (with an exception event).
- `runs-<label>.agent_runs.csv`: an `agent_runs` table export of the same number of rows.

`<label>` is the run count written short (1k, 10k, 100k, 1m, 1010...). `--offset K` numbers the runs
from K (ids and start times continue after a file of K runs), which is how the incremental file
("1% more runs") is made. Same arguments, same bytes: content comes from `random.Random` seeded per
chunk of runs, so the output does not depend on `--jobs`.

Speed: text is drawn from precomputed pools that are JSON-escaped once (and twice, for JSON held in a
string attribute) up front, and spans are `%`-formatted templates, never dicts through json.dumps.
"""

# ruff: noqa: UP031 - %-formatting of precomputed templates is the fast path here, on purpose

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import random
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "data"
CHUNK_RUNS = 1000  # runs per generation chunk (the unit of seeding and of parallelism)
T0_NS = 1_777_593_600_000_000_000  # 2026-05-01T00:00:00Z
RUN_SPACING_NS = 2_592_000_000  # one run every 2.592 s: 1M runs span 30 days
C128 = 0x9E3779B97F4A7C15F39CC0605CEDC835  # odd: multiplication mod 2^128 is a bijection
C64 = 0x9E3779B97F4A7C15
M128 = (1 << 128) - 1
M64 = (1 << 64) - 1


def label(n: int) -> str:
    """10000 -> '10k', 1000000 -> '1m', 1010 -> '1010'."""
    for div, suffix in ((1_000_000, "m"), (1000, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return str(n)


def parse_count(s: str) -> int:
    s = s.strip().lower().replace("_", "")
    mult = {"k": 1000, "m": 1_000_000}.get(s[-1:], 1)
    return int(float(s[:-1] if mult > 1 else s) * mult)


def otlp_path(out_dir: Path, runs: int, offset: int = 0) -> Path:
    name = f"runs-{label(runs)}" + (f"-from-{label(offset)}" if offset else "")
    return out_dir / f"{name}.otlp.jsonl"


def csv_path(out_dir: Path, runs: int, offset: int = 0) -> Path:
    return otlp_path(out_dir, runs, offset).with_name(
        otlp_path(out_dir, runs, offset).name.replace(".otlp.jsonl", ".agent_runs.csv"))


# --- text pools ------------------------------------------------------------------------------------

WORDS = (
    "the order refund customer account invoice payment shipping delivery address subscription plan "
    "upgrade downgrade cancel renew billing charge card declined pending approved policy return window "
    "warranty replacement damaged missing package tracking number carrier warehouse stock available "
    "backorder estimate business days priority support ticket escalation agent manager review please "
    "could you check why was my charged twice last month this week yesterday today tomorrow thanks "
    "hello regarding following up on previous conversation issue still not resolved urgent help need "
    "information about pricing tier enterprise team seats license usage limit quota exceeded api key "
    "rotate error timeout latency region europe north america asia deployment configuration setting "
    "enable disable feature flag rollout beta preview documentation guide example step first then "
    "finally summary result found records matching query database search index document relevant "
    "according to our records I can see that you have and it looks like the we will be happy to "
    "résumé café naïve Zürich São Paulo Kraków façade coöperate"
).split()

SYSTEM_PROMPTS = (
    "You are a helpful customer support agent for Acme Corp. Answer concisely, cite the order or "
    "invoice you looked up, and never reveal internal notes. Use the tools to look up orders, "
    "refunds and account details before answering. If the customer is angry, apologise once.",
    "You are a billing assistant. Explain charges line by line. When a refund is due, call "
    "issue_refund with the exact amount; otherwise explain the policy (30-day return window, "
    "pro-rated refunds for annual plans). Reply in the customer's language.",
    "You are a research assistant. Break the question into sub-questions, search the knowledge base "
    "for each, and write a short answer with numbered citations [1], [2]. Say \"I don't know\" when "
    "the documents do not answer the question.",
    "You are an onboarding guide for a developer platform. Give step-by-step instructions with code "
    "snippets when useful.\nKeep answers under 200 words.\nAsk one clarifying question when the "
    "request is ambiguous.",
)

MODELS = (  # (weight, dialect-neutral request model, response model, provider)
    (40, "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai"),
    (20, "gpt-4o", "gpt-4o-2024-08-06", "openai"),
    (20, "claude-sonnet-4", "claude-sonnet-4-20250514", "anthropic"),
    (10, "claude-3-5-haiku", "claude-3-5-haiku-20241022", "anthropic"),
    (10, "gemini-2.0-flash", "gemini-2.0-flash-001", "gcp.gemini"),
)
MODEL_WEIGHTS = tuple(m[0] for m in MODELS)
AGENTS = (  # (agent name, service.name, system prompt index)
    ("support-agent", "support-bot", 0),
    ("billing-agent", "billing-service", 1),
    ("research-agent", "research-assistant", 2),
    ("onboarding-agent", "devrel-bot", 3),
)
FEATURES = ("refund", "order_status", "billing_question", "cancellation", "kb_search",
            "onboarding", "upgrade", "complaint")
FEATURE_WEIGHTS = (25, 20, 15, 8, 12, 8, 7, 5)
TOOLS = (
    ("lookup_order", "Look up an order by id", '{"order_id":"ord_%06d"}'),
    ("get_invoice", "Fetch an invoice", '{"invoice_id":"inv_%06d","include_lines":true}'),
    ("issue_refund", "Refund part of an order", '{"order_id":"ord_%06d","amount_cents":%d}'),
    ("search_kb", "Search the knowledge base", '{"query":"%s","top_k":5}'),
    ("get_account", "Account details", '{"customer_id":"%s"}'),
)
# OpenInference `llm.tools.N.tool.json_schema`: the agent's tools, offered on every LLM call (every tool the
# model calls is one it was offered, as in a healthy agent: no call is a hallucinated tool)
_JSON_TYPES = {str: "string", int: "integer", bool: "boolean"}
TOOL_SCHEMAS = ",".join(
    '{"key":"llm.tools.%d.tool.json_schema","value":{"stringValue":%s}}' % (i, json.dumps(json.dumps(
        {"type": "function", "function": {
            "name": t[0], "description": t[1],
            "parameters": {"type": "object", "properties": {k: {"type": _JSON_TYPES[type(v)]} for k, v in json.loads(
                t[2].replace("%06d", "1").replace("%d", "1").replace("%s", "x")).items()}}}})))
    for i, t in enumerate(TOOLS))
CUSTOMERS = 500
ENVIRONMENTS = (("production", 90), ("staging", 10))


def _esc1(t: str) -> str:
    """JSON-escaped text, without the quotes (for a JSON string)."""
    return json.dumps(t, ensure_ascii=False)[1:-1]


def _esc2(t: str) -> str:
    """Escaped twice: text inside a JSON document that is itself held in a JSON string."""
    return _esc1(_esc1(t))


def _sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(6, 18))
    s = " ".join(words)
    s = s[0].upper() + s[1:]
    r = rng.random()
    if r < 0.1:
        s = f'{s} "{rng.choice(WORDS)}"'
    elif r < 0.15:
        s += " (ref: C:\\exports\\" + rng.choice(WORDS) + ".csv)"
    return s + rng.choice((".", ".", ".", "?", "!"))


def _text(rng: random.Random, lo: int, hi: int) -> str:
    """Text of a log-uniform length in [lo, hi], sentences and the odd paragraph break."""
    target = int(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    parts: list[str] = []
    n = 0
    while n < target:
        s = _sentence(rng)
        sep = "\n\n" if parts and rng.random() < 0.15 else " "
        parts.append(s if not parts else sep + s)
        n += len(parts[-1])
    return "".join(parts)[:target].rstrip() + "."


class Pools:
    """Precomputed, pre-escaped text. Built from the seed, so identical in every worker."""

    SIZE = 2048

    def __init__(self, seed: int):
        rng = random.Random(f"pools:{seed}")
        self.prompt = [_text(rng, 200, 2000) for _ in range(self.SIZE)]
        self.answer = [_text(rng, 200, 2000) for _ in range(self.SIZE)]
        self.result = [_text(rng, 80, 800) for _ in range(self.SIZE)]
        self.doc = [_text(rng, 150, 400) for _ in range(self.SIZE)]
        self.prompt1 = [_esc1(t) for t in self.prompt]
        self.prompt2 = [_esc2(t) for t in self.prompt]
        self.answer1 = [_esc1(t) for t in self.answer]
        self.answer2 = [_esc2(t) for t in self.answer]
        self.result1 = [_esc1(t) for t in self.result]
        self.result2 = [_esc2(t) for t in self.result]
        self.doc1 = [_esc1(t) for t in self.doc]
        short = [t[:200].rstrip() + "..." for t in self.answer]  # text beside a tool call
        self.short1 = [_esc1(t) for t in short]
        self.short2 = [_esc2(t) for t in short]
        self.system1 = [_esc1(t) for t in SYSTEM_PROMPTS]
        self.system2 = [_esc2(t) for t in SYSTEM_PROMPTS]
        self.query = [" ".join(rng.choices(WORDS, k=4)) for _ in range(self.SIZE)]


# --- OTLP templates --------------------------------------------------------------------------------
# %s slots are filled with already-escaped text. `\"` inside a template is JSON-in-a-string.

def _kv_s(key: str) -> str:
    return '{"key":"' + key + '","value":{"stringValue":"%s"}}'


def _kv_i(key: str) -> str:
    return '{"key":"' + key + '","value":{"intValue":"%d"}}'


SPAN_HEAD = ('{"traceId":"%s","spanId":"%s","parentSpanId":"%s","flags":256,"name":"%s","kind":%d,'
             '"startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":[')
ROOT_HEAD = ('{"traceId":"%s","spanId":"%s","flags":256,"name":"%s","kind":%d,'
             '"startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":[')
STATUS_OK = '],"status":{}}'
STATUS_OK_OI = '],"status":{"code":1}}'
STATUS_ERR = '],"events":[%s],"status":{"code":2,"message":"%s"}}'
EXC_EVENT = ('{"timeUnixNano":"%d","name":"exception","attributes":['
             '{"key":"exception.type","value":{"stringValue":"%s"}},'
             '{"key":"exception.message","value":{"stringValue":"%s"}},'
             '{"key":"exception.stacktrace","value":{"stringValue":"Traceback (most recent call last):\\n'
             '  File \\"/app/agent/tools.py\\", line 212, in call\\n    return fn(**args)\\n'
             '  File \\"/app/agent/tools.py\\", line 88, in %s\\n    resp.raise_for_status()\\n%s: %s"}},'
             '{"key":"exception.escaped","value":{"boolValue":false}}]}')

ROOT_ATTRS = ",".join((
    _kv_s("gen_ai.operation.name") % "invoke_agent",
    _kv_s("gen_ai.agent.name"),
    _kv_s("gen_ai.agent.id"),
    _kv_s("gen_ai.conversation.id"),
    _kv_s("user.id"),
    _kv_s("session.id"),
    _kv_s("input.value"),
    _kv_s("output.value"),
    '{"key":"metadata","value":{"stringValue":"{\\"feature\\": \\"%s\\", \\"customer_id\\": \\"%s\\", '
    '\\"plan\\": \\"%s\\", \\"app_version\\": \\"2.%d.%d\\"}"}}',
))

# OpenInference: metadata, session and user are propagated to every span by the instrumentor's context.
OI_CONTEXT = ",".join((
    '{"key":"metadata","value":{"stringValue":"{\\"feature\\": \\"%s\\", \\"customer_id\\": \\"%s\\"}"}}',
    _kv_s("session.id"),
    _kv_s("user.id"),
))

OI_LLM = ",".join((
    _kv_s("openinference.span.kind") % "LLM",
    _kv_s("llm.system"),
    _kv_s("llm.provider"),
    _kv_s("llm.model_name"),
    _kv_s("llm.invocation_parameters"),
    "%s",  # the tools offered (TOOL_SCHEMAS)
    _kv_s("llm.input_messages.0.message.role") % "system",
    _kv_s("llm.input_messages.0.message.content"),
    _kv_s("llm.input_messages.1.message.role") % "user",
    _kv_s("llm.input_messages.1.message.content"),
)) + "%s," + "%s," + ",".join((  # optional tool-call round trip in the input (starts with ","); output
    _kv_i("llm.token_count.prompt"),
    _kv_i("llm.token_count.completion"),
    _kv_i("llm.token_count.total"),
    _kv_i("llm.token_count.prompt_details.cache_read"),
    "%s",  # OI context (metadata, session, user)
))
OI_IN_TOOL_ROUND = ",".join((
    "",
    _kv_s("llm.input_messages.2.message.role") % "assistant",
    _kv_s("llm.input_messages.2.message.tool_calls.0.tool_call.id"),
    _kv_s("llm.input_messages.2.message.tool_calls.0.tool_call.function.name"),
    _kv_s("llm.input_messages.2.message.tool_calls.0.tool_call.function.arguments"),
    _kv_s("llm.input_messages.3.message.role") % "tool",
    _kv_s("llm.input_messages.3.message.tool_call_id"),
    _kv_s("llm.input_messages.3.message.content"),
))
OI_OUT_TEXT = ",".join((
    _kv_s("llm.output_messages.0.message.role") % "assistant",
    _kv_s("llm.output_messages.0.message.content"),
    _kv_s("llm.finish_reason") % "stop",
))
OI_OUT_CALL = ",".join((
    _kv_s("llm.output_messages.0.message.role") % "assistant",
    _kv_s("llm.output_messages.0.message.content"),
    _kv_s("llm.output_messages.0.message.tool_calls.0.tool_call.id"),
    _kv_s("llm.output_messages.0.message.tool_calls.0.tool_call.function.name"),
    _kv_s("llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments"),
    _kv_s("llm.finish_reason") % "tool_calls",
))
OI_TOOL = ",".join((
    _kv_s("openinference.span.kind") % "TOOL",
    _kv_s("tool.name"),
    _kv_s("tool.description"),
    _kv_s("tool_call.id"),
    _kv_s("input.value"),
    _kv_s("input.mime_type") % "application/json",
    _kv_s("output.value"),
    "%s",
))
OI_RETRIEVER = ",".join((
    _kv_s("openinference.span.kind") % "RETRIEVER",
    _kv_s("input.value"),
    *(f'{_kv_s(f"retrieval.documents.{i}.document.id")},{_kv_s(f"retrieval.documents.{i}.document.content")},'
      f'{{"key":"retrieval.documents.{i}.document.score","value":{{"doubleValue":%.4f}}}}' for i in range(3)),
    "%s",
))

GENAI_LLM = ",".join((
    _kv_s("gen_ai.operation.name") % "chat",
    _kv_s("gen_ai.provider.name"),
    _kv_s("gen_ai.request.model"),
    '{"key":"gen_ai.request.temperature","value":{"doubleValue":0.2}}',
    _kv_i("gen_ai.request.max_tokens"),
    _kv_s("gen_ai.response.model"),
    _kv_s("gen_ai.response.id"),
    '{"key":"gen_ai.response.finish_reasons","value":{"arrayValue":{"values":[{"stringValue":"%s"}]}}}',
    _kv_i("gen_ai.usage.input_tokens"),
    _kv_i("gen_ai.usage.output_tokens"),
    _kv_i("gen_ai.usage.cache_read.input_tokens"),
    _kv_s("gen_ai.input.messages"),
    _kv_s("gen_ai.output.messages"),
))
GENAI_IN = ('[{\\"role\\":\\"system\\",\\"parts\\":[{\\"type\\":\\"text\\",\\"content\\":\\"%s\\"}]},'
            '{\\"role\\":\\"user\\",\\"parts\\":[{\\"type\\":\\"text\\",\\"content\\":\\"%s\\"}]}%s]')
GENAI_IN_TOOL_ROUND = (',{\\"role\\":\\"assistant\\",\\"parts\\":[{\\"type\\":\\"tool_call\\",\\"id\\":\\"%s\\",'
                       '\\"name\\":\\"%s\\",\\"arguments\\":%s}]},{\\"role\\":\\"tool\\",\\"parts\\":['
                       '{\\"type\\":\\"tool_call_response\\",\\"id\\":\\"%s\\",\\"response\\":\\"%s\\"}]}')
GENAI_OUT_TEXT = ('[{\\"role\\":\\"assistant\\",\\"parts\\":[{\\"type\\":\\"text\\",\\"content\\":\\"%s\\"}],'
                  '\\"finish_reason\\":\\"stop\\"}]')
GENAI_OUT_CALL = ('[{\\"role\\":\\"assistant\\",\\"parts\\":[{\\"type\\":\\"text\\",\\"content\\":\\"%s\\"},'
                  '{\\"type\\":\\"tool_call\\",\\"id\\":\\"%s\\",\\"name\\":\\"%s\\",\\"arguments\\":%s}],'
                  '\\"finish_reason\\":\\"tool_calls\\"}]')
GENAI_TOOL = ",".join((
    _kv_s("gen_ai.operation.name") % "execute_tool",
    _kv_s("gen_ai.tool.name"),
    _kv_s("gen_ai.tool.description"),
    _kv_s("gen_ai.tool.type") % "function",
    _kv_s("gen_ai.tool.call.id"),
    _kv_s("gen_ai.tool.call.arguments"),
    _kv_s("gen_ai.tool.call.result"),
))
GENAI_RETRIEVER = ",".join((
    _kv_s("gen_ai.operation.name") % "retrieval",
    _kv_s("gen_ai.data_source.id") % "kb-main",
    _kv_s("gen_ai.retrieval.query.text"),
    _kv_i("gen_ai.retrieval.top_k"),
))

OI_GUARDRAIL = ",".join((
    _kv_s("openinference.span.kind") % "GUARDRAIL",
    _kv_s("input.value"),
    _kv_s("output.value") % "passed",
    "%s",
))
GENAI_GUARDRAIL = ",".join((  # not a GenAI operation agentlens knows: stays kind `other`
    _kv_s("gen_ai.operation.name") % "apply_guardrail",
    _kv_s("gen_ai.guardrail.name"),
    '{"key":"gen_ai.guardrail.passed","value":{"boolValue":true}}',
))

RESOURCE = ('{"resource":{"attributes":['
            '{"key":"service.name","value":{"stringValue":"%s"}},'
            '{"key":"service.version","value":{"stringValue":"2.14.%d"}},'
            '{"key":"service.instance.id","value":{"stringValue":"%s"}},'
            '{"key":"deployment.environment.name","value":{"stringValue":"%s"}},'
            '{"key":"telemetry.sdk.language","value":{"stringValue":"python"}},'
            '{"key":"telemetry.sdk.name","value":{"stringValue":"opentelemetry"}},'
            '{"key":"telemetry.sdk.version","value":{"stringValue":"1.38.0"}}]},"scopeSpans":[')
SCOPES = (
    '{"scope":{"name":"opentelemetry.instrumentation.agents","version":"0.4.1"},"spans":[',   # root, tools
    '{"scope":{"name":"openinference.instrumentation.openai","version":"0.1.66"},"spans":[',  # OI LLM
    '{"scope":{"name":"opentelemetry.instrumentation.openai_v2","version":"2.1b0"},"spans":[',  # GenAI LLM
    '{"scope":{"name":"app.retrieval","version":"1.0.0"},"spans":[',
)
SC_AGENT, SC_OI, SC_GENAI, SC_RETR = range(4)


class Chunk:
    """Generates the runs [start, stop): OTLP lines and CSV rows."""

    def __init__(self, pools: Pools, seed: int, start: int, stop: int):
        self.p = pools
        self.seed = seed
        self.start, self.stop = start, stop
        self.rng = random.Random(f"chunk:{seed}:{start}")
        self.salt = (seed * 0x2545F4914F6CDD1D) & M128

    # ids: bijective mixes of the run index, so unique across files with different offsets
    def trace_id(self, run: int) -> str:
        return "%032x" % (((run + 1) * C128 + self.salt) & M128)

    @staticmethod
    def span_id(run: int, j: int) -> str:
        return "%016x" % (((run * 32 + j + 1) * C64) & M64)

    def otlp(self) -> bytes:
        rng = self.rng
        spans: list[tuple[int, int, str]] = []  # (service index, scope, span json)
        lines: list[str] = []
        flush_at = rng.randint(24, 64)
        for run in range(self.start, self.stop):
            self._run(run, spans)
            if len(spans) >= flush_at:
                lines.append(self._line(spans))
                spans = []
                flush_at = rng.randint(24, 64)
        if spans:
            lines.append(self._line(spans))
        return ("\n".join(lines) + "\n").encode("utf-8")

    def _line(self, spans: list[tuple[int, int, str]]) -> str:
        groups: dict[int, dict[int, list[str]]] = {}
        for svc, scope, s in spans:
            groups.setdefault(svc, {}).setdefault(scope, []).append(s)
        rs = []
        for svc, scopes in groups.items():
            agent = AGENTS[svc % len(AGENTS)]
            env = "staging" if svc >= len(AGENTS) else "production"
            head = RESOURCE % (agent[1], 3 + svc % 3, "%08x-4c1e-4b7a-9d2e-%012x" % (svc, self.seed), env)
            rs.append(head + ",".join(SCOPES[sc] + ",".join(ss) + "]}" for sc, ss in scopes.items()) + "]}")
        return '{"resourceSpans":[' + ",".join(rs) + "]}"

    def _run(self, run: int, out: list[tuple[int, int, str]]) -> None:
        rng, p = self.rng, self.p
        tid = self.trace_id(run)
        root_id = self.span_id(run, 0)
        ai = rng.randrange(len(AGENTS))
        agent_name, _service, sys_i = AGENTS[ai]
        svc = ai + (len(AGENTS) if rng.random() < 0.1 else 0)  # staging instances
        _, req_model, resp_model, provider = rng.choices(MODELS, MODEL_WEIGHTS)[0]
        oi = rng.random() < 0.5
        feature = rng.choices(FEATURES, FEATURE_WEIGHTS)[0]
        customer = "cust_%04d" % min(int(rng.paretovariate(1.2)) - 1, CUSTOMERS - 1)
        user = "user_%05d" % rng.randrange(20000)
        session = "sess_%012x" % rng.getrandbits(48)
        run_fails = rng.random() < 0.02
        rounds = rng.randint(2, 5)
        q = rng.randrange(Pools.SIZE)
        ticket = "Ticket #%06d: " % rng.randrange(1_000_000)
        ctx = OI_CONTEXT % (feature, customer, session, user) if oi else None
        llm_scope = SC_OI if oi else SC_GENAI
        sys1, sys2 = p.system1[sys_i], p.system2[sys_i]
        user1, user2 = ticket + p.prompt1[q], ticket + p.prompt2[q]

        t_start = T0_NS + run * RUN_SPACING_NS + rng.randrange(RUN_SPACING_NS)
        t = t_start + rng.randrange(2_000_000, 20_000_000)
        j = 1
        # retriever
        dur = int(rng.lognormvariate(math.log(80e6), 0.6))
        sid = self.span_id(run, j)
        if oi:
            docs = []
            for _ in range(3):
                d = rng.randrange(Pools.SIZE)
                docs += ["doc-%05d" % d, p.doc1[d], rng.uniform(0.3, 0.95)]
            body = OI_RETRIEVER % (p.query[q], *docs, ctx)
            out.append((svc, SC_RETR, SPAN_HEAD % (tid, sid, root_id, "retrieve", 1, t, t + dur) + body + STATUS_OK_OI))
        else:
            body = GENAI_RETRIEVER % (p.query[q], 5)
            out.append((svc, SC_RETR, SPAN_HEAD % (tid, sid, root_id, "retrieval kb-main", 3, t, t + dur)
                        + body + STATUS_OK))
        t += dur + rng.randrange(500_000, 5_000_000)
        j += 1

        prev_call: tuple[str, str, str, int] | None = None  # (call id, tool name, args json, result index)
        last_answer = 0
        for r in range(rounds + 1):
            final = r == rounds
            a = rng.randrange(Pools.SIZE)
            tokens_in = (len(p.prompt[q]) + len(SYSTEM_PROMPTS[sys_i])) // 4 + 40
            if prev_call:
                tokens_in += len(p.result[prev_call[3]]) // 4 + 30
            tokens_out = len(p.answer[a]) // 4 + (0 if final else 25)
            cached = (tokens_in // 128) * 64 if rng.random() < 0.4 else 0
            dur = int(rng.lognormvariate(math.log(1.2e9), 0.5) * (0.3 + tokens_out / 300))
            sid = self.span_id(run, j)
            if not final:
                tool, desc, args_t = TOOLS[rng.randrange(len(TOOLS))]
                if tool == "issue_refund":
                    args = args_t % (rng.randrange(10**6), rng.randrange(100, 50000))
                elif tool == "search_kb":
                    args = args_t % p.query[rng.randrange(Pools.SIZE)]
                elif tool == "get_account":
                    args = args_t % customer
                else:
                    args = args_t % rng.randrange(10**6)
                call_id = "call_" + sid + tid[:8]
            if oi:
                round_in = ""
                if prev_call:
                    cid, tname, targs, ri = prev_call
                    round_in = OI_IN_TOOL_ROUND % (cid, tname, _esc1(targs), cid, p.result1[ri])
                if final:
                    outm = OI_OUT_TEXT % p.answer1[a]
                else:
                    outm = OI_OUT_CALL % (p.short1[a], call_id, tool, _esc1(args))
                body = OI_LLM % (provider, provider, resp_model, '{\\"model\\": \\"%s\\", \\"temperature\\": 0.2}'
                                 % req_model, TOOL_SCHEMAS, sys1, user1, round_in, outm, tokens_in,
                                 tokens_out, tokens_in + tokens_out, cached, ctx)
                out.append((svc, llm_scope, SPAN_HEAD % (tid, sid, root_id, "ChatCompletion", 1, t, t + dur)
                            + body + STATUS_OK_OI))
            else:
                round_in = ""
                if prev_call:
                    cid, tname, targs, ri = prev_call
                    round_in = GENAI_IN_TOOL_ROUND % (cid, tname, _esc1(targs), cid, p.result2[ri])
                inm = GENAI_IN % (sys2, user2, round_in)
                if final:
                    outm = GENAI_OUT_TEXT % p.answer2[a]
                else:
                    outm = GENAI_OUT_CALL % (p.short2[a], call_id, tool, _esc1(args))
                body = GENAI_LLM % (provider, req_model, 1024, resp_model, "chatcmpl-" + sid + tid[:12],
                                    "stop" if final else "tool_calls", tokens_in, tokens_out, cached, inm, outm)
                out.append((svc, llm_scope, SPAN_HEAD % (tid, sid, root_id, "chat " + req_model, 3, t, t + dur)
                            + body + STATUS_OK))
            t += dur + rng.randrange(200_000, 3_000_000)
            j += 1
            last_answer = a
            if final:
                break
            # the tool call the LLM asked for
            ri = rng.randrange(Pools.SIZE)
            dur = int(rng.lognormvariate(math.log(120e6), 0.9))
            sid = self.span_id(run, j)
            fails = (run_fails and r == rounds - 1) or rng.random() < 0.04
            if oi:
                body = OI_TOOL % (tool, desc, call_id, _esc1(args), "" if fails else p.result1[ri], ctx)
            else:
                body = GENAI_TOOL % (tool, desc, call_id, _esc1(args), "" if fails else p.result1[ri])
            span = SPAN_HEAD % (tid, sid, root_id, "execute_tool " + tool, 1, t, t + dur) + body
            if fails:
                etype, emsg = rng.choice((("httpx.HTTPStatusError", "Server error '503 Service Unavailable'"),
                                          ("TimeoutError", "tool call timed out after 30s"),
                                          ("KeyError", "'order_id'")))
                emsg_esc = _esc1(emsg)
                ev = EXC_EVENT % (t + dur, etype, emsg_esc, tool, etype, emsg_esc)
                span += STATUS_ERR % (ev, emsg_esc)
            else:
                span += STATUS_OK_OI if oi else STATUS_OK
            out.append((svc, SC_AGENT, span))
            prev_call = (call_id, tool, args, ri)
            t += dur + rng.randrange(200_000, 3_000_000)
            j += 1

        if rng.random() < 0.25:  # an output guardrail on the answer
            dur = int(rng.lognormvariate(math.log(40e6), 0.5))
            sid = self.span_id(run, j)
            if oi:
                body = OI_GUARDRAIL % (p.answer1[last_answer], ctx)
                out.append((svc, SC_AGENT, SPAN_HEAD % (tid, sid, root_id, "output_guardrail", 1, t, t + dur)
                            + body + STATUS_OK_OI))
            else:
                body = GENAI_GUARDRAIL % "pii-and-toxicity"
                out.append((svc, SC_AGENT, SPAN_HEAD % (tid, sid, root_id, "apply_guardrail pii-and-toxicity", 1,
                                                        t, t + dur) + body + STATUS_OK))
            t += dur
            j += 1

        t_end = t + rng.randrange(1_000_000, 10_000_000)
        root = (ROOT_HEAD % (tid, root_id, "invoke_agent " + agent_name, 1, t_start, t_end)
                + ROOT_ATTRS % (agent_name, "agt_%s_%d" % (agent_name[:4], 7 + ai), session, user, session,
                                user1, "" if run_fails else p.answer1[last_answer], feature, customer,
                                rng.choice(("free", "pro", "pro", "enterprise")), rng.randrange(10),
                                rng.randrange(30)))
        if run_fails:
            root += STATUS_ERR % ("", "agent run failed: tool error")
        else:
            root += STATUS_OK
        out.append((svc, SC_AGENT, root))

    def csv(self) -> bytes:
        """agent_runs rows (a separate stream of runs, ids `run_<n>`)."""
        rng = random.Random(f"csv:{self.seed}:{self.start}")
        p = self.p
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for run in range(self.start, self.stop):
            ai = rng.randrange(len(AGENTS))
            agent_name, _, sys_i = AGENTS[ai]
            _, req_model, _, _ = MODELS[rng.randrange(len(MODELS))]
            feature = rng.choices(FEATURES, FEATURE_WEIGHTS)[0]
            customer = "cust_%04d" % min(int(rng.paretovariate(1.2)) - 1, CUSTOMERS - 1)
            q, a = rng.randrange(Pools.SIZE), rng.randrange(Pools.SIZE)
            request = ('{"model": "%s", "agent": "%s", "messages": [{"role": "system", "content": "%s"}, '
                       '{"role": "user", "content": "%s"}], "metadata": {"feature": "%s", "customer_id": "%s"}}'
                       % (req_model, agent_name, p.system1[sys_i], p.prompt1[q], feature, customer))
            tokens_in = (len(p.prompt[q]) + len(SYSTEM_PROMPTS[sys_i])) // 4 + 40
            tokens_out = len(p.answer[a]) // 4
            if rng.random() < 0.02:
                response = '{"error": "upstream timeout"}'
                tokens_out = 0
            else:
                response = '{"content": "%s", "finish_reason": "stop"}' % p.answer1[a]
            ts = T0_NS // 1000 + run * (RUN_SPACING_NS // 1000) + rng.randrange(RUN_SPACING_NS // 1000)
            created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts // 1_000_000)) + ".%06d+00" % (ts % 1_000_000)
            w.writerow(("run_%08d" % run, "user_%05d" % rng.randrange(20000), request, response,
                        tokens_in, tokens_out, "%.6f" % ((tokens_in * 0.15 + tokens_out * 0.6) / 1e6), created))
        return buf.getvalue().encode("utf-8")


# --- driver ------------------------------------------------------------------------------------------

_POOLS: dict[int, Pools] = {}


def _pools(seed: int) -> Pools:
    if seed not in _POOLS:
        _POOLS[seed] = Pools(seed)
    return _POOLS[seed]


def _gen_chunk(args: tuple[str, int, int, int]) -> bytes:
    what, seed, start, stop = args
    c = Chunk(_pools(seed), seed, start, stop)
    return c.otlp() if what == "otlp" else c.csv()


def _chunks(what: str, seed: int, offset: int, runs: int) -> Iterator[tuple[str, int, int, int]]:
    # chunk boundaries are multiples of CHUNK_RUNS in the global run numbering, so content does not
    # depend on how the runs were split between files or workers
    n = offset
    end = offset + runs
    while n < end:
        stop = min(end, (n // CHUNK_RUNS + 1) * CHUNK_RUNS)
        yield (what, seed, n, stop)
        n = stop


def write(path: Path, what: str, runs: int, seed: int, offset: int, jobs: int) -> int:
    """Write one file atomically (a partial file never looks complete). Returns its size."""
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as f:
        if what == "csv":
            f.write(b"id,user_id,request,response,tokens_in,tokens_out,cost_usd,created_at\n")
        tasks = _chunks(what, seed, offset, runs)
        if jobs > 1 and runs > CHUNK_RUNS:
            with ProcessPoolExecutor(jobs) as ex:
                for data in ex.map(_gen_chunk, tasks, chunksize=1):
                    f.write(data)
        else:
            for task in tasks:
                f.write(_gen_chunk(task))
    tmp.replace(path)
    return path.stat().st_size


def generate(out_dir: Path, runs: int, seed: int = 1, offset: int = 0, jobs: int | None = None,
             csv_too: bool = True, quiet: bool = False) -> dict[str, Path]:
    """Write the files unless they already exist. Returns {'otlp': path, 'csv': path}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = jobs or 1
    paths = {"otlp": otlp_path(out_dir, runs, offset)}
    if csv_too:
        paths["csv"] = csv_path(out_dir, runs, offset)
    for what, path in paths.items():
        if path.exists():
            continue
        t0 = time.perf_counter()
        size = write(path, what, runs, seed, offset, jobs)
        secs = time.perf_counter() - t0
        if not quiet:
            print(f"gen: {path} ({size / 1e6:,.1f} MB, {runs:,} runs) in {secs:.1f} s "
                  f"({size / 1e6 / secs:,.0f} MB/s)", file=sys.stderr)
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", nargs="?", type=Path, default=DEFAULT_OUT, help="default: bench/data/")
    ap.add_argument("--runs", type=parse_count, default=10_000, help="runs to write (10000, 10k, 1m)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--offset", type=parse_count, default=0, help="number the runs from here (default 0)")
    ap.add_argument("--jobs", type=int, default=None, help="worker processes (default 1: one process already writes at disk speed; more only helps on fast disks)")
    ap.add_argument("--no-csv", action="store_true", help="only the OTLP file")
    ap.add_argument("--force", action="store_true", help="rewrite files that exist")
    a = ap.parse_args(argv)
    if a.force:
        for p in (otlp_path(a.out_dir, a.runs, a.offset), csv_path(a.out_dir, a.runs, a.offset)):
            p.unlink(missing_ok=True)
    generate(a.out_dir, a.runs, a.seed, a.offset, a.jobs, csv_too=not a.no_csv)


if __name__ == "__main__":
    main()
