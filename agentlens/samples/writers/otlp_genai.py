"""support-agent.genai.otlp.jsonl: runs in the OpenTelemetry GenAI conventions (`invoke_agent` root,
`chat` and `execute_tool` children; content as `gen_ai.input.messages` / `gen_ai.output.messages`).
`assign_pods` says which process exported each run: about a fifth come from an older deployment
(OpenLLMetry 0.47 LLM spans, legacy names on the root) and some from a batch worker that does not
capture content. `render` makes a run's spans."""

from __future__ import annotations

import random
from typing import Any

from ..content import AGENT_NAME, TOOLS
from ..helpers import args_obj, cjson
from ..run import LLMCall, Run, ToolExec, usage_totals
from ..scenarios import SCENARIOS
from . import openllmetry
from .otlp import Attr, Pod, SpanOut, fw_status, make_pod, otlp_span, truncate_recorded

GENAI_SCOPE_AGENT = ("support_agent", "1.8.0", "")
GENAI_SCOPE_AGENT_LEGACY = ("support_agent", "1.7.2", "")
GENAI_SCOPE_LLM = ("opentelemetry.util.genai.handler", "1.1b0", "https://opentelemetry.io/schemas/1.37.0")


def _genai_parts_in(call: LLMCall) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if call.model.provider != "anthropic":
        out.append({"role": "system", "parts": [{"content": call.system, "type": "text"}]})
    for m in call.messages:
        if m.role == "tool":
            out.append({"role": "tool", "parts": [{"response": m.content, "id": m.tool_call_id,
                                                   "type": "tool_call_response"}]})
            continue
        parts: list[dict[str, Any]] = []
        if m.content:
            parts.append({"content": m.content, "type": "text"})
        for c in m.tool_calls:
            parts.append({"arguments": args_obj(c.arguments), "name": c.name, "id": c.id, "type": "tool_call"})
        out.append({"role": m.role, "parts": parts})
    return out


def _genai_parts_out(call: LLMCall) -> list[dict[str, Any]]:
    assert call.output is not None
    parts: list[dict[str, Any]] = []
    if call.output.content:
        parts.append({"content": call.output.content, "type": "text"})
    for c in call.output.tool_calls:
        parts.append({"arguments": args_obj(c.arguments), "name": c.name, "id": c.id, "type": "tool_call"})
    return [{"role": "assistant", "parts": parts, "finish_reason": call.finish_reason}]


def _genai_llm(run: Run, call: LLMCall, parent: str) -> SpanOut:
    m = call.model
    a: list[Attr] = [("gen_ai.operation.name", "chat"), ("gen_ai.request.model", m.name),
                     ("gen_ai.provider.name", m.provider)]
    if not m.reasoning:
        a.append(("gen_ai.request.temperature", call.temperature))
    if call.max_tokens or m.provider == "anthropic":
        a.append(("gen_ai.request.max_tokens", call.max_tokens or 1024))
    a += [("server.address", m.host), ("server.port", m.port)]
    u = call.usage
    if call.output is not None and u is not None:
        a += [("gen_ai.response.finish_reasons", [call.finish_reason or "stop"]),
              ("gen_ai.response.model", m.response_model), ("gen_ai.response.id", call.response_id),
              ("gen_ai.usage.input_tokens", u.input), ("gen_ai.usage.output_tokens", u.output)]
        if u.cache_read:
            a.append(("gen_ai.usage.cache_read.input_tokens", u.cache_read))
        if u.cache_write:
            a.append(("gen_ai.usage.cache_creation.input_tokens", u.cache_write))
        if u.reasoning:
            a.append(("gen_ai.usage.reasoning.output_tokens", u.reasoning))
    if run.capture_content:
        if m.provider == "anthropic":
            a.append(("gen_ai.system_instructions", cjson([{"content": call.system, "type": "text"}])))
        a.append(("gen_ai.input.messages", cjson(_genai_parts_in(call))))
        if call.output is not None:
            a.append(("gen_ai.output.messages", cjson(_genai_parts_out(call))))
        if call.tools:
            defs = [{"type": "function", "name": t, "description": TOOLS[t][0], "parameters": TOOLS[t][1]}
                    for t in call.tools]
            a.append(("gen_ai.tool.definitions", cjson(defs)))
    if call.error is not None:
        a.append(("error.type", call.error.type))
    span = otlp_span(run, call.span_id, parent, f"chat {m.name}", 3, call.start, call.end, a, error=call.error)
    return SpanOut(call.end, GENAI_SCOPE_LLM, span)


