"""Prices and computed costs: model prices from genai-prices plus the overrides in the config,
applied in SQL to the calls that make up each run's cost.

What is priced: the calls a run's token totals count (see `BUILD_RUNS`: LLM spans reporting usage
with no LLM span with usage below them), or, in a run without any, the root span's own usage (an
agent_runs row is one such record). Wrapper LLM spans and agent spans carrying their children's
totals are never priced again.

How: the distinct (model, provider) pairs of those calls are resolved in Python (few rows) into a
price table of segments (validity dates, time of day, input-token tier) evaluated by genai-prices
itself, registered in DuckDB; one SQL pass joins each call to the segment of its start time and
computes its cost from its tokens:

    cost = (input - cached - cache_write) * input rate + cached * cached-input rate
         + cache_write * cache-write rate + (output - reasoning) * output rate
         + reasoning * reasoning rate                                      (all per 1M tokens)
         + per-request price

Input tokens include cached and cache-write tokens and output tokens include reasoning tokens (OTel
GenAI, OpenInference), which is also what genai-prices' `Usage.input_tokens` means; a rate the
price does not give separately falls back to the input (or output) rate, as genai-prices does.

Config (`[pricing]`, all keys optional):

```toml
[pricing]
reconcile_relative = 0.01        # reported vs computed cost: flag beyond 1% ...
reconcile_absolute_usd = 0.000001  # ... and beyond $0.000001 (sources round to 6 decimals)
headline_cost = "computed"       # cost_usd where the two disagree: "computed" (default) or "reported"

[[pricing.overrides]]            # negotiated rates, self-hosted or fine-tuned models
model = "acme-finetune-v1"       # as recorded on the spans (case-insensitive)
provider = "openai"              # optional: only calls recorded with this provider
effective_from = 2026-11-01      # optional (UTC date): from this day on; a later one wins
input_per_mtok = 0.20            # USD per million tokens (required)
output_per_mtok = 0.80           # (required)
cached_input_per_mtok = 0.05     # optional, default: input_per_mtok
cache_write_per_mtok = 0.25      # optional, default: input_per_mtok
reasoning_per_mtok = 0.80        # optional, default: output_per_mtok
per_request_usd = 0.0            # optional, a fixed price per call
note = "GPU cost, Nov 2026"      # optional, shown in price_source
```

An override applies to calls on or after its `effective_from` and beats genai-prices; before the
first one, genai-prices' price of the day applies (or the call is unpriced). A model with no price
is never priced at 0: its calls keep `computed_cost_usd` NULL and `price_source` says why.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl

from ..core.config import Config, Invalid, Section
from ..core.duck import registered
from ..core.results import BaseResult, Result
from ..store import Store
from ..store import runsql as Q

if TYPE_CHECKING:  # genai-prices is imported where a price is looked up (~0.1 s: a command that shows runs never pays it)
    from genai_prices import types as gp
from ..store import tables as T
from .models import genai_model

DAY_US = 86_400_000_000
UTC = dt.UTC

# --- config ------------------------------------------------------------------------------------

RATE_KEYS = ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok",
             "reasoning_per_mtok", "per_request_usd")
OVERRIDE_KEYS = ("model", "provider", "effective_from", "note", *RATE_KEYS)
PRICING_KEYS = ("overrides", "reconcile_relative", "reconcile_absolute_usd", "headline_cost")
HEADLINE_CHOICES = ("computed", "reported")


@dataclass(frozen=True)
class Override:
    model: str
    input_per_mtok: float
    output_per_mtok: float
    provider: str | None = None
    effective_from: dt.date | None = None
    cached_input_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None
    reasoning_per_mtok: float | None = None
    per_request_usd: float | None = None
    note: str | None = None

    @property
    def source(self) -> str:
        s = f"override:{self.model}"
        if self.provider:
            s += f" ({self.provider})"
        if self.effective_from:
            s += f"@{self.effective_from.isoformat()}"
        if self.note:
            s += f" {self.note}"
        return s


@dataclass(frozen=True)
class PricingConfig:
    overrides: tuple[Override, ...] = ()
    reconcile_relative: float = 0.01
    reconcile_absolute_usd: float = 0.000001
    headline_cost: str = "computed"  # the figure cost_usd takes where reported and computed disagree


def cost_params(cfg: PricingConfig) -> dict[str, Any]:
    """The named parameters of the headline rule (store.runsql HEADLINE_NOTE)."""
    return {"reconcile_rel": cfg.reconcile_relative, "reconcile_abs": cfg.reconcile_absolute_usd,
            "headline": cfg.headline_cost}


def _rate(v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0 or v != v or v == float("inf"):
        raise Invalid("must be a non-negative number of USD")
    return float(v)


def _headline(v: object) -> str:
    if v not in HEADLINE_CHOICES:
        raise Invalid(f"must be one of {', '.join(repr(c) for c in HEADLINE_CHOICES)}")
    return str(v)


def _date(v: object) -> dt.date:
    if isinstance(v, dt.datetime):
        return (v if v.tzinfo else v.replace(tzinfo=UTC)).astimezone(UTC).date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            pass
    raise Invalid("must be a date such as 2026-11-01")


def _provider(v: object) -> str:
    if not isinstance(v, str) or not v.strip():
        raise Invalid('must be a provider name such as "openai"')
    return v.strip().lower()


def _note(v: object) -> str:
    if not isinstance(v, str):
        raise Invalid("must be text")
    return v


def load_pricing(config: Config) -> PricingConfig:
    """The `[pricing]` section, validated (errors name the file and the key)."""
    section = Section.of(config, "pricing").only(PRICING_KEYS, "a pricing setting")
    rel = section.value("reconcile_relative", _rate, 0.01)
    absolute = section.value("reconcile_absolute_usd", _rate, 0.000001)
    headline = section.value("headline_cost", _headline, "computed")
    overrides = []
    seen: dict[tuple[str, str | None, dt.date | None], int] = {}
    for i, o in enumerate(section.tables("overrides"), 1):
        model = o.get("model")
        if not isinstance(model, str) or not model.strip():
            raise o.fail("is required (the model name as recorded on the spans)", "model")
        o = o.named(f' (model "{model}")').only(OVERRIDE_KEYS, "an override key")
        o.require("input_per_mtok", "output_per_mtok")
        rates = {k: o.value(k, _rate) for k in RATE_KEYS if k in o}
        eff = o.value("effective_from", _date, None)
        ov = Override(model=model.strip(), provider=o.value("provider", _provider, None), effective_from=eff,
                      note=o.value("note", _note, None), **rates)
        key3 = (ov.model.lower(), ov.provider, eff)
        if key3 in seen:
            raise o.fail(f"has the same model, provider and effective_from as override #{seen[key3]}")
        seen[key3] = i
        overrides.append(ov)
    return PricingConfig(tuple(overrides), rel, absolute, headline)


# --- the price table -----------------------------------------------------------------------------

PRICE_SCHEMA: dict[str, Any] = {
    "model": pl.String,            # lowercased model name, the join key
    "provider": pl.String,         # provider as recorded (genai-prices rows) or of the override
    "any_provider": pl.Boolean,    # an override without provider applies whatever the provider
    "priority": pl.Int8,           # 0 override, 1 genai-prices
    "valid_from": pl.Datetime("us", "UTC"),
    "valid_until": pl.Datetime("us", "UTC"),
    "tod_from_us": pl.Int64,       # time-of-day window (UTC microseconds since midnight)
    "tod_until_us": pl.Int64,
    "tier_above": pl.Int64,        # applies when the call's input tokens > tier_above ...
    "tier_upto": pl.Int64,         # ... and <= tier_upto
    "input_per_mtok": pl.Float64,
    "cached_input_per_mtok": pl.Float64,
    "cache_write_per_mtok": pl.Float64,
    "output_per_mtok": pl.Float64,
    "reasoning_per_mtok": pl.Float64,
    "per_request_usd": pl.Float64,
    "source": pl.String,
}

# genai-prices price keys -> our rate columns (modality-specific prices need usage we do not have)
_GP_KEYS = {
    "input_mtok": "input_per_mtok",
    "cache_read_mtok": "cached_input_per_mtok",
    "cache_write_mtok": "cache_write_per_mtok",
    "output_mtok": "output_per_mtok",
    "output_reasoning_mtok": "reasoning_per_mtok",
}


def _midnight(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, tzinfo=UTC)


def _tod_us(t: dt.time) -> int:
    u = dt.datetime.combine(dt.date(1970, 1, 1), t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)
    return ((u.hour * 60 + u.minute) * 60 + u.second) * 1_000_000 + u.microsecond


def _segments(info: gp.ModelInfo) -> list[tuple[dt.date | None, dt.date | None, int | None, int | None,
                                                  gp.ModelPrice]]:
    """The model's prices as segments over which they are constant: between start dates, and
    within a day between time-of-day boundaries. Each segment's price is what genai-prices itself
    picks at a moment inside it, so its precedence rules are followed exactly."""
    from genai_prices import types as gp

    if isinstance(info.prices, gp.ModelPrice):
        return [(None, None, None, None, info.prices)]
    starts = sorted({c.constraint.start_date for c in info.prices if isinstance(c.constraint, gp.StartDateConstraint)})
    cuts = sorted({_tod_us(t) for c in info.prices if isinstance(c.constraint, gp.TimeOfDateConstraint)
                   for t in (c.constraint.start_time, c.constraint.end_time)} - {0})
    dates: list[tuple[dt.date | None, dt.date | None]] = list(zip([None, *starts], [*starts, None], strict=True))
    tods: list[tuple[int | None, int | None]] = (
        list(zip([0, *cuts], [*cuts, DAY_US], strict=True)) if cuts else [(None, None)])
    out = []
    for d0, d1 in dates:
        day = d0 if d0 is not None else (d1 - dt.timedelta(days=1) if d1 is not None else dt.date(2024, 1, 1))
        for t0, t1 in tods:
            at = _midnight(day) + dt.timedelta(microseconds=t0 or 0)
            out.append((d0, d1, t0, t1, info.get_prices(at)))
    return out


def _dec(v: Any) -> float | None:
    return float(v) if isinstance(v, Decimal) else None


def _tiers(price: gp.ModelPrice) -> list[tuple[int | None, int | None, dict[str, float | None]]]:
    """(tier_above, tier_upto, rates) bands: a tier applies to all tokens of a call whose input
    tokens exceed its start (genai-prices' threshold model)."""
    from genai_prices import types as gp

    values = {k: getattr(price, k) for k in (*_GP_KEYS, "requests_kcount")}
    starts = sorted({t.start for v in values.values() if isinstance(v, gp.TieredPrices) for t in v.tiers})
    bands = list(zip([None, *starts], [*starts, None], strict=True))
    out = []
    for lo, hi in bands:
        rates: dict[str, float | None] = {}
        for k, v in values.items():
            if isinstance(v, gp.TieredPrices):
                chosen = v.base
                for t in v.tiers:
                    if lo is not None and t.start <= lo:
                        chosen = t.price
                rates[k] = float(chosen)
            else:
                rates[k] = _dec(v)
        out.append((lo, hi, rates))
    return out


def _genai_rows(model: str, provider: str | None) -> list[dict[str, Any]]:
    found = genai_model(model, provider)
    if found is None:
        return []
    gprov, info = found
    rows = []
    for d0, d1, t0, t1, price in _segments(info):
        for lo, hi, r in _tiers(price):
            if r["input_mtok"] is None and r["output_mtok"] is None and r["requests_kcount"] is None:
                continue  # no token or request price (an image or audio model): not priceable here
            src = f"genai-prices:{gprov.id}/{info.id}"
            if d0 is not None:
                src += f"@{d0.isoformat()}"
            if t0 is not None and t1 is not None:
                src += f" {t0 // 3_600_000_000:02d}:{t0 // 60_000_000 % 60:02d}-" \
                       f"{t1 // 3_600_000_000:02d}:{t1 // 60_000_000 % 60:02d} UTC"
            if lo is not None:
                src += f" input>{lo:,}"
            rows.append({
                "model": model.lower(), "provider": provider, "any_provider": False, "priority": 1,
                "valid_from": _midnight(d0) if d0 else None, "valid_until": _midnight(d1) if d1 else None,
                "tod_from_us": t0, "tod_until_us": t1, "tier_above": lo, "tier_upto": hi,
                "input_per_mtok": r["input_mtok"] or 0.0,
                "cached_input_per_mtok": r["cache_read_mtok"],
                "cache_write_per_mtok": r["cache_write_mtok"],
                "output_per_mtok": r["output_mtok"] or 0.0,
                "reasoning_per_mtok": r["output_reasoning_mtok"],
                "per_request_usd": r["requests_kcount"] / 1000 if r["requests_kcount"] is not None else None,
                "source": src,
            })
    return rows


def _override_row(o: Override, model_key: str) -> dict[str, Any]:
    return {
        "model": model_key, "provider": o.provider, "any_provider": o.provider is None, "priority": 0,
        "valid_from": _midnight(o.effective_from) if o.effective_from else None, "valid_until": None,
        "tod_from_us": None, "tod_until_us": None, "tier_above": None, "tier_upto": None,
        "input_per_mtok": o.input_per_mtok, "cached_input_per_mtok": o.cached_input_per_mtok,
        "cache_write_per_mtok": o.cache_write_per_mtok, "output_per_mtok": o.output_per_mtok,
        "reasoning_per_mtok": o.reasoning_per_mtok, "per_request_usd": o.per_request_usd, "source": o.source,
    }


def price_table(pairs: Iterable[tuple[str, str | None]], pricing: PricingConfig | None = None) -> pl.DataFrame:
    """Price rows for the given recorded (model, provider) pairs: the config's overrides for those
    models, then genai-prices' dated and tiered prices. Register it in DuckDB as `_prices`."""
    pricing = pricing or PricingConfig()
    rows: list[dict[str, Any]] = []
    pairs = [(m, p) for m, p in dict.fromkeys(pairs) if m]
    wanted = {m.lower() for m, _ in pairs}
    for o in pricing.overrides:
        if o.model.lower() in wanted:
            rows.append(_override_row(o, o.model.lower()))
    for m, p in pairs:
        rows.extend(_genai_rows(m, p))
    return pl.DataFrame(rows, schema=PRICE_SCHEMA)


def what_if_table(model: str, provider: str | None = None, pricing: PricingConfig | None = None) -> pl.DataFrame:
    """Prices of one model for a what-if comparison (overrides first, then genai-prices)."""
    pricing = pricing or PricingConfig()
    rows = [_override_row(o, model.lower()) for o in pricing.overrides
            if o.model.lower() == model.lower() and (o.provider is None or provider is None or o.provider == provider)]
    rows += _genai_rows(model, provider)
    if not rows:
        raise LookupError(f"no price for model {model!r}"
                          + (f" (provider {provider!r})" if provider else "")
                          + ": genai-prices does not know it and no [[pricing.overrides]] entry names it")
    return pl.DataFrame(rows, schema=PRICE_SCHEMA)


# --- SQL -----------------------------------------------------------------------------------------

# The cost of one call from its tokens and the rates of its price segment (rates per 1M tokens).
COST_MACRO = """
CREATE OR REPLACE TEMP MACRO agentlens_call_cost(i, cr, cw, o, r, p_in, p_cr, p_cw, p_out, p_r, p_req) AS
  ((i - cr - cw) * p_in + cr * coalesce(p_cr, p_in) + cw * coalesce(p_cw, p_in)
   + (o - r) * p_out + r * coalesce(p_r, p_out)) / 1e6 + coalesce(p_req, 0)
"""

PRICE_SET = """
INSERT INTO _price_set
WITH RECURSIVE
s AS (
  SELECT """ + ", ".join(f"sp.{c}" for c in Q.PRICED_SPAN_COLUMNS) + """
  FROM spans sp WHERE sp.run_id IN (SELECT run_id FROM _price_runs)
),
""" + Q.RUN_CALLS_CTES + """,""" + Q.RUN_PRICED_CALLS_SELECT + """FROM calls c
LEFT JOIN (SELECT run_id, started_at, model FROM runs WHERE run_id IN (SELECT run_id FROM _price_runs)) r
  ON r.run_id = c.run_id
"""  # noqa: S608 - joins fixed SQL texts (RUN_CALLS_CTES), never a value
# The same before the runs' spans are stored (price_staged_step): from their staged narrow columns (`_narrow`),
# the run's start and model as BUILD_RUNS will give them (its first span's start, sql.RUN_MODEL_CTES).
PRICE_SET_STAGED = """
INSERT INTO _price_set
WITH RECURSIVE
s AS (SELECT """ + ", ".join(Q.PRICED_SPAN_COLUMNS) + """ FROM _narrow SEMI JOIN _price_runs a USING (run_id)),
""" + Q.RUN_CALLS_CTES + """,
""" + Q.RUN_MODEL_CTES + """,
run_of AS (SELECT s.run_id, min(s.started_at) AS started_at, any_value(m.model) AS model
           FROM s LEFT JOIN models m USING (run_id) GROUP BY s.run_id),""" + Q.RUN_PRICED_CALLS_SELECT + """FROM calls c LEFT JOIN run_of r ON r.run_id = c.run_id
"""  # noqa: S608 - joins fixed SQL texts (RUN_CALLS_CTES, RUN_MODEL_CTES), never a value

PRICE_PAIRS = "SELECT DISTINCT model, provider FROM _price_set WHERE has_usage AND model IS NOT NULL"

# Each call's price segment (an override of the day beats genai-prices; the latest override wins)
# and its computed cost; `price_source` says where the price came from, or why there is none.
SPAN_COSTS = """
INSERT INTO _span_costs
WITH c AS (SELECT * FROM _price_set WHERE has_usage),
m AS (
  SELECT c.run_id, c.span_id, p.*
  FROM c JOIN _prices p
    ON p.model = lower(c.model)
   AND (p.any_provider OR p.provider IS NOT DISTINCT FROM c.provider)
   AND (p.valid_from IS NULL OR c.at >= p.valid_from)
   AND (p.valid_until IS NULL OR c.at < p.valid_until)
   AND (p.tod_from_us IS NULL OR epoch_us(c.at) % 86400000000 >= p.tod_from_us)
   AND (p.tod_until_us IS NULL OR epoch_us(c.at) % 86400000000 < p.tod_until_us)
   AND (p.tier_above IS NULL OR c.i > p.tier_above)
   AND (p.tier_upto IS NULL OR c.i <= p.tier_upto)
  QUALIFY row_number() OVER (
    PARTITION BY c.run_id, c.span_id
    ORDER BY p.priority, p.valid_from DESC NULLS LAST, p.any_provider, p.source) = 1
)
SELECT c.run_id, c.span_id,
       CASE WHEN m.source IS NOT NULL AND c.cr + c.cw <= c.i AND c.r <= c.o
            THEN agentlens_call_cost(c.i, c.cr, c.cw, c.o, c.r, m.input_per_mtok, m.cached_input_per_mtok,
                                     m.cache_write_per_mtok, m.output_per_mtok, m.reasoning_per_mtok,
                                     m.per_request_usd)
            WHEN m.source IS NULL AND c.i = 0 AND c.o = 0 THEN 0.0
       END AS computed_cost_usd,
       CASE WHEN m.source IS NULL AND c.i = 0 AND c.o = 0 THEN 'no tokens'
            WHEN c.model IS NULL THEN 'unpriced: no model recorded'
            WHEN m.source IS NULL THEN 'unpriced: no price for this model'
            WHEN c.cr + c.cw > c.i THEN 'unpriced: cached + cache-write tokens exceed input tokens'
            WHEN c.r > c.o THEN 'unpriced: reasoning tokens exceed output tokens'
            ELSE m.source
       END AS price_source
FROM c LEFT JOIN m ON m.run_id = c.run_id AND m.span_id = c.span_id
"""

# The priced runs' spans (and runs, in PRICE_SET's `r`) are looked up by run id alone, their rowids kept in
# `_priced_spans`: DuckDB then serves the look-up from the run_id index, and the updates find the rows by rowid.
# Joined on the ids, or the look-up inside the update, each update read the run id of every stored span (25-30 ms
# at 10M spans, for one run whose root came late; 1 ms now).
PRICED_SPANS = """
CREATE OR REPLACE TEMP TABLE _priced_spans AS
SELECT rowid AS rid, run_id, span_id FROM spans WHERE run_id IN (SELECT run_id FROM _price_runs)
"""
CLEAR_SPAN_COSTS = """
UPDATE spans SET computed_cost_usd = NULL, price_source = NULL
WHERE rowid IN (SELECT rid FROM _priced_spans) AND (computed_cost_usd IS NOT NULL OR price_source IS NOT NULL)
"""
SET_SPAN_COSTS = """
UPDATE spans SET computed_cost_usd = c.computed_cost_usd, price_source = c.price_source
FROM (SELECT p.rid, c.computed_cost_usd, c.price_source
      FROM _priced_spans p JOIN _span_costs c USING (run_id, span_id)) c
WHERE spans.rowid = c.rid
"""

SET_RUN_COSTS = """
UPDATE runs SET reported_cost_usd = x.reported, computed_cost_usd = x.computed,
                unpriced_llm_calls = x.unpriced, cost_usd = x.cost
FROM (""" + Q.RUN_COSTS_SELECT + """) x
WHERE runs.run_id = x.run_id
"""
# Before the runs are stored: their costs kept for the spans' insert (by `_row`) and the runs' build (sql.py)
STAGE_SPAN_COSTS = """
INSERT INTO _staged_span_costs
SELECT n._row, c.computed_cost_usd, c.price_source
FROM _span_costs c JOIN (SELECT _row, run_id, span_id FROM _narrow SEMI JOIN _price_runs USING (run_id)) n
  ON n.run_id = c.run_id AND n.span_id = c.span_id
"""
STAGE_RUN_COSTS = "INSERT INTO _staged_run_costs BY NAME " + Q.RUN_COSTS_SELECT
# Whether the runs of `_affected` were priced before they were stored (price_step has nothing left to do)
ALL_PRICED_STAGED = "SELECT count(*) = 0 FROM _affected a ANTI JOIN _staged_run_costs c USING (run_id)"

WHAT_IF_SCOPE_TEMPLATE = "CREATE OR REPLACE TEMP TABLE _cost_scope AS SELECT run_id, started_at FROM ({scope})"
# What the priced calls of the runs in `_cost_scope` would cost at the prices in `_what_if_prices`
# (same tokens, each call at the price of its own day).
WHAT_IF_RUNS = """
CREATE OR REPLACE TEMP TABLE _what_if AS
WITH c AS (
  SELECT s.run_id, s.span_id, coalesce(s.started_at, r.started_at) AS at,
         coalesce(s.input_tokens, 0) AS i, coalesce(s.cached_input_tokens, 0) AS cr,
         coalesce(s.cache_write_input_tokens, 0) AS cw, coalesce(s.output_tokens, 0) AS o,
         coalesce(s.reasoning_tokens, 0) AS r
  FROM spans s JOIN _cost_scope r ON r.run_id = s.run_id
  WHERE s.price_source IS NOT NULL
),
m AS (
  SELECT c.*, p.*
  FROM c JOIN _what_if_prices p
    ON (p.valid_from IS NULL OR c.at >= p.valid_from)
   AND (p.valid_until IS NULL OR c.at < p.valid_until)
   AND (p.tod_from_us IS NULL OR epoch_us(c.at) % 86400000000 >= p.tod_from_us)
   AND (p.tod_until_us IS NULL OR epoch_us(c.at) % 86400000000 < p.tod_until_us)
   AND (p.tier_above IS NULL OR c.i > p.tier_above)
   AND (p.tier_upto IS NULL OR c.i <= p.tier_upto)
  QUALIFY row_number() OVER (
    PARTITION BY c.run_id, c.span_id ORDER BY p.priority, p.valid_from DESC NULLS LAST, p.source) = 1
)
SELECT c.run_id,
       CASE WHEN count(m.span_id) = count(*) AND bool_and(c.cr + c.cw <= c.i AND c.r <= c.o)
            THEN sum(agentlens_call_cost(m.i, m.cr, m.cw, m.o, m.r, m.input_per_mtok, m.cached_input_per_mtok,
                                         m.cache_write_per_mtok, m.output_per_mtok, m.reasoning_per_mtok,
                                         m.per_request_usd) ORDER BY c.span_id) END AS what_if_cost_usd
FROM c LEFT JOIN m ON m.run_id = c.run_id AND m.span_id = c.span_id
GROUP BY c.run_id
"""



# --- running it ----------------------------------------------------------------------------------

def _span_costs(lens: Store, pricing: PricingConfig, price_set: str) -> None:
    """`_price_set` (the calls of the runs in `_price_runs`, by `price_set`) and `_span_costs` (their costs)."""
    con = lens.con
    con.execute(COST_MACRO)
    con.execute(T.PRICE_SET.create())
    con.execute(price_set)
    pairs = con.execute(PRICE_PAIRS).fetchall()
    table = price_table(((m, p) for m, p in pairs), pricing)
    con.execute(T.SPAN_COSTS.create())
    with registered(con, "_prices", table.to_arrow()):
        con.execute(SPAN_COSTS)


def _price(lens: Store, pricing: PricingConfig) -> None:
    """Price the runs in the temp table `_price_runs` (inside the caller's transaction)."""
    con = lens.con
    _span_costs(lens, pricing, PRICE_SET)
    con.execute(PRICED_SPANS)
    con.execute(CLEAR_SPAN_COSTS)
    con.execute(SET_SPAN_COSTS)
    con.execute("DROP TABLE _priced_spans")
    con.execute(SET_RUN_COSTS, cost_params(pricing))


def price_step(lens: Store) -> None:
    """Ingest step (agentlens.pipeline): price the runs the file touched (`_affected`), unless
    `price_staged_step` priced them before they were stored."""
    if lens.con.execute(ALL_PRICED_STAGED).fetchall()[0][0]:
        return
    lens.con.execute("CREATE OR REPLACE TEMP TABLE _price_runs AS SELECT DISTINCT run_id FROM _affected")
    _price(lens, load_pricing(lens.config))


def price_staged_step(lens: Store) -> None:
    """Staged ingest step (agentlens.pipeline, a file of new runs only): price the runs of `_affected` from
    their staged spans (`_narrow`) before they are stored, the same calls at the same prices as `price_step`
    (sql.STAGE_SPAN_COSTS_TABLE says why: no UPDATE of the rows the file adds)."""
    con = lens.con
    con.execute("CREATE OR REPLACE TEMP TABLE _price_runs AS SELECT DISTINCT run_id FROM _affected")
    cfg = load_pricing(lens.config)
    _span_costs(lens, cfg, PRICE_SET_STAGED)
    con.execute(STAGE_SPAN_COSTS)
    con.execute(STAGE_RUN_COSTS, cost_params(cfg))


@dataclass
class RepriceSummary(BaseResult):
    runs: int = 0
    priced_calls: int = 0
    unpriced_calls: int = 0
    changed_runs: int = 0
    cost_before: float | None = None
    cost_after: float | None = None
    seconds: float = 0.0
    unpriced: pl.DataFrame = field(default_factory=pl.DataFrame)
    # set by failures.reprice, which judges again what read the old costs
    judged_runs: int | None = None  # the runs whose cost changed, judged again against the budget caps
    over_budget: int | None = None  # of them, over a cap now
    spike_days: tuple[dt.date, dt.date] | None = None  # the days whose spend spikes were judged again

    def result(self) -> Result:
        import genai_prices

        facts = {
            "runs repriced": self.runs,
            "calls priced": self.priced_calls,
            "calls without a price": self.unpriced_calls,
            "runs whose cost changed": self.changed_runs,
            **({} if self.judged_runs is None else {
                "budget caps judged again": f"{self.judged_runs:,} runs, {self.over_budget or 0:,} over a cap now"}),
            **({} if self.spike_days is None else {
                "spend spikes judged again": f"{self.spike_days[0]:%Y-%m-%d} to {self.spike_days[1]:%Y-%m-%d}"}),
            "total cost before (USD)": self.cost_before,
            "total cost after (USD)": self.cost_after,
            "genai-prices": genai_prices.__version__,
            "seconds": round(self.seconds, 2),
        }
        tables = {"calls without a price": self.unpriced} if self.unpriced.height else {}
        return Result("reprice", facts, tables)


REPRICE_BATCH_RUNS = 50_000  # runs priced per batch by reprice(): bounds its temp tables (1M runs in one batch ran
#                              out of the default 1 GB memory limit); the batches share one transaction
REPRICE_BEFORE = "CREATE OR REPLACE TEMP TABLE _cost_before AS SELECT run_id, cost_usd, computed_cost_usd FROM runs"
# every run numbered in storage order: a batch's spans then sit in a few row groups (as failures.classify batches)
REPRICE_ORDER = ("CREATE OR REPLACE TEMP TABLE _reprice_order AS "
                 "SELECT run_id, row_number() OVER (ORDER BY rowid) - 1 AS i FROM runs")
REPRICE_BATCH = "CREATE OR REPLACE TEMP TABLE _price_runs AS SELECT run_id FROM _reprice_order WHERE i >= ? AND i < ?"
REPRICE_CALLS = "CREATE OR REPLACE TEMP TABLE _reprice_calls (model VARCHAR, provider VARCHAR, reason VARCHAR, " \
                "calls BIGINT, runs BIGINT, input_tokens BIGINT, output_tokens BIGINT)"
# a batch's calls by whether they got a price, the unpriced ones by model and reason (batches share no run)
REPRICE_BATCH_CALLS = """
INSERT INTO _reprice_calls
SELECT s.model, s.provider, c.price_source, count(*), count(DISTINCT s.run_id), sum(s.input_tokens),
       sum(s.output_tokens)
FROM _span_costs c JOIN spans s ON s.run_id = c.run_id AND s.span_id = c.span_id
WHERE c.computed_cost_usd IS NULL GROUP BY ALL
UNION ALL
SELECT NULL, NULL, NULL, count(*), NULL, NULL, NULL FROM _span_costs WHERE computed_cost_usd IS NOT NULL
"""
# the runs whose cost changed (tables.COST_CHANGED): what was judged on their old costs is judged again
REPRICE_CHANGED = """
INSERT INTO _cost_changed
SELECT r.run_id FROM runs r JOIN _cost_before b USING (run_id)
WHERE r.cost_usd IS DISTINCT FROM b.cost_usd OR r.computed_cost_usd IS DISTINCT FROM b.computed_cost_usd
"""
REPRICE_SUMMARY = """
SELECT (SELECT count(*) FROM runs) AS runs,
       (SELECT coalesce(sum(calls), 0)::BIGINT FROM _reprice_calls WHERE reason IS NULL) AS priced_calls,
       (SELECT coalesce(sum(calls), 0)::BIGINT FROM _reprice_calls WHERE reason IS NOT NULL) AS unpriced_calls,
       (SELECT count(*) FROM _cost_changed) AS changed_runs,
       (SELECT sum(cost_usd) FROM _cost_before) AS cost_before,
       (SELECT sum(cost_usd) FROM runs) AS cost_after
"""
UNPRICED_CALLS = """
SELECT model, provider, reason, sum(calls)::BIGINT AS calls, sum(runs)::BIGINT AS runs,
       sum(input_tokens)::BIGINT AS input_tokens, sum(output_tokens)::BIGINT AS output_tokens
FROM _reprice_calls WHERE reason IS NOT NULL GROUP BY ALL ORDER BY calls DESC, model NULLS LAST
"""


def reprice_costs(lens: Store) -> RepriceSummary:
    """Recompute every run's cost with the current prices and overrides (after changing
    `[[pricing.overrides]]` or upgrading genai-prices), `REPRICE_BATCH_RUNS` runs at a time, in the caller's
    transaction; the runs whose cost changed are left in the temp table `_cost_changed` (run_id). The write
    operation is `agentlens.failures.reprice`, which also judges again what was judged on the old costs."""
    t0 = time.perf_counter()
    pricing = load_pricing(lens.config)
    con = lens.con
    con.execute(REPRICE_BEFORE)
    con.execute(REPRICE_ORDER)
    con.execute(REPRICE_CALLS)
    total = con.execute("SELECT count(*) FROM _reprice_order").fetchall()[0][0]
    for start in range(0, total, REPRICE_BATCH_RUNS):
        con.execute(REPRICE_BATCH, [start, start + REPRICE_BATCH_RUNS])
        _price(lens, pricing)
        con.execute(REPRICE_BATCH_CALLS)
    con.execute(T.COST_CHANGED.create())
    con.execute(REPRICE_CHANGED)
    row = lens.sql(REPRICE_SUMMARY).row(0, named=True)
    unpriced = lens.sql(UNPRICED_CALLS)
    for table in ("_cost_before", "_reprice_order", "_reprice_calls"):
        con.execute(f"DROP TABLE {table}")
    return RepriceSummary(row["runs"], row["priced_calls"], row["unpriced_calls"], row["changed_runs"],
                          row["cost_before"], row["cost_after"], time.perf_counter() - t0, unpriced)


def what_if_costs(lens: Store, table: pl.DataFrame, scope: str, params: list[Any]) -> pl.DataFrame:
    """(run_id, what_if_cost_usd): what the priced calls of each run would cost at the prices in `table`
    (what_if_table), for the runs of `scope`, a SELECT of runs with run_id and started_at whose values are
    bound from `params` (a fixed SQL fragment, never a value)."""
    con = lens.con
    con.execute(WHAT_IF_SCOPE_TEMPLATE.format(scope=scope), params)
    con.execute(COST_MACRO)
    with registered(con, "_what_if_prices", table.to_arrow()):
        con.execute(WHAT_IF_RUNS)
    costs = lens.sql("SELECT * FROM _what_if")
    con.execute("DROP TABLE _what_if")
    con.execute("DROP TABLE _cost_scope")
    return costs


PRICES_IN_USE = "SELECT DISTINCT model, provider FROM spans WHERE price_source IS NOT NULL AND model IS NOT NULL"


# every statement above, for tests/test_pricing.py to parse
ALL_SQL = {k: v for k, v in dict(globals()).items()
           if k.isupper() and not k.endswith("_TEMPLATE") and isinstance(v, str)
           and v.split(None, 1)[:1] in (["SELECT"], ["CREATE"], ["UPDATE"], ["INSERT"])}


def prices(lens: Store) -> pl.DataFrame:
    """The price rows that apply to the models in the database (overrides and genai-prices
    segments), for audit: which rate priced which call is in `spans.price_source`."""
    pairs = lens.con.execute(PRICES_IN_USE).fetchall()
    t = price_table(((m, p) for m, p in pairs), load_pricing(lens.config))
    return t.drop("any_provider", "priority").sort("model", "provider", "valid_from", "tier_above",
                                                   nulls_last=False)
