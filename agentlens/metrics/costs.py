"""Cost attribution: cost by any dimension and period, the models without a price, reported vs
computed costs, budget overruns and "what if it had run on model X", all as SQL over `runs` and
`spans` returning polars DataFrames, and `report()` tying them into one Result.

    import agentlens.costs as costs
    costs.by(lens, by=["feature", "customer_id"], period="month")    # polars DataFrame
    costs.by(lens, by=["attr:app.team"])                             # any attribute key
    costs.by(lens, by=["json:$.metadata.team"])                      # any JSON path in attributes
    costs.unpriced(lens)                                             # models with no price
    costs.reconciliation(lens)                                       # reported vs computed
    costs.runs_over_budget(lens); costs.days_over_budget(lens)       # [budgets] in the config
    costs.what_if(lens, "gpt-4o-mini", by=["feature"])               # same tokens, model X's prices
    costs.report(lens, by=["feature"])                               # all of it, renders itself

Definitions (per group): `runs`; `successful_runs` (status `ok`); `runs_without_cost` (cost_usd
NULL: an unpriced model and no reported cost); `total_cost_usd`; the median, 95th percentile
(linear interpolation) and maximum of the cost of one run, over the runs with a cost;
`cost_per_successful_run_usd` = total cost (failed runs included: they were paid for) divided by
the successful runs; token sums by type (input includes cached and cache-write tokens, output
includes reasoning tokens). Periods are UTC days, ISO weeks (from Monday) or calendar months of the
run's start; `since` is inclusive and `until` exclusive (an ISO time or date, UTC unless it says
otherwise, `now`, or a duration before now such as `24h`: core.timeparse).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl

from .. import pricing
from ..core.dimensions import BUDGET_DIMENSIONS, RUN_DIMENSIONS
from ..core.duck import registered
from ..core.results import BaseResult, Result
from ..core.timeparse import parse_window
from ..pricing.budgets import Budgets, load_budgets, over_budget_sql
from ..store import Store
from ..store.runsql import model_name

PERIODS = ("day", "week", "month")
# run columns a cost can be grouped by (identifiers are only ever taken from this list): RUN_DIMENSIONS
_BAD_KEY = re.compile(r'["\\\x00-\x1f]')

When = dt.datetime | dt.date | str | None


@dataclass(frozen=True)
class Dimension:
    """A group-by key: a run column (from RUN_DIMENSIONS), an attribute key (`attr:app.team`)
    or a JSON path into the run's attributes (`json:$.metadata.team`)."""

    name: str
    expr: str  # SQL text with `?` placeholders only
    params: tuple[str, ...] = ()


def dimension(spec: str) -> Dimension:
    spec = spec.strip()
    if spec == "model":  # the name a person groups by (a Vertex resource path's last part), as every per-model table
        return Dimension(spec, model_name('"model"'))
    if spec in RUN_DIMENSIONS:
        return Dimension(spec, f'"{spec}"')
    if spec.startswith("attr:"):
        key = spec[5:]
        if not key or _BAD_KEY.search(key):
            raise ValueError(f"{spec!r}: an attribute key must be non-empty, without quotes or backslashes")
        # the flat key first (OTel attributes are flat: `app.team`), then every split of it into an
        # attribute holding a JSON object or JSON text and a path inside it (`metadata` + `team`)
        parts = key.split(".")
        paths: list[str] = ['$."' + key + '"']
        for i in range(len(parts) - 1, 0, -1):
            paths.append('$."' + ".".join(parts[:i]) + '"')
            paths.append("$" + "".join('."' + p + '"' for p in parts[i:]))
        expr = "coalesce(json_extract_string(attributes, ?)" + "".join(
            ", json_extract_string(json_extract_string(attributes, ?), ?)" for _ in range(len(parts) - 1)) + ")"
        return Dimension(spec, expr, tuple(paths))
    if spec.startswith("json:"):
        path = spec[5:]
        if not path.startswith("$"):
            raise ValueError(f"{spec!r}: a JSON path starts with $, e.g. json:$.metadata.team")
        try:  # DuckDB's own JSON path parser, on an in-memory connection
            duckdb.connect().execute("SELECT json_extract_string('{}'::JSON, ?)", [path]).fetchall()
        except duckdb.Error as e:
            raise ValueError(f"{spec!r}: not a JSON path ({str(e).splitlines()[0]})") from None
        return Dimension(spec, "json_extract_string(attributes, ?)", (path,))
    raise ValueError(f"cannot group costs by {spec!r}: use one of {', '.join(RUN_DIMENSIONS)}, "
                     "attr:KEY (an attribute key) or json:$.PATH (a JSON path into the run's attributes)")


