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
(`ingest.ingest_batches`: spans deduplicated, runs rebuilt, pipeline steps run) every `flush_spans`
spans or `flush_seconds`, whichever comes first, by one writer thread; `stop()` flushes what is left.
A span acknowledged is a span kept: each accepted request is appended to a spool on disk, fsync'd, before
the answer (spool.py), and a receiver that starts replays what a killed one left there. A span whose
values cannot be stored (a token count past int64, a wrong type) is rejected in the answer and
quarantined, never acknowledged and then lost; the writer thread never dies of a bad batch.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import pyarrow as pa
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from ..adapters import otlp
from ..adapters.base import SPAN_SCHEMA, Bad, Batch, Columns
from ..core.textsafe import visible
from ..ingest import Pipeline, ingest_batches
from ..store import Store, StoreError
from .spool import Spool, orphans, records, spool_dir

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
    replayed_requests: int = 0  # requests a killed receiver had acknowledged, replayed from its spool
    write_errors: list[str] = field(default_factory=list)


class Collector:
    """An OTLP/HTTP receiver writing into `lens`. `start()` serves in background threads; `stop()`
    stops serving and flushes. `address` is the (host, port) actually bound (port 0: any free one)."""

    def __init__(self, lens: Store, host: str = "127.0.0.1", port: int = DEFAULT_PORT, flush_spans: int = 5000,
                 flush_seconds: float = 2.0, max_body_bytes: int = MAX_BODY_BYTES,
                 max_pending_spans: int | None = None, on_flush: Callable[[Stats], None] | None = None,
                 pipeline: Pipeline | None = None, spool: bool = True):
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
        local = lens.local_path()  # a ClickHouse store's: this process's work database
        memory = local in ("", ":memory:") or local.startswith(":memory:")
        self.spool = Spool(spool_dir(local)) if spool and not memory else None
        self._segments: list[Any] = []  # the spool segments of the batch being written

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> Collector:
        self.replay()
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
        if self.spool is not None:
            self.spool.close()
        return self.stats

    def replay(self) -> int:
        """Write what receivers killed before their flush had acknowledged (their spool segments), before
        serving. Returns the requests replayed."""
        if self.spool is None:
            return 0
        n = 0
        for seg in orphans(self.spool.folder):
            for body, ctype, encoding in records(seg):
                self._take(body, ctype, encoding, spool=False)
                n += 1
            if self.flush() or not self._pending():
                seg.unlink(missing_ok=True)  # its spans are in the database (or were already)
        with self._cond:
            self.stats.replayed_requests += n
        return n

    def _pending(self) -> bool:
        with self._cond:
            return bool(self._cols.rows or self._bad)

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests -------------------------------------------------------------------------------------
    def accept(self, body: bytes, content_type: str, encoding: str) -> tuple[int, bytes, str, dict[str, str]]:
        """Handle one export request -> (HTTP status, body, content type, extra headers)."""
        proto = (content_type or "").split(";")[0].strip().lower() == PROTOBUF
        try:
            with self._cond:
                if self._cols.rows >= self.max_pending:
                    raise RequestError(503, f"{self._cols.rows} spans wait to be written; retry shortly")
            rejected = self._take(body, content_type, encoding, spool=True)
        except RequestError as e:
            headers = {"Retry-After": "1"} if e.status == 503 else {}
            return e.status, _status(e.status, str(e), proto), PROTOBUF if proto else JSON, headers
        response = trace_service_pb2.ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = len(rejected)
            reasons = "; ".join(b.reason for b in rejected[:3]) + ("; ..." if len(rejected) > 3 else "")
            response.partial_success.error_message = f"{len(rejected)} span(s) rejected: {reasons}"
        return 200, _encode(response, proto), PROTOBUF if proto else JSON, {}

    def _take(self, body: bytes, content_type: str, encoding: str, spool: bool) -> list[Bad]:
        """Decode a request and add what it holds to what waits to be written (spooled first, when `spool`).
        Returns the spans rejected; raises RequestError for a request that cannot be read (quarantined)."""
        ctype = (content_type or "").split(";")[0].strip().lower()
        proto = ctype == PROTOBUF
        try:
            if ctype not in (PROTOBUF, JSON):
                raise RequestError(415, f"unsupported Content-Type {content_type!r}: send {PROTOBUF} or {JSON}")
            data = self._decompress(body, (encoding or "").strip().lower())
            doc = self._decode(data, proto)
            rows, bad = [], []
            if "resourceSpans" in doc or "resource_spans" in doc:  # an empty or unknown-only object is an empty export
                try:
                    for row, b in otlp.document_rows(doc, self.lens.config, self.name, None):
                        if row is not None:
                            rows.append(row)
                        if b is not None:
                            bad.append(b)
                except Exception as e:  # a shape the decoder does not expect: the request is refused and kept
                    raise RequestError(400, f"cannot read the ExportTraceServiceRequest: {type(e).__name__}: {e}",
                                       "not_otlp", data) from None
            rows, unstorable = _storable(rows)
            bad += unstorable
        except RequestError as e:
            with self._cond:
                self.stats.requests += 1
                self.stats.bad_requests += 1
                if e.kind is not None:  # what could not be read is kept, as ingest does
                    if spool and self.spool is not None:
                        self.spool.append(body, content_type, encoding)
                    self._bad.append(Bad(e.kind, str(e), e.raw[:MAX_RAW_QUARANTINE].decode("utf-8", "backslashreplace")))
                    self._since = self._since or time.monotonic()
                    self._cond.notify_all()
            raise
        rejected = [b for b in bad if not b.stored]
        with self._cond:  # spooled and queued together: a flush takes both or neither
            if spool and self.spool is not None and (rows or bad):
                self.spool.append(body, content_type, encoding)
            for row in rows:
                self._cols.append(row)
            self._bad.extend(bad)
            self.stats.requests += 1
            self.stats.spans_accepted += len(rows)
            self.stats.spans_rejected += len(rejected)
            if rows or bad:
                self._since = self._since or time.monotonic()
                self._cond.notify_all()  # the writer starts the flush clock, or flushes a full buffer
        return rejected

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
            try:
                self.flush()
            except Exception as e:  # never die: what waits stays queued (and spooled), the next flush retries
                with self._cond:
                    self.stats.write_errors.append(f"{type(e).__name__}: {e}")
                    self._since = time.monotonic()
                print(visible(f"agentlens collect: write failed, will retry: {e}"), file=sys.stderr)

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
                segments = self.spool.seal() if self.spool is not None else []
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
                        for row in table.to_pylist():  # checked when they came in (their times are datetimes now)
                            self._cols.append(row, checked=True)
                    self._bad = bad + self._bad
                    self._since = time.monotonic()
                print(visible(f"agentlens collect: write failed, will retry: {e}"), file=sys.stderr)
                if self.lens.remote is not None:
                    from ..store.remote import OwnerGone

                    if isinstance(e, OwnerGone):  # the process we wrote through died: take the database over
                        self._reopen()
                return 0
            if self.spool is not None:
                self.spool.written(segments)  # in the database now: off the spool
            with self._cond:
                self.stats.flushes += 1
                self.stats.spans_stored += res.spans
                self.stats.runs_updated += res.runs
            if self.on_flush is not None:
                self.on_flush(self.stats)
            return res.spans

    def _reopen(self) -> None:
        """Open the database again (Store.reopen); the batch put back is written at the next flush. A
        batch whose commit the dead owner made before dying is not stored twice (spans are deduplicated)."""
        try:
            self.lens.reopen()
            print(f"agentlens collect: {self.lens.path}: "
                  + ("took it over" if self.lens.remote is None else "writing through the process that took it over"),
                  file=sys.stderr)
        except StoreError as e:
            print(visible(f"agentlens collect: cannot open the database again yet: {e}"), file=sys.stderr)


