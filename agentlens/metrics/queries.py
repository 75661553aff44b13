"""Named SQL of the golden signals, run by DuckDB over `runs` and `spans`.

Every value is a named parameter (`$since`, `$until`, `$width`, `$rate_limit`, `$run_cap`, `$w0`...).
The `{...}` slots take only fixed fragments from this module or column names checked against
`signals.DIMENSIONS` (see `signals._render`); `tests/test_signals.py` renders and binds each one.

Conventions shared by every statement:
- a run belongs to the window and the time bucket of its start (`started_at`), or, for alerts,
  of its end (`coalesce(ended_at, started_at)`: a run counts once its outcome is known);
- buckets are `time_bucket(width, t)` in UTC (hours on the hour, days at midnight, weeks on Mondays);
- percentiles are `quantile_cont`: linear interpolation between the order statistics around
  rank (n - 1) * q (Hyndman & Fan type 7, numpy's default);
- models are grouped by the name a person groups by (`store.runsql.MODEL_NAME_EXPR`: a Vertex resource
  path's last part), the name as recorded kept on the spans;
- LLM calls are counted as `runs.llm_calls` counts them (LLM spans with no LLM span below them);
  per call (latency, context use, rate limits) an LLM call is an LLM span with no LLM span as a
  direct child (a framework's wrapper around the provider SDK's span is not a second call).
  An `agent_runs` row is one LLM call of its model (its one span is of kind `llm`); its input
  tokens total the run's prompts, so context use leaves it out (`prompt_tokens`);
- a call is rate-limited when it failed and its error type or message matches
  `patterns.RATE_LIMIT` (bound as `$rate_limit`); a run is rate-limited when any of its
  error spans matches;
- a run is over its budget as `pricing.budgets.over_budget_sql` says: its cost above the run cap
  (`Budgets.run_cap`, bound as `$run_cap`).
"""

from __future__ import annotations

from ..pricing.budgets import over_budget_sql
from ..store.runsql import model_name

# --- fixed fragments ----------------------------------------------------------------------------
TIME_START = "started_at"
TIME_END = "coalesce(ended_at, started_at)"
BUCKET = "time_bucket($width::INTERVAL, {t})"
NO_BUCKET = "NULL::TIMESTAMPTZ"
FAILURES = "SELECT DISTINCT run_id FROM failures"
NO_FAILURES = "SELECT NULL::VARCHAR AS run_id WHERE false"

WINDOW = """($since::TIMESTAMPTZ IS NULL OR {t} >= $since::TIMESTAMPTZ)
    AND ($until::TIMESTAMPTZ IS NULL OR {t} < $until::TIMESTAMPTZ)"""

# The LLM calls of the runs in `r` (a CTE holding run_id).
CALLS = """
llm_spans AS (SELECT s.* FROM spans s SEMI JOIN r ON r.run_id = s.run_id WHERE s.kind = 'llm'),
calls AS (
  SELECT s.run_id, s.span_id, s.model, s.provider, s.duration_ms, s.time_to_first_token_ms,
         s.input_tokens, s.output_tokens, s.status = 'error' AS failed,
         -- the tokens of one prompt (context use): an agent_runs row's input totals its run's prompts
         CASE WHEN s.source IS DISTINCT FROM 'agent_runs' THEN s.input_tokens END AS prompt_tokens,
         s.status = 'error' AND regexp_matches(
           coalesce(s.error_type, '') || ' ' || coalesce(s.status_message, ''), $rate_limit) AS rate_limited
  FROM llm_spans s
  WHERE NOT EXISTS (SELECT 1 FROM llm_spans c WHERE c.run_id = s.run_id AND c.parent_span_id = s.span_id)
)"""

# Error spans of the runs in `r` rejected for a rate limit, and per run: the LLM calls among them
# (LLM spans without an LLM child, found with a semi join driven by the few error spans).
RATE_LIMITED = """
es AS (
  SELECT s.run_id, s.span_id, s.kind FROM spans s SEMI JOIN r ON r.run_id = s.run_id
  WHERE s.status = 'error' AND regexp_matches(
    coalesce(s.error_type, '') || ' ' || coalesce(s.status_message, ''), $rate_limit)
),
wrapped AS (
  SELECT DISTINCT c.run_id, c.parent_span_id AS span_id FROM spans c
  SEMI JOIN es ON es.run_id = c.run_id AND es.span_id = c.parent_span_id
  WHERE c.kind = 'llm'
),
rl AS (
  SELECT es.run_id, count(*) FILTER (WHERE es.kind = 'llm' AND w.span_id IS NULL) AS rate_limited_calls
  FROM es LEFT JOIN wrapped w ON w.run_id = es.run_id AND w.span_id = es.span_id
  GROUP BY es.run_id
)"""

