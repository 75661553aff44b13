"""`agentlens costs` and `agentlens reprice`: thin commands over agentlens.costs and agentlens.pricing."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click
import duckdb
import polars as pl

from .. import pricing
from ..core.config import ConfigError
from ..core.dimensions import RUN_DIMENSIONS
from ..metrics import costs as C
from ..store import default_db_path
from .common import CONFIG_OPTION, DB_OPTION, _open, out, since_option, until_option

TABLES = ("by", "what-if", "unpriced", "reconciliation", "runs-over-budget", "days-over-budget", "top-runs",
          "prices")
FORMATS = ("table", "csv", "parquet", "json")


def _write(df: pl.DataFrame, fmt: str, output: str | None) -> None:
    if fmt == "parquet":
        if output is None:
            raise click.UsageError("--format parquet needs -o FILE")
        df.write_parquet(output)
    elif fmt == "csv":
        text = df.write_csv()
        Path(output).write_text(text, encoding="utf-8") if output else sys.stdout.write(text)
    else:  # json: an array of records
        text = df.write_json()
        Path(output).write_text(text + "\n", encoding="utf-8") if output else sys.stdout.write(text + "\n")


@click.command()
@DB_OPTION
@CONFIG_OPTION
@click.option("--by", "by_", default="feature", show_default=True, metavar="DIMS",
              help="Comma-separated group keys: a run column (" + ", ".join(RUN_DIMENSIONS) + "), "
                   "attr:KEY (an attribute key, e.g. attr:app.team) or json:$.PATH (a JSON path into the "
                   "run's attributes); '' for one total.")
@click.option("--period", type=click.Choice(C.PERIODS), default=None,
              help="Also group by UTC day, ISO week or calendar month of the run's start.")
@since_option()
@until_option()
@click.option("--what-if-model", metavar="MODEL",
              help="Also price the same tokens at MODEL's prices (genai-prices or an override).")
@click.option("--what-if-provider", metavar="PROVIDER", help="Provider of --what-if-model, when ambiguous.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table: the whole cost report; csv, parquet, json: one table (see --table).")
@click.option("--table", "table", type=click.Choice(TABLES), default=None,
              help="The table csv/parquet/json write (default: by, or what-if with --what-if-model).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write to FILE instead of standard output (parquet needs it).")
def costs(db: str | None, config: str | None, by_: str, period: str | None, since: dt.datetime | None,
          until: dt.datetime | None, what_if_model: str | None, what_if_provider: str | None, fmt: str,
          table: str | None, output: str | None) -> None:
    """Cost per run and cost attribution: total, median / p95 / max per run, cost per successful run
    and tokens by type, by any dimension and period; models without a price, reported vs computed
    costs, budget overruns and what-if on another model.

    Example: agentlens costs --by feature,customer_id --period month --format csv -o costs.csv
    """
    path = db or default_db_path()
    if not Path(path).exists():
        raise click.ClickException(f"{path}: no such database (agentlens ingest FILES --db {path} creates it)")
    with _open(path, config, read_only=True) as lens:
        try:
            if fmt == "table":
                report = C.report(lens, by_, period, since, until, what_if_model, what_if_provider)
                if output:
                    Path(output).write_text(str(report), encoding="utf-8")
                else:
                    out.print(report)
                return
            name = table or ("what-if" if what_if_model else "by")
            if name == "what-if" and not what_if_model:
                raise click.UsageError("--table what-if needs --what-if-model")
            df = {
                "by": lambda: C.by(lens, by_, period, since, until),
                "what-if": lambda: C.what_if(lens, what_if_model or "", what_if_provider, by_, period, since, until),
                "unpriced": lambda: C.unpriced(lens, since, until),
                "reconciliation": lambda: C.reconciliation(lens, since, until),
                "runs-over-budget": lambda: C.runs_over_budget(lens, since, until),
                "days-over-budget": lambda: C.days_over_budget(lens, since, until),
                "top-runs": lambda: C.top_runs(lens, 100, since, until),
                "prices": lambda: pricing.prices(lens),
            }[name]()
        except (ValueError, LookupError, ConfigError) as e:
            raise click.ClickException(str(e)) from None
        except duckdb.BinderException as e:
            if "cost_usd" in str(e) or "price_source" in str(e):
                raise click.ClickException(
                    f"{lens.path} predates the cost columns: run `agentlens reprice` on it once") from None
            raise
    _write(df, fmt, output)


@click.command()
@DB_OPTION
@CONFIG_OPTION
def reprice(db: str | None, config: str | None) -> None:
    """Recompute every run's cost with the current prices: after changing [pricing] overrides or
    upgrading genai-prices. One transaction; prints what changed and the calls without a price."""
    with _open(db, config) as lens:
        try:
            summary = pricing.reprice(lens)
        except ConfigError as e:
            raise click.ClickException(str(e)) from None
    out.print(summary.result())
