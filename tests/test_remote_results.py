"""The same library calls give the same results in the process that holds a database and in a client of
another process that holds it (`agentlens serve`): every frame equal, dtypes included, and every Python
value DuckDB's `fetchall()` gives equal and of the same type (the client builds them from Arrow: see
store/remote.py, "results as DuckDB gives them").

The calls are what the notebooks, the widgets, the CLI and the report run: runs, spans, signals, costs,
the failure report, the run explorer and the trace view, alerts, the HTML report's sections; and every row
of every canonical table, read with fetchall().
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import agentlens
from agentlens import costs, explore, schema
from agentlens.explore import trace
from agentlens.failures.report import detections
from agentlens.failures.report import report as failure_report
from agentlens.metrics import alerts, rollups, signals
from agentlens.present.report import build_report
from conftest import ROOT, SAMPLES

pytestmark = pytest.mark.slow
ENV_CLI = [sys.executable, "-c", "from agentlens.cli import main; main(prog_name='agentlens')"]

# Values of every kind DuckDB hands Python differently from pyarrow's to_pylist (and some it hands alike).
TYPED = """
SELECT sum(x) AS hugeint_sum, sum(x)::HUGEINT * 10 AS hugeint, 7::UHUGEINT AS uhugeint,
       INTERVAL '1 month 2 days 3 microseconds' AS interval, [INTERVAL 90 SECOND, NULL] AS intervals,
       TIMESTAMPTZ '2026-11-01 10:00:00+00' - TIMESTAMPTZ '2026-10-31 09:30:00+00' AS elapsed,
       MAP {1: 2::UBIGINT, 3: NULL} AS map, [MAP {'a': [1, 2]}] AS maps, {'m': MAP {'k': 1}, 'n': 1} AS struct,
       '6e6f6e2d-7261-6e64-6f6d-2d7575696421'::UUID AS uuid, TIMESTAMPTZ '2026-11-01 10:00:00.123456+00' AS ts,
       TIMESTAMP '2026-11-01 10:00:00' AS ts_naive, DATE '2026-11-01' AS day, TIME '10:00:01' AS time,
       '{"a": [1]}'::JSON AS json, 1.25::DECIMAL(10, 2) AS decimal, 'x'::BLOB AS blob, [1, NULL]::BIGINT[] AS ints,
       ['a']::VARCHAR[] AS texts, true AS bool, 1.5::DOUBLE AS double, NULL::HUGEINT AS null_hugeint
