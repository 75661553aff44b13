"""`agentlens store migrate --to URL`: a DuckDB database moved to a ClickHouse store (agentlens.scale.migrate)."""

from __future__ import annotations

import click

from ..present import terminal
from .common import CONFIG_OPTION, DB_OPTION, UserError, _open


@click.group("store")
def store_cmd() -> None:
    """The database itself: move a DuckDB database to ClickHouse."""


@store_cmd.command("migrate")
@DB_OPTION
@CONFIG_OPTION
@click.option("--to", "to", required=True, metavar="URL",
              help="The ClickHouse store: clickhouse://[user[:password]@]host:8123/db or clickhouse+chdb:///dir.")
def migrate_cmd(db: str | None, config: str | None, to: str) -> None:
    """Copy every table of the database (--db) to the ClickHouse store at URL.

    The tables and views are created there if needed; rows are copied in batches. Running it again writes
    the same rows with a newer version, which ClickHouse reads as one: it can be repeated.
    """
    from ..explore.search import run_words
    from ..scale import StoreURLError, connect, is_store_url
    from ..scale.migrate import migrate

    if not is_store_url(to):
        raise UserError(f"--to {to}: not a ClickHouse URL (clickhouse://host:8123/db or clickhouse+chdb:///dir)")
    with _open(db, config, read_only=True) as lens:
        if lens.clickhouse is not None:
            raise UserError("--db is already a ClickHouse store: migrate reads a DuckDB database")
        try:
            dest = connect(to)
        except StoreURLError as e:
            raise UserError(str(e)) from None
        moved = migrate(lens.con, dest, on_table=lambda t, n: terminal.note(f"  {t}: {n:,} rows"),
                        words=run_words)
        dest.close()
    total = sum(moved.tables.values())
    terminal.say(f"migrated {total:,} rows in {len(moved.tables)} tables to {dest.url.display()} "
                 f"in {moved.seconds:.1f} s")
