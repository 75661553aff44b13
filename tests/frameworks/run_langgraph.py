"""The support agent on LangChain v1 `create_agent` (a LangGraph graph), traced by
openinference-instrumentation-langchain. Retries come from the agent middleware, as LangChain documents:
ModelRetryMiddleware for model calls (the openai SDK's own retries off, so every attempt is a span),
ToolRetryMiddleware for transient tool errors (whose last failure goes back to the model as an error
ToolMessage); the step cap is LangGraph's recursion_limit, or ModelCallLimitMiddleware where a case asks.
App metadata goes through LangChain's `config={"metadata": ...}` and OpenInference's `using_attributes`."""

from __future__ import annotations

from typing import Any

import corpus


class Runner:
    def __init__(self, provider: Any, base_url: str) -> None:
        from langchain_core.tools import StructuredTool
        from openinference.instrumentation.langchain import LangChainInstrumentor

        LangChainInstrumentor().instrument(tracer_provider=provider)
        self.base_url = base_url
        self.tools = [StructuredTool.from_function(f) for f in corpus.FUNCTIONS]

    def agent(self, case: corpus.Case) -> Any:
        from langchain.agents import create_agent
        from langchain.agents.middleware import (
            ModelCallLimitMiddleware,
            ModelRetryMiddleware,
            ToolRetryMiddleware,
        )
        from langchain_openai import ChatOpenAI

        model = ChatOpenAI(model=case.model, base_url=self.base_url, api_key="sk-fake", max_retries=0,
                           timeout=corpus.CLIENT_TIMEOUT, temperature=0.2, default_headers={"x-scenario": case.name})
        middleware: list[Any] = [
            ModelRetryMiddleware(max_retries=corpus.MODEL_RETRIES, on_failure="error", initial_delay=0.01,
                                 backoff_factor=1.0, jitter=False),
            ToolRetryMiddleware(max_retries=1, retry_on=(ConnectionError, TimeoutError), on_failure="continue",
                                initial_delay=0.01, backoff_factor=1.0, jitter=False),
        ]
        if "call_limit" in case.knobs:
            middleware.insert(0, ModelCallLimitMiddleware(run_limit=case.knobs["call_limit"], exit_behavior="end"))
        return create_agent(model, tools=self.tools, system_prompt=corpus.SYSTEM, middleware=middleware,
                            name="support-bot")

    def run(self, case: corpus.Case) -> tuple[str | None, str | None]:
        from openinference.instrumentation import using_attributes

        meta = corpus.metadata(case)
        agent = self.agent(case)
        # two graph steps per turn (model node, tools node), three with ModelCallLimitMiddleware's before-model node
        config = {"recursion_limit": (3 if "call_limit" in case.knobs else 2) * corpus.MAX_TURNS, "metadata": meta, "tags": ["support-bot"]}
        with using_attributes(session_id=meta["session_id"], user_id=meta["user_id"], metadata=meta):
            try:
                state = agent.invoke({"messages": [{"role": "user", "content": case.user}]}, config=config)
            except Exception as e:
                return f"{type(e).__name__}: {e}"[:300], None
        content = state["messages"][-1].content
        return None, content if isinstance(content, str) else str(content)
