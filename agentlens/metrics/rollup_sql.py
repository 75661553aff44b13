"""Named SQL of the rollups (see rollups.py for what they guarantee).

Histograms: a positive value x goes to bin ceil(ln x / ln γ) (bin b holds (γ^(b-1), γ^b]), zero to
`$zero_bin`; a bin reads back as 2γ^b / (γ + 1), within a relative α = (γ - 1) / (γ + 1) of every
value in it (DDSketch's logarithmic mapping, Masson et al., VLDB 2019). `$gamma` and `$zero_bin`
are bound parameters; `{x}` slots take fixed column names only.
"""

from __future__ import annotations

from ..store.runsql import model_name
from .queries import CALLS, RATE_LIMITED

BIN = "CASE WHEN {x} > 0 THEN ceil(ln({x}) / ln($gamma::DOUBLE))::INTEGER WHEN {x} IS NOT NULL THEN $zero_bin::INTEGER END"
VALUE_OF_BIN = "CASE WHEN b = $zero_bin::INTEGER THEN 0.0 ELSE 2 * pow($gamma::DOUBLE, b) / ($gamma::DOUBLE + 1) END"


def bin_of(column: str) -> str:
    return BIN.format(x=column)


IN_DIRTY = "time_bucket($width::INTERVAL, started_at) IN (SELECT bucket_start FROM _rollup_dirty)"

# Runs that are new or changed since they were last rolled at this width, with their old start/end:
# rebuilt (a newer ingested_at), moved, or repriced (`agentlens reprice` updates costs in place).
CHANGED = """
CREATE OR REPLACE TEMP TABLE _rollup_changed AS
SELECT c.run_id, c.started_at, c.ended_at, c.ingested_at, c.cost_usd,
       l.started_at AS old_started_at, l.ended_at AS old_ended_at
FROM runs c
LEFT JOIN (SELECT * FROM rollup_ledger WHERE bucket_seconds = $secs) l ON l.run_id = c.run_id
WHERE c.started_at IS NOT NULL AND (
  l.run_id IS NULL OR l.ingested_at IS DISTINCT FROM c.ingested_at
  OR l.started_at IS DISTINCT FROM c.started_at OR l.ended_at IS DISTINCT FROM c.ended_at
  OR l.cost_usd IS DISTINCT FROM c.cost_usd)
"""

# Every bucket a changed run touches, before and after the change (from its start to its end:
# the in-flight count of each of them may change).
DIRTY = """
CREATE OR REPLACE TEMP TABLE _rollup_dirty AS
SELECT DISTINCT unnest(generate_series(
  time_bucket($width::INTERVAL, s), time_bucket($width::INTERVAL, greatest(s, coalesce(e, s))),
  $width::INTERVAL)) AS bucket_start
FROM (
  SELECT started_at AS s, ended_at AS e FROM _rollup_changed
  UNION ALL
  SELECT old_started_at, old_ended_at FROM _rollup_changed WHERE old_started_at IS NOT NULL
)
"""

DELETE_RUNS = """DELETE FROM rollup_runs
WHERE bucket_seconds = $secs AND bucket_start IN (SELECT bucket_start FROM _rollup_dirty)"""
DELETE_CALLS = """DELETE FROM rollup_calls
WHERE bucket_seconds = $secs AND bucket_start IN (SELECT bucket_start FROM _rollup_dirty)"""
DELETE_BUCKETS = """DELETE FROM rollup_buckets
WHERE bucket_seconds = $secs AND bucket_start IN (SELECT bucket_start FROM _rollup_dirty)"""

