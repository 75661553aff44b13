"""The store: a DuckDB database holding the canonical tables (agentlens.schema), opened and migrated,
with the queries that return polars DataFrames. Everything above it (pricing, failures, metrics, the
ingest) works through a `Store`.

- db.py: `Store` (connection, migrations, queries), the default path and memory limit;
- runsql.py: the single source of per-run aggregate SQL (building and pricing runs);
- chunks.py: what a chunk of runs weighs (bounded memory);
- queries.py: named read queries;
- owner.py, remote.py, ops.py: several processes on one database: the one holding it serves it
  (agentlens.server), the others are its clients, write operations run where the database is;
- locking.py: reading DuckDB's lock conflict (who holds a file).
"""

from .db import (
    DEFAULT_DB,
    DatabaseBusy,
    DatabaseMissing,
    DatabaseUnavailable,
    Store,
    StoreError,
    default_db_path,
    memory_limit,
    out_of_memory_advice,
)

__all__ = ["DEFAULT_DB", "DatabaseBusy", "DatabaseMissing", "DatabaseUnavailable", "Store", "StoreError",
           "default_db_path", "memory_limit", "out_of_memory_advice"]
