"""The four golden signals for agents, by any run dimension and time bucket.

    from agentlens.metrics import signals
    signals.signals(lens, by=["feature"], every="1h", since="2026-11-10")   # polars DataFrame
    signals.report(lens, every="1d")                                          # Result: renders itself

- Latency: p50/p90/p95/p99 of run duration (successful and failed runs apart), of LLM calls per
  model, of tool calls per tool, and time to first token where recorded.
- Traffic: runs, LLM calls, tool calls, input/output tokens, cost.
- Errors: run error rate; errors by type, by tool, by model; implicit errors (runs with a failure
  mode) when the database has the `failures` table of the classifier.
- Saturation: share of LLM calls rejected for rate limits, context-window utilisation (input tokens
  / the model's context window), most runs in flight at once, spend against the `[budgets]` caps.

Every number is computed by DuckDB from the named SQL in `queries.py`, in one statement per table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import polars as pl

from ..core import patterns
from ..core.results import Result
from ..core.timeparse import format_duration
from ..pricing.budgets import Budgets, load_budgets
from ..pricing.models import model_table
from ..store import Store
from . import queries as Q
from . import rollups
from .query import _OPTIONAL as _OPTIONAL
from .query import _PARAM as _PARAM
from .query import DIMENSIONS as DIMENSIONS
from .query import GROUP_DIMENSIONS as GROUP_DIMENSIONS
from .query import SECTIONS as SECTIONS
from .query import SIGNAL_COLUMNS as SIGNAL_COLUMNS
from .query import EveryArg as EveryArg
from .query import Query as Query
from .query import SignalsError as SignalsError
from .query import TimeArg as TimeArg
from .query import display as display
from .query import has_failures as has_failures
from .query import make_query as make_query
from .query import split_sections as split_sections

# --- rendering the named SQL ------------------------------------------------------------------------


def _render(template: str, q: Query, *, has_failures: bool = False) -> tuple[str, dict[str, Any]]:
    """Fill a template's slots with fixed fragments and checked column names; bind every value."""
    t = Q.TIME_START if q.time == "start" else Q.TIME_END
    dims = q.by
    keys = q.keys
    where_sql = "".join(f' AND "{name}" IS NOT DISTINCT FROM $w{i}' for i, (name, _) in enumerate(q.where))
    slots = {
        "t": t,
        "bucket": Q.BUCKET.format(t="t") if q.every else Q.NO_BUCKET,
        "bucket_ts": Q.BUCKET.format(t="ts") if q.every else Q.NO_BUCKET,
        "boundary": ("greatest(bucket, coalesce($since::TIMESTAMPTZ, bucket))" if q.every
                     else "$since::TIMESTAMPTZ"),
        "dims": "".join(f', "{d}"' for d in dims),
        "kdims": "".join(f', k."{d}"' for d in dims),
        "partition": ("PARTITION BY " + ", ".join(f'"{d}"' for d in dims)) if dims else "",
        "where": where_sql,
        "keys_sel": "".join(f'"{k}", ' for k in keys),
        "keys_order": "".join(f'"{k}", ' for k in keys),
        "order": ("ORDER BY " + ", ".join(f'"{k}"' for k in keys)) if keys else "",
        "failures": Q.FAILURES if has_failures else Q.NO_FAILURES,
        "has_failures": "true" if has_failures else "false",
        "error_type": patterns.ERROR_TYPE_SQL,
    }
    sql = template.format(**slots)
    values: dict[str, Any] = {
        "since": q.since, "until": q.until, "width": q.every, "rate_limit": patterns.RATE_LIMIT,
        "run_cap": q.run_cap, **{f"w{i}": v for i, (_, v) in enumerate(q.where)},
    }
    used = set(_PARAM.findall(sql))
    return sql, {k: v for k, v in values.items() if k in used}


class _Models:
    """`_signal_models(model, provider, context_window)` registered for the duration of a query."""

    def __init__(self, lens: Store):
        self.lens = lens

    def __enter__(self) -> _Models:
        pairs = self.lens.con.execute(Q.MODEL_PAIRS).fetchall()
        table = model_table(((m, p) for m, p in pairs), self.lens.config)
        self.lens.con.register("_signal_models", table.select("model", "provider", "context_window").to_arrow())
        return self

    def __exit__(self, *exc: object) -> None:
        self.lens.con.unregister("_signal_models")