def dimensions(by: str | Sequence[str] | None) -> list[Dimension]:
    if by is None:
        return []
    specs = [s for s in (by.split(",") if isinstance(by, str) else by) if s.strip()]
    dims = [dimension(s) for s in specs]
    if len({d.name for d in dims}) != len(dims):
        raise ValueError(f"a dimension is repeated in {', '.join(specs)}")
    return dims


def _period(period: str | None) -> str | None:
    if period in (None, "", "none", "all"):
        return None
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}: use one of {', '.join(PERIODS)}")
    return period


# --- scope: the runs started in [since, until) -----------------------------------------------------

_SCOPES = {
    (False, False): "SELECT * FROM runs",
    (True, False): "SELECT * FROM runs WHERE started_at >= ?::TIMESTAMPTZ",
    (False, True): "SELECT * FROM runs WHERE started_at < ?::TIMESTAMPTZ",
    (True, True): "SELECT * FROM runs WHERE started_at >= ?::TIMESTAMPTZ AND started_at < ?::TIMESTAMPTZ",
}


def _scope(since: When, until: When) -> tuple[str, list[Any]]:
    """The runs started in [since, until): times as every command takes them (core.timeparse: ISO time
    or date, UTC unless they say otherwise, `now`, `24h` before now)."""
    t0, t1 = parse_window(since, until)
    params = [t for t in (t0, t1) if t is not None]
    return _SCOPES[(t0 is not None, t1 is not None)], params


# --- cost by dimension and period ----------------------------------------------------------------

# {keys} are the period and dimension expressions (fixed text with ? placeholders, see dimension())
BY_TEMPLATE = """
WITH scope AS ({scope})
SELECT {keys}
       count(*) AS runs,
       count(*) FILTER (WHERE status = 'ok') AS successful_runs,
       count(*) - count(cost_usd) AS runs_without_cost,
       round(sum(cost_usd), 9) AS total_cost_usd,
       round(median(cost_usd), 9) AS median_cost_usd,
       round(quantile_cont(cost_usd, 0.95), 9) AS p95_cost_usd,
       round(max(cost_usd), 9) AS max_cost_usd,
       round(sum(cost_usd) / nullif(count(*) FILTER (WHERE status = 'ok'), 0), 9) AS cost_per_successful_run_usd,
       coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
       coalesce(sum(cached_input_tokens), 0)::BIGINT AS cached_input_tokens,
       coalesce(sum(cache_write_input_tokens), 0)::BIGINT AS cache_write_input_tokens,
       coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
       coalesce(sum(reasoning_tokens), 0)::BIGINT AS reasoning_tokens
FROM scope
GROUP BY ALL
"""


def _keys(dims: list[Dimension], period: str | None) -> tuple[str, list[Any], list[str]]:
    """Select-list text for the keys, their parameters, and the output names (period first)."""
    text, params, names = [], [], []
    if period:
        text.append("date_trunc(?, started_at)::DATE AS period")
        params.append(period)
        names.append("period")
    for i, d in enumerate(dims):
        text.append(f"{d.expr} AS _k{i}")
        params.extend(d.params)
        names.append(d.name)
    return "".join(t + ",\n       " for t in text), params, names


def _keyed(df: pl.DataFrame, dims: list[Dimension]) -> pl.DataFrame:
    return df.rename({f"_k{i}": d.name for i, d in enumerate(dims)})