INSERT_RUNS = """
INSERT INTO rollup_runs BY NAME
WITH
r AS (
  SELECT run_id, time_bucket($width::INTERVAL, started_at) AS bucket_start, source, agent_name,
         environment, feature, model, status, duration_ms, llm_calls, tool_calls,
         input_tokens, output_tokens, cached_input_tokens, cost_usd
  FROM runs WHERE """ + IN_DIRTY + """
),
""" + RATE_LIMITED + """,
fl AS ({failures})
SELECT $secs AS bucket_seconds, r.bucket_start, r.source, r.agent_name, r.environment, r.feature,
  r.model,
  count(*) AS runs,
  count(*) FILTER (WHERE r.status = 'error') AS errors,
  CASE WHEN {has_failures} THEN count(fl.run_id) END AS implicit_errors,
  count(rl.run_id) AS rate_limited_runs,
  count(r.duration_ms) AS timed_runs,
  sum(r.duration_ms) AS duration_sum_ms,
  max(r.duration_ms) AS duration_max_ms,
  histogram(""" + bin_of("r.duration_ms") + """) FILTER (WHERE r.status <> 'error' AND r.duration_ms IS NOT NULL)
    AS latency_ok_hist,
  histogram(""" + bin_of("r.duration_ms") + """) FILTER (WHERE r.status = 'error' AND r.duration_ms IS NOT NULL)
    AS latency_error_hist,
  coalesce(sum(r.llm_calls), 0)::BIGINT AS llm_calls,
  coalesce(sum(rl.rate_limited_calls), 0)::BIGINT AS rate_limited_calls,
  coalesce(sum(r.tool_calls), 0)::BIGINT AS tool_calls,
  sum(r.input_tokens)::BIGINT AS input_tokens,
  sum(r.output_tokens)::BIGINT AS output_tokens,
  sum(r.cached_input_tokens)::BIGINT AS cached_input_tokens,
  sum(r.cost_usd) AS cost_usd,
  count(r.cost_usd) AS runs_with_cost,
  now() AS rolled_at
FROM r LEFT JOIN fl ON fl.run_id = r.run_id LEFT JOIN rl ON rl.run_id = r.run_id
GROUP BY r.bucket_start, r.source, r.agent_name, r.environment, r.feature, r.model
"""  # noqa: S608 - fixed SQL fragments; values are bound parameters

INSERT_CALLS = """
INSERT INTO rollup_calls BY NAME
WITH
r AS (
  SELECT run_id, time_bucket($width::INTERVAL, started_at) AS bucket_start FROM runs
  WHERE """ + IN_DIRTY + """
),
""" + CALLS + """,
c AS (
  SELECT r.bucket_start, 'llm' AS kind, coalesce(""" + model_name("calls.model") + """, '(unknown)') AS name, calls.provider,
         calls.failed, calls.rate_limited, calls.duration_ms, calls.time_to_first_token_ms AS ttft,
         calls.input_tokens, calls.output_tokens, calls.prompt_tokens
  FROM calls JOIN r ON r.run_id = calls.run_id
  UNION ALL BY NAME
  SELECT r.bucket_start, 'tool' AS kind, coalesce(s.tool_name, s.name, '(unknown)') AS name,
         s.status = 'error' AS failed, false AS rate_limited, s.duration_ms
  FROM spans s JOIN r ON r.run_id = s.run_id
  WHERE s.kind = 'tool'
)
SELECT $secs AS bucket_seconds, bucket_start, kind, name, provider,
  count(*) AS calls,
  count(*) FILTER (WHERE failed) AS errors,
  count(*) FILTER (WHERE rate_limited) AS rate_limited_calls,
  sum(input_tokens)::BIGINT AS input_tokens,
  sum(output_tokens)::BIGINT AS output_tokens,
  max(prompt_tokens) AS max_input_tokens,
  histogram(""" + bin_of("duration_ms") + """) FILTER (WHERE NOT failed AND duration_ms IS NOT NULL)
    AS latency_ok_hist,
  histogram(""" + bin_of("duration_ms") + """) FILTER (WHERE failed AND duration_ms IS NOT NULL)
    AS latency_error_hist,
  histogram(""" + bin_of("ttft") + """) FILTER (WHERE ttft IS NOT NULL) AS ttft_hist,
  histogram(""" + bin_of("prompt_tokens") + """) FILTER (WHERE prompt_tokens IS NOT NULL) AS input_tokens_hist,
  now() AS rolled_at
FROM c
GROUP BY bucket_start, kind, name, provider
"""  # noqa: S608 - fixed SQL fragments; values are bound parameters

