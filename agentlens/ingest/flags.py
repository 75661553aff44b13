"""Flags the publish adds once a file's spans are staged: what a record-by-record read cannot see.

- `duplicate_span`: a span given again in the same file (same run and span id) with other content. The
  first copy is stored (as before); each later copy that differs is quarantined with its row as JSON, so
  that no record vanishes without a trace. Copies that are the same (an exporter's retry) are dropped
  silently, as a re-ingest drops what is stored.
"""

from __future__ import annotations

from duckdb import DuckDBPyConnection

from .stage import Stage

# over the staged spans (read_parquet ?) and `_dups` (sql.STAGE_DUPLICATES: keys seen twice, the first row kept)
FLAG_DUPLICATES = """
INSERT INTO quarantine (ingested_at, source_file, line, kind, reason, raw, run_id, span_id, stored)
WITH s AS (
  SELECT st._row, st.run_id, st.span_id,
         json_merge_patch(to_json(st), '{"_row": null, "_bytes": null}')::VARCHAR AS body
  FROM read_parquet(?) st SEMI JOIN _dups d ON d.run_id = st.run_id AND d.span_id = st.span_id
)
SELECT now(), ?, NULL, 'duplicate_span',
       'span ' || s.span_id || ' of trace ' || s.run_id
         || ' is given again in the file with other content; the first is stored, this one is not',
       s.body, s.run_id, s.span_id, false
FROM s JOIN _dups d ON d.run_id = s.run_id AND d.span_id = s.span_id AND s._row <> d.keep
JOIN s k ON k.run_id = d.run_id AND k.span_id = d.span_id AND k._row = d.keep
WHERE s.body <> k.body
"""


def flag_duplicates(con: DuckDBPyConnection, stage: Stage, name: str) -> None:
    """Quarantine the later copies of a span the file gives twice with other content (inside the publish,
    while `_dups` and the staged spans are there); counted in `stage.flagged`."""
    row = con.execute("SELECT count(*) FROM _dups").fetchone()
    if not row or not row[0]:
        return
    flagged = con.execute(FLAG_DUPLICATES, [stage.glob("spans"), name]).fetchone()
    if flagged and flagged[0]:
        stage.flagged["duplicate_span"] += int(flagged[0])
