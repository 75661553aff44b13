"""LLM spans with the legacy names of OpenLLMetry 0.47 (opentelemetry-instrumentation-openai /
-anthropic): `gen_ai.system`, `gen_ai.prompt.N.*` / `gen_ai.completion.N.*`, `gen_ai.usage.prompt_tokens`,
`llm.request.functions.N.*`. The GenAI file's runs from the older deployment have these LLM spans
(see otlp_genai.render)."""

from __future__ import annotations

from typing import Any

from ..content import TOOLS
from ..helpers import pjson
from ..run import LLMCall, Run
from .otlp import Attr, SpanOut, otlp_span
from .providers import anthropic_request_messages, openai_request_messages

LEGACY_SCOPE_OPENAI = ("opentelemetry.instrumentation.openai.v1", "0.47.3", "")
LEGACY_SCOPE_ANTHROPIC = ("opentelemetry.instrumentation.anthropic", "0.47.3", "")


def llm_span(run: Run, call: LLMCall, parent: str) -> SpanOut:
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
        for rm in anthropic_request_messages(call.messages):
            c = rm["content"]
            prompts.append({"role": rm["role"], "content": c if isinstance(c, str) else pjson(c)})
    else:
        prompts = openai_request_messages(call.system, call.messages)
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
    span = otlp_span(run, call.span_id, parent, name, 3, call.start, call.end, a, error=call.error, flags=False)
    return SpanOut(call.end, LEGACY_SCOPE_ANTHROPIC if anth else LEGACY_SCOPE_OPENAI, span)
