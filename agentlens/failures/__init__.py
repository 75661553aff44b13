"""Failure-mode classification: deterministic, explainable rules over the canonical tables.

    from agentlens import failures
    failures.classify(lens)                      # re-classify every run (after a policy change)
    failures.classify(lens, classifiers=(failures.classifiers.refusal,))  # or some of the rules only
    rep = failures.report(lens, since="2026-11-10", by="feature")
    rep.counts, rep.worst, rep.fleet             # polars DataFrames; rep renders itself
    failures.detections(lens, mode="refusal")    # one row per detection
    failures.export_evals(lens, "cases.jsonl", modes=["prompt_injection"])

Runs are classified at ingest (the pipeline step `classify_step`, inside the file's transaction,
replacing earlier results for the runs the file touched) and by `classify()` for all runs. Every
detection is a row of `failures` with the span that shows it, a severity, a one-line explanation
and the evidence (JSON). The rules are in `classifiers.py` (`CLASSIFIERS`, a tuple of functions that
each declare their modes: `MODES`), the policy in `policy.py`, fleet-level incidents in `fleet.py`.
Both `classify()` and `classify_step` take the rules to run (`classifiers=`, all of them by default;
`functools.partial(classify_step, classifiers=...)` is a pipeline step running some of them).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from ..core.duck import registered, transaction
from ..core.results import BaseResult, Result
from ..pricing import RepriceSummary, reprice_costs
from ..pricing.models import model_table
from ..store.ops import write_op
from . import _udf, fleet
from .classifiers import (
    CLASSIFIERS,
    CLEANUP,
    MODES,
    ROW_SCHEMA,
    SEVERITIES,
    Classifier,
    Ctx,
    apply,
    budget_exceeded,
    gated,
    prepare,
)
from .policy import Policy, load_policy
from .report import BY

if TYPE_CHECKING:
    import duckdb

    from ..store import Store

__all__ = [
    "CLASSIFIERS", "MODES", "SEVERITIES", "Classifier", "ClassifySummary", "FailureReport", "Policy", "classify",
    "classify_step", "detections", "export_evals", "fleet_step", "load_policy", "report", "reprice",
]

BATCH_RUNS = 20_000  # runs classified per batch by classify(): bounds the temp tables' memory
FLEET_MODES = ("spend_spike", "retry_storm")
DIMENSIONS = tuple(BY)

_INSERT = """
INSERT INTO failures
SELECT run_id, mode, span_id, severity,
       regexp_replace(explanation, '[\\x00-\\x1f\\x7f]+', ' ', 'g'), evidence::JSON, now(), ?
FROM _fnew
"""
_MODELS_OF_BATCH = "SELECT DISTINCT model, provider FROM _fs WHERE leaf_llm AND model IS NOT NULL"


def _write_detections(con: duckdb.DuckDBPyConnection, table: pa.Table, policy: Policy) -> None:
    """Detection rows (ROW_SCHEMA) into `failures`, under the policy they were judged by."""
    if table.num_rows:
        with registered(con, "_fnew", table):
            con.execute(_INSERT, [policy.hash])


def _classify_batch(lens: Store, policy: Policy, classifiers: Sequence[Classifier] = CLASSIFIERS) -> int:
    """Classify the runs in `_fruns` with the rules, replacing their earlier rows. Returns detections added."""
    con = lens.con
    con.execute("DELETE FROM failures WHERE run_id IN (SELECT run_id FROM _fruns)")
    ctx = Ctx(con, policy)
    with _udf.registered(con):
        prepare(ctx)
        pairs = con.execute(_MODELS_OF_BATCH).fetchall()
        models = model_table([(m, p) for m, p in pairs], lens.config)
        with registered(con, "_fmodels", models.to_arrow()):
            tables = [apply(fn, ctx) for fn in gated(ctx, classifiers)]
    new = pa.concat_tables(tables) if tables else ROW_SCHEMA.empty_table()
    _write_detections(con, new, policy)
    for statement in CLEANUP:
        con.execute(statement)
    return new.num_rows


def classify_step(lens: Store, classifiers: Sequence[Classifier] = CLASSIFIERS) -> None:
    """Pipeline step: classify the runs the file touched (the chunk of them in `_affected`) with the rules."""
    policy = load_policy(lens.config)
    lens.con.execute("CREATE OR REPLACE TEMP TABLE _fruns AS SELECT DISTINCT run_id FROM _affected")
    _classify_batch(lens, policy, classifiers)


# What the fleet checks need of the runs a file touched, now and before the file (`_prior`, set by the store:
# tables.PRIOR): the time they span, a day wider on each side (a span may start a little outside its run's
# recorded times; a run whose start moved, or a given run that came again with another time, changed its old
# day's spend too); whether any had or has a failed span (a retry storm is a group of failed spans, and whether a
# run whose root failed made calls: a file that touched no run with a failure, before or after, changed no
# storm); the features and customers they had (a root that comes late may bring them: both series changed);
# how many stored spans the file replaced (a replaced span's tool amount is gone unseen: every series is judged).
_TOUCHED = """
SELECT least(min(r.started_at), any_value(p.first_at)) - INTERVAL 1 DAY,
       greatest(max(coalesce(r.ended_at, r.started_at)), any_value(p.last_at)) + INTERVAL 1 DAY,
       any_value(p.had_errors) OR coalesce(bool_or(r.error_count > 0), false),
       any_value(p.features), any_value(p.customers), any_value(p.spans_replaced)
