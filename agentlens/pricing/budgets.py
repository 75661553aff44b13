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

A run is over its budget when its cost is above its cap (`Budgets.run_cap`: `run_usd`, else
`run_usd_hard` when only the hard stop is set), strictly above, and a run without a known cost never
is: `over_budget_sql()` says so in SQL, `Budgets.over()` in Python. Cost attribution (runs over
budget, alarm or hard stop), the golden signals (`runs_over_budget`), the alerts and the
`budget_exceeded` classifier's default cap all use this one definition.
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

    @property
    def run_cap(self) -> float | None:
        """The cost above which a run is over its budget: `run_usd` (the alarm), else `run_usd_hard`."""
        return self.run_usd if self.run_usd is not None else self.run_usd_hard

    @property
    def run_cap_key(self) -> str | None:
        """Which setting `run_cap` comes from ("run_usd" or "run_usd_hard"), None without a cap."""
        return "run_usd" if self.run_usd is not None else "run_usd_hard" if self.run_usd_hard is not None else None

    def over(self, cost: float | None) -> bool | None:
        """Whether a run of this cost is over its budget (None: no cap, or no known cost); the Python twin
        of `over_budget_sql`."""
        cap = self.run_cap
        return None if cap is None or cost is None else cost > cap

    def level(self, cost: float | None) -> str | None:
        """`hard stop` above `run_usd_hard`, else `alarm` above the run cap, else None."""
        if self.run_usd_hard is not None and cost is not None and cost > self.run_usd_hard:
            return "hard stop"
        return "alarm" if self.over(cost) else None

    def daily_cap(self, dimension: str, value: str | None) -> float | None:
        caps = self.daily_usd.get(dimension, {})
        if value is not None and value in caps:
            return caps[value]
        return caps.get("*")


def over_budget_sql(cost: str, cap: str) -> str:
    """SQL: the run whose cost is the expression `cost` is over the cap `cap` (a bound parameter, `?` or
    `$run_cap`, or a column holding one). NULL when the cost or the cap is unknown: a run without a known
    cost is never over its budget."""
    return f"({cost} > {cap}::DOUBLE)"


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
