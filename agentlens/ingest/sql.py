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

from ..schema import SPAN_COLUMNS
from ..store import chunks
from ..store.chunks import CHUNKS_EXPR
from ..store.runsql import PRICED_SPAN_COLUMNS, SPAN_FLOOR_EXPR

NEXT_SPAN_ROWID = "SELECT coalesce(max(rowid) + 1, 0) FROM spans"
# a file without spans (agent_runs rows given whole) stages no keys
STAGED_TABLE = ("CREATE OR REPLACE TEMP TABLE _staged "
                "(run_id VARCHAR, span_id VARCHAR, _row BIGINT, _bytes BIGINT, ended_at TIMESTAMPTZ)")

# --- publishing one staged file, in its transaction ---------------------------------------------
# A span is identified by (run_id, span_id) (run ids of a named source carry its name: publish.namespaced).
# A key seen once, new to the database, goes in. A key seen again (stored already, or twice in the file)
# is one record in several versions: the same content (CONTENT_HASH_EXPR) is one version, kept once (the stored
# one; else the first in the file); other content is a change, and the version kept is decided by the
# versions alone, never by the order they arrive in (VERSION_ORDER_EXPR): so ingesting files in any order ends
# in the same tables. A stored version that loses is deleted (PUBLISH_REPLACED) and its run rebuilt. Only
# the narrow keys are held in temp tables; the wide rows stream from the staged Parquet into `spans`.
STAGE_KEYS = ("CREATE OR REPLACE TEMP TABLE _staged AS "
              "SELECT run_id, span_id, _row, _bytes, ended_at FROM read_parquet(?)")
STAGE_DUPLICATES = """
CREATE OR REPLACE TEMP TABLE _dups AS
SELECT run_id, span_id FROM _staged GROUP BY run_id, span_id HAVING count(*) > 1
"""
# The file's runs the database already has: stored keys are looked up only in those (a file of new
# runs skips it), and none of them means the SPAN_FLOOR_EXPR bound applies.
STAGE_STORED_RUNS = """
CREATE OR REPLACE TEMP TABLE _stored_runs AS
SELECT DISTINCT st.run_id FROM _staged st SEMI JOIN runs r ON r.run_id = st.run_id
"""
# The stored spans whose key comes again in the file.
# (the stored runs' spans looked up first, alone, by run id: DuckDB then uses the run_id index; joined to
# `_stored_runs`, or with the semi-join's filter pushed into the look-up, the scan read the run id of every
# stored span: 32-38 ms at 10M spans against 1 ms)
STAGE_EXISTING = """
CREATE OR REPLACE TEMP TABLE _existing AS
WITH sp AS MATERIALIZED (
  SELECT rowid AS rid, run_id, span_id FROM spans WHERE run_id IN (SELECT run_id FROM _stored_runs)
)
SELECT sp.rid, sp.run_id, sp.span_id FROM sp SEMI JOIN _staged st ON st.run_id = sp.run_id AND st.span_id = sp.span_id
"""
EXISTING_TABLE = "CREATE OR REPLACE TEMP TABLE _existing (rid BIGINT, run_id VARCHAR, span_id VARCHAR)"  # none stored
COLLISIONS = "SELECT (SELECT count(*) FROM _dups) + (SELECT count(*) FROM _existing)"
# What a span's content is, to tell a changed version from the same one read again: every column the
# source gave (not the file it was read from, nor the costs computed here).
CONTENT_COLUMNS = tuple(c.name for c in SPAN_COLUMNS if c.name not in ("source_file", "computed_cost_usd",
                                                                         "price_source"))
CONTENT_HASH_EXPR = "md5(concat_ws(chr(31), " + ", ".join(
    f"coalesce({c}::VARCHAR, chr(30))" for c in CONTENT_COLUMNS) + "))"
