"""`agentlens store migrate --to URL`: a DuckDB database moved to a ClickHouse store (agentlens.scale.migrate);
`agentlens export --lake DIR`: its tables as a Parquet lake (agentlens.scale.lake)."""

from __future__ import annotations

from pathlib import Path

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


EXPORT_BAR_SPANS = 200_000  # an export of fewer spans takes a second or two: no bar


@click.command("export")
@DB_OPTION
@click.option("--lake", "lake", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="The Parquet lake to write (created if missing; docs/scale-out.md, Parquet lake).")
@click.option("--progress/--no-progress", default=None,
              help=f"Progress bars (default: on for a database of over {EXPORT_BAR_SPANS:,} spans).")
def export_cmd(db: str | None, lake: str, progress: bool | None) -> None:
    """Export the database's tables to a Parquet lake in DIR, for DuckDB, Spark, ClickHouse, polars.

    runs, spans and failures are partitioned by the UTC day of the run's start (DIR/runs/day=YYYY-MM-DD/...);
    the other tables are written whole; DIR/_agentlens_lake.json lists the files, written last. A second
    export writes only the day partitions whose runs changed (rebuilt by later spans, repriced, classified
    again, moved to another day): nothing when nothing changed.
    """
    from ..present.progress import StepBar
    from ..scale.lake import LakeError, export

    with _open(db, read_only=True) as lens:
        if lens.clickhouse is not None:
            raise UserError("--db is a ClickHouse store: the lake is exported from a DuckDB database")
        show = progress if progress is not None else (lens.one("SELECT count(*) FROM spans") or (0,))[0] > EXPORT_BAR_SPANS
        try:
            if show:
                with StepBar(lens.con) as bar:
                    done = export(lens.con, Path(lake).resolve(), on_step=bar.step)
            else:
                done = export(lens.con, Path(lake).resolve())
        except LakeError as e:
            raise UserError(str(e)) from None
    done.lake = lake
    for line in done.lines():
        terminal.say(line)


COMMANDS: tuple[click.Command, ...] = (store_cmd, export_cmd)
