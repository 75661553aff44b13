"""Reading a Parquet lake (agentlens.scale.lake) back, and comparing it with a database: shared by the lake's tests
and the distributed ingest's."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from agentlens import schema
from agentlens.scale import lake as L


def glob(lake: Path, table: str) -> str:
    return str(lake / table / ("**/*.parquet" if table in L.PER_RUN else "*.parquet"))


def db_table(con: duckdb.DuckDBPyConnection, table: str) -> pa.Table:
    """A database table as the lake holds it (its contract columns at the lake's types)."""
    return con.sql(f"SELECT {L.columns_sql(table)} FROM {table}").to_arrow_table().cast(L.arrow_schema(table))


def duckdb_read(lake: Path, table: str) -> pa.Table:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = con.sql("SELECT * FROM read_parquet(?, hive_partitioning = true)", params=[glob(lake, table)])
    t = rel.to_arrow_table()
    return t.drop_columns(["day"]) if "day" in t.column_names else t


def pyarrow_read(lake: Path, table: str) -> pa.Table:
    import pyarrow.dataset as ds

    d = ds.dataset(str(lake / table), format="parquet", partitioning="hive" if table in L.PER_RUN else None)
    t = d.to_table()
    return t.drop_columns(["day"]) if "day" in t.column_names else t


def polars_read(lake: Path, table: str) -> pa.Table:
    import polars as pl

    df = pl.read_parquet(glob(lake, table), hive_partitioning=table in L.PER_RUN)
    return df.drop("day").to_arrow() if "day" in df.columns else df.to_arrow()


def sorted_rows(t: pa.Table, ignore: Iterable[str] = ()) -> pa.Table:
    t = t.drop_columns([c for c in ignore if c in t.column_names])
    keys = [f.name for f in t.schema if not pa.types.is_map(f.type) and not pa.types.is_list(f.type)]
    return t.sort_by([(k, "ascending") for k in keys]) if t.num_rows else t


def same_rows(a: pa.Table, b: pa.Table, table: str, ignore: Iterable[str] = ()) -> None:
    """The same rows (in any order), column by column, with a message naming the first difference."""
    a, b = sorted_rows(a, ignore), sorted_rows(b, ignore)
    assert a.num_rows == b.num_rows, f"{table}: {a.num_rows} rows against {b.num_rows}"
    assert a.column_names == b.column_names, f"{table}: columns {a.column_names} against {b.column_names}"
    for name in a.column_names:
        x, y = a.column(name), b.column(name)
        if pa.types.is_map(x.type) or pa.types.is_map(y.type):
            x, y = (pa.array(c.to_pylist(), pa.list_(pa.struct([("key", pa.int32()), ("value", pa.int64())])))
                    for c in (x, y))
        elif x.type != y.type:
            y = y.cast(x.type)
        if not x.equals(y):
            diff = None if pa.types.is_list(x.type) else pc.invert(pc.or_(
                pc.fill_null(pc.equal(x, y), False), pc.and_(pc.is_null(x), pc.is_null(y))))
            i = pc.index(diff, True).as_py() if diff is not None else -1
            at = f" row {i}: {x[i].as_py()!r} against {y[i].as_py()!r}" if i >= 0 else ""
            raise AssertionError(f"{table}.{name} differs:{at}")


def contract_tables() -> list[str]:
    return list(schema.TABLES)