def _ordered(df: pl.DataFrame, names: list[str], cost_col: str) -> pl.DataFrame:
    cols = ["period"] if "period" in names else []
    return df.sort([*cols, cost_col, *[n for n in names if n != "period"]],
                   descending=[False] * len(cols) + [True] + [False] * (len(names) - len(cols)),
                   nulls_last=True)


def by(lens: Store, by: str | Sequence[str] | None = ("feature",), period: str | None = None,
       since: When = None, until: When = None) -> pl.DataFrame:
    """Cost by dimensions (and period): one row per group (see the module docstring)."""
    dims, per = dimensions(by), _period(period)
    keys, kparams, names = _keys(dims, per)
    scope, sparams = _scope(since, until)
    q = BY_TEMPLATE.format(scope=scope, keys=keys)
    return _ordered(_keyed(lens.sql(q, [*sparams, *kparams]), dims), names, "total_cost_usd")


# --- what if it had run on model X ----------------------------------------------------------------

WHAT_IF_TEMPLATE = """
WITH scope AS ({scope})
SELECT {keys}
       count(*) AS runs,
       count(*) FILTER (WHERE cost_usd IS NOT NULL AND w.what_if_cost_usd IS NOT NULL) AS runs_priced_both_ways,
       round(sum(cost_usd), 9) AS cost_usd,
       round(sum(w.what_if_cost_usd), 9) AS what_if_cost_usd,
       round(sum(w.what_if_cost_usd - cost_usd), 9) AS difference_usd,
       round(sum(w.what_if_cost_usd) FILTER (WHERE cost_usd IS NOT NULL)
         / nullif(sum(cost_usd) FILTER (WHERE w.what_if_cost_usd IS NOT NULL), 0), 6) AS what_if_ratio
FROM scope LEFT JOIN _what_if w USING (run_id)
GROUP BY ALL
"""


def what_if(lens: Store, model: str, provider: str | None = None, by: str | Sequence[str] | None = ("feature",),
            period: str | None = None, since: When = None, until: When = None) -> pl.DataFrame:
    """What the same runs would have cost had every priced call run on `model` (same tokens, the
    price of each call's day; overrides for `model` apply). `difference_usd` and `what_if_ratio`
    compare the runs with a cost both ways; `runs_priced_both_ways` counts them."""
    dims, per = dimensions(by), _period(period)
    table = pricing.what_if_table(model, provider.lower() if provider else None, pricing.load_pricing(lens.config))
    keys, kparams, names = _keys(dims, per)
    scope, sparams = _scope(since, until)
    costs = pricing.what_if_costs(lens, table, scope, sparams)
    with registered(lens.con, "_what_if", costs.to_arrow()):
        df = lens.sql(WHAT_IF_TEMPLATE.format(scope=scope, keys=keys), [*sparams, *kparams])
    return _ordered(_keyed(df, dims), names, "cost_usd")


# --- unpriced models, reconciliation, most expensive runs ------------------------------------------

UNPRICED_TEMPLATE = """
WITH scope AS ({scope})
SELECT coalesce(s.model, r.model) AS model, s.provider, s.price_source AS reason,
       count(*) AS calls, count(DISTINCT s.run_id) AS runs,
       coalesce(sum(s.input_tokens), 0)::BIGINT AS input_tokens,
       coalesce(sum(s.cached_input_tokens), 0)::BIGINT AS cached_input_tokens,
       coalesce(sum(s.cache_write_input_tokens), 0)::BIGINT AS cache_write_input_tokens,
       coalesce(sum(s.output_tokens), 0)::BIGINT AS output_tokens,
       coalesce(sum(s.reasoning_tokens), 0)::BIGINT AS reasoning_tokens,
       min(s.started_at) AS first_call, max(s.started_at) AS last_call
FROM spans s JOIN scope r ON r.run_id = s.run_id
WHERE s.computed_cost_usd IS NULL AND s.price_source LIKE 'unpriced%'
GROUP BY ALL
ORDER BY calls DESC, model NULLS LAST, s.provider NULLS LAST
"""


