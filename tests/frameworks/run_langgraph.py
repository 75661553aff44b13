"""The support agent on LangChain v1 `create_agent` (a LangGraph graph), traced by
openinference-instrumentation-langchain. Retries come from the agent middleware, as LangChain documents:
ModelRetryMiddleware for model calls (the openai SDK's own retries off, so every attempt is a span),
ToolRetryMiddleware for transient tool errors (whose last failure goes back to the model as an error
ToolMessage); the step cap is LangGraph's recursion_limit, or ModelCallLimitMiddleware where a case asks.
App metadata goes through LangChain's `config={"metadata": ...}` and OpenInference's `using_attributes`.
A case with `knobs["rag"]` (help-center articles) retrieves before every model call, as LangChain's RAG
guide writes it: a `@dynamic_prompt` middleware invokes a retriever (a real LangChain `BaseRetriever`,
traced as a RETRIEVER span) with the user's question and puts the articles in the system prompt."""

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
        if "rag" in case.knobs:
            middleware.append(_rag_prompt(_help_center(case.knobs["rag"])))
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


def _help_center(articles: list[str]) -> Any:
    """A LangChain retriever over the case's help-center articles (all of them match: the corpus scripts the
    model, not the search)."""
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    class HelpCenter(BaseRetriever):
        articles: list[str]

        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
            return [Document(page_content=a, id=f"kb-{i}", metadata={"source": f"help-center/{i}"})
                    for i, a in enumerate(self.articles)]

    return HelpCenter(articles=articles)


def _rag_prompt(retriever: Any) -> Any:
    from langchain.agents.middleware import ModelRequest, dynamic_prompt
    from langchain_core.messages import HumanMessage

    @dynamic_prompt
    def with_articles(request: ModelRequest) -> str:
        question = next(m.text for m in reversed(request.state["messages"]) if isinstance(m, HumanMessage))
        docs = retriever.invoke(question)
        return corpus.SYSTEM + "\n\nHelp-center articles:\n\n" + "\n\n".join(d.page_content for d in docs)

    return with_articles
