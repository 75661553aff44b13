"""support-agent.openinference.otlp.jsonl: runs as openinference-instrumentation-openai 0.1.66 and
-anthropic 0.1.19 record them, under the agent's own AGENT span (TOOL spans, and RETRIEVER spans for
about half the help-center searches). `assign_pods` says which process (3 production pods and a
staging one) exported each run; `render` makes a run's spans."""

from __future__ import annotations

import json
import random
from typing import Any

from ..content import AGENT_NAME, TOOLS
from ..helpers import NS, args_obj, cjson, pjson
from ..run import LLMCall, Run, ToolExec
from .otlp import Attr, Pod, SpanOut, fw_status, make_pod, otlp_span, truncate_recorded
from .providers import (
    anthropic_request_messages,
    anthropic_tool_schema,
    openai_request_messages,
    openai_tool_schema,
)


def _tool_mime(text: str | None) -> str:
    if text is None:
        return "text/plain"
    try:
        json.loads(text)
    except ValueError:
        return "text/plain"
    return "application/json"


OI_SCOPE_AGENT = ("support_agent", "1.8.0", "")
OI_SCOPE_OPENAI = ("openinference.instrumentation.openai", "0.1.66", "")
OI_SCOPE_ANTHROPIC = ("openinference.instrumentation.anthropic", "0.1.19", "")


def _oi_context(run: Run) -> list[Attr]:
    meta = {"feature": run.feature, "customer_id": run.customer.id, "tenant_id": run.customer.tenant}
    return [("session.id", run.session_id), ("user.id", run.customer.user_id), ("metadata", pjson(meta))]


def _oi_llm_openai(run: Run, call: LLMCall, parent: str) -> SpanOut:
    m = call.model
    req: dict[str, Any] = {"model": m.name, "messages": openai_request_messages(call.system, call.messages)}
    inv: dict[str, Any] = {"model": m.name}
    if not m.reasoning:
        req["temperature"] = call.temperature
        inv["temperature"] = call.temperature
    if call.max_tokens:
        req["max_tokens"] = call.max_tokens
        inv["max_tokens"] = call.max_tokens
    if call.tools:
        req["tools"] = [openai_tool_schema(t) for t in call.tools]
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
        a.append((f"llm.tools.{i}.tool.json_schema", pjson(openai_tool_schema(t))))
    a.append(("llm.invocation_parameters", pjson(inv)))
    for i, rm in enumerate(openai_request_messages(call.system, call.messages)):
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
    span = otlp_span(run, call.span_id, parent, "ChatCompletion", 1, call.start, call.end, a, error=call.error,
                     ok_code=1)
    return SpanOut(call.end, OI_SCOPE_OPENAI, span)


def _oi_llm_anthropic(run: Run, call: LLMCall, parent: str) -> SpanOut:
    m = call.model
    req_msgs = anthropic_request_messages(call.messages)
    kwargs: dict[str, Any] = {"max_tokens": call.max_tokens or 1024, "messages": req_msgs, "model": m.name,
                              "system": call.system, "temperature": call.temperature}
    if call.tools:
        kwargs["tools"] = [anthropic_tool_schema(t) for t in call.tools]
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
        a.append((f"llm.tools.{i}.tool.json_schema", pjson(anthropic_tool_schema(t))))
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
    span = otlp_span(run, call.span_id, parent, "Messages", 1, call.start, call.end, a, error=call.error, ok_code=1)
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
        span = otlp_span(run, ex.span_id, parent, ex.call.name, 1, ex.start, ex.end, a, ok_code=1)
        return SpanOut(ex.end, OI_SCOPE_AGENT, span)
    desc = TOOLS.get(ex.call.name, ("", {}))[0]
    a = [*ctx, ("openinference.span.kind", "TOOL"), ("tool.name", ex.call.name), ("tool.description", desc or None), ("tool.id", ex.call.id or None), ("input.value", ex.call.arguments), ("input.mime_type", "application/json")]
    if ex.result is not None:
        rec = truncate_recorded(ex.result)
        a += [("output.value", rec), ("output.mime_type", _tool_mime(rec))]
    span = otlp_span(run, ex.span_id, parent, ex.call.name, 1, ex.start, ex.end, a, error=ex.error,
                     status_message=fw_status(ex.error) if ex.error else None, ok_code=1)
    return SpanOut(ex.end, OI_SCOPE_AGENT, span)


def render(run: Run, rng: random.Random) -> list[SpanOut]:
    """A run's spans: an LLM span per call (as the openai or anthropic instrumentation records it), a TOOL
    or RETRIEVER span per tool execution, under the agent's AGENT span."""
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
    root = otlp_span(run, run.root_span_id, None, AGENT_NAME, 1, run.start, run.end, a, error=run.error,
                     status_message=fw_status(run.error) if run.error else None, ok_code=1)
    out.append(SpanOut(run.end, OI_SCOPE_AGENT, root))
    return out


def assign_pods(rng: random.Random, oi: list[Run]) -> list[Pod]:
    """The processes that export the runs: three production pods, and a staging one (a SimpleSpanProcessor)
    for about 9% of the runs. Sets each run's pod and environment."""
    oi_pods = [make_pod(rng, f"oi-prod-{i}", env="production", version="1.8.0", sdk="1.45.2",
                        extra=[("openinference.project.name", AGENT_NAME)]) for i in range(3)]
    oi_pods.append(make_pod(rng, "oi-staging", env="staging", version="1.9.0rc1", sdk="1.45.2", simple=True,
                            extra=[("openinference.project.name", AGENT_NAME + "-staging")]))
    for r in oi:
        if rng.random() < 0.09:
            r.environment, r.pod = "staging", "oi-staging"
        else:
            r.pod = f"oi-prod-{rng.randrange(3)}"
    return oi_pods