# The version of a record kept, whatever the order the versions come in: the one that ended (a span exported
# again once it ended), the later end, the later start (an agent_runs row dated again), the one with an
# output (a response filled in later), the more content (more attributes), and last the content hash (an
# arbitrary but fixed choice between two versions of the same size). The same content read again is one
# version: the stored one (else the first in the file) stays.
VERSION_ORDER_EXPR = ("ended_at IS NULL, ended_at DESC, started_at DESC NULLS LAST, answered DESC, bytes DESC, h DESC, "
                      "rid IS NULL, _row")
ANSWERED_EXPR = "coalesce(output, '') NOT IN ('', '[]', 'null')"
# Every version of the keys seen more than once: the staged ones (by `_row`) and the stored one (by `rid`).
STAGE_VERSIONS = """
CREATE OR REPLACE TEMP TABLE _versions AS
WITH k AS (SELECT run_id, span_id FROM _dups UNION SELECT run_id, span_id FROM _existing),
v AS (
  SELECT b.run_id, b.span_id, b._row, NULL::BIGINT AS rid, b.ended_at, b.started_at,
         """ + ANSWERED_EXPR + """ AS answered,
         """ + chunks.SPAN_WEIGHT_SQL + """ AS bytes, """ + CONTENT_HASH_EXPR + """ AS h
  FROM read_parquet(?) b SEMI JOIN k ON k.run_id = b.run_id AND k.span_id = b.span_id
  UNION ALL
  SELECT sp.run_id, sp.span_id, NULL, sp.rowid, sp.ended_at, sp.started_at, """ + ANSWERED_EXPR + """, """ + chunks.SPAN_WEIGHT_SQL + """, """ + CONTENT_HASH_EXPR + """
  FROM spans sp SEMI JOIN _existing e ON e.rid = sp.rowid
)
SELECT *, row_number() OVER (PARTITION BY run_id, span_id ORDER BY """ + VERSION_ORDER_EXPR + """) = 1 AS keep,
       h <> first_value(h) OVER (PARTITION BY run_id, span_id ORDER BY """ + VERSION_ORDER_EXPR + """) AS differs
FROM v
"""  # noqa: S608 - joins fixed SQL texts (column names), never a value
# The staged rows not to store, by their `_row`: every version of a key seen again but the one kept.
# Skipping by one BIGINT keeps the wide INSERT below a plain scan: an anti-join on the (run_id, span_id)
# strings there cost ~10 s per million spans, even with nothing to skip.
STAGE_SKIP = "CREATE OR REPLACE TEMP TABLE _skip AS SELECT _row FROM _versions WHERE _row IS NOT NULL AND NOT keep"
SKIP_TABLE = "CREATE OR REPLACE TEMP TABLE _skip (_row BIGINT)"
# The stored spans a changed version replaces.
STAGE_REPLACED = """
CREATE OR REPLACE TEMP TABLE _replaced AS
SELECT v.rid FROM _versions v
WHERE v.rid IS NOT NULL AND EXISTS (SELECT 1 FROM _versions w WHERE w.run_id = v.run_id AND w.span_id = v.span_id
                                    AND w.keep AND w._row IS NOT NULL)
"""
REPLACED_TABLE = "CREATE OR REPLACE TEMP TABLE _replaced (rid BIGINT)"
PUBLISH_REPLACED = "DELETE FROM spans WHERE rowid IN (SELECT rid FROM _replaced)"
# What became of the versions seen again: stored ones replaced (changed), staged ones the same as the one
# kept (unchanged), staged ones with other content that lost to the one kept (outdated: counted, never
# silently dropped).
VERSION_COUNTS = """
SELECT count(*) FILTER (WHERE rid IS NOT NULL AND NOT keep),
       count(*) FILTER (WHERE _row IS NOT NULL AND NOT keep AND NOT differs),
       count(*) FILTER (WHERE _row IS NOT NULL AND NOT keep AND differs)
FROM _versions
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
# A run given whole is one record with its span (agent_runs: a row gives both, in the same batch, in the same
# order): the version of the run is the version of its span (above), so its row and its span always come
# from the same version. A staged run row is paired with the span staged beside it (same batch file, same
# position); a given run whose span was kept out (stored already, or outdated) is left as it is.
STAGE_GIVEN_ROWS = """
CREATE OR REPLACE TEMP TABLE _given_rows AS
WITH r AS (SELECT run_id, _row, regexp_extract(filename, '(\\d+)\\.parquet$', 1) AS f,
                  _row - min(_row) OVER (PARTITION BY filename) AS pos FROM read_parquet(?, filename = true)),