FROM runs r, _prior p WHERE r.run_id IN (SELECT run_id FROM _touched)
"""  # (the run_id look-up alone in WHERE: with another condition on the scan, DuckDB reads the run_id column of
#     every run instead of looking the runs up in its index: 12 ms at 1M runs against 1 ms)


def fleet_step(lens: Store) -> None:
    """Pipeline file step: refresh the fleet incidents once the file's runs are all classified; spend
    spikes only where the file's days and series can change them (a file of today's runs does not re-judge a
    year of history, nor a root arriving after its run's other spans every series of its day), retry storms
    only when it can change one."""
    row = lens.con.execute(_TOUCHED).fetchall()[0]
    first, last, failures, features, customers, replaced = row
    if first is None:  # no run with a time: no day's spend changed, no failure to group
        return
    policy = load_policy(lens.config)
    series = None
    if not replaced:  # the touched runs' series now, and the features and customers they had before
        series = fleet.touched_series(lens.con, policy)
        series["feature"] = list(dict.fromkeys([*series["feature"], *features]))
        series["customer_id"] = list(dict.fromkeys([*series["customer_id"], *customers]))
    fleet.refresh(lens.con, policy, (first, last), storms=bool(failures), series=series)


@dataclass
class ClassifySummary(BaseResult):
    runs: int
    detections: int
    fleet_incidents: int
    seconds: float
    policy: Policy
    by_mode: pl.DataFrame = field(default_factory=pl.DataFrame)

    def result(self) -> Result:
        facts: dict[str, Any] = {
            "runs classified": self.runs, "detections": self.detections,
            "fleet incidents": self.fleet_incidents, "policy": self.policy.hash,
            "seconds": round(self.seconds, 2),
        }
        return Result("classified", facts, {"detections by mode": self.by_mode} if self.by_mode.height else {})


def _batch_runs(lens: Store, runs: int) -> int:
    """Runs per batch of `classify()`: BATCH_RUNS, fewer when runs carry long text, so that a batch weighs
    about what an ingest's chunk may (`Lens.chunk_bytes`, see store._span_weights). The
    weight of a run is estimated from about 100,000 spans (DuckDB's sampling of whole vectors)."""
    from ..store.chunks import SPAN_WEIGHT_SQL

    spans = lens.con.execute("SELECT count(*) FROM spans").fetchall()[0][0]
    if not runs or not spans:
        return BATCH_RUNS
    percent = min(100.0, 100.0 * 100_000 / spans)
    sample = f"USING SAMPLE {percent:.6f} PERCENT (system)" if percent < 100 else ""
    per_span = lens.con.execute(f"SELECT avg({SPAN_WEIGHT_SQL}) FROM spans {sample}").fetchall()[0][0]  # noqa: S608 - fixed SQL text and a number
    if per_span is None:  # the sample took no vector
        per_span = lens.con.execute(f"SELECT avg({SPAN_WEIGHT_SQL}) FROM spans").fetchall()[0][0]  # noqa: S608
    per_run = float(per_span or 0) * spans / runs
    return max(100, min(BATCH_RUNS, int(lens.chunk_bytes() / max(per_run, 1.0))))


@write_op("classify")
def classify(lens: Store, policy: Policy | None = None,
             classifiers: Sequence[Classifier] = CLASSIFIERS) -> ClassifySummary:
    """Re-classify every run (batches of BATCH_RUNS runs) with the rules (all of them by default: see
    `classifiers.CLASSIFIERS`) and recompute fleet incidents, replacing all earlier results, in one
    transaction."""
    t0 = time.perf_counter()
    policy = policy or load_policy(lens.config)
    con = lens.con
    runs = 0
    detections = 0
    with transaction(con):
        con.execute("DELETE FROM failures")
        # in storage order: a batch's spans then sit in a few row groups (in run_id order, each batch's
        # lookups read the whole table: 20 batches of 100,000 runs took 28 s instead of 17 s)
        con.execute("CREATE OR REPLACE TEMP TABLE _fall AS "
                    "SELECT run_id, row_number() OVER (ORDER BY rowid) - 1 AS i FROM runs")
        total = con.execute("SELECT count(*) FROM _fall").fetchall()[0][0]
        batch = _batch_runs(lens, total)
        for start in range(0, total, batch):
            con.execute("CREATE OR REPLACE TEMP TABLE _fruns AS SELECT run_id FROM _fall WHERE i >= ? AND i < ?",
                        [start, start + batch])
            detections += _classify_batch(lens, policy, classifiers)
            runs += min(batch, total - start)
        con.execute("DROP TABLE IF EXISTS _fall")
        n_fleet = fleet.refresh(con, policy)
    by_mode = lens.sql(
        "SELECT mode, count(DISTINCT run_id) AS runs, count(*) AS detections FROM failures GROUP BY mode "
        "ORDER BY runs DESC, mode")
    return ClassifySummary(runs, detections, n_fleet, time.perf_counter() - t0, policy, by_mode)


# What `reprice` judges again once costs changed: the budget caps of the runs whose cost changed (budget_exceeded
# reads a run's cost; its other modes read no cost), and the spend spikes of their days, every series (a run's
# cost is in its feature's and its customer's spend). The days a day wider on each side, as fleet_step's.
_COST_CHANGED_DAYS = """
SELECT min(started_at) - INTERVAL 1 DAY, max(coalesce(ended_at, started_at)) + INTERVAL 1 DAY
FROM runs WHERE run_id IN (SELECT run_id FROM _cost_changed)
"""


@write_op("reprice")
def reprice(lens: Store, policy: Policy | None = None) -> RepriceSummary:
    """Recompute every run's cost with the current prices and overrides (`pricing.reprice_costs`: after
    changing `[[pricing.overrides]]` or upgrading genai-prices) and, in the same transaction, judge again what
    was judged on the old costs: the budget caps of the runs whose cost changed, and the spend spikes of their
    days. Detections and incidents then agree with the costs, as a full `classify` would have them."""
    policy = policy or load_policy(lens.config)
    con = lens.con
    with transaction(con):
        summary = reprice_costs(lens)
        con.execute("CREATE OR REPLACE TEMP TABLE _fruns AS SELECT run_id FROM _cost_changed")
        con.execute("DELETE FROM failures WHERE mode = 'budget_exceeded' AND run_id IN (SELECT run_id FROM _fruns)")
        table = apply(budget_exceeded, Ctx(con, policy))  # reads `runs` alone: no shared table, no UDF
        _write_detections(con, table, policy)
        summary.judged_runs, summary.over_budget = summary.changed_runs, table.num_rows
        first, last = con.execute(_COST_CHANGED_DAYS).fetchall()[0]
        if first is not None:
            fleet.refresh(con, policy, (first, last), storms=False)
            summary.spike_days = (first.date(), (last + dt.timedelta(days=policy.fleet.baseline_days)).date())
        for table_name in ("_fruns", "_cost_changed"):
            con.execute(f"DROP TABLE {table_name}")
    return summary


from .export import export_evals  # noqa: E402
from .report import FailureReport, detections, report  # noqa: E402
