"""The canonical tables (agentlens.schema) in ClickHouse, generated from the column contract.

Each contract table is stored in a table `<name>_rows` with two hidden columns, and read through a view
named like the contract table (`runs`, `spans`, ...) that deduplicates, so that the metric SQL reads
`runs` on ClickHouse as it does on DuckDB:

- `_version UInt64`: when the row was written (microseconds). A run is rebuilt as its spans arrive: each
  rebuild writes the run again with a newer version, and `ReplacingMergeTree(_version)` keeps the newest row
  per sorting key. The views read `FINAL`, so a query never sees two versions of a row even before the
  background merges have run (FINAL deduplicates across partitions too).
- `_deleted UInt8`: the `is_deleted` column of ReplacingMergeTree: a row written with 1 removes the key
  (a run replaced by a source that gives runs whole, a rollup row that is gone).

`failures` is a set per run (classifying a run again replaces all its rows, and may find none): its rows
carry the version of the classification, one marker row per classified run (`_marker = 1`) carries it
even when nothing was found, and the view keeps the rows of each run's newest classification.

Types map one to one (`TYPES`); every column is Nullable, as in DuckDB (`allow_nullable_key` lets the
sorting keys hold them). Columns of few distinct values are stored `LowCardinality` (an encoding, not a type:
they read back as String). `tests/test_scale_schema.py` reads the views' columns from ClickHouse and checks
them against the contract.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import schema

TYPES: dict[str, str] = {
    "VARCHAR": "String",
    "JSON": "String",  # JSON text, as DuckDB hands it out; ClickHouse's JSON type rejects top-level arrays
    "TIMESTAMPTZ": "DateTime64(6, 'UTC')",
    "DOUBLE": "Float64",
    "BIGINT": "Int64",
    "INTEGER": "Int32",
    "UBIGINT": "UInt64",
    "BOOLEAN": "Bool",
    "MAP(INTEGER, UBIGINT)": "Map(Int32, UInt64)",
}

# Columns of a few distinct values: dictionary-encoded.
LOW_CARDINALITY = frozenset({
    "source", "agent_name", "status", "environment", "feature", "model", "provider", "kind", "service_name",
    "scope_name", "finish_reason", "mode", "severity", "dimension", "format", "policy_hash", "error_type",
    "price_source", "tool_name",
})


@dataclass(frozen=True)
class Layout:
    """How a contract table is stored: its sorting key (also the identity a newer version replaces), its
    partitions, and how its view reads it (`final`: the newest version of each key; `run_set`: the
    newest classification of each run; `log`: every row)."""

    order_by: tuple[str, ...]
    partition_by: str | None = None
    read: str = "final"  # final | run_set | log
    indexes: tuple[str, ...] = ()


LAYOUTS: dict[str, Layout] = {
    # by day of the run's start; a run whose start moves to another day (an earlier span arrived) is still
    # one row: FINAL deduplicates across partitions
    "runs": Layout(("run_id",), "toDate(started_at)", indexes=("started_at TYPE minmax GRANULARITY 4",)),
    "spans": Layout(("run_id", "span_id"), "toDate(started_at)"),
    "failures": Layout(("run_id", "mode", "span_id"), read="run_set"),
    "fleet_incidents": Layout(("incident_id",)),
    "quarantine": Layout(("ingested_at", "id"), "toYYYYMM(ingested_at)", read="log"),
    "ingested_files": Layout(("content_hash",)),
    "rollup_runs": Layout(("bucket_seconds", "bucket_start", "source", "agent_name", "environment", "feature",
                           "model")),
    "rollup_calls": Layout(("bucket_seconds", "bucket_start", "kind", "name", "provider")),
    "rollup_buckets": Layout(("bucket_seconds", "bucket_start")),
    "rollup_ledger": Layout(("bucket_seconds", "run_id")),
    "source_watermarks": Layout(("source",)),
    "file_reads": Layout(("path", "source")),
    "alert_state": Layout(("alert_key",)),
}


def ch_type(column: str, duck_type: str) -> str:
    """The ClickHouse type of a contract column."""
    t = TYPES[duck_type]
    if t.startswith("Map("):
        return t  # a Map cannot be Nullable: an empty map stands for none
    t = f"Nullable({t})"
    return f"LowCardinality({t})" if column in LOW_CARDINALITY and duck_type == "VARCHAR" else t


def storage(table: str) -> str:
    return f"{table}_rows"


def create_table(table: str, columns: tuple[schema.Column, ...] | None = None) -> str:
    cols = columns if columns is not None else schema.TABLES[table]
    lay = LAYOUTS[table]
    body = [f"`{c.name}` {ch_type(c.name, c.type)}" for c in cols]
    body += ["`_version` UInt64", "`_deleted` UInt8 DEFAULT 0"]
    if lay.read == "run_set":
        body.append("`_marker` UInt8 DEFAULT 0")
    body += [f"INDEX {table}_{i} {spec}" for i, spec in enumerate(lay.indexes)]
    if lay.read == "log":
        engine = "MergeTree"
    elif lay.read == "run_set":
        engine = "ReplacingMergeTree(_version)"
    else:
        engine = "ReplacingMergeTree(_version, _deleted)"
    parts = [f"CREATE TABLE IF NOT EXISTS {storage(table)} (\n  " + ",\n  ".join(body) + "\n)",
             f"ENGINE = {engine}"]
    if lay.partition_by:
        parts.append(f"PARTITION BY {lay.partition_by}")
    parts.append("ORDER BY (" + ", ".join(lay.order_by) + ")")
    parts.append("SETTINGS allow_nullable_key = 1")
    return "\n".join(parts)


def create_view(table: str) -> str:
    cols = ", ".join(f"`{c.name}`" for c in schema.TABLES[table])
    src = storage(table)
    lay = LAYOUTS[table]
    if lay.read == "final":
        body = f"SELECT {cols} FROM {src} FINAL"  # noqa: S608 - contract names
    elif lay.read == "run_set":
        body = (f"SELECT {cols} FROM {src} FINAL WHERE _marker = 0 AND (run_id, _version) IN "  # noqa: S608 - contract names
                f"(SELECT run_id, max(_version) FROM {src} GROUP BY run_id)")
    else:
        body = f"SELECT {cols} FROM {src}"  # noqa: S608 - contract names
    return f"CREATE OR REPLACE VIEW {table} AS {body}"


def add_column(table: str, column: schema.Column) -> str:
    return f"ALTER TABLE {storage(table)} ADD COLUMN IF NOT EXISTS `{column.name}` {ch_type(column.name, column.type)}"


MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (name String, applied_at DateTime64(6, 'UTC'))
ENGINE = ReplacingMergeTree ORDER BY name"""


def statements() -> list[str]:
    """Everything `migrate` runs on an empty database, in order (for reading, and the docs)."""
    out = [MIGRATIONS_TABLE]
    for table in schema.TABLES:
        out += [create_table(table), create_view(table)]
    return out
