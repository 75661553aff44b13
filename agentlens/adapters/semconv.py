"""Attribute dialects -> canonical span fields.

One pure function, `normalize_span`, maps the flattened attributes of a span in any of the
dialects we meet (OTel GenAI new and legacy, OpenInference, OpenLLMetry / Traceloop, Vercel AI
SDK `ai.*`, LangSmith's and Langfuse's OTel attributes) onto the canonical span columns. Names
come from `../shared/reference/trace-formats.md` (section 8 is the cross-format table).

Lenient in: unknown kinds become `other`, missing fields stay NULL, never an exception for an
odd value. The adapters handle structure; this module handles meaning.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from ..core.config import Config
from .base import to_json

_decode = msgspec.json.decode

# --- span kind ------------------------------------------------------------------------------------

OPENINFERENCE_KINDS = {
    "LLM": "llm", "EMBEDDING": "embedding", "CHAIN": "chain", "RETRIEVER": "retriever",
    "RERANKER": "retriever", "TOOL": "tool", "AGENT": "agent", "GUARDRAIL": "guardrail",
    "EVALUATOR": "other", "PROMPT": "other", "UNKNOWN": "other", "DECISION": "chain",
}
GENAI_OPERATIONS = {
    "chat": "llm", "text_completion": "llm", "generate_content": "llm", "completion": "llm",
    "generate": "llm", "llm_request": "llm", "responses": "llm",
    "embeddings": "embedding",
    "retrieval": "retriever", "vector_db_retrieve": "retriever", "search_memory": "retriever",
    "execute_tool": "tool",
    "invoke_agent": "agent", "create_agent": "agent",
    "invoke_workflow": "chain", "execute_task": "chain", "plan": "chain",
}
TRACELOOP_KINDS = {"workflow": "chain", "task": "chain", "agent": "agent", "tool": "tool"}
LLM_REQUEST_TYPES = {"chat": "llm", "completion": "llm", "embedding": "embedding", "rerank": "retriever"}
LANGSMITH_KINDS = {
    "llm": "llm", "chain": "chain", "tool": "tool", "retriever": "retriever",
    "embedding": "embedding", "prompt": "chain", "parser": "chain",
}
LANGFUSE_TYPES = {
    "generation": "llm", "embedding": "embedding", "agent": "agent", "tool": "tool",
    "chain": "chain", "retriever": "retriever", "guardrail": "guardrail", "evaluator": "other",
    "span": "other", "event": "other",
}
_VERCEL_LLM = re.compile(r"^ai\.(generateText|streamText|generateObject|streamObject)\.do(Generate|Stream)$")


# beeai's OpenInference instrumentation turns each event of its emitter into a span named `<event path>-<n>`:
# a model call is `backend.openai.chat.start-16`, `.success-16`, `.finish-16` (and `.error`, `.retry`,
# `.new_token`), a tool call `tool.search.wikipedia.start-12`, `.success-12`, `.finish-12`, an agent step
# `agent.react.start-4`, `.update-13`, `.partial_update-263`, `.success-2`. The `start` span is the call (the
# model call's carries its input); the others are events of it, kind `other`, so a call counts once. They
# cannot be joined back to their call: `<n>` counts each event path on its own, and their parents differ.
_EMITTER_EVENT = re.compile(r"^[\w-]+(?:\.[\w-]+)+\.(start|success|error|finish|retry|update|partial_update|new_token)-\d+$")


def span_kind(attrs: Mapping[str, Any], name: str) -> str:
    v = attrs.get("openinference.span.kind")
    if isinstance(v, str) and v.upper() in OPENINFERENCE_KINDS:
        m = _EMITTER_EVENT.match(name)
        if m is not None and m.group(1) != "start":
            return "other"
        if v.upper() == "TOOL" and name.startswith("handoff to ") and "tool.name" not in attrs:
            # the OpenAI Agents SDK's handoff (HandoffSpanData), which OpenInference records as a TOOL span
            # named after the agent it hands to, with the two agents as input and output: no tool ran
            return "handoff"
        return OPENINFERENCE_KINDS[v.upper()]
    v = attrs.get("gen_ai.operation.name")
    if isinstance(v, str) and v in GENAI_OPERATIONS:
        return GENAI_OPERATIONS[v]
    v = attrs.get("traceloop.span.kind")
    if isinstance(v, str) and v in TRACELOOP_KINDS:
        return TRACELOOP_KINDS[v]
    v = attrs.get("llm.request.type")
    if isinstance(v, str) and v in LLM_REQUEST_TYPES:
        return LLM_REQUEST_TYPES[v]
    v = attrs.get("langsmith.span.kind")
    if isinstance(v, str) and v.lower() in LANGSMITH_KINDS:
        return LANGSMITH_KINDS[v.lower()]
    v = attrs.get("langfuse.observation.type")
    if isinstance(v, str) and v.lower() in LANGFUSE_TYPES:
        return LANGFUSE_TYPES[v.lower()]
    if _VERCEL_LLM.match(name):
        return "llm"
    if name == "ai.toolCall" or "gen_ai.tool.name" in attrs or "tool.name" in attrs:
        return "tool"
    if isinstance(v := attrs.get("gen_ai.operation.name"), str):
        return "other"
    if _first(attrs, INPUT_TOKENS) is not None and _first(attrs, MODEL) is not None:
        return "llm"
    if isinstance(attrs.get("gen_ai.agent.name") or attrs.get("agent_name"), str):
        return "agent"  # a span that names its agent and no operation: pydantic-ai's "<agent> run"
    return "other"


# --- scalar fields: first key present wins ------------------------------------------------------

MODEL = ("gen_ai.response.model", "llm.model_name", "llm.response.model_name", "gen_ai.request.model",
         "llm.request.model_name", "ai.response.model", "ai.model.id", "langfuse.observation.model.name")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system", "ai.model.provider")
INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt",
                "llm.usage.prompt_tokens", "ai.usage.inputTokens", "ai.usage.promptTokens")
OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                 "llm.token_count.completion", "llm.usage.completion_tokens",
                 "ai.usage.outputTokens", "ai.usage.completionTokens")
CACHE_READ = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
              "llm.token_count.prompt_details.cache_read", "ai.usage.cachedInputTokens",
              "gen_ai.usage.details.cache_read_tokens")  # pydantic-ai
CACHE_WRITE = ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens",
               "llm.token_count.prompt_details.cache_write", "gen_ai.usage.details.cache_write_tokens")
REASONING = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
             "llm.usage.reasoning_tokens", "llm.token_count.completion_details.reasoning",
             "ai.usage.reasoningTokens",
             "gen_ai.usage.details.reasoning_tokens")  # pydantic-ai: the provider's usage details
TOTAL_TOKENS = ("llm.token_count.total", "gen_ai.usage.total_tokens", "llm.usage.total_tokens", "ai.usage.totalTokens")
COST = ("llm.cost.total", "gen_ai.usage.cost", "operation.cost")  # pydantic-ai: `operation.cost` (USD)
TOOL_NAME = ("gen_ai.tool.name", "tool.name", "ai.toolCall.name")
TOOL_CALL_ID = ("gen_ai.tool.call.id", "tool.id", "tool_call.id", "ai.toolCall.id")
TOOL_ARGS = ("gen_ai.tool.call.arguments", "ai.toolCall.args")
TOOL_RESULT = ("gen_ai.tool.call.result", "ai.toolCall.result")
ERROR_TYPE = ("error.type", "exception.type")
TTFT_SECONDS = ("gen_ai.response.time_to_first_chunk",)
TTFT_MS = ("ai.response.msToFirstChunk", "ai.stream.msToFirstChunk",
           "time_to_first_token_ms")  # OpenInference's Agents SDK instrumentation, realtime sessions


def _first(attrs: Mapping[str, Any], keys: Iterable[str]) -> Any:
    for k in keys:
        v = attrs.get(k)
        if v is not None and v != "":
            return v
    return None


def as_int(v: Any) -> int | None:
    """Token counts: ints, numeric strings ("57"), whole floats. Anything else is None."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v) if v.is_integer() else None
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            try:
                f = float(v)
            except ValueError:
                return None
            return int(f) if f.is_integer() else None
    return None


