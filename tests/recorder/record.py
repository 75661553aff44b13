"""Record real instrumentation-library traces of a small support agent, with scripted failures.

    python tests/recorder/record.py LIBRARY OUT.otlp.jsonl [LABELS.jsonl]

LIBRARY is `openinference` (openinference-instrumentation-openai), `otel-v2` (the official
opentelemetry-instrumentation-openai-v2) or `openllmetry` (Traceloop's opentelemetry-instrumentation-
openai). The agent is ~100 lines on the real `openai` SDK: it offers tools, validates and runs the
tool calls the model asks for, retries failed model calls itself (the SDK's retries are off, so each
attempt is a span, as with tenacity-style retry loops), and stops after 6 model turns. It talks to
`fake_openai.FakeOpenAI` on 127.0.0.1, which plays each scenario's script (scenarios.py). Spans go
to the official OTLP JSON file exporter (opentelemetry-exporter-otlp-json-file) through a
BatchSpanProcessor. The agent's own spans (agent, tools) use the OTel GenAI conventions, or
OpenInference's tracer helpers when recording OpenInference. LABELS gets `{"run_id", "scenario",
"modes"}` per run (run_id = trace id).

One library per process: instrumentors patch the openai module globally.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

LIBRARIES = ("openinference", "otel-v2", "openllmetry")
MAX_TURNS = 6
RETRIES = 3  # after the first attempt
SYSTEM = ("You are Acme's support assistant. Use tools, never guess order details. Refunds need "
          "request_approval first.")


class MaxTurnsExceeded(RuntimeError):
    pass


class ToolArgumentsError(ValueError):
    pass


def _setup(library: str, out: Path) -> tuple[Any, Any]:
    if library == "otel-v2":
        os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
        os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.json.file import FileSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({
        "service.name": "support-bot", "deployment.environment.name": "recording",
    }))
    provider.add_span_processor(BatchSpanProcessor(FileSpanExporter(out)))
    trace.set_tracer_provider(provider)
    if library == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    elif library == "otel-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as V2

        V2().instrument(tracer_provider=provider)
    elif library == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as Traceloop

        Traceloop().instrument(tracer_provider=provider)
    else:
        raise SystemExit(f"unknown library {library!r}; use one of {', '.join(LIBRARIES)}")
    return provider, trace.get_tracer("support-bot.agent")


class Agent:
    def __init__(self, library: str, tracer: Any, client: Any):
        import openai

        self.openai = openai
        self.library = library
        self.tracer = tracer
        self.client = client
        if library == "openinference":
            from openinference.instrumentation import OITracer, TraceConfig

            self.oi = OITracer(tracer, config=TraceConfig())

    # -- spans ---------------------------------------------------------------------------------------
    def _agent_span(self, name: str) -> Any:
        if self.library == "openinference":
            return self.oi.start_as_current_span(f"support-bot {name}", openinference_span_kind="agent")
        return self.tracer.start_as_current_span(
            "invoke_agent support-bot",
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support-bot",
                        "gen_ai.provider.name": "openai", "app.feature": name.split("_")[0]})

    def _tool_span(self, name: str, call_id: str, args: str) -> Any:
        if self.library == "openinference":
            span_cm = self.oi.start_as_current_span(name, openinference_span_kind="tool")
        else:
            span_cm = self.tracer.start_as_current_span(
                f"execute_tool {name}",
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
                            "gen_ai.tool.type": "function", "gen_ai.tool.call.id": call_id,
                            "gen_ai.tool.call.arguments": args})
        return span_cm

    # -- the loop ------------------------------------------------------------------------------------
    def run(self, sc: Any) -> str:
        from scenarios import TOOLS

        with self._agent_span(sc.name) as root:
            if self.library == "openinference":
                root.set_input(sc.user)
            trace_id = format(root.get_span_context().trace_id, "032x")
            results = {k: list(v) for k, v in sc.tools.items()}
            messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM},
                                              {"role": "user", "content": sc.user}]
            try:
                answer = self._loop(sc, messages, TOOLS, results)
            except Exception as e:
                from opentelemetry.trace import Status, StatusCode

                root.record_exception(e)
                root.set_status(Status(StatusCode.ERROR, f"{type(e).__name__}: {e}"))
                root.set_attribute("error.type", type(e).__name__)
                return trace_id
            if self.library == "openinference":
                root.set_output(answer)
            return trace_id

    def _complete(self, sc: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
        o = self.openai
        for attempt in range(RETRIES + 1):
            try:
                if sc.stream:  # as streaming users write it: chunks read as they come, usage in the last one
                    return _collect(self.client.chat.completions.create(
                        model=sc.model, messages=messages, tools=tools, temperature=0.2, stream=True,
                        stream_options={"include_usage": True}, extra_headers={"x-scenario": sc.name}))
                return self.client.chat.completions.create(
                    model=sc.model, messages=messages, tools=tools, temperature=0.2,
                    extra_headers={"x-scenario": sc.name})
            except (o.RateLimitError, o.InternalServerError, o.APITimeoutError, o.APIConnectionError):
                if attempt == RETRIES:
                    raise
                time.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    def _loop(self, sc: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
              results: dict[str, list[Any]]) -> str:
        from scenarios import TOOL_NAMES, TOOLS

        schemas = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
        for _ in range(MAX_TURNS):
            resp = self._complete(sc, messages, tools)
            msg = resp.choices[0].message
            if not msg.tool_calls:
                return msg.content or ""
            messages.append({"role": "assistant", "content": msg.content, "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
                for c in msg.tool_calls]})
            for c in msg.tool_calls:
                name, raw = c.function.name, c.function.arguments
                try:
                    if name not in TOOL_NAMES:
                        raise ToolArgumentsError(f"{name} is not a valid tool, try one of [{', '.join(TOOL_NAMES)}]")
                    args = _validate(raw, schemas[name])
                except ToolArgumentsError as e:  # the framework answers for the tool: no tool ran
                    messages.append({"role": "tool", "tool_call_id": c.id, "content": f"Error: {e}"})
                    continue
                content = self._run_tool(name, c.id, raw, args, results)
                messages.append({"role": "tool", "tool_call_id": c.id, "content": content})
        raise MaxTurnsExceeded(f"Max turns ({MAX_TURNS}) exceeded")

    def _run_tool(self, name: str, call_id: str, raw: str, args: dict[str, Any],
                  results: dict[str, list[Any]]) -> str:
        from opentelemetry.trace import Status, StatusCode

        with self._tool_span(name, call_id, raw) as span:
            if self.library == "openinference":
                from scenarios import TOOLS

                fn = next(t["function"] for t in TOOLS if t["function"]["name"] == name)
                span.set_tool(name=name, description=fn["description"], parameters=fn["parameters"])
                span.set_input(raw, mime_type="application/json")
            queue = results.get(name) or [{"status": "ok"}]
            value = queue.pop(0) if len(queue) > 1 else queue[0]
            if isinstance(value, str) and value.startswith("raise "):
                exc_type, _, message = value[len("raise "):].partition(": ")
                exc = {"ConnectionResetError": ConnectionResetError, "TimeoutError": TimeoutError}[exc_type](message)
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{exc_type}: {message}"))
                span.set_attribute("error.type", exc_type)
                return f"Error: {exc_type}: {message}"
            text = value if isinstance(value, str) else json.dumps(value)
            if self.library == "openinference":
                span.set_output(text, mime_type="application/json" if not isinstance(value, str) else None)
            else:
                span.set_attribute("gen_ai.tool.call.result", text)
            return text


def _collect(stream: Any) -> Any:
    """A streamed completion's chunks, read to the end, as the completion they make (`.choices[0].message`
    with `.content` and `.tool_calls[i].id / .function.name / .function.arguments`)."""
    from types import SimpleNamespace as NS

    content: list[str] = []
    calls: dict[int, Any] = {}
    for chunk in stream:
        for choice in chunk.choices:
            d = choice.delta
            if d.content:
                content.append(d.content)
            for tc in d.tool_calls or ():
                c = calls.setdefault(tc.index, NS(id=None, function=NS(name="", arguments="")))
                c.id = tc.id or c.id
                if tc.function and tc.function.name:
                    c.function.name += tc.function.name
                if tc.function and tc.function.arguments:
                    c.function.arguments += tc.function.arguments
    message = NS(content="".join(content) or None, tool_calls=[calls[i] for i in sorted(calls)] or None)
    return NS(choices=[NS(message=message)])


def _validate(raw: str, schema: dict[str, Any]) -> dict[str, Any]:
    """What agent frameworks do before running a tool: parse and check the arguments."""
    import jsonschema

    try:
        args = json.loads(raw)
    except ValueError as e:
        raise ToolArgumentsError(f"could not parse arguments: {e}") from None
    try:
        jsonschema.validate(args, schema)
    except jsonschema.ValidationError as e:
        raise ToolArgumentsError(f"invalid arguments: {e.message}") from None
    return args


def record(library: str, out: Path, labels: Path | None = None, only: list[str] | None = None) -> list[dict[str, Any]]:
    import openai
    from fake_openai import FakeOpenAI
    from scenarios import SCENARIOS

    provider, tracer = _setup(library, out)
    rows = []
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-fake", max_retries=0, timeout=0.4)
        agent = Agent(library, tracer, client)
        for sc in SCENARIOS:
            if only and sc.name not in only:
                continue
            trace_id = agent.run(sc)
            rows.append({"run_id": trace_id, "scenario": sc.name, "modes": list(sc.modes)})
    provider.shutdown()  # flushes the batch processor into the file
    if labels is not None:
        labels.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    record(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) == 4 else None)
