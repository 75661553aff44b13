"""Small hand-made agent runs (OTLP JSON, OTel GenAI attributes) for the signals, rollups and
alerts tests: every expected number in those tests is computed by hand from these."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from conftest import doc, jsonl, span

UTC = dt.UTC
BASE = dt.datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC


def ns(t: dt.datetime) -> int:
    return int((t - dt.datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000) * 1000


class Run:
    """One agent run: an `invoke_agent` root and its LLM and tool spans, at millisecond offsets."""

    def __init__(self, n: int, start: dt.datetime, duration_ms: float, feature: str = "refund",
                 error: str | None = None, agent: str = "bot", environment: str = "prod"):
        self.n, self.start, self.duration_ms = n, start, duration_ms
        self.trace = f"{n:032x}"
        self.root = self.sid(0)
        self.children: list[dict[str, Any]] = []
        self.attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent, "feature": feature,
                      "deployment.environment.name": environment}
        self.error = error
        self._k = 0

    def sid(self, k: int) -> str:
        return f"{self.n:08x}{k:08x}"

    def _span(self, name: str, attrs: dict[str, Any], at_ms: float, dur_ms: float, parent: str | None,
              error: tuple[str, str] | None) -> str:
        self._k += 1
        sid = self.sid(self._k)
        status = None
        if error:
            attrs = {**attrs, "error.type": error[0]}
            status = {"code": 2, "message": error[1]}
        t0 = ns(self.start) + int(at_ms * 1_000_000)
        self.children.append(span(self.trace, sid, parent or self.root, name, t0, t0 + int(dur_ms * 1_000_000),
                                  attrs, status=status))
        return sid

    def llm(self, model: str, at_ms: float, dur_ms: float, inp: int | None = None, out: int | None = None,
            cost: float | None = None, error: tuple[str, str] | None = None, ttft_s: float | None = None,
            provider: str = "openai", parent: str | None = None) -> str:
        attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
                                 "gen_ai.provider.name": provider}
        if inp is not None:
            attrs["gen_ai.usage.input_tokens"] = inp
        if out is not None:
            attrs["gen_ai.usage.output_tokens"] = out
        if cost is not None:
            attrs["gen_ai.usage.cost"] = cost
        if ttft_s is not None:
            attrs["gen_ai.response.time_to_first_chunk"] = ttft_s
        return self._span(f"chat {model}", attrs, at_ms, dur_ms, parent, error)

    def tool(self, name: str, at_ms: float, dur_ms: float, error: tuple[str, str] | None = None) -> str:
        return self._span(f"execute_tool {name}", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name},
                          at_ms, dur_ms, None, error)

    def spans(self) -> list[dict[str, Any]]:
        t0 = ns(self.start)
        status = {"code": 2, "message": self.error} if self.error else None
        root = span(self.trace, self.root, None, "invoke_agent bot", t0, t0 + int(self.duration_ms * 1_000_000),
                    self.attrs, status=status)
        return [*self.children, root]


def write(path: Path, runs: list[Run]) -> Path:
    return jsonl(path, *(doc(*r.spans()) for r in runs))


def at(minutes: float = 0, seconds: float = 0, hours: float = 0) -> dt.datetime:
    return BASE + dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)


def five_runs() -> list[Run]:
    """Five runs of 100..500 ms; R2 and R5 fail. Between them, 7 LLM calls, 2 rate-limited.

    R1 refund 10:00 100 ms ok     LLM gpt-4o 50 ms in 1000 (inside a wrapper LLM span), tool get_order 20 ms
    R2 refund 10:10 200 ms error  LLM gpt-4o 5 ms 429 RateLimitError; LLM gpt-4o 80 ms in 64000, TTFT 30 ms
    R3 refund 10:20 300 ms ok     LLM claude 10 ms 529 OverloadedError; LLM claude 60 ms in 100000; tool search_kb 50 ms
    R4 billing 10:30 400 ms ok    LLM gpt-4o-mini 40 ms in 12800; tool get_order 40 ms TimeoutError
    R5 billing 11:05 500 ms error LLM gpt-4o-mini 30 ms 500 InternalServerError
    """
    r1 = Run(1, at(0), 100)
    wrapper = r1.llm("gpt-4o", 10, 60, inp=1000, out=10)  # a framework's LLM span around the SDK's
    r1.llm("gpt-4o", 15, 50, inp=1000, out=10, cost=0.01, parent=wrapper)
    r1.tool("get_order", 70, 20)
    r2 = Run(2, at(10), 200, error="RateLimitError: Error code: 429 - rate limit reached")
    r2.llm("gpt-4o", 10, 5, error=("RateLimitError", "Error code: 429 - {'code': 'rate_limit_exceeded'}"))
    r2.llm("gpt-4o", 50, 80, inp=64000, out=20, cost=0.2, ttft_s=0.030)
    r3 = Run(3, at(20), 300)
    r3.llm("claude-3-5-sonnet", 10, 10, provider="anthropic",
           error=("OverloadedError", "Error code: 529 - {'type': 'overloaded_error'}"))
    r3.llm("claude-3-5-sonnet", 30, 60, inp=100000, out=30, cost=0.3, provider="anthropic")
    r3.tool("search_kb", 100, 50)
    r4 = Run(4, at(30), 400, feature="billing")
    r4.llm("gpt-4o-mini", 10, 40, inp=12800, out=40, cost=0.002)
    r4.tool("get_order", 60, 40, error=("TimeoutError", "TimeoutError: get_order timed out"))
    r5 = Run(5, at(65), 500, feature="billing", error="InternalServerError: Error code: 500")
    r5.llm("gpt-4o-mini", 10, 30, error=("InternalServerError", "Error code: 500 - server_error"))
    return [r1, r2, r3, r4, r5]


# Context windows given in the config, so that the expected utilisations do not depend on the
# genai-prices snapshot; the runs' hand-set reported costs are their headline costs (they disagree with
# the price list on purpose: the expected values are written from them).
MODELS_CONFIG = {"models": {"gpt-4o": {"context_window": 128000}, "gpt-4o-mini": {"context_window": 128000},
                            "claude-3-5-sonnet": {"context_window": 200000}},
                 "pricing": {"headline_cost": "reported"}}
