"""What every format adapter produces: canonical rows and quarantine records.

Adapters are pure: they read bytes and yield `Batch`es; they never touch the database. The store
decides what to do with the rows (dedupe, build runs, commit per file).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import msgspec
import pyarrow as pa

from ..core.config import Config
from ..schema import RUN_COLUMNS, SPAN_COLUMNS, Column

_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
}


def arrow_schema(columns: tuple[Column, ...], skip: tuple[str, ...] = ()) -> pa.Schema:
    return pa.schema([(c.name, _ARROW_TYPES[c.type]) for c in columns if c.name not in skip])


# Adapters fill every span column but `ingested_at`-like store columns; timestamps are given as
# integer microseconds since the epoch (UTC) and typed by the schema below.
SPAN_SCHEMA = arrow_schema(SPAN_COLUMNS)
RUN_SCHEMA = arrow_schema(RUN_COLUMNS, skip=("ingested_at",))

_json_encoder = msgspec.json.Encoder(order="sorted")


def to_json(value: Any) -> str | None:
    """JSON text for a JSON column (keys sorted, so equal values give equal text)."""
    if value is None:
        return None
    return _json_encoder.encode(value).decode("utf-8")


@dataclass
class Bad:
    """A record that could not be read (or was repaired): kept in `quarantine` with its raw text."""

    kind: str
    reason: str
    raw: str
    line: int | None = None
    run_id: str | None = None
    span_id: str | None = None
    stored: bool = False


# What a stored value can be. Timestamps: those of OTLP, int64 nanoseconds since 1970 (up to 2262-04-11);
# a year-1 or year-9999 time is a writer's placeholder or a bug, and DuckDB hands such values back to
# Python as text. Counts are never negative, and no call reads or writes a trillion tokens: a count past
# that is a bug (2^63 - 1 fits a BIGINT, but a run's total of two of them overflows). No record costs a
# billion dollars; other numbers stay within 1e18 so that sums and averages stay finite.
MIN_MICROS = 0
MAX_MICROS = (2**63 - 1) // 1000
MAX_INT = 2**63 - 1
MAX_COUNT = 10**12
MAX_COST = 1e9
MAX_FLOAT = 1e18
COUNT_COLUMNS = frozenset(("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_input_tokens",
                           "reasoning_tokens", "llm_calls", "tool_calls", "span_count", "error_count"))


def _plan(schema: pa.Schema) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    ints = tuple(f.name for f in schema if pa.types.is_integer(f.type))
    floats = tuple(f.name for f in schema if pa.types.is_floating(f.type))
    times = tuple(f.name for f in schema if pa.types.is_timestamp(f.type))
    texts = tuple(f.name for f in schema if pa.types.is_string(f.type))
    return ints, floats, times, texts


def impossible(row: dict[str, Any], ints: tuple[str, ...], floats: tuple[str, ...], times: tuple[str, ...],
               texts: tuple[str, ...]) -> list[str]:
    """Repair, in place, the values no record can hold; the reasons (empty for a sound row). A count that
    is negative, 2^63 or more, or not a whole number; a NaN or infinite number; a time outside 1970-2262:
    the value is dropped (NULL). Text columns given another type are made JSON text."""
    problems: list[str] = row.pop("_problems", None) or []  # what the adapter found (semconv.not_counts)
    for c in ints:
        v = row.get(c)
        if v is None:
            continue
        if type(v) is not int:
            if isinstance(v, float) and v.is_integer() and abs(v) <= MAX_INT:
                row[c] = int(v)
                continue
            problems.append(f"{c}={_short(v)} is not a whole number")
        elif v > MAX_INT or v < -MAX_INT - 1:
            problems.append(f"{c}={_short(v)} does not fit in 64 bits")
        elif c in COUNT_COLUMNS and v < 0:
            problems.append(f"{c}={v} is negative")
        elif c in COUNT_COLUMNS and v > MAX_COUNT:
            problems.append(f"{c}={_short(v)} is more than 10^12")
        else:
            continue
        row[c] = None
    for c in floats:
        v = row.get(c)
        if v is None:
            continue
        if type(v) is not float:
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) < 1e308:
                row[c] = float(v)
                continue
            problems.append(f"{c}={_short(v)} is not a number")
        elif not math.isfinite(v):
            problems.append(f"{c}={v} is not a finite number")
        elif c == "cost_usd" and abs(v) > MAX_COST:
            problems.append(f"{c}={v!r} is more than a billion dollars")
        elif abs(v) > MAX_FLOAT:
            problems.append(f"{c}={v!r} is beyond 1e18")
        else:
            continue
        row[c] = None
    for c in times:
        v = row.get(c)
        if v is None:
            continue
        if type(v) is not int or not MIN_MICROS <= v <= MAX_MICROS:
            problems.append(f"{c}={_short(v)} is outside 1970-2262 (microseconds since 1970)")
            row[c] = None
            if c == "started_at" or c == "ended_at":
                row["duration_ms"] = None
    for c in texts:
        v = row.get(c)
        if v is not None and type(v) is not str:
            try:
                row[c] = to_json(v)
            except (TypeError, ValueError, RecursionError, msgspec.EncodeError):
                row[c] = repr(v)
    return problems


_SPAN_PLAN = _plan(SPAN_SCHEMA)
_RUN_PLAN = _plan(RUN_SCHEMA)


def check_span(row: dict[str, Any]) -> list[str]:
    """`impossible` for a span row."""
    return impossible(row, *_SPAN_PLAN)


def check_run(row: dict[str, Any]) -> list[str]:
    """`impossible` for a run row."""
    return impossible(row, *_RUN_PLAN)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


class Columns:
    """Row builder: rows (dicts; a missing key is a null) made one Arrow table of `schema`. The rows
    go to Arrow in one call (a struct array built in C++): 1.6x faster than appending each value to a
    Python list per column, measured on 10,283 OTLP spans (0.077 -> 0.049 s).

    `append` repairs the values no record can hold (`impossible`) and returns the reasons, which the
    adapter quarantines as a flag on the stored record (kind `impossible_value`). A row Arrow still
    refuses never costs the others: `table()` then converts the rows one by one, leaves that row out
    and keeps it in `rejected` (kind `unstorable`, with the row as JSON), for the adapter's batch."""

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self._type = pa.struct(list(schema))
        self._plan = _plan(schema)
        self._rows: list[dict[str, Any]] = []
        self._lines: list[int | None] = []
        self.rejected: list[Bad] = []

    @property
    def rows(self) -> int:
        return len(self._rows)

    def append(self, row: dict[str, Any], line: int | None = None, checked: bool = False) -> list[str]:
        """Add a row (its file line, for a rejection's record); `checked`: the adapter ran `check_span` /
        `check_run` on it already (to flag it with the record's raw text), so it is not checked twice."""
        problems = [] if checked else impossible(row, *self._plan)
        self._rows.append(row)
        self._lines.append(line)
        return problems

    def table(self) -> pa.Table:
        try:
            return pa.Table.from_struct_array(pa.array(self._rows, type=self._type))
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            pass
        keep = []
        for row, line in zip(self._rows, self._lines, strict=True):
            try:
                pa.array([row], type=self._type)
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as e:
                where = f"line {line}: " if line is not None else ""
                self.rejected.append(Bad("unstorable", f"{where}span {row.get('span_id')} cannot be stored: "
                                         f"{type(e).__name__}: {e}", _dump_row(row), line,
                                         run_id=_text_or_none(row.get("run_id")),
                                         span_id=_text_or_none(row.get("span_id"))))
                continue
            keep.append(row)
        return pa.Table.from_struct_array(pa.array(keep, type=self._type))

    def take(self, bad: list[Bad]) -> pa.Table | None:
        """The table of the rows so far (None when there are none), cleared; rows refused go to `bad`."""
        table = self.table() if self._rows else None
        bad.extend(self.rejected)
        self.clear()
        return table if table is not None and table.num_rows else None

    def clear(self) -> None:
        self._rows = []
        self._lines = []
        self.rejected = []


