"""The single source of per-run aggregate SQL: which spans make up a run's calls, its model, and its
row as built from its spans (`BUILD_RUNS`). Building runs (agentlens.ingest) and pricing them
(agentlens.pricing) both read these, so the two can never disagree.
"""

from __future__ import annotations

# The first rowid of the spans a file adds when none of its runs was stored before (every span of the
# runs it touches is then new), else 0; unset (outside an ingest) it is 0. New spans are appended at
# the end of the table, so `rowid >= SPAN_FLOOR_EXPR` lets DuckDB skip every row group of older data, where
# a lookup by run_id alone scans that column for every stored span: 1,000 runs into a 10M-span
# database built in 0.13 s instead of 0.7 s. A constant to DuckDB (a variable), so it prunes.
SPAN_FLOOR_EXPR = "coalesce(getvariable('agentlens_span_floor'), 0)"
# CRASH_NOTE: DuckDB 2.0.0 corrupts its memory, now and then, on a scan of `spans` that has a constant rowid
# bound (`rowid >= SPAN_FLOOR_EXPR`) beside a rowid join filter (`rowid IN (SELECT ...)`) and a semi-join,
# once the transaction has appended spans: the next statements or the COMMIT crashed the process (SIGSEGV in
# the destructors of the scan's hash tables) or failed ("UndoBuffer - don't know how to commit this type"). Met
# in 6-22% of the ingests of a file adding a span to a stored run (tests/test_duckdb_guard.py); gone with either
# the constant or the semi-join left out, or with DuckDB's join_filter_pushdown optimizer disabled (which
# doubles an incremental ingest's time). BUILD_RUNS therefore takes the floor through `_build_rids` only.

# The model name a person groups by, from the name as recorded (kept as is in `spans.model` and `runs.model`):
# a resource path's last part (Vertex AI `projects/P/locations/L/publishers/google/models/gemini-2.5-flash`,
# the Gemini API's `models/gemini-2.0-flash`, a Bedrock ARN's `foundation-model/anthropic.claude-...`) is the
# model. `{col}`: a column or expression. Every per-model table groups by it (show, signals, rollups, costs).
# (regexp_extract, not regexp_replace: the ClickHouse translation knows it)
MODEL_NAME_EXPR = ("coalesce(nullif(regexp_extract({col}, '^(.*/|)(models|foundation-model|inference-profile)/(.+)$', 3), ''),"
                   " {col})")


def model_name(col: str) -> str:
    """MODEL_NAME_EXPR over `col` (fixed SQL text: a column name, never a value)."""
    return MODEL_NAME_EXPR.format(col=col)


# The span columns pricing reads (pricing.PRICE_SET from `spans`, PRICE_SET_STAGED from `_narrow`)
PRICED_SPAN_COLUMNS = ("run_id", "span_id", "parent_span_id", "kind", "started_at", "model", "provider",
                       "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_input_tokens",
                       "reasoning_tokens", "cost_usd")
