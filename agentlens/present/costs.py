"""The cost report for a person: what agentlens.metrics.costs found, with the advice a reader needs
next (a rule of thumb for budgets when none is configured, how to price a model that has no price).
The library's CostReport keeps the numbers as data; this adds the words."""

from __future__ import annotations

import polars as pl

from ..core.results import Result
from ..metrics.costs import ALARM_X, HARD_STOP_X, SUGGESTED_TABLE, UNPRICED_TABLE, CostReport


def cost_result(rep: CostReport) -> Result:
    """The report as printed by `agentlens costs` and shown in the HTML report."""
    res = rep.result()
    median = rep.headline.get("median_cost_usd")
    if rep.budgets.run_cap is None and median:
        every = rep.suggested.filter(pl.col("all_runs"))
        flagged = (f": would flag {every['runs_over_alarm'].item():,} / {every['runs_over_hard_stop'].item():,} of "
                   f"{every['runs'].item():,} runs" if every.height else "")
        per = rep.suggested.filter(~pl.col("all_runs"))
        res.facts["budgets"] = (f"{res.facts['budgets']} (rule of thumb over all runs: run_usd = {ALARM_X}x the median = "
                                f"{median * ALARM_X:.4g}, run_usd_hard = {HARD_STOP_X}x = {median * HARD_STOP_X:.4g}"
                                f"{flagged}" + (f"; a typical run costs different amounts per {per.columns[0]}: "
                                                f"caps per {per.columns[0]} below" if per.height > 1 else "") + ")")
        if per.height > 1:
            dim = per.columns[0]
            res.tables[SUGGESTED_TABLE.format(dim=dim)] = per.select(
                dim, "runs", pl.col("median_cost_usd").alias("median/run"),
                pl.col("alarm_usd").alias(f"alarm ({ALARM_X}x)"), pl.col("runs_over_alarm").alias("runs over alarm"),
                pl.col("hard_stop_usd").alias(f"hard stop ({HARD_STOP_X}x)"),
                pl.col("runs_over_hard_stop").alias("runs over hard stop"))
    res.tables = {(f"{name}: add a pricing override, then agentlens reprice" if name == UNPRICED_TABLE else name): df
                  for name, df in res.tables.items()}
    return res