def _text_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _dump_row(row: dict[str, Any]) -> str:
    try:
        return _json_encoder.encode(row).decode("utf-8", "backslashreplace")
    except (TypeError, ValueError, RecursionError, msgspec.EncodeError):
        return repr(row)


def flag(problems: list[str], raw: str, line: int | None, run_id: str | None, span_id: str | None,
         what: str) -> Bad:
    """The quarantine flag of a record stored without the values `impossible` dropped."""
    where = f"line {line}: " if line is not None else ""
    return Bad("impossible_value", f"{where}{what}: {'; '.join(problems)}; stored without them", raw, line,
               run_id=run_id, span_id=span_id, stored=True)


def failure(e: BaseException, raw: str, line: int | None, what: str = "record") -> Bad:
    """The quarantine record of a record whose reading raised an unexpected exception (a shape no rule
    foresaw): it alone is kept out, with the exception named. Nesting too deep to follow is `too_deep`."""
    where = f"line {line}: " if line is not None else ""
    if isinstance(e, RecursionError):
        return Bad("too_deep", f"{where}the {what} is nested too deep to read (over ~1,000 levels)", raw, line)
    return Bad("unreadable_record", f"{where}cannot read the {what}: {type(e).__name__}: {_short_text(str(e))}",
               raw, line)


def _short_text(s: str) -> str:
    return s if len(s) <= 200 else s[:197] + "..."


@dataclass
class Batch:
    """Rows read from part of a file. `runs` holds complete runs (sources where one record is a
    run); span-based sources leave it empty and the store builds runs from spans."""

    spans: pa.Table | None = None
    runs: pa.Table | None = None
    bad: list[Bad] = field(default_factory=list)
    bytes_read: int = 0  # progress: bytes of the (decompressed) input consumed so far


class Adapter(Protocol):
    name: str

    def sniff(self, head: bytes, filename: str) -> bool:
        """Can this adapter read a file that starts with `head` (first few KB, decompressed)?"""
        ...

    def read(self, stream: IO[bytes], filename: str, config: Config) -> Iterator[Batch]:
        """Read the whole stream, yielding batches of canonical rows and quarantine records."""
        ...