def unpriced(lens: Store, since: When = None, until: When = None) -> pl.DataFrame:
    """Models whose calls have no price (never counted as $0), with their token volumes: add a
    `[[pricing.overrides]]` entry for them and run `agentlens reprice`."""
    scope, params = _scope(since, until)
    return lens.sql(UNPRICED_TEMPLATE.format(scope=scope), params)


RECONCILE_TEMPLATE = """
WITH scope AS ({scope})
SELECT run_id, source, started_at, """ + model_name("model") + """ AS model, feature, reported_cost_usd, computed_cost_usd,
       reported_cost_usd - computed_cost_usd AS difference_usd,
       (reported_cost_usd - computed_cost_usd) / nullif(computed_cost_usd, 0) AS relative_difference
FROM scope
WHERE reported_cost_usd IS NOT NULL AND computed_cost_usd IS NOT NULL
  AND abs(reported_cost_usd - computed_cost_usd)
      > greatest(?::DOUBLE, ?::DOUBLE * greatest(abs(reported_cost_usd), abs(computed_cost_usd)))
ORDER BY abs(reported_cost_usd - computed_cost_usd) DESC, run_id
"""

RECONCILE_COUNTS_TEMPLATE = """
WITH scope AS ({scope})
SELECT count(*) FILTER (WHERE reported_cost_usd IS NOT NULL AND computed_cost_usd IS NOT NULL) AS both,
       count(*) FILTER (WHERE reported_cost_usd IS NOT NULL AND computed_cost_usd IS NULL) AS reported_only,
       count(*) FILTER (WHERE reported_cost_usd IS NULL AND computed_cost_usd IS NOT NULL) AS computed_only
FROM scope
"""


def _tolerance(lens: Store, relative: float | None, absolute_usd: float | None) -> tuple[float, float]:
    cfg = pricing.load_pricing(lens.config)
    return (cfg.reconcile_relative if relative is None else relative,
            cfg.reconcile_absolute_usd if absolute_usd is None else absolute_usd)


def reconciliation(lens: Store, since: When = None, until: When = None, relative: float | None = None,
                   absolute_usd: float | None = None) -> pl.DataFrame:
    """Runs whose reported cost and computed cost disagree by more than the tolerance: more than
    `absolute_usd` and more than `relative` of the larger of the two (defaults from `[pricing]`:
    1% and $0.000001, the rounding of a cost given to 6 decimals)."""
    rel, absolute = _tolerance(lens, relative, absolute_usd)
    scope, params = _scope(since, until)
    return lens.sql(RECONCILE_TEMPLATE.format(scope=scope), [*params, absolute, rel])


TOP_RUNS_TEMPLATE = """
WITH scope AS ({scope})
SELECT run_id, started_at, feature, """ + model_name("model") + """ AS model, status, llm_calls, input_tokens,
       output_tokens, cost_usd
FROM scope WHERE cost_usd IS NOT NULL
ORDER BY cost_usd DESC, run_id LIMIT ?
"""


def top_runs(lens: Store, n: int = 10, since: When = None, until: When = None) -> pl.DataFrame:
    """The most expensive runs."""
    scope, params = _scope(since, until)
    return lens.sql(TOP_RUNS_TEMPLATE.format(scope=scope), [*params, int(n)])


# --- budgets -------------------------------------------------------------------------------------

# Parameters: the run cap (Budgets.run_cap) and the hard stop (run_usd_hard).
RUNS_OVER_TEMPLATE = """
WITH scope AS ({scope}),
caps AS (SELECT ?::DOUBLE AS cap, ?::DOUBLE AS hard),
o AS (
  SELECT s.*, CASE WHEN """ + over_budget_sql("s.cost_usd", "c.hard") + """ THEN 'hard stop' ELSE 'alarm' END AS level,
         CASE WHEN """ + over_budget_sql("s.cost_usd", "c.hard") + """ THEN c.hard ELSE c.cap END AS cap_usd
  FROM scope s, caps c WHERE """ + over_budget_sql("s.cost_usd", "c.cap") + """
)
SELECT run_id, started_at, level, cost_usd, cap_usd, cost_usd / cap_usd AS times_cap,
       feature, customer_id, model, status, llm_calls, tool_calls
FROM o ORDER BY cost_usd DESC, run_id
"""  # noqa: S608 - fixed SQL fragments; values are bound parameters


