"""The lakes the Spark tests read: written by agentlens's own export (`agentlens export --lake`,
agentlens/scale/lake.py) from a DuckDB agentlens database, in the layout docs/scale-out.md describes."""

from __future__ import annotations

from pathlib import Path

import duckdb

from agentlens.scale import lake as lake_writer


def make_lake(db: str | Path | duckdb.DuckDBPyConnection, lake: str | Path) -> Path:
    """Export the database `db` (a file, or a connection to one) to the new folder `lake`."""
    out = Path(lake)
    if out.exists():
        raise FileExistsError(out)
    con = db if isinstance(db, duckdb.DuckDBPyConnection) else duckdb.connect(str(db), read_only=True)
    try:
        lake_writer.export(con, out)
    finally:
        if con is not db:
            con.close()
    return out
