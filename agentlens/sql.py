"""Named SQL run by the store. Every value is a bound parameter (`?`) or comes from a table;
`tests/test_sql.py` parses each statement here.

The single source for per-run aggregate SQL: a run's row is always rebuilt from its spans by
`BUILD_RUNS`, for the run ids in the temp table `_build` and their spans' rowids in `_build_rids` (one
chunk of the runs a file touched, so that memory stays bounded whatever the file size). The pipeline
steps that run after the build, inside the same transaction (pricing, classification), work on the
chunk in `_affected`.

A file is published from its staged Parquet files (`$stage` globs, see store.py) in set-based
statements, so DuckDB streams the rows to disk instead of holding a transaction's appends in memory.
"""

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
NEXT_SPAN_ROWID = "SELECT coalesce(max(rowid) + 1, 0) FROM spans"

# --- publishing one staged file, in its transaction ---------------------------------------------
# A span is identified by (run_id, span_id): a span already stored, or seen earlier in the same file,
# is not stored again (the first one wins), so re-ingesting adds nothing. Only the narrow keys are
# held in temp tables; the wide rows stream from the staged Parquet straight into `spans`.
STAGE_KEYS = "CREATE OR REPLACE TEMP TABLE _staged AS SELECT run_id, span_id, _row, _bytes FROM read_parquet(?)"
STAGE_DUPLICATES = """
CREATE OR REPLACE TEMP TABLE _dups AS
SELECT run_id, span_id, min(_row) AS keep FROM _staged GROUP BY run_id, span_id HAVING count(*) > 1
"""
# The file's runs the database already has: stored keys are looked up only in those (a file of new
# runs skips it), and none of them means the SPAN_FLOOR_EXPR bound applies.
STAGE_STORED_RUNS = """
CREATE OR REPLACE TEMP TABLE _stored_runs AS
SELECT DISTINCT st.run_id FROM _staged st SEMI JOIN runs r ON r.run_id = st.run_id
"""
STAGE_EXISTING = """
CREATE OR REPLACE TEMP TABLE _existing AS
SELECT sp.run_id, sp.span_id FROM spans sp SEMI JOIN _stored_runs k ON k.run_id = sp.run_id
"""
# The staged rows not to store, by their `_row`: the later copies of a span seen twice in the file, and
# the spans already stored. Skipping by one BIGINT keeps the wide INSERT below a plain scan: an anti-join
# on the (run_id, span_id) strings there cost ~10 s per million spans, even with nothing to skip.
STAGE_SKIP = """
CREATE OR REPLACE TEMP TABLE _skip AS
SELECT st._row FROM _staged st JOIN _dups d ON d.run_id = st.run_id AND d.span_id = st.span_id AND d.keep <> st._row
UNION ALL
SELECT st._row FROM _staged st JOIN _existing e ON e.run_id = st.run_id AND e.span_id = st.span_id
"""
# Costs priced before the rows are stored (a file of new runs only: Lens.staged_steps, pricing.price_staged_step),
# by `_row` for spans and by run id for runs; empty otherwise, and the pipeline's price step sets them after.
# Why before: DuckDB writes the rows a transaction appends straight into the database file, unless the
# transaction then updates them; it then writes every appended row to the WAL as well, and copies them at the
# checkpoint. Pricing by UPDATE made the commit of 2M spans take 19-23 s instead of 1 s, and the 1M-run file
# (10M spans) ran out of disk writing that WAL.
STAGE_SPAN_COSTS_TABLE = """
CREATE OR REPLACE TEMP TABLE _staged_span_costs (_row BIGINT, computed_cost_usd DOUBLE, price_source VARCHAR)
"""
STAGE_RUN_COSTS_TABLE = """
CREATE OR REPLACE TEMP TABLE _staged_run_costs (
  run_id VARCHAR, reported DOUBLE, computed DOUBLE, unpriced BIGINT, cost DOUBLE)
"""
# The span columns pricing reads (pricing.PRICE_SET from `spans`, PRICE_SET_STAGED from `_narrow`)
PRICED_SPAN_COLUMNS = ("run_id", "span_id", "parent_span_id", "kind", "started_at", "model", "provider",
                       "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_input_tokens",
                       "reasoning_tokens", "cost_usd")
