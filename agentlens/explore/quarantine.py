"""What could not be read: the quarantine's records with their file, line, kind, reason and an excerpt
of the raw record (untrusted text: shown, never obeyed)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from ..core.timeparse import parse_window
from ..store import Store

EXCERPT_CHARS = 120
RECORDS = """
SELECT id, ingested_at, source_file AS file, line, kind, reason,
       CASE WHEN strlen(raw) > $n THEN left(raw, $n) || '…' ELSE raw END AS excerpt,
       run_id, span_id, stored
FROM quarantine
WHERE ($kind IS NULL OR kind = $kind) AND ($file IS NULL OR contains(source_file, $file))
  AND ($since IS NULL OR ingested_at >= $since::TIMESTAMPTZ) AND ($until IS NULL OR ingested_at < $until::TIMESTAMPTZ)
ORDER BY id DESC LIMIT $limit
"""
COUNTS = """
SELECT source_file AS file, kind, count(*) AS records, count(*) FILTER (WHERE stored) AS stored,
       min(line) AS first_line, arg_min(reason, (coalesce(line, 0), reason)) AS first_reason
FROM quarantine
WHERE ($kind IS NULL OR kind = $kind) AND ($file IS NULL OR contains(source_file, $file))
  AND ($since IS NULL OR ingested_at >= $since::TIMESTAMPTZ) AND ($until IS NULL OR ingested_at < $until::TIMESTAMPTZ)
GROUP BY ALL ORDER BY records DESC, file, kind
"""
ALL_SQL = {"RECORDS": RECORDS, "COUNTS": COUNTS}


def _params(kind: str | None, file: str | None, since: dt.datetime | str | None,
            until: dt.datetime | str | None) -> dict[str, object]:
    s, u = parse_window(since, until)
    return {"kind": kind, "file": file, "since": s, "until": u}


def records(lens: Store, kind: str | None = None, file: str | None = None, since: dt.datetime | str | None = None,
            until: dt.datetime | str | None = None, limit: int = 50, excerpt: int = EXCERPT_CHARS) -> pl.DataFrame:
    """The newest quarantined records (`kind`; `file`: part of the file's path; quarantined in
    [since, until)), the raw record cut to `excerpt` characters."""
    return lens.sql(RECORDS, {**_params(kind, file, since, until), "n": int(excerpt), "limit": int(limit)})


def counts(lens: Store, kind: str | None = None, file: str | None = None, since: dt.datetime | str | None = None,
           until: dt.datetime | str | None = None) -> pl.DataFrame:
    """Quarantined records per file and kind, with the first one's line and reason."""
    return lens.sql(COUNTS, _params(kind, file, since, until))