# --- the golden signals per key (bucket and/or run dimensions) -----------------------------------
# Slots: {t} time expression, {bucket} bucket expression of t, {bucket_ts} of an event time ts,
# {boundary} where the in-flight level is read at a bucket's start, {dims} ', "d1", "d2"' (may be
# empty), {kdims} the same prefixed with k., {partition} 'PARTITION BY "d1", "d2"' (may be empty),
# {where} ' AND "d1" IS NOT DISTINCT FROM $w0 ...', {keys_sel} '"bucket", "d1", ' (the output keys),
# {order}, {failures} / {has_failures} (the classifier's table, when the database has it).
SIGNALS = """
WITH
r AS (
  SELECT run_id, {t} AS t, started_at, ended_at, duration_ms, status, cost_usd, input_tokens,
         output_tokens, tool_calls, llm_calls{dims}
  FROM runs
  WHERE """ + WINDOW + """{where}
),
k AS (SELECT *, {bucket} AS bucket FROM r),
""" + RATE_LIMITED + """,
cr AS (  -- runs overlapping the window with a known end: the in-flight sweep
  SELECT started_at, ended_at{dims} FROM runs
  WHERE ended_at > started_at
    AND ($since::TIMESTAMPTZ IS NULL OR ended_at > $since::TIMESTAMPTZ)
    AND ($until::TIMESTAMPTZ IS NULL OR started_at < $until::TIMESTAMPTZ){where}
),
ev AS (
  SELECT started_at AS ts, 1 AS d{dims} FROM cr
  UNION ALL SELECT ended_at, -1{dims} FROM cr
  UNION ALL SELECT DISTINCT {boundary}, 0{dims} FROM k WHERE {boundary} IS NOT NULL
),
lv AS (
  SELECT ts, d{dims}, sum(d) OVER ({partition} ORDER BY ts, d ROWS UNBOUNDED PRECEDING) AS level FROM ev
),
conc AS (
  SELECT {bucket_ts} AS bucket{dims}, max(level) AS max_concurrency
  FROM lv
  WHERE d >= 0 AND ($since::TIMESTAMPTZ IS NULL OR ts >= $since::TIMESTAMPTZ)
    AND ($until::TIMESTAMPTZ IS NULL OR ts < $until::TIMESTAMPTZ)
  GROUP BY ALL
),
fl AS ({failures}),
facts AS (
  SELECT k.bucket{kdims}, true AS is_run, k.status, k.duration_ms, k.cost_usd, k.input_tokens,
         k.output_tokens, k.tool_calls, k.llm_calls, fl.run_id IS NOT NULL AS implicit,
         rl.run_id IS NOT NULL AS run_rate_limited, rl.rate_limited_calls,
         """ + over_budget_sql("k.cost_usd", "$run_cap") + """ AS over_budget
  FROM k LEFT JOIN fl ON fl.run_id = k.run_id LEFT JOIN rl ON rl.run_id = k.run_id
  UNION ALL BY NAME
  SELECT bucket{dims}, max_concurrency FROM conc
),
agg AS (
  SELECT {keys_sel}
    count(*) FILTER (WHERE is_run) AS runs,
    count(*) FILTER (WHERE is_run AND status = 'error') AS errors,
    count(*) FILTER (WHERE is_run AND implicit) AS implicit_errors,
    count(duration_ms) AS timed_runs,
    quantile_cont(duration_ms, [0.5, 0.9, 0.95, 0.99]) AS lq,
    quantile_cont(duration_ms, 0.95) FILTER (WHERE status = 'ok') AS ok_p95,
    quantile_cont(duration_ms, 0.95) FILTER (WHERE status = 'error') AS error_p95,
    sum(llm_calls)::BIGINT AS llm_calls,
    sum(tool_calls)::BIGINT AS tool_calls,
    sum(input_tokens)::BIGINT AS input_tokens,
    sum(output_tokens)::BIGINT AS output_tokens,
    sum(cost_usd) AS cost_usd,
    coalesce(sum(rate_limited_calls), 0)::BIGINT AS rate_limited_calls,
    count(*) FILTER (WHERE is_run AND run_rate_limited) AS rate_limited_runs,
    max(max_concurrency)::BIGINT AS max_concurrency,
    count(*) FILTER (WHERE is_run AND over_budget) AS runs_over_budget
  FROM facts
  GROUP BY ALL
  HAVING count(*) FILTER (WHERE is_run) > 0
)
SELECT {keys_sel}
  runs, errors, errors / runs AS error_rate,
  CASE WHEN {has_failures} THEN implicit_errors END AS implicit_errors,
  CASE WHEN {has_failures} THEN implicit_errors / runs END AS implicit_error_rate,
  timed_runs,
  lq[1] AS latency_p50_ms, lq[2] AS latency_p90_ms, lq[3] AS latency_p95_ms, lq[4] AS latency_p99_ms,
  ok_p95 AS latency_ok_p95_ms, error_p95 AS latency_error_p95_ms,
  coalesce(llm_calls, 0) AS llm_calls, coalesce(tool_calls, 0) AS tool_calls, input_tokens,
  output_tokens, cost_usd, rate_limited_calls,
  CASE WHEN llm_calls > 0 THEN rate_limited_calls / llm_calls END AS rate_limited_share,
  rate_limited_runs, max_concurrency,
  CASE WHEN $run_cap::DOUBLE IS NOT NULL THEN runs_over_budget END AS runs_over_budget
FROM agg
{order}
"""  # noqa: S608 - fixed SQL fragments; values are bound parameters

