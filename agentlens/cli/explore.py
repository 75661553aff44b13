"""`agentlens runs`, `trace`, `session`, `compare`, `quarantine`, `index`: thin commands over agentlens.explore,
printed by present/explore.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from .. import explore
from ..core.dimensions import GROUP_DIMENSIONS
from ..explore import compare as C
from ..explore import quarantine as Q
from ..explore import search as S
from ..explore import session as SS
from ..explore import trace as T
from ..present import explore as V
from ..present import terminal
from .common import (
    CONFIG_OPTION,
    DB_OPTION,
    DURATION,
    ENGINE_OPTION,
    UserError,
    _open,
    format_option,
    output_option,
    since_option,
    until_option,
    where_option,
)

SORTS = ("started_at", "duration_ms", "cost_usd", "total_tokens", "error_count", "llm_calls", "tool_calls")
DIMS = ", ".join(GROUP_DIMENSIONS)
DIM_OPTIONS = (("feature", "feature"), ("customer", "customer_id"), ("user", "user_id"), ("session", "session_id"),
               ("environment", "environment"), ("model", "model"), ("service", "service_name"),
               ("agent", "agent_name"))


def _dimension_options(fn: click.decorators.FC) -> click.decorators.FC:
    for opt, col in reversed(DIM_OPTIONS):
        fn = click.option(f"--{opt}", f"dim_{col}", metavar="VALUE", default=None,
                          help=f"Only runs with this {col} ('(none)': without one).")(fn)
    return fn


def _filter(since: dt.datetime | None, until: dt.datetime | None, status: str | None, mode: str | None,
            where_: dict[str, str], dims: dict[str, str | None], min_cost: float | None, max_cost: float | None,
            min_ms: float | None, max_ms: float | None, search: str | None) -> explore.RunFilter:
    equals = {col.removeprefix("dim_"): v for col, v in dims.items() if v is not None}
    w = _where(where_, status)
    return explore.RunFilter(since=since, until=until, status=w["status"], failure_mode=mode,
                             equals={**equals, **w["equals"]}, min_cost_usd=min_cost, max_cost_usd=max_cost,
                             min_duration_ms=min_ms, max_duration_ms=max_ms, text=search)


def _check_where(name: str) -> None:
    """`--where` takes what every command's `--where` takes: a run dimension, attr:/json: keys, or status."""
    if name != "status":
        explore.runs.check_dimension(name)


def _where(where_: dict[str, str], status: str | None = None) -> dict[str, Any]:
    """RunFilter fields of `--where` pairs: `status=...` is the filter's status, the rest its dimensions."""
    rest = dict(where_)
    status = rest.pop("status", None) or status
    if status not in (None, "ok", "error"):
        raise click.BadParameter(f"status is ok or error, not {status!r}", param_hint="'--where'")
    return {"status": status, "equals": rest}


@click.command(name="runs")
@DB_OPTION
@ENGINE_OPTION
@CONFIG_OPTION
@since_option()
@until_option()
@click.option("--status", type=click.Choice(["ok", "error"]), default=None, help="Only runs that ended so.")
@click.option("--mode", default=None, metavar="MODE", help="Only runs with this failure mode (agentlens failures).")
@_dimension_options
@where_option(_check_where)
@click.option("--min-cost", type=float, default=None, metavar="USD", help="Only runs costing at least USD.")
@click.option("--max-cost", type=float, default=None, metavar="USD", help="Only runs costing at most USD.")
@click.option("--min-duration", type=DURATION, default=None, metavar="DURATION",
              help="Only runs that took at least this long (500ms is not a form: 0.5s, 2s, 1m).")
@click.option("--max-duration", type=DURATION, default=None, metavar="DURATION", help="Only runs at most this long.")
@click.option("--search", "-s", default=None, metavar="TEXT",
              help="Only runs holding these words, in this order, anywhere: input, output, every LLM message, tool "
                   "arguments and results, error messages (case-insensitive; punctuation ignored).")
@click.option("--sort", type=click.Choice(SORTS), default="started_at", show_default=True, help="Sort by.")
@click.option("--asc", is_flag=True, help="Ascending (default: descending, newest / largest first).")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True, help="Runs to list.")
@format_option("table: the list a person scans (id, start, name, status, duration, cost, tokens, failures, "
               "preview of the last user message); json, csv, parquet: the same runs with every listed column.")