def not_counts(fields: Iterable[tuple[str, Any]]) -> list[str]:
    """Reasons for the token counts given that are not counts ("abc", 1.5, an object): `as_int` reads them
    as NULL, and the record is flagged rather than silently stored without them (`base.impossible`)."""
    out = []
    for field, v in fields:
        if v is not None and as_int(v) is None and not (isinstance(v, str) and not v.strip()):
            text = repr(v)
            out.append(f"{field}={text if len(text) <= 40 else text[:37] + '...'} is not a whole number")
    return out


def reasoning_from_total(row: dict[str, Any], total: int | None) -> bool:
    """Thinking tokens a dialect reports only inside a total (Gemini through OpenInference: prompt 5,
    completion 845, total 2,023): when the total exceeds input + output and no reasoning count is given,
    the difference is stored as reasoning tokens, inside `output_tokens` as the schema defines output, so
    they are priced. Not when the difference is exactly the cache tokens (an input that left them out).
    True when the row changed."""
    inp, out = row.get("input_tokens"), row.get("output_tokens")
    if total is None or inp is None or out is None or row.get("reasoning_tokens") is not None:
        return False
    gap = total - inp - out
    cache = (row.get("cached_input_tokens") or 0) + (row.get("cache_write_input_tokens") or 0)
    if gap <= 0 or (cache and gap == cache):
        return False
    row["reasoning_tokens"] = gap
    row["output_tokens"] = out + gap
    return True