# --- run latency, successful and failed apart -----------------------------------------------------
LATENCY = """
WITH r AS (
  SELECT {t} AS t, status, duration_ms{dims} FROM runs
  WHERE """ + WINDOW + """{where}
),
k AS (SELECT *, {bucket} AS bucket FROM r),
a AS (
  SELECT {keys_sel} status, count(*) AS runs, count(duration_ms) AS timed_runs,
         quantile_cont(duration_ms, [0.5, 0.9, 0.95, 0.99]) AS q, max(duration_ms) AS latency_max_ms
  FROM k GROUP BY ALL
)
SELECT {keys_sel} status, runs, timed_runs, q[1] AS latency_p50_ms, q[2] AS latency_p90_ms,
       q[3] AS latency_p95_ms, q[4] AS latency_p99_ms, latency_max_ms
FROM a
ORDER BY {keys_order} status DESC
"""  # noqa: S608 - fixed SQL fragments; values are bound parameters

# --- LLM calls per model (per bucket when given) ----------------------------------------------------
LLM_CALLS = """
WITH
r AS (
  SELECT run_id, {t} AS t, llm_calls, root_span_id FROM runs
  WHERE """ + WINDOW + """{where}
),
k AS (SELECT run_id, {bucket} AS bucket FROM r),
""" + CALLS + """,
c AS (
  SELECT k.bucket, coalesce(""" + model_name("calls.model") + """, '(unknown)') AS model, calls.provider, calls.*
    EXCLUDE (model, provider),
    calls.prompt_tokens / m.context_window AS ctx, m.context_window
  FROM calls JOIN k ON k.run_id = calls.run_id
  LEFT JOIN _signal_models m ON m.model = calls.model AND m.provider IS NOT DISTINCT FROM calls.provider
)
SELECT {keys_sel} model,
  count(*) AS calls, count(*) FILTER (WHERE failed) AS errors,
  count(*) FILTER (WHERE failed) / count(*) AS error_rate,
  count(*) FILTER (WHERE rate_limited) AS rate_limited_calls,
  count(*) FILTER (WHERE rate_limited) / count(*) AS rate_limited_share,
  count(duration_ms) AS timed_calls,
  quantile_cont(duration_ms, 0.5) AS latency_p50_ms, quantile_cont(duration_ms, 0.9) AS latency_p90_ms,
  quantile_cont(duration_ms, 0.95) AS latency_p95_ms, quantile_cont(duration_ms, 0.99) AS latency_p99_ms,
  quantile_cont(duration_ms, 0.95) FILTER (WHERE NOT failed) AS latency_ok_p95_ms,
  quantile_cont(duration_ms, 0.95) FILTER (WHERE failed) AS latency_error_p95_ms,
  count(time_to_first_token_ms) AS ttft_calls,
  quantile_cont(time_to_first_token_ms, 0.5) AS ttft_p50_ms,
  quantile_cont(time_to_first_token_ms, 0.95) AS ttft_p95_ms,
  sum(input_tokens)::BIGINT AS input_tokens, sum(output_tokens)::BIGINT AS output_tokens,
  max(context_window) AS context_window,
  quantile_cont(ctx, 0.95) AS context_utilization_p95, max(ctx) AS context_utilization_max
FROM c
GROUP BY ALL
ORDER BY {keys_order} calls DESC, model
"""  # noqa: S608 - fixed SQL fragments; values are bound parameters

