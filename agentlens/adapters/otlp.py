"""OTLP JSON: `TracesData` / `ExportTraceServiceRequest` documents.

Layouts: one document per line (the OTel SDK and Collector file exporters; spans of a trace may be
spread over lines and files, in any order) or one document per file (pretty-printed or not).
Encodings accepted (trace-formats.md 1.2-1.4): hex ids in any case or base64 ids; `kind` and
`status.code` as integers or enum names; int64 as strings or numbers; every AnyValue type;
`parentSpanId` absent, empty or all zeros for a root; camelCase or snake_case keys; the pre-1.0
`instrumentationLibrarySpans`.

Streaming: the file is read in blocks of whole lines and rows are yielded in batches, so memory stays
bounded whatever the file size (a single-document file is the exception: it is parsed whole). Large
JSON Lines files are read on every core (`adapters.parallel`), with the same result as one process.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
from collections.abc import Iterator, Mapping
from typing import IO, Any

import msgspec

from ..core.config import Config
from . import parallel
from .base import SPAN_SCHEMA, Bad, Batch, Columns, check_span, failure, flag, to_json
from .semconv import as_text, dimensions, normalize_span

NAME = "otlp"
BATCH_SPANS = 20_000
BATCH_BYTES = 16 << 20  # a batch also ends after this much input: large prompts make large spans

_decoder = msgspec.json.Decoder()

SPAN_KIND_NAMES = {
    "SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3, "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5,
}
STATUS_CODE_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2,
                     "UNSET": 0, "OK": 1, "ERROR": 2}
_MAX_NS = 2**63 - 1
# Span events that mark a streamed call's first chunk: OpenInference's openai, mistralai and llama-index
# instrumentations add "First Token Stream Event" once; OpenLLMetry (Traceloop) adds an event per chunk,
# `gen_ai.content.completion.chunk` (`llm.content.completion.chunk` in older and some provider packages).
FIRST_TOKEN_EVENTS = frozenset(("First Token Stream Event", "gen_ai.content.completion.chunk",
                                "llm.content.completion.chunk"))


class SpanError(ValueError):
    """A span that cannot be stored; `kind` is the quarantine kind."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind


def sniff(head: bytes, filename: str) -> bool:
    h = head.lstrip()[:4096]
    return h.startswith(b"{") and any(
        k in h for k in (b'"resourceSpans"', b'"resource_spans"')
    )


def _g(d: Mapping[str, Any], camel: str, snake: str) -> Any:
    v = d.get(camel)
    return d.get(snake) if v is None else v


# --- values ------------------------------------------------------------------------------------
# JSON decodes to dict, so the hot paths test `dict`: an ABC isinstance check costs several times more.


def any_value(v: Any) -> Any:
    """OTLP AnyValue -> Python value (arrays -> lists, kvlists -> dicts, int64 strings -> int)."""
    if not isinstance(v, dict):
        return v  # lenient: some writers put plain values
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return _number(v["intValue"], int, "intValue")
    if "boolValue" in v:
        return v["boolValue"]
    if "doubleValue" in v:
        return _number(v["doubleValue"], float, "doubleValue")
    if "arrayValue" in v:
        return [any_value(i) for i in _values(v["arrayValue"], "arrayValue")]
    if "kvlistValue" in v:
        kvs = v["kvlistValue"]
        return attributes(kvs if isinstance(kvs, list) else _values(kvs, "kvlistValue"))
    if "bytesValue" in v:
        return v["bytesValue"]  # base64 text, as the JSON mapping gives it
    for k, snake in (("string_value", str), ("int_value", int), ("bool_value", bool), ("double_value", float)):
        if k in v:
            x = v[k]
            if x is None:
                return None
            return _number(x, snake, k) if snake in (int, float) else snake(x)
    return None


def _number(x: Any, typ: type, field: str) -> Any:
    """An int64 / double AnyValue, given as a string (the JSON mapping) or a number."""
    if isinstance(x, str):
        try:
            return typ(x)
        except ValueError:
            raise SpanError("wrong_type", f"{field} {x[:40]!r} is not a number") from None
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise SpanError("wrong_type", f"{field} must be a number, got {type(x).__name__}")
    return x


