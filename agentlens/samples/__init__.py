"""Seeded generator of realistic sample traces for a customer-support agent.

``generate(out_dir)`` writes, for the agent "support-agent" (answers tickets with an LLM and tools):

- ``support-agent.openinference.otlp.jsonl``: OTLP JSON lines (one ExportTraceServiceRequest per line),
  spans in the OpenInference dialect (openinference-instrumentation-openai / -anthropic).
- ``support-agent.genai.otlp.jsonl``: OTLP JSON lines in the OpenTelemetry GenAI conventions
  (``invoke_agent`` / ``chat`` / ``execute_tool``); about a fifth of its runs come from an older
  deployment instrumented with OpenLLMetry 0.47 (legacy ``gen_ai.system``, ``gen_ai.prompt.N.*``,
  ``gen_ai.usage.prompt_tokens`` names), and a few from a batch worker that does not capture content.
- ``agent_runs.csv``: rows of an application's own ``agent_runs`` table.
- ``labels.jsonl``: the failure modes deliberately injected into each run (names from
  ``FAILURE_MODES``) and the expected run status: ground truth for the classifiers.
- ``README.md``: what the files are and how they were made.

Everything is derived from ``random.Random`` seeded with ``seed`` and from ``start``; the wall clock is
never read, so the same arguments always produce byte-identical files. Standard library only.

Conventions the data follows (so that consumers can be tested against them):
- Input token counts INCLUDE cached tokens; cached tokens are also given separately on some calls.
  Output token counts include reasoning tokens. Counts are consistent with the text (about chars/4).
- The GenAI root span (``invoke_agent support-agent``) carries the run's usage totals, equal to the
  sum over its LLM child spans: a consumer must not count them twice.
- Irreversible tools are ``refund_order`` and ``delete_account``; a healthy run always has a
  ``request_approval`` tool span before them. ``send_email`` / ``refund_order`` / ``create_ticket`` /
  ``delete_account`` are side-effecting.
- Framework-recorded tool results longer than ``TOOL_RESULT_RECORD_LIMIT`` characters are truncated
  with a visible marker; LLM message content is recorded in full (except on the batch worker, which
  records no message content at all).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .content import (
    AGENT_NAME,
    APPROVAL_TOOL,
    ATTACKER_EMAIL,
    FEATURE_TOOLS,
    FEATURES,
    INJECTION_TEXT,
    IRREVERSIBLE_TOOLS,
    MODELS,
    REFUSAL_TEXT,
    SIDE_EFFECT_TOOLS,
    SYSTEM_PROMPT,
    TOOLS,
)
from .errors import llm_error
from .helpers import NS, args_obj, cjson, iso_z, pjson, rand_uuid4
from .payloads import make_ticket
from .planner import Planner, scaled_failures, split_runs
from .run import Err, LLMCall, Msg, Run, ToolExec, usage_totals
from .scenarios import (
    CSV_FAILURES,
    DEFAULT_SPLIT,
    FAILURE_MODES,
    GENAI_FAILURES,
    OI_FAILURES,
    SCENARIOS,
    Ctx,
    execute,
    ticket_for,
)
from .simulator import Sim

__all__ = [
    "APPROVAL_TOOL",
    "ATTACKER_EMAIL",
    "CSV_COLUMNS",
    "DEFAULT_START",
    "FAILURE_MODES",
    "FEATURES",
    "FILE_CSV",
    "FILE_GENAI",
    "FILE_LABELS",
    "FILE_OPENINFERENCE",
    "FILE_README",
    "IRREVERSIBLE_TOOLS",
    "OUTPUT_FILES",
    "REFUSAL_TEXT",
    "SIDE_EFFECT_TOOLS",
    "generate",
    "main",
]

DEFAULT_START = datetime(2026, 11, 10, tzinfo=UTC)

FILE_OPENINFERENCE = "support-agent.openinference.otlp.jsonl"
FILE_GENAI = "support-agent.genai.otlp.jsonl"
FILE_CSV = "agent_runs.csv"
FILE_LABELS = "labels.jsonl"
FILE_README = "README.md"
OUTPUT_FILES = (FILE_OPENINFERENCE, FILE_GENAI, FILE_CSV, FILE_LABELS, FILE_README)


TOOL_RESULT_RECORD_LIMIT = 4096
EXPORT_INTERVAL_NS = 5 * NS  # BatchSpanProcessor schedule_delay default


def _truncate_recorded(text: str) -> str:
    if len(text) <= TOOL_RESULT_RECORD_LIMIT:
        return text
    return text[:TOOL_RESULT_RECORD_LIMIT] + f"...[truncated, {len(text)} chars total]"


# --------------------------------------------------------------------------------------------------
# OTLP JSON encoding
# --------------------------------------------------------------------------------------------------

Attr = tuple[str, Any]


def _any_value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, (list, tuple)):
        return {"arrayValue": {"values": [_any_value(i) for i in v]}}
    return {"stringValue": str(v)}


def _attrs(items: Sequence[Attr]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any_value(v)} for k, v in items if v is not None]


@dataclass
class SpanOut:
    end: int
    scope: tuple[str, str, str]  # name, version, schemaUrl
    span: dict[str, Any]


def _span(
    run: Run, span_id: str, parent: str | None, name: str, kind: int, start: int, end: int,
    attrs: Sequence[Attr], *, error: Err | None = None, status_message: str | None = None, ok_code: int | None = None,
    flags: bool = True,
) -> dict[str, Any]:
    d: dict[str, Any] = {"traceId": run.trace_id, "spanId": span_id}
    if parent:
        d["parentSpanId"] = parent
    if flags:
        d["flags"] = 256
    d["name"] = name
    d["kind"] = kind
    d["startTimeUnixNano"] = str(start)
    d["endTimeUnixNano"] = str(end)
    d["attributes"] = _attrs(attrs)
    if error is not None:
        d["events"] = [{
            "timeUnixNano": str(end),
            "name": "exception",
            "attributes": _attrs([("exception.type", error.type), ("exception.message", error.message),
                                  ("exception.stacktrace", error.stacktrace)]),
        }]
        d["status"] = {"message": status_message if status_message is not None else error.message, "code": 2}
    elif ok_code:
        d["status"] = {"code": ok_code}
    else:
        d["status"] = {}
    return d


def _fw_status(err: Err) -> str:
    """Status description the OTel SDK sets when an exception escapes a `with start_as_current_span`."""
    return f"{err.type}: {err.message}"


def _tool_mime(text: str | None) -> str:
    if text is None:
        return "text/plain"
    try:
        json.loads(text)
    except ValueError:
        return "text/plain"
    return "application/json"


# --- OpenInference -----------------------------------------------------------------------------------

OI_SCOPE_AGENT = ("support_agent", "1.8.0", "")
OI_SCOPE_OPENAI = ("openinference.instrumentation.openai", "0.1.66", "")
OI_SCOPE_ANTHROPIC = ("openinference.instrumentation.anthropic", "0.1.19", "")


def _openai_request_messages(system: str, messages: list[Msg]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for m in messages:
        if m.role == "assistant":
            d: dict[str, Any] = {"role": "assistant"}
            if m.content:
                d["content"] = m.content
            if m.tool_calls:
                d["tool_calls"] = [{"id": c.id, "function": {"arguments": c.arguments, "name": c.name},
                                    "type": "function"} for c in m.tool_calls]
            out.append(d)
        elif m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def _anthropic_request_messages(messages: list[Msg]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "assistant":
            blocks: list[dict[str, Any]] = []
            if m.content:
                blocks.append({"type": "text", "text": m.content})
            for c in m.tool_calls:
                blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": args_obj(c.arguments)})
            out.append({"role": "assistant", "content": blocks})
        elif m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        else:
            out.append({"role": "user", "content": m.content})
    return out


def _openai_tool_schema(name: str) -> dict[str, Any]:
    desc, params = TOOLS[name]
    return {"type": "function", "function": {"name": name, "description": desc, "parameters": params}}


def _anthropic_tool_schema(name: str) -> dict[str, Any]:
    desc, params = TOOLS[name]
    return {"name": name, "description": desc, "input_schema": params}


def _oi_context(run: Run) -> list[Attr]:
    meta = {"feature": run.feature, "customer_id": run.customer.id, "tenant_id": run.customer.tenant}
    return [("session.id", run.session_id), ("user.id", run.customer.user_id), ("metadata", pjson(meta))]


def _oi_llm_openai(run: Run, call: LLMCall, parent: str) -> SpanOut:
    m = call.model
    req: dict[str, Any] = {"model": m.name, "messages": _openai_request_messages(call.system, call.messages)}
    inv: dict[str, Any] = {"model": m.name}
    if not m.reasoning:
        req["temperature"] = call.temperature
        inv["temperature"] = call.temperature
    if call.max_tokens:
        req["max_tokens"] = call.max_tokens
        inv["max_tokens"] = call.max_tokens
    if call.tools:
        req["tools"] = [_openai_tool_schema(t) for t in call.tools]
    a: list[Attr] = [*_oi_context(run), ("llm.system", "openai")]
    if m.host == "api.openai.com":
        a.append(("llm.provider", "openai"))
    a += [("input.value", pjson(req)), ("input.mime_type", "application/json")]
    u = call.usage
    if call.output is not None and u is not None:
        msg: dict[str, Any] = {"content": call.output.content, "role": "assistant"}
        if call.output.tool_calls:
            msg["tool_calls"] = [{"id": c.id, "function": {"arguments": c.arguments, "name": c.name},
                                  "type": "function"} for c in call.output.tool_calls]
        usage: dict[str, Any] = {"completion_tokens": u.output, "prompt_tokens": u.input,
                                 "total_tokens": u.input + u.output}
        if m.host == "api.openai.com":
            usage["completion_tokens_details"] = {"reasoning_tokens": u.reasoning}
            usage["prompt_tokens_details"] = {"cached_tokens": u.cache_read}
        resp = {"id": call.response_id, "choices": [{"finish_reason": call.finish_reason, "index": 0, "message": msg}],
                "created": call.end // NS, "model": m.response_model, "object": "chat.completion", "usage": usage}
        a += [("output.value", cjson(resp)), ("output.mime_type", "application/json")]
    for i, t in enumerate(call.tools):
        a.append((f"llm.tools.{i}.tool.json_schema", pjson(_openai_tool_schema(t))))
    a.append(("llm.invocation_parameters", pjson(inv)))
    for i, rm in enumerate(_openai_request_messages(call.system, call.messages)):
        p = f"llm.input_messages.{i}.message."
        a.append((p + "role", rm["role"]))
        if rm.get("content"):
            a.append((p + "content", rm["content"]))
        if rm.get("tool_call_id"):
            a.append((p + "tool_call_id", rm["tool_call_id"]))
        for k, tc in enumerate(rm.get("tool_calls", [])):
            q = f"{p}tool_calls.{k}.tool_call."
            a += [(q + "id", tc["id"]), (q + "function.name", tc["function"]["name"]),
                  (q + "function.arguments", tc["function"]["arguments"])]
    if call.output is not None and u is not None:
        a += [("llm.model_name", m.response_model), ("llm.token_count.total", u.input + u.output),
              ("llm.token_count.prompt", u.input), ("llm.token_count.completion", u.output)]
        if u.cache_read:
            a.append(("llm.token_count.prompt_details.cache_read", u.cache_read))
        if m.host == "api.openai.com":
            a.append(("llm.token_count.completion_details.reasoning", u.reasoning))
        p = "llm.output_messages.0.message."
        a.append((p + "role", "assistant"))
        if call.output.content:
            a.append((p + "content", call.output.content))
        for k, tc2 in enumerate(call.output.tool_calls):
            q = f"{p}tool_calls.{k}.tool_call."
            a += [(q + "id", tc2.id), (q + "function.name", tc2.name), (q + "function.arguments", tc2.arguments)]
        a.append(("llm.finish_reason", call.finish_reason))
    else:
        a.append(("llm.model_name", m.name))
    a.append(("openinference.span.kind", "LLM"))
    span = _span(run, call.span_id, parent, "ChatCompletion", 1, call.start, call.end, a, error=call.error,
                 ok_code=1)
    return SpanOut(call.end, OI_SCOPE_OPENAI, span)


def _oi_llm_anthropic(run: Run, call: LLMCall, parent: str) -> SpanOut:
    m = call.model
    req_msgs = _anthropic_request_messages(call.messages)
    kwargs: dict[str, Any] = {"max_tokens": call.max_tokens or 1024, "messages": req_msgs, "model": m.name,
                              "system": call.system, "temperature": call.temperature}
    if call.tools:
        kwargs["tools"] = [_anthropic_tool_schema(t) for t in call.tools]
    inv = {k: v for k, v in kwargs.items() if k != "messages"}
    a: list[Attr] = [*_oi_context(run), ("llm.provider", "anthropic"), ("llm.system", "anthropic"), ("openinference.span.kind", "LLM")]
    for i, rm in enumerate(req_msgs):
        p = f"llm.input_messages.{i}.message."
        content = rm["content"]
        if isinstance(content, str):
            a.append((p + "content", content))
        else:
            k = 0
            last_text: str | None = None
            for b in content:
                if b["type"] == "tool_use":
                    a += [(f"{p}tool_calls.{k}.tool_call.function.name", b["name"]),
                          (f"{p}tool_calls.{k}.tool_call.function.arguments", pjson(b["input"]))]
                    k += 1
                elif b["type"] == "tool_result":
                    last_text = b["content"]  # flattened: the last block's content wins
                elif b["type"] == "text":
                    last_text = b["text"]
            if last_text is not None:
                a.append((p + "content", last_text))
        a.append((p + "role", rm["role"]))
    a.append(("llm.invocation_parameters", pjson(inv)))
    for i, t in enumerate(call.tools):
        a.append((f"llm.tools.{i}.tool.json_schema", pjson(_anthropic_tool_schema(t))))
    a += [("input.value", pjson(kwargs)), ("input.mime_type", "application/json")]
    u = call.usage
    if call.output is not None and u is not None:
        a.append(("llm.model_name", m.response_model))
        p = "llm.output_messages.0.message."
        a.append((p + "role", "assistant"))
        for k, tc in enumerate(call.output.tool_calls):
            a += [(f"{p}tool_calls.{k}.tool_call.function.name", tc.name),
                  (f"{p}tool_calls.{k}.tool_call.function.arguments", pjson(args_obj(tc.arguments)))]
        if call.output.content:
            a.append((p + "content", call.output.content))
        plain_in = u.input - u.cache_read - u.cache_write
        a += [("llm.token_count.prompt", u.input), ("llm.token_count.completion", u.output),
              ("llm.token_count.total", u.input + u.output)]
        if u.cache_read:
            a.append(("llm.token_count.prompt_details.cache_read", u.cache_read))
        if u.cache_write:
            a.append(("llm.token_count.prompt_details.cache_write", u.cache_write))
        blocks: list[dict[str, Any]] = []
        if call.output.content:
            blocks.append({"citations": None, "text": call.output.content, "type": "text"})
        for tc in call.output.tool_calls:
            blocks.append({"id": tc.id, "input": args_obj(tc.arguments), "name": tc.name, "type": "tool_use"})
        resp = {"id": call.response_id, "content": blocks, "model": m.response_model, "role": "assistant",
                "stop_reason": call.finish_reason, "stop_sequence": None, "type": "message",
                "usage": {"cache_creation_input_tokens": u.cache_write, "cache_read_input_tokens": u.cache_read,
                          "input_tokens": plain_in, "output_tokens": u.output, "service_tier": "standard"}}
        a += [("output.value", cjson(resp)), ("output.mime_type", "application/json")]
    else:
        a.insert(len(_oi_context(run)), ("llm.model_name", m.name))
    span = _span(run, call.span_id, parent, "Messages", 1, call.start, call.end, a, error=call.error, ok_code=1)
    return SpanOut(call.end, OI_SCOPE_ANTHROPIC, span)


def _oi_tool(run: Run, ex: ToolExec, parent: str, as_retriever: bool) -> SpanOut:
    ctx = _oi_context(run)
    if as_retriever and ex.docs is not None and ex.error is None:
        q = args_obj(ex.call.arguments)
        a: list[Attr] = [*ctx, ("openinference.span.kind", "RETRIEVER"), ("input.value", q.get("query", "") if isinstance(q, dict) else str(q)), ("input.mime_type", "text/plain")]
        for i, d in enumerate(ex.docs):
            p = f"retrieval.documents.{i}.document."
            a += [(p + "id", d.id), (p + "content", d.content), (p + "score", d.score),
                  (p + "metadata", pjson({"title": d.title, "source": "helpcenter"}))]
        span = _span(run, ex.span_id, parent, ex.call.name, 1, ex.start, ex.end, a, ok_code=1)
        return SpanOut(ex.end, OI_SCOPE_AGENT, span)
    desc = TOOLS.get(ex.call.name, ("", {}))[0]
    a = [*ctx, ("openinference.span.kind", "TOOL"), ("tool.name", ex.call.name), ("tool.description", desc or None), ("tool.id", ex.call.id or None), ("input.value", ex.call.arguments), ("input.mime_type", "application/json")]
    if ex.result is not None:
        rec = _truncate_recorded(ex.result)
        a += [("output.value", rec), ("output.mime_type", _tool_mime(rec))]
    span = _span(run, ex.span_id, parent, ex.call.name, 1, ex.start, ex.end, a, error=ex.error,
                 status_message=_fw_status(ex.error) if ex.error else None, ok_code=1)
    return SpanOut(ex.end, OI_SCOPE_AGENT, span)


def render_openinference(run: Run, rng: random.Random) -> list[SpanOut]:
    out: list[SpanOut] = []
    for step in run.steps:
        if isinstance(step, LLMCall):
            fn = _oi_llm_anthropic if step.model.provider == "anthropic" else _oi_llm_openai
            out.append(fn(run, step, run.root_span_id))
        else:
            out.append(_oi_tool(run, step, run.root_span_id, as_retriever=rng.random() < 0.5))
    a: list[Attr] = [*_oi_context(run), ("tag.tags", ["support", run.feature]), ("openinference.span.kind", "AGENT"), ("agent.name", AGENT_NAME), ("input.value", run.user_text), ("input.mime_type", "text/plain")]
    if run.answer is not None:
        a += [("output.value", run.answer), ("output.mime_type", "text/plain")]
    root = _span(run, run.root_span_id, None, AGENT_NAME, 1, run.start, run.end, a, error=run.error,
                 status_message=_fw_status(run.error) if run.error else None, ok_code=1)
    out.append(SpanOut(run.end, OI_SCOPE_AGENT, root))
    return out


# --- OTel GenAI (new names) and OpenLLMetry 0.47 (legacy names) ----------------------------------------

GENAI_SCOPE_AGENT = ("support_agent", "1.8.0", "")
GENAI_SCOPE_AGENT_LEGACY = ("support_agent", "1.7.2", "")
GENAI_SCOPE_LLM = ("opentelemetry.util.genai.handler", "1.1b0", "https://opentelemetry.io/schemas/1.37.0")
LEGACY_SCOPE_OPENAI = ("opentelemetry.instrumentation.openai.v1", "0.47.3", "")
LEGACY_SCOPE_ANTHROPIC = ("opentelemetry.instrumentation.anthropic", "0.47.3", "")


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
    span = _span(run, call.span_id, parent, f"chat {m.name}", 3, call.start, call.end, a, error=call.error)
    return SpanOut(call.end, GENAI_SCOPE_LLM, span)


def _legacy_llm(run: Run, call: LLMCall, parent: str) -> SpanOut:
    m = call.model
    anth = m.provider == "anthropic"
    a: list[Attr] = [("llm.request.type", "chat"), ("gen_ai.system", "Anthropic" if anth else "openai"),
                     ("gen_ai.request.model", m.name)]
    if call.max_tokens or anth:
        a.append(("gen_ai.request.max_tokens", call.max_tokens or 1024))
    if not m.reasoning:
        a.append(("gen_ai.request.temperature", call.temperature))
    if not anth:
        a += [("llm.headers", "None"), ("llm.is_streaming", False),
              ("gen_ai.openai.api_base", f"https://{m.host}/v1/" if m.port == 443 else f"http://{m.host}:{m.port}/v1/")]
    a += [("traceloop.association.properties.session_id", run.session_id),
          ("traceloop.association.properties.user_id", run.customer.user_id)]
    if anth:
        prompts: list[dict[str, Any]] = [{"role": "system", "content": call.system}]
        for rm in _anthropic_request_messages(call.messages):
            c = rm["content"]
            prompts.append({"role": rm["role"], "content": c if isinstance(c, str) else pjson(c)})
    else:
        prompts = _openai_request_messages(call.system, call.messages)
    for i, pm in enumerate(prompts):
        p = f"gen_ai.prompt.{i}."
        a.append((p + "role", pm["role"]))
        if pm.get("content"):
            a.append((p + "content", pm["content"]))
        for k, tc in enumerate(pm.get("tool_calls", [])):
            a += [(f"{p}tool_calls.{k}.id", tc["id"]), (f"{p}tool_calls.{k}.name", tc["function"]["name"]),
                  (f"{p}tool_calls.{k}.arguments", tc["function"]["arguments"])]
        if pm.get("tool_call_id"):
            a.append((p + "tool_call_id", pm["tool_call_id"]))
    for i, t in enumerate(call.tools):
        p = f"llm.request.functions.{i}."
        a += [(p + "name", t), (p + "description", TOOLS[t][0]), (p + "parameters", pjson(TOOLS[t][1]))]
    u = call.usage
    if call.output is not None and u is not None:
        a += [("gen_ai.response.model", m.response_model), ("gen_ai.response.id", call.response_id),
              ("llm.usage.total_tokens", u.input + u.output), ("gen_ai.usage.completion_tokens", u.output),
              ("gen_ai.usage.prompt_tokens", u.input)]
        if u.cache_read:
            a.append(("gen_ai.usage.cache_read_input_tokens", u.cache_read))
        if u.cache_write:
            a.append(("gen_ai.usage.cache_creation_input_tokens", u.cache_write))
        if m.host == "api.openai.com":
            a.append(("llm.usage.reasoning_tokens", u.reasoning))
        p = "gen_ai.completion.0."
        a += [(p + "finish_reason", call.finish_reason), (p + "role", "assistant")]
        if call.output.content:
            a.append((p + "content", call.output.content))
        for k, tc2 in enumerate(call.output.tool_calls):
            a += [(f"{p}tool_calls.{k}.id", tc2.id), (f"{p}tool_calls.{k}.name", tc2.name),
                  (f"{p}tool_calls.{k}.arguments", tc2.arguments)]
    if call.error is not None:
        a.append(("error.type", call.error.type))
    name = "anthropic.chat" if anth else "openai.chat"
    span = _span(run, call.span_id, parent, name, 3, call.start, call.end, a, error=call.error, flags=False)
    return SpanOut(call.end, LEGACY_SCOPE_ANTHROPIC if anth else LEGACY_SCOPE_OPENAI, span)


def _genai_tool(run: Run, ex: ToolExec, parent: str) -> SpanOut:
    a: list[Attr] = [("gen_ai.operation.name", "execute_tool"), ("gen_ai.tool.name", ex.call.name),
                     ("gen_ai.tool.type", "datastore" if ex.call.name == "search_kb" else "function"),
                     ("gen_ai.tool.call.id", ex.call.id or None)]
    if ex.call.name in TOOLS:
        a.append(("gen_ai.tool.description", TOOLS[ex.call.name][0]))
    a.append(("gen_ai.tool.call.arguments", ex.call.arguments))
    if ex.result is not None:
        a.append(("gen_ai.tool.call.result", _truncate_recorded(ex.result)))
    if ex.error is not None:
        a.append(("error.type", ex.error.type))
    span = _span(run, ex.span_id, parent, f"execute_tool {ex.call.name}", 1, ex.start, ex.end, a, error=ex.error,
                 status_message=_fw_status(ex.error) if ex.error else None, flags=not run.legacy)
    return SpanOut(ex.end, GENAI_SCOPE_AGENT_LEGACY if run.legacy else GENAI_SCOPE_AGENT, span)


def render_genai(run: Run, rng: random.Random) -> list[SpanOut]:
    out: list[SpanOut] = []
    for step in run.steps:
        if isinstance(step, LLMCall):
            fn = _legacy_llm if run.legacy else _genai_llm
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
    root = _span(run, run.root_span_id, None, f"invoke_agent {AGENT_NAME}", 1, run.start, run.end, a,
                 error=run.error, status_message=_fw_status(run.error) if run.error else None, flags=not run.legacy)
    out.append(SpanOut(run.end, GENAI_SCOPE_AGENT_LEGACY if run.legacy else GENAI_SCOPE_AGENT, root))
    return out


# --- processes (resources) and export batching --------------------------------------------------------


@dataclass
class Pod:
    key: str
    resource: list[Attr]
    simple: bool  # SimpleSpanProcessor: one span per export (line)
    phase: int  # BatchSpanProcessor timer offset, ns
    lines: list[tuple[int, int, list[SpanOut]]] = field(default_factory=list)


def _pod(rng: random.Random, key: str, *, env: str, version: str, sdk: str, simple: bool = False,
         extra: Sequence[Attr] = (), instance_id: bool = True) -> Pod:
    res: list[Attr] = [("telemetry.sdk.language", "python"), ("telemetry.sdk.name", "opentelemetry"),
                       ("telemetry.sdk.version", sdk)]
    if instance_id:
        res.append(("service.instance.id", rand_uuid4(rng)))
    res += [("service.name", AGENT_NAME), ("service.version", version), ("deployment.environment.name", env)]
    res += list(extra)
    return Pod(key, res, simple, rng.randrange(EXPORT_INTERVAL_NS))


def _export_lines(pods: list[Pod], spans: dict[str, list[SpanOut]]) -> list[str]:
    entries: list[tuple[int, int, int, Pod, list[SpanOut]]] = []
    for pi, pod in enumerate(pods):
        items = sorted(spans.get(pod.key, []), key=lambda s: (s.end, s.span["spanId"]))
        if pod.simple:
            for j, so in enumerate(items):
                entries.append((so.end, pi, j, pod, [so]))
            continue
        batches: dict[int, list[SpanOut]] = {}
        for so in items:
            k = math.ceil((so.end - pod.phase) / EXPORT_INTERVAL_NS)
            batches.setdefault(k, []).append(so)
        for k, group in batches.items():
            entries.append((pod.phase + k * EXPORT_INTERVAL_NS, pi, 0, pod, group))
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    lines = []
    for _, _, _, pod, group in entries:
        scopes: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for so in group:
            scopes.setdefault(so.scope, []).append(so.span)
        scope_spans = []
        for (name, version, schema), sp in scopes.items():
            sc: dict[str, Any] = {"scope": {"name": name, "version": version}, "spans": sp}
            if schema:
                sc["schemaUrl"] = schema
            scope_spans.append(sc)
        req = {"resourceSpans": [{"resource": {"attributes": _attrs(pod.resource)}, "scopeSpans": scope_spans}]}
        lines.append(cjson(req))
    return lines


# --------------------------------------------------------------------------------------------------
# agent_runs.csv
# --------------------------------------------------------------------------------------------------

CSV_COLUMNS = ("id", "user_id", "request", "response", "tokens_in", "tokens_out", "cost_usd", "created_at")


def _csv_row(run: Run, seed: int, row_id: int) -> tuple[dict[str, Any], str]:
    rng = random.Random(f"{seed}/{run.file}/{run.index}/{run.scenario}")
    mode = run.scenario
    scen_map = {"prompt_injection": "healthy", "xss": "xss", "refusal": "refusal"}
    sim_scenario = scen_map.get(mode, "healthy")
    if mode == "prompt_injection":
        run.user_text = make_ticket(rng, run, extra=INJECTION_TEXT)
    else:
        run.scenario = sim_scenario
        run.user_text = ticket_for(run, rng)
        run.scenario = mode
    sim = Sim(run, rng, run.start)
    status = "ok"
    error: str | None = None
    answer: str | None = SCENARIOS[sim_scenario].fn(Ctx(sim, run, rng)) if mode not in (
        "provider_error", "rate_limited", "timeout", "context_overflow") else None
    m = run.model
    if mode == "provider_error":
        error = "InternalServerError: " + llm_error("server", m, rng).message
    elif mode == "rate_limited":
        error = "RateLimitError: " + llm_error("rate_limit", m, rng).message
    elif mode == "timeout":
        error = "APITimeoutError: Request timed out."
    elif mode == "context_overflow":
        toks = m.context_window + rng.randint(800, 9000)
        error = ("BadRequestError: Error code: 400 - {'error': {'message': \"This model's maximum context length "
                 f"is {m.context_window} tokens. However, your messages resulted in {toks} tokens. Please reduce "
                 "the length of the messages.\", 'type': 'invalid_request_error', 'param': 'messages', "
                 "'code': 'context_length_exceeded'}}")
    if error is not None:
        status = "error"
        # a failed request returns no usage; tokens are those of the calls that succeeded before it
        tin = tout = 0
        if mode != "context_overflow" and rng.random() < 0.5:
            tin = sim.input_tokens(SYSTEM_PROMPT, sim.messages, FEATURE_TOOLS[run.feature])
            tout = rng.randint(14, 30)
        response = cjson({"error": error})
    else:
        tin, tout = usage_totals(run)
        response = answer or ""
    if mode == "budget_exceeded":
        tin = rng.randint(290_000, 520_000)
        tout = rng.randint(12_000, 26_000)
    run.end = max(sim.t, run.start + NS) + int(rng.uniform(0.005, 0.05) * NS)
    cost = tin * m.usd_in / 1e6 + tout * m.usd_out / 1e6
    request = {
        "model": m.name,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": run.user_text}],
        "temperature": 0.2,
        "metadata": {"feature": run.feature, "customer_id": run.customer.id, "session_id": run.session_id},
    }
    row = {
        "id": row_id, "user_id": run.customer.user_id, "request": cjson(request), "response": response,
        "tokens_in": tin, "tokens_out": tout, "cost_usd": f"{cost:.6f}", "created_at": iso_z(run.end),
    }
    run.answer = answer
    run.modes = (mode,) if mode in FAILURE_MODES else ()
    return row, status


# --------------------------------------------------------------------------------------------------
# generate()
# --------------------------------------------------------------------------------------------------


def _plan_all(seed: int, runs: int, days: int, start: datetime) -> tuple[Planner, list[Run], list[Run], list[Run]]:
    n_oi, n_genai, n_csv = split_runs(runs)
    planner = Planner(seed, start, days)
    oi = planner.plan(FILE_OPENINFERENCE, n_oi,
                      scaled_failures(OI_FAILURES, n_oi, DEFAULT_SPLIT[0]) + (["xss"] if n_oi >= 10 else []))
    genai = planner.plan(FILE_GENAI, n_genai, scaled_failures(GENAI_FAILURES, n_genai, DEFAULT_SPLIT[1]))
    csv_runs = planner.plan(FILE_CSV, n_csv, scaled_failures(CSV_FAILURES, n_csv, DEFAULT_SPLIT[2])
                            + (["xss"] if n_csv >= 10 else []))
    for r in csv_runs:
        if r.scenario == "budget_exceeded":
            r.model = MODELS["gpt-4o"]
    # sessions: a customer's follow-up within a few hours (same system) continues the session
    for r in sorted(oi + genai + csv_runs, key=lambda r: (r.start, r.file, r.index)):
        r.session_id = planner.session_for(r.file, r.customer, r.start)
    return planner, oi, genai, csv_runs


def _assign_oi_pods(rng: random.Random, oi: list[Run]) -> list[Pod]:
    oi_pods = [_pod(rng, f"oi-prod-{i}", env="production", version="1.8.0", sdk="1.45.2",
                    extra=[("openinference.project.name", AGENT_NAME)]) for i in range(3)]
    oi_pods.append(_pod(rng, "oi-staging", env="staging", version="1.9.0rc1", sdk="1.45.2", simple=True,
                        extra=[("openinference.project.name", AGENT_NAME + "-staging")]))
    for r in oi:
        if rng.random() < 0.09:
            r.environment, r.pod = "staging", "oi-staging"
        else:
            r.pod = f"oi-prod-{rng.randrange(3)}"
    return oi_pods


def _assign_genai_pods(rng: random.Random, genai: list[Run]) -> list[Pod]:
    g_pods = [_pod(rng, f"genai-prod-{i}", env="production", version="1.8.0", sdk="1.45.2") for i in range(2)]
    g_pods.append(_pod(rng, "genai-legacy", env="production", version="1.7.2", sdk="1.36.0", instance_id=False))
    g_pods.append(_pod(rng, "genai-batch", env="production", version="1.8.0", sdk="1.45.2",
                       extra=[("support_agent.worker", "batch")]))
    g_pods.append(_pod(rng, "genai-staging", env="staging", version="1.9.0rc1", sdk="1.45.2", simple=True))
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


def _readme(manifest: dict[str, Any]) -> str:
    f = manifest["files"]
    mode_lines = "\n".join(f"| `{m}` | {n} |" for m, n in manifest["modes"].items())
    return f"""# Sample traces