def runs_over_budget(lens: Store, since: When = None, until: When = None) -> pl.DataFrame:
    """Runs over their budget (`pricing.budgets`: above the run cap, `[budgets].run_usd`, else
    `run_usd_hard`): level `hard stop` above `run_usd_hard`, else `alarm`."""
    b = load_budgets(lens.config)
    scope, params = _scope(since, until)
    q = RUNS_OVER_TEMPLATE.format(scope=scope)
    return lens.sql(q, [*params, b.run_cap, b.run_usd_hard])


# {dim} comes from BUDGET_DIMENSIONS only
DAYS_OVER_TEMPLATE = """
WITH scope AS ({scope}),
d AS (
  SELECT started_at::DATE AS day, "{dim}" AS value, count(*) AS runs,
         count(*) - count(cost_usd) AS runs_without_cost, sum(cost_usd) AS cost_usd
  FROM scope GROUP BY ALL
),
capped AS (
  SELECT d.*, coalesce(c.cap_usd, ?::DOUBLE) AS cap_usd
  FROM d LEFT JOIN _budget_caps c ON c.value = d.value
)
SELECT ? AS dimension, value, day, cost_usd, cap_usd, cost_usd / cap_usd AS times_cap, runs, runs_without_cost
FROM capped WHERE cost_usd > cap_usd
"""


def days_over_budget(lens: Store, since: When = None, until: When = None) -> pl.DataFrame:
    """Days (UTC) on which one feature, customer, ... spent more than its `[budgets.daily_usd]` cap
    (a value without its own cap gets the `"*"` cap, when there is one)."""
    b = load_budgets(lens.config)
    scope, params = _scope(since, until)
    frames = []
    for dim, caps in b.daily_usd.items():
        if dim not in BUDGET_DIMENSIONS:  # load_budgets checked it; the identifier goes into SQL text
            raise ValueError(f"unknown budget dimension {dim!r}")
        table = pl.DataFrame({"value": [k for k in caps if k != "*"], "cap_usd": [v for k, v in caps.items() if k != "*"]},
                             schema={"value": pl.String, "cap_usd": pl.Float64})
        lens.con.register("_budget_caps", table.to_arrow())
        try:
            frames.append(lens.sql(DAYS_OVER_TEMPLATE.format(scope=scope, dim=dim), [*params, caps.get("*"), dim]))
        finally:
            lens.con.unregister("_budget_caps")
    schema = {"dimension": pl.String, "value": pl.String, "day": pl.Date, "cost_usd": pl.Float64,
              "cap_usd": pl.Float64, "times_cap": pl.Float64, "runs": pl.Int64, "runs_without_cost": pl.Int64}
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat([f.cast(schema) for f in frames]).sort(  # type: ignore[arg-type]
        ["day", "times_cap"], descending=[False, True])


# --- headline and report -------------------------------------------------------------------------

HEADLINE_TEMPLATE = """
WITH scope AS ({scope})
SELECT count(*) AS runs, count(cost_usd) AS runs_with_cost, sum(cost_usd) AS total_cost_usd,
       median(cost_usd) AS median_cost_usd, quantile_cont(cost_usd, 0.95) AS p95_cost_usd,
       max(cost_usd) AS max_cost_usd,
       -- of runs that cost the same, the last by id: the same run named on every engine and every call
       arg_max(run_id, (cost_usd, run_id)) FILTER (WHERE cost_usd IS NOT NULL) AS max_run_id,
       sum(cost_usd) / nullif(count(*) FILTER (WHERE status = 'ok'), 0) AS cost_per_successful_run_usd,
       sum(reported_cost_usd) AS reported_cost_usd, count(reported_cost_usd) AS runs_reported,
       sum(computed_cost_usd) AS computed_cost_usd, count(computed_cost_usd) AS runs_computed,
       coalesce(sum(unpriced_llm_calls), 0)::BIGINT AS unpriced_calls,
       count(*) FILTER (WHERE unpriced_llm_calls > 0) AS runs_with_unpriced_calls
FROM scope
"""


