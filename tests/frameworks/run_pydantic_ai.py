"""The support agent on pydantic-ai, traced by its own OpenTelemetry instrumentation
(`Agent.instrument_all(InstrumentationSettings(...))`, what `instrument=True` and
`logfire.instrument_pydantic_ai()` turn on: the OTel GenAI conventions, not OpenInference). The model is OpenAIChatModel
(Chat Completions) with the openai SDK's own retries, which is where a pydantic-ai user's retries are
unless they add a transport: every attempt is inside one model span. Tools turn a transient error into
`ModelRetry` (the pydantic-ai idiom: the error goes back to the model as a retry prompt); any other
exception ends the run. The step cap is UsageLimits(request_limit). App metadata goes through
`agent.run(metadata=...)`."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import corpus


def _retrying(fn: Callable[..., Any]) -> Callable[..., Any]:
    from pydantic_ai import ModelRetry

    @functools.wraps(fn)
    def tool(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConnectionError, TimeoutError) as e:
            raise ModelRetry(f"{type(e).__name__}: {e}") from e

    return tool


class Runner:
    def __init__(self, provider: Any, base_url: str) -> None:
        from pydantic_ai import Agent, Tool
        from pydantic_ai.models.instrumented import InstrumentationSettings

        self.base_url = base_url
        Agent.instrument_all(InstrumentationSettings(tracer_provider=provider))
        self.tools = [Tool(_retrying(f), takes_ctx=False) for f in corpus.FUNCTIONS]
        self.loop = asyncio.new_event_loop()

    def agent(self, case: corpus.Case) -> Any:
        from openai import AsyncOpenAI
        from pydantic_ai import Agent
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        client = AsyncOpenAI(base_url=self.base_url, api_key="sk-fake", max_retries=corpus.MODEL_RETRIES,
                             timeout=corpus.CLIENT_TIMEOUT, default_headers={"x-scenario": case.name})
        model = OpenAIChatModel(case.model, provider=OpenAIProvider(openai_client=client))
        return Agent(model, instructions=corpus.SYSTEM, tools=self.tools, name="support-bot",
                     model_settings={"temperature": 0.2})

    def run(self, case: corpus.Case) -> tuple[str | None, str | None]:
        from pydantic_ai.usage import UsageLimits

        meta = corpus.metadata(case)
        try:
            result = self.loop.run_until_complete(self.agent(case).run(
                case.user, usage_limits=UsageLimits(request_limit=corpus.MAX_TURNS), metadata=meta))
        except Exception as e:
            return f"{type(e).__name__}: {e}"[:300], None
        return None, str(result.output)
