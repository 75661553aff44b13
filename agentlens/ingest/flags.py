"""Flags the publish adds once a file's spans are staged: what a record-by-record read cannot see.

(A span given again with other content is not flagged: it is another version of the record, one kept by
the version rule, the other counted as outdated: ingest/sql.py, docs "Record identity".)
- `parent_cycle`: a span whose parents form a cycle (A's parent is B, B's is A), or that hangs under one: no
  root is above it, so no walk down the run's tree reaches it. Stored, and flagged (the run is built as
  before: its root is the earliest span when the whole run is a cycle). Measured: 0.7-1.2 s over 1M
  spans (100k runs, 10,000 in cycles) on 2 shared cores.
"""

from __future__ import annotations

from duckdb import DuckDBPyConnection

from .sql import NEW_RUN_SPANS, REBUILT_SPANS
from .stage import Stage


# The spans of the runs the file rebuilt (`spans`: sql.NEW_RUN_SPANS or sql.REBUILT_SPANS, as the orphan checks
# read them) that no walk down from a top (a span whose parent is not in the run) reaches. The walk
# cannot loop: a span in a cycle has its parent in the cycle, so it is never a child of a span reached.
def _flag_cycles(spans: str) -> str:
    return """
INSERT INTO quarantine (ingested_at, source_file, line, kind, reason, raw, run_id, span_id, stored)
WITH RECURSIVE s AS (
  SELECT run_id, span_id, parent_span_id, name, source_file FROM (""" + spans + """)
),
reach(run_id, span_id) AS (
  SELECT s.run_id, s.span_id FROM s ANTI JOIN s p ON p.run_id = s.run_id AND p.span_id = s.parent_span_id
  UNION ALL
  SELECT c.run_id, c.span_id FROM reach r JOIN s c ON c.run_id = r.run_id AND c.parent_span_id = r.span_id
)
SELECT now(), s.source_file, NULL, 'parent_cycle',
       'span ' || s.span_id || ' (parent ' || s.parent_span_id || ') of trace ' || s.run_id
         || ': its parents form a cycle, no root is above it; stored',
       to_json({run_id: s.run_id, span_id: s.span_id, parent_span_id: s.parent_span_id, name: s.name})::VARCHAR,
       s.run_id, s.span_id, true
FROM s ANTI JOIN reach r ON r.run_id = s.run_id AND r.span_id = s.span_id
WHERE NOT EXISTS (SELECT 1 FROM quarantine q
                  WHERE q.kind = 'parent_cycle' AND q.run_id = s.run_id AND q.span_id = s.span_id)
"""  # noqa: S608 - joins fixed SQL texts, never a value


FLAG_CYCLES = _flag_cycles(NEW_RUN_SPANS)
FLAG_CYCLES_STORED = _flag_cycles(REBUILT_SPANS)


def flag_cycles(con: DuckDBPyConnection, stage: Stage, new_runs_only: bool) -> None:
    """Flag the spans of the file's runs that sit in or under a parent cycle (inside the publish, with
    `_rebuild` and `_rebuild_rids` there; `new_runs_only`: a file that touched no stored run); counted in
    `stage.flagged`."""
    flagged = con.execute(FLAG_CYCLES if new_runs_only else FLAG_CYCLES_STORED).fetchone()
    if flagged and flagged[0]:
        stage.flagged["parent_cycle"] += int(flagged[0])
