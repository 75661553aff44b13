"""The OTLP/HTTP receiver behind `agentlens collect`: instrumented apps export straight into agentlens.

`POST /v1/traces` with an `ExportTraceServiceRequest`, as protobuf (`application/x-protobuf`) or JSON
(`application/json`), optionally `Content-Encoding: gzip`, as the OpenTelemetry SDKs' and the
Collector's `otlphttp` exporters send it. Protobuf is decoded with `opentelemetry-proto`'s generated
classes and turned into the JSON mapping (`MessageToDict`), so both encodings go through the one
OTLP span decoder of `adapters/otlp.py` (base64 ids, enum names and int64 strings included).

Answers follow the OTLP/HTTP specification: `200` with an `ExportTraceServiceResponse` in the
request's encoding, with `partial_success` (`rejected_spans`, `error_message`) when some spans could
not be stored; `400` with a `google.rpc.Status` naming the problem for a request that cannot be
decoded; `415` for another content type, `413` for a body over the limit, `404` / `405` elsewhere,
and `503` with `Retry-After` while too many spans wait to be written (exporters retry). What
cannot be read goes to the quarantine, as with files (`source_file` is the receiver's URL).

Writes are batched: accepted spans are written in one transaction through the store
(`Lens.ingest_batches`: spans deduplicated, runs rebuilt, pipeline steps run) every `flush_spans`
spans or `flush_seconds`, whichever comes first, by one writer thread; `stop()` flushes what is left.
An acknowledged span is in memory until its flush: a crash loses at most that window.
"""

from __future__ import annotations

import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from ..adapters import otlp
from ..adapters.base import SPAN_SCHEMA, Bad, Batch, Columns
from ..ingest import Pipeline, ingest_batches
from ..store import Store

TRACES_PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
DEFAULT_PORT = 4318
MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_RAW_QUARANTINE = 1 << 20
INVALID_ARGUMENT = 3  # google.rpc.Code
UNAVAILABLE = 14

_decoder = msgspec.json.Decoder()


class RequestError(Exception):
    def __init__(self, status: int, message: str, kind: str | None = None, raw: bytes = b""):
        super().__init__(message)
        self.status, self.kind, self.raw = status, kind, raw


@dataclass
class Stats:
    requests: int = 0
    bad_requests: int = 0
    spans_accepted: int = 0
    spans_rejected: int = 0
    spans_stored: int = 0
    runs_updated: int = 0
    flushes: int = 0
    write_errors: list[str] = field(default_factory=list)


