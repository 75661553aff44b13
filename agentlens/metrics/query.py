"""What every golden-signals function takes and gives: the checked arguments (`Query`, `make_query`),
the columns of the signals table and its view for reading (`display`, `split_sections`). Shared by the
raw signals (signals.py), the rollups (rollups.py) and the alerts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl

from ..core.dimensions import GROUP_DIMENSIONS as GROUP_DIMENSIONS
from ..core.dimensions import RUN_DIMENSIONS
from ..core.timeparse import parse_duration, parse_window
from ..store import Store
from . import queries as Q

# Run columns one may filter by (identifiers are only ever taken from this list), and of those the
# group-by keys (status is a filter: the signals already split by it).
DIMENSIONS = RUN_DIMENSIONS

SIGNAL_COLUMNS = (
    "runs", "errors", "error_rate", "implicit_errors", "implicit_error_rate", "timed_runs",
    "latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms", "latency_ok_p95_ms",
    "latency_error_p95_ms", "llm_calls", "tool_calls", "input_tokens", "output_tokens", "cost_usd",
    "rate_limited_calls", "rate_limited_share", "rate_limited_runs", "max_concurrency",
    "runs_over_budget",
)

# The terminal / HTML view splits the wide table into the four signals.
SECTIONS = {
    "traffic": ("runs", "llm_calls", "tool_calls", "input_tokens", "output_tokens", "cost_usd"),
    "errors": ("runs", "errors", "error_rate", "implicit_errors", "implicit_error_rate"),
    "latency (run duration, ms)": ("timed_runs", "latency_p50_ms", "latency_p90_ms", "latency_p95_ms",
                                   "latency_p99_ms", "latency_ok_p95_ms", "latency_error_p95_ms"),
    "saturation": ("rate_limited_calls", "rate_limited_share", "rate_limited_runs", "max_concurrency",
                   "runs_over_budget"),
}

TimeArg = str | dt.datetime | dt.date | None
EveryArg = str | dt.timedelta | None


class SignalsError(ValueError):
    """A bad argument (unknown dimension, unreadable time or interval): the message says which."""


@dataclass(frozen=True)
class Query:
    """What to compute over: group-by dimensions, bucket width, time window, equality filters."""

    by: tuple[str, ...] = ()
    every: dt.timedelta | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    where: tuple[tuple[str, str | None], ...] = ()
    time: Literal["start", "end"] = "start"
    run_cap: float | None = None  # the [budgets] run cap (Budgets.run_cap), for runs_over_budget

    @property
    def keys(self) -> tuple[str, ...]:
        return (("bucket",) if self.every else ()) + self.by


def make_query(
    by: str | Iterable[str] | None = None,
    every: EveryArg = None,
    since: TimeArg = None,
    until: TimeArg = None,
    where: Mapping[str, str | None] | None = None,
    time: str = "start",
    now: dt.datetime | None = None,
) -> Query:
    """Validate and normalise the arguments every signals function takes."""
    dims = _dims(by)
    for name in where or {}:
        _check_dim(name)
    if time not in ("start", "end"):
        raise SignalsError(f"time must be 'start' or 'end', got {time!r}")
    try:
        width = parse_duration(every, "--every") if every is not None else None
        t0, t1 = parse_window(since, until, now, ("--since", "--until"))
    except ValueError as e:
        raise SignalsError(str(e)) from None
    return Query(dims, width, t0, t1, tuple((where or {}).items()), time)  # type: ignore[arg-type]


def _dims(by: str | Iterable[str] | None) -> tuple[str, ...]:
    if by is None:
        return ()
    items = [by] if isinstance(by, str) else list(by)
    out: list[str] = []
    for item in items:
        for name in (p.strip() for p in item.split(",")):
            if name and name not in out:
                if name == "status":
                    raise SignalsError(
                        "cannot group signals by 'status': errors and error_rate already count failed runs, "
                        "and latency_ok_p95_ms / latency_error_p95_ms split latency by it; filter with "
                        "status=error instead")
                out.append(_check_dim(name))
    return tuple(out)


def _check_dim(name: str) -> str:
    if name not in DIMENSIONS:
        raise SignalsError(f"cannot group or filter by {name!r}: use one of {', '.join(DIMENSIONS)}")
    return name


# A `$name` parameter of a named statement (DuckDB refuses values a statement does not use).
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")


def has_failures(lens: Store) -> bool:
    """Whether the failure-mode classifier's `failures` table exists in this database."""
    rows = lens.con.execute(Q.HAS_FAILURES).fetchall()
    return bool(rows and rows[0][0])


def display(df: pl.DataFrame) -> pl.DataFrame:
    """A table rounded for reading (the API's DataFrames keep full precision): milliseconds to whole
    numbers, ratios and USD to 4 decimals."""
    exprs = []
    if "bucket" in df.columns and df.schema["bucket"] == pl.Datetime("us", "UTC") and df.height and \
            (df["bucket"].dt.time() == dt.time(0)).all():
        exprs.append(pl.col("bucket").dt.date())  # daily (or weekly) buckets: the date says it all
    for name, dtype in df.schema.items():
        if not dtype.is_float():
            continue
        if name.endswith("_ms"):
            exprs.append(pl.col(name).round(0).cast(pl.Int64))
        elif any(w in name for w in ("rate", "share", "utilization", "usd")):
            exprs.append(pl.col(name).round(4))
    return df.with_columns(exprs) if exprs else df


def split_sections(df: pl.DataFrame, keys: Sequence[str]) -> dict[str, pl.DataFrame]:
    """The wide signals table as four narrower ones (traffic, errors, latency, saturation), without
    the optional columns that are empty throughout."""
    out = {}
    for name, cols in SECTIONS.items():
        present = [c for c in cols if c in df.columns and not (df[c].null_count() == df.height and
                                                                c in _OPTIONAL)]
        out[name] = display(df.select([*keys, *present]))
    return out


_OPTIONAL = {"implicit_errors", "implicit_error_rate", "runs_over_budget", "max_concurrency",
             "latency_error_p95_ms"}