# Which spans make up a run's calls, for both building runs and pricing them (one definition, so
# the two can never disagree). CTEs over `s`, a set of runs' spans with at least run_id, span_id,
# parent_span_id, kind, started_at, input_tokens, output_tokens:
# - counted: the LLM spans whose tokens a run sums. A run's token totals count each LLM call once:
#   an LLM span counts when it has usage and no LLM span with usage below it (wrapper spans such as
#   a framework's LLM span around the provider SDK's are skipped), and agent / chain spans that carry
#   their children's totals are never added. When no LLM span has usage, the root's own usage is used.
# - leaf_llm: the LLM calls (LLM spans with no LLM span below them).
# - root_id: the run's root; orphans stand in when the root never came, and the earliest span when
#   parents form a cycle (no top at all), so every run with spans has exactly one.
# The ancestors of the LLM spans (each with whether that LLM span has usage). UNION: a parent cycle ends the
# walk. _ANC_BAG walks with UNION ALL and a depth bound instead (ClickHouse's recursive CTEs take only UNION
# ALL): the same set of (span, has_usage) on any tree, where the set's only use is in anti joins.
_ANC_SET = """anc(run_id, span_id, has_usage) AS (
  SELECT run_id, parent_span_id, has_usage FROM llm WHERE parent_span_id IS NOT NULL
  UNION
  SELECT a.run_id, p.parent_span_id, a.has_usage
  FROM anc a JOIN s p ON p.run_id = a.run_id AND p.span_id = a.span_id
  WHERE p.parent_span_id IS NOT NULL
),"""
_ANC_BAG = """anc(run_id, span_id, has_usage, depth) AS (
  SELECT run_id, parent_span_id, has_usage, 1 FROM llm WHERE parent_span_id IS NOT NULL
  UNION ALL
  SELECT a.run_id, p.parent_span_id, a.has_usage, a.depth + 1
  FROM anc a JOIN s p ON p.run_id = a.run_id AND p.span_id = a.span_id
  WHERE p.parent_span_id IS NOT NULL AND a.depth < 1000
),"""
_LLM_CTE = """
llm AS (
  SELECT run_id, span_id, parent_span_id,
         (input_tokens IS NOT NULL OR output_tokens IS NOT NULL) AS has_usage
  FROM s WHERE kind = 'llm'
),
"""
_CALLS_TAIL = """
leaf_llm AS (SELECT run_id, span_id FROM llm ANTI JOIN anc USING (run_id, span_id)),
counted AS (
  SELECT l.run_id, l.span_id FROM llm l
  ANTI JOIN (SELECT run_id, span_id FROM anc WHERE has_usage) u USING (run_id, span_id)
  WHERE l.has_usage
),"""
RUN_CALLS_CTES = _LLM_CTE + _ANC_SET + _CALLS_TAIL + """
tops AS (  -- spans whose parent is not in the run: the root, or orphans when the root never came
  SELECT s.run_id, s.span_id, s.parent_span_id, s.started_at
  FROM s ANTI JOIN s p ON p.run_id = s.run_id AND p.span_id = s.parent_span_id
),
root_id AS (  -- the root; when parents form a cycle (no top at all), the earliest span stands in
  SELECT s.run_id, s.span_id
  FROM s LEFT JOIN tops t ON t.run_id = s.run_id AND t.span_id = s.span_id
  QUALIFY row_number() OVER (
    PARTITION BY s.run_id
    ORDER BY (t.span_id IS NOT NULL) DESC, (s.parent_span_id IS NULL) DESC, s.started_at NULLS LAST, s.span_id) = 1
)
"""  # noqa: S608 - joins fixed SQL texts, never a value
# leaf_llm and counted as RUN_CALLS_CTES defines them, walked with _ANC_BAG (statements that run on ClickHouse)
CALLS_CTES = _LLM_CTE + _ANC_BAG + _CALLS_TAIL.rstrip(",") + "\n"

# A run's model: the one most of its LLM calls used (then the most input tokens, then by name). A CTE over `s`
# and RUN_CALLS_CTES' leaf_llm; used by BUILD_RUNS, and by pricing a run before it is built.
RUN_MODEL_CTES = """
models AS (
  SELECT s.run_id, s.model
  FROM s SEMI JOIN leaf_llm l ON l.run_id = s.run_id AND l.span_id = s.span_id
  WHERE s.model IS NOT NULL
  GROUP BY s.run_id, s.model
  QUALIFY row_number() OVER (
    PARTITION BY s.run_id ORDER BY count(*) DESC, sum(s.input_tokens) DESC NULLS LAST, s.model) = 1
)
"""

# The calls that make up each run's cost (pricing.PRICE_SET, PRICE_SET_STAGED): the LLM spans BUILD_RUNS counts
# (the same RUN_CALLS_CTES), else (no such call in the run) the run's root span, as BUILD_RUNS takes its usage.
# CTEs then a SELECT list over `calls c` and the run `r` (its start and model), which the statement joins.
RUN_PRICED_CALLS_SELECT = """
root AS (SELECT s.* FROM s JOIN root_id USING (run_id, span_id)),
calls AS (
  SELECT s.*, false AS is_root FROM s SEMI JOIN counted c ON c.run_id = s.run_id AND c.span_id = s.span_id
  UNION ALL
  SELECT r.*, true AS is_root FROM root r ANTI JOIN counted c ON c.run_id = r.run_id
)
SELECT c.run_id, c.span_id, c.is_root,
       (c.input_tokens IS NOT NULL OR c.output_tokens IS NOT NULL) AS has_usage,
       coalesce(c.started_at, r.started_at) AS at,
       CASE WHEN c.is_root THEN coalesce(c.model, r.model) ELSE c.model END AS model, c.provider,
       coalesce(c.input_tokens, 0) AS i, coalesce(c.cached_input_tokens, 0) AS cr,
       coalesce(c.cache_write_input_tokens, 0) AS cw, coalesce(c.output_tokens, 0) AS o,
       coalesce(c.reasoning_tokens, 0) AS r, c.cost_usd AS reported
"""
# HEADLINE_NOTE: a run's (or a call's) reported and computed costs disagree when they are more than both
# tolerances apart: `$reconcile_abs` USD and `$reconcile_rel` of the larger ([pricing] reconcile_absolute_usd,
# reconcile_relative: the rule `agentlens costs` flags runs by). The headline cost (`cost_usd`) is then the
# figure `[pricing] headline_cost` names, bound as `$headline`: 'computed' (the default: a vendor's figure
# that disagrees with the price list is the one to doubt) or 'reported'. When they agree, or only one
# exists, it is call by call the reported cost, else the computed one. Named parameters: pricing.cost_params.
def costs_disagree(reported: str, computed: str) -> str:
    """SQL: the two figures (fixed SQL texts, never values) both exist and disagree (HEADLINE_NOTE)."""
    return (f"({reported} IS NOT NULL AND {computed} IS NOT NULL AND abs({reported} - {computed}) > "
            f"greatest($reconcile_abs::DOUBLE, $reconcile_rel::DOUBLE * greatest(abs({reported}), abs({computed}))))")