s AS (SELECT run_id, _row, regexp_extract(filename, '(\\d+)\\.parquet$', 1) AS f,
             _row - min(_row) OVER (PARTITION BY filename) AS pos FROM read_parquet(?, filename = true))
SELECT r.run_id, r._row, s._row AS span_row FROM r LEFT JOIN s ON s.f = r.f AND s.pos = r.pos AND s.run_id = r.run_id
"""
STAGE_GIVEN_NO_SPANS = """
CREATE OR REPLACE TEMP TABLE _given_rows AS
SELECT run_id, _row, NULL::BIGINT AS span_row FROM read_parquet(?)
"""
GIVEN_ROWS_TABLE = "CREATE OR REPLACE TEMP TABLE _given_rows (run_id VARCHAR, _row BIGINT, span_row BIGINT)"
# The run rows to store: per run, the row paired with its span version that goes in, else (a run given
# without a span) the first row of a run not stored yet.
STAGE_GIVEN_PICK = """
CREATE OR REPLACE TEMP TABLE _given_pick AS
SELECT run_id, _row FROM _given_rows g
WHERE (g.span_row IS NOT NULL AND NOT EXISTS (SELECT 1 FROM _skip k WHERE k._row = g.span_row))
   OR (g.span_row IS NULL AND g.run_id NOT IN (SELECT run_id FROM runs))
QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY span_row IS NULL, _row) = 1
"""
GIVEN_PICK_TABLE = "CREATE OR REPLACE TEMP TABLE _given_pick (run_id VARCHAR, _row BIGINT)"  # no run given
STAGE_GIVEN = "CREATE OR REPLACE TEMP TABLE _given AS SELECT run_id FROM _given_pick"
GIVEN_TABLE = "CREATE OR REPLACE TEMP TABLE _given (run_id VARCHAR)"
# What the file's stored runs were before it rebuilds or replaces them (tables.PRIOR): their times (a run's start
# moves when earlier spans arrive; a given run may come again with another time), whether they had a failure,
# their features and customers (a root that comes late may bring them), and `?`: the stored spans replaced by
# another version. Fleet checks judge those days and series again too. (Conditions in FILTERs: the run_id
# index serves the look-up only when the scan has no other condition.)
STAGE_PRIOR = """
INSERT INTO _prior
SELECT min(started_at) AS first_at, max(coalesce(ended_at, started_at)) AS last_at,
       coalesce(bool_or(error_count > 0), false) AS had_errors,
       coalesce(list(DISTINCT feature) FILTER (WHERE feature IS NOT NULL), []) AS features,
       coalesce(list(DISTINCT customer_id) FILTER (WHERE customer_id IS NOT NULL), []) AS customers,
       ?::BIGINT AS spans_replaced
FROM runs
WHERE run_id IN (SELECT run_id FROM _stored_runs UNION ALL SELECT run_id FROM _given)
"""
DELETE_GIVEN_RUNS = "DELETE FROM runs WHERE run_id IN (SELECT run_id FROM _given)"
PUBLISH_GIVEN_RUNS = """
INSERT INTO runs BY NAME
SELECT * EXCLUDE (_row), now() AS ingested_at FROM read_parquet(?) b
WHERE EXISTS (SELECT 1 FROM _given_pick p WHERE p._row = b._row)
"""
# A record quarantined before from the same source (a file read whole again once rewritten, a table's rows
# re-read in its lookback window) is not quarantined twice.
PUBLISH_QUARANTINE = """
INSERT INTO quarantine (ingested_at, source_file, line, kind, reason, raw, run_id, span_id, stored)
SELECT now(), $name, line, kind, reason, raw, run_id, span_id, stored FROM read_parquet($glob) b
WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.source_file = $name AND q.kind = b.kind AND q.raw = b.raw
                  AND q.run_id IS NOT DISTINCT FROM b.run_id AND q.span_id IS NOT DISTINCT FROM b.span_id)