# Most runs in flight per dirty bucket: one sweep over the runs overlapping the dirty span.
INSERT_BUCKETS = """
INSERT INTO rollup_buckets BY NAME
WITH
d AS (SELECT bucket_start FROM _rollup_dirty),
lim AS (SELECT min(bucket_start) AS lo, max(bucket_start) + $width::INTERVAL AS hi FROM d),
cr AS (
  SELECT started_at, ended_at FROM runs, lim
  WHERE ended_at > started_at AND ended_at > lim.lo AND started_at < lim.hi
),
ev AS (
  SELECT started_at AS ts, 1 AS d FROM cr
  UNION ALL SELECT ended_at, -1 FROM cr
  UNION ALL SELECT bucket_start, 0 FROM d
),
lv AS (SELECT ts, d, sum(d) OVER (ORDER BY ts, d ROWS UNBOUNDED PRECEDING) AS level FROM ev),
conc AS (
  SELECT time_bucket($width::INTERVAL, ts) AS bucket_start, max(level) AS max_concurrency
  FROM lv WHERE d >= 0 GROUP BY 1
),
started AS (
  SELECT time_bucket($width::INTERVAL, started_at) AS bucket_start, count(*) AS runs
  FROM runs WHERE """ + IN_DIRTY + """ GROUP BY 1
)
SELECT $secs AS bucket_seconds, d.bucket_start, coalesce(s.runs, 0) AS runs,
       c.max_concurrency::BIGINT AS max_concurrency, now() AS rolled_at
FROM d LEFT JOIN started s ON s.bucket_start = d.bucket_start
LEFT JOIN conc c ON c.bucket_start = d.bucket_start
WHERE s.runs IS NOT NULL OR c.max_concurrency > 0
"""  # noqa: S608 - fixed SQL fragments; values are bound parameters

DELETE_LEDGER = """DELETE FROM rollup_ledger
WHERE bucket_seconds = $secs AND run_id IN (SELECT run_id FROM _rollup_changed)"""
INSERT_LEDGER = """
INSERT INTO rollup_ledger (bucket_seconds, run_id, started_at, ended_at, ingested_at, cost_usd)
SELECT $secs, run_id, started_at, ended_at, ingested_at, cost_usd FROM _rollup_changed
"""

COUNT_DIRTY = "SELECT count(*) FROM _rollup_dirty"
COUNT_CHANGED = "SELECT count(*) FROM _rollup_changed"

REBUILD = (
    "DELETE FROM rollup_runs WHERE bucket_seconds = $secs",
    "DELETE FROM rollup_calls WHERE bucket_seconds = $secs",
    "DELETE FROM rollup_buckets WHERE bucket_seconds = $secs",
    "DELETE FROM rollup_ledger WHERE bucket_seconds = $secs",
)

WIDTHS = "SELECT DISTINCT bucket_seconds FROM rollup_buckets ORDER BY 1"

# Runs touching [$since, $until) (now, or when last rolled) that are new or changed since the last rollup at
# this width, as CHANGED finds them: while there is one, the rollups do not cover the window.
STALE_IN_WINDOW = """
SELECT count(*) FROM runs c
LEFT JOIN (SELECT * FROM rollup_ledger WHERE bucket_seconds = $secs) l ON l.run_id = c.run_id
WHERE c.started_at IS NOT NULL AND (
    l.run_id IS NULL OR l.ingested_at IS DISTINCT FROM c.ingested_at
    OR l.started_at IS DISTINCT FROM c.started_at OR l.ended_at IS DISTINCT FROM c.ended_at
    OR l.cost_usd IS DISTINCT FROM c.cost_usd)
  AND ((($until::TIMESTAMPTZ IS NULL OR c.started_at < $until::TIMESTAMPTZ)
        AND ($since::TIMESTAMPTZ IS NULL OR coalesce(c.ended_at, c.started_at) >= $since::TIMESTAMPTZ))
    OR (l.started_at IS NOT NULL AND ($until::TIMESTAMPTZ IS NULL OR l.started_at < $until::TIMESTAMPTZ)
        AND ($since::TIMESTAMPTZ IS NULL OR coalesce(l.ended_at, l.started_at) >= $since::TIMESTAMPTZ)))
"""

# --- reading rollups back -------------------------------------------------------------------------------
# {e}: a CTE body yielding the key columns, `part` and `e` (a histogram entry: key = bin, value = count).
# The quantile of rank (n - 1) q interpolates between the values of the bins holding the order
# statistics floor((n - 1) q) and ceil((n - 1) q), as quantile_cont does with the exact values.
QUANTILES = (("p50", "0.5"), ("p90", "0.9"), ("p95", "0.95"), ("p99", "0.99"))

_Q_PICK = """
    min_by(v, b) FILTER (WHERE upto > floor({q} * (total - 1))) AS lo_{n},
    min_by(v, b) FILTER (WHERE upto > ceil({q} * (total - 1))) AS hi_{n},
    any_value({q} * (total - 1) - floor({q} * (total - 1)))::DOUBLE AS f_{n}"""

