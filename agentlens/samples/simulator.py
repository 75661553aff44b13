"""The agent simulator: `Sim` plays one run step by step on its seeded `random.Random`, building the
conversation (LLM calls with the messages sent, tool calls and their results), the timings (gaps,
LLM latency from the tokens, tool durations) and the token counts (from the text, about chars/4, with
cached and reasoning tokens as each provider reports them). Scenarios drive it."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from .content import (
    APPROVAL_TOOL,
    FEATURE_TOOLS,
    MODELS,
    SYSTEM_PROMPT,
    TOOLS,
    TRIAGE_MODEL,
    TRIAGE_PROMPT,
    Model,
)
from .helpers import NS, cjson, rand_alnum, rand_hex
from .payloads import approval
from .run import Doc, Err, LLMCall, Msg, Run, ToolCall, ToolExec, Usage


def _est_tokens(n_chars: int) -> float:
    return n_chars / 4.0


class Sim:
    def __init__(self, run: Run, rng: random.Random, t0: int):
        self.run = run
        self.rng = rng
        self.model = run.model
        self.t = t0
        self.messages: list[Msg] = [Msg("user", run.user_text)]
        self.tools = FEATURE_TOOLS[run.feature]
        self.prev_input = 0
        self.n_llm = 0
        self.jitter = True

    # time -------------------------------------------------------------------------------------
    def gap(self, lo: float = 0.004, hi: float = 0.040) -> None:
        self.t += int(self.rng.uniform(lo, hi) * NS)

    def sid(self) -> str:
        return rand_hex(self.rng, 8)

    # tool calls -------------------------------------------------------------------------------
    def tc(self, name: str, args: dict[str, Any] | str) -> ToolCall:
        if self.model.provider == "anthropic":
            cid = "toolu_01" + rand_alnum(self.rng, 22)
        else:
            cid = "call_" + rand_alnum(self.rng, 24)
        return ToolCall(cid, name, args if isinstance(args, str) else cjson(args))

    # llm --------------------------------------------------------------------------------------
    def input_tokens(self, system: str, messages: list[Msg], tools: Sequence[str]) -> int:
        chars = len(system)
        for m in messages:
            chars += len(m.content or "")
            for c in m.tool_calls:
                chars += len(c.name) + len(c.arguments) + 12
        n = _est_tokens(chars) + 4 * len(messages) + 7
        for t in tools:
            desc, params = TOOLS[t]
            n += _est_tokens(len(t) + len(desc) + len(cjson(params))) + 6
        return max(1, int(n * self.rng.uniform(0.97, 1.04))) if self.jitter else max(1, int(n))

    def llm(
        self,
        *,
        text: str | None = None,
        calls: Sequence[ToolCall] = (),
        error: Err | None = None,
        finish: str | None = None,
        duration: float | None = None,
        max_tokens: int | None = None,
        model: Model | None = None,
        system: str | None = None,
        messages: list[Msg] | None = None,
        tools: Sequence[str] | None = None,
        record: bool = True,
    ) -> LLMCall:
        model = model or self.model
        system = SYSTEM_PROMPT if system is None else system
        msgs = list(self.messages) if messages is None else messages
        tools = self.tools if tools is None else tuple(tools)
        self.gap()
        call = LLMCall(self.sid(), self.t, 0, model, system, msgs, tuple(tools), 0.2 if not model.reasoning else 1.0,
                       max_tokens)
        inp = self.input_tokens(system, msgs, tools)
        if error is not None:
            call.error = error
            dur = duration if duration is not None else self.rng.uniform(0.15, 0.9)
        else:
            out_chars = len(text or "") + sum(len(c.name) + len(c.arguments) + 10 for c in calls)
            out = max(1, int(_est_tokens(out_chars) * self.rng.uniform(0.95, 1.08)) + 2)
            reasoning = 0
            if model.reasoning:
                reasoning = self.rng.choice((0, 64, 128, 192, 320, 448, 640, 896))
                out += reasoning
            if max_tokens is not None and finish == "length":
                out = max_tokens
            cache_read = cache_write = 0
            if model.provider == "openai" and model.host == "api.openai.com" and self.n_llm > 0:
                if self.prev_input >= 256 and self.rng.random() < 0.75:
                    cache_read = (min(self.prev_input, inp - 1) // 128) * 128
            elif model.provider == "anthropic":
                prefix = int(self.input_tokens(system, [], tools) * 0.98)
                if self.n_llm == 0:
                    cache_write = prefix
                else:
                    cache_read = prefix
            call.usage = Usage(inp, out, cache_read, cache_write, reasoning)
            if not finish:
                if calls:
                    finish = "tool_use" if model.provider == "anthropic" else "tool_calls"
                else:
                    finish = "end_turn" if model.provider == "anthropic" else "stop"
            call.finish_reason = finish
            call.output = Msg("assistant", text, list(calls))
            if model.provider == "anthropic":
                call.response_id = "msg_01" + rand_alnum(self.rng, 22)
            else:
                call.response_id = "chatcmpl-" + rand_alnum(self.rng, 29)
            # time to first token + prefill + decode, with a slow tail
            base = self.rng.uniform(0.45, 1.1) + inp / 9_000 + out / model.tokens_per_s
            slow = 2.5 if self.rng.random() < 0.07 else 1.0
            dur = duration if duration is not None else base * self.rng.uniform(0.85, 1.5) * slow
            if record:
                self.messages.append(call.output)
                self.prev_input = inp
                self.n_llm += 1
        call.end = self.t + int(dur * NS)
        self.t = call.end
        self.run.steps.append(call)
        return call

    def triage(self) -> LLMCall:
        out = cjson({"feature": self.run.feature, "priority": self.rng.choice(("low", "normal", "normal", "high"))})
        return self.llm(text=out, model=MODELS[TRIAGE_MODEL], system=TRIAGE_PROMPT,
                        messages=[Msg("user", self.run.user_text)], tools=(), record=False)

    # tools ------------------------------------------------------------------------------------
    def tool(
        self,
        call: ToolCall,
        result: str | dict[str, Any] | list[Any] | None,
        *,
        error: Err | None = None,
        duration: float | None = None,
        docs: list[Doc] | None = None,
    ) -> ToolExec:
        self.gap(0.002, 0.012)
        res = result if (result is None or isinstance(result, str)) else cjson(result)
        if duration is None:
            lo, hi = {
                "search_kb": (0.08, 0.45), "web_fetch": (0.4, 2.2), "request_approval": (3.0, 14.0),
                "send_email": (0.15, 0.6), "refund_order": (0.5, 1.8), "delete_account": (0.3, 1.2),
            }.get(call.name, (0.04, 0.35))
            duration = self.rng.uniform(lo, hi)
        ex = ToolExec(self.sid(), self.t, self.t + int(duration * NS), call, res, error, docs)
        self.t = ex.end
        self.run.steps.append(ex)
        content = res if error is None else f"Error: {error.type}: {error.message}"
        self.messages.append(Msg("tool", content, tool_call_id=call.id))
        return ex

    def gate(self, action: str, target: str, reason: str, approved: bool = True) -> ToolExec:
        """Human-in-the-loop approval run by the framework itself (no LLM turn): the model's call to an
        irreversible tool is held until a lead approves it. The model never sees this step."""
        call = ToolCall("", APPROVAL_TOOL, cjson({"action": action, "target": target, "reason": reason}))
        self.gap(0.002, 0.010)
        ex = ToolExec(self.sid(), self.t, self.t + int(self.rng.uniform(3.0, 14.0) * NS), call,
                      cjson(approval(self.rng, approved)))
        self.t = ex.end
        self.run.steps.append(ex)
        return ex

    def irreversible(self, name: str, args: dict[str, Any], result: Any, *, target: str, reason: str,
                     approved: bool = True, error: Err | None = None) -> ToolExec | None:
        """Run an irreversible tool behind an approval: either the framework gates the model's call,
        or the model asks for approval itself first. Returns None when approval was denied."""
        if self.rng.random() < 0.6:
            c = self.tc(name, args)
            self.llm(calls=[c])
            self.gate(name, target, reason, approved)
            if not approved:
                self.feed_back(c, f"Not executed: {name} was denied by the approver.")
                return None
            return self.tool(c, result, error=error)
        self.use(APPROVAL_TOOL, {"action": name, "target": target, "reason": reason},
                 approval(self.rng, approved), note="This needs a team lead's approval.")
        if not approved:
            return None
        c = self.tc(name, args)
        self.llm(calls=[c])
        return self.tool(c, result, error=error)

    def feed_back(self, call: ToolCall, content: str) -> None:
        """The framework answers a tool call itself (no tool ran): e.g. unknown tool, bad arguments."""
        self.gap(0.001, 0.004)
        self.messages.append(Msg("tool", content, tool_call_id=call.id))

    # composite steps --------------------------------------------------------------------------
    def say(self, text: str) -> str | None:
        """Claude often narrates before calling a tool; OpenAI models rarely do."""
        if self.model.provider == "anthropic" and self.rng.random() < 0.7:
            return text
        return None

    def use(self, name: str, args: dict[str, Any], result: Any, *, note: str = "", **kw: Any) -> ToolExec:
        c = self.tc(name, args)
        self.llm(text=self.say(note) if note else None, calls=[c])
        return self.tool(c, result, **kw)

    def use_many(self, items: Sequence[tuple[str, dict[str, Any], Any]]) -> list[ToolExec]:
        calls = [self.tc(n, a) for n, a, _ in items]
        self.llm(calls=calls)
        return [self.tool(c, r) for c, (_, _, r) in zip(calls, items, strict=True)]

    def answer(self, text: str, **kw: Any) -> str:
        self.llm(text=text, **kw)
        return text