# --- tool calls per tool --------------------------------------------------------------------------
TOOL_CALLS = """
WITH
r AS (SELECT run_id, {t} AS t FROM runs WHERE """ + WINDOW + """{where}),
k AS (SELECT run_id, {bucket} AS bucket FROM r),
c AS (
  SELECT k.bucket, coalesce(s.tool_name, s.name, '(unknown)') AS tool, s.status = 'error' AS failed,
         s.duration_ms
  FROM spans s JOIN k ON k.run_id = s.run_id
  WHERE s.kind = 'tool'
)
SELECT {keys_sel} tool,
  count(*) AS calls, count(*) FILTER (WHERE failed) AS errors,
  count(*) FILTER (WHERE failed) / count(*) AS error_rate,
  count(duration_ms) AS timed_calls,
  quantile_cont(duration_ms, 0.5) AS latency_p50_ms, quantile_cont(duration_ms, 0.9) AS latency_p90_ms,
  quantile_cont(duration_ms, 0.95) AS latency_p95_ms, quantile_cont(duration_ms, 0.99) AS latency_p99_ms,
  quantile_cont(duration_ms, 0.95) FILTER (WHERE NOT failed) AS latency_ok_p95_ms,
  quantile_cont(duration_ms, 0.95) FILTER (WHERE failed) AS latency_error_p95_ms
FROM c
GROUP BY ALL
ORDER BY {keys_order} calls DESC, tool
"""  # noqa: S608 - fixed SQL fragments; values are bound parameters

# --- explicit errors by type and span kind -------------------------------------------------------------
ERRORS_BY_TYPE = """
WITH
r AS (SELECT run_id, {t} AS t, status FROM runs WHERE """ + WINDOW + """{where}),
e AS (
  SELECT {error_type} AS error_type, s.kind, s.run_id, r.status AS run_status, s.status_message,
         s.started_at,
         regexp_matches(coalesce(s.error_type, '') || ' ' || coalesce(s.status_message, ''), $rate_limit)
           AS rate_limited
  FROM spans s JOIN r ON r.run_id = s.run_id
  WHERE s.status = 'error'
)
SELECT error_type, kind, count(*) AS error_spans, count(DISTINCT run_id) AS runs,
       count(DISTINCT run_id) FILTER (WHERE run_status = 'error') AS failed_runs,
       bool_or(rate_limited) AS rate_limited,
       left(arg_min(status_message, started_at), 100) AS example
FROM e GROUP BY ALL
ORDER BY error_spans DESC, error_type, kind
"""  # noqa: S608 - fixed SQL fragments; values are bound parameters

# --- spend against the daily caps of [budgets.daily_usd] ---------------------------------------------
# {dims}: the capped dimensions (", feature, customer_id"), {unpivot}: "feature, customer_id".
BUDGET_DAILY = """
WITH
r AS (
  SELECT date_trunc('day', started_at) AS day, cost_usd{dims} FROM runs
  WHERE ($since::TIMESTAMPTZ IS NULL OR started_at >= $since::TIMESTAMPTZ)
    AND ($until::TIMESTAMPTZ IS NULL OR started_at < $until::TIMESTAMPTZ)
),
u AS (SELECT day, cost_usd, dimension, value FROM r UNPIVOT INCLUDE NULLS (value FOR dimension IN ({unpivot}))),
spend AS (
  SELECT day, dimension, value, count(*) AS runs, coalesce(sum(cost_usd), 0) AS spend_usd
  FROM u GROUP BY ALL
)
SELECT s.day, s.dimension, s.value, s.runs, s.spend_usd, coalesce(c.cap_usd, d.cap_usd) AS cap_usd,
       s.spend_usd / coalesce(c.cap_usd, d.cap_usd) AS utilization
FROM spend s
LEFT JOIN _budget_caps c ON c.dimension = s.dimension AND c.value = s.value
LEFT JOIN _budget_caps d ON d.dimension = s.dimension AND d.value = '*'
WHERE coalesce(c.cap_usd, d.cap_usd) IS NOT NULL
ORDER BY s.day, utilization DESC, s.dimension, s.value
"""