def _run(lens: Store, template: str, q: Query, **kw: Any) -> pl.DataFrame:
    sql, params = _render(template, q, **kw)
    return lens.sql(sql, params)


def _q(q: Query | None, kw: dict[str, Any]) -> Query:
    return q if q is not None else make_query(**kw)


# --- raw tables or rollups ------------------------------------------------------------------------------------
Source = Literal["auto", "raw", "rollups"]
SOURCES = ("auto", "raw", "rollups")
_ROLLUPS = dt.timedelta(0)  # "read the rollups at the width they choose"


def _rolled(lens: Store, q: Query, source: str, what: str, kept: bool = True) -> dt.timedelta | None:
    """Where to read `what` from: None for the raw tables, else the rollups (at a width, or _ROLLUPS to let
    them choose and say why they cannot). `auto` reads the rollups when they cover the query
    (rollups.covers: by run start, rolled dimensions, a width that fits, nothing new since the rollup)."""
    if source not in SOURCES:
        raise SignalsError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if source == "raw" or (source == "auto" and not kept):
        return None
    if not kept:
        raise SignalsError(f"{what} is not kept in the rollups: read it from the raw tables (source='raw')")
    if source == "rollups":
        if q.time != "start":
            raise SignalsError("rollups bucket runs by their start: time='end' needs the raw tables")
        return _ROLLUPS
    return rollups.covers(lens, q)


# --- public functions ------------------------------------------------------------------------------------
def signals(
    lens: Store,
    by: str | Iterable[str] | None = None,
    every: EveryArg = None,
    since: TimeArg = None,
    until: TimeArg = None,
    where: Mapping[str, str | None] | None = None,
    *,
    time: str = "start",
    query: Query | None = None,
    source: Source = "raw",
) -> pl.DataFrame:
    """The golden signals, one row per time bucket (when `every` is given) and group of `by`.

    `source`: "raw" (the runs and spans), "rollups" (the rollup tables: fast on large databases,
    percentiles within rollups.ALPHA, runs_over_budget and grouped max_concurrency NULL), or "auto"
    (the rollups when they cover the query, see rollups.covers, else the raw tables).

    Columns: the keys (`bucket`, then the `by` dimensions), then `SIGNAL_COLUMNS`:
    runs, errors, error_rate, implicit_errors / implicit_error_rate (NULL until the database has
    failure classification), timed_runs (runs with a known duration), latency_p50/p90/p95/p99_ms of
    run duration, latency_ok_p95_ms / latency_error_p95_ms (successful and failed runs apart),
    llm_calls, tool_calls, input_tokens, output_tokens, cost_usd, rate_limited_calls,
    rate_limited_share (of LLM calls; NULL without calls), rate_limited_runs (runs with an error
    span rejected for a rate limit, whatever its kind: agent_runs rows too), max_concurrency (most
    runs of the group in flight at once during the bucket; runs without an end time are not
    counted), runs_over_budget (runs over their budget: above the `[budgets]` run cap, `run_usd`, else
    `run_usd_hard`; NULL when no cap is set).
    """
    q = _q(query, {"by": by, "every": every, "since": since, "until": until, "where": where, "time": time})
    if (w := _rolled(lens, q, source, "the signals")) is not None:
        return rollups.signals(lens, query=q, width=w or None)
    budgets = load_budgets(lens.config)
    q = Query(q.by, q.every, q.since, q.until, q.where, q.time, budgets.run_cap)
    return _run(lens, Q.SIGNALS, q, has_failures=has_failures(lens))


def latency(lens: Store, by: str | Iterable[str] | None = None, every: EveryArg = None,
            since: TimeArg = None, until: TimeArg = None, where: Mapping[str, str | None] | None = None,
            *, query: Query | None = None, source: Source = "raw") -> pl.DataFrame:
    """Run duration percentiles with successful (`ok`) and failed (`error`) runs apart (raw tables only)."""
    q = _q(query, {"by": by, "every": every, "since": since, "until": until, "where": where})
    _rolled(lens, q, source, "run latency by status", kept=False)
    return _run(lens, Q.LATENCY, q)


