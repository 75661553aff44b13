"""A production app's traces, sent to `agentlens collect` by the real OpenTelemetry SDK exporter.

    python tests/concurrency/otel_load.py ENDPOINT SECONDS SPANS_PER_SECOND SERVICE

Each trace is an agent run: an `invoke_agent` root, two `chat` LLM calls (GenAI attributes, tokens) and a
tool call, so every span builds runs, is priced and classified in the receiver's writes. Spans go through
a BatchSpanProcessor to the OTLP/HTTP protobuf exporter, as an instrumented app sends them. The exporter
is wrapped to count the spans the receiver acknowledged (an export that returned SUCCESS); the script
prints that count as its last line, `acknowledged N`, after flushing on shutdown.
"""

from __future__ import annotations

import sys
import threading
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult


class Counting(SpanExporter):
    def __init__(self, inner: SpanExporter):
        self.inner = inner
        self.acknowledged = 0
        self.failed = 0
        self.lock = threading.Lock()

    def export(self, spans):  # type: ignore[no-untyped-def]
        result = self.inner.export(spans)
        with self.lock:
            if result == SpanExportResult.SUCCESS:
                self.acknowledged += len(spans)
            else:
                self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def main() -> None:
    endpoint, seconds, rate, service = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    exporter = Counting(OTLPSpanExporter(endpoint=endpoint, timeout=30))
    provider = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment.name": "load"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=100_000, schedule_delay_millis=200,
                                                   max_export_batch_size=512))
    tracer = provider.get_tracer("load")
    per_run = 4
    interval = per_run / rate
    end = time.monotonic() + seconds
    n = 0
    next_at = time.monotonic()
    while time.monotonic() < end:
        with tracer.start_as_current_span("invoke_agent support-bot", attributes={
                "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support-bot",
                "app.feature": "refund" if n % 3 else "order_status", "user.id": f"u{n % 17}"}):
            for turn in range(2):
                with tracer.start_as_current_span("chat gpt-4o-mini", attributes={
                        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 800 + turn,
                        "gen_ai.usage.output_tokens": 40}):
                    pass
                if turn == 0:
                    with tracer.start_as_current_span("execute_tool get_order", attributes={
                            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_order"}):
                        pass
        n += 1
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    provider.shutdown()  # flushes what is queued
    print(f"runs {n} spans {n * per_run} failed {exporter.failed}")
    print(f"acknowledged {exporter.acknowledged}", flush=True)


if __name__ == "__main__":
    main()