_PICKS = ",".join(_Q_PICK.format(q=q, n=n) for n, q in QUANTILES)
_INTERPOLATED = ", ".join(f"lo_{n} + f_{n} * (hi_{n} - lo_{n}) AS {n}" for n, _ in QUANTILES)

HIST_QUANTILES = """
bins AS (
  SELECT {keys_sel} part, e.key AS b, sum(e.value) AS n FROM e GROUP BY ALL
),
cum AS (
  SELECT *, sum(n) OVER (PARTITION BY {keys_sel} part ORDER BY b ROWS UNBOUNDED PRECEDING) AS upto,
         sum(n) OVER (PARTITION BY {keys_sel} part) AS total,
         """ + VALUE_OF_BIN + """ AS v
  FROM bins
),
picks AS (
  SELECT {keys_sel} part, any_value(total)::BIGINT AS total,""" + _PICKS + """
  FROM cum GROUP BY ALL
),
qs AS (
  SELECT {keys_sel} part, total, """ + _INTERPOLATED + """
  FROM picks
)"""  # noqa: S608 - fixed SQL fragments; values are bound parameters

# Shared by READ_RUNS and READ_CALLS: the latency histograms as `e` parts ('all' is ok and error
# together), and the latency quantiles picked from them (in `qp`).
LATENCY_PARTS = """
  SELECT {keys_sel} 'ok' AS part, unnest(map_entries(latency_ok_hist)) AS e FROM rows
  UNION ALL SELECT {keys_sel} 'error' AS part, unnest(map_entries(latency_error_hist)) AS e FROM rows
  UNION ALL SELECT {keys_sel} 'all' AS part, unnest(map_entries(latency_ok_hist)) AS e FROM rows
  UNION ALL SELECT {keys_sel} 'all' AS part, unnest(map_entries(latency_error_hist)) AS e FROM rows"""
LATENCY_QUANTILES = """
    any_value(p50) FILTER (WHERE part = 'all') AS latency_p50_ms,
    any_value(p90) FILTER (WHERE part = 'all') AS latency_p90_ms,
    any_value(p95) FILTER (WHERE part = 'all') AS latency_p95_ms,
    any_value(p99) FILTER (WHERE part = 'all') AS latency_p99_ms,
    any_value(p95) FILTER (WHERE part = 'ok') AS latency_ok_p95_ms,
    any_value(p95) FILTER (WHERE part = 'error') AS latency_error_p95_ms"""

READ_RUNS = """
WITH
rows AS (
  SELECT *, {bucket} AS bucket FROM rollup_runs
  WHERE bucket_seconds = $secs
    AND ($since::TIMESTAMPTZ IS NULL OR bucket_start >= $since::TIMESTAMPTZ)
    AND ($until::TIMESTAMPTZ IS NULL OR bucket_start < $until::TIMESTAMPTZ){where}
),
sums AS (
  SELECT {keys_sel}
    sum(runs)::BIGINT AS runs, sum(errors)::BIGINT AS errors,
    sum(implicit_errors)::BIGINT AS implicit_errors, bool_and(implicit_errors IS NOT NULL) AS classified,
    sum(timed_runs)::BIGINT AS timed_runs, sum(llm_calls)::BIGINT AS llm_calls,
    sum(tool_calls)::BIGINT AS tool_calls, sum(input_tokens)::BIGINT AS input_tokens,
    sum(output_tokens)::BIGINT AS output_tokens, sum(cost_usd) AS cost_usd,
    sum(rate_limited_calls)::BIGINT AS rate_limited_calls,
    sum(rate_limited_runs)::BIGINT AS rate_limited_runs, max(duration_max_ms) AS latency_max_ms
  FROM rows GROUP BY ALL
),
e AS (""" + LATENCY_PARTS + """
),
""" + HIST_QUANTILES + """,
qp AS (
  SELECT {keys_sel}""" + LATENCY_QUANTILES + """
  FROM qs GROUP BY ALL
),
conc AS ({conc})
SELECT {s_keys}
  s.runs, s.errors, s.errors / s.runs AS error_rate,
  CASE WHEN s.classified THEN s.implicit_errors END AS implicit_errors,
  CASE WHEN s.classified THEN s.implicit_errors / s.runs END AS implicit_error_rate,
  s.timed_runs, qp.latency_p50_ms, qp.latency_p90_ms, qp.latency_p95_ms, qp.latency_p99_ms,
  qp.latency_ok_p95_ms, qp.latency_error_p95_ms,
  s.llm_calls, s.tool_calls, s.input_tokens, s.output_tokens, s.cost_usd, s.rate_limited_calls,
  CASE WHEN s.llm_calls > 0 THEN s.rate_limited_calls / s.llm_calls END AS rate_limited_share,
  s.rate_limited_runs, c.max_concurrency, NULL::BIGINT AS runs_over_budget
FROM sums s
LEFT JOIN qp ON {join_qp}
LEFT JOIN conc c ON {join_conc}
WHERE s.runs > 0
{order}
"""  # noqa: S608 - fixed SQL fragments; values are bound parameters