def as_float(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def as_text(v: Any) -> str | None:
    """Text for VARCHAR columns: strings as they are, structured values as JSON."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    return msgspec.json.encode(v).decode("utf-8")


def parse_json(v: Any) -> Any:
    """A JSON document stored as a string attribute, parsed; other values are returned as they are."""
    if isinstance(v, str | bytes) and v[:1] in ("{", "[", b"{", b"["):
        try:
            return _decode(v)
        except (msgspec.DecodeError, UnicodeError, RecursionError):
            return v
    return v


# --- messages -------------------------------------------------------------------------------------


def _arguments(v: Any) -> Any:
    return parse_json(v) if isinstance(v, str) else v


def _tool_call(tc: Mapping[str, Any]) -> dict[str, Any]:
    f = tc.get("function")
    fn: Mapping[str, Any] = f if isinstance(f, Mapping) else {}
    out: dict[str, Any] = {
        "id": tc.get("id"),
        "name": tc.get("name") or fn.get("name"),
        "arguments": _arguments(tc["arguments"] if "arguments" in tc else fn.get("arguments")),
    }
    return out


def _message_from_parts(m: Mapping[str, Any]) -> dict[str, Any]:
    """OTel GenAI `gen_ai.input.messages` item: {role, parts:[{type, content|name|arguments|response}]}."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    out: dict[str, Any] = {"role": m.get("role")}
    for p in m.get("parts") or []:
        if not isinstance(p, Mapping):
            continue
        t = p.get("type")
        if t == "tool_call":
            calls.append(_tool_call(p))
        elif t == "tool_call_response":
            if p.get("id") is not None:
                out["tool_call_id"] = p.get("id")
            resp = p.get("response", p.get("result"))
            texts.append(resp if isinstance(resp, str) else as_text(resp) or "")
        elif isinstance(p.get("content"), str):
            texts.append(p["content"])
    out["content"] = "\n".join(texts) if texts else None
    if calls:
        out["tool_calls"] = calls
    if m.get("finish_reason") is not None:
        out["finish_reason"] = m.get("finish_reason")
    return out


def _message_openai(m: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI-style {role, content, tool_calls:[{id, function:{name, arguments}}]}."""
    if "parts" in m:
        return _message_from_parts(m)
    content = m.get("content")
    if isinstance(content, list):  # content blocks
        content = "\n".join(
            str(b.get("text", "")) for b in content if isinstance(b, Mapping) and "text" in b
        )
    out: dict[str, Any] = {"role": m.get("role"), "content": as_text(content)}
    calls = m.get("tool_calls")
    if isinstance(calls, list) and calls:
        out["tool_calls"] = [_tool_call(c) for c in calls if isinstance(c, Mapping)]
    if m.get("tool_call_id") is not None:
        out["tool_call_id"] = m["tool_call_id"]
    return out


def _messages_json(v: Any) -> list[dict[str, Any]] | None:
    v = parse_json(v)
    if isinstance(v, Mapping) and isinstance(v.get("messages"), list):
        v = v["messages"]
    if not isinstance(v, list):
        return None
    return [_message_openai(m) for m in v if isinstance(m, Mapping)]


_INDEXED = re.compile(r"^(\d+)\.(.+)$")


def _indexed(attrs: Mapping[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """Group flattened keys `prefix.N.rest` into {N: {rest: value}}."""
    groups: dict[int, dict[str, Any]] = {}
    n = len(prefix)
    for k, v in attrs.items():
        if k.startswith(prefix):
            m = _INDEXED.match(k[n:])
            if m:
                groups.setdefault(int(m.group(1)), {})[m.group(2)] = v
    return groups


def _flat_tool_calls(fields: Mapping[str, Any], prefix: str, id_key: str, name_key: str, args_key: str):
    calls = []
    for _, tc in sorted(_indexed(fields, prefix).items()):
        calls.append({"id": tc.get(id_key), "name": tc.get(name_key), "arguments": _arguments(tc.get(args_key))})
    return calls


def _messages_openinference(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]] | None:
    groups = _indexed(attrs, prefix)
    if not groups:
        return None
    out = []
    for _, f in sorted(groups.items()):
        content = f.get("message.content")
        if content is None:  # multimodal contents.N.message_content.text
            parts = [v for k, v in sorted(f.items()) if k.startswith("message.contents.") and k.endswith(".text")]
            content = "\n".join(str(p) for p in parts) if parts else None
        m: dict[str, Any] = {"role": f.get("message.role"), "content": as_text(content)}
        calls = _flat_tool_calls(f, "message.tool_calls.", "tool_call.id", "tool_call.function.name",
                                 "tool_call.function.arguments")
        if calls:
            m["tool_calls"] = calls
        if f.get("message.tool_call_id") is not None:
            m["tool_call_id"] = f["message.tool_call_id"]
        out.append(m)
    return out


def _messages_legacy(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]] | None:
    """OpenLLMetry legacy `gen_ai.prompt.N.role/content/tool_calls.K.*` and `gen_ai.completion.N.*`."""
    groups = _indexed(attrs, prefix)
    if not groups:
        return None
    out = []
    for _, f in sorted(groups.items()):
        m: dict[str, Any] = {"role": f.get("role"), "content": as_text(f.get("content"))}
        calls = _flat_tool_calls(f, "tool_calls.", "id", "name", "arguments")
        if calls:
            m["tool_calls"] = calls
        if f.get("tool_call_id") is not None:
            m["tool_call_id"] = f["tool_call_id"]
        if f.get("finish_reason") is not None:
            m["finish_reason"] = f["finish_reason"]
        out.append(m)
    return out


def _messages_from_events(events: list[dict[str, Any]], output: bool) -> list[dict[str, Any]] | None:
    """Deprecated GenAI span events (`gen_ai.user.message`, `gen_ai.choice`, `gen_ai.content.prompt`)."""
    out: list[dict[str, Any]] = []
    for e in events:
        name, a = e.get("name"), e.get("attributes") or {}
        if output and name == "gen_ai.choice":
            msg = parse_json(a.get("message"))
            m = _message_openai(msg) if isinstance(msg, Mapping) else {"role": "assistant", "content": as_text(msg)}
            m.setdefault("role", "assistant")
            if a.get("finish_reason"):
                m["finish_reason"] = a["finish_reason"]
            out.append(m)
        elif output and name == "gen_ai.content.completion":
            return _messages_json(a.get("gen_ai.completion"))
        elif not output and name == "gen_ai.content.prompt":
            return _messages_json(a.get("gen_ai.prompt"))
        elif not output and name in ("gen_ai.system.message", "gen_ai.user.message",
                                     "gen_ai.assistant.message", "gen_ai.tool.message"):
            role = name.split(".")[1]
            m = {"role": a.get("role") or role, "content": as_text(parse_json(a.get("content")))}
            if a.get("id"):
                m["tool_call_id"] = a["id"]
            out.append(m)
    return out or None


# --- LangChain payloads in OpenInference attributes ------------------------------------------------


def langchain_message_fields(m: Any) -> Mapping[str, Any] | None:
    """The fields of a serialised LangChain message: `dumpd`'s `{"lc": 1, "id": [..., "ToolMessage"],
    "kwargs": {...}}`, `message_to_dict`'s `{"type": "tool", "data": {...}}`, or a flat `{"type", "content"}`."""
    if not isinstance(m, Mapping):
        return None
    if m.get("lc") == 1 and isinstance(m.get("kwargs"), Mapping):
        return m["kwargs"]
    if isinstance(m.get("type"), str) and isinstance(m.get("data"), Mapping) and "role" not in m:
        return m["data"]
    if isinstance(m.get("type"), str) and "content" in m:
        return m
    return None


def langchain_tool_message(v: Any) -> Mapping[str, Any] | None:
    """The fields of a LangChain ToolMessage when a tool's recorded output is one (OpenInference's LangChain
    tracer records `{"type": "tool", "data": {"content", "tool_call_id", "status", ...}}`), else None."""
    v = parse_json(v)
    if not isinstance(v, Mapping):
        return None
    ident = v.get("id")
    is_tool = (v.get("type") == "tool"
               or (v.get("lc") == 1 and isinstance(ident, list) and bool(ident) and ident[-1] == "ToolMessage"))
    fields = langchain_message_fields(v) if is_tool else None
    if fields is None or "content" not in fields:
        return None
    return fields


def invalid_tool_calls(fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A LangChain AIMessage's `invalid_tool_calls` (calls whose arguments did not parse) as tool calls, the
    raw arguments kept as the string the model wrote."""
    calls = fields.get("invalid_tool_calls")
    if not isinstance(calls, list):
        return []
    return [{"id": c.get("id"), "name": c.get("name"),
             "arguments": c["args"] if isinstance(c.get("args"), str) else as_text(c.get("args"))}
            for c in calls if isinstance(c, Mapping)]


def _langchain_invalid_calls(attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`invalid_tool_calls` of the first generation in a LangChain LLM span's `output.value` (an LLMResult):
    OpenInference records no tool call attribute for them."""
    raw = attrs.get("output.value")
    if not isinstance(raw, str) or "invalid_tool_calls" not in raw:
        return []
    body = parse_json(raw)
    gens = body.get("generations") if isinstance(body, Mapping) else None
    first = gens[0] if isinstance(gens, list) and gens else None
    first = first[0] if isinstance(first, list) and first else first
    msg = first.get("message") if isinstance(first, Mapping) else None
    fields = langchain_message_fields(msg)
    return invalid_tool_calls(fields) if fields is not None else []


def input_messages(attrs: Mapping[str, Any], events: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    msgs = (_messages_json(attrs.get("gen_ai.input.messages"))
            or _messages_openinference(attrs, "llm.input_messages.")
            or _messages_legacy(attrs, "gen_ai.prompt.")
            or _messages_json(attrs.get("gen_ai.prompt"))
            or _messages_json(attrs.get("ai.prompt.messages"))
            or _messages_from_events(events, output=False))
    sys = attrs.get("gen_ai.system_instructions")
    if sys is not None and msgs is not None:
        sys_v = parse_json(sys)
        text: str | None
        if isinstance(sys_v, list):
            text = "\n".join(p.get("content", "") for p in sys_v if isinstance(p, Mapping))
        else:
            text = as_text(sys_v)
        msgs = [{"role": "system", "content": text}, *msgs]
    return msgs


def output_messages(attrs: Mapping[str, Any], events: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    msgs = (_messages_json(attrs.get("gen_ai.output.messages"))
            or _messages_openinference(attrs, "llm.output_messages.")
            or _messages_legacy(attrs, "gen_ai.completion.")
            or _messages_json(attrs.get("gen_ai.completion"))
            or _messages_from_events(events, output=True))
    if msgs is None:
        # OpenAI response body in output.value (OpenInference) carries choices[].message
        body = parse_json(attrs.get("output.value"))
        if isinstance(body, Mapping) and isinstance(body.get("choices"), list):
            msgs = [_message_openai(c["message"]) for c in body["choices"]
                    if isinstance(c, Mapping) and isinstance(c.get("message"), Mapping)]
        elif isinstance(attrs.get("ai.response.text"), str):
            msgs = [{"role": "assistant", "content": attrs["ai.response.text"]}]
    return msgs


def tool_definitions(attrs: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Tools offered to the model: GenAI `gen_ai.tool.definitions`, OpenInference `llm.tools.N.tool.json_schema`,
    OpenLLMetry legacy `llm.request.functions.N.*`, or the request body in `input.value`."""
    out: list[dict[str, Any]] = []

    def add(d: Any) -> None:
        if not isinstance(d, Mapping):
            return
        f = d.get("function")
        fn: Mapping[str, Any] = f if isinstance(f, Mapping) else d
        name = fn.get("name")
        if name:
            out.append({"name": name, "description": fn.get("description"),
                        "parameters": parse_json(fn.get("parameters", fn.get("input_schema")))})

    defs = parse_json(attrs.get("gen_ai.tool.definitions"))
    if isinstance(defs, list):
        for d in defs:
            add(d)
    for _, f in sorted(_indexed(attrs, "llm.tools.").items()):
        add(parse_json(f.get("tool.json_schema")))
    for _, f in sorted(_indexed(attrs, "llm.request.functions.").items()):
        add(f)
    if not out:
        body = parse_json(attrs.get("input.value"))
        if isinstance(body, Mapping) and isinstance(body.get("tools"), list):
            for d in body["tools"]:
                add(d)
    return out or None


def retrieved_documents(attrs: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The documents a retriever returned: OpenInference `retrieval.documents.N.document.{id, content, score,
    metadata}` (a reranker's `reranker.output_documents.N.document.*`), or OTel GenAI's
    `gen_ai.retrieval.documents` (JSON), as `[{id, content, score, metadata}]`."""
    for prefix in ("retrieval.documents.", "reranker.output_documents."):
        groups = _indexed(attrs, prefix)
        if groups:
            return [{"id": as_text(f.get("document.id")), "content": as_text(f.get("document.content")),
                     "score": as_float(f.get("document.score")), "metadata": parse_json(f.get("document.metadata"))}
                    for _, f in sorted(groups.items())]
    docs = parse_json(attrs.get("gen_ai.retrieval.documents"))
    if isinstance(docs, list) and docs:
        return [dict(d) if isinstance(d, Mapping) else {"content": as_text(d)} for d in docs]
    return None


def _finish_reason(attrs: Mapping[str, Any], out_msgs: list[dict[str, Any]] | None) -> str | None:
    v = attrs.get("gen_ai.response.finish_reasons")
    if isinstance(v, list) and v:
        return str(v[0])
    if isinstance(v, str) and v:
        parsed = parse_json(v)
        return str(parsed[0]) if isinstance(parsed, list) and parsed else v
    v = _first(attrs, ("llm.finish_reason", "ai.response.finishReason", "gen_ai.completion.0.finish_reason"))
    if v is not None:
        return str(v)
    for m in out_msgs or ():
        if m.get("finish_reason"):
            return str(m["finish_reason"])
    return None


# --- errors -------------------------------------------------------------------------------------

# A leading exception name: `RateLimitError: ...`, `openai.RateLimitError: ...`, `KeyError("...")` (a repr,
# as OpenInference's LangChain tracer writes it). The last dotted part starts upper case and has a lower-case
# letter, so `Error getting response: ...`, `SYSTEM: ...` or `https://...` are no type.
_EXC_NAME = re.compile(r"^\s*((?:[A-Za-z_][A-Za-z0-9_]*\.)*[A-Z][A-Za-z0-9_]*)(?:\(|:\s|:$)")
_HAS_LOWER = re.compile(r"[a-z]")
TRACEBACK = "Traceback (most recent call last)"
# The openai and anthropic Python SDKs (both generated by Stainless) raise an APIStatusError subclass chosen
# by the HTTP status, with the message `Error code: NNN - <body>` (`_client.py` `_make_status_error`); frameworks
# that wrap the error keep that message (the Agents SDK: `Error getting response: {'error': 'Error code: 429 ...'}`).
_STATUS_CODE = re.compile(r"\bError code: (\d{3})\b")
STAINLESS_STATUS_ERRORS = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError",
                           404: "NotFoundError", 409: "ConflictError", 422: "UnprocessableEntityError",
                           429: "RateLimitError"}
