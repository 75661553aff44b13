"""`agentlens costs` and `agentlens reprice`: thin commands over agentlens.costs and agentlens.failures.reprice."""

from __future__ import annotations

import datetime as dt

import click
import duckdb

from .. import failures
from ..core.dimensions import RUN_DIMENSIONS
from ..metrics import costs as C
from ..present import terminal
from ..present.costs import cost_result
from .common import (
    CONFIG_OPTION,
    DB_OPTION,
    ENGINE_OPTION,
    _open,
    by_option,
    format_option,
    output_option,
    since_option,
    until_option,
)


@click.command()
@DB_OPTION
@ENGINE_OPTION
@CONFIG_OPTION
@by_option(C.dimensions, default="feature", metavar="DIMS",
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
@format_option("table: the whole cost report; json, csv, parquet: one table (see --table).")
@click.option("--table", "table", type=click.Choice(C.TABLES), default=None,
              help="The table json/csv/parquet write (default: by, or what-if with --what-if-model).")
@output_option()
def costs(db: str | None, config: str | None, by_: tuple[str, ...], period: str | None, since: dt.datetime | None,
          until: dt.datetime | None, what_if_model: str | None, what_if_provider: str | None, fmt: str,
          table: str | None, output: str | None) -> None:
    """Cost per run and cost attribution: total, median / p95 / max per run, cost per successful run
    and tokens by type, by any dimension and period; models without a price, reported vs computed
    costs, budget overruns and what-if on another model.

    Example: agentlens costs --by feature,customer_id --period month --format csv -o costs.csv
    """
    name = table or ("what-if" if what_if_model else "by")
    if fmt != "table" and name == "what-if" and not what_if_model:
        raise click.UsageError("--table what-if needs --what-if-model")
    with _open(db, config, read_only=True) as lens:
        try:
            if fmt == "table":
                rep = C.report(lens, by_, period, since, until, what_if_model, what_if_provider)
                if not rep.headline.get("runs") and output is None:
                    terminal.say("no runs match")
                    return
                terminal.emit(cost_result(rep), fmt, output)
                return
            df = C.table(lens, name, by_, period, since, until, what_if_model, what_if_provider)
        except duckdb.BinderException as e:
            if "cost_usd" in str(e) or "price_source" in str(e):
                raise click.ClickException(
                    f"{lens.path} predates the cost columns: run `agentlens reprice` on it once") from None
            raise
    terminal.emit(df, fmt, output)


@click.command()
@DB_OPTION
@CONFIG_OPTION
def reprice(db: str | None, config: str | None) -> None:
    """Recompute every run's cost with the current prices: after changing [pricing] overrides or
    upgrading genai-prices. In the same transaction, the runs whose cost changed are judged again against
    the budget caps, and the spend spikes of their days. Prints what changed and the calls without a price."""
    with _open(db, config, create=False) as lens:
        summary = failures.reprice(lens)
    terminal.show(summary)
