"""The store: a DuckDB database holding the canonical tables (agentlens.schema), opened and migrated,
with the queries that return polars DataFrames. Everything above it (pricing, failures, metrics, the
ingest) works through a `Store`.

- db.py: `Store` (connection, migrations, queries), the default path and memory limit;
- runsql.py: the single source of per-run aggregate SQL (building and pricing runs);
- chunks.py: what a chunk of runs weighs (bounded memory);
- queries.py: named read queries;
- locking.py: waiting while another process holds the database.
"""

from .db import DEFAULT_DB, Store, default_db_path, memory_limit, out_of_memory_advice

__all__ = ["DEFAULT_DB", "Store", "default_db_path", "memory_limit", "out_of_memory_advice"]