BUDGET_RUNS = """
SELECT count(*) AS runs, count(cost_usd) AS runs_with_cost, max(cost_usd) AS max_run_cost_usd,
       count(*) FILTER (WHERE """ + over_budget_sql("cost_usd", "$run_usd") + """) AS runs_over_run_usd,
       count(*) FILTER (WHERE """ + over_budget_sql("cost_usd", "$run_usd_hard") + """) AS runs_over_run_usd_hard,
       max(cost_usd) / $run_cap::DOUBLE AS max_run_utilization
FROM runs
WHERE ($since::TIMESTAMPTZ IS NULL OR started_at >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR started_at < $until::TIMESTAMPTZ)
"""

# --- SLO events: (ts, bad) per SLI, counted per window [at - w, at) --------------------------------
_RUN_TS = "coalesce(ended_at, started_at)"
_RUNS_IN = ("FROM runs WHERE " + _RUN_TS + " >= $lo::TIMESTAMPTZ AND " + _RUN_TS
            + " < $at::TIMESTAMPTZ{where}")
# LLM calls ending in [lo, at): both sides of the wrapper test are limited to the runs that end after
# lo (a span ends before its run does).
_LLM_W = """WITH llm_w AS (
    SELECT s.* FROM spans s
    WHERE s.kind = 'llm' AND s.run_id IN (
      SELECT run_id FROM runs WHERE coalesce(ended_at, started_at) >= $lo::TIMESTAMPTZ{where}))
  """
_LLM_CALLS_IN = """FROM llm_w s
  WHERE coalesce(s.ended_at, s.started_at) >= $lo::TIMESTAMPTZ
    AND coalesce(s.ended_at, s.started_at) < $at::TIMESTAMPTZ
    AND NOT EXISTS (SELECT 1 FROM llm_w c WHERE c.run_id = s.run_id AND c.parent_span_id = s.span_id)"""
SLI_EVENTS = {
    "errors": "SELECT " + _RUN_TS + " AS ts, status = 'error' AS bad " + _RUNS_IN,
    "latency": "SELECT " + _RUN_TS + " AS ts, duration_ms > $threshold_ms::DOUBLE AS bad " + _RUNS_IN
               + " AND duration_ms IS NOT NULL",
    "implicit": "SELECT " + _RUN_TS + " AS ts, status = 'error' OR run_id IN (SELECT run_id FROM failures) "  # noqa: S608 - fixed SQL fragments; values are bound parameters
                "AS bad " + _RUNS_IN,
    "cost": "SELECT " + _RUN_TS + " AS ts, " + over_budget_sql("cost_usd", "$max_cost_usd") + " AS bad " + _RUNS_IN
            + " AND cost_usd IS NOT NULL",
    "llm_errors": _LLM_W + "SELECT coalesce(s.ended_at, s.started_at) AS ts, s.status = 'error' AS bad "
                  + _LLM_CALLS_IN,
    "rate_limited": _LLM_W + "SELECT coalesce(s.ended_at, s.started_at) AS ts, s.status = 'error' AND regexp_matches("
                    "coalesce(s.error_type, '') || ' ' || coalesce(s.status_message, ''), $rate_limit) AS bad "
                    + _LLM_CALLS_IN,
}

SLO_COUNTS = """
WITH ev AS ({events}),
w AS (SELECT unnest($secs::BIGINT[]) AS secs)
SELECT w.secs, count(ev.ts) AS events, count(ev.ts) FILTER (WHERE ev.bad) AS bad
FROM w LEFT JOIN ev ON ev.ts >= $at::TIMESTAMPTZ - to_seconds(w.secs) AND ev.ts < $at::TIMESTAMPTZ
GROUP BY w.secs
"""

MODEL_PAIRS = """
SELECT DISTINCT model, provider FROM spans WHERE model IS NOT NULL AND kind IN ('llm', 'agent')
"""

HAS_FAILURES = """
SELECT count(*) > 0 FROM information_schema.tables
WHERE table_name = 'failures' AND table_schema = current_schema()
"""

TEMPLATES = {
    "SIGNALS": SIGNALS, "LATENCY": LATENCY, "LLM_CALLS": LLM_CALLS, "TOOL_CALLS": TOOL_CALLS,
    "ERRORS_BY_TYPE": ERRORS_BY_TYPE, "BUDGET_DAILY": BUDGET_DAILY,
}
PLAIN = {"BUDGET_RUNS": BUDGET_RUNS, "MODEL_PAIRS": MODEL_PAIRS, "HAS_FAILURES": HAS_FAILURES}