# ... and these two errors with their fixed messages (`_exceptions.py`): no HTTP response at all
_SDK_MESSAGES = re.compile(r"(?:^|[\s'\"{:])(Connection error\.|Request timed out\.)(?:['\"}]|\s*$)")
SDK_MESSAGE_ERRORS = {"Connection error.": "APIConnectionError", "Request timed out.": "APITimeoutError"}


def message_head(text: str) -> str:
    """An error text without the traceback a tracer appended to it (OpenInference's LangChain tracer writes
    `OpenAIConnectionError('Connection error.')Traceback (most recent call last): ...`)."""
    i = text.find(TRACEBACK)
    return text[:i].rstrip() if i > 0 else text


def error_type_from_message(text: str | None) -> str | None:
    """The exception's type as an error message gives it, or None: a leading `Name: ...` or `Name(...)`, the
    last line of a bare Python traceback, the SDK error an `Error code: NNN` or a fixed SDK message names.
    Never the traceback itself."""
    if not text:
        return None
    text = text.strip()
    if text.startswith(TRACEBACK):  # a formatted exception: its type is on its last line
        lines = [x for x in text.splitlines() if x.strip() and not x.startswith((" ", "\t"))]
        text = lines[-1] if lines else ""
    head = message_head(text).split("\n", 1)[0]
    m = _EXC_NAME.match(head)
    if m and _HAS_LOWER.search(m.group(1).rsplit(".", 1)[-1]):
        return m.group(1)
    m = _STATUS_CODE.search(head)
    if m:
        code = int(m.group(1))
        return STAINLESS_STATUS_ERRORS.get(code) or ("InternalServerError" if code >= 500 else "APIStatusError")
    m = _SDK_MESSAGES.search(head)
    if m:
        return SDK_MESSAGE_ERRORS[m.group(1)]
    return None