# Most runs in flight from rollup_buckets (only without dimensions: peaks of groups do not add up).
READ_CONC = """
  SELECT {bucket} AS bucket, max(max_concurrency)::BIGINT AS max_concurrency FROM rollup_buckets
  WHERE bucket_seconds = $secs
    AND ($since::TIMESTAMPTZ IS NULL OR bucket_start >= $since::TIMESTAMPTZ)
    AND ($until::TIMESTAMPTZ IS NULL OR bucket_start < $until::TIMESTAMPTZ)
  GROUP BY ALL"""
NO_CONC = "SELECT NULL::TIMESTAMPTZ AS bucket, NULL::BIGINT AS max_concurrency WHERE false"

READ_CALLS = """
WITH
rows AS (
  SELECT *, {bucket} AS bucket FROM rollup_calls
  WHERE bucket_seconds = $secs AND kind = $kind
    AND ($since::TIMESTAMPTZ IS NULL OR bucket_start >= $since::TIMESTAMPTZ)
    AND ($until::TIMESTAMPTZ IS NULL OR bucket_start < $until::TIMESTAMPTZ)
),
sums AS (
  SELECT {keys_sel} sum(calls)::BIGINT AS calls, sum(errors)::BIGINT AS errors,
    sum(rate_limited_calls)::BIGINT AS rate_limited_calls, sum(input_tokens)::BIGINT AS input_tokens,
    sum(output_tokens)::BIGINT AS output_tokens, max(max_input_tokens) AS max_input_tokens,
    arg_max(provider, (calls, provider)) AS provider  -- ties: the same provider every time
  FROM rows GROUP BY ALL
),
e AS (""" + LATENCY_PARTS + """
  UNION ALL SELECT {keys_sel} 'ttft' AS part, unnest(map_entries(ttft_hist)) AS e FROM rows
  UNION ALL SELECT {keys_sel} 'input' AS part, unnest(map_entries(input_tokens_hist)) AS e FROM rows
),
""" + HIST_QUANTILES + """,
qp AS (
  SELECT {keys_sel}""" + LATENCY_QUANTILES + """,
    coalesce(any_value(total) FILTER (WHERE part = 'all'), 0) AS timed_calls,
    coalesce(any_value(total) FILTER (WHERE part = 'ttft'), 0) AS ttft_calls,
    any_value(p50) FILTER (WHERE part = 'ttft') AS ttft_p50_ms,
    any_value(p95) FILTER (WHERE part = 'ttft') AS ttft_p95_ms,
    any_value(p95) FILTER (WHERE part = 'input') AS input_tokens_p95
  FROM qs GROUP BY ALL
)
SELECT {s_keys} s.calls, s.errors, s.errors / s.calls AS error_rate, s.rate_limited_calls,
  s.rate_limited_calls / s.calls AS rate_limited_share, qp.timed_calls,
  qp.latency_p50_ms, qp.latency_p90_ms, qp.latency_p95_ms, qp.latency_p99_ms,
  qp.latency_ok_p95_ms, qp.latency_error_p95_ms, qp.ttft_calls, qp.ttft_p50_ms, qp.ttft_p95_ms,
  s.input_tokens, s.output_tokens, m.context_window,
  qp.input_tokens_p95 / m.context_window AS context_utilization_p95,
  s.max_input_tokens / m.context_window AS context_utilization_max
FROM sums s
LEFT JOIN qp ON {join_qp}
LEFT JOIN {models} m ON m.model = s.name AND m.provider IS NOT DISTINCT FROM s.provider
ORDER BY {keys_order} s.calls DESC, s.name
"""  # noqa: S608 - fixed SQL fragments; values are bound parameters
