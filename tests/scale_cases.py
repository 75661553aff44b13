"""The conformance suite's cases: every statement the public API runs, as the calls that run them, and the
comparison of their results on DuckDB and on ClickHouse (tests/test_scale_conformance.py).

A case is (module, name, call): `call(lens)` returns what the library returns (a DataFrame, a dict, a
Result or report object); both engines' answers are compared order-insensitively, floats within REL_TOL,
JSON text compared parsed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Callable
from typing import Any

import polars as pl

from agentlens.core.results import BaseResult, Result
from agentlens.explore import compare as xcompare
from agentlens.explore import quarantine as xquarantine
from agentlens.explore import runs as xruns
from agentlens.explore import session as xsession
from agentlens.explore import trace as xtrace
from agentlens.failures.report import detections as f_detections
from agentlens.failures.report import report as f_report
from agentlens.metrics import alerts, costs, rollups, signals

# Refused on ClickHouse, and why: the suite checks that they are refused with these words.
REFUSED = {
    "metrics.costs: what if": "CREATE of anything but a TEMP TABLE",  # pricing.what_if_costs: a DuckDB MACRO
}

REL_TOL = 1e-9
ABS_TOL = 1e-12

Case = tuple[str, str, Callable[[Any], Any]]

SINCE, UNTIL = "2026-11-10", "2026-11-13"

RULES = alerts.rules_from_dict({
    "defaults": {"min_runs": 1},
    "threshold": [
        {"name": "spend rate", "metric": "cost_usd_per_hour", "above": 0.01, "window": "6h"},
        {"name": "error rate by feature", "metric": "error_rate", "above": 0.1, "window": "1d", "by": ["feature"]},
        {"name": "p95 latency", "metric": "latency_p95_ms", "above": 1000, "window": "1d",
         "where": {"environment": "production"}},
        {"name": "traffic", "metric": "runs", "below": 1, "window": "1h", "min_runs": 0},
    ],
    "slo": [
        {"name": "availability", "objective": 0.95, "sli": "errors", "period": "30d", "min_runs": 1},
        {"name": "latency", "objective": 0.9, "sli": "latency", "threshold_ms": 20000, "period": "7d"},
        {"name": "implicit", "objective": 0.9, "sli": "implicit", "period": "7d"},
        {"name": "cost", "objective": 0.9, "sli": "cost", "max_cost_usd": 0.01, "period": "7d"},
        {"name": "llm errors", "objective": 0.99, "sli": "llm_errors", "period": "7d"},
        {"name": "rate limited", "objective": 0.99, "sli": "rate_limited", "period": "7d"},
    ],
})
AT = "2026-11-12T18:00:00Z"


def _first_run(lens: Any) -> str:
    return str(lens.sql("SELECT run_id FROM runs ORDER BY cost_usd DESC NULLS LAST, run_id LIMIT 1")["run_id"][0])


def _facts_without(res: Result, key: str) -> Result:
    res.facts.pop(key, None)
    return res


def _failed_run(lens: Any) -> str:
    df = lens.sql("SELECT run_id FROM failures ORDER BY run_id LIMIT 1")
    return str(df["run_id"][0]) if df.height else _first_run(lens)


def _session(lens: Any) -> str:
    """The session with the most runs."""
    return str(lens.sql("SELECT session_id, count(*) AS n FROM runs WHERE session_id IS NOT NULL "
                        "GROUP BY ALL ORDER BY n DESC, session_id LIMIT 1")["session_id"][0])


def _two(lens: Any, dim: str) -> tuple[str, str]:
    """The two most common values of a run column."""
    vals = lens.sql(f"SELECT {dim} AS v, count(*) AS n FROM runs WHERE {dim} IS NOT NULL "
                    "GROUP BY ALL ORDER BY n DESC, v LIMIT 2")["v"].to_list()
    return str(vals[0]), str(vals[-1])


def _search(lens: Any, text: str) -> Any:
    return xruns.find_runs(lens, xruns.RunFilter(text=text), sort="cost_usd", limit=1000)


def _every_filter(lens: Any) -> Any:
    """Every condition a filter of runs has, at once (each is then a condition that passed: conformance.py)."""
    flt = xruns.RunFilter(since="2026-11-01", until="2026-12-01", status="ok",
                          equals={"feature": _two(lens, "feature")[0], "environment": "(none)"},
                          failure_mode=None, min_cost_usd=0.0, max_cost_usd=100.0, min_duration_ms=0.0,
                          max_duration_ms=1e9, text="the")
    modes = xruns.RunFilter(failure_mode="silent_tool_failure", status="error")
    return (xruns.find_runs(lens, flt, sort="duration_ms", limit=30, describe=True), xruns.count_runs(lens, flt),
            xruns.find_runs(lens, modes), xruns.count_runs(lens, modes),
            xcompare.compare(lens, xcompare.Side("a", flt), xcompare.Side("b", modes)))


def _window(since: str, until: str) -> xruns.RunFilter:
    return xruns.RunFilter(since=since, until=until)


CASES: list[Case] = [
    # --- the store -----------------------------------------------------------------------------------------
    ("store", "runs", lambda db: db.runs()),
    ("store", "runs filtered", lambda db: db.runs(since=SINCE, until=UNTIL, status="error", limit=5)),
    ("store", "runs by feature", lambda db: db.runs(feature="refund", order_by="cost_usd")),
    ("store", "runs by duration", lambda db: db.runs(order_by="duration_ms", descending=False, limit=9)),
    ("store", "spans of a run", lambda db: db.spans(_first_run(db))),
    ("store", "quarantine", lambda db: db.quarantine()),
    ("store", "overview", lambda db: _facts_without(db.overview(), "database")),  # its path or URL differs
    # --- golden signals ------------------------------------------------------------------------------------
    ("metrics.signals", "signals", lambda db: signals.signals(db)),
    ("metrics.signals", "signals by feature per day", lambda db: signals.signals(db, by="feature", every="1d")),
    ("metrics.signals", "signals by two dims per hour", lambda db: signals.signals(
        db, by=["feature", "model"], every="1h", since=SINCE, until=UNTIL)),
    ("metrics.signals", "signals filtered, by end", lambda db: signals.signals(
        db, by="agent_name", where={"environment": "production"}, time="end")),
    ("metrics.signals", "signals per 2 days", lambda db: signals.signals(db, every="2d")),
    ("metrics.signals", "latency", lambda db: signals.latency(db)),
    ("metrics.signals", "latency by feature per day", lambda db: signals.latency(db, by="feature", every="1d")),
    ("metrics.signals", "llm calls", lambda db: signals.llm_calls(db)),
    ("metrics.signals", "llm calls per day", lambda db: signals.llm_calls(db, every="1d", where={"feature": "refund"})),
    ("metrics.signals", "tool calls", lambda db: signals.tool_calls(db)),
    ("metrics.signals", "tool calls per hour", lambda db: signals.tool_calls(db, every="1h", since=SINCE)),
    ("metrics.signals", "errors by type", lambda db: signals.errors_by_type(db)),
    ("metrics.signals", "budget utilisation", lambda db: signals.budget_utilization(db)),
    ("metrics.signals", "report", lambda db: signals.report(db, every="1d")),
    ("metrics.signals", "report by feature", lambda db: signals.report(db, by="feature", since=SINCE, until=UNTIL)),
    # --- rollups (read side: the rollup tables as migrated) ---------------------------------------------
    ("metrics.rollups", "signals from rollups", lambda db: signals.signals(db, every="1d", source="rollups")),
    ("metrics.rollups", "signals by feature from rollups", lambda db: rollups.signals(db, by="feature", every="1d")),
    ("metrics.rollups", "llm calls from rollups", lambda db: rollups.calls(db, "llm")),
    ("metrics.rollups", "tool calls from rollups", lambda db: rollups.calls(db, "tool", every="1d")),
    ("metrics.rollups", "report from rollups", lambda db: rollups.report(db, every="1d")),
    # --- costs ----------------------------------------------------------------------------------------------
    ("metrics.costs", "by feature", lambda db: costs.by(db)),
    ("metrics.costs", "by model per day", lambda db: costs.by(db, by=["model", "customer_id"], period="day")),
    ("metrics.costs", "by feature per week", lambda db: costs.by(db, by="feature", period="week", since=SINCE)),
    ("metrics.costs", "by an attribute", lambda db: costs.by(db, by="attr:app.tenant_id")),
    ("metrics.costs", "by a key inside an attribute", lambda db: costs.by(db, by=["attr:metadata.feature", "model"])),
    ("metrics.costs", "by a dotted attribute", lambda db: costs.by(db, by="attr:deployment.environment.name")),
    ("metrics.costs", "by a number attribute", lambda db: costs.by(db, by="attr:temperature", period="day")),
    ("metrics.costs", "by a JSON path", lambda db: costs.by(db, by="json:$.metadata.customer_id")),
    ("metrics.costs", "what if", lambda db: costs.what_if(db, "gpt-4o-mini", "openai")),
    ("metrics.costs", "unpriced", lambda db: costs.unpriced(db)),
    ("metrics.costs", "reconciliation", lambda db: costs.reconciliation(db)),
    ("metrics.costs", "top runs", lambda db: costs.top_runs(db, 5)),
    ("metrics.costs", "runs over budget", lambda db: costs.runs_over_budget(db)),
    ("metrics.costs", "days over budget", lambda db: costs.days_over_budget(db)),
    ("metrics.costs", "headline", lambda db: costs.headline(db)),
    ("metrics.costs", "report", lambda db: costs.report(db)),
    # the cost report without a run budget suggests caps (the suite's config sets one: called directly)
    ("metrics.costs", "suggested caps", lambda db: costs.suggested_caps(db)),
    ("metrics.costs", "suggested caps by customer", lambda db: costs.suggested_caps(db, "customer_id", since=SINCE)),
    # --- alerts -----------------------------------------------------------------------------------------------
    ("metrics.alerts", "evaluate", lambda db: alerts.evaluate(db, RULES, at=AT)),
    # --- the failure report -------------------------------------------------------------------------------------
    ("failures.report", "detections", lambda db: f_detections(db)),
    ("failures.report", "detections by feature", lambda db: f_detections(db, by="feature", since=SINCE)),
    ("failures.report", "report", lambda db: f_report(db)),
    ("failures.report", "report by day", lambda db: f_report(db, by="day")),
    ("failures.report", "report by tool", lambda db: f_report(db, by="tool")),
    ("failures.report", "report of modes", lambda db: f_report(
        db, mode=["silent_tool_failure", "runaway_loop"], by="model")),
    # --- explore ----------------------------------------------------------------------------------------------
    ("explore", "find runs", lambda db: xruns.find_runs(db)),
    ("explore", "find runs filtered", lambda db: xruns.find_runs(db, xruns.RunFilter(
        since=SINCE, status="ok", equals={"feature": "refund"}, min_cost_usd=0.0001, text="order"),
        sort="total_tokens", limit=10)),
    ("explore", "find runs by mode", lambda db: xruns.find_runs(db, xruns.RunFilter(
        failure_mode="silent_tool_failure", max_duration_ms=1e9), sort="cost_usd", descending=False)),
    ("explore", "find runs by start", lambda db: xruns.find_runs(db, sort="started_at", descending=False)),
    ("explore", "find runs by model", lambda db: xruns.find_runs(db, sort="model", limit=7, offset=3)),
    ("explore", "count all runs", lambda db: xruns.count_runs(db)),
    ("explore", "count runs", lambda db: xruns.count_runs(db, xruns.RunFilter(status="error"))),
    ("explore", "dimension values", lambda db: xruns.dimension_values(db, "model")),
    ("explore", "failure modes", lambda db: xruns.failure_modes(db)),
    ("explore", "time bounds", lambda db: xruns.time_bounds(db)),
    ("explore", "trace layout", lambda db: xtrace.trace_layout(db, _failed_run(db))),
    ("explore", "failure marks", lambda db: xtrace.failure_marks(db, _failed_run(db))),
    ("explore", "span details", lambda db: xtrace.span_details(db, _failed_run(db))),
    ("explore", "run header", lambda db: xtrace.run_header(db, _failed_run(db))),
    # --- the notebooks' own statements (notebooks/*.ipynb) -----------------------------------------------
    ("notebooks", "newest run", lambda db: db.sql("SELECT max(started_at) AS t FROM runs")),
    ("notebooks", "top run", lambda db: db.sql(
        "SELECT run_id FROM runs ORDER BY input_tokens + output_tokens DESC NULLS LAST LIMIT 1")),
    ("notebooks", "quarantine by kind", lambda db: db.sql(
        "SELECT kind, count(*) AS records, any_value(reason) AS example FROM quarantine GROUP BY ALL")),
    ("notebooks", "runs page", lambda db: db.runs(limit=20)),
    # --- the terminal: `agentlens runs` (names and previews, --search), `session`, `compare`, `quarantine` ----
    ("terminal", "runs page described", lambda db: xruns.find_runs(db, limit=50, describe=True)),
    ("terminal", "runs by cost described", lambda db: xruns.find_runs(
        db, xruns.RunFilter(status="error"), sort="cost_usd", limit=20, describe=True)),
    ("terminal", "search a word", lambda db: _search(db, "refund")),
    ("terminal", "search a phrase", lambda db: _search(db, "Order Status")),
    ("terminal", "search a common word", lambda db: _search(db, "the")),
    ("terminal", "search punctuation", lambda db: _search(db, "insufficient-merchant balance!")),
    ("terminal", "search nothing found", lambda db: _search(db, "xyzzy plugh")),
    ("terminal", "search filtered and counted", lambda db: (
        xruns.find_runs(db, xruns.RunFilter(text="order", status="ok", since=SINCE), limit=10, describe=True),
        xruns.count_runs(db, xruns.RunFilter(text="order", status="ok", since=SINCE)))),
    ("terminal", "search counted", lambda db: xruns.count_runs(db, xruns.RunFilter(text="order"))),
    ("terminal", "runs with every filter", lambda db: _every_filter(db)),
    ("terminal", "runs where an attribute", lambda db: (
        xruns.find_runs(db, xruns.RunFilter(equals={"attr:app.feature": "refund"}), describe=True),
        xruns.count_runs(db, xruns.RunFilter(equals={"attr:metadata.feature": "billing", "attr:app.tenant_id": "(none)"})),
        xruns.count_runs(db, xruns.RunFilter(equals={"json:$.metadata.customer_id": "cust_0158"})),
        xruns.count_runs(db, xruns.RunFilter(equals={"attr:deployment.environment.name": "production"})))),
    ("terminal", "compare two values of an attribute", lambda db: xcompare.compare_values(
        db, "attr:metadata.feature", "billing", "order_status")),
    ("terminal", "session", lambda db: xsession.session(db, _session(db))),
    ("terminal", "compare two values", lambda db: xcompare.compare_values(db, "feature", *_two(db, "feature"))),
    ("terminal", "compare two models this window", lambda db: xcompare.compare_values(
        db, "model", *_two(db, "model"), xruns.RunFilter(since=SINCE))),
    ("terminal", "compare two windows", lambda db: xcompare.compare(
        db, xcompare.Side("a", _window("2026-11-01", SINCE)), xcompare.Side("b", _window(SINCE, UNTIL)))),
    ("terminal", "quarantine", lambda db: xquarantine.records(db)),
    ("terminal", "quarantine short excerpts", lambda db: xquarantine.records(db, excerpt=10, limit=5)),
    ("terminal", "quarantine of a kind and file", lambda db: xquarantine.records(
        db, kind="malformed_json", file="bad", since="2000-01-01")),
    ("terminal", "quarantine counts", lambda db: xquarantine.counts(db)),
    ("terminal", "quarantine counts of a file", lambda db: xquarantine.counts(db, file="bad")),
]


# --- comparing answers ---------------------------------------------------------------------------------------
def plain(obj: Any) -> Any:
    """What a library call returned, as plain values: DataFrames as sorted rows, report objects as dicts."""
    if isinstance(obj, pl.DataFrame):
        rows = [tuple(plain(v) for v in r) for r in obj.rows()]
        return {"columns": obj.columns, "rows": sorted(rows, key=_key)}
    if isinstance(obj, Result):
        return {"title": obj.title, "facts": plain(obj.facts), "tables": plain(obj.tables)}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, BaseResult):
        return plain(obj.result())
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, str) and obj[:1] in "[{":
        try:
            return {"json": json.loads(obj)}
        except ValueError:
            return obj
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def _key(row: tuple[Any, ...]) -> str:
    return json.dumps(row, default=str, sort_keys=True)


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where DuckDB's answer `a` and ClickHouse's `b` differ (empty: the same)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return [] if a == b else [f"{where}: {a!r} != {b!r}"]
    if isinstance(a, int | float) and isinstance(b, int | float):
        if math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL) or _rounded_apart(a, b):
            return []
        return [f"{where}: {a!r} != {b!r}"]
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return [f"{where}: keys {list(a)} != {list(b)}"]
        if "rows" in a and "columns" in a:
            if len(a["rows"]) != len(b["rows"]):
                return [f"{where}: {len(a['rows'])} rows != {len(b['rows'])} rows"]
            out = []
            for ra, rb in zip(sorted(a["rows"], key=_key), sorted(b["rows"], key=_key), strict=True):
                out += differences(list(ra), list(rb), f"{where} row")
            if out:  # rows that sort apart because of float noise: pair them by the closest
                out = _pairwise(a["rows"], b["rows"], where)
            return out
        return [d for k in a for d in differences(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{where}[{i}]")]
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return [] if a == b else [f"{where}: {a} != {b}"]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def _rounded_apart(a: float, b: float) -> bool:
    """Two values the statement rounded (`round(x, 9)`, `round(x, 6)`) one unit apart in their last place: the
    unrounded values differed in their last bits (floats summed or interpolated in another order) and sat on
    either side of a rounding boundary."""
    for digits in (9, 6, 4, 2):
        if round(a, digits) == a and round(b, digits) == b and abs(a - b) <= 1.5 * 10.0 ** -digits:
            return True
    return False


def _pairwise(ra: list[Any], rb: list[Any], where: str) -> list[str]:
    left = list(rb)
    for row in ra:
        match = next((i for i, other in enumerate(left) if not differences(list(row), list(other))), None)
        if match is None:
            return [f"{where}: DuckDB row {row} has no equal on ClickHouse"]
        left.pop(match)
    return []