def headline(lens: Store, since: When = None, until: When = None) -> dict[str, Any]:
    scope, params = _scope(since, until)
    return lens.sql(HEADLINE_TEMPLATE.format(scope=scope), params).row(0, named=True)


def _usd(v: float | None) -> str:
    if v is None:
        return "n/a"
    if abs(v) >= 1:
        return f"${v:,.2f}"
    whole, frac = f"{v:.6f}".split(".")
    return f"${whole}.{frac.rstrip('0'):0<2}"  # $0.10, $0.28, $0.000337


@dataclass
class CostReport(BaseResult):
    """The cost report: its facts and tables as it renders them, and the numbers behind them as data
    (`headline`: costs.headline's row; `budgets`: the caps it judged runs by)."""

    facts: dict[str, Any]
    tables: dict[str, pl.DataFrame]
    headline: dict[str, Any]
    budgets: Budgets
    suggested: pl.DataFrame = field(default_factory=pl.DataFrame)  # suggested_caps, without a run cap

    def result(self) -> Result:
        return Result("costs", dict(self.facts), dict(self.tables))


UNPRICED_TABLE = "models without a price"
SUGGESTED_TABLE = "suggested caps per {dim} (rule of thumb)"

# Practitioners' rule of thumb for a run's budget: an alarm at 10x a typical run's cost, a hard stop at 50x.
ALARM_X, HARD_STOP_X = 10, 50

# The rule of thumb per value of a dimension (a typical run costs very different amounts per feature), and
# over all runs (`{dim}` NULL): the median run's cost, the caps it suggests, and how many runs each would
# have flagged. `{dim}`: a run column from RUN_DIMENSIONS.
NAMED_SCOPE = """SELECT * FROM runs WHERE ($since::TIMESTAMPTZ IS NULL OR started_at >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR started_at < $until::TIMESTAMPTZ)"""
SUGGESTED_CAPS_TEMPLATE = """
WITH scope AS ({scope}),
med AS (
  SELECT "{dim}" AS value, false AS all_runs, count(*) AS runs, median(cost_usd) AS median_cost_usd FROM scope
  WHERE cost_usd IS NOT NULL GROUP BY "{dim}"
  UNION ALL
  SELECT NULL, true, count(*), median(cost_usd) FROM scope WHERE cost_usd IS NOT NULL
)
SELECT m.value AS "{dim}", m.all_runs, m.runs, m.median_cost_usd,
       m.median_cost_usd * $alarm_x AS alarm_usd, m.median_cost_usd * $hard_x AS hard_stop_usd,
       count(s.run_id) FILTER (WHERE """ + over_budget_sql("s.cost_usd", "m.median_cost_usd * $alarm_x") + """) AS runs_over_alarm,
       count(s.run_id) FILTER (WHERE """ + over_budget_sql("s.cost_usd", "m.median_cost_usd * $hard_x") + """) AS runs_over_hard_stop
FROM med m LEFT JOIN scope s ON m.all_runs OR s."{dim}" IS NOT DISTINCT FROM m.value
WHERE m.runs > 0
GROUP BY ALL
ORDER BY all_runs DESC, m.runs DESC, m.value
"""  # noqa: S608 - fixed SQL texts and a dimension from RUN_DIMENSIONS; values are bound parameters


def suggested_caps(lens: Store, dim: str = "feature", since: When = None, until: When = None,
                   alarm_x: float = ALARM_X, hard_x: float = HARD_STOP_X) -> pl.DataFrame:
    """Run caps by the rule of thumb (alarm at `alarm_x` times the median run's cost, hard stop at `hard_x`),
    per value of `dim` and over all runs (`all_runs`), with the runs each cap would have flagged."""
    if dim not in RUN_DIMENSIONS:
        raise ValueError(f"cannot suggest caps by {dim!r}: use one of {', '.join(RUN_DIMENSIONS)}")
    t0, t1 = parse_window(since, until)
    return lens.sql(SUGGESTED_CAPS_TEMPLATE.format(scope=NAMED_SCOPE, dim=dim),  # dim: from RUN_DIMENSIONS
                    {"since": t0, "until": t1, "alarm_x": alarm_x, "hard_x": hard_x})