def headline_cost(reported: str, computed: str) -> str:
    """SQL: the headline figure of one call or run from its two (HEADLINE_NOTE)."""
    return (f"CASE WHEN {costs_disagree(reported, computed)} AND $headline = 'computed' THEN {computed} "
            f"ELSE coalesce({reported}, {computed}) END")


# The single derivation of a run's cost columns, from its priced calls (`_price_set`, RUN_PRICED_CALLS_SELECT) and
# their computed costs (`_span_costs`): pricing writes them to `runs` (SET_RUN_COSTS) or, before the runs are
# built, to `_staged_run_costs`, which BUILD_RUNS takes them from. A run's reported cost: every counted call
# reports one, else the root's;
# its cost is, call by call, the reported cost else the computed one (NULL when a call has neither), unless the
# run's two figures disagree (HEADLINE_NOTE).
# Costs are summed in span_id order: a float sum depends on its order, and the order spans are stored
# in is not fixed (parallel inserts), so the same data gives the same cost to the last bit.
RUN_COSTS_SELECT = """
SELECT run_id, reported, computed, unpriced,
       """ + "CASE WHEN " + costs_disagree("reported", "computed") + """ AND $headline = 'computed' THEN computed
            ELSE callwise END AS cost
FROM (
  SELECT p.run_id,
         CASE WHEN bool_or(p.is_root) THEN any_value(p.reported)
              WHEN count(p.reported) = count(*) THEN sum(p.reported ORDER BY p.span_id) END AS reported,
         CASE WHEN count(*) FILTER (WHERE p.has_usage) > 0
               AND count(c.computed_cost_usd) = count(*) FILTER (WHERE p.has_usage)
              THEN sum(c.computed_cost_usd ORDER BY p.span_id) END AS computed,
         count(*) FILTER (WHERE p.has_usage AND c.computed_cost_usd IS NULL) AS unpriced,
         CASE WHEN count(*) FILTER (WHERE p.has_usage) = 0 THEN any_value(p.reported)
              WHEN count(coalesce(p.reported, c.computed_cost_usd)) FILTER (WHERE p.has_usage)
                   = count(*) FILTER (WHERE p.has_usage)
              THEN sum(coalesce(p.reported, c.computed_cost_usd) ORDER BY p.span_id) FILTER (WHERE p.has_usage) END AS callwise
  FROM _price_set p LEFT JOIN _span_costs c ON c.run_id = p.run_id AND c.span_id = p.span_id
  GROUP BY p.run_id
)
"""  # noqa: S608 - joins fixed SQL texts, never a value
# MAIN_PATH_NOTE: a run's status. A run is `error` when it ended by an exception on its main path, not only
# when its root says so: the OpenAI Agents SDK's instrumentation closes the root (and a CHAIN) OK when
# `Runner.run` raised and records the error on the inner agent span, the last turn or the last response.
# The main path is the root, then, from the root and each agent, chain or `other` span on the path, the
# child that ended last (a later sibling that succeeded, such as a retried call, takes the path away from
# an earlier failure). The run is `error` when the root, or an agent, chain or LLM span on that path, is
# `error`; a failed tool on it is not (frameworks hand tool errors to the model and carry on).
# Wide columns (attributes, input, output) are read only for the few spans that need them, fetched by
# `rowid`: a semi join on rowid lets DuckDB skip every row group that holds none of them, where a join on
# (run_id, span_id) would scan the wide columns of the whole table (the cost of a small incremental file
# would then grow with the database, not with the file).
BUILD_RUNS = """
INSERT INTO runs BY NAME
WITH RECURSIVE
s AS (  -- narrow
  SELECT sp.rowid AS rid, sp.run_id, sp.span_id, sp.parent_span_id, sp.name, sp.kind, sp.started_at,
         sp.ended_at, sp.status, sp.model, sp.input_tokens, sp.output_tokens, sp.cached_input_tokens,
         sp.cache_write_input_tokens, sp.reasoning_tokens, sp.user_id, sp.session_id,
         sp.customer_id, sp.feature, sp.environment, sp.service_name, sp.source
  FROM spans sp SEMI JOIN _build a ON sp.run_id = a.run_id
  -- the chunk's rowids (`_build_rids`, at or above the span floor) let DuckDB read only their row groups; the
  -- run-id semi-join stays for the plan: without it, the 600 runs of 40 KB prompts (tests) ran out of memory at
  -- a 256 MB limit. No `rowid >= floor` here: with the rowid join filter and the semi-join, after the
  -- transaction appended spans, DuckDB 2.0.0 crashed now and then (see CRASH_NOTE)
  WHERE sp.rowid IN (SELECT rid FROM _build_rids)
),
""" + RUN_CALLS_CTES + """,
usage AS (
  SELECT s.run_id,
         sum(s.input_tokens) AS input_tokens, sum(s.output_tokens) AS output_tokens,
         sum(s.cached_input_tokens) AS cached_input_tokens,
         sum(s.cache_write_input_tokens) AS cache_write_input_tokens,
         sum(s.reasoning_tokens) AS reasoning_tokens
  FROM s SEMI JOIN counted c ON c.run_id = s.run_id AND c.span_id = s.span_id
  GROUP BY s.run_id
),
llm_io AS (  -- whether an LLM span has input / output, read for the LLM spans only
  SELECT sp.rowid AS rid, sp.input IS NOT NULL AS has_input, sp.output IS NOT NULL AS has_output
  FROM spans sp WHERE sp.rowid IN (SELECT rid FROM s WHERE kind = 'llm')
),
calls AS (
  SELECT s.run_id, count(*) AS llm_calls,
         arg_min(s.rid, (s.started_at, s.span_id)) FILTER (WHERE io.has_input AND s.started_at IS NOT NULL) AS first_input_rid,
         arg_max(s.rid, (s.ended_at, s.span_id)) FILTER (WHERE io.has_output AND s.ended_at IS NOT NULL) AS last_output_rid
  FROM s SEMI JOIN leaf_llm l ON l.run_id = s.run_id AND l.span_id = s.span_id
  JOIN llm_io io ON io.rid = s.rid
  GROUP BY s.run_id
),
""" + RUN_MODEL_CTES + """,
root_rid AS (SELECT s.rid FROM s SEMI JOIN root_id r ON r.run_id = s.run_id AND r.span_id = s.span_id),
root AS (  -- the root span's own row (one span per run): only the columns used, its long text read once (with
           -- `sp.*`, every long column of the roots was held in the join: long prompts ran out of memory)
  SELECT sp.run_id, sp.span_id, sp.parent_span_id, sp.name, sp.user_id, sp.session_id,
         sp.customer_id, sp.feature, sp.environment, sp.input_tokens, sp.output_tokens, sp.cached_input_tokens,
         sp.cache_write_input_tokens, sp.reasoning_tokens, sp.input, sp.output,
         json_merge_patch(coalesce(sp.resource_attributes, '{}'), coalesce(sp.attributes, '{}')) AS attributes
  FROM spans sp WHERE sp.rowid IN (SELECT rid FROM root_rid)
),
named AS (  -- agent names, from the attributes of the agent spans and the roots only
  SELECT run_id, span_id, started_at, kind,
         coalesce(names[1], names[2], CASE WHEN kind = 'agent' THEN coalesce(
                    names[3], regexp_replace(name, '^(invoke_agent|create_agent) ', '')) END) AS agent_name,
         names[4] AS trace_name  -- the Langfuse trace's name (the root's, used after the agents')
  FROM (
    -- the names in one parse of the attributes: each `->>` parsed them again, and a parse of large
    -- attributes (a root's with a long prompt) takes several times their size in memory
    SELECT sp.run_id, sp.span_id, sp.started_at, sp.kind, sp.name,
           json_extract_string(sp.attributes, ['$."gen_ai.agent.name"', '$."agent.name"', '$."traceloop.entity.name"',
                                               '$."langfuse.trace.name"'])
             AS names
    FROM spans sp
    WHERE sp.rowid IN (SELECT rid FROM s WHERE kind = 'agent' UNION ALL SELECT rid FROM root_rid)
  )
),
last_child AS (  -- each span's child that ended last (ties: the later start, then span_id): its outcome
  SELECT run_id, parent_span_id, c.span_id, c.kind, c.status
  FROM (SELECT run_id, parent_span_id,
               arg_max({'span_id': span_id, 'kind': kind, 'status': status},
                       (coalesce(ended_at, '-infinity'::TIMESTAMPTZ), coalesce(started_at, '-infinity'::TIMESTAMPTZ),
                        span_id)) AS c
        FROM s WHERE parent_span_id IS NOT NULL GROUP BY run_id, parent_span_id)
),
main_path(run_id, span_id, kind, status, is_root) AS (  -- MAIN_PATH_NOTE; UNION: a parent cycle ends the walk
  SELECT s.run_id, s.span_id, s.kind, s.status, true
  FROM s SEMI JOIN root_id r ON r.run_id = s.run_id AND r.span_id = s.span_id
  UNION
  SELECT c.run_id, c.span_id, c.kind, c.status, false
  FROM main_path m JOIN last_child c ON c.run_id = m.run_id AND c.parent_span_id = m.span_id
  WHERE m.is_root OR m.kind IN ('agent', 'chain', 'other')
),
ended_by_error AS (
  SELECT DISTINCT run_id FROM main_path
  WHERE status = 'error' AND (is_root OR kind IN ('agent', 'chain', 'llm'))
),
agg AS (  -- ties in time go to the lower span_id: the order spans are stored in is not fixed
  SELECT run_id,
         min(started_at) AS started_at, max(ended_at) AS ended_at,
         count(*) AS span_count,
         count(*) FILTER (WHERE kind = 'tool') AS tool_calls,
         count(*) FILTER (WHERE status = 'error') AS error_count,
         arg_min(user_id, (started_at, span_id)) FILTER (WHERE user_id IS NOT NULL AND started_at IS NOT NULL) AS user_id,
         arg_min(session_id, (started_at, span_id)) FILTER (WHERE session_id IS NOT NULL AND started_at IS NOT NULL) AS session_id,
         arg_min(customer_id, (started_at, span_id)) FILTER (WHERE customer_id IS NOT NULL AND started_at IS NOT NULL) AS customer_id,
         arg_min(feature, (started_at, span_id)) FILTER (WHERE feature IS NOT NULL AND started_at IS NOT NULL) AS feature,
         arg_min(environment, (started_at, span_id)) FILTER (WHERE environment IS NOT NULL AND started_at IS NOT NULL) AS environment,
         arg_min(service_name, (started_at, span_id)) FILTER (WHERE service_name IS NOT NULL AND started_at IS NOT NULL) AS service_name,
         any_value(source) AS source
  FROM s GROUP BY run_id
),
agents AS (
  SELECT run_id, arg_min(agent_name, (started_at, span_id)) AS agent_name
  FROM named WHERE agent_name IS NOT NULL AND kind = 'agent' AND started_at IS NOT NULL GROUP BY run_id
),
texts AS (  -- the run's input and output: the first LLM call's input, the last one's output
  SELECT sp.rowid AS rid, sp.input, sp.output FROM spans sp
  WHERE sp.rowid IN (SELECT first_input_rid FROM calls UNION ALL SELECT last_output_rid FROM calls)
)
SELECT
  g.run_id, g.source,
  coalesce(rn.agent_name, ag.agent_name, g.service_name, rn.trace_name, r.name) AS agent_name,
  g.started_at, g.ended_at,
  date_diff('microsecond', g.started_at, g.ended_at) / 1000.0 AS duration_ms,
  CASE WHEN e.run_id IS NOT NULL THEN 'error' ELSE 'ok' END AS status,
  coalesce(r.user_id, g.user_id) AS user_id,
  coalesce(r.session_id, g.session_id) AS session_id,
  coalesce(r.customer_id, g.customer_id) AS customer_id,
  coalesce(r.feature, g.feature) AS feature,
  coalesce(r.environment, g.environment) AS environment,
  m.model,
  CASE WHEN u.run_id IS NOT NULL THEN u.input_tokens ELSE r.input_tokens END AS input_tokens,
  CASE WHEN u.run_id IS NOT NULL THEN u.output_tokens ELSE r.output_tokens END AS output_tokens,
  CASE WHEN u.run_id IS NOT NULL THEN u.cached_input_tokens ELSE r.cached_input_tokens END AS cached_input_tokens,
  CASE WHEN u.run_id IS NOT NULL THEN u.cache_write_input_tokens ELSE r.cache_write_input_tokens END
    AS cache_write_input_tokens,
  CASE WHEN u.run_id IS NOT NULL THEN u.reasoning_tokens ELSE r.reasoning_tokens END AS reasoning_tokens,
  pc.cost AS cost_usd,  -- priced before the build (a file of new runs), else set by pricing's step after it
  pc.reported AS reported_cost_usd, pc.computed AS computed_cost_usd, pc.unpriced AS unpriced_llm_calls,
  coalesce(c.llm_calls, 0) AS llm_calls,
  g.tool_calls, g.span_count, g.error_count,
  coalesce(r.input, fi.input) AS input,
  coalesce(r.output, lo.output) AS output,
  r.attributes,
  CASE WHEN r.parent_span_id IS NULL THEN r.span_id END AS root_span_id,
  g.service_name,
  now() AS ingested_at
FROM agg g
JOIN root r USING (run_id)
LEFT JOIN named rn ON rn.run_id = r.run_id AND rn.span_id = r.span_id
LEFT JOIN agents ag ON ag.run_id = g.run_id
LEFT JOIN usage u ON u.run_id = g.run_id
LEFT JOIN calls c ON c.run_id = g.run_id
LEFT JOIN models m ON m.run_id = g.run_id
LEFT JOIN texts fi ON fi.rid = c.first_input_rid
LEFT JOIN texts lo ON lo.rid = c.last_output_rid
LEFT JOIN _staged_run_costs pc ON pc.run_id = g.run_id
LEFT JOIN ended_by_error e ON e.run_id = g.run_id
"""  # noqa: S608 - joins fixed SQL texts (RUN_CALLS_CTES), never a value