ORDER BY _row
"""
# The runs to rebuild from spans (not given whole), numbered into chunks in the order they first appear in
# the file: spans are stored in file order, so a chunk's spans then sit in a few row groups, and the rowid
# lookups below (and the classifiers') read only those (in run_id order a chunk's spans were spread over the
# whole table: ~3x slower to build). Chunks weighed as store.chunks.CHUNKS_EXPR says.
STAGE_REBUILD = f"""
CREATE OR REPLACE TEMP TABLE _rebuild AS
SELECT run_id, first_row, bytes, {CHUNKS_EXPR} AS chunk
FROM (SELECT run_id, min(_row) AS first_row, sum(_bytes) AS bytes FROM _staged st
      WHERE run_id NOT IN (SELECT run_id FROM _given_rows)
        AND NOT EXISTS (SELECT 1 FROM _skip k WHERE k._row = st._row) GROUP BY run_id)
"""  # noqa: S608 - joins fixed SQL texts (CHUNKS_EXPR), never a value
# What the file did to runs: added, changed (rebuilt or replaced), unchanged (came again, nothing new).
RUN_COUNTS = """
WITH t AS (SELECT run_id FROM _rebuild UNION SELECT run_id FROM _given),
f AS (SELECT run_id FROM _staged UNION SELECT run_id FROM _given_rows)
SELECT (SELECT count(*) FROM t WHERE run_id NOT IN (SELECT run_id FROM _stored_runs)),
       (SELECT count(*) FROM t WHERE run_id IN (SELECT run_id FROM _stored_runs)),
       (SELECT count(*) FROM f WHERE run_id NOT IN (SELECT run_id FROM t))
