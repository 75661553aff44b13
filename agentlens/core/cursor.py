"""A statement's result held as Arrow, handed out as DuckDB's cursor hands it out (`fetchall`, `fetchone`,
`fetchmany`, `.pl()`, `.to_arrow_table()`): what a connection that stands in for DuckDB's returns (a database
served by its owner, store/remote.py; a ClickHouse store, scale/connection.py).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

import polars as pl
import pyarrow as pa

TYPES_KEY = b"agentlens.types"  # a result's schema metadata: its columns' DuckDB types (JSON list), see Result


class Result:
    """A statement's result, as DuckDB's cursor gives it."""

    def __init__(self, table: pa.Table):
        self.table = table
        self._rows: list[tuple[Any, ...]] | None = None
        self._at = 0

    def _all(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            meta = self.table.schema.metadata or {}
            types = json.loads(meta[TYPES_KEY]) if TYPES_KEY in meta else [None] * self.table.num_columns
            cols = [python_values(c, t) for c, t in zip(self.table.columns, types, strict=True)]
            self._rows = list(zip(*cols, strict=True)) if cols else []
        return self._rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows = self._all()[self._at:]
        self._at = len(self._all())
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self._all()
        if self._at >= len(rows):
            return None
        self._at += 1
        return rows[self._at - 1]

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        rows = self._all()[self._at:self._at + size]
        self._at += len(rows)
        return rows

    def pl(self) -> pl.DataFrame:
        return pl.from_arrow(self.table)  # type: ignore[return-value]

    def to_arrow_table(self) -> pa.Table:
        return self.table

    arrow = to_arrow_table

    def fetch_arrow_table(self) -> pa.Table:
        return self.table


# -- results as DuckDB gives them --------------------------------------------------------------------------
# A result comes as Arrow; `fetchall()` / `fetchone()` build Python values from it. Most types come out as
# DuckDB's own fetchall gives them; these do not, and are converted (the owner sends the DuckDB types of the
# columns in the schema's metadata, TYPES_KEY): HUGEINT (what sum() of integers gives) comes as a Decimal
# (DuckDB: int), INTERVAL as pyarrow's MonthDayNano (DuckDB: timedelta, a month as 30 days), MAP as a list
# of pairs (DuckDB: dict), UUID as text (DuckDB: uuid.UUID), TIMESTAMPTZ with zoneinfo's UTC (DuckDB:
# pytz's). Frames (`.pl()`) need nothing: DuckDB's own `.pl()` is polars.from_arrow of the same Arrow.


def python_values(column: pa.ChunkedArray | pa.Array, duckdb_type: str | None) -> list[Any]:
    """A column's values as DuckDB's fetchall gives them (see above)."""
    values = column.to_pylist()
    convert = _converter(column.type, duckdb_type)
    if convert is None:
        return values
    return [None if v is None else convert(v) for v in values]


def _converter(t: pa.DataType, duckdb_type: str | None) -> Callable[[Any], Any] | None:
    if duckdb_type in ("HUGEINT", "UHUGEINT"):
        return int
    if duckdb_type == "UUID":
        return uuid.UUID
    if pa.types.is_timestamp(t) and t.tz:
        tz = _tzinfo(t.tz)
        return lambda v: v.astimezone(tz)
    if pa.types.is_interval(t):
        return _timedelta
    if pa.types.is_map(t):
        key, item = _converter(t.key_type, None), _converter(t.item_type, None)
        k = key or (lambda x: x)
        i = item or (lambda x: x)
        return lambda v: {k(a) if a is not None else None: i(b) if b is not None else None for a, b in v}
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        inner_type = duckdb_type[:-2] if duckdb_type and duckdb_type.endswith("[]") else None
        inner = _converter(t.value_type, inner_type)
        if inner is None:
            return None
        return lambda v: [None if x is None else inner(x) for x in v]
    if pa.types.is_struct(t):
        fields = {t.field(j).name: _converter(t.field(j).type, None) for j in range(t.num_fields)}
        convert = {n: f for n, f in fields.items() if f is not None}
        if not convert:
            return None
        return lambda v: {n: x if x is None or n not in convert else convert[n](x) for n, x in v.items()}
    return None


def _timedelta(v: Any) -> dt.timedelta:
    """An Arrow month-day-nano interval as DuckDB gives an INTERVAL: a month is 30 days."""
    return dt.timedelta(days=v.months * 30 + v.days, microseconds=v.nanoseconds // 1000)


def _tzinfo(name: str) -> dt.tzinfo:
    """The time zone object DuckDB's own fetchall puts on TIMESTAMPTZ values (pytz's, a dependency of DuckDB's
    conversion)."""
    try:
        import pytz

        return pytz.timezone(name)  # type: ignore[no-any-return]
    except Exception:
        import zoneinfo

        return zoneinfo.ZoneInfo(name)
