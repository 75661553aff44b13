"""Reading tabular exports record by record: JSON arrays, JSON Lines, CSV and Parquet.

Shared by the adapters of platforms whose exports are tables of records (LangSmith runs, Langfuse
traces and observations). Each record comes back as a dict with its 1-based line (JSON Lines,
CSV) or record number (JSON array, Parquet), and the raw text the quarantine keeps when the record
cannot be used. Nested values that CSV writers serialise as JSON text are left as text: the
adapters parse the fields they read (`parse_json`).

Memory: JSON Lines, CSV and Parquet are streamed; a JSON array (the UI exports) is parsed whole.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import sys
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import IO, Any

import msgspec
import pyarrow as pa

from .base import Bad
from .otlp import decode_line, raw_text

PARQUET_BATCH = 5_000
_decoder = msgspec.json.Decoder()

csv.field_size_limit(sys.maxsize)  # inputs and outputs of LLM calls make very long CSV fields


class RecordError(ValueError):
    """A record that cannot be stored; `kind` is the quarantine kind."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind


# (line or record number, record or None, quarantine note or None, raw text)
Record = tuple[int | None, dict[str, Any] | None, Bad | None]


BOM = b"\xef\xbb\xbf"  # the UTF-8 byte-order mark Excel's "CSV UTF-8" and some Windows tools write first


def layout(head: bytes) -> str:
    """`parquet`, `json` (one document: an array or an object), `jsonl` or `csv`."""
    if head.startswith(b"PAR1"):
        return "parquet"
    h = head.removeprefix(BOM).lstrip()
    if h.startswith(b"["):
        return "json"
    if h.startswith(b"{"):
        first = h.split(b"\n", 1)[0].rstrip()
        try:
            _decoder.decode(first)
            return "jsonl"
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            # a first line that is broken (or too deep) but whole, `{...}`: JSON Lines, whose other lines
            # are read on their own (as the OTLP adapter does); else the start of one (pretty) document
            return "jsonl" if first.endswith(b"}") else "json"
    return "csv"


def first_record_keys(head: bytes) -> set[str]:
    """Field names of the first record of a head of a file (for sniffing): JSON keys or CSV header."""
    kind = layout(head)
    h = head.removeprefix(BOM).lstrip()
    if kind == "jsonl":
        try:
            obj = _decoder.decode(h.split(b"\n", 1)[0])
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            return set()
        return set(obj) if isinstance(obj, dict) else set()
    if kind == "json":
        # the first object of an array, or the top-level keys of a document (read lazily: the
        # head may end mid-document, so collect `"key":` tokens at the first nesting level)
        return _shallow_keys(h[1:] if h.startswith(b"[") else h)
    if kind == "csv":
        line = h.split(b"\n", 1)[0].decode("utf-8", "replace")
        try:
            return {c.strip() for c in next(csv.reader([line]))}
        except (csv.Error, StopIteration):
            return set()
    return set()


def _shallow_keys(b: bytes) -> set[str]:
    """Keys at depth 1 of the first JSON object in `b` (which may be cut off)."""
    keys: set[str] = set()
    depth = 0
    i, n = 0, len(b)
    while i < n:
        c = b[i]
        if c == 0x22:  # string
            j = i + 1
            while j < n and b[j] != 0x22:
                j += 2 if b[j] == 0x5C else 1
            token = b[i + 1:j]
            k = j + 1
            while k < n and b[k] in b" \t\r\n":
                k += 1
            if depth == 1 and k < n and b[k] == 0x3A:  # "key":
                keys.add(token.decode("utf-8", "replace"))
            i = j + 1
            continue
        if c in b"{[":
            depth += 1
        elif c in b"}]":
            depth -= 1
            if depth == 0:
                break
        i += 1
    return keys


def read(stream: IO[bytes]) -> Iterator[Record]:
    """Every record of the stream, in order."""
    head = stream.read(4)
    stream.seek(0)
    if head == b"PAR1":
        yield from _parquet(stream)
        return
    first = stream.readline()
    stream.seek(0)
    kind = layout(first)
    if kind == "jsonl":
        yield from _jsonl(iter(stream))
    elif kind == "json":
        yield from _json_document(stream)
    else:
        yield from _csv(stream)


