"""The temp tables shared across packages, declared once: what each holds, who fills it and who reads it.
They are the contract between agentlens.ingest (which fills them around each chunk of runs), the steps in
agentlens.pricing and agentlens.failures (which read and fill them) and the per-run SQL of store.runsql.

Temp tables private to one package (the ingest's `_staged`, pricing's `_price_runs`, the classifiers' `_fs`,
...) are created and dropped there; tests/test_sql.py checks that every temp table a statement reads is
either declared here or created in the module that reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..schema import SPAN_COLUMNS
from .runsql import PRICED_SPAN_COLUMNS


@dataclass(frozen=True)
class TempTable:
    name: str
    columns: str  # the column list of its DDL
    holds: str
    filled_by: str
    read_by: str

    def create(self) -> str:
        """The DDL: an empty table of these columns (replacing one of an earlier file)."""
        return f"CREATE OR REPLACE TEMP TABLE {self.name} ({self.columns})"


_SPAN_TYPES = {c.name: c.type for c in SPAN_COLUMNS}

AFFECTED = TempTable(
    "_affected", "run_id VARCHAR",
    holds="the run ids of one chunk of the runs the file touched (a chunk: bounded memory)",
    filled_by="ingest.publish, before each chunk's steps",
    read_by="the chunk steps: pricing.price_step, pricing.price_staged_step, failures.classify_step")
NARROW = TempTable(
    "_narrow", ", ".join(["_row BIGINT", *(f"{c} {_SPAN_TYPES[c]}" for c in PRICED_SPAN_COLUMNS)]),
    holds="the chunk's staged spans (not yet stored), the columns pricing reads, by their row in the file",
    filled_by="ingest.publish, per chunk of a file of new runs only",
    read_by="pricing.price_staged_step")
# Costs priced before the rows are stored (a file of new runs only), by `_row` for spans and by run id for runs;
# empty otherwise, and pricing's chunk step sets them after. Why before: DuckDB writes the rows a transaction
# appends straight into the database file, unless the transaction then updates them; it then writes every
# appended row to the WAL as well, and copies them at the checkpoint. Pricing by UPDATE made the commit of 2M
# spans take 19-23 s instead of 1 s, and the 1M-run file (10M spans) ran out of disk writing that WAL.
STAGED_SPAN_COSTS = TempTable(
    "_staged_span_costs", "_row BIGINT, computed_cost_usd DOUBLE, price_source VARCHAR",
    holds="each staged span's computed cost, priced before the spans are stored (by its row in the file)",
    filled_by="pricing.price_staged_step",
    read_by="ingest.sql.PUBLISH_SPANS (the costs go in with the spans: no UPDATE of the rows a file adds)")
STAGED_RUN_COSTS = TempTable(
    "_staged_run_costs", "run_id VARCHAR, reported DOUBLE, computed DOUBLE, unpriced BIGINT, cost DOUBLE",
    holds="each staged run's cost columns (store.runsql.RUN_COSTS_SELECT), priced before the run is built",
    filled_by="pricing.price_staged_step",
    read_by="store.runsql.BUILD_RUNS; pricing.price_step skips the chunks found here")
TOUCHED = TempTable(
    "_touched", "run_id VARCHAR, chunk BIGINT",
    holds="every run the file touched, numbered into chunks",
    filled_by="ingest.publish, once the runs are built",
    read_by="ingest.publish (the chunks of the steps); failures.fleet_step (the days to judge again)")
PRIOR = TempTable(
    "_prior", "first_at TIMESTAMPTZ, last_at TIMESTAMPTZ, had_errors BOOLEAN, features VARCHAR[], "
              "customers VARCHAR[], spans_replaced BIGINT",
    holds="one row: what the file's stored runs were before the file rebuilt or replaced them (their time span, "
          "whether any had a failed span, their features and customers) and how many stored spans it replaced",
    filled_by="ingest.publish",
    read_by="failures.fleet_step (a run whose start moved changed its old day's spend too; the series and "
            "storms it can have changed)")

BUILD = TempTable(
    "_build", "run_id VARCHAR",
    holds="the run ids of one chunk of the runs to build from their spans",
    filled_by="ingest.publish, per chunk",
    read_by="store.runsql.BUILD_RUNS")
BUILD_RIDS = TempTable(
    "_build_rids", "rid BIGINT",
    holds="the rowids of the spans of the chunk in `_build` (so the build reads only their row groups)",
    filled_by="ingest.publish, per chunk",
    read_by="store.runsql.BUILD_RUNS")
PRICE_SET = TempTable(
    "_price_set", "run_id VARCHAR, span_id VARCHAR, is_root BOOLEAN, has_usage BOOLEAN, \"at\" TIMESTAMPTZ, "
    "model VARCHAR, provider VARCHAR, i BIGINT, cr BIGINT, cw BIGINT, o BIGINT, r BIGINT, reported DOUBLE",
    holds="the calls that make up the cost of the runs being priced (store.runsql.RUN_PRICED_CALLS_SELECT)",
    filled_by="pricing (PRICE_SET from stored spans, PRICE_SET_STAGED from `_narrow`)",
    read_by="pricing; store.runsql.RUN_COSTS_SELECT")
SPAN_COSTS = TempTable(
    "_span_costs", "run_id VARCHAR, span_id VARCHAR, computed_cost_usd DOUBLE, price_source VARCHAR",
    holds="the computed cost of each call in `_price_set` that reports usage, and where its price came from",
    filled_by="pricing.SPAN_COSTS",
    read_by="pricing; store.runsql.RUN_COSTS_SELECT")

COST_CHANGED = TempTable(
    "_cost_changed", "run_id VARCHAR",
    holds="the runs whose cost a reprice changed (cost_usd or computed_cost_usd)",
    filled_by="pricing.reprice_costs (pricing.REPRICE_CHANGED)",
    read_by="failures.reprice: their budget caps and their days' spend spikes judged again")

SHARED: tuple[TempTable, ...] = (AFFECTED, NARROW, STAGED_SPAN_COSTS, STAGED_RUN_COSTS, TOUCHED, PRIOR, BUILD,
                                 BUILD_RIDS, PRICE_SET, SPAN_COSTS, COST_CHANGED)
