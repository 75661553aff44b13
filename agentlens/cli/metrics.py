"""`agentlens signals`, `agentlens rollup`, `agentlens alerts`: thin commands over agentlens.metrics."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click
import duckdb
import polars as pl

from ..api import Lens
from ..core.dimensions import GROUP_DIMENSIONS
from ..core.results import Result
from ..metrics import alerts as A
from ..metrics import rollups as RU
from ..metrics import signals as S
from ..store import default_db_path
from ..store.locking import DatabaseBusy, open_when_free
from .common import CONFIG_OPTION, DB_OPTION, DURATION, TIME, _open, err, out, since_option, until_option

TABLES = ("signals", "latency", "llm", "tools", "errors", "budgets")


class _AlertsError(click.ClickException):
    """An error of `agentlens alerts`: exit status 2, since 1 means "an alert fires"."""

    exit_code = 2


def _wait_option(default: float) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--wait", type=click.FloatRange(min=0), default=default, show_default=True, metavar="SECONDS",
        help="How long to wait while another process (an ingest) holds the database, retrying.",
    )


def _open_waiting(db: str | None, config: str | None, read_only: bool, wait: float,
                  error: type[click.ClickException] = click.ClickException) -> Lens:
    path = db or default_db_path()
    try:
        return open_when_free(lambda: _open(path, config, read_only=read_only), path, wait,
                              notify=lambda msg: err.print(msg, markup=False, highlight=False, soft_wrap=True))
    except DatabaseBusy as e:
        raise error(str(e)) from None
    except click.ClickException as e:
        raise error(e.message) from None
    except duckdb.Error as e:
        raise error(f"{path}: cannot open the database: {e}") from None


def _where(items: tuple[str, ...]) -> dict[str, str]:
    out_: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r}: write DIMENSION=VALUE, e.g. feature=refund", param_hint="--where")
        out_[name.strip()] = value
    return out_


def _print_table(df: pl.DataFrame, title: str | None = None) -> None:
    """A table as wide as it needs (a squeezed table of numbers is unreadable; a long line wraps)."""
    from rich.console import Console

    from ..core.results import _fmt, rich_table

    widths = [max([len(c), *(len(_fmt(v)) for v in df[c].head(50).to_list())]) + 3 for c in df.columns]
    Console(highlight=False, width=max(out.width, sum(widths) + 4)).print(rich_table(df, title))


def _print_result(res: Result) -> None:
    out.print(Result(res.title, res.facts, {}))
    for name, df in res.tables.items():
        _print_table(df, name)


def _emit(df: pl.DataFrame, fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(df.write_json() + "\n")
    elif fmt == "csv":
        sys.stdout.write(df.write_csv())
    else:
        _print_table(S.display(df))


@click.command(name="signals")
@DB_OPTION
@CONFIG_OPTION
@click.option("--by", "by_", multiple=True, metavar="DIM,...",
              help="Group by run dimensions: " + ", ".join(GROUP_DIMENSIONS) + ".")
@click.option("--every", type=DURATION, metavar="INTERVAL",
              help="Time buckets (UTC): 15m, 1h, 1d, 1w. Default: one row for the window.")
@since_option()
@until_option()
@click.option("--where", "where_", multiple=True, metavar="DIM=VALUE", help="Only runs with this dimension value (repeatable).")
@click.option("--table", "table", type=click.Choice(TABLES), default=None,
              help="One table: the signals (default for json/csv), run latency by status, LLM calls by model, "
                   "tool calls by tool, errors by type, daily budget utilisation.")
@click.option("--format", "fmt", type=click.Choice(("table", "json", "csv")), default="table", show_default=True,
              help="json: a list of records.")
@click.option("--from-rollups", "from_rollups", is_flag=True,
              help="Read the rollup tables (fast on large databases; percentiles within 1%; see `agentlens rollup`).")
@_wait_option(60)
def signals_cmd(db: str | None, config: str | None, by_: tuple[str, ...], every: dt.timedelta | None,
                since: dt.datetime | None, until: dt.datetime | None, where_: tuple[str, ...], table: str | None, fmt: str, from_rollups: bool,
                wait: float) -> None:
    """The golden signals: latency, traffic, errors, saturation, by dimension and time bucket.

    Without --table and --format, prints every table: the signals per bucket and group (traffic,
    errors, latency, saturation), run latency of successful and failed runs, LLM calls per model,
    tool calls per tool, errors by type, and spend against the [budgets] caps.
    """
    where = _where(where_)
    with _open_waiting(db, config, read_only=True, wait=wait) as lens:
        try:
            q = S.make_query(by=by_, every=every, since=since, until=until, where=where)
            if from_rollups:
                if table in (None, "signals") and fmt != "table":
                    _emit(RU.signals(lens, query=q), fmt)
                elif table in ("llm", "tools"):
                    _emit(RU.calls(lens, "llm" if table == "llm" else "tool", every, q.since, q.until), fmt)
                elif table is None:
                    _print_result(RU.report(lens, by_, every, q.since, q.until))
                elif table == "signals":
                    _emit(RU.signals(lens, query=q), fmt)
                else:
                    raise click.UsageError(f"--table {table} is not kept in the rollups; drop --from-rollups")
                return
            if table is None and fmt == "table":
                _print_result(S.report(lens, by_, every, q.since, q.until, where))
                return
            whole = S.Query((), q.every, q.since, q.until, q.where)
            if table in (None, "signals"):
                df = S.signals(lens, query=q)
            elif table == "latency":
                df = S.latency(lens, query=q)
            elif table == "llm":
                df = S.llm_calls(lens, query=whole)
            elif table == "tools":
                df = S.tool_calls(lens, query=whole)
            elif table == "errors":
                df = S.errors_by_type(lens, query=whole)
            else:
                df, facts = S.budget_utilization(lens, q.since, q.until)
                if df.is_empty() and not facts:
                    raise click.ClickException("no budget configured: add [budgets] to the --config file")
            _emit(df, fmt)
        except S.SignalsError as e:
            raise click.ClickException(str(e)) from None
        except duckdb.CatalogException as e:
            raise click.ClickException(f"{lens.path}: {e} (an older database? open it once read-write: "
                                       "`agentlens rollup`)") from None


@click.command(name="rollup")
@DB_OPTION
@CONFIG_OPTION
@click.option("--every", type=DURATION, default="1h", show_default=True, metavar="INTERVAL",
              help="Bucket width: one that divides a day (1m, 5m, 15m, 1h, 6h, 1d) or whole days.")
@click.option("--rebuild", is_flag=True, help="Forget what was rolled at this width and recompute every bucket.")
@_wait_option(600)
def rollup_cmd(db: str | None, config: str | None, every: dt.timedelta, rebuild: bool, wait: float) -> None:
    """Roll the golden signals up into per-bucket rows (rollup_runs, rollup_calls, rollup_buckets).

    Incremental and idempotent: re-rolls exactly the buckets whose runs are new or changed since the
    last rollup (late spans re-roll the buckets they fall in), in one transaction; running it again
    adds nothing. Safe on a schedule: while an ingest holds the database it waits (--wait) and retries.
    """
    with _open_waiting(db, config, read_only=False, wait=wait) as lens:
        try:
            summary = RU.rollup(lens, every, rebuild=rebuild)
        except S.SignalsError as e:
            raise click.ClickException(str(e)) from None
    out.print(summary.result())


def _alerts_fail(message: str) -> NoReturn:
    raise _AlertsError(message)


@click.command(name="alerts")
@DB_OPTION
@CONFIG_OPTION
@click.option("--rules", "rules_path", required=True, metavar="FILE", type=click.Path(dir_okay=False),
              help="TOML rules file: [[threshold]] and [[slo]] rules (see README, Alerts).")
@click.option("--at", "at", type=TIME, default=None, metavar="TIME",
              help="Evaluate as of TIME (default: now; the same forms as --since).")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
@click.option("--webhook", metavar="URL", help="POST the JSON report to URL when an alert fires.")
@_wait_option(60)
def alerts_cmd(db: str | None, config: str | None, rules_path: str, at: dt.datetime | None, fmt: str,
               webhook: str | None, wait: float) -> None:
    """Evaluate threshold and SLO burn-rate alerts; print them with the numbers behind them.

    Exit status: 0 when nothing fires, 1 when an alert fires, 2 on an error (rules, database,
    webhook delivery), so that cron can act on it.
    """
    try:
        rules = A.load_rules(rules_path)
    except A.RulesError as e:
        _alerts_fail(str(e))
    with _open_waiting(db, config, read_only=True, wait=wait, error=_AlertsError) as lens:
        try:
            report = A.evaluate(lens, rules, at)
        except (A.RulesError, S.SignalsError, ValueError) as e:
            _alerts_fail(str(e))
    if fmt == "json":
        sys.stdout.write(report.to_json() + "\n")
    else:
        out.print(report.result())
    if webhook and report.firing:
        try:
            status = A.post_webhook(webhook, report)
        except A.WebhookError as e:
            _alerts_fail(str(e))
        err.print(f"posted {len(report.firing)} firing alert(s) to {webhook} (HTTP {status})",
                  markup=False, highlight=False, soft_wrap=True)
    if report.firing:
        sys.exit(1)


COMMANDS = (signals_cmd, rollup_cmd, alerts_cmd)
