"""Rollups: the golden signals pre-aggregated per time bucket, incremental and idempotent.

    from agentlens.metrics import rollups
    rollups.rollup(lens, every="1h")                                 # what changed since last time
    rollups.signals(lens, by=["feature"], every="1d")                # a day's p95 from hourly rows
    rollups.calls(lens, kind="llm", every="1d")                      # per model, from hourly rows

- Incremental and idempotent: `rollup_ledger` remembers each rolled run's start, end and
  `ingested_at`. A rollup re-rolls exactly the buckets touched by runs that are new or were rebuilt
  since (late spans change a run's `ingested_at`, maybe its start: its old and new buckets are both
  re-rolled), each bucket recomputed whole from the raw tables. Running it again adds nothing.
- Mergeable: latency, time-to-first-token and token distributions are stored as log-spaced
  histograms (`MAP(bin, count)`) that merge by adding counts. Percentiles read from merged rows
  follow `quantile_cont` on the bins' values and are within ALPHA = 1% (relative) of the exact
  percentile of the raw values, whatever rows are merged: every value v in a bin is within 1% of
  the bin's value, and an interpolation between two such values stays within 1% of the exact one.
- One transaction: a rollup interrupted half-way leaves the tables as they were. DuckDB lets one
  process write a database at a time; the CLI waits for a running ingest (`--wait`).
- Rollup rows are per bucket and combination of ROLLUP_DIMENSIONS; `rollup_calls` per bucket and
  model / tool; `rollup_buckets` per bucket (most runs in flight at once).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from ..core import patterns
from ..core.dimensions import ROLLUP_DIMENSIONS
from ..core.duck import transaction
from ..core.results import BaseResult, Result
from ..core.timeparse import format_duration, parse_duration
from ..pricing.models import model_table
from ..store import Store
from ..store.ops import write_op
from . import queries as Q
from . import rollup_sql as R
from .query import (
    _PARAM,
    EveryArg,
    Query,
    SignalsError,
    TimeArg,
    display,
    has_failures,
    make_query,
    split_sections,
)


class NotRolledUp(SignalsError):
    """The database has no rollup yet."""


ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
ZERO_BIN = -2147483647
DEFAULT_EVERY = dt.timedelta(hours=1)
ORIGIN = dt.datetime(2000, 1, 3, tzinfo=dt.UTC)  # DuckDB's time_bucket origin (a Monday)


def bin_value(x: float) -> float:
    """What a value reads back as from a histogram (the Python twin of the SQL, for tests)."""
    if x <= 0:
        return 0.0
    b = math.ceil(math.log(x) / math.log(GAMMA))
    return 2 * GAMMA**b / (GAMMA + 1)


@dataclass
class RollupSummary(BaseResult):
    every: dt.timedelta
    changed_runs: int
    buckets: int
    rows: dict[str, int]
    seconds: float
    rebuilt: bool = False

    def result(self) -> Result:
        facts: dict[str, Any] = {
            "bucket": format_duration(self.every),
            "runs new or changed since the last rollup": self.changed_runs,
            "buckets re-rolled": self.buckets,
            **{f"rows written to {k}": v for k, v in self.rows.items()},
            "seconds": round(self.seconds, 2),
        }
        if self.rebuilt:
            facts["rebuilt"] = "every bucket of this width was recomputed"
        return Result("rollup", facts)


def _params(every: dt.timedelta) -> dict[str, Any]:
    return {"width": every, "secs": int(every.total_seconds()), "gamma": GAMMA, "zero_bin": ZERO_BIN}


def _bind(sql: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values a statement names (`$name`): DuckDB refuses values it does not use."""
    used = set(_PARAM.findall(sql))
    return {k: v for k, v in values.items() if k in used}


def _exec(lens: Store, sql: str, values: Mapping[str, Any]) -> int:
    rows = lens.con.execute(sql, _bind(sql, values)).fetchall()
    return int(rows[0][0]) if rows and rows[0] and isinstance(rows[0][0], int) else 0


