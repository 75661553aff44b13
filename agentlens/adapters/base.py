"""What every format adapter produces: canonical rows and quarantine records.

Adapters are pure: they read bytes and yield `Batch`es; they never touch the database. The store
decides what to do with the rows (dedupe, build runs, commit per file).
"""

from __future__ import annotations

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


class Columns:
    """Row builder: rows (dicts; a missing key is a null) made one Arrow table of `schema`. The rows
    go to Arrow in one call (a struct array built in C++): 1.6x faster than appending each value to a
    Python list per column, measured on 10,283 OTLP spans (0.077 -> 0.049 s)."""

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self._type = pa.struct(list(schema))
        self._rows: list[dict[str, Any]] = []

    @property
    def rows(self) -> int:
        return len(self._rows)

    def append(self, row: dict[str, Any]) -> None:
        self._rows.append(row)

    def table(self) -> pa.Table:
        return pa.Table.from_struct_array(pa.array(self._rows, type=self._type))

    def clear(self) -> None:
        self._rows = []


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
