"""Named queries over the canonical tables that the store answers (`Store.overview`, `Store.spans`)."""

from . import runsql

OVERVIEW = """
SELECT count(*) AS runs,
       (SELECT count(*) FROM spans) AS spans,
       (SELECT count(*) FROM quarantine) AS quarantined,
       count(*) FILTER (WHERE status = 'error') AS error_runs,
       min(started_at) AS first_run, max(started_at) AS last_run,
       sum(input_tokens)::BIGINT AS input_tokens, sum(output_tokens)::BIGINT AS output_tokens,
       sum(cached_input_tokens)::BIGINT AS cached_input_tokens, sum(cost_usd) AS cost_usd,
       count(cost_usd) AS runs_with_cost
FROM runs
"""
BY_SOURCE = "SELECT source, count(*) AS runs FROM runs GROUP BY ALL ORDER BY runs DESC"
# LLM calls per model: by the rule the run totals use (runsql, the single source of per-run SQL)
BY_MODEL = runsql.CALLS_BY_MODEL
BY_FEATURE = """
SELECT coalesce(feature, '(none)') AS feature, count(*) AS runs,
       count(*) FILTER (WHERE status = 'error') AS error_runs,
       -- a run without an output count keeps its input tokens (input + NULL would drop them)
       (coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0))::BIGINT AS tokens
FROM runs GROUP BY ALL ORDER BY runs DESC, feature
"""
QUARANTINE_BY_KIND = "SELECT kind, count(*) AS records FROM quarantine GROUP BY ALL ORDER BY records DESC"

SPANS_OF_RUN = "SELECT * FROM spans WHERE run_id = ? ORDER BY started_at NULLS LAST, span_id"

# every statement, for tests/test_sql.py to parse
ALL_SQL = {k: v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str)}