@output_option()
def runs_cmd(db: str | None, config: str | None, since: dt.datetime | None, until: dt.datetime | None,
             status: str | None, mode: str | None, where_: dict[str, str], min_cost: float | None,
             max_cost: float | None, min_duration: dt.timedelta | None, max_duration: dt.timedelta | None,
             search: str | None, sort: str, asc: bool, limit: int, fmt: str, output: str | None,
             **dims: str | None) -> None:
    """List and search runs: by time, status, failure mode, any dimension (--feature, --customer ...,
    --where attr:KEY=VALUE), cost and duration, and --search TEXT over everything a run holds.

    Example: agentlens runs --since 2h --status error --search "insufficient merchant balance"

    Hand a run id to `agentlens trace RUN_ID`, a session to `agentlens session ID`.
    """
    flt = _filter(since, until, status, mode, where_, dims, min_cost, max_cost,
                  min_duration.total_seconds() * 1000 if min_duration else None,
                  max_duration.total_seconds() * 1000 if max_duration else None, search)
    with _open(db, config, read_only=True) as lens:
        page = explore.find_runs(lens, flt, sort=sort, descending=not asc, limit=limit, describe=True)
        total = explore.count_runs(lens, flt) if fmt == "table" else page.height
    if fmt != "table":
        terminal.emit(page.drop("input"), fmt, output)
        return
    terminal.show(V.runs_view(page, total, terminal.console().width))


@click.command(name="trace")
@click.argument("run_id")
@DB_OPTION
@ENGINE_OPTION
@CONFIG_OPTION
@click.option("--full", is_flag=True, help="Also each span's messages, tool arguments and results.")
@click.option("--max-text", type=click.IntRange(min=20), default=2000, show_default=True,
              help="Characters of one text shown with --full before it is cut.")
@format_option("table: the span tree; json, csv, parquet: one row per span in tree order (depth, offset_ms, ...).")
@output_option()
def trace_cmd(run_id: str, db: str | None, config: str | None, full: bool, max_text: int, fmt: str,
              output: str | None) -> None:
    """One run's spans as a tree: nesting, start offset and duration with a bar, kind, model, tokens,
    each call's cost, errors, and the failure evidence marked on its span (★)."""
    with _open(db, config, read_only=True) as lens:
        try:
            run = T.run_header(lens, run_id)
        except KeyError:
            raise UserError(f"no run {run_id!r} in {lens.path} (agentlens runs lists them)") from None
        layout = T.trace_layout(lens, run_id)
        marks = T.failure_marks(lens, run_id)
        details = {r["span_id"]: r for r in lens.spans(run_id).iter_rows(named=True)} if full else None
    if fmt != "table":
        terminal.emit(layout, fmt, output)
        return
    width = terminal.console().width
    terminal.show(V.trace_view(run, layout, marks, width, details, full, max_text))


@click.command(name="session")
@click.argument("session_id")
@DB_OPTION
@ENGINE_OPTION
@CONFIG_OPTION
@format_option("table: the session's totals and its runs in order; json: the same; csv, parquet: the runs.")
@output_option()
def session_cmd(session_id: str, db: str | None, config: str | None, fmt: str, output: str | None) -> None:
    """A conversation's runs in the order they started, with their totals (runs, failures, time, cost,
    tokens, calls)."""
    with _open(db, config, read_only=True) as lens:
        try:
            s = SS.session(lens, session_id)
        except KeyError:
            raise UserError(f"no runs of session {session_id!r} in {lens.path} "
                            "(agentlens runs --where session_id=... or the session column of agentlens runs "
                            "--format csv lists them)") from None
    if fmt != "table":
        terminal.emit(s, fmt, output)
        return
    terminal.show(V.session_view(s, terminal.console().width))


@click.command(name="compare")
@DB_OPTION
@ENGINE_OPTION
@CONFIG_OPTION
@click.option("--period", type=DURATION, default=None, metavar="DURATION",
              help="Two windows: the PERIOD before --until (default now) against the PERIOD before that "
                   "(7d: this week against last).")
@until_option("Windows end")
@click.option("--dimension", "dimension", default=None, metavar="DIM",
              help=f"Two values of a dimension: {DIMS}, attr:KEY (e.g. attr:app.release) or json:$.PATH.")
@click.option("--values", "values", default=None, metavar="A,B", help="The two values of --dimension.")
@since_option("With --dimension: runs started")
@where_option(_check_where)
@format_option("table: side by side with the difference and a note where counts are too small; json, csv, "
               "parquet: the rows (metric, unit, a, b, difference, change, p_value, note).")
