"""Measure the classifiers against labelled runs: precision and recall per mode.

    labels = pl.read_ndjson("sample_traces/labels.jsonl")   # {"run_id", "modes": [...]} per run
    failures.evaluate.score(lens, labels)

A run counts once per mode (a run with two detections of one mode is one true positive). Runs
labelled with no mode are the healthy ones: the `(healthy runs)` row counts those with any
detection (false alarms). Runs in the database without a label are ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from .classifiers import MODES

if TYPE_CHECKING:
    from ..store import Store

SCORE = """
WITH lab AS (SELECT CAST(run_id AS VARCHAR) AS run_id, modes FROM _labels),
got AS (SELECT DISTINCT f.run_id, f.mode FROM failures f SEMI JOIN lab USING (run_id)),
want AS (SELECT run_id, unnest(modes) AS mode FROM lab),
m AS (SELECT unnest(?::VARCHAR[]) AS mode),
per AS (
  SELECT m.mode,
         (SELECT count(*) FROM want w WHERE w.mode = m.mode) AS labelled,
         (SELECT count(*) FROM got g WHERE g.mode = m.mode) AS detected,
         (SELECT count(*) FROM got g SEMI JOIN want w ON w.run_id = g.run_id AND w.mode = g.mode
          WHERE g.mode = m.mode) AS tp
  FROM m
)
SELECT mode, labelled, detected, tp AS true_positives, detected - tp AS false_positives,
       labelled - tp AS false_negatives,
       CASE WHEN detected > 0 THEN tp / detected END AS precision,
       CASE WHEN labelled > 0 THEN tp / labelled END AS recall
FROM per
UNION ALL
SELECT '(healthy runs)', count(*), count(*) FILTER (WHERE run_id IN (SELECT run_id FROM got)), NULL,
       count(*) FILTER (WHERE run_id IN (SELECT run_id FROM got)), NULL, NULL, NULL
FROM lab WHERE len(modes) = 0
"""

ALL_SQL = {"SCORE": SCORE}


def score(lens: Store, labels: pl.DataFrame) -> pl.DataFrame:
    """Per mode: labelled runs, detected runs, true/false positives, false negatives, precision, recall."""
    if not {"run_id", "modes"} <= set(labels.columns):
        raise ValueError("labels need the columns run_id and modes (a list of mode names)")
    lens.con.register("_labels", labels.select(pl.col("run_id").cast(pl.String), pl.col("modes")).to_arrow())
    try:
        return lens.sql(SCORE, [list(MODES)])
    finally:
        lens.con.unregister("_labels")