"""
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
# A file of new runs reads the spans above the floor (the row groups it appended); one that touched stored runs
# (floor 0) looks their spans up by run id alone, which DuckDB serves from the run_id index (a join to `_rebuild`
# read the run id of every stored span: 31 ms at 10M spans, for a root added to a run).
STAGE_REBUILD_RIDS = """
CREATE OR REPLACE TEMP TABLE _rebuild_rids AS
SELECT r.chunk, sp.rowid AS rid FROM spans sp JOIN _rebuild r ON r.run_id = sp.run_id
WHERE sp.rowid >= """ + SPAN_FLOOR_EXPR + """
ORDER BY r.chunk, rid
"""
STAGE_REBUILD_RIDS_STORED = """
CREATE OR REPLACE TEMP TABLE _rebuild_rids AS
SELECT r.chunk, sp.rid
FROM (SELECT rowid AS rid, run_id FROM spans WHERE run_id IN (SELECT run_id FROM _rebuild)) sp
JOIN _rebuild r ON r.run_id = sp.run_id
ORDER BY r.chunk, sp.rid
"""
CHUNK_BUILD = "INSERT INTO _build SELECT run_id FROM _rebuild WHERE chunk = ?"
CHUNK_BUILD_RIDS = "INSERT INTO _build_rids SELECT rid FROM _rebuild_rids WHERE chunk = ?"
DELETE_BUILT_RUNS = "DELETE FROM runs WHERE run_id IN (SELECT run_id FROM _build)"

# Orphans: spans whose parent is not (yet) in their run. Flagged in the quarantine (the span is
# stored); the flag is lifted when a later file brings the parent.
# Checked once per file, for all the runs it rebuilt (`_rebuild`): per chunk, each check hashed every span of
# the file (at 1M runs, 189 chunks: 72 s; 5x the time of 200k runs).
# Both checks (and flags.FLAG_CYCLES) read the spans of the runs the file rebuilt, never the whole table: a file of
# new runs those above the span floor (NEW_RUN_SPANS: the row groups it appended, every span of its runs), one
# that touched stored runs those by rowid (REBUILT_SPANS: `_rebuild_rids`, every span of those runs, see
# STAGE_REBUILD_RIDS). A parent looked up in `spans` by its run and span id, or a span floor of 0, read every
# stored span: for a file adding a root to a stored run at 10M spans, lifting the flags took 1.4 s, flagging 0.56 s.
NEW_RUN_SPANS = ("SELECT c.* FROM spans c SEMI JOIN _rebuild a ON a.run_id = c.run_id "  # noqa: S608 - fixed SQL texts
                 "WHERE c.rowid >= " + SPAN_FLOOR_EXPR)
REBUILT_SPANS = "SELECT * FROM spans WHERE rowid IN (SELECT rid FROM _rebuild_rids)"
# A flagged orphan's reason, raw record, run and span (`c`: the span): a fragment of a SELECT list
_ORPHAN_ROW_EXPR = """'span ' || c.span_id || ' names parent ' || c.parent_span_id
         || ', which never arrived in trace ' || c.run_id || '; stored, the run has no complete root',
       to_json({run_id: c.run_id, span_id: c.span_id, parent_span_id: c.parent_span_id, name: c.name})::VARCHAR,
       c.run_id, c.span_id, true"""
# Whether RESOLVE_ORPHANS has anything to do: a file of new runs almost never has quarantined orphans.
ORPHANS_QUARANTINED = """
SELECT count(*) FROM quarantine q WHERE q.kind = 'orphan_span' AND q.run_id IN (SELECT run_id FROM _rebuild)
"""
RESOLVE_ORPHANS = """
DELETE FROM quarantine q
WHERE q.kind = 'orphan_span' AND q.run_id IN (SELECT run_id FROM _rebuild)
  AND EXISTS (
    SELECT 1 FROM (""" + REBUILT_SPANS + """) c JOIN (""" + REBUILT_SPANS + """) p
      ON p.run_id = c.run_id AND p.span_id = c.parent_span_id
    WHERE c.run_id = q.run_id AND c.span_id = q.span_id)
"""  # noqa: S608 - joins fixed SQL texts, never a value


FLAG_ORPHANS = """
INSERT INTO quarantine (ingested_at, source_file, line, kind, reason, raw, run_id, span_id, stored)
SELECT now(), c.source_file, NULL, 'orphan_span', """ + _ORPHAN_ROW_EXPR + """
FROM spans c SEMI JOIN _rebuild a ON a.run_id = c.run_id
WHERE c.parent_span_id IS NOT NULL AND c.rowid >= """ + SPAN_FLOOR_EXPR + """
  AND NOT EXISTS (SELECT 1 FROM spans p WHERE p.rowid >= """ + SPAN_FLOOR_EXPR + """
                  AND p.run_id = c.run_id AND p.span_id = c.parent_span_id)
  AND NOT EXISTS (SELECT 1 FROM quarantine q
                  WHERE q.kind = 'orphan_span' AND q.run_id = c.run_id AND q.span_id = c.span_id)
"""  # noqa: S608 - joins fixed SQL texts, never a value
# (a file of new runs: NEW_RUN_SPANS's spans, as this statement read them before the stored case was added; one
# that touched stored runs: REBUILT_SPANS, once, in a CTE)
FLAG_ORPHANS_STORED = """
INSERT INTO quarantine (ingested_at, source_file, line, kind, reason, raw, run_id, span_id, stored)
WITH c AS (SELECT run_id, span_id, parent_span_id, name, source_file FROM (""" + REBUILT_SPANS + """))
SELECT now(), c.source_file, NULL, 'orphan_span', """ + _ORPHAN_ROW_EXPR + """
FROM c
WHERE c.parent_span_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM c p WHERE p.run_id = c.run_id AND p.span_id = c.parent_span_id)
  AND NOT EXISTS (SELECT 1 FROM quarantine q
                  WHERE q.kind = 'orphan_span' AND q.run_id = c.run_id AND q.span_id = c.span_id)