def _values(container: Any, field: str) -> list[Any]:
    """The `values` of an arrayValue / kvlistValue (a list given bare is read as the values)."""
    if container is None:
        return []
    if isinstance(container, list):
        return container
    if not isinstance(container, dict):
        raise SpanError("wrong_type", f"{field} must be an object with `values`, got {type(container).__name__}")
    values = container.get("values") or []
    if not isinstance(values, list):
        raise SpanError("wrong_type", f"{field}.values must be a list, got {type(values).__name__}")
    return values


def attributes(kvs: Any) -> dict[str, Any]:
    if not kvs:
        return {}
    if isinstance(kvs, dict):  # a plain map (non-OTLP writers)
        return dict(kvs)
    if not isinstance(kvs, list):
        raise SpanError("wrong_type", f"attributes must be a list of {{key, value}}, got {type(kvs).__name__}")
    out: dict[str, Any] = {}
    for kv in kvs:
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise SpanError("wrong_type", f"attribute entry {str(kv)[:80]!r} has no string `key`")
        out[kv["key"]] = any_value(kv.get("value"))
    return out


def norm_id(v: Any, nbytes: int, field: str) -> str | None:
    """Hex (any case) or base64 ids -> lowercase hex. All-zero or empty -> None."""
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise SpanError("wrong_type", f"{field} must be a string, got {type(v).__name__} {v!r}")
    s = v.strip()
    if s.startswith(("0x", "0X")):
        s = s[2:]
    if len(s) == 2 * nbytes:
        try:
            int(s, 16)
            s = s.lower()
            return None if s.strip("0") == "" else s
        except ValueError:
            pass
    if len(s) == 4 * ((nbytes + 2) // 3):  # base64 of nbytes
        try:
            raw = base64.b64decode(s, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == nbytes:
            h = raw.hex()
            return None if h.strip("0") == "" else h
    return s  # an opaque id from a non-conforming writer: keep it as given


def _nanos(v: Any, field: str) -> int | None:
    if v is None or v == "" or v == 0 or v == "0":
        return None
    if isinstance(v, bool):
        raise SpanError("wrong_type", f"{field} must be an integer, got {v!r}")
    if isinstance(v, str):
        try:
            v = int(v)
        except ValueError:
            raise SpanError("wrong_type", f"{field} must be an integer of nanoseconds, got {v!r}") from None
    if isinstance(v, float):
        v = int(v)
    if not isinstance(v, int):
        raise SpanError("wrong_type", f"{field} must be an integer of nanoseconds, got {type(v).__name__}")
    if v < 0 or v > _MAX_NS:
        raise SpanError("wrong_type", f"{field}={v} is outside the representable time range")
    return v


def _enum(v: Any, names: Mapping[str, int], field: str) -> int:
    if v is None:
        return 0
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str):
        if v in names:
            return names[v]
        if v.isdigit():
            return int(v)
    raise SpanError("wrong_type", f"{field} must be an integer enum, got {v!r}")


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)).isoformat()


# --- spans -------------------------------------------------------------------------------------


