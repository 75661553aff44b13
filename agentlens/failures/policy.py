"""The `[policy]` config: caps, tool lists and thresholds the failure classifiers judge runs by.

```toml
[policy]
max_cost_usd_per_run = 4.0        # default: the [budgets] run cap (run_usd, else run_usd_hard), else 4.0
max_tokens_per_run = 200000
max_llm_calls_per_run = 25
max_tool_calls_per_run = 25
max_duration_s_per_run = 300
tool_allowlist = []               # tools always valid, besides those each LLM call was offered
side_effect_tools = ["send_*", "create_*", "charge_*", "refund_*", "pay_*", "transfer_*",
                     "delete_*", "post_*", "book_*", "order_*"]
irreversible_tools = ["delete_*", "refund_*", "charge_*", "pay_*", "transfer_*", "wire_*",
                      "drop_*", "purge_*", "destroy_*"]
approval_spans = ["*approval*", "*approve*", "human_review*", "*human_in_the_loop*"]
injection_patterns = [...]        # RE2 regular expressions (default: agentlens.failures.patterns.INJECTION)
loop_threshold = 3                # same tool + same arguments this many times in a run
retry_threshold = 3               # failed attempts of one call in a row
transient_error_threshold = 2     # rate limits (or timeouts, or provider errors) of LLM calls in a run that are
                                  # reported though a retry answered them (an unanswered one always is)
context_window_ratio = 0.95       # input tokens at or above this share of the model's window

[policy.fleet]
baseline_days = 7                 # the days before a day that make its baseline
min_baseline_days = 3             # days with activity needed before judging a day
spike_factor = 3.0                # a day is a spike at >= spike_factor x its baseline ...
spike_min_excess_usd = 5.0        # ... and at least this many USD above it
spike_dimensions = ["feature", "customer_id", "tool"]
amount_keys = ["amount", "amount_usd", "total", "total_usd", "price"]
storm_gap_minutes = 5.0           # failures of one dependency at most this far apart form one storm
storm_min_runs = 5                # runs a storm must touch
```

Tool lists are glob patterns (`*`, `?`, `[...]`) matched case-insensitively against tool names; a
list given in the config replaces the default list. A classifier that uses a default says so in its
explanation ("cap 25 (default)").
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from ..core import patterns
from ..core.config import Config, Invalid, Section, integer, positive_number, strings
from ..pricing.budgets import load_budgets

DEFAULT_SIDE_EFFECT_TOOLS = ("send_*", "create_*", "charge_*", "refund_*", "pay_*", "transfer_*", "delete_*",
                             "post_*", "book_*", "order_*")
DEFAULT_IRREVERSIBLE_TOOLS = ("delete_*", "refund_*", "charge_*", "pay_*", "transfer_*", "wire_*", "drop_*",
                              "purge_*", "destroy_*")
DEFAULT_APPROVAL_SPANS = ("*approval*", "*approve*", "human_review*", "*human_in_the_loop*")
DEFAULT_COST_CAP_USD = 4.0

SPIKE_DIMENSIONS = ("feature", "customer_id", "tool")


@dataclass(frozen=True)
class FleetPolicy:
    baseline_days: int = 7
    min_baseline_days: int = 3
    spike_factor: float = 3.0
    spike_min_excess_usd: float = 5.0
    spike_dimensions: tuple[str, ...] = SPIKE_DIMENSIONS
    amount_keys: tuple[str, ...] = ("amount", "amount_usd", "total", "total_usd", "price")
    storm_gap_minutes: float = 5.0
    storm_min_runs: int = 5


@dataclass(frozen=True)
class Policy:
    max_cost_usd_per_run: float = DEFAULT_COST_CAP_USD
    max_tokens_per_run: int = 200_000
    max_llm_calls_per_run: int = 25
    max_tool_calls_per_run: int = 25
    max_duration_s_per_run: float = 300.0
    tool_allowlist: tuple[str, ...] = ()
    side_effect_tools: tuple[str, ...] = DEFAULT_SIDE_EFFECT_TOOLS
    irreversible_tools: tuple[str, ...] = DEFAULT_IRREVERSIBLE_TOOLS
    approval_spans: tuple[str, ...] = DEFAULT_APPROVAL_SPANS
    injection_patterns: tuple[str, ...] = patterns.INJECTION
    loop_threshold: int = 3
    retry_threshold: int = 3
    transient_error_threshold: int = 2
    context_window_ratio: float = 0.95
    fleet: FleetPolicy = field(default_factory=FleetPolicy)
    # where each top-level value came from: "default", "config" or another section ("[budgets].run_usd")
    origin: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def src(self, key: str) -> str:
        """Where a value came from, for explanations: 'default', 'from config' or 'from [budgets].run_usd'."""
        origin = self.origin.get(key, "default")
        return "default" if origin == "default" else f"from {origin}"

    def note(self, key: str) -> str:
        """Suffix for explanations: ' (default)' when the value is agentlens's default, '' from the config."""
        s = self.src(key)
        return "" if s == "from config" else f" ({s})"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("origin")
        return d

    @functools.cached_property
    def hash(self) -> str:
        """First 16 hex of the SHA-256 of the effective policy (stored with every detection)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def injection_regex(self) -> str:
        """All injection patterns as one RE2 alternation (each keeps its own flags)."""
        return "|".join(f"(?:{p})" for p in self.injection_patterns)


def _ratio(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 1:
        raise Invalid("must be a number in (0, 1]")
    return float(v)


def _factor(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or v <= 1:
        raise Invalid("must be a number above 1")
    return float(v)


def _number0(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise Invalid("must be a number >= 0")
    return float(v)


def _regexes(v: Any) -> tuple[str, ...]:
    """RE2 patterns, validated with the engine that will run them (DuckDB's), not Python's `re`."""
    patterns_ = strings(v)
    con = duckdb.connect()
    try:
        for p in patterns_:
            try:
                con.execute("SELECT regexp_matches('', ?)", [p]).fetchall()
            except duckdb.Error as e:
                raise Invalid(f"must list RE2 regular expressions: {p!r} is not a valid RE2 regular expression ({e})",
                              show_value=False) from None
    finally:
        con.close()
    return patterns_


def _spend_dims(v: Any) -> tuple[str, ...]:
    dims = strings(v)
    for x in dims:
        if x not in SPIKE_DIMENSIONS:
            raise Invalid(f"must list spend dimensions: {x!r} is not a spend dimension; use {', '.join(SPIKE_DIMENSIONS)}",
                          show_value=False)
    return dims


_TOP: dict[str, Callable[[Any], Any]] = {
    "max_cost_usd_per_run": positive_number, "max_tokens_per_run": integer(1), "max_llm_calls_per_run": integer(1),
    "max_tool_calls_per_run": integer(1), "max_duration_s_per_run": positive_number, "tool_allowlist": strings,
    "side_effect_tools": strings, "irreversible_tools": strings, "approval_spans": strings,
    "injection_patterns": _regexes, "loop_threshold": integer(2, "must be an integer of at least 2"),
    "retry_threshold": integer(2, "must be an integer of at least 2"), "context_window_ratio": _ratio,
    "transient_error_threshold": integer(1),
}
_FLEET: dict[str, Callable[[Any], Any]] = {
    "baseline_days": integer(1), "min_baseline_days": integer(1), "spike_factor": _factor,
    "spike_min_excess_usd": _number0, "spike_dimensions": _spend_dims, "amount_keys": strings,
    "storm_gap_minutes": positive_number, "storm_min_runs": integer(2, "must be an integer of at least 2"),
}


def load_policy(config: Config | None = None) -> Policy:
    """The effective policy: `[policy]` of the config over the documented defaults."""
    config = config or Config()
    section = Section.of(config, "policy").only(sorted([*_TOP, "fleet"]), "a policy key")
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, check in _TOP.items():
        if key in section:
            values[key] = section.value(key, check)
            origin[key] = "config"
    if "max_cost_usd_per_run" not in values:
        budgets = load_budgets(config)  # the budget_exceeded cap is the run cap of [budgets] when set
        if budgets.run_cap is not None:
            values["max_cost_usd_per_run"] = budgets.run_cap
            origin["max_cost_usd_per_run"] = f"[budgets].{budgets.run_cap_key}"
    fleet_section = section.table("fleet").only(sorted(_FLEET), "a fleet policy key")
    fleet: dict[str, Any] = {}
    for key, check in _FLEET.items():
        if key in fleet_section:
            fleet[key] = fleet_section.value(key, check)
            origin[f"fleet.{key}"] = "config"
    fp = FleetPolicy(**fleet)
    if fp.min_baseline_days > fp.baseline_days:
        raise fleet_section.fail(f"({fp.min_baseline_days}) is more than baseline_days ({fp.baseline_days})",
                                 "min_baseline_days")
    return Policy(**values, fleet=fp, origin=origin)