@write_op("rollup")
def rollup(lens: Store, every: EveryArg = None, rebuild: bool = False) -> RollupSummary:
    """Roll up what changed since the last rollup at this width (default 1h), in one transaction.
    `rebuild`: forget what was rolled at this width and recompute every bucket."""
    t0 = time.perf_counter()
    width = parse_duration(every, "--every") if every is not None else DEFAULT_EVERY
    if dt.timedelta(days=1) % width and width % dt.timedelta(days=1):
        raise SignalsError(f"--every {format_duration(width)}: use a width that divides a day (1m, 5m, 15m, "
                           "1h, 6h, 1d) or a whole number of days, so buckets nest")
    values = {**_params(width), "rate_limit": patterns.RATE_LIMIT}
    fill = {"failures": Q.FAILURES if has_failures(lens) else Q.NO_FAILURES,
            "has_failures": "true" if has_failures(lens) else "false"}
    con = lens.con
    with transaction(con):
        if rebuild:
            for sql in R.REBUILD:
                con.execute(sql, _bind(sql, values))
        con.execute(R.CHANGED, _bind(R.CHANGED, values))
        con.execute(R.DIRTY, _bind(R.DIRTY, values))
        changed = con.execute(R.COUNT_CHANGED).fetchall()[0][0]
        dirty = con.execute(R.COUNT_DIRTY).fetchall()[0][0]
        rows = {"rollup_runs": 0, "rollup_calls": 0, "rollup_buckets": 0}
        if dirty:
            for sql in (R.DELETE_RUNS, R.DELETE_CALLS, R.DELETE_BUCKETS):
                con.execute(sql, _bind(sql, values))
            for table, template in (("rollup_runs", R.INSERT_RUNS), ("rollup_calls", R.INSERT_CALLS),
                                    ("rollup_buckets", R.INSERT_BUCKETS)):
                sql = template.replace("{failures}", fill["failures"]).replace(
                    "{has_failures}", fill["has_failures"])
                rows[table] = _exec(lens, sql, values)
            con.execute(R.DELETE_LEDGER, _bind(R.DELETE_LEDGER, values))
            con.execute(R.INSERT_LEDGER, _bind(R.INSERT_LEDGER, values))
    return RollupSummary(width, int(changed), int(dirty), rows, time.perf_counter() - t0, rebuild)


# --- reading them back ---------------------------------------------------------------------------------
def widths(lens: Store) -> list[dt.timedelta]:
    """The bucket widths rolled up in this database."""
    return [dt.timedelta(seconds=r[0]) for r in lens.con.execute(R.WIDTHS).fetchall()]


def _aligned(t: dt.datetime | None, width: dt.timedelta) -> bool:
    return t is None or (t - ORIGIN) % width == dt.timedelta(0)


def choose_width(lens: Store, q: Query, width: EveryArg = None) -> dt.timedelta:
    """The rolled width to read: the one given, else the widest that divides `every` and on whose
    boundaries `since` and `until` fall."""
    have = widths(lens)
    if not have:
        raise NotRolledUp(f"{lens.path}: nothing rolled up yet (rollup() rolls the runs up)")
    if width is not None:
        w = parse_duration(width, "--rollup-width")
        if w not in have:
            raise SignalsError(f"no rollup of width {format_duration(w)}; rolled: "
                               + ", ".join(format_duration(x) for x in have))
        candidates = [w]
    else:
        candidates = sorted(have, reverse=True)
    for w in candidates:
        if q.every is not None and q.every % w:
            continue
        if not (_aligned(q.since, w) and _aligned(q.until, w)):
            continue
        return w
    raise SignalsError(
        "no rollup fits: --every must be a multiple of a rolled width and --since / --until fall on its "
        "bucket boundaries (rolled: " + ", ".join(format_duration(x) for x in have) + ")"
    )


def covers(lens: Store, q: Query, width: EveryArg = None) -> dt.timedelta | None:
    """The rolled width that answers `q` as the raw tables would (within ALPHA), or None: the query is by
    run start, groups and filters by ROLLUP_DIMENSIONS only, a rolled width fits its buckets and window
    (`choose_width`), and no run touching the window is new or changed since that width was rolled up."""
    if q.time != "start" or any(d not in ROLLUP_DIMENSIONS for d in (*q.by, *(k for k, _ in q.where))):
        return None
    try:
        w = choose_width(lens, q, width)
    except SignalsError:
        return None
    values = {"secs": int(w.total_seconds()), "since": q.since, "until": q.until}
    stale = lens.con.execute(R.STALE_IN_WINDOW, _bind(R.STALE_IN_WINDOW, values)).fetchall()[0][0]
    return w if stale == 0 else None


def _keys_sql(keys: tuple[str, ...], alias: str = "") -> str:
    return "".join(f'{alias}"{k}", ' for k in keys)


def _join_on(keys: tuple[str, ...], a: str, b: str) -> str:
    return " AND ".join(f'{a}."{k}" IS NOT DISTINCT FROM {b}."{k}"' for k in keys) or "true"


