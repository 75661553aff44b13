"""Chat messages as SDKs record them in run payloads -> the canonical message shape.

The OTel dialects are handled by `semconv.py` from span attributes. Platforms that store payloads
(LangSmith run `inputs`/`outputs`, Langfuse observation `input`/`output`) keep whatever the
framework passed: OpenAI request/response bodies, LangChain messages (serialised with `lc`
constructors, `message_to_dict` `{type, data}` pairs or flat `{type, content}`), Anthropic content
blocks, Vercel AI SDK tool-call lists. `to_messages` maps all of them onto
`[{role, content, tool_calls?: [{id, name, arguments}], tool_call_id?}]`, and returns None for a
payload that is not a list of messages (which is then kept as text).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .records import unwrap_text
from .semconv import _message_from_parts, as_text, invalid_tool_calls, parse_json

LC_ROLES = {
    "human": "user", "user": "user", "ai": "assistant", "assistant": "assistant", "system": "system",
    "developer": "system", "tool": "tool", "function": "tool", "generic": "user",
}
LC_CLASSES = {
    "HumanMessage": "user", "HumanMessageChunk": "user", "AIMessage": "assistant",
    "AIMessageChunk": "assistant", "SystemMessage": "system", "SystemMessageChunk": "system",
    "ToolMessage": "tool", "ToolMessageChunk": "tool", "FunctionMessage": "tool",
    "ChatMessage": "user", "ChatMessageChunk": "user",
}


def _arguments(v: Any) -> Any:
    return parse_json(v) if isinstance(v, str) else v


def tool_call(tc: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI `{id, function: {name, arguments}}`, LangChain `{id, name, args}`, Anthropic
    `{type: tool_use, id, name, input}`, Vercel `{toolCallId, toolName, input|args}` -> `{id, name, arguments}`."""
    f = tc.get("function")
    fn: Mapping[str, Any] = f if isinstance(f, Mapping) else {}
    if "arguments" in tc:
        args = tc["arguments"]
    elif "args" in tc:
        args = tc["args"]
    elif "input" in tc:
        args = tc["input"]
    else:
        args = fn.get("arguments")
    return {
        "id": tc.get("id") or tc.get("toolCallId"),
        "name": tc.get("name") or tc.get("toolName") or fn.get("name"),
        "arguments": _arguments(args),
    }


def _content(v: Any) -> tuple[str | None, list[dict[str, Any]]]:
    """Message content -> (text, tool calls found in content blocks)."""
    if v is None or isinstance(v, str):
        return v, []
    if isinstance(v, list):
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for b in v:
            if isinstance(b, str):
                texts.append(b)
            elif isinstance(b, Mapping):
                if b.get("type") in ("tool_use", "tool-call", "tool_call", "function_call"):
                    calls.append(tool_call(b))
                elif isinstance(b.get("text"), str):
                    texts.append(b["text"])
                elif b.get("type") == "tool_result":
                    texts.append(as_text(b.get("content")) or "")
        return ("\n".join(texts) if texts else None), calls
    return as_text(v), []


def _is_lc_serialized(m: Mapping[str, Any]) -> bool:
    ident = m.get("id")
    return m.get("lc") == 1 and isinstance(ident, list) and bool(ident) and isinstance(m.get("kwargs"), Mapping)


def lc_class(m: Any) -> str | None:
    """`ToolMessage` for a serialised LangChain message (`{"lc": 1, "id": [..., "ToolMessage"]}`)."""
    if isinstance(m, Mapping) and _is_lc_serialized(m):
        return str(m["id"][-1])
    return None


def is_message(m: Any) -> bool:
    if not isinstance(m, Mapping):
        return False
    if _is_lc_serialized(m):
        return str(m["id"][-1]) in LC_CLASSES
    if isinstance(m.get("role"), str):
        return True
    t = m.get("type")
    if isinstance(t, str) and t in LC_ROLES:
        return "content" in m or isinstance(m.get("data"), Mapping)
    return False


