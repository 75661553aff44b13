"""The OTLP/HTTP receiver, fed by the real OpenTelemetry SDK exporters (protobuf and JSON) on
127.0.0.1, then queried; bad requests, partial success, batching and the `collect` command."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from agentlens.sources.collector import PROTOBUF, Collector
from conftest import ROOT, doc, span

trace_sdk = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from opentelemetry.trace import Status, StatusCode  # noqa: E402

NS = 1_795_000_000_000_000_000


def wait_for(cond, timeout=20.0):
    """Poll until cond() is true (the writer thread flushes on its own clock)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def collector(lens):
    c = Collector(lens, host="127.0.0.1", port=0, flush_spans=1000, flush_seconds=0.2).start()
    yield c
    c.stop()


def url(c: Collector, path: str = "/v1/traces") -> str:
    return f"http://{c.address[0]}:{c.address[1]}{path}"


def agent_trace(exporter) -> str:
    """An agent run as an instrumented app records it: invoke_agent > chat (+ a failing tool)."""
    provider = trace_sdk.TracerProvider(resource=Resource.create({"service.name": "weather-svc",
                                                                   "deployment.environment.name": "prod"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("weather-app")
    with tracer.start_as_current_span("invoke_agent weather-agent", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather-agent",
            "user.id": "u-42"}) as root:
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 57, "gen_ai.usage.output_tokens": 17,
                "gen_ai.usage.cache_read.input_tokens": 32}):
            pass
        with tracer.start_as_current_span("execute_tool get_weather", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                "gen_ai.tool.call.id": "call_1"}) as tool:
            tool.record_exception(TimeoutError("weather service timed out"))
            tool.set_status(Status(StatusCode.ERROR, "weather service timed out"))
        trace_id = format(root.get_span_context().trace_id, "032x")
    assert provider.force_flush(10_000)
    provider.shutdown()
    return trace_id


def check_agent_run(lens, trace_id: str) -> None:
    run = lens.runs(run_id=trace_id).row(0, named=True)
    assert (run["source"], run["agent_name"], run["status"]) == ("otlp", "weather-agent", "ok")
    assert (run["input_tokens"], run["output_tokens"], run["cached_input_tokens"]) == (57, 17, 32)
    assert (run["llm_calls"], run["tool_calls"], run["span_count"], run["error_count"]) == (1, 1, 3, 1)
    assert (run["model"], run["user_id"], run["environment"]) == ("gpt-4o-mini-2024-07-18", "u-42", "prod")
    tool = lens.sql("SELECT * FROM spans WHERE kind = 'tool'").row(0, named=True)
    assert (tool["tool_name"], tool["status"], tool["error_type"]) == ("get_weather", "error", "TimeoutError")
    assert tool["source_file"].endswith("/v1/traces")


def test_protobuf_exporter_with_gzip(lens, collector):
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    trace_id = agent_trace(OTLPSpanExporter(endpoint=url(collector), compression=Compression.Gzip))
    assert wait_for(lambda: collector.stats.spans_stored == 3)
    check_agent_run(lens, trace_id)
    assert collector.stats.bad_requests == 0 and lens.quarantine().height == 0


def test_json_exporter(lens, collector):
    json_http = pytest.importorskip("opentelemetry.exporter.otlp.json.http.trace_exporter")
    trace_id = agent_trace(json_http.OTLPSpanExporter(endpoint=url(collector)))
    assert wait_for(lambda: collector.stats.spans_stored == 3)
    check_agent_run(lens, trace_id)


