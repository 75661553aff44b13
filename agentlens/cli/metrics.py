"""`agentlens signals`, `agentlens rollup`, `agentlens alerts`: thin commands over agentlens.metrics."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import Any

import click
import duckdb

from ..core.dimensions import GROUP_DIMENSIONS
from ..metrics import alerts as A
from ..metrics import rollups as RU
from ..metrics import signals as S
from ..present import terminal
from ..present.notify import post_webhook
from .common import (
    CONFIG_OPTION,
    DB_OPTION,
    DURATION,
    ENGINE_OPTION,
    INPUT_ERRORS,
    TIME,
    UserError,
    _open,
    by_option,
    format_option,
    one_line,
    output_option,
    since_option,
    until_option,
    where_option,
)

TABLES = ("signals", "latency", "llm", "tools", "errors", "budgets")


def _wait_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--wait", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
        help="How long to wait for a database another process holds without serving it "
             "(default: `agentlens --wait`, $AGENTLENS_WAIT, else 60).",
    )


@click.command(name="signals")
@DB_OPTION
@ENGINE_OPTION
@CONFIG_OPTION
@by_option(lambda names: S.make_query(by=names), help="Group by run dimensions: " + ", ".join(GROUP_DIMENSIONS) + ".")
@click.option("--every", type=DURATION, metavar="INTERVAL",
              help="Time buckets (UTC): 15m, 1h, 1d, 1w. Default: one row for the window.")
@since_option()
@until_option()
@where_option(lambda name: S.make_query(where={name: None}))
@click.option("--table", "table", type=click.Choice(TABLES), default=None,
              help="One table: the signals (default for json/csv/parquet), run latency by status, LLM calls by "
                   "model, tool calls by tool, errors by type, daily budget utilisation.")
@format_option("json: a list of records.")
@output_option()
@click.option("--source", type=click.Choice(S.SOURCES), default="raw", show_default=True,
              help="raw: the runs and spans; rollups: the rollup tables (fast on large databases; percentiles "
                   "within 1%; see `agentlens rollup`); auto: the rollups when they cover the query, else raw.")
@click.option("--from-rollups", "from_rollups", is_flag=True, help="The same as --source rollups.")
@_wait_option()
def signals_cmd(db: str | None, config: str | None, by_: tuple[str, ...], every: dt.timedelta | None,
                since: dt.datetime | None, until: dt.datetime | None, where_: dict[str, str], table: str | None,
                fmt: str, output: str | None, source: S.Source, from_rollups: bool, wait: float | None) -> None:
    """The golden signals: latency, traffic, errors, saturation, by dimension and time bucket.

    Without --table and --format, prints every table: the signals per bucket and group (traffic,
    errors, latency, saturation), run latency of successful and failed runs, LLM calls per model,
    tool calls per tool, errors by type, and spend against the [budgets] caps.
    """
    source = "rollups" if from_rollups else source
    with _open(db, config, read_only=True, wait=wait) as lens:
        try:
            q = S.make_query(by=by_, every=every, since=since, until=until, where=where_)
            if table is None and fmt == "table":
                terminal.emit(S.report(lens, by_, every, q.since, q.until, where_, source=source), fmt, output)
                return
            if table == "budgets":
                df, facts = S.budget_utilization(lens, q.since, q.until, source=source)
                if df.is_empty() and not facts:
                    raise click.ClickException("no budget configured: add [budgets] to the --config file")
            else:
                df = S.TABLES[table or "signals"](lens, query=q, source=source)
            terminal.emit(S.display(df) if fmt == "table" else df, fmt, output)
        except RU.NotRolledUp:
            raise click.ClickException(f"{lens.path}: nothing rolled up yet; run `agentlens rollup` first") from None
        except duckdb.CatalogException as e:
            raise click.ClickException(f"{lens.path}: {e} (an older database? open it once read-write: "
                                       "`agentlens rollup`)") from None


@click.command(name="rollup")
@DB_OPTION
@CONFIG_OPTION
@click.option("--every", type=DURATION, default="1h", show_default=True, metavar="INTERVAL",
              help="Bucket width: one that divides a day (1m, 5m, 15m, 1h, 6h, 1d) or whole days.")
@click.option("--rebuild", is_flag=True, help="Forget what was rolled at this width and recompute every bucket.")
@_wait_option()
def rollup_cmd(db: str | None, config: str | None, every: dt.timedelta, rebuild: bool, wait: float | None) -> None:
    """Roll the golden signals up into per-bucket rows (rollup_runs, rollup_calls, rollup_buckets).

    Incremental and idempotent: re-rolls exactly the buckets whose runs are new or changed since the
    last rollup (late spans re-roll the buckets they fall in), in one transaction; running it again
    adds nothing. Safe on a schedule: while another process holds the database it runs there, in turn.
    """
    with _open(db, config, create=False, wait=wait) as lens:
        summary = RU.rollup(lens, every, rebuild=rebuild)
    terminal.show(summary)


@click.command(name="alerts")
@DB_OPTION
@ENGINE_OPTION
@CONFIG_OPTION
@click.option("--rules", "rules_path", required=True, metavar="FILE", type=click.Path(dir_okay=False),
              help="TOML rules file: [[threshold]] and [[slo]] rules (see README, Alerts).")
@click.option("--at", "at", type=TIME, default=None, metavar="TIME",
              help="Evaluate as of TIME (default: now; the same forms as --since).")
@click.option("--all", "show_all", is_flag=True,
              help="Show every alert evaluated, firing first, with what the alert state says of it (new, still "
                   "firing since ..., resolved), and record nothing: for a person at a terminal, beside the cron "
                   "job that announces.")
@click.option("--no-state", "no_state", is_flag=True,
              help="Neither read nor record the alert state: every firing alert is reported (and posted to "
                   "--webhook), none as resolved.")
@format_option("json: the report with the numbers behind each alert and its notice (what --webhook posts); csv, "
               "parquet: the alerts table.")
@output_option()
@click.option("--webhook", metavar="URL",
              help="POST the JSON report to URL when there is something to announce: an alert new, repeated "
                   "(renotify) or resolved (with --no-state: when an alert fires). Not delivered: nothing is "
                   "recorded, and the next run announces it again.")
@_wait_option()
def alerts_cmd(db: str | None, config: str | None, rules_path: str, at: dt.datetime | None, show_all: bool,
               no_state: bool, fmt: str, output: str | None, webhook: str | None, wait: float | None) -> None:
    """Evaluate threshold and SLO burn-rate alerts; announce what is new, repeated or resolved.

    Each run compares the alerts with the alert state kept in the database (table alert_state) and records
    the new one: a firing alert is announced once (again after its rule's `renotify` interval), its end
    once, with how long it fired; an alert still firing and announced before is counted, not listed. --all
    shows everything and records nothing; --no-state ignores the state.

    Exit status: 0 when nothing fires, 1 when an alert fires (announced now or before), 2 on an error of
    the rules or the webhook delivery, 3 when the database cannot be used, so that cron can act on it.
    """
    state = None if no_state else "read" if show_all else "record"

    def deliver(report: A.AlertReport) -> None:
        if not webhook or not report.announced:
            return
        status = post_webhook(webhook, report)
        if report.stateful:
            c = report.counts()
            what = f"{len(report.announced)} notice(s): {c['new']} new, {c['repeat']} repeated, {c['resolved']} resolved"
        else:
            what = f"{len(report.firing)} firing alert(s)"
        terminal.note(f"posted {what} to {webhook} (HTTP {status})")

    try:
        rules = A.load_rules(rules_path)
        with _open(db, config, read_only=state != "record", create=False, wait=wait) as lens:
            report = A.evaluate(lens, rules, at, state=state, deliver=deliver)
        report.show_all = show_all or fmt in ("csv", "parquet")
        if state == "record" and report.state_note:
            terminal.note(f"agentlens: alert state {report.state_note}")
        terminal.emit(report, fmt, output)
    except INPUT_ERRORS as e:  # the rules, the webhook; the database's errors are exit 3 (cli.common.Group)
        raise UserError(one_line(e)) from None
    if report.firing:
        sys.exit(1)


COMMANDS = (signals_cmd, rollup_cmd, alerts_cmd)