def llm_calls(lens: Store, every: EveryArg = None, since: TimeArg = None, until: TimeArg = None,
              where: Mapping[str, str | None] | None = None, *, query: Query | None = None,
              source: Source = "raw") -> pl.DataFrame:
    """LLM calls per model: traffic, errors, rate limits, latency (ok and failed apart), time to
    first token where recorded, tokens, and context-window utilisation (p95 and max). `source` as for
    `signals` (the rollups keep calls by model, not by run dimension: `where` needs the raw tables)."""
    q = _q(query, {"every": every, "since": since, "until": until, "where": where})
    q = Query((), q.every, q.since, q.until, q.where, q.time)
    if (w := _rolled(lens, q, source, "LLM calls by run dimension", kept=not q.where)) is not None:
        return rollups.calls(lens, "llm", q.every, q.since, q.until, width=w or None)
    with _Models(lens):
        return _run(lens, Q.LLM_CALLS, q)


def tool_calls(lens: Store, every: EveryArg = None, since: TimeArg = None, until: TimeArg = None,
               where: Mapping[str, str | None] | None = None, *, query: Query | None = None,
               source: Source = "raw") -> pl.DataFrame:
    """Tool calls per tool: calls, errors, error rate, latency percentiles (ok and failed apart). `source`
    as for `llm_calls`."""
    q = _q(query, {"every": every, "since": since, "until": until, "where": where})
    q = Query((), q.every, q.since, q.until, q.where, q.time)
    if (w := _rolled(lens, q, source, "tool calls by run dimension", kept=not q.where)) is not None:
        return rollups.calls(lens, "tool", q.every, q.since, q.until, width=w or None)
    return _run(lens, Q.TOOL_CALLS, q)


def errors_by_type(lens: Store, since: TimeArg = None, until: TimeArg = None,
                   where: Mapping[str, str | None] | None = None, *, query: Query | None = None,
                   source: Source = "raw") -> pl.DataFrame:
    """Error spans by error type and span kind, with the runs they touched and how many of those
    runs failed. A failure that propagates (an LLM call's RateLimitError re-raised by the agent
    span) shows on both kinds; `runs` counts each run once. `example` is untrusted text. Raw tables only."""
    q = _q(query, {"since": since, "until": until, "where": where})
    _rolled(lens, q, source, "errors by type", kept=False)
    return _run(lens, Q.ERRORS_BY_TYPE, Query((), None, q.since, q.until, q.where, q.time))


def budget_utilization(lens: Store, since: TimeArg = None, until: TimeArg = None,
                       budgets: Budgets | None = None, *, source: Source = "raw") -> tuple[pl.DataFrame, dict[str, Any]]:
    """Spend against the configured caps: per UTC day and capped dimension value (`[budgets.daily_usd]`,
    `"*"` for values without their own cap), and per run (`run_usd`, `run_usd_hard`).
    Returns (daily table, run facts); both are empty when no cap is configured. Raw tables only."""
    b = budgets if budgets is not None else load_budgets(lens.config)
    q = make_query(since=since, until=until)
    _rolled(lens, q, source, "budget utilisation", kept=False)
    daily = pl.DataFrame()
    if b.daily_usd:
        dims = tuple(b.daily_usd)
        caps = pl.DataFrame(
            [(d, v, c) for d, caps in b.daily_usd.items() for v, c in caps.items()],
            schema={"dimension": pl.String, "value": pl.String, "cap_usd": pl.Float64}, orient="row",
        )
        # the dimension names were checked against budgets.DAILY_DIMENSIONS when the config was read
        sql = Q.BUDGET_DAILY.format(dims="".join(f', "{d}"' for d in dims),
                                    unpivot=", ".join(f'"{d}"' for d in dims))
        lens.con.register("_budget_caps", caps.to_arrow())
        try:
            daily = lens.sql(sql, {"since": q.since, "until": q.until})
        finally:
            lens.con.unregister("_budget_caps")
    facts: dict[str, Any] = {}
    if b.run_usd is not None or b.run_usd_hard is not None:
        row = lens.sql(Q.BUDGET_RUNS, {"since": q.since, "until": q.until, "run_usd": b.run_usd,
                                       "run_usd_hard": b.run_usd_hard, "run_cap": b.run_cap}).row(0, named=True)
        facts = {k: row[k] for k in row if row[k] is not None or k.startswith("runs")}
    return daily, facts


# The tables by name (`agentlens signals --table NAME`): each takes (lens, query=, source=).
TABLES: dict[str, Callable[..., pl.DataFrame]] = {"signals": signals, "latency": latency, "llm": llm_calls, "tools": tool_calls, "errors": errors_by_type}