def signals(
    lens: Store,
    by: str | Iterable[str] | None = None,
    every: EveryArg = None,
    since: TimeArg = None,
    until: TimeArg = None,
    where: Mapping[str, str | None] | None = None,
    *,
    width: EveryArg = None,
    query: Query | None = None,
) -> pl.DataFrame:
    """The golden signals read from the rollups: the same columns as `signals.signals`, with
    percentiles within ALPHA of the exact ones. Not available from rollups (NULL):
    runs_over_budget, and max_concurrency when grouped by a dimension or filtered."""
    q = query if query is not None else make_query(by, every, since, until, where)
    for d in (*q.by, *(k for k, _ in q.where)):
        if d not in ROLLUP_DIMENSIONS:
            raise SignalsError(f"rollups are kept by {', '.join(ROLLUP_DIMENSIONS)}; {d!r} is not one of them "
                               "(use the raw signals for it)")
    w = choose_width(lens, q, width)
    keys = q.keys
    bucket = "time_bucket($width_q::INTERVAL, bucket_start)" if q.every else "NULL::TIMESTAMPTZ"
    conc = R.NO_CONC
    if not q.by and not q.where:
        conc = R.READ_CONC.format(bucket=bucket)
    sql = R.READ_RUNS.format(
        bucket=bucket, conc=conc,
        where="".join(f' AND "{name}" IS NOT DISTINCT FROM $w{i}' for i, (name, _) in enumerate(q.where)),
        keys_sel=_keys_sql(keys), s_keys=_keys_sql(keys, "s."),
        join_qp=_join_on(keys, "s", "qp"),
        join_conc=_join_on(tuple(k for k in keys if k == "bucket"), "s", "c") if conc != R.NO_CONC else "false",
        order=("ORDER BY " + ", ".join(f's."{k}"' for k in keys)) if keys else "",
    )
    values = {**_params(w), "width_q": q.every, "since": q.since, "until": q.until,
              **{f"w{i}": v for i, (_, v) in enumerate(q.where)}}
    return lens.sql(sql, _bind(sql, values))


def calls(
    lens: Store,
    kind: str = "llm",
    every: EveryArg = None,
    since: TimeArg = None,
    until: TimeArg = None,
    *,
    width: EveryArg = None,
) -> pl.DataFrame:
    """LLM calls per model (`kind="llm"`) or tool calls per tool (`kind="tool"`) from the rollups:
    calls, errors, rate limits, latency and time-to-first-token percentiles, tokens and
    context-window utilisation (p95 of input tokens per call, and the largest, over the window)."""
    if kind not in ("llm", "tool"):
        raise SignalsError(f"kind must be 'llm' or 'tool', got {kind!r}")
    q = make_query(None, every, since, until)
    w = choose_width(lens, q, width)
    keys = (*q.keys, "name")
    bucket = "time_bucket($width_q::INTERVAL, bucket_start)" if q.every else "NULL::TIMESTAMPTZ"
    models = "(SELECT NULL::VARCHAR AS model, NULL::VARCHAR AS provider, NULL::BIGINT AS context_window WHERE false)"
    registered = False
    if kind == "llm":
        pairs = lens.con.execute(
            "SELECT DISTINCT name, provider FROM rollup_calls WHERE kind = 'llm' AND bucket_seconds = ?",
            [int(w.total_seconds())]).fetchall()
        table = model_table(((m, p) for m, p in pairs), lens.config)
        lens.con.register("_rollup_models", table.select("model", "provider", "context_window").to_arrow())
        models, registered = "_rollup_models", True
    sql = R.READ_CALLS.format(
        bucket=bucket, keys_sel=_keys_sql(keys), s_keys=_keys_sql(keys, "s."),
        join_qp=_join_on(keys, "s", "qp"), models=models, keys_order=_keys_sql(q.keys, "s."),
    )
    values = {**_params(w), "width_q": q.every, "since": q.since, "until": q.until, "kind": kind}
    try:
        df = lens.sql(sql, _bind(sql, values))
    finally:
        if registered:
            lens.con.unregister("_rollup_models")
    df = df.rename({"name": "model" if kind == "llm" else "tool"})
    if kind == "tool":
        df = df.drop("rate_limited_calls", "rate_limited_share", "ttft_calls", "ttft_p50_ms", "ttft_p95_ms",
                     "input_tokens", "output_tokens", "context_window", "context_utilization_p95",
                     "context_utilization_max")
    return df


def report(lens: Store, by: str | Iterable[str] | None = None, every: EveryArg = None,
           since: TimeArg = None, until: TimeArg = None, width: EveryArg = None, *,
           query: Query | None = None) -> Result:
    """The golden signals from the rollups, as a Result (see signals.report for the raw version). The calls
    per model and tool are rolled without run dimensions: a `where` filter needs the raw tables."""
    q = query if query is not None else make_query(by, every, since, until)
    if q.where:
        raise SignalsError("the rollups keep LLM and tool calls without run dimensions: a report filtered by "
                           "one needs the raw tables (source='raw')")
    w = choose_width(lens, q, width)
    df = signals(lens, query=q, width=w)
    facts = {"read from": f"rollups of {format_duration(w)} (percentiles within {ALPHA:.0%} of exact)",
             "runs": int(df["runs"].sum()) if df.height else 0}
    tables = {f"{name} per {', '.join(q.keys) or 'window'}": t
              for name, t in split_sections(df, q.keys).items()}
    tables["LLM calls by model"] = display(calls(lens, "llm", None, q.since, q.until, width=w).select(
        "model", "calls", "errors", "error_rate", "rate_limited_share", "latency_p50_ms", "latency_p95_ms",
        "ttft_p95_ms", "context_utilization_p95", "context_utilization_max"))
    tables["tool calls by tool"] = display(calls(lens, "tool", None, q.since, q.until, width=w).select(
        "tool", "calls", "errors", "error_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms"))
    return Result("golden signals (rollups)", facts, tables)
