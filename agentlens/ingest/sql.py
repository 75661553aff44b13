"""Named SQL of the ingest: publishing a staged file in its transaction. Every value is a bound parameter
(`?`) or comes from a table; `tests/test_sql.py` parses each statement here.

A file is published from its staged Parquet files (`$stage` globs, see stage.py) in set-based
statements, so DuckDB streams the rows to disk instead of holding a transaction's appends in memory.
A run's row is always rebuilt from its spans by `store.runsql.BUILD_RUNS` (the single source of per-run
SQL), for the run ids in the temp table `_build` and their spans' rowids in `_build_rids` (one chunk of
the runs a file touched, so that memory stays bounded whatever the file size). The pipeline steps that
run after the build, inside the same transaction (pricing, classification), work on the chunk in
`_affected`.
"""

from __future__ import annotations

from ..store.chunks import CHUNKS_EXPR
from ..store.runsql import PRICED_SPAN_COLUMNS, SPAN_FLOOR_EXPR

NEXT_SPAN_ROWID = "SELECT coalesce(max(rowid) + 1, 0) FROM spans"
# a file without spans (agent_runs rows given whole) stages no keys
STAGED_TABLE = "CREATE OR REPLACE TEMP TABLE _staged (run_id VARCHAR, span_id VARCHAR, _row BIGINT, _bytes BIGINT)"

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
CHUNK_NARROW = "INSERT INTO _narrow SELECT * EXCLUDE (chunk) FROM _narrow_file WHERE chunk = ?"
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
GIVEN_TABLE = "CREATE OR REPLACE TEMP TABLE _given (run_id VARCHAR)"
# The times the file's stored runs had before it rebuilds or replaces them (a run's start moves when earlier
# spans arrive; a given run may come again with another time): fleet checks judge those days again too.
STAGE_PRIOR_TIMES = """
INSERT INTO _prior_times
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
# whole table: ~3x slower to build). Chunks weighed as store.chunks.CHUNKS_EXPR says.
STAGE_REBUILD = f"""
CREATE OR REPLACE TEMP TABLE _rebuild AS
SELECT run_id, first_row, bytes, {CHUNKS_EXPR} AS chunk
FROM (SELECT run_id, min(_row) AS first_row, sum(_bytes) AS bytes FROM _staged
      WHERE run_id NOT IN (SELECT run_id FROM _given) GROUP BY run_id)
"""  # noqa: S608 - joins fixed SQL texts (CHUNKS_EXPR), never a value
# Every run the file touched, numbered into chunks for the pipeline steps (same order and weights).
STAGE_TOUCHED = f"""
INSERT INTO _touched
SELECT run_id, {CHUNKS_EXPR} AS chunk
FROM (SELECT run_id, first_row, bytes FROM _rebuild
      UNION ALL
      SELECT run_id, NULL, 0 FROM _given WHERE run_id NOT IN (SELECT run_id FROM _rebuild))
"""  # noqa: S608 - joins fixed SQL texts (CHUNKS_EXPR), never a value

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
CHUNK_BUILD = "INSERT INTO _build SELECT run_id FROM _rebuild WHERE chunk = ?"
CHUNK_BUILD_RIDS = "INSERT INTO _build_rids SELECT rid FROM _rebuild_rids WHERE chunk = ?"
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

# every complete statement (CTE fragments end in _CTES and are parsed inside the statements using them)
ALL_SQL = {k: v for k, v in dict(globals()).items()
           if k.isupper() and not k.endswith(("_CTES", "_EXPR")) and isinstance(v, str)}  # not fragments