def span_error(attrs: Mapping[str, Any], status_message: str | None, events: list[dict[str, Any]],
               failed: bool) -> tuple[str | None, str | None]:
    """(error_type, status_message) of a span: `error.type`, else the exception event's `exception.type`
    (the last exception event: the one that ended the span), else, on a failed span, the type its status
    message names. The message is the status description, else the exception's message; a traceback a
    tracer appended to the description is cut off when an exception event keeps the stack trace."""
    exc = next((e for e in reversed(events) if e.get("name") == "exception"), None)
    exc_attrs = (exc or {}).get("attributes") or {}
    message = status_message or as_text(exc_attrs.get("exception.message")) or None
    if message and exc_attrs.get("exception.stacktrace") and TRACEBACK in message:
        message = message_head(message) or message
    err = _first(attrs, ERROR_TYPE)
    if err in ("_OTHER",):  # the semconv fallback value: no type
        err = None
    err = err or exc_attrs.get("exception.type") or (error_type_from_message(message) if failed else None)
    return as_text(err), message


# --- the whole span ---------------------------------------------------------------------------


def normalize_span(
    attrs: Mapping[str, Any],
    name: str,
    status_code: int,
    status_message: str | None,
    events: list[dict[str, Any]],
) -> dict[str, Any]:
    """Canonical span fields (everything but ids, times and provenance) from flattened attributes."""
    kind = span_kind(attrs, name)
    row: dict[str, Any] = {"kind": kind, "name": name}
    row["model"] = as_text(_first(attrs, MODEL))
    provider = as_text(_first(attrs, PROVIDER))
    row["provider"] = provider.lower() if provider else None  # "Anthropic" and "anthropic" are one provider
    counts = [(c, _first(attrs, keys)) for c, keys in (
        ("input_tokens", INPUT_TOKENS), ("output_tokens", OUTPUT_TOKENS), ("cached_input_tokens", CACHE_READ),
        ("cache_write_input_tokens", CACHE_WRITE), ("reasoning_tokens", REASONING))]
    for c, v in counts:
        row[c] = as_int(v)
    total = _first(attrs, TOTAL_TOKENS)
    reasoning_from_total(row, as_int(total))
    problems = not_counts([*counts, ("total_tokens", total)])
    if problems:
        row["_problems"] = problems  # flagged by base.impossible
    row["cost_usd"] = as_float(_first(attrs, COST))
    ttft = as_float(_first(attrs, TTFT_SECONDS))
    row["time_to_first_token_ms"] = ttft * 1000.0 if ttft is not None else as_float(_first(attrs, TTFT_MS))

    # errors: status, error.type, exception events, the status message
    row["status"] = "error" if status_code == 2 else "ok"
    row["error_type"], row["status_message"] = span_error(attrs, status_message, events, status_code == 2)

    # tools
    tool_name = _first(attrs, TOOL_NAME)
    if tool_name is None and kind == "tool":
        event = _EMITTER_EVENT.match(name)  # beeai: `tool.search.wikipedia.start-12` is a call of `tool.search.wikipedia`
        tool_name = attrs.get("traceloop.entity.name") or (
            name[len("execute_tool "):] if name.startswith("execute_tool ") else
            name[:event.start(1) - 1] if event is not None else name
        )
    row["tool_name"] = as_text(tool_name) if kind == "tool" or tool_name is not None else None
    row["tool_call_id"] = as_text(_first(attrs, TOOL_CALL_ID))

    in_value = _first(attrs, ("input.value", "traceloop.entity.input", "langfuse.observation.input"))
    out_value = _first(attrs, ("output.value", "traceloop.entity.output", "langfuse.observation.output"))
    if kind == "tool":
        row["tool_arguments"] = as_text(_first(attrs, TOOL_ARGS) or in_value)
        result = _first(attrs, TOOL_RESULT) or out_value
        tool_msg = langchain_tool_message(result) if isinstance(result, str) and '"tool"' in result else None
        if tool_msg is not None:  # LangChain's ToolMessage: the tool's own result is its content
            result = tool_msg.get("content")
            if row["tool_call_id"] is None:
                row["tool_call_id"] = as_text(tool_msg.get("tool_call_id"))
            if tool_msg.get("status") == "error" and row["status"] == "ok":  # ToolNode's error messages
                row["status"] = "error"
                row["status_message"] = row["status_message"] or as_text(result)
                text = as_text(result) or ""
                row["error_type"] = row["error_type"] or error_type_from_message(
                    text[len("Error: "):] if text.startswith("Error: ") else text)
        row["tool_result"] = as_text(result)
        row["input"], row["output"] = row["tool_arguments"], row["tool_result"]
    else:
        row["tool_arguments"] = row["tool_result"] = None
        row["input"], row["output"] = as_text(in_value), as_text(out_value)
        if kind == "retriever":  # what it retrieved is what the agent reads (an injection may come in it)
            docs = retrieved_documents(attrs)
            if docs is not None:
                row["output"] = to_json(docs)
            row["input"] = row["input"] or as_text(attrs.get("gen_ai.retrieval.query.text"))

    row["tool_calls"] = row["tool_definitions"] = row["finish_reason"] = None
    llm_event = kind == "other" and str(attrs.get("openinference.span.kind", "")).upper() == "LLM"  # beeai
    if kind in ("llm", "embedding") or row["input_tokens"] is not None or llm_event:
        in_msgs = input_messages(attrs, events)
        out_msgs = output_messages(attrs, events)
        if in_msgs is not None:
            row["input"] = msgspec.json.encode(in_msgs).decode("utf-8")
        invalid = _langchain_invalid_calls(attrs) if kind == "llm" else []
        if invalid:  # calls whose arguments did not parse: only in LangChain's output.value
            out_msgs = out_msgs or [{"role": "assistant", "content": None}]
            last = out_msgs[-1]
            known = {c.get("id") for c in last.get("tool_calls", ())}
            last["tool_calls"] = [*last.get("tool_calls", ()), *(c for c in invalid if c["id"] not in known)]
        if out_msgs is not None:
            row["output"] = msgspec.json.encode(out_msgs).decode("utf-8")
            calls = [c for m in out_msgs for c in m.get("tool_calls", ())]
            row["tool_calls"] = to_json(calls) if calls else None
        row["tool_definitions"] = to_json(tool_definitions(attrs))
        row["finish_reason"] = _finish_reason(attrs, out_msgs)
    return row


