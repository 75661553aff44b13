"""What a chunk of runs weighs: runs are built, priced and classified a chunk at a time so that memory
stays bounded whatever the data's size, and a chunk is sized by the long text of its spans.

One measure, two forms: `span_weights` for staged spans (Arrow, while a file is read) and
`SPAN_WEIGHT_SQL` for stored ones (`failures.classify` sizes its batches with it); tests/test_ingest.py
checks the two agree.
"""

from __future__ import annotations

import functools

import pyarrow as pa
import pyarrow.compute as pc

BUILD_CHUNK_RUNS = 20_000  # runs built (and pipeline steps run) per statement, to bound memory
# ... and fewer when their spans' weights (span_weights) add up to more than this; None: a quarter of DuckDB's
# memory limit (measured at 1 GB, before root attributes weighed more: runs with 60 KB prompts were built in
# chunks of 256 MB of text, and ran out of memory in chunks of 384 MB)
BUILD_CHUNK_BYTES: int | None = None
# the span columns holding long text (prompts, outputs, payloads): what building and classifying a run
# hold in memory grows with them, so chunks are weighed by their bytes
LONG_TEXT_COLUMNS = ("input", "output", "attributes", "events", "resource_attributes", "tool_arguments",
                     "tool_result", "tool_calls", "tool_definitions", "status_message")
# what a root or agent span's attributes weigh on top of their text: building a run parses them as JSON
PARSED_ATTRIBUTES_EXTRA = 4

# span_weights in SQL, for stored spans (bytes of UTF-8: strlen); staged spans are weighed in Arrow, where a
# DuckDB query per batch took 3 ms against 0.5 (tests/test_ingest.py checks the two agree)
SPAN_WEIGHT_SQL = (" + ".join(f"coalesce(strlen({c}), 0)" for c in LONG_TEXT_COLUMNS)
                   + f" + CASE WHEN parent_span_id IS NULL OR kind = 'agent' THEN {PARSED_ATTRIBUTES_EXTRA} * coalesce(strlen(attributes), 0) "
                   "ELSE 0 END")

# A chunk number for each row of (run_id, first_row, bytes) in first_row order: a run weighs the larger of 1/N
# of a chunk (N runs per chunk) and its share of the chunk's bytes B (its spans' weights, above); a chunk is at
# most one whole weight (plus one run), so at most N runs and at most B bytes, whichever comes first. In
# integers: a run weighs greatest(bytes * N, B) of a chunk's N * B. Named parameters: $n, $b, $nb (= N * B).
# Used by ingest (building runs) and by the search index (making each run's words).
CHUNKS_EXPR = "(sum(greatest(bytes * $n, $b)) OVER (ORDER BY first_row NULLS LAST, run_id) - greatest(bytes * $n, $b)) // $nb"


def span_weights(spans: pa.Table) -> pa.Array:
    """Bytes of memory a span asks of building and classifying its run, roughly: its long text, and five
    times the attributes of a root or agent span, which building a run parses as JSON (a parse takes several
    times the text; with a long prompt in a root's attributes, that was most of the memory)."""
    lengths = [pc.fill_null(pc.binary_length(spans[c]), 0) for c in LONG_TEXT_COLUMNS]
    parsed = pc.or_(pc.is_null(spans["parent_span_id"]), pc.equal(spans["kind"], "agent"))
    extra = pc.multiply(pc.if_else(pc.fill_null(parsed, False), lengths[LONG_TEXT_COLUMNS.index("attributes")], 0),
                        PARSED_ATTRIBUTES_EXTRA)
    return functools.reduce(pc.add, lengths, extra).cast(pa.int64())