def headline_note(lens: Store, disagreeing: int) -> str:
    """Which figure the headline cost (`cost_usd`, every total) takes, said where totals are shown."""
    choice = pricing.load_pricing(lens.config).headline_cost
    if choice == "computed":
        return (f"the computed cost where the two disagree ({disagreeing:,} runs), else the reported one "
                '([pricing] headline_cost = "computed")')
    return 'the reported cost where there is one, else the computed one ([pricing] headline_cost = "reported")'


def report(lens: Store, by: str | Sequence[str] | None = ("feature",), period: str | None = None,
           since: When = None, until: When = None, what_if_model: str | None = None,
           what_if_provider: str | None = None, top: int = 5) -> CostReport:
    """The cost report: headline numbers, cost by the dimensions, the most expensive runs, what-if,
    unpriced models, reported-vs-computed disagreements and budget overruns."""
    h = headline(lens, since, until)
    rel, absolute = _tolerance(lens, None, None)
    scope, params = _scope(since, until)
    counts = lens.sql(RECONCILE_COUNTS_TEMPLATE.format(scope=scope), params).row(0, named=True)
    disagree = reconciliation(lens, since, until)
    missing = unpriced(lens, since, until)
    budgets = load_budgets(lens.config)
    over_runs = runs_over_budget(lens, since, until)
    over_days = days_over_budget(lens, since, until)
    names = ", ".join(d.name for d in dimensions(by)) or "all runs"

    facts: dict[str, Any] = {
        "runs": h["runs"],
        "runs with a cost": f"{h['runs_with_cost']:,} of {h['runs']:,}",
        "total cost": _usd(h["total_cost_usd"]),
        "cost per run: median / p95 / max": " / ".join(
            _usd(h[k]) for k in ("median_cost_usd", "p95_cost_usd", "max_cost_usd")),
        "most expensive run": h["max_run_id"],
        "cost per successful run": _usd(h["cost_per_successful_run_usd"]),
        "reported by the source / computed from tokens": (
            f"{_usd(h['reported_cost_usd'])} over {h['runs_reported']:,} runs / "
            f"{_usd(h['computed_cost_usd'])} over {h['runs_computed']:,} runs"),
        "reported vs computed": (
            f"{disagree.height:,} of {counts['both']:,} runs disagree beyond {rel:.2%} and "
            f"{_usd(absolute)} ({counts['reported_only']:,} reported only)"),
        "headline cost": headline_note(lens, disagree.height),
        "calls without a price": (
            f"{h['unpriced_calls']:,} in {h['runs_with_unpriced_calls']:,} runs"
            + (f" ({', '.join(sorted({str(m) for m in missing['model']}))})" if missing.height else "")),
    }
    if budgets.run_usd is not None or budgets.run_usd_hard is not None:
        levels = over_runs["level"].to_list()
        facts["runs over budget (alarm / hard stop)"] = (
            f"{levels.count('alarm'):,} / {levels.count('hard stop'):,} "
            f"(caps {_usd(budgets.run_usd)} / {_usd(budgets.run_usd_hard)})")
    else:
        facts["budgets"] = "no per-run cap configured" if budgets.daily_usd else "none configured"
    if budgets.daily_usd:
        facts["days over a daily budget"] = over_days.height

    grouped = by_(lens, by, period, since, until)
    suffix = f" and {period}" if _period(period) else ""
    keys = [c for c in grouped.columns if c not in _METRICS]
    tables: dict[str, pl.DataFrame] = {
        f"cost by {names}{suffix} (USD)": grouped.select(*keys, *_COST_VIEW).rename(_COST_VIEW),
        f"tokens by {names}{suffix}": grouped.select(*keys, *_TOKEN_VIEW).rename(_TOKEN_VIEW),
    }
    if top:
        top_df = top_runs(lens, top, since, until)
        # the year in the header when the runs share one, on each row when they span years
        years = top_df["started_at"].dt.convert_time_zone("UTC").dt.year().drop_nulls().unique().to_list()
        fmt, head = (("%m-%d %H:%M", f"started ({years[0]}, UTC)") if len(years) == 1
                     else ("%Y-%m-%d %H:%M", "started (UTC)"))
        tables["most expensive runs (USD)"] = top_df.select(
            "run_id", pl.col("started_at").dt.convert_time_zone("UTC").dt.strftime(fmt).alias(head), "feature", "model",
            pl.col("input_tokens").alias("input"), pl.col("output_tokens").alias("output"),
            pl.col("cost_usd").alias("cost"))
    if what_if_model:
        tables[f"what if every call had run on {what_if_model} (USD)"] = what_if(
            lens, what_if_model, what_if_provider, by, period, since, until).rename(
            {"runs_priced_both_ways": "priced both ways", "cost_usd": "actual", "what_if_cost_usd": "what if",
             "difference_usd": "difference", "what_if_ratio": "ratio"})
    if missing.height:
        tables[UNPRICED_TABLE] = missing.select(
            "model", "provider", pl.col("reason").str.strip_prefix("unpriced: "), "calls", "runs",
            "input_tokens", "cached_input_tokens", "output_tokens").rename(
            {"input_tokens": "input", "cached_input_tokens": "cached input", "output_tokens": "output"})
    if disagree.height:
        tables["reported vs computed cost disagree"] = disagree
    if over_runs.height:
        tables["runs over budget"] = over_runs.drop("status", "llm_calls", "tool_calls")
    if over_days.height:
        tables["days over a daily budget"] = over_days
    suggested = pl.DataFrame()
    if budgets.run_cap is None:
        dim = next(iter(budgets.daily_usd), "feature")  # the dimension the budgets use, else feature
        suggested = suggested_caps(lens, dim, since, until)
    return CostReport(facts, tables, h, budgets, suggested)


