"""Requests as the OpenAI and Anthropic SDKs send them: the messages of a call (system prompt, tool calls
and results in each API's shape) and the tools' schemas. OpenInference and OpenLLMetry record them."""

from __future__ import annotations

from typing import Any

from ..content import TOOLS
from ..helpers import args_obj
from ..run import Msg


def openai_request_messages(system: str, messages: list[Msg]) -> list[dict[str, Any]]:
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


def anthropic_request_messages(messages: list[Msg]) -> list[dict[str, Any]]:
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


def openai_tool_schema(name: str) -> dict[str, Any]:
    desc, params = TOOLS[name]
    return {"type": "function", "function": {"name": name, "description": desc, "parameters": params}}


def anthropic_tool_schema(name: str) -> dict[str, Any]:
    desc, params = TOOLS[name]
    return {"name": name, "description": desc, "input_schema": params}