"""  # noqa: S608 - joins fixed SQL texts, never a value

INSERT_QUARANTINE = """
INSERT INTO quarantine (ingested_at, source_file, line, kind, reason, raw, run_id, span_id, stored)
VALUES (now(), ?, ?, ?, ?, ?, ?, ?, ?)
"""

FILE_SEEN = "SELECT path, ingested_at FROM ingested_files WHERE content_hash = ?"
FILES_SEEN = "SELECT content_hash, path, ingested_at FROM ingested_files WHERE content_hash IN (SELECT unnest(?::VARCHAR[]))"
RECORD_FILE = "INSERT INTO ingested_files VALUES (?, ?, ?, to_timestamp(?), ?, now(), ?, ?, ?, ?)"
# A file of a batch (ingest/batch.py): two files of one batch may have the same bytes (the first is kept)
RECORD_FILE_ONCE = "INSERT OR IGNORE INTO ingested_files VALUES (?, ?, ?, to_timestamp(?), ?, now(), ?, ?, ?, ?)"
# The files of a batch, as one JSON parameter (ingest/batch.py): runs, spans and seconds are the batch's
RECORD_FILES = """
INSERT OR IGNORE INTO ingested_files
SELECT f.content_hash, f.path, f.size_bytes, to_timestamp(f.mtime), f.format, now(), NULL, NULL, f.quarantined, NULL
FROM (SELECT unnest(from_json(?::JSON, '[{"content_hash": "VARCHAR", "path": "VARCHAR", "size_bytes": "BIGINT",
      "mtime": "DOUBLE", "format": "VARCHAR", "quarantined": "BIGINT"}]'), recursive := true)) f
"""
# Quarantine records of the files of a batch, each under its file's name, as one JSON parameter
QUARANTINE_FILES = """
INSERT INTO quarantine (ingested_at, source_file, line, kind, reason, raw, run_id, span_id, stored)
SELECT now(), b.source_file, b.line, b.kind, b.reason, b.raw, b.run_id, b.span_id, b.stored
FROM (SELECT unnest(from_json(?::JSON, '[{"source_file": "VARCHAR", "line": "BIGINT", "kind": "VARCHAR",
      "reason": "VARCHAR", "raw": "VARCHAR", "run_id": "VARCHAR", "span_id": "VARCHAR", "stored": "BOOLEAN"}]'),
      recursive := true)) b
WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.source_file = b.source_file AND q.kind = b.kind
                  AND q.raw = b.raw AND q.run_id IS NOT DISTINCT FROM b.run_id
                  AND q.span_id IS NOT DISTINCT FROM b.span_id)
"""

# How far a file was read (ingest/files.py)
LAST_READ = """
SELECT bytes_read, fingerprint, lines_read, format, appendable FROM file_reads WHERE path = ? AND source = ?
"""
LAST_READS = """
SELECT path, bytes_read, fingerprint, lines_read, format, appendable FROM file_reads
WHERE source = ? AND path IN (SELECT unnest(?::VARCHAR[]))
"""
RECORD_READ = "INSERT OR REPLACE INTO file_reads VALUES (?, ?, ?, ?, ?, ?, ?, now())"
RECORD_READS = """
INSERT OR REPLACE INTO file_reads
SELECT r.*, now() FROM (SELECT unnest(from_json(?::JSON, '[{"path": "VARCHAR", "source": "VARCHAR",
      "format": "VARCHAR", "bytes_read": "BIGINT", "fingerprint": "VARCHAR", "lines_read": "BIGINT",
      "appendable": "BOOLEAN"}]'), recursive := true)) r
"""

# every complete statement (CTE fragments end in _CTES and are parsed inside the statements using them)
ALL_SQL = {k: v for k, v in dict(globals()).items()
           if k.isupper() and not k.endswith(("_CTES", "_EXPR")) and isinstance(v, str)}  # not fragments