by_ = by  # report() has a parameter named `by`

TABLES = ("by", "what-if", "unpriced", "reconciliation", "runs-over-budget", "days-over-budget", "top-runs",
          "prices")


def table(lens: Store, name: str, by: str | Sequence[str] | None = ("feature",), period: str | None = None,
          since: When = None, until: When = None, what_if_model: str | None = None,
          what_if_provider: str | None = None, top: int = 100) -> pl.DataFrame:
    """One table of the cost report by name (`agentlens costs --table NAME`): by (cost by the dimensions),
    what-if (needs `what_if_model`), unpriced, reconciliation, runs-over-budget, days-over-budget, top-runs
    (the `top` most expensive) or prices (the price rows in use)."""
    if name == "by":
        return by_(lens, by, period, since, until)
    if name == "what-if":
        if not what_if_model:
            raise ValueError("the what-if table needs a model to price the calls at (--what-if-model)")
        return what_if(lens, what_if_model, what_if_provider, by, period, since, until)
    if name == "unpriced":
        return unpriced(lens, since, until)
    if name == "reconciliation":
        return reconciliation(lens, since, until)
    if name == "runs-over-budget":
        return runs_over_budget(lens, since, until)
    if name == "days-over-budget":
        return days_over_budget(lens, since, until)
    if name == "top-runs":
        return top_runs(lens, top, since, until)
    if name == "prices":
        return pricing.prices(lens)
    raise ValueError(f"unknown cost table {name!r}: use one of {', '.join(TABLES)}")

# the report's views of by(): short headers for the terminal (exports keep the full names)
_COST_VIEW = {"runs": "runs", "successful_runs": "ok runs", "runs_without_cost": "no cost",
              "total_cost_usd": "total", "median_cost_usd": "median/run", "p95_cost_usd": "p95/run",
              "max_cost_usd": "max/run", "cost_per_successful_run_usd": "per ok run"}
_TOKEN_VIEW = {"runs": "runs", "input_tokens": "input", "cached_input_tokens": "cached input",
               "cache_write_input_tokens": "cache write", "output_tokens": "output",
               "reasoning_tokens": "reasoning"}
_METRICS = {*_COST_VIEW, *_TOKEN_VIEW}

