"""One conversation: the runs of a session in order, with their totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..core.results import BaseResult, Result
from ..store import Store
from .runs import RunFilter, find_runs

SESSION_COLUMNS = ("run_id", "started_at", "ended_at", "agent_name", "status", "duration_ms", "cost_usd",
                   "input_tokens", "output_tokens", "llm_calls", "tool_calls", "error_count", "input")
TOTALS = """
SELECT count(*) AS runs, count(*) FILTER (WHERE status = 'error') AS failed_runs,
       min(started_at) AS first_started, max(coalesce(ended_at, started_at)) AS last_ended,
       sum(duration_ms) AS run_time_ms, sum(cost_usd) AS cost_usd, count(cost_usd) AS priced_runs,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
       sum(llm_calls) AS llm_calls, sum(tool_calls) AS tool_calls,
       string_agg(DISTINCT user_id, ', ' ORDER BY user_id) AS users,
       string_agg(DISTINCT customer_id, ', ' ORDER BY customer_id) AS customers
FROM runs WHERE session_id = ?
"""
MAX_RUNS = 1000  # runs of one session listed (the totals count them all)


@dataclass
class Session(BaseResult):
    """A session's runs in start order (`runs`, with `name` and `preview`) and its totals."""

    session_id: str
    runs: pl.DataFrame
    totals: dict[str, Any] = field(default_factory=dict)

    def result(self) -> Result:
        return Result(f"session {self.session_id}", dict(self.totals), {"runs": self.runs})


def session(lens: Store, session_id: str, limit: int = MAX_RUNS) -> Session:
    """The runs of `session_id` in the order they started, and their totals. KeyError when there is none."""
    totals = lens.sql(TOTALS, [session_id]).row(0, named=True)
    if not totals["runs"]:
        raise KeyError(f"no runs of session {session_id!r}")
    runs = find_runs(lens, RunFilter(equals={"session_id": session_id}), sort="started_at", descending=False,
                     limit=limit, columns=SESSION_COLUMNS, describe=True)
    first, last = totals["first_started"], totals["last_ended"]
    totals["span_s"] = (last - first).total_seconds() if first and last else None
    totals["users"] = totals["users"] or None  # in order, comma-separated
    totals["customers"] = totals["customers"] or None
    return Session(session_id, runs, totals)