# --- the report -----------------------------------------------------------------------------------------------
def _window_text(q: Query) -> str:
    if q.since is None and q.until is None:
        return "all runs"
    a = f"{q.since:%Y-%m-%d %H:%M:%S}Z" if q.since else "the first run"
    b = f"{q.until:%Y-%m-%d %H:%M:%S}Z" if q.until else "the last run"
    return f"runs started from {a} to {b} (excluded)"


def report(
    lens: Store,
    by: str | Iterable[str] | None = None,
    every: EveryArg = None,
    since: TimeArg = None,
    until: TimeArg = None,
    where: Mapping[str, str | None] | None = None,
    *,
    source: Source = "raw",
) -> Result:
    """Every golden signal as one Result: headline facts, the signals per key (split into traffic,
    errors, latency and saturation), then run latency by status, LLM calls per model, tool calls
    per tool, errors by type and, when caps are configured, budget utilisation. From the rollups
    (`source`, as for `signals`): the signals and the calls per model and tool (rollups.report)."""
    q = make_query(by=by, every=every, since=since, until=until, where=where)
    if (w := _rolled(lens, q, source, "the report filtered by run dimension (LLM and tool calls)",
                     kept=not q.where)) is not None:
        return rollups.report(lens, query=q, width=w or None)
    main = signals(lens, query=q)
    total = signals(lens, query=Query((), None, q.since, q.until, q.where))
    facts: dict[str, Any] = {"window": _window_text(q)}
    if q.where:
        facts["filter"] = ", ".join(f"{k} = {v}" for k, v in q.where)
    if total.height == 0:
        facts["runs"] = 0
        return Result("golden signals", facts, {})
    t = total.row(0, named=True)
    facts.update({
        "runs": t["runs"],
        "error rate": share_text(t["error_rate"], t["errors"], "runs"),
        "run latency p50 / p95 / p99 (ms)": latency_text(t),
        "LLM calls": t["llm_calls"],
        "rate-limited LLM calls": share_text(t["rate_limited_share"], t["rate_limited_calls"], "calls"),
        "cost (USD)": t["cost_usd"],
        "most runs in flight at once": t["max_concurrency"],
    })
    if t["implicit_errors"] is None:
        facts["implicit errors"] = "not available (no failure classification in this database)"
    else:
        facts["implicit errors (runs with a failure mode)"] = share_text(t["implicit_error_rate"], t["implicit_errors"], "runs")
    if q.every:
        facts["bucket"] = format_duration(q.every)
    tables = {f"{name} per {', '.join(q.keys) or 'window'}": df
              for name, df in split_sections(main, q.keys).items()} if q.keys else \
        split_sections(main, ())
    whole = Query((), None, q.since, q.until, q.where)
    tables["run latency by status (ms)"] = display(latency(lens, query=whole))
    tables["LLM calls by model"] = display(llm_calls(lens, query=whole).select(
        "model", "calls", "errors", "error_rate", "rate_limited_share", "latency_p50_ms",
        "latency_p95_ms", "ttft_p95_ms", "context_utilization_p95", "context_utilization_max"))
    tables["tool calls by tool"] = display(tool_calls(lens, query=whole).select(
        "tool", "calls", "errors", "error_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms"))
    tables["errors by type"] = errors_by_type(lens, query=whole)
    daily, run_facts = budget_utilization(lens, q.since, q.until)
    if daily.height:
        tables["daily spend against [budgets.daily_usd]"] = display(daily)
    for k, v in run_facts.items():
        facts[f"budget: {k.replace('_', ' ')}"] = v
    return Result("golden signals", facts, tables)


def share_text(rate: float | None, n: int | None, unit: str) -> str:
    """A rate with its count: `12.5% (3 runs)`, `no runs` without any."""
    if rate is None:
        return f"no {unit}"
    return f"{rate:.1%} ({n:,} {unit})"


def latency_text(row: Mapping[str, Any]) -> str:
    """A signals row's run latency p50 / p95 / p99 in ms, with how many runs had a duration."""
    vals = [row["latency_p50_ms"], row["latency_p95_ms"], row["latency_p99_ms"]]
    if any(v is None for v in vals):
        return "no run with a known duration"
    return " / ".join(f"{v:,.0f}" for v in vals) + f" ({row['timed_runs']:,} timed runs)"
