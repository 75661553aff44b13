"""The support agent on the OpenAI Agents SDK (Agent, Runner.run, handoffs), traced by
openinference-instrumentation-openai-agents (its trace processor replaces the SDK's exporter, so nothing
leaves the machine). The model is the SDK's default, OpenAIResponsesModel (the Responses API); retries
are the runner-managed ModelRetrySettings with the SDK's retry_policies (the openai SDK's own retries off); tools are function tools
with the default failure_error_function (a tool's exception goes back to the model as text). App metadata
goes through RunConfig (group_id, trace_metadata) and OpenInference's `using_attributes`."""

from __future__ import annotations

import asyncio
from typing import Any

import corpus


class Runner:
    def __init__(self, provider: Any, base_url: str) -> None:
        from agents import function_tool
        from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

        OpenAIAgentsInstrumentor().instrument(tracer_provider=provider)
        self.base_url = base_url
        self.tools = {f.__name__: function_tool(f) for f in corpus.FUNCTIONS}
        self.loop = asyncio.new_event_loop()

    def agent(self, case: corpus.Case) -> Any:
        from agents import Agent, ModelRetrySettings, ModelSettings, OpenAIResponsesModel, retry_policies
        from openai import AsyncOpenAI

        client = AsyncOpenAI(base_url=self.base_url, api_key="sk-fake", max_retries=0, timeout=corpus.CLIENT_TIMEOUT,
                             default_headers={"x-scenario": case.name})
        model = OpenAIResponsesModel(model=case.model, openai_client=client)
        # the SDK's documented policy for transient failures: what the provider suggests (429, 5xx with
        # x-should-retry), network errors and timeouts, and the usual HTTP statuses
        policy = retry_policies.any(retry_policies.provider_suggested(), retry_policies.network_error(),
                                    retry_policies.http_status([429, 500, 502, 503, 504]))
        settings = ModelSettings(temperature=0.2, retry=ModelRetrySettings(
            max_retries=corpus.MODEL_RETRIES, policy=policy,
            backoff={"initial_delay": 0.01, "max_delay": 0.05, "jitter": False}))
        if case.knobs.get("handoff"):
            refunds = Agent(name="refunds_agent", instructions=corpus.SYSTEM, model=model, model_settings=settings,
                            tools=[self.tools[n] for n in ("request_approval", "refund_order", "send_email")])
            return Agent(name="support-bot", instructions="Route refund requests to the refunds agent.", model=model,
                         model_settings=settings, handoffs=[refunds],
                         tools=[self.tools[n] for n in ("get_order", "lookup_customer")])
        return Agent(name="support-bot", instructions=corpus.SYSTEM, model=model, model_settings=settings,
                     tools=list(self.tools.values()))

    def run(self, case: corpus.Case) -> tuple[str | None, str | None]:
        from agents import RunConfig
        from agents import Runner as SDKRunner
        from openinference.instrumentation import using_attributes

        meta = corpus.metadata(case)
        config = RunConfig(workflow_name="support-bot", group_id=meta["session_id"], trace_metadata=meta)
        with using_attributes(session_id=meta["session_id"], user_id=meta["user_id"], metadata=meta):
            try:
                result = self.loop.run_until_complete(SDKRunner.run(
                    self.agent(case), case.user, max_turns=corpus.MAX_TURNS, run_config=config))
            except Exception as e:
                return f"{type(e).__name__}: {e}"[:300], None
        return None, str(result.final_output)
