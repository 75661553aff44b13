"""The cost report for a person: what agentlens.metrics.costs found, with the advice a reader needs
next (a rule of thumb for budgets when none is configured, how to price a model that has no price).
The library's CostReport keeps the numbers as data; this adds the words."""

from __future__ import annotations

from ..core.results import Result
from ..metrics.costs import UNPRICED_TABLE, CostReport

# Practitioners' rule of thumb: a typical task's cost warrants an alarm at 10x and a hard stop at 50x.
ALARM_X, HARD_STOP_X = 10, 50


def cost_result(rep: CostReport) -> Result:
    """The report as printed by `agentlens costs` and shown in the HTML report."""
    res = rep.result()
    median = rep.headline.get("median_cost_usd")
    if rep.budgets.run_cap is None and median:
        res.facts["budgets"] = (f"{res.facts['budgets']} (rule of thumb: run_usd = {ALARM_X}x the median = "
                                f"{median * ALARM_X:.4g}, run_usd_hard = {HARD_STOP_X}x = {median * HARD_STOP_X:.4g})")
    res.tables = {(f"{name}: add a pricing override, then agentlens reprice" if name == UNPRICED_TABLE else name): df
                  for name, df in res.tables.items()}
    return res