_SPAN_TYPE = pa.struct(list(SPAN_SCHEMA))


def _storable(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Bad]]:
    """The rows whose values fit the span columns (one Arrow conversion for the request), and a rejection
    for each that does not (a token count past int64, a wrong type), so that nothing is acknowledged that
    the writer could not store."""
    if not rows:
        return rows, []
    try:
        pa.array(rows, type=_SPAN_TYPE)
        return rows, []
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
        pass
    good, bad = [], []
    for row in rows:
        try:
            pa.array([row], type=_SPAN_TYPE)
            good.append(row)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError) as e:
            raw = json.dumps(row, default=str)[:MAX_RAW_QUARANTINE]
            bad.append(Bad("wrong_type", f"span {row.get('span_id')} of trace {row.get('run_id')}: a value cannot be "
                           f"stored ({str(e).splitlines()[0]})", raw, None, row.get("run_id"), row.get("span_id")))
    return good, bad


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
            try:
                body = self.rfile.read(length)
                status, out, ctype, headers = collector.accept(
                    body, self.headers.get("Content-Type", ""), self.headers.get("Content-Encoding", ""))
            except Exception as e:  # every request gets an answer: an exporter retries a 5xx, not silence
                print(visible(f"agentlens collect: request failed: {type(e).__name__}: {e}"), file=sys.stderr)
                status, out, headers = 500, _status(500, f"the receiver failed on this request: {type(e).__name__}",
                                                    proto), {}
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

