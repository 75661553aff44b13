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

from ..core.config import Config, ConfigError
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


def _amount(v: object, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
        raise ConfigError(f"{where} must be a positive number of USD, got {v!r}")
    return float(v)


def load_budgets(config: Config) -> Budgets:
    where = config.path or "config"
    section = config.raw.get("budgets", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: [budgets] must be a table")
    known = {"run_usd", "run_usd_hard", "daily_usd"}
    for key in section:
        if key not in known:
            raise ConfigError(f"{where}: [budgets].{key} is not a budget; use one of {', '.join(sorted(known))}")
    run = _amount(section["run_usd"], f"{where}: [budgets].run_usd") if "run_usd" in section else None
    hard = (_amount(section["run_usd_hard"], f"{where}: [budgets].run_usd_hard")
            if "run_usd_hard" in section else None)
    if run is not None and hard is not None and hard < run:
        raise ConfigError(f"{where}: [budgets].run_usd_hard ({hard}) is below run_usd ({run})")
    daily: dict[str, dict[str, float]] = {}
    raw_daily = section.get("daily_usd", {})
    if not isinstance(raw_daily, dict):
        raise ConfigError(f"{where}: [budgets.daily_usd] must be a table of dimensions")
    for dim, caps in raw_daily.items():
        if dim not in BUDGET_DIMENSIONS:
            raise ConfigError(f"{where}: [budgets.daily_usd].{dim} is not a dimension; use one of "
                              f"{', '.join(BUDGET_DIMENSIONS)}")
        if not isinstance(caps, dict):
            raise ConfigError(f"{where}: [budgets.daily_usd].{dim} must map values to USD caps")
        daily[dim] = {str(k): _amount(v, f"{where}: [budgets.daily_usd].{dim}.{k}") for k, v in caps.items()}
    return Budgets(run, hard, daily)