# --- dimensions -------------------------------------------------------------------------------


Paths = tuple[tuple[str, tuple[str, ...]], ...]
Plan = tuple[tuple[str, tuple[tuple[str, Paths], ...]], ...]


def _paths(key: str) -> Paths:
    """(attribute, path inside it) splits of a dotted key, longest attribute name first."""
    parts = key.split(".")
    return tuple((".".join(parts[:i]), tuple(parts[i:])) for i in range(len(parts) - 1, 0, -1))


def lookup(attrs: Mapping[str, Any], path: str) -> Any:
    """An attribute key, or a JSON path into an attribute holding a JSON object.

    `metadata.feature` is the attribute `metadata.feature` if present, else key `feature` inside the
    attribute `metadata` (a JSON string or a map). The longest attribute prefix wins.
    """
    return _lookup(attrs, path, _paths(path))


def _lookup(attrs: Mapping[str, Any], key: str, paths: Paths) -> Any:
    v = attrs.get(key)
    if v is not None:
        return v
    for base_key, rest in paths:
        base = attrs.get(base_key)
        if base is None:
            continue
        cur = parse_json(base)
        for p in rest:
            if isinstance(cur, Mapping):
                cur = parse_json(cur.get(p))
            else:
                cur = None
                break
        if cur is not None:
            return cur
    return None