def _jsonl(lines: Iterator[bytes]) -> Iterator[Record]:
    line = next(lines, b"").removeprefix(BOM)
    n = 0
    while line:
        n += 1
        nxt = next(lines, b"")
        if line.strip():
            rec, bad = decode_line(line, n, last=not nxt)
            if bad is not None:
                yield n, None, bad
            elif not isinstance(rec, dict):
                yield n, None, Bad("wrong_type", f"line {n}: expected a JSON object, got {type(rec).__name__}",
                                   raw_text(line), n)
            else:
                yield n, rec, None
        line = nxt


def _json_document(stream: IO[bytes]) -> Iterator[Record]:
    whole = stream.read().removeprefix(BOM)
    doc, bad = decode_line(whole, 1, last=True)
    if bad is not None:
        # JSON Lines whose first line is broken: read line by line so the good lines still go in
        lines = whole.splitlines(keepends=True)
        if any(isinstance(decode_line(x, 0, last=False)[0], dict) for x in lines[1:] if x.strip()):
            yield from _jsonl(iter(lines))
            return
        if bad.kind == "invalid_utf8":
            # invalid bytes inside one record of an array: that record alone is kept out (the bytes are read
            # as U+FFFD to find it), the others are read
            try:
                doc = _decoder.decode(whole.decode("utf-8", "replace"))
            except (msgspec.DecodeError, RecursionError):
                doc = None
            if isinstance(doc, list):
                yield from _array(doc, invalid="\ufffd" if b"\xef\xbf\xbd" not in whole else None)
                return
        bad.line = whole.count(b"\n") + (0 if whole.endswith(b"\n") else 1) if bad.kind == "truncated" else 1
        bad.reason = bad.reason.replace("line 1: ", "")
        yield bad.line, None, bad
        return
    if isinstance(doc, dict):
        yield None, doc, None
        return
    if not isinstance(doc, list):
        yield None, None, Bad("wrong_type", f"expected a JSON array or object, got {type(doc).__name__}",
                              raw_text(whole[:4096]))
        return
    yield from _array(doc)


def _array(doc: list[Any], invalid: str | None = None) -> Iterator[Record]:
    """The records of a JSON array; with `invalid`, the text that marks the bytes that were not UTF-8."""
    for i, rec in enumerate(doc, 1):
        if not isinstance(rec, dict):
            yield i, None, Bad("wrong_type", f"record {i}: expected a JSON object, got {type(rec).__name__}",
                               dump(rec), i)
            continue
        if invalid is not None:
            text = dump(rec)
            if invalid in text:
                yield i, None, Bad("invalid_utf8", f"record {i}: invalid UTF-8 (shown as U+FFFD)", text, i)
                continue
        yield i, rec, None


def _csv(stream: IO[bytes]) -> Iterator[Record]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return
    header = [h.strip() for h in header]
    prev = reader.line_num
    for fields in reader:
        line = prev + 1
        prev = reader.line_num
        raw = ",".join(fields)
        if any("\udc80" <= ch <= "\udcff" for f in fields for ch in f):
            yield line, None, Bad("invalid_utf8", f"line {line}: invalid UTF-8",
                                  raw_text(raw.encode("utf-8", "surrogateescape")), line)
            continue
        if not any(fields):
            continue
        if len(fields) != len(header):
            yield line, None, Bad("bad_row", f"line {line}: {len(fields)} fields, the header has {len(header)}",
                                  raw, line)
            continue
        yield line, {h: (v if v != "" else None) for h, v in zip(header, fields, strict=True)}, None


def _parquet(stream: IO[bytes]) -> Iterator[Record]:
    import pyarrow.parquet as pq  # here: ~0.1 s to import, for Parquet input only

    pf = pq.ParquetFile(stream)
    n = 0
    batches = pf.iter_batches(batch_size=PARQUET_BATCH)
    while True:
        try:
            rb = next(batches, None)
            recs = rb.to_pylist() if rb is not None else None
        except (OSError, ValueError, pa.ArrowException) as e:
            # a corrupt column chunk: the records read so far are kept, the rest of the file cannot be
            yield n + 1, None, Bad("unreadable_file", f"record {n + 1}: the Parquet file cannot be read from here "
                                   f"on: {type(e).__name__}: {e}", "", n + 1)
            return
        if recs is None:
            return
        for rec in recs:
            n += 1
            try:
                yield n, {k: _plain(v) for k, v in rec.items()}, None
            except RecursionError:
                yield n, None, Bad("too_deep", f"record {n}: nested too deep to read", "", n)