# LLM calls and tokens per model over the whole database (`agentlens show`), by the rule the run totals use
# (RUN_CALLS_CTES): calls are the LLM spans `runs.llm_calls` counts (no LLM span below them: a framework's
# wrapper span is not a second call), tokens those `runs.input_tokens` sums (`counted`). Models grouped by
# MODEL_NAME_EXPR; `recorded_as` lists the names as recorded when they differ from it.
CALLS_BY_MODEL = """
WITH RECURSIVE
s AS (SELECT run_id, span_id, parent_span_id, kind, started_at, model, input_tokens, output_tokens FROM spans),
""" + CALLS_CTES + """,
flagged AS (
  SELECT coalesce(""" + model_name("s.model") + """, '(unknown)') AS model,
         CASE WHEN s.model <> """ + model_name("s.model") + """ THEN s.model END AS recorded,
         s.input_tokens, s.output_tokens, l.span_id IS NOT NULL AS is_call, c.span_id IS NOT NULL AS is_counted
  FROM s
  LEFT JOIN leaf_llm l ON l.run_id = s.run_id AND l.span_id = s.span_id
  LEFT JOIN counted c ON c.run_id = s.run_id AND c.span_id = s.span_id
  WHERE s.kind = 'llm' AND (l.span_id IS NOT NULL OR c.span_id IS NOT NULL)
)
SELECT model,
       count(*) FILTER (WHERE is_call) AS llm_calls,
       sum(input_tokens) FILTER (WHERE is_counted)::BIGINT AS input_tokens,
       sum(output_tokens) FILTER (WHERE is_counted)::BIGINT AS output_tokens,
       nullif(string_agg(DISTINCT recorded, ', ' ORDER BY recorded), '') AS recorded_as
FROM flagged GROUP BY model ORDER BY llm_calls DESC, model
"""  # noqa: S608 - joins fixed SQL texts (RUN_CALLS_CTES), never a value


# every complete statement (CTE fragments end in _CTES and are parsed inside the statements using them)
# (and _SELECT: a SELECT over another step's temp tables, parsed inside the statements that complete it)
ALL_SQL = {k: v for k, v in dict(globals()).items()
           if k.isupper() and not k.startswith("_") and not k.endswith(("_CTES", "_EXPR", "_SELECT")) and isinstance(v, str)}