Synthetic but realistic traces of **support-agent**, a customer-support agent that answers tickets
with an LLM and tools (`search_kb`, `get_order`, `lookup_customer`, `send_email`, `refund_order`,
`create_ticket`, `delete_account`, `web_fetch`, and the approval step `request_approval`).

Generated by `agentlens/samples/`, seeded and deterministic (same arguments, same bytes):

    python -m agentlens.samples sample_traces --seed {manifest['seed']} --runs {manifest['runs']} --days {manifest['days']}

Do not edit these files by hand: a test regenerates them and fails when they drift.
Times start at {manifest['start']} and spread over {manifest['days']} days with a daily traffic shape.

| file | what | runs | spans | bytes |
|---|---|---|---|---|
| `{FILE_OPENINFERENCE}` | OTLP JSON lines, OpenInference spans (openinference-instrumentation-openai 0.1.66 / -anthropic) | {f[FILE_OPENINFERENCE]['runs']} | {f[FILE_OPENINFERENCE]['spans']} | {f[FILE_OPENINFERENCE]['bytes']} |
| `{FILE_GENAI}` | OTLP JSON lines, OTel GenAI conventions (`invoke_agent`/`chat`/`execute_tool`); {f[FILE_GENAI]['legacy_runs']} runs with OpenLLMetry 0.47 legacy names, {f[FILE_GENAI]['no_content_runs']} without message content | {f[FILE_GENAI]['runs']} | {f[FILE_GENAI]['spans']} | {f[FILE_GENAI]['bytes']} |
| `{FILE_CSV}` | rows of an `agent_runs` table (`id,user_id,request,response,tokens_in,tokens_out,cost_usd,created_at`) | {f[FILE_CSV]['runs']} | - | {f[FILE_CSV]['bytes']} |
| `{FILE_LABELS}` | ground truth: one line per run, `{{"run_id", "file", "modes", "status"}}` | {f[FILE_LABELS]['runs']} | - | {f[FILE_LABELS]['bytes']} |