def _plain(v: Any) -> Any:
    """Arrow map columns arrive as lists of (key, value) pairs: make them dicts."""
    if isinstance(v, list) and v and all(isinstance(x, tuple) and len(x) == 2 for x in v):
        return {k: _plain(x) for k, x in v}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def position(stream: IO[bytes]) -> int:
    """Bytes of the (decompressed) stream consumed so far, for the progress bar; 0 when unknown."""
    try:
        return int(stream.tell())
    except (OSError, ValueError):
        return 0


def dump(v: Any) -> str:
    """A record as JSON text for the quarantine."""
    try:
        return msgspec.json.encode(v, enc_hook=_enc).decode("utf-8")
    except (TypeError, msgspec.EncodeError):
        return repr(v)


def _enc(v: Any) -> Any:
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "backslashreplace")
    raise TypeError(type(v).__name__)


# --- field values --------------------------------------------------------------------------------


def micros(v: Any, field: str) -> int | None:
    """A timestamp -> integer microseconds since the epoch (UTC). ISO 8601 (`Z`, offsets, or a space
    instead of `T` as the Langfuse blob export writes it; naive means UTC), datetimes, epoch numbers."""
    if v is None or v == "":
        return None
    if isinstance(v, dt.datetime):
        t = v
    elif isinstance(v, str):
        s = v.strip()
        if len(s) > 10 and s[10] == " ":
            s = s[:10] + "T" + s[11:]
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        try:
            t = dt.datetime.fromisoformat(s)
        except ValueError:
            raise RecordError("wrong_type", f"{field} must be an ISO 8601 timestamp, got {v!r}") from None
    elif isinstance(v, int | float) and not isinstance(v, bool):
        x = float(v)
        for scale in (1, 1e3, 1e6, 1e9):  # seconds, ms, us or ns, told apart by magnitude
            if abs(x) / scale < 1e11:
                return int(x / scale * 1e6)
        raise RecordError("wrong_type", f"{field}={v!r} is not a plausible epoch time")
    else:
        raise RecordError("wrong_type", f"{field} must be a timestamp, got {type(v).__name__} {v!r}")
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def mapping(v: Any, field: str) -> dict[str, Any]:
    """A JSON object field (an object, JSON text of one, or empty) as a dict."""
    if v is None or v == "":
        return {}
    if isinstance(v, Mapping):
        return dict(v)
    if isinstance(v, str | bytes):
        try:
            parsed = _decoder.decode(v)
        except (msgspec.DecodeError, UnicodeError, RecursionError):
            raise RecordError("wrong_type", f"{field} must be a JSON object, got {str(v)[:80]!r}") from None
        if parsed is None:
            return {}
        if isinstance(parsed, Mapping):
            return dict(parsed)
        # some writers double-encode: a JSON string holding a JSON object
        if isinstance(parsed, str):
            return mapping(parsed, field)
    raise RecordError("wrong_type", f"{field} must be a JSON object, got {type(v).__name__}")


def listing(v: Any) -> list[Any]:
    """A JSON array field (a list, JSON text of one, or empty) as a list; anything else -> []."""
    if v is None or v == "":
        return []
    if isinstance(v, list | tuple):
        return list(v)
    if isinstance(v, str | bytes):
        try:
            parsed = _decoder.decode(v)
        except (msgspec.DecodeError, UnicodeError, RecursionError):
            return []
        return list(parsed) if isinstance(parsed, list) else []
    return []


def unwrap_text(v: Any) -> Any:
    """Inputs and outputs as exported: a JSON string holding JSON text (or plain text) is unwrapped
    once or twice, so `"\\"hello\\""` reads as `hello`; structured values are returned as they are."""
    for _ in range(2):
        if isinstance(v, str) and len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            try:
                inner = _decoder.decode(v)
            except (msgspec.DecodeError, UnicodeError, RecursionError):
                return v
            if not isinstance(inner, str):
                return inner
            v = inner
        else:
            break
    return v
