"""`agent_runs` table exports: CSV, JSON Lines and Parquet.

Columns: `id, user_id, request, response, tokens_in, tokens_out, cost_usd, created_at` (the
Postgres table: `request` is JSONB). One row is one run. The reported `cost_usd` is the run's
cost; the model and the dimensions are read from the request JSON (`request.model`,
`request.metadata.feature`, ... see config.py). A row is one LLM call of its model: each run gets
one span of kind `llm` (its model, tokens, reported cost and error) and `llm_calls` 1, so that
per-model tables, call counts, rate limits and per-model errors count it as every other call.

A row whose numbers cannot be read (tokens, cost, timestamp of the wrong type) is quarantined
whole: a run with wrong numbers would be worse than a missing one, and the raw row is kept.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import IO, Any

import msgspec

from ..core.config import Config
from . import parallel
from .base import RUN_SCHEMA, SPAN_SCHEMA, Bad, Batch, Columns, check_run, check_span, failure, to_json
from .otlp import BLANK, decoded_lines, raw_text
from .semconv import as_text, dimensions, error_type_from_message, parse_json

# invalid UTF-8 bytes, as the "surrogateescape" decoding of the CSV text leaves them
_UNDECODABLE = re.compile("[\udc80-\udcff]")

NAME = "agent_runs"
COLUMNS = ("id", "user_id", "request", "response", "tokens_in", "tokens_out", "cost_usd", "created_at")
REQUIRED = ("id", "created_at")
BATCH_ROWS = 20_000
SPAN_ID = "run"  # the one span of an agent_runs run: its LLM call


class RowError(ValueError):
    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind


def sniff(head: bytes, filename: str) -> bool:
    if head.startswith(b"PAR1"):
        return True  # the Parquet schema is checked in read()
    first = head.lstrip().split(b"\n", 1)[0]
    if first.startswith(b"{"):
        return b'"tokens_in"' in first and b'"request"' in first
    cols = {c.strip().strip('"').lower() for c in first.decode("utf-8", "replace").split(",")}
    return {"id", "request", "tokens_in"} <= cols


def _int(v: Any, field: str) -> int | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise RowError("wrong_type", f"{field} must be an integer, got {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str | Decimal):
        try:
            d = Decimal(str(v).strip())
        except InvalidOperation:
            raise RowError("wrong_type", f"{field} must be an integer, got {v!r}") from None
        if d == d.to_integral_value():
            return int(d)
    raise RowError("wrong_type", f"{field} must be an integer, got {v!r}")


def _float(v: Any, field: str) -> float | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise RowError("wrong_type", f"{field} must be a number, got {v!r}")
    if isinstance(v, int | float | Decimal):
        return float(v)
    if isinstance(v, str):
        try:
            return float(Decimal(v.strip()))
        except InvalidOperation:
            pass
    raise RowError("wrong_type", f"{field} must be a number, got {v!r}")


def _micros(v: Any, field: str) -> int:
    if isinstance(v, dt.datetime):
        t = v
    elif isinstance(v, str) and v.strip():
        s = v.strip().replace(" ", "T", 1)
        try:
            t = dt.datetime.fromisoformat(s)
        except ValueError:
            raise RowError("wrong_type", f"{field} must be an ISO 8601 timestamp, got {v!r}") from None
    elif isinstance(v, int | float) and not isinstance(v, bool):
        # epoch seconds (or ms / us / ns, told apart by magnitude)
        x = float(v)
        for scale in (1, 1e3, 1e6, 1e9):
            if x / scale < 1e11:
                return int(x / scale * 1e6)
        raise RowError("wrong_type", f"{field}={v!r} is not a plausible epoch time")
    else:
        raise RowError("missing_field" if v in (None, "") else "wrong_type",
                       f"{field} is required (an ISO 8601 timestamp), got {v!r}")
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _last_user_message(req: Mapping[str, Any]) -> str | None:
    msgs = req.get("messages")
    if isinstance(msgs, list):
        for m in reversed(msgs):
            if isinstance(m, Mapping) and m.get("role") == "user":
                return as_text(m.get("content"))
    for k in ("input", "prompt", "query", "question"):
        if isinstance(req.get(k), str):
            return req[k]
    return None


def _is_error(response: Any) -> bool:
    if response is None or (isinstance(response, str) and not response.strip()):
        return True
    parsed = parse_json(response) if isinstance(response, str) else response
    return isinstance(parsed, Mapping) and parsed.get("error") not in (None, "", False)


def rows_for(rec: Mapping[str, Any], config: Config, filename: str) -> tuple[dict, dict, Bad | None]:
    """One agent_runs record -> (run row, span row, optional note for a repaired row)."""
    missing = [c for c in REQUIRED if rec.get(c) in (None, "")]
    if missing:
        raise RowError("missing_field", f"missing required column(s): {', '.join(missing)}")
    run_id = str(rec["id"]).strip()
    tokens_in = _int(rec.get("tokens_in"), "tokens_in")
    tokens_out = _int(rec.get("tokens_out"), "tokens_out")
    cost = _float(rec.get("cost_usd"), "cost_usd")
    started = _micros(rec.get("created_at"), "created_at")
    for f, v in (("tokens_in", tokens_in), ("tokens_out", tokens_out), ("cost_usd", cost)):
        if v is not None and v < 0:
            raise RowError("wrong_type", f"{f} is negative ({v})")

    raw_req = rec.get("request")
    note = None
    req: Any = raw_req if isinstance(raw_req, Mapping) else parse_json(raw_req)
    if raw_req not in (None, "") and not isinstance(req, Mapping):
        note = Bad("wrong_type", "request is not a JSON object; stored without model and dimensions from it",
                   "", run_id=run_id, stored=True)
        req = {}
    req = req or {}
    response = rec.get("response")
    response_text = as_text(response)
    user_id = as_text(rec.get("user_id")) or None

    dims = dimensions(config, {"request": req, "user_id": user_id}, req)
    if user_id:
        dims["user_id"] = user_id
    meta = req.get("metadata") if isinstance(req.get("metadata"), Mapping) else {}
    agent = as_text(req.get("agent") or req.get("agent_name") or meta.get("agent") or meta.get("agent_name"))
    model = as_text(req.get("model"))
    status = "error" if _is_error(response) else "ok"
    attributes = to_json(req) if req else None
    inp = _last_user_message(req) or (as_text(raw_req) if raw_req not in (None, "") else None)

    run = {
        "run_id": run_id, "source": NAME, "agent_name": agent, "started_at": started, "ended_at": None,
        "duration_ms": None, "status": status, "model": model,
        "input_tokens": tokens_in, "output_tokens": tokens_out, "cached_input_tokens": None,
        "cache_write_input_tokens": None, "reasoning_tokens": None, "cost_usd": cost,
        "llm_calls": 1, "tool_calls": None, "span_count": 1, "error_count": int(status == "error"),
        "input": inp, "output": response_text, "attributes": attributes, "root_span_id": SPAN_ID,
        "service_name": None, **dims,
    }
    span = {
        "run_id": run_id, "span_id": SPAN_ID, "parent_span_id": None, "name": agent or "agent_run",
        "kind": "llm", "started_at": started, "ended_at": None, "duration_ms": None, "status": status,
        "status_message": (message := _error_message(response) if status == "error" else None),
        "error_type": error_type_from_message(message),
        "model": model, "input_tokens": tokens_in, "output_tokens": tokens_out, "cost_usd": cost,
        "input": as_text(raw_req) if not isinstance(raw_req, Mapping) else to_json(raw_req),
        "output": response_text, "attributes": to_json({"request": req, "user_id": user_id}),
        "source": NAME, "source_file": filename, **dims,
    }
    return run, span, note


def _error_message(response: Any) -> str | None:
    parsed = parse_json(response) if isinstance(response, str) else response
    if isinstance(parsed, Mapping):
        return as_text(parsed.get("error"))
    return "empty response" if not response else None


class _Out:
    def __init__(self) -> None:
        self.runs = Columns(RUN_SCHEMA)
        self.spans = Columns(SPAN_SCHEMA)
        self.bad: list[Bad] = []

    def add(self, rec: Mapping[str, Any], config: Config, filename: str, line: int, raw: str) -> None:
        try:
            run, span, note = rows_for(rec, config, filename)
            # a run with wrong numbers would be worse than a missing one: refused whole, not repaired
            problems = check_run(run) + check_span(span)
            if problems:
                raise RowError("impossible_value", "; ".join(dict.fromkeys(problems)))
        except MemoryError:
            raise
        except RowError as e:
            self.bad.append(Bad(e.kind, f"row {line}: {e}", raw, line, run_id=_id(rec)))
            return
        except Exception as e:  # a shape no rule foresaw: this row alone is kept out
            b = failure(e, raw, line, "row")
            b.reason, b.run_id = b.reason.replace(f"line {line}: ", f"row {line}: ", 1), _id(rec)
            self.bad.append(b)
            return
        self.runs.append(run, line, checked=True)
        self.spans.append(span, line, checked=True)
        if note is not None:
            note.raw, note.line, note.reason = raw, line, f"row {line}: {note.reason}"
            self.bad.append(note)

    def full(self) -> bool:
        return self.runs.rows >= BATCH_ROWS

    def batch(self, nbytes: int) -> Batch:
        b = Batch(spans=self.spans.take(self.bad), runs=self.runs.take(self.bad), bad=self.bad, bytes_read=nbytes)
        self.bad = []
        return b


def _id(rec: Any) -> str | None:
    """The run id of a record for its quarantine row (text, cut to 200 characters), when it has one."""
    v = as_text(rec.get("id")) if isinstance(rec, Mapping) else None
    return v[:200] if v else None


def _check_columns(cols: list[str], filename: str) -> None:
    missing = [c for c in ("id", "tokens_in", "tokens_out", "created_at") if c not in cols]
    if missing:
        raise ValueError(f"{filename}: not an agent_runs export: missing column(s) {', '.join(missing)} "
                         f"(has: {', '.join(cols)})")


def read(stream: IO[bytes], filename: str, config: Config) -> Iterator[Batch]:
    head = stream.read(4)
    stream.seek(0)
    if head == b"PAR1":
        yield from _read_parquet(stream, filename, config)
        return
    first = stream.readline()
    stream.seek(0)
    if first.lstrip().startswith(b"{"):
        yield from _read_jsonl(stream, filename, config)
    else:
        yield from _read_csv(stream, filename, config)


def _read_csv(stream: IO[bytes], filename: str, config: Config) -> Iterator[Batch]:
    """Records are split here (the csv module: a quoted field may hold newlines), in chunks of about
    `parallel.BLOCK_BYTES`; turning them into rows, most of the work, runs on every core."""
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return
    header = [h.strip().lstrip("\ufeff").lower() for h in header]
    _check_columns(header, filename)
    fn = functools.partial(_csv_chunk, header=header, filename=filename, config=config)
    yield from parallel.read_chunks(_csv_chunks(reader, stream), fn)


def _csv_chunks(reader: Any, stream: IO[bytes]) -> Iterator[tuple[list[tuple[int, list[str]]], int, bool, int]]:
    """(records with their first line number, that of the chunk's first record, final?, byte offset) from
    a csv reader over `stream`; offsets are where `stream` stood (read-ahead included): for progress only."""
    chunk: list[tuple[int, list[str]]] = []
    size = 0
    prev_line = reader.line_num
    offset = 0
    for fields in reader:
        chunk.append((prev_line + 1, fields))
        prev_line = reader.line_num
        size += sum(map(len, fields))
        if size >= parallel.BLOCK_BYTES:
            yield chunk, chunk[0][0], False, offset
            offset = _tell(stream, offset)
            chunk, size = [], 0
    yield chunk, chunk[0][0] if chunk else prev_line + 1, True, offset


def _tell(stream: IO[bytes], default: int) -> int:
    try:
        return stream.tell() if stream.seekable() else default
    except (OSError, ValueError):
        return default


def _csv_chunk(records: list[tuple[int, list[str]]], first_line: int, final: bool, *,
               header: list[str], filename: str, config: Config) -> list[Batch]:
    """The batches of a chunk of CSV records (run in a worker process, see adapters.parallel)."""
    out = _Out()
    batches = []
    for line, fields in records:
        raw = ",".join(fields)
        if _UNDECODABLE.search(raw):  # a character-by-character check was half the CSV reading time
            b = raw.encode("utf-8", "surrogateescape")
            out.bad.append(Bad("invalid_utf8", f"line {line}: invalid UTF-8", raw_text(b), line))
            continue
        if len(fields) != len(header):
            out.bad.append(Bad("bad_row", f"line {line}: {len(fields)} fields, the header has {len(header)}",
                               raw, line))
            continue
        out.add(dict(zip(header, fields, strict=True)), config, filename, line, raw)
        if out.full():
            batches.append(out.batch(0))
    batches.append(out.batch(0))
    return batches


def _read_jsonl(stream: IO[bytes], filename: str, config: Config) -> Iterator[Batch]:
    first = stream.readline()
    if first:
        yield from parallel.read_lines(first, stream, functools.partial(_jsonl_block, filename=filename,
                                                                        config=config))


def _jsonl_block(block: bytes, first_line: int, final: bool, *, filename: str, config: Config) -> list[Batch]:
    """The batches of a block of JSON Lines (run in a worker process, see adapters.parallel)."""
    out = _Out()
    batches = []
    for n, _, line, rec, bad in decoded_lines(parallel.lines(block), first_line, final):
        if bad is not None:
            out.bad.append(bad)
        elif rec is BLANK:
            pass
        elif not isinstance(rec, Mapping):
            out.bad.append(Bad("wrong_type", f"line {n}: expected a JSON object", raw_text(line), n))
        else:
            out.add(rec, config, filename, n, raw_text(line.rstrip(b"\r\n")))
        if out.full():
            batches.append(out.batch(0))
    batches.append(out.batch(len(block)))
    return batches


def _read_parquet(stream: IO[bytes], filename: str, config: Config) -> Iterator[Batch]:
    import pyarrow.parquet as pq  # here: ~0.1 s to import, for Parquet input only

    out = _Out()
    pf = pq.ParquetFile(stream)
    _check_columns(pf.schema_arrow.names, filename)
    n = 0
    for rb in pf.iter_batches(batch_size=BATCH_ROWS):
        for rec in rb.to_pylist():
            n += 1
            try:
                raw = msgspec.json.encode(rec, enc_hook=str).decode()
            except (TypeError, ValueError, RecursionError, msgspec.EncodeError):
                raw = repr(rec)
            out.add(rec, config, filename, n, raw)
        yield out.batch(0)
