"""Spending caps from the config, shared by cost attribution, signals and alerts:

```toml
[budgets]
run_usd = 4.0          # alarm when one run costs more (10x a typical $0.40 task)
run_usd_hard = 20.0    # hard stop (50x)

[budgets.daily_usd]    # per day, per dimension value; "*" applies to every value without its own cap
feature = { refund = 50.0, "*" = 100.0 }
customer_id = { cust_0042 = 10.0 }
```
Unset caps are None: agentlens never invents a budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.config import Config, Invalid, Section
from ..core.dimensions import BUDGET_DIMENSIONS


@dataclass(frozen=True)
class Budgets:
    run_usd: float | None = None
    run_usd_hard: float | None = None
    daily_usd: dict[str, dict[str, float]] = field(default_factory=dict)

    def daily_cap(self, dimension: str, value: str | None) -> float | None:
        caps = self.daily_usd.get(dimension, {})
        if value is not None and value in caps:
            return caps[value]
        return caps.get("*")


def usd_amount(v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0 or v != v or v == float("inf"):
        raise Invalid("must be a positive number of USD")
    return float(v)


BUDGET_KEYS = ("run_usd", "run_usd_hard", "daily_usd")


def load_budgets(config: Config) -> Budgets:
    """The `[budgets]` section, validated (errors name the file and the key)."""
    section = Section.of(config, "budgets").only(BUDGET_KEYS, "a budget")
    run = section.value("run_usd", usd_amount, None)
    hard = section.value("run_usd_hard", usd_amount, None)
    if run is not None and hard is not None and hard < run:
        raise section.fail(f"({hard}) is below run_usd ({run})", "run_usd_hard")
    daily_section = section.table("daily_usd").only(BUDGET_DIMENSIONS, "a dimension")
    daily: dict[str, dict[str, float]] = {}
    for dim in daily_section:
        caps = daily_section.table(dim)
        daily[dim] = {str(k): caps.value(k, usd_amount) for k in caps}
    return Budgets(run, hard, daily)