class Collector:
    """An OTLP/HTTP receiver writing into `lens`. `start()` serves in background threads; `stop()`
    stops serving and flushes. `address` is the (host, port) actually bound (port 0: any free one)."""

    def __init__(self, lens: Store, host: str = "127.0.0.1", port: int = DEFAULT_PORT, flush_spans: int = 5000,
                 flush_seconds: float = 2.0, max_body_bytes: int = MAX_BODY_BYTES,
                 max_pending_spans: int | None = None, on_flush: Callable[[Stats], None] | None = None,
                 pipeline: Pipeline | None = None):
        if flush_spans < 1 or flush_seconds <= 0:
            raise ValueError("flush_spans must be >= 1 and flush_seconds > 0")
        self.lens = lens
        self.pipeline = pipeline or Pipeline.default()  # what runs on each written batch (agentlens.Lens's)
        self.flush_spans = flush_spans
        self.flush_seconds = flush_seconds
        self.max_body_bytes = max_body_bytes
        self.max_pending = max_pending_spans if max_pending_spans is not None else max(20 * flush_spans, 100_000)
        self.on_flush = on_flush
        self.stats = Stats()
        self._cond = threading.Condition()
        self._db = threading.Lock()  # one DuckDB writer at a time
        self._cols = Columns(SPAN_SCHEMA)
        self._bad: list[Bad] = []
        self._since: float | None = None  # when the oldest pending span arrived
        self._stopping = False
        self.server = ThreadingHTTPServer((host, port), _handler(self))
        self.server.daemon_threads = True
        h, p = self.server.server_address[:2]
        self.address: tuple[str, int] = (str(h), int(p))
        self.name = f"otlp-http://{self.address[0]}:{self.address[1]}{TRACES_PATH}"
        self._threads: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> Collector:
        for target in (self.server.serve_forever, self._writer):
            t = threading.Thread(target=target, daemon=True, name=f"agentlens-collect-{target.__name__}")
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> Stats:
        self.server.shutdown()
        self.server.server_close()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=30)
        self.flush()
        return self.stats

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests -------------------------------------------------------------------------------------
    def accept(self, body: bytes, content_type: str, encoding: str) -> tuple[int, bytes, str, dict[str, str]]:
        """Handle one export request -> (HTTP status, body, content type, extra headers)."""
        ctype = (content_type or "").split(";")[0].strip().lower()
        proto = ctype == PROTOBUF
        try:
            if ctype not in (PROTOBUF, JSON):
                raise RequestError(415, f"unsupported Content-Type {content_type!r}: send {PROTOBUF} or {JSON}")
            data = self._decompress(body, (encoding or "").strip().lower())
            doc = self._decode(data, proto)
            with self._cond:
                if self._cols.rows >= self.max_pending:
                    raise RequestError(503, f"{self._cols.rows} spans wait to be written; retry shortly")
            rows, bad = [], []
            if "resourceSpans" in doc or "resource_spans" in doc:  # an empty or unknown-only object is an empty export
                for row, b in otlp.document_rows(doc, self.lens.config, self.name, None):
                    if row is not None:
                        rows.append(row)
                    if b is not None:
                        bad.append(b)
        except RequestError as e:
            with self._cond:
                self.stats.requests += 1
                self.stats.bad_requests += 1
                if e.kind is not None:  # what could not be read is kept, as ingest does
                    self._bad.append(Bad(e.kind, str(e), e.raw[:MAX_RAW_QUARANTINE].decode("utf-8", "backslashreplace")))
                    self._since = self._since or time.monotonic()
                    self._cond.notify_all()
            headers = {"Retry-After": "1"} if e.status == 503 else {}
            return e.status, _status(e.status, str(e), proto), PROTOBUF if proto else JSON, headers
        rejected = [b for b in bad if not b.stored]
        with self._cond:
            for row in rows:
                self._cols.append(row)
            self._bad.extend(bad)
            self.stats.requests += 1
            self.stats.spans_accepted += len(rows)
            self.stats.spans_rejected += len(rejected)
            if rows or bad:
                self._since = self._since or time.monotonic()
                self._cond.notify_all()  # the writer starts the flush clock, or flushes a full buffer
        response = trace_service_pb2.ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = len(rejected)
            reasons = "; ".join(b.reason for b in rejected[:3]) + ("; ..." if len(rejected) > 3 else "")
            response.partial_success.error_message = f"{len(rejected)} span(s) rejected: {reasons}"
        return 200, _encode(response, proto), PROTOBUF if proto else JSON, {}

    def _decompress(self, body: bytes, encoding: str) -> bytes:
        if encoding in ("", "identity"):
            return body
        if encoding not in ("gzip", "deflate"):
            raise RequestError(415, f"unsupported Content-Encoding {encoding!r}: send gzip or none")
        d = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
        try:
            out = d.decompress(body, self.max_body_bytes)
        except zlib.error as e:
            raise RequestError(400, f"the body is not valid {encoding}: {e}", "unreadable_file", body) from None
        if d.unconsumed_tail:
            raise RequestError(413, f"the decompressed body is over {self.max_body_bytes} bytes")
        return out

    def _decode(self, data: bytes, proto: bool) -> dict[str, Any]:
        if proto:
            try:
                msg = trace_service_pb2.ExportTraceServiceRequest.FromString(data)
            except DecodeError as e:
                raise RequestError(400, f"the body is not a protobuf ExportTraceServiceRequest: {e}",
                                   "not_otlp", data) from None
            return json_format.MessageToDict(msg)  # camelCase, base64 ids, enum names: the OTLP JSON reader's input
        try:
            doc = _decoder.decode(data)
        except msgspec.DecodeError as e:
            raise RequestError(400, f"the body is not JSON: {e}", "malformed_json", data) from None
        if not isinstance(doc, dict):
            raise RequestError(400, f"an ExportTraceServiceRequest is a JSON object, got {type(doc).__name__}",
                               "not_otlp", data)
        return doc

    # -- writing --------------------------------------------------------------------------------------
    def _writer(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._due():
                    wait = None if self._since is None else max(0.0, self._since + self.flush_seconds - time.monotonic())
                    self._cond.wait(timeout=wait)
                if self._stopping:
                    return
            self.flush()

    def _due(self) -> bool:
        if self._since is None:
            return False
        return self._cols.rows >= self.flush_spans or time.monotonic() - self._since >= self.flush_seconds

    def flush(self) -> int:
        """Write what is pending now, in one transaction. Returns the spans written."""
        with self._db:
            with self._cond:
                if not self._cols.rows and not self._bad:
                    return 0
                table = self._cols.table() if self._cols.rows else None
                bad = self._bad
                self._cols.clear()
                self._bad = []
                self._since = None
            try:
                if getattr(self.lens, "clickhouse", None) is not None:  # a ClickHouse store: runs built in the
                    # lens's work database, then written to ClickHouse (agentlens.scale.ship)
                    res = self.lens.ingest_batches(self.name, otlp.NAME, [Batch(spans=table, bad=bad)])  # type: ignore[attr-defined]
                else:
                    res = ingest_batches(self.lens, self.name, otlp.NAME, [Batch(spans=table, bad=bad)], self.pipeline)
            except Exception as e:  # keep serving; the batch is put back and retried at the next flush
                with self._cond:
                    self.stats.write_errors.append(f"{type(e).__name__}: {e}")
                    if table is not None:
                        for row in table.to_pylist():
                            self._cols.append(row)
                    self._bad = bad + self._bad
                    self._since = time.monotonic()
                print(f"agentlens collect: write failed, will retry: {e}", file=sys.stderr)
                return 0
            with self._cond:
                self.stats.flushes += 1
                self.stats.spans_stored += res.spans
                self.stats.runs_updated += res.runs
            if self.on_flush is not None:
                self.on_flush(self.stats)
            return res.spans


def _encode(msg: Any, proto: bool) -> bytes:
    if proto:
        return bytes(msg.SerializeToString())
    return msgspec.json.encode(json_format.MessageToDict(msg))


def _status(http_status: int, message: str, proto: bool) -> bytes:
    code = UNAVAILABLE if http_status == 503 else INVALID_ARGUMENT
    return _encode(status_pb2.Status(code=code, message=message), proto)


def _handler(collector: Collector) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "agentlens-collect"

        def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            proto = (self.headers.get("Content-Type") or "").startswith(PROTOBUF)
            ctype = PROTOBUF if proto else JSON
            if self.path.split("?", 1)[0].rstrip("/") != TRACES_PATH:
                self._drain()
                self._send(404, _status(404, f"no such endpoint {self.path}: POST traces to {TRACES_PATH}", proto), ctype)
                return
            try:
                length = int(self.headers.get("Content-Length") or "-1")
            except ValueError:
                length = -1
            if length < 0:
                self._send(411, _status(411, "a Content-Length is required", proto), ctype,
                           {"Connection": "close"})
                self.close_connection = True
                return
            if length > collector.max_body_bytes:
                self._send(413, _status(413, f"the body is over {collector.max_body_bytes} bytes", proto), ctype,
                           {"Connection": "close"})
                self.close_connection = True
                return
            body = self.rfile.read(length)
            status, out, ctype, headers = collector.accept(
                body, self.headers.get("Content-Type", ""), self.headers.get("Content-Encoding", ""))
            self._send(status, out, ctype, headers)

        def do_GET(self) -> None:
            self._send(405, _status(405, f"POST OTLP traces to {TRACES_PATH}", False), JSON, {"Allow": "POST"})

        do_PUT = do_DELETE = do_PATCH = do_GET

        def _drain(self) -> None:
            try:
                n = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                n = 0
            if 0 < n <= collector.max_body_bytes:
                self.rfile.read(n)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the summary and the quarantine say what happened; no per-request noise

    return Handler

