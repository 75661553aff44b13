"""A Parquet lake made from a DuckDB agentlens database, in the layout `agentlens export --lake` writes
(docs/scale-out.md, Spark): `DIR/<table>/day=YYYY-MM-DD/*.parquet` for runs, spans and failures (hive
partitions by the run's UTC start day, `day=unknown` without one), `DIR/<table>/*.parquet` for the other
contract tables, `DIR/_agentlens_lake.json`. The contract's columns exactly: JSON as text, no unsigned types.

Until `agentlens export --lake` lands, the Spark tests make their lakes with this (DuckDB's own COPY)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from agentlens import schema

PARTITIONED = ("runs", "spans", "failures")


def _expr(c: schema.Column, alias: str) -> str:
    col = f'{alias}."{c.name}"'
    if c.type == "JSON":
        return f'CAST({col} AS VARCHAR) AS "{c.name}"'
    if "UBIGINT" in c.type:
        return f'CAST({col} AS {c.type.replace("UBIGINT", "BIGINT")}) AS "{c.name}"'
    return f'{col} AS "{c.name}"'


def make_lake(db: str | Path | duckdb.DuckDBPyConnection, lake: str | Path) -> Path:
    """Write the lake of the database `db` (a file, or a connection to one) to the (new) folder `lake`."""
    out = Path(lake)
    out.mkdir(parents=True, exist_ok=False)
    con = db if isinstance(db, duckdb.DuckDBPyConnection) else duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        for table, cols in schema.TABLES.items():
            select = ", ".join(_expr(c, "t") for c in cols)
            if table in PARTITIONED:
                day = "coalesce(strftime(r.started_at, '%Y-%m-%d'), 'unknown')"
                src = f"{table} t" if table == "runs" else f"{table} t LEFT JOIN runs r USING (run_id)"
                if table == "runs":
                    day = day.replace("r.", "t.")
                con.execute(f"COPY (SELECT {select}, {day} AS day FROM {src}) TO '{out / table}' "
                            "(FORMAT parquet, PARTITION_BY (day))")
            else:
                (out / table).mkdir()
                con.execute(f"COPY (SELECT {select} FROM {table} t) TO '{out / table / 'data_0.parquet'}' "
                            "(FORMAT parquet)")
        (out / "_agentlens_lake.json").write_text(json.dumps(
            {"format": "agentlens-lake", "schema_version": schema.SCHEMA_VERSION,
             "partitioned": {t: "day" for t in PARTITIONED}}, indent=1))
    finally:
        if con is not db:
            con.close()
    return out