def span_row(
    s: Mapping[str, Any], resource: dict[str, Any], resource_json: str | None, scope_name: str | None,
    config: Config, filename: str,
) -> tuple[dict[str, Any], Bad | None]:
    """One OTLP span -> a canonical span row, plus a quarantine note when it was stored repaired."""
    if not isinstance(s, dict):
        raise SpanError("wrong_type", f"a span must be an object, got {type(s).__name__}")
    trace_id = norm_id(_g(s, "traceId", "trace_id"), 16, "traceId")
    span_id = norm_id(_g(s, "spanId", "span_id"), 8, "spanId")
    if not trace_id:
        raise SpanError("missing_field", "span has no valid traceId (absent, empty or all zeros)")
    if not span_id:
        raise SpanError("missing_field", f"span in trace {trace_id} has no valid spanId (absent, empty or all zeros)")
    parent = norm_id(_g(s, "parentSpanId", "parent_span_id"), 8, "parentSpanId")
    name = s.get("name")
    if name is not None and not isinstance(name, str):
        raise SpanError("wrong_type", f"span name must be a string, got {type(name).__name__}")
    start = _nanos(_g(s, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano")
    end = _nanos(_g(s, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano")
    status = s.get("status") or {}
    if not isinstance(status, Mapping):
        raise SpanError("wrong_type", f"status must be an object, got {type(status).__name__}")
    code = _enum(status.get("code"), STATUS_CODE_NAMES, "status.code")
    _enum(s.get("kind"), SPAN_KIND_NAMES, "kind")  # validated; the canonical kind comes from attributes
    attrs = attributes(s.get("attributes"))
    raw_events = s.get("events") or []
    if not isinstance(raw_events, list):
        raise SpanError("wrong_type", f"events must be a list, got {type(raw_events).__name__}")
    events = []
    first_token = None  # when the first streamed chunk arrived, where the instrumentation records it
    for e in raw_events:
        if not isinstance(e, Mapping):
            raise SpanError("wrong_type", "an event must be an object")
        at = _nanos(_g(e, "timeUnixNano", "time_unix_nano"), "event timeUnixNano")
        if first_token is None and e.get("name") in FIRST_TOKEN_EVENTS:
            first_token = at
        events.append({"name": e.get("name"), "time": _iso(at), "attributes": attributes(e.get("attributes"))})

    row = normalize_span(attrs, name or "", code, as_text(status.get("message")) or None, events)
    if row["time_to_first_token_ms"] is None and first_token is not None and start is not None and first_token >= start:
        row["time_to_first_token_ms"] = (first_token - start) / 1e6
    note = None
    if start is None:
        note = Bad("missing_field", f"span {span_id} has no startTimeUnixNano; stored without times",
                   "", run_id=trace_id, span_id=span_id, stored=True)
        end = None
    elif end is not None and end < start:
        note = Bad("end_before_start",
                   f"span {span_id} ends ({end}) before it starts ({start}); stored without an end time",
                   "", run_id=trace_id, span_id=span_id, stored=True)
        end = None
    row.update(
        run_id=trace_id, span_id=span_id, parent_span_id=parent,
        started_at=None if start is None else start // 1000,
        ended_at=None if end is None else end // 1000,
        duration_ms=None if start is None or end is None else (end - start) / 1e6,
        attributes=to_json(attrs), events=to_json(events) if events else None,
        resource_attributes=resource_json, scope_name=scope_name,
        service_name=as_text(resource.get("service.name")),
        source=NAME, source_file=filename,
    )
    row.update(dimensions(config, attrs, resource))
    return row, note


def document_rows(
    doc: Any, config: Config, filename: str, line: int | None
) -> Iterator[tuple[dict[str, Any] | None, Bad | None]]:
    """All spans of one TracesData document; bad spans come back as quarantine records."""
    if not isinstance(doc, Mapping):
        yield None, Bad("not_otlp", f"expected a TracesData JSON object, got {type(doc).__name__}",
                        _dump(doc), line)
        return
    rss = _g(doc, "resourceSpans", "resource_spans")
    if rss is None:
        keys = ", ".join(list(doc)[:5]) or "none"
        yield None, Bad("not_otlp", f"object has no resourceSpans (keys: {keys})", _dump(doc), line)
        return
    if not isinstance(rss, list):
        yield None, Bad("wrong_type", "resourceSpans must be a list", _dump(doc), line)
        return
    for rs in rss:
        try:
            if not isinstance(rs, Mapping):
                raise SpanError("wrong_type", "a resourceSpans entry must be an object")
            res = rs.get("resource") or {}
            if not isinstance(res, Mapping):
                raise SpanError("wrong_type", f"resource must be an object, got {type(res).__name__}")
            resource = attributes(res.get("attributes"))
            scope_spans = _g(rs, "scopeSpans", "scope_spans")
            if scope_spans is None:
                scope_spans = _g(rs, "instrumentationLibrarySpans", "instrumentation_library_spans") or []
            if not isinstance(scope_spans, list):
                raise SpanError("wrong_type", "scopeSpans must be a list")
        except SpanError as e:
            yield None, Bad(e.kind, _at(line) + str(e), _dump(rs), line)
            continue
        resource_json = to_json(resource) if resource else None
        for ss in scope_spans:
            if not isinstance(ss, Mapping):
                yield None, Bad("wrong_type", "a scopeSpans entry must be an object", _dump(ss), line)
                continue
            scope = ss.get("scope") or ss.get("instrumentationLibrary") or ss.get("instrumentation_library") or {}
            scope_name = as_text(scope.get("name")) if isinstance(scope, Mapping) else None
            spans = ss.get("spans") or []
            if not isinstance(spans, list):
                yield None, Bad("wrong_type", "spans must be a list", _dump(ss), line)
                continue
            for s in spans:
                ids = s if isinstance(s, Mapping) else {}
                try:
                    row, note = span_row(s, resource, resource_json, scope_name, config, filename)
                except MemoryError:
                    raise
                except SpanError as e:
                    yield None, Bad(e.kind, _at(line) + str(e), _dump(s), line,
                                    run_id=_id_text(_g(ids, "traceId", "trace_id")),
                                    span_id=_id_text(_g(ids, "spanId", "span_id")))
                    continue
                except Exception as e:  # a shape no rule foresaw: this span alone is kept out
                    bad = failure(e, _dump(s), line, "span")
                    bad.run_id, bad.span_id = _id_text(_g(ids, "traceId", "trace_id")), _id_text(_g(ids, "spanId", "span_id"))
                    yield None, bad
                    continue
                if note is not None:
                    note.raw, note.line, note.reason = _dump(s), line, _at(line) + note.reason
                    yield None, note
                problems = check_span(row)
                yield row, (flag(problems, _dump(s), line, row["run_id"], row["span_id"], f"span {row['span_id']}")
                            if problems else None)


def _at(line: int | None) -> str:
    return f"line {line}: " if line is not None else ""


def _id_text(v: Any) -> str | None:
    """An id for a quarantine row: text as given (cut to 200 characters), None for anything else."""
    return v[:200] if isinstance(v, str) else None


def _dump(v: Any) -> str:
    try:
        return msgspec.json.encode(v).decode("utf-8")
    except (TypeError, ValueError, RecursionError, msgspec.EncodeError):
        try:
            return repr(v)
        except RecursionError:
            return "(nested too deep to show)"


def raw_text(b: bytes) -> str:
    """Bytes as text for the quarantine: invalid UTF-8 shown as \\xNN escapes, nothing dropped."""
    return b.decode("utf-8", errors="backslashreplace")


def decode_line(b: bytes, line: int, last: bool) -> tuple[Any, Bad | None]:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, Bad("invalid_utf8", f"line {line}: invalid UTF-8 at byte {e.start}: {e.reason}",
                         raw_text(b), line)
    try:
        return _decoder.decode(b), None
    except RecursionError:
        return None, Bad("too_deep", f"line {line}: JSON nested too deep to read (over ~1,000 levels)", raw_text(b), line)
    except msgspec.DecodeError as e:
        if last and (not b.endswith(b"\n") or "truncated" in str(e)):
            return None, Bad("truncated", f"line {line}: the file ends mid-record ({e})", raw_text(b), line)
        return None, Bad("malformed_json", f"line {line}: malformed JSON: {e}", raw_text(b), line)


class _Emitter:
    def __init__(self) -> None:
        self.cols = Columns(SPAN_SCHEMA)
        self.bad: list[Bad] = []
        self.flushed_at = 0  # input bytes consumed when the last batch was cut

    def add(self, row: dict[str, Any] | None, bad: Bad | None, line: int | None = None) -> None:
        if row is not None:
            self.cols.append(row, line, checked=True)
        if bad is not None:
            self.bad.append(bad)

    def full(self, nbytes: int) -> bool:
        return (self.cols.rows >= BATCH_SPANS or len(self.bad) >= BATCH_SPANS
                or nbytes - self.flushed_at >= BATCH_BYTES)

    def batch(self, nbytes: int) -> Batch:
        b = Batch(spans=self.cols.take(self.bad), bad=self.bad, bytes_read=nbytes)
        self.bad = []
        self.flushed_at = nbytes
        return b


BLANK = object()  # the "document" of a blank line (a line holding JSON `null` decodes to None)


def decoded_lines(
    lines: Iterator[bytes], first_line: int = 1, final: bool = True,
) -> Iterator[tuple[int, int, bytes, Any, Bad | None]]:
    """JSON Lines, one document per line: (line number, bytes read through the line, the line, its
    document, or the quarantine record when it is none) for every line, `BLANK` the document of a blank
    one. `lines` yields raw lines (with their newline), the first being line `first_line` of the file;
    `final`: the last of them is the file's last (cut off, it is a truncated record, not a malformed one)."""
    nbytes = 0
    line_no = first_line - 1
    line = next(lines, b"")
    while line:
        line_no += 1
        nbytes += len(line)
        nxt = next(lines, b"")
        if line.strip():
            doc, bad = decode_line(line, line_no, last=final and not nxt)
            yield line_no, nbytes, line, doc, bad
        else:
            yield line_no, nbytes, line, BLANK, None
        line = nxt


def _line_mode(
    lines: Iterator[bytes], out: _Emitter, config: Config, filename: str, first_line: int = 1, final: bool = True,
) -> Iterator[Batch]:
    """OTLP JSON Lines (see `decoded_lines`)."""
    nbytes = 0
    for line_no, nbytes, line, doc, bad in decoded_lines(lines, first_line, final):
        if bad is not None:
            out.add(None, bad)
        elif doc is not BLANK:
            for row, b in _document(doc, config, filename, line_no, line):
                out.add(row, b, line_no)
        if out.full(nbytes):
            yield out.batch(nbytes)
    yield out.batch(nbytes)


def _document(doc: Any, config: Config, filename: str, line: int | None,
              raw: bytes) -> list[tuple[dict[str, Any] | None, Bad | None]]:
    """The rows of one document, or, when reading it raised (a shape no rule foresaw), its quarantine
    record alone: the document is judged whole, never half stored."""
    try:
        return list(document_rows(doc, config, filename, line))
    except MemoryError:
        raise
    except Exception as e:
        return [(None, failure(e, raw_text(raw), line, "document"))]


def read(stream: IO[bytes], filename: str, config: Config) -> Iterator[Batch]:
    out = _Emitter()
    first = stream.readline()
    if not first:
        return
    _, bad = decode_line(first, 1, last=False)
    if bad is None or bad.kind == "invalid_utf8" or first.rstrip().endswith(b"}"):
        # JSON Lines: large files are read on every core (blocks of lines, batches in file order)
        yield from parallel.read_lines(first, stream, functools.partial(_block, filename=filename, config=config))
        return
    # The first line is not a whole document: one (pretty-printed) document per file.
    whole = first + stream.read()
    doc, bad = decode_line(whole, 1, last=True)
    if bad is None:
        for row, b in _document(doc, config, filename, None, whole[: 1 << 20]):
            if b is not None and b.line is None:
                b.line = _line_of(whole, b.span_id)
            out.add(row, b)
        yield out.batch(len(whole))
        return
    # Unreadable as one document. If later lines are documents of their own, this was JSON Lines
    # with a broken first line: read it line by line so the good lines still go in.
    lines = whole.splitlines(keepends=True)
    if any(_is_traces_doc(decode_line(x, 0, last=False)[0]) for x in lines[1:] if x.strip()):
        yield from _line_mode(iter(lines), out, config, filename)
        return
    bad.line = whole.count(b"\n") + (0 if whole.endswith(b"\n") else 1) if bad.kind == "truncated" else None
    bad.reason = bad.reason.replace("line 1: ", "")
    if bad.kind == "truncated":
        bad.reason = f"the document is cut off: the file ends before the JSON closes ({bad.reason})"
    out.add(None, bad)
    yield out.batch(len(whole))


def _line_of(whole: bytes, span_id: str | None) -> int | None:
    """The line of a pretty-printed document where a span's id first appears (for its quarantine row)."""
    if not span_id:
        return None
    at = whole.find(b'"' + span_id.encode("utf-8", "replace"))
    return None if at < 0 else whole.count(b"\n", 0, at) + 1


def _block(block: bytes, first_line: int, final: bool, *, filename: str, config: Config) -> list[Batch]:
    """The batches of one block of whole lines (run in a worker process, see adapters.parallel)."""
    return list(_line_mode(parallel.lines(block), _Emitter(), config, filename, first_line, final))


def _is_traces_doc(doc: Any) -> bool:
    return isinstance(doc, Mapping) and _g(doc, "resourceSpans", "resource_spans") is not None


