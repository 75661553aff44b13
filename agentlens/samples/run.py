"""A run, independent of any trace format: the dataclasses the simulator fills (LLM calls with their
messages, usage and errors, tool executions, the customer and order it is about) and the writers
render into OpenInference, OTel GenAI, OpenLLMetry or agent_runs rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .content import Model


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model produced it (may not parse)


@dataclass
class Msg:
    role: str  # user | assistant | tool
    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None


@dataclass
class Err:
    type: str
    message: str
    stacktrace: str


@dataclass
class Usage:
    input: int
    output: int
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0


@dataclass
class LLMCall:
    span_id: str
    start: int
    end: int
    model: Model
    system: str
    messages: list[Msg]  # snapshot of the conversation sent (system prompt separate)
    tools: tuple[str, ...]
    temperature: float
    max_tokens: int | None
    response_id: str = ""
    output: Msg | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    error: Err | None = None


@dataclass
class Doc:
    id: str
    title: str
    content: str
    score: float


@dataclass
class ToolExec:
    span_id: str
    start: int
    end: int
    call: ToolCall
    result: str | None
    error: Err | None = None
    docs: list[Doc] | None = None  # search_kb results (rendered as a RETRIEVER span in OpenInference)


@dataclass
class Customer:
    id: str
    user_id: str
    name: str
    email: str
    tenant: str
    tier: str
    since: str


@dataclass
class Order:
    id: str
    product: str
    price: float
    qty: int
    placed: datetime
    status: str
    carrier: str
    tracking: str
    eta: datetime

    @property
    def total(self) -> float:
        return round(self.price * self.qty, 2)


@dataclass
class Run:
    index: int
    file: str
    scenario: str
    start: int  # unix ns
    feature: str
    customer: Customer
    session_id: str
    model: Model
    order: Order
    environment: str = "production"
    pod: str = ""
    legacy: bool = False
    capture_content: bool = True
    trace_id: str = ""
    root_span_id: str = ""
    end: int = 0
    user_text: str = ""
    answer: str | None = None
    error: Err | None = None
    steps: list[LLMCall | ToolExec] = field(default_factory=list)
    modes: tuple[str, ...] = ()


def llm_calls(run: Run) -> list[LLMCall]:
    return [s for s in run.steps if isinstance(s, LLMCall)]


def usage_totals(run: Run) -> tuple[int, int]:
    calls = [c for c in llm_calls(run) if c.usage]
    return sum(c.usage.input for c in calls if c.usage), sum(c.usage.output for c in calls if c.usage)