@output_option()
def compare_cmd(db: str | None, config: str | None, period: dt.timedelta | None, until: dt.datetime | None,
                dimension: str | None, values: str | None, since: dt.datetime | None, where_: dict[str, str],
                fmt: str, output: str | None) -> None:
    """Compare two windows (--period 7d: this week against last) or two values of a dimension
    (--dimension model --values gpt-4o,gpt-4o-mini): runs, error and failure rates per mode, latency
    percentiles, cost per run, with the difference.

    A rate's difference is tested with the two-proportion z-test (p-value; "too few to tell" when a cell
    expects under 5 runs), a mean's with Welch's z (30 runs a side), a percentile needs 1/(1-p) runs a
    side (20 for p95).
    """
    if (period is None) == (dimension is None):
        raise click.UsageError("give either --period DURATION (two windows) or --dimension DIM --values A,B")
    with _open(db, config, read_only=True) as lens:
        if period is not None:
            end = until or dt.datetime.now(dt.UTC)
            mid, start = end - period, end - 2 * period
            a = C.Side(f"{V.fmt_time(start, '%Y-%m-%d %H:%M')} to {V.fmt_time(mid, '%Y-%m-%d %H:%M')}",
                       explore.RunFilter(since=start, until=mid, **_where(where_)))
            b = C.Side(f"{V.fmt_time(mid, '%Y-%m-%d %H:%M')} to {V.fmt_time(end, '%Y-%m-%d %H:%M')}",
                       explore.RunFilter(since=mid, until=end, **_where(where_)))
            result = C.compare(lens, a, b)
        else:
            parts = [v for v in (values or "").split(",")]
            if len(parts) != 2 or not all(p.strip() for p in parts):
                raise click.UsageError("--values takes two values: A,B")
            assert dimension is not None
            explore.runs.check_dimension(dimension)
            result = C.compare_values(lens, dimension, parts[0].strip(), parts[1].strip(),
                                      explore.RunFilter(since=since, until=until, **_where(where_)))
    if fmt != "table":
        terminal.emit(result, fmt, output)
        return
    runs_row = result.rows.row(0, named=True)  # the first row counts the runs of each side
    if not runs_row["a"] and not runs_row["b"]:
        terminal.say("no runs match on either side")
        return
    terminal.show(V.compare_view(result))


@click.command(name="quarantine")
@DB_OPTION
@ENGINE_OPTION
@click.option("--kind", default=None, metavar="KIND", help="Only this kind (malformed_json, missing_field, ...).")
@click.option("--file", "file", default=None, metavar="TEXT", help="Only files whose path contains TEXT.")
@since_option("Records quarantined")
@until_option("Records quarantined")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True, help="Records to list.")
@click.option("--excerpt", type=click.IntRange(min=10), default=Q.EXCERPT_CHARS, show_default=True,
              help="Characters of each raw record shown.")
@format_option("table: counts per file and kind, then the newest records; json, csv, parquet: the records.")
@output_option()
def quarantine_cmd(db: str | None, kind: str | None, file: str | None, since: dt.datetime | None,
                   until: dt.datetime | None, limit: int, excerpt: int, fmt: str, output: str | None) -> None:
    """What could not be read: per file and kind, then each record with its file, line, kind, reason
    and an excerpt of the raw record."""
    with _open(db, read_only=True) as lens:
        records = Q.records(lens, kind, file, since, until, limit, excerpt)
        counts = Q.counts(lens, kind, file, since, until) if fmt == "table" else None
    if fmt != "table":
        terminal.emit(records, fmt, output)
        return
    assert counts is not None
    terminal.show(V.quarantine_view(counts, records))


@click.command(name="index")
@DB_OPTION
@CONFIG_OPTION
@click.option("--rebuild", is_flag=True, help="Make the index again from nothing (else: add what it lacks).")
def index_cmd(db: str | None, config: str | None, rebuild: bool) -> None:
    """Bring the search index of `agentlens runs --search` up to date with the database (every ingest
    does), or make it again with --rebuild. Runs where the database is held."""
    with _open(db, config, create=False) as lens:
        st = S.sync(lens, rebuild=rebuild)
    if st.path is None:
        terminal.say("an in-memory database has no search index (searches scan)")
        return
    terminal.say(f"search index: {st.documents:,} runs, up to the runs ingested "
                 f"{V.fmt_time(dt.datetime.fromtimestamp((st.watermark_us or 0) / 1e6, dt.UTC), '%Y-%m-%d %H:%M:%S')}"
                 f" UTC ({st.path})")


COMMANDS: tuple[click.Command, ...] = (runs_cmd, trace_cmd, session_cmd, compare_cmd, quarantine_cmd, index_cmd)