def post(c: Collector, body: bytes, ctype: str, encoding: str | None = None, path: str = "/v1/traces",
         method: str = "POST") -> tuple[int, bytes, str]:
    req = urllib.request.Request(url(c, path), data=body if method == "POST" else None, method=method,
                                 headers={"Content-Type": ctype, **({"Content-Encoding": encoding} if encoding else {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), r.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers["Content-Type"]


T = "0af7651916cd43dd8448eb211c80319c"


def test_bad_requests_get_a_clear_400_and_are_quarantined(lens, collector):
    from google.rpc import status_pb2

    status, body, ctype = post(collector, b"\x0a\xff\xff\xff", PROTOBUF)
    assert (status, ctype) == (400, PROTOBUF)
    assert "not a protobuf ExportTraceServiceRequest" in status_pb2.Status.FromString(body).message
    status, body, _ = post(collector, b'{"resourceSpans": [', "application/json")
    assert status == 400 and "not JSON" in json.loads(body)["message"]
    status, body, _ = post(collector, b"[1, 2]", "application/json")
    assert status == 400 and "JSON object" in json.loads(body)["message"]
    status, body, _ = post(collector, b"not gzip", "application/json", encoding="gzip")
    assert status == 400 and "gzip" in json.loads(body)["message"]
    assert post(collector, b"x", "text/plain")[0] == 415
    assert post(collector, b"{}", "application/json", encoding="br")[0] == 415
    assert post(collector, b"{}", "application/json", path="/v1/logs")[0] == 404
    assert post(collector, b"", "application/json", method="GET")[0] == 405
    # still serving: an empty export and a real one are accepted
    assert post(collector, b"{}", "application/json")[0] == 200
    good = json.dumps(doc(span(T, "00f067aa0ba902b7", None, "invoke_agent bot", NS, NS + 10**9,
                               {"gen_ai.operation.name": "invoke_agent"}))).encode()
    assert post(collector, gzip.compress(good), "application/json", encoding="gzip")[0] == 200
    assert wait_for(lambda: collector.stats.spans_stored == 1)
    kinds = sorted(lens.quarantine()["kind"].to_list())
    assert kinds == ["malformed_json", "not_otlp", "not_otlp", "unreadable_file"]
    raw = lens.quarantine("malformed_json").row(0, named=True)
    assert raw["raw"] == '{"resourceSpans": [' and raw["source_file"] == collector.name
    assert collector.stats.bad_requests == 6  # four 400s and two 415s (404 and 405 are not exports)


def test_partial_success(lens, collector):
    ok = span(T, "00f067aa0ba902b7", None, "invoke_agent bot", NS, NS + 10**9)
    no_trace = span("", "00f067aa0ba902b8", None, "broken", NS, NS + 1)
    status, body, _ = post(collector, json.dumps(doc(ok, no_trace)).encode(), "application/json")
    partial = json.loads(body)["partialSuccess"]
    assert status == 200 and partial["rejectedSpans"] == "1"  # int64 as a string in OTLP JSON
    assert "no valid traceId" in partial["errorMessage"]
    assert wait_for(lambda: collector.stats.spans_stored == 1)
    assert lens.quarantine()["kind"].to_list() == ["missing_field"]


def test_protobuf_response_and_ids(lens, collector):
    """A hand-built protobuf request: the response is an ExportTraceServiceResponse in protobuf, and
    binary ids come out as the same hex ids the JSON path gives."""
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    from opentelemetry.proto.trace.v1 import trace_pb2

    req = trace_service_pb2.ExportTraceServiceRequest()
    s = req.resource_spans.add().scope_spans.add().spans.add()
    s.trace_id, s.span_id, s.name = bytes.fromhex(T), bytes.fromhex("00f067aa0ba902b7"), "root"
    s.start_time_unix_nano, s.end_time_unix_nano = NS, NS + 5_000_000
    s.kind = trace_pb2.Span.SPAN_KIND_SERVER
    status, body, ctype = post(collector, req.SerializeToString(), PROTOBUF)
    resp = trace_service_pb2.ExportTraceServiceResponse.FromString(body)
    assert (status, ctype, resp.partial_success.rejected_spans) == (200, PROTOBUF, 0)
    assert wait_for(lambda: collector.stats.spans_stored == 1)
    row = lens.sql("SELECT run_id, span_id, duration_ms FROM spans").row(0)
    assert row == (T, "00f067aa0ba902b7", 5.0)


@pytest.mark.slow
def test_batched_writes(lens):
    c = Collector(lens, port=0, flush_spans=3, flush_seconds=3600).start()
    try:
        root = span(T, "a000000000000001", None, "invoke_agent bot", NS, NS + 100, {"gen_ai.operation.name": "invoke_agent"})
        kids = [span(T, f"b00000000000000{i}", "a000000000000001", "chat", NS + i, NS + i + 1,
                     {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                      "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 1}) for i in range(1, 4)]
        # children first, as BatchSpanProcessor exports them: two spans wait (fewer than 3)
        assert post(c, json.dumps(doc(*kids[:2])).encode(), "application/json")[0] == 200
        time.sleep(0.3)
        assert c.stats.flushes == 0 and lens.sql("SELECT count(*) FROM spans").item() == 0
        # the third and the root arrive: 4 >= 3, one transaction writes them all, the run is built
        assert post(c, json.dumps(doc(kids[2], root)).encode(), "application/json")[0] == 200
        assert wait_for(lambda: c.stats.flushes == 1)
        assert c.stats.spans_stored == 4
        r = lens.runs().row(0, named=True)
        assert (r["span_count"], r["llm_calls"], r["input_tokens"]) == (4, 3, 30)
        assert lens.quarantine().height == 0  # no orphans: parent and children were written together
        # a late span of the same trace: stop() writes it and the run is rebuilt with it
        late = span(T, "c000000000000001", "a000000000000001", "execute_tool x", NS + 50, NS + 60,
                    {"gen_ai.tool.name": "x"})
        assert post(c, json.dumps(doc(late)).encode(), "application/json")[0] == 200
    finally:
        stats = c.stop()
    assert stats.flushes == 2 and stats.spans_stored == 5
    assert lens.runs().row(0, named=True)["tool_calls"] == 1


@pytest.mark.slow
def test_collect_command(tmp_path):
    db = tmp_path / "c.duckdb"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = "from agentlens.cli import main; main(prog_name='agentlens')"
    proc = subprocess.Popen([sys.executable, "-c", cli, "collect", "--port", "0", "--db", str(db),
                             "--flush-seconds", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        assert "receiving OTLP/HTTP on http://127.0.0.1:" in line, line + proc.stderr.read()
        endpoint = line.split(" on ", 1)[1].split(" ", 1)[0]
        body = json.dumps(doc(span(T, "00f067aa0ba902b7", None, "invoke_agent bot", NS, NS + 10**9,
                                   {"gen_ai.operation.name": "invoke_agent"}))).encode()
        req = urllib.request.Request(endpoint, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200 and json.loads(r.read()) == {}
        proc.send_signal(signal.SIGTERM)
        out, errs = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, errs
    assert "spans stored: 1" in out and "requests: 1 (0 rejected)" in out
    import agentlens

    with agentlens.open(db, read_only=True) as lens:
        assert lens.runs()["agent_name"].to_list() == ["bot"]


def post_json(endpoint: str, body: dict) -> int:
    req = urllib.request.Request(endpoint, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.slow
def test_kill_9_loses_nothing_the_receiver_acknowledged(tmp_path):
    """Every acknowledged request is in the spool before the answer: a receiver killed between flushes
    (flush-seconds far away) loses nothing, the next one replays it first."""
    db = tmp_path / "k.duckdb"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = "from agentlens.cli import main; main(prog_name='agentlens')"

    def start() -> tuple[subprocess.Popen, str]:
        proc = subprocess.Popen([sys.executable, "-c", cli, "collect", "--port", "0", "--db", str(db),
                                 "--flush-seconds", "3600", "--flush-spans", "100000"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
        line = proc.stdout.readline()
        assert "receiving OTLP/HTTP on http://127.0.0.1:" in line, line + proc.stderr.read()
        return proc, line.split(" on ", 1)[1].split(" ", 1)[0]

    proc, endpoint = start()
    acknowledged = 0
    try:
        for i in range(40):  # nothing is flushed: all of it lives in memory and in the spool only
            trace = f"{i + 1:032x}"
            body = doc(span(trace, f"{i + 1:016x}", None, "invoke_agent bot", NS + i, NS + i + 10**9,
                            {"gen_ai.operation.name": "invoke_agent"}))
            if post_json(endpoint, body) == 200:
                acknowledged += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert acknowledged == 40
    proc, endpoint = start()  # replays the dead receiver's spool before it serves
    proc.send_signal(signal.SIGTERM)
    out, errs = proc.communicate(timeout=60)
    assert proc.returncode == 0, errs
    assert "requests replayed from a killed receiver's spool: 40" in out, out
    import agentlens

    with agentlens.open(db, read_only=True) as lens:
        assert lens.sql("SELECT count(*) n FROM spans")["n"][0] == acknowledged
    assert not list((tmp_path / ".k.duckdb.spool").glob("*.seg"))  # written, so off the spool


def test_a_span_with_an_impossible_count_is_stored_without_it_and_flagged(lens):
    """A token count past int64 killed the writer thread after a 200: every later span was lost. Now the
    span is stored without that count and flagged (as ingest does: adapters.base.impossible), and the
    receiver goes on."""
    c = Collector(lens, port=0, flush_spans=1000, flush_seconds=0.2).start()
    try:
        endpoint = url(c)
        huge = doc(span(T, "00f067aa0ba902b7", None, "chat", NS, NS + 10**9,
                        {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 2**70}))
        assert post_json(endpoint, huge) == 200
        ok = doc(span("ab" * 16, "00f067aa0ba902b8", None, "invoke_agent bot", NS, NS + 10**9,
                      {"gen_ai.operation.name": "invoke_agent"}))
        assert post_json(endpoint, ok) == 200
        assert wait_for(lambda: c.stats.spans_stored == 2)
    finally:
        stats = c.stop()
    assert stats.write_errors == []
    assert lens.sql("SELECT count(*) n FROM spans WHERE input_tokens IS NULL")["n"][0] == 2
    (flag,) = lens.quarantine("impossible_value").to_dicts()
    assert flag["stored"] is True and "does not fit in 64 bits" in flag["reason"] and flag["span_id"] == "00f067aa0ba902b7"


@pytest.mark.parametrize("body, ctype", [
    (b'{"resourceSpans": "not a list"}', "application/json"),
    (b'{"resourceSpans": [{"resource": "a string", "scopeSpans": [{"spans": [1, 2]}]}]}', "application/json"),
    (b'[1, 2, 3]', "application/json"),
    (b"\x1f\x8b\x08\x00garbage", "application/json"),
])
def test_every_request_gets_an_answer(lens, body, ctype):
    c = Collector(lens, port=0, flush_spans=1000, flush_seconds=0.2).start()
    try:
        req = urllib.request.Request(url(c), data=body, headers={"Content-Type": ctype})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status = r.status
        except urllib.error.HTTPError as e:
            status = e.code
        assert status in (200, 400), status  # an answer, never silence: exporters retry silence forever
    finally:
        c.stop()
