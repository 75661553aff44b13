"""Record a real agent framework's traces of the corpus (corpus.py) against the scripted local server.

    python tests/frameworks/record_frameworks.py FRAMEWORK OUT.otlp.jsonl LABELS.jsonl [CASE ...]

FRAMEWORK is `langgraph` (LangChain v1 create_agent, openinference-instrumentation-langchain),
`openai-agents` (OpenAI Agents SDK, openinference-instrumentation-openai-agents) or `pydantic-ai`
(its native OpenTelemetry GenAI instrumentation, instrument=True). The agent is the support agent of
tests/recorder written the way each framework's users write it (run_langgraph.py, run_openai_agents.py,
run_pydantic_ai.py); it talks to tests/recorder/fake_openai.FakeOpenAI on 127.0.0.1, which plays each
case's script over Chat Completions or the Responses API. Spans go to the official OTLP JSON file
exporter through a BatchSpanProcessor, as tests/recorder/record.py does. LABELS gets one JSON line per
run: the case's labels for this framework (corpus.Case.label) and what the recording saw (did the
run's call raise, and with what; did the agent make exactly the model requests the script has).

One framework per process: instrumentors patch their framework globally.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpus  # noqa: E402

RUNNERS = {"langgraph": "run_langgraph", "openai-agents": "run_openai_agents", "pydantic-ai": "run_pydantic_ai"}


def _span_processor() -> type:
    from opentelemetry.sdk.trace import SpanProcessor

    return SpanProcessor


class RootSpans(_span_processor()):  # type: ignore[misc]
    """A span processor that remembers the trace ids of the root spans started since `clear()`."""

    def __init__(self) -> None:
        self.trace_ids: list[str] = []

    def clear(self) -> None:
        self.trace_ids = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if span.parent is None:
            self.trace_ids.append(format(span.get_span_context().trace_id, "032x"))



def provider_for(out: Path, roots: RootSpans) -> Any:
    from opentelemetry.exporter.otlp.json.file import FileSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({
        "service.name": "support-bot", "deployment.environment.name": "recording",
    }))
    provider.add_span_processor(roots)
    provider.add_span_processor(BatchSpanProcessor(FileSpanExporter(out)))
    return provider


def record(fw: str, out: Path, labels: Path, only: list[str] | None = None) -> list[dict[str, Any]]:
    from fake_openai import FakeOpenAI

    if fw not in RUNNERS:
        raise SystemExit(f"unknown framework {fw!r}; use one of {', '.join(RUNNERS)}")
    runner_mod = importlib.import_module(RUNNERS[fw])
    out.unlink(missing_ok=True)  # the file exporter appends
    roots = RootSpans()
    provider = provider_for(out, roots)
    todo = [c for c in corpus.cases(fw) if not only or c.name in only]
    rows = []
    with FakeOpenAI(corpus.scripts(fw), retry_after_ms=5) as fake:
        runner = runner_mod.Runner(provider, fake.base_url)
        for case in todo:
            corpus.BOX.start(case)
            roots.clear()
            t0 = time.perf_counter()
            raised, answer = runner.run(case)
            if len(roots.trace_ids) != 1:
                raise SystemExit(f"{fw} {case.name}: {len(roots.trace_ids)} root spans, expected one")
            row = case.label(fw, roots.trace_ids[0])
            row["recorded"] = {"raised": raised, "answer": (answer or "")[:200],
                               "model_requests": fake.counts[case.name], "script_steps": len(case.llm),
                               "tool_calls": list(corpus.BOX.calls), "seconds": round(time.perf_counter() - t0, 2)}
            rows.append(row)
    provider.shutdown()  # flushes the batch processor into the file
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    record(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:] or None)