def to_message(m: Mapping[str, Any]) -> dict[str, Any]:
    role: Any
    if isinstance(m.get("parts"), list):  # OTel GenAI `{role, parts: [...]}`: one decoding path, semconv's
        return _message_from_parts(m)
    if _is_lc_serialized(m):
        fields: Mapping[str, Any] = m["kwargs"]
        role = LC_CLASSES.get(str(m["id"][-1]), "user")
        if role == "user" and isinstance(fields.get("role"), str):
            role = fields["role"]
    elif isinstance(m.get("data"), Mapping) and "role" not in m:
        fields = m["data"]
        role = LC_ROLES.get(str(m.get("type")), fields.get("role") or "user")
    else:
        fields = m
        role = m.get("role")
        if not isinstance(role, str):
            role = LC_ROLES.get(str(m.get("type")), "user")
        else:
            role = LC_ROLES.get(role, role)
    text, calls = _content(fields.get("content"))
    raw_calls = fields.get("tool_calls")
    if not raw_calls and isinstance(fields.get("additional_kwargs"), Mapping):
        raw_calls = fields["additional_kwargs"].get("tool_calls")
    if isinstance(raw_calls, list):
        calls = [tool_call(c) for c in raw_calls if isinstance(c, Mapping)] + calls
    calls += invalid_tool_calls(fields)  # arguments that did not parse, kept as the model wrote them
    out: dict[str, Any] = {"role": role, "content": text}
    if calls:
        out["tool_calls"] = calls
    if fields.get("tool_call_id") is not None:
        out["tool_call_id"] = fields["tool_call_id"]
    return out


def _finish_reason(generation: Mapping[str, Any], message: Any) -> str | None:
    """A LangChain generation's finish reason: `generation_info`, else the message's response metadata."""
    info = generation.get("generation_info")
    if isinstance(info, Mapping) and info.get("finish_reason"):
        return str(info["finish_reason"])
    if isinstance(message, Mapping):
        fields = message["kwargs"] if _is_lc_serialized(message) else message.get("data", message)
        rm = fields.get("response_metadata") if isinstance(fields, Mapping) else None
        if isinstance(rm, Mapping):
            v = rm.get("finish_reason") or rm.get("stop_reason")
            return str(v) if v else None
    return None


def to_messages(v: Any) -> list[dict[str, Any]] | None:
    """A payload -> canonical messages, or None when it is not a list of chat messages."""
    v = parse_json(unwrap_text(v))
    if isinstance(v, Mapping):
        if isinstance(v.get("messages"), list):
            v = v["messages"]
        elif isinstance(v.get("choices"), list):  # an OpenAI chat completion
            out = []
            for c in v["choices"]:
                if isinstance(c, Mapping) and isinstance(c.get("message"), Mapping):
                    msg = to_message(c["message"])
                    if c.get("finish_reason"):
                        msg["finish_reason"] = c["finish_reason"]
                    out.append(msg)
            return out or None
        elif isinstance(v.get("generations"), list):  # a LangChain LLMResult
            gens = v["generations"]
            first = gens[0] if gens and isinstance(gens[0], list) else gens
            out = []
            for g in first:
                if isinstance(g, Mapping):
                    msg_v = g.get("message")
                    if isinstance(msg_v, Mapping) and is_message(msg_v):
                        msg = to_message(msg_v)
                    elif isinstance(g.get("text"), str):
                        msg = {"role": "assistant", "content": g["text"]}
                    else:
                        continue
                    finish = _finish_reason(g, msg_v)
                    if finish:
                        msg["finish_reason"] = finish
                    out.append(msg)
            return out or None
        elif isinstance(v.get("message"), Mapping) and is_message(v["message"]):  # a `gen_ai.choice` body
            msg = to_message(v["message"])
            if v.get("finish_reason"):
                msg["finish_reason"] = v["finish_reason"]
            return [msg]
        elif is_message(v):
            v = [v]
        else:
            return None
    if not isinstance(v, list) or not v:
        return None
    if all(isinstance(x, list) for x in v):  # LangChain chat model inputs: a batch of message lists
        v = v[0]
    if all(isinstance(x, Mapping) and ("toolName" in x or "toolCallId" in x) for x in v):
        return [{"role": "assistant", "content": None, "tool_calls": [tool_call(x) for x in v]}]
    if not all(is_message(m) for m in v):
        return None
    return [to_message(m) for m in v]
