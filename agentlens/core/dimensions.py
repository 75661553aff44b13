"""The run dimensions, defined once: the columns of `runs` that say what a run was about (and how it
ended), by which every part of agentlens groups, filters and caps runs.

`schema.py` re-exports them beside the column contract. Each use takes a named subset of this one
definition, never a list of its own:

- `RUN_DIMENSIONS`: every dimension; what costs, the failure report and the alert rules group or filter by.
- `GROUP_DIMENSIONS`: without `status` (an outcome, not an attribute of the run): what the golden signals
  group by (their errors and latency already split by it) and what the run explorer filters on as a
  dimension (it filters status on its own).
- `LOOKUP_DIMENSIONS`: read at ingest through attribute lookups the config can extend (`[dimensions]`).
- `ROLLUP_DIMENSIONS`: few values each, so rollup rows are kept per value (a row per customer, user or
  session would be a row per run).
- `BUDGET_DIMENSIONS`: what `[budgets.daily_usd]` caps spend per value of.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dimension:
    name: str
    doc: str
    lookup: bool = False   # found through configurable attribute lookups at ingest
    rollup: bool = False   # kept in the rollup rows
    budget: bool = False   # may carry a daily spend cap per value
    outcome: bool = False  # how the run ended, not what it was about


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("feature", "Product feature the run served.", lookup=True, rollup=True, budget=True),
    Dimension("customer_id", "Customer or tenant.", lookup=True, budget=True),
    Dimension("user_id", "End user.", lookup=True, budget=True),
    Dimension("session_id", "Session / conversation / thread.", lookup=True, budget=True),
    Dimension("environment", "Deployment environment.", lookup=True, rollup=True, budget=True),
    Dimension("agent_name", "Agent name.", rollup=True, budget=True),
    Dimension("model", "The model of most of the run's LLM calls.", rollup=True, budget=True),
    Dimension("source", "Where the run came from (format or live source).", rollup=True),
    Dimension("service_name", "OTel resource `service.name`."),
    Dimension("status", "`ok` or `error`.", outcome=True),
)

RUN_DIMENSIONS: tuple[str, ...] = tuple(d.name for d in DIMENSIONS)
GROUP_DIMENSIONS: tuple[str, ...] = tuple(d.name for d in DIMENSIONS if not d.outcome)
LOOKUP_DIMENSIONS: tuple[str, ...] = tuple(d.name for d in DIMENSIONS if d.lookup)
ROLLUP_DIMENSIONS: tuple[str, ...] = tuple(d.name for d in DIMENSIONS if d.rollup)
BUDGET_DIMENSIONS: tuple[str, ...] = tuple(d.name for d in DIMENSIONS if d.budget)