def _genai_tool(run: Run, ex: ToolExec, parent: str) -> SpanOut:
    a: list[Attr] = [("gen_ai.operation.name", "execute_tool"), ("gen_ai.tool.name", ex.call.name),
                     ("gen_ai.tool.type", "datastore" if ex.call.name == "search_kb" else "function"),
                     ("gen_ai.tool.call.id", ex.call.id or None)]
    if ex.call.name in TOOLS:
        a.append(("gen_ai.tool.description", TOOLS[ex.call.name][0]))
    a.append(("gen_ai.tool.call.arguments", ex.call.arguments))
    if ex.result is not None:
        a.append(("gen_ai.tool.call.result", truncate_recorded(ex.result)))
    if ex.error is not None:
        a.append(("error.type", ex.error.type))
    span = otlp_span(run, ex.span_id, parent, f"execute_tool {ex.call.name}", 1, ex.start, ex.end, a, error=ex.error,
                     status_message=fw_status(ex.error) if ex.error else None, flags=not run.legacy)
    return SpanOut(ex.end, GENAI_SCOPE_AGENT_LEGACY if run.legacy else GENAI_SCOPE_AGENT, span)


def render(run: Run, rng: random.Random) -> list[SpanOut]:
    """A run's spans: a `chat` span per LLM call (OpenLLMetry's on a legacy run), an `execute_tool` span per
    tool execution, under the `invoke_agent` root that repeats the run's usage totals."""
    out: list[SpanOut] = []
    for step in run.steps:
        if isinstance(step, LLMCall):
            fn = openllmetry.llm_span if run.legacy else _genai_llm
            out.append(fn(run, step, run.root_span_id))
        else:
            out.append(_genai_tool(run, step, run.root_span_id))
    tin, tout = usage_totals(run)
    m = run.model
    a: list[Attr] = [("gen_ai.operation.name", "invoke_agent"), ("gen_ai.agent.name", AGENT_NAME),
                     ("gen_ai.agent.id", "support-agent-v1")]
    if run.legacy:
        a.append(("gen_ai.system", "Anthropic" if m.provider == "anthropic" else m.provider))
    else:
        a.append(("gen_ai.provider.name", m.provider))
    a += [("gen_ai.request.model", m.name), ("gen_ai.conversation.id", run.session_id),
          ("user.id", run.customer.user_id), ("enduser.id", run.customer.user_id),
          ("app.feature", run.feature), ("app.customer_id", run.customer.id), ("app.tenant_id", run.customer.tenant)]
    if run.legacy:
        a += [("gen_ai.usage.prompt_tokens", tin), ("gen_ai.usage.completion_tokens", tout)]
    else:
        a += [("gen_ai.usage.input_tokens", tin), ("gen_ai.usage.output_tokens", tout)]
    if run.error is not None:
        a.append(("error.type", run.error.type))
    root = otlp_span(run, run.root_span_id, None, f"invoke_agent {AGENT_NAME}", 1, run.start, run.end, a,
                     error=run.error, status_message=fw_status(run.error) if run.error else None, flags=not run.legacy)
    out.append(SpanOut(run.end, GENAI_SCOPE_AGENT_LEGACY if run.legacy else GENAI_SCOPE_AGENT, root))
    return out


def assign_pods(rng: random.Random, genai: list[Run]) -> list[Pod]:
    """The processes that export the runs: the batch worker, which captures no content (the runs whose
    scenario needs that, then others up to about 30%), the older deployment with OpenLLMetry (about 20%),
    staging (about 8% of the rest) and two production pods. Sets each run's pod, environment, `legacy`
    and `capture_content`."""
    g_pods = [make_pod(rng, f"genai-prod-{i}", env="production", version="1.8.0", sdk="1.45.2") for i in range(2)]
    g_pods.append(make_pod(rng, "genai-legacy", env="production", version="1.7.2", sdk="1.36.0", instance_id=False))
    g_pods.append(make_pod(rng, "genai-batch", env="production", version="1.8.0", sdk="1.45.2",
                           extra=[("support_agent.worker", "batch")]))
    g_pods.append(make_pod(rng, "genai-staging", env="staging", version="1.9.0rc1", sdk="1.45.2", simple=True))
    # The OTel GenAI default is not to capture message content: the batch worker runs that way.
    content_off = [r for r in genai if SCENARIOS[r.scenario].needs_content_off]
    others = [r for r in genai if not SCENARIOS[r.scenario].needs_content_off
              and not SCENARIOS[r.scenario].needs_content]
    content_off += rng.sample(others, max(0, min(len(others), round(len(genai) * 0.3) - len(content_off))))
    content_off.sort(key=lambda r: r.index)
    for r in content_off:
        r.capture_content, r.pod = False, "genai-batch"
    rest = [r for r in genai if r.capture_content]
    n_legacy = round(len(genai) * 0.2)
    for r in rng.sample(rest, min(n_legacy, len(rest))):
        r.legacy, r.pod = True, "genai-legacy"
    for r in rest:
        if r.legacy:
            continue
        if rng.random() < 0.08:
            r.environment, r.pod = "staging", "genai-staging"
        else:
            r.pod = f"genai-prod-{rng.randrange(2)}"
    return g_pods