FROM (VALUES (1::BIGINT), (2::BIGINT)) t(x)
"""


def calls() -> dict[str, Callable[[Any, list[str]], Any]]:
    """What the notebooks, widgets, CLI and report ask of a database; each gets the lens and 3 run ids."""
    rules = alerts.rules_from_dict({
        "threshold": [{"name": "errors", "metric": "error_rate", "above": 0.01, "window": "30d"},
                      {"name": "p95", "metric": "latency_p95_ms", "above": 1.0, "window": "30d", "by": "feature"}],
        "slo": [{"name": "ok", "objective": 0.99}],
    })

    def at(lens: Any) -> dt.datetime:
        return explore.time_bounds(lens)[1] + dt.timedelta(hours=1)  # type: ignore[no-any-return, operator]

    def report(lens: Any, r: list[str]) -> Any:
        rep = build_report(lens, run_ids=r[:1])
        return [dataclasses.replace(s) for s in rep.sections]

    return {
        "runs": lambda lens, _r: lens.runs(),
        "runs page": lambda lens, _r: lens.runs(limit=50, feature="refund"),
        "spans": lambda lens, r: [lens.spans(x) for x in r],
        "overview": lambda lens, _r: lens.overview(),
        "quarantine": lambda lens, _r: lens.quarantine(),
        "signals by feature": lambda lens, _r: signals.signals(lens, by="feature"),
        "signals per day": lambda lens, _r: signals.signals(lens, every="1d"),
        "signals report": lambda lens, _r: signals.report(lens),
        "rolled-up signals": lambda lens, _r: rollups.signals(lens, by="feature", every="1h"),
        "llm calls": lambda lens, _r: signals.llm_calls(lens, every="1d"),
        "errors by type": lambda lens, _r: signals.errors_by_type(lens),
        "costs by feature": lambda lens, _r: costs.by(lens, by="feature"),
        "costs by customer per day": lambda lens, _r: costs.by(lens, by="customer_id", period="day"),
        "costs report": lambda lens, _r: costs.report(lens),
        "costs headline": lambda lens, _r: costs.headline(lens),
        "top runs": lambda lens, _r: costs.top_runs(lens),
        "failure report": lambda lens, _r: failure_report(lens),
        "detections": lambda lens, _r: detections(lens),
        "find runs": lambda lens, _r: explore.find_runs(lens, limit=50),
        "count runs": lambda lens, _r: explore.count_runs(lens),
        "time bounds": lambda lens, _r: explore.time_bounds(lens),
        "dimension values": lambda lens, _r: explore.dimension_values(lens, "feature"),
        "failure modes": lambda lens, _r: explore.failure_modes(lens),
        "trace layout": lambda lens, r: [trace.trace_layout(lens, x) for x in r],
        "failure marks": lambda lens, r: [trace.failure_marks(lens, x) for x in r],
        "span details": lambda lens, r: [trace.span_details(lens, x) for x in r],
        "run header": lambda lens, r: [trace.run_header(lens, x) for x in r],
        "alerts": lambda lens, _r: alerts.evaluate(lens, rules, at=at(lens)),
        "report sections": report,
    }


def snapshot(lens: Any) -> dict[str, Any]:
    run_ids = [r[0] for r in lens.con.execute(
        "SELECT run_id FROM runs WHERE run_id IN (SELECT run_id FROM failures) ORDER BY run_id LIMIT 3").fetchall()]
    assert len(run_ids) == 3
    out: dict[str, Any] = {name: call(lens, run_ids) for name, call in calls().items()}
    for table in schema.TABLES:
        cur = lens.con.execute(f"SELECT * FROM {table} ORDER BY rowid")
        out[f"fetchall {table}"] = cur.fetchall()
    cur = lens.con.execute(TYPED)
    out["typed fetchone"] = cur.fetchone()
    out["typed fetchall"] = lens.con.execute(TYPED).fetchall()
    try:
        lens.sql("SELECT * FROM no_such_table")
    except duckdb.Error as e:
        out["error"] = type(e)
    return out


def compare(a: Any, b: Any, where: str) -> None:
    """Equal, and of the same types all the way down (datetimes: the same time zone object)."""
    if isinstance(a, pl.DataFrame):
        assert isinstance(b, pl.DataFrame), where
        assert_frame_equal(a, b, check_dtypes=True, check_exact=True), where
        return
    assert type(a) is type(b), f"{where}: {type(a).__name__} locally, {type(b).__name__} through the owner: {a!r} / {b!r}"
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            compare(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            compare(x, y, f"{where}[{i}]")
    elif hasattr(a, "to_plotly_json"):  # a figure of the report
        assert a.to_json() == b.to_json(), where
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        for f in dataclasses.fields(a):
            if f.name not in ("generated_at",):
                compare(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif hasattr(a, "__dict__") and not isinstance(a, type):
        compare(vars(a), vars(b), where)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    elif isinstance(a, dt.datetime):
        assert a == b and a.tzinfo == b.tzinfo, f"{where}: {a!r} locally, {b!r} through the owner"
    else:
        assert a == b, f"{where}: {a!r} locally, {b!r} through the owner"


def test_the_same_calls_give_the_same_results_locally_and_through_the_owner(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(SAMPLES)
        rollups.rollup(lens, "1h")
    with agentlens.open(db, read_only=True) as lens:
        assert lens.remote is None
        local = snapshot(lens)
    owner = subprocess.Popen([*ENV_CLI, "serve", "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert owner.stdout is not None and "serving" in owner.stdout.readline()
        with agentlens.open(db, read_only=True) as lens:
            assert lens.remote is not None
            through = snapshot(lens)
    finally:
        owner.terminate()
        owner.communicate(timeout=60)
    assert list(local) == list(through)
    for name in local:
        compare(local[name], through[name], name)
    # what the comparison covered: every column type of the canonical schema, and the typed values
    types = {c.type for t in schema.TABLES.values() for c in t}
    assert {"TIMESTAMPTZ", "JSON", "DOUBLE", "BIGINT", "VARCHAR", "BOOLEAN", "MAP(INTEGER, UBIGINT)"} <= types
    assert local["error"] is duckdb.CatalogException
    row = dict(zip([d[0] for d in duckdb.connect().execute(TYPED).description], local["typed fetchone"], strict=True))
    assert row["hugeint_sum"] == 3 and type(row["hugeint_sum"]) is int
    assert row["interval"] == dt.timedelta(days=32, microseconds=3) and row["map"] == {1: 2, 3: None}