@dataclass(frozen=True)
class _Plan:
    dims: tuple[tuple[str, tuple[tuple[str, Paths, frozenset[str]], ...]], ...]
    names: frozenset[str]  # every attribute name any lookup may read
    readers: dict[str, tuple[tuple[int, int], ...]]  # attribute name -> (dimension, lookup) indexes reading it
    empty: dict[str, str | None]  # every dimension, no value


@functools.lru_cache(maxsize=64)
def _plan(dims: tuple[tuple[str, tuple[str, ...]], ...]) -> _Plan:
    out = []
    readers: dict[str, list[tuple[int, int]]] = {}
    for d, (dim, keys) in enumerate(dims):
        compiled = []
        for k, key in enumerate(keys):
            paths = _paths(key)
            names = frozenset([key, *(base for base, _ in paths)])
            compiled.append((key, paths, names))
            for name in names:
                readers.setdefault(name, []).append((d, k))
        out.append((dim, tuple(compiled)))
    return _Plan(tuple(out), frozenset(readers), {n: tuple(v) for n, v in readers.items()},
                 dict.fromkeys(dim for dim, _ in dims))


_plans: dict[int, tuple[Any, _Plan]] = {}  # id(config.dimensions) -> (that dict, its plan): per span, no hashing


def dimensions(config: Config, *scopes: Mapping[str, Any]) -> dict[str, str | None]:
    """Each dimension's value: the first configured lookup that finds a scalar in any scope, in order."""
    cached = _plans.get(id(config.dimensions))
    if cached is None or cached[0] is not config.dimensions:
        cached = (config.dimensions, _plan(tuple(config.dimensions.items())))
        _plans[id(config.dimensions)] = cached
    plan = cached[1]
    hits = [plan.names.intersection(scope.keys()) for scope in scopes]
    out = dict(plan.empty)
    # only the lookups that read an attribute some scope has: usually a handful of the ~50
    candidates: dict[int, set[int]] = {}
    for hit in hits:
        for name in hit:
            for d, k in plan.readers[name]:
                candidates.setdefault(d, set()).add(k)
    for d, ks in candidates.items():
        dim, keys = plan.dims[d]
        for k in sorted(ks):
            key, paths, names = keys[k]
            found = None
            for scope, hit in zip(scopes, hits, strict=True):
                if not hit or hit.isdisjoint(names):
                    continue
                v = _lookup(scope, key, paths)
                if v is not None and not isinstance(v, Mapping | list) and v != "":
                    found = v if isinstance(v, str) else str(v)
                    break
            if found is not None:
                out[dim] = found
                break
    return out