# Those columns of the staged spans that are stored (not skipped), for steps working before they are: a file
# of new runs only, so every span of its runs is here, and every run in `_rebuild`. In chunk order: each
# chunk's `_narrow` (CHUNK_NARROW) then reads only the row groups holding it, where a lookup of the chunk's
# runs in the whole file's spans made the staged steps grow with the square of the file (189 chunks of 1M
# runs: 175 s, 1/8 of them at 200k runs).
STAGE_NARROW = """
CREATE OR REPLACE TEMP TABLE _narrow_file AS
SELECT r.chunk, b._row, """ + ", ".join(f"b.{c}" for c in PRICED_SPAN_COLUMNS) + """
FROM read_parquet(?) b JOIN _rebuild r ON r.run_id = b.run_id
WHERE NOT EXISTS (SELECT 1 FROM _skip k WHERE k._row = b._row)
ORDER BY r.chunk
"""  # noqa: S608 - joins fixed column names, never a value
CHUNK_NARROW = "CREATE OR REPLACE TEMP TABLE _narrow AS SELECT * EXCLUDE (chunk) FROM _narrow_file WHERE chunk = ?"
PUBLISH_SPANS = """
INSERT INTO spans BY NAME
SELECT b.* EXCLUDE (_row, _bytes, computed_cost_usd, price_source),
       coalesce(c.computed_cost_usd, b.computed_cost_usd) AS computed_cost_usd,
       coalesce(c.price_source, b.price_source) AS price_source
FROM read_parquet(?) b LEFT JOIN _staged_span_costs c ON c._row = b._row
WHERE NOT EXISTS (SELECT 1 FROM _skip k WHERE k._row = b._row)
"""
# Runs delivered whole by a source (agent_runs): replaced, so re-ingesting changes nothing.
STAGE_GIVEN = "CREATE OR REPLACE TEMP TABLE _given AS SELECT DISTINCT run_id FROM read_parquet(?)"
# The times the file's stored runs had before it rebuilds or replaces them (a run's start moves when earlier
# spans arrive; a given run may come again with another time): fleet checks judge those days again too.
STAGE_PRIOR_TIMES = """
CREATE OR REPLACE TEMP TABLE _prior_times AS
SELECT min(started_at) AS first_at, max(coalesce(ended_at, started_at)) AS last_at FROM runs
WHERE run_id IN (SELECT run_id FROM _stored_runs UNION ALL SELECT run_id FROM _given)
"""
DELETE_GIVEN_RUNS = "DELETE FROM runs WHERE run_id IN (SELECT run_id FROM _given)"
PUBLISH_GIVEN_RUNS = """
INSERT INTO runs BY NAME
SELECT * EXCLUDE (_row), now() AS ingested_at FROM read_parquet(?)
QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY _row) = 1
"""
PUBLISH_QUARANTINE = """
INSERT INTO quarantine (ingested_at, source_file, line, kind, reason, raw, run_id, span_id, stored)
SELECT now(), ?, line, kind, reason, raw, run_id, span_id, stored FROM read_parquet(?) ORDER BY _row
"""
# The runs to rebuild from spans (not given whole), numbered into chunks in the order they first appear in
# the file: spans are stored in file order, so a chunk's spans then sit in a few row groups, and the rowid
# lookups below (and the classifiers') read only those (in run_id order a chunk's spans were spread over the
# whole table: ~3x slower to build). A run weighs the larger of 1/N of a chunk (N runs per chunk) and its
# share of the chunk's bytes B (its staged spans' `_bytes`, see store._span_weights); a chunk is at most one
# whole weight (plus one run), so at most N runs and at most B bytes, whichever comes first. In integers: a
# run weighs greatest(bytes * N, B) of a chunk's N * B. Named parameters: $n, $b, $nb (= N * B).
CHUNKS_EXPR = "(sum(greatest(bytes * $n, $b)) OVER (ORDER BY first_row NULLS LAST, run_id) - greatest(bytes * $n, $b)) // $nb"
STAGE_REBUILD = f"""
CREATE OR REPLACE TEMP TABLE _rebuild AS
SELECT run_id, first_row, bytes, {CHUNKS_EXPR} AS chunk
FROM (SELECT run_id, min(_row) AS first_row, sum(_bytes) AS bytes FROM _staged
      WHERE run_id NOT IN (SELECT run_id FROM _given) GROUP BY run_id)
"""  # noqa: S608 - joins fixed SQL texts (CHUNKS_EXPR), never a value
# Every run the file touched, numbered into chunks for the pipeline steps (same order and weights).
STAGE_TOUCHED = f"""
CREATE OR REPLACE TEMP TABLE _touched AS
SELECT run_id, {CHUNKS_EXPR} AS chunk
FROM (SELECT run_id, first_row, bytes FROM _rebuild
      UNION ALL
      SELECT run_id, NULL, 0 FROM _given WHERE run_id NOT IN (SELECT run_id FROM _rebuild))
"""  # noqa: S608 - joins fixed SQL texts (CHUNKS_EXPR), never a value

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
RUN_CALLS_CTES = """
llm AS (
  SELECT run_id, span_id, parent_span_id,
         (input_tokens IS NOT NULL OR output_tokens IS NOT NULL) AS has_usage
  FROM s WHERE kind = 'llm'
),
anc(run_id, span_id, has_usage) AS (
  SELECT run_id, parent_span_id, has_usage FROM llm WHERE parent_span_id IS NOT NULL
  UNION
  SELECT a.run_id, p.parent_span_id, a.has_usage
  FROM anc a JOIN s p ON p.run_id = a.run_id AND p.span_id = a.span_id
  WHERE p.parent_span_id IS NOT NULL
),
leaf_llm AS (SELECT run_id, span_id FROM llm ANTI JOIN anc USING (run_id, span_id)),
counted AS (
  SELECT l.run_id, l.span_id FROM llm l
  ANTI JOIN (SELECT run_id, span_id FROM anc WHERE has_usage) u USING (run_id, span_id)
  WHERE l.has_usage
),
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
"""

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
         sp.cache_write_input_tokens, sp.reasoning_tokens, sp.cost_usd, sp.user_id, sp.session_id,
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
         sum(s.reasoning_tokens) AS reasoning_tokens,
         CASE WHEN count(s.cost_usd) = count(*) THEN sum(s.cost_usd ORDER BY s.span_id) END AS cost_usd  -- fixed order: see SET_RUN_COSTS
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
  SELECT sp.run_id, sp.span_id, sp.parent_span_id, sp.name, sp.status, sp.user_id, sp.session_id,
         sp.customer_id, sp.feature, sp.environment, sp.input_tokens, sp.output_tokens, sp.cached_input_tokens,
         sp.cache_write_input_tokens, sp.reasoning_tokens, sp.cost_usd, sp.input, sp.output,
         json_merge_patch(coalesce(sp.resource_attributes, '{}'), coalesce(sp.attributes, '{}')) AS attributes
  FROM spans sp WHERE sp.rowid IN (SELECT rid FROM root_rid)
),
named AS (  -- agent names, from the attributes of the agent spans and the roots only
  SELECT run_id, span_id, started_at, kind,
         coalesce(names[1], names[2], CASE WHEN kind = 'agent' THEN coalesce(
                    names[3], regexp_replace(name, '^(invoke_agent|create_agent) ', '')) END) AS agent_name
  FROM (
    -- the three names in one parse of the attributes: each `->>` parsed them again, and a parse of large
    -- attributes (a root's with a long prompt) takes several times their size in memory
    SELECT sp.run_id, sp.span_id, sp.started_at, sp.kind, sp.name,
           json_extract_string(sp.attributes, ['$."gen_ai.agent.name"', '$."agent.name"', '$."traceloop.entity.name"'])
             AS names
    FROM spans sp
    WHERE sp.rowid IN (SELECT rid FROM s WHERE kind = 'agent' UNION ALL SELECT rid FROM root_rid)
  )
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
  coalesce(rn.agent_name, ag.agent_name, g.service_name, r.name) AS agent_name,
  g.started_at, g.ended_at,
  date_diff('microsecond', g.started_at, g.ended_at) / 1000.0 AS duration_ms,
  CASE WHEN r.status = 'error' THEN 'error' ELSE 'ok' END AS status,
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
  CASE WHEN pc.run_id IS NOT NULL THEN pc.cost WHEN u.run_id IS NOT NULL THEN u.cost_usd ELSE r.cost_usd END AS cost_usd,
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
"""  # noqa: S608 - joins fixed SQL texts (RUN_CALLS_CTES), never a value

# Where the spans of the runs to rebuild are stored, by chunk, for BUILD_RUNS (a chunk's in `_build_rids`): found
# in one scan of the file's spans (of the table when the file adds to stored runs), so that each chunk's build
# reads only the row groups holding its spans. Looking the chunk's runs up in the spans read the narrow columns
# of every span of the file, per chunk: at 1M runs (189 chunks) the builds took 118 s, 1.8x the 200k file's
# scaled.
STAGE_REBUILD_RIDS = """
CREATE OR REPLACE TEMP TABLE _rebuild_rids AS
SELECT r.chunk, sp.rowid AS rid FROM spans sp JOIN _rebuild r ON r.run_id = sp.run_id
WHERE sp.rowid >= """ + SPAN_FLOOR_EXPR + """
ORDER BY r.chunk, rid
"""
CHUNK_BUILD = "CREATE OR REPLACE TEMP TABLE _build AS SELECT run_id FROM _rebuild WHERE chunk = ?"
CHUNK_BUILD_RIDS = "CREATE OR REPLACE TEMP TABLE _build_rids AS SELECT rid FROM _rebuild_rids WHERE chunk = ?"
DELETE_BUILT_RUNS = "DELETE FROM runs WHERE run_id IN (SELECT run_id FROM _build)"

# Orphans: spans whose parent is not (yet) in their run. Flagged in the quarantine (the span is
# stored); the flag is lifted when a later file brings the parent.
# Checked once per file, for all the runs it rebuilt (`_rebuild`): per chunk, each check hashed every span of
# the file (at 1M runs, 189 chunks: 72 s; 5x the time of 200k runs).
# Whether RESOLVE_ORPHANS has anything to do: it joins spans to spans over the whole table (0.5 s at
# 1M spans), for quarantined orphans that a file of new runs almost never has.
ORPHANS_QUARANTINED = """
SELECT count(*) FROM quarantine q WHERE q.kind = 'orphan_span' AND q.run_id IN (SELECT run_id FROM _rebuild)
"""
RESOLVE_ORPHANS = """
DELETE FROM quarantine q
WHERE q.kind = 'orphan_span' AND q.run_id IN (SELECT run_id FROM _rebuild)
  AND EXISTS (
    SELECT 1 FROM spans c JOIN spans p ON p.run_id = c.run_id AND p.span_id = c.parent_span_id
    WHERE c.run_id = q.run_id AND c.span_id = q.span_id)
"""
FLAG_ORPHANS = """
INSERT INTO quarantine (ingested_at, source_file, line, kind, reason, raw, run_id, span_id, stored)
SELECT now(), c.source_file, NULL, 'orphan_span',
       'span ' || c.span_id || ' names parent ' || c.parent_span_id
         || ', which never arrived in trace ' || c.run_id || '; stored, the run has no complete root',
       to_json({run_id: c.run_id, span_id: c.span_id, parent_span_id: c.parent_span_id, name: c.name})::VARCHAR,
       c.run_id, c.span_id, true
FROM spans c SEMI JOIN _rebuild a ON a.run_id = c.run_id
WHERE c.parent_span_id IS NOT NULL AND c.rowid >= """ + SPAN_FLOOR_EXPR + """
  AND NOT EXISTS (SELECT 1 FROM spans p WHERE p.rowid >= """ + SPAN_FLOOR_EXPR + """
                  AND p.run_id = c.run_id AND p.span_id = c.parent_span_id)
  AND NOT EXISTS (SELECT 1 FROM quarantine q
                  WHERE q.kind = 'orphan_span' AND q.run_id = c.run_id AND q.span_id = c.span_id)
"""  # noqa: S608 - joins fixed SQL texts (SPAN_FLOOR_EXPR), never a value

INSERT_QUARANTINE = """
INSERT INTO quarantine (ingested_at, source_file, line, kind, reason, raw, run_id, span_id, stored)
VALUES (now(), ?, ?, ?, ?, ?, ?, ?, ?)
"""

FILE_SEEN = "SELECT path, ingested_at FROM ingested_files WHERE content_hash = ?"
RECORD_FILE = "INSERT INTO ingested_files VALUES (?, ?, ?, to_timestamp(?), ?, now(), ?, ?, ?, ?)"

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
BY_MODEL = """
SELECT model, count(*) AS llm_calls, sum(input_tokens)::BIGINT AS input_tokens, sum(output_tokens)::BIGINT AS output_tokens
FROM spans WHERE kind = 'llm' AND model IS NOT NULL GROUP BY ALL ORDER BY llm_calls DESC, model
"""
BY_FEATURE = """
SELECT coalesce(feature, '(none)') AS feature, count(*) AS runs,
       count(*) FILTER (WHERE status = 'error') AS error_runs, sum(input_tokens + output_tokens)::BIGINT AS tokens
FROM runs GROUP BY ALL ORDER BY runs DESC, feature
"""
QUARANTINE_BY_KIND = "SELECT kind, count(*) AS records FROM quarantine GROUP BY ALL ORDER BY records DESC"

SPANS_OF_RUN = "SELECT * FROM spans WHERE run_id = ? ORDER BY started_at NULLS LAST, span_id"

# every complete statement (CTE fragments end in _CTES and are parsed inside the statements using them)
ALL_SQL = {k: v for k, v in dict(globals()).items()
           if k.isupper() and not k.endswith(("_CTES", "_EXPR")) and isinstance(v, str)}  # not fragments