OTLP files follow the OTel file-exporter layout: one `ExportTraceServiceRequest` per line, lowercase
hex ids, `intValue` as strings, integer `kind`, no `parentSpanId` on roots, `"status": {{}}` when unset.
Spans are written as a BatchSpanProcessor would (children before parents, a trace often split over
several lines); staging pods use a SimpleSpanProcessor (one span per line).

Conventions: input token counts include cached tokens (given separately on some calls); output
counts include reasoning tokens; the GenAI root `invoke_agent` span repeats the run's usage totals
(the sum of its LLM children: do not add them twice). `run_id` in labels is the 32-hex `traceId`
for OTLP runs and the `id` for `agent_runs` rows. A run labelled `"status": "error"` has a failed
root span (OTLP) or an `{{"error": ...}}` response (CSV). One run in each of the OpenInference and
CSV files carries untrusted HTML/markdown in the user message (`<script>`, `<img onerror>`, a link)
for rendering tests; it is otherwise healthy.

Injected failure modes (runs per mode; a run can have several; {manifest['healthy_runs']} of {manifest['runs']} runs are healthy):

| mode | runs |
|---|---|
{mode_lines}
"""


Render = Callable[[Run, random.Random], list[SpanOut]]


def _run_label(run_id: str, file: str, modes: Sequence[str], status: str) -> dict[str, Any]:
    """A line of labels.jsonl: the failure modes injected into a run (in the catalogue's order), its status."""
    return {"run_id": run_id, "file": file, "modes": sorted(modes, key=FAILURE_MODES.index), "status": status}


def _write_otlp(
    out_dir: Path, name: str, seed: int, runs: list[Run], pods: list[Pod], render: Render,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Write the OTLP JSON lines file `name`: each run rendered into spans by `render` (with its own seeded
    rng), exported as its pod would. Returns the file's counts and the runs' labels."""
    by_pod: dict[str, list[SpanOut]] = {}
    labels: list[dict[str, Any]] = []
    n_spans = 0
    for r in runs:
        spans = render(r, random.Random(f"{seed}/{name}/{r.index}/render"))
        n_spans += len(spans)
        by_pod.setdefault(r.pod, []).extend(spans)
        labels.append(_run_label(r.trace_id, name, r.modes, "error" if r.error else "ok"))
    lines = _export_lines(pods, by_pod)
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    (out_dir / name).write_bytes(data)
    return {"bytes": len(data), "lines": len(lines), "runs": len(runs), "spans": n_spans}, labels


def _write_agent_runs(out_dir: Path, seed: int, runs: list[Run]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Write agent_runs.csv: a row per run, in order of creation (`created_at`), ids from 1001. Returns the
    file's counts and the runs' labels."""
    rows: list[tuple[int, dict[str, Any], tuple[str, ...], str]] = []
    for r in runs:
        row, status = _csv_row(r, seed, 0)
        rows.append((r.end, row, r.modes, status))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    labels: list[dict[str, Any]] = []
    for n, (_, row, modes, status) in enumerate(sorted(rows, key=lambda x: x[0])):
        row["id"] = 1001 + n
        w.writerow(row)
        labels.append(_run_label(str(row["id"]), FILE_CSV, modes, status))
    data = buf.getvalue().encode("utf-8")
    (out_dir / FILE_CSV).write_bytes(data)
    return {"bytes": len(data), "lines": len(rows) + 1, "runs": len(rows)}, labels


def _write_labels(out_dir: Path, labels: list[dict[str, Any]]) -> dict[str, Any]:
    """Write labels.jsonl, a line per run: the ground truth for the classifiers."""
    data = "".join(cjson(lab) + "\n" for lab in labels).encode("utf-8")
    (out_dir / FILE_LABELS).write_bytes(data)
    return {"bytes": len(data), "lines": len(labels), "runs": len(labels)}


def _write_readme(out_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write the README of the files the manifest lists."""
    data = _readme(manifest).encode("utf-8")
    (out_dir / FILE_README).write_bytes(data)
    return {"bytes": len(data)}


def generate(
    out_dir: str | Path,
    *,
    seed: int = 42,
    runs: int = 120,
    days: int = 5,
    start: datetime | None = None,
) -> dict[str, Any]:
    """Write the sample files into ``out_dir`` and return a manifest (files written and counts)."""
    if runs < 0 or days < 1:
        raise ValueError("runs must be >= 0 and days >= 1")
    start = start or DEFAULT_START
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    planner, oi, genai, csv_runs = _plan_all(seed, runs, days, start)
    for r in oi + genai:
        execute(r, seed)
    oi_pods = _assign_oi_pods(planner.rng, oi)
    genai_pods = _assign_genai_pods(planner.rng, genai)

    files: dict[str, dict[str, Any]] = {}
    files[FILE_OPENINFERENCE], oi_labels = _write_otlp(out, FILE_OPENINFERENCE, seed, oi, oi_pods,
                                                       render_openinference)
    files[FILE_GENAI], genai_labels = _write_otlp(out, FILE_GENAI, seed, genai, genai_pods, render_genai)
    files[FILE_GENAI]["legacy_runs"] = sum(r.legacy for r in genai)
    files[FILE_GENAI]["no_content_runs"] = sum(not r.capture_content for r in genai)
    files[FILE_CSV], csv_labels = _write_agent_runs(out, seed, csv_runs)
    labels = oi_labels + genai_labels + csv_labels
    files[FILE_LABELS] = _write_labels(out, labels)

    modes = {m: sum(m in lab["modes"] for lab in labels) for m in FAILURE_MODES}
    manifest: dict[str, Any] = {
        "seed": seed, "runs": runs, "days": days, "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": files, "modes": modes,
        "healthy_runs": sum(not lab["modes"] for lab in labels),
        "error_runs": sum(lab["status"] == "error" for lab in labels),
    }
    files[FILE_README] = _write_readme(out, manifest)
    manifest["total_bytes"] = sum(f["bytes"] for f in files.values())
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agentlens.samples",
                                description="Write seeded sample traces of a support agent.")
    p.add_argument("out_dir", help="directory to write into (created if missing)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--runs", type=int, default=120, help="total runs over the three trace files")
    p.add_argument("--days", type=int, default=5)
    args = p.parse_args(argv)
    manifest = generate(args.out_dir, seed=args.seed, runs=args.runs, days=args.days)
    for name, info in manifest["files"].items():
        extra = f", {info['runs']} runs" if "runs" in info else ""
        extra += f", {info['spans']} spans" if "spans" in info else ""
        print(f"{Path(args.out_dir) / name}: {info['bytes']} bytes{extra}")
    modes = ", ".join(f"{m}={n}" for m, n in manifest["modes"].items())
    print(f"healthy runs: {manifest['healthy_runs']}/{manifest['runs']}; modes: {modes}")
    return 0
