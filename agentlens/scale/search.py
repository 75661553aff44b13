"""`agentlens runs --search` on a ClickHouse store: the same matches as on DuckDB, from ClickHouse's own text
search over words made by DuckDB.

On DuckDB a search reads a tantivy index kept beside the database file, and scans with SQL the runs the index
does not hold yet (agentlens.explore.search). A ClickHouse store has no file to keep an index beside, and the
scan's SQL (regular expressions over every text of a run's spans, JSON paths with wildcards, `rowid`) has no
translation that the conformance suite passed. So the words are per-run work, done where the run is built:

- the ingest process (ship.py) and `agentlens store migrate` make each run's words in DuckDB with the search's
  own SQL (explore.search.RUN_WORDS: the run's text as the index's tokenizer cuts it, lowercased, one space
  between words and one at each end) and write them to `run_words_rows` (run_id, the run's `ingested_at`,
  words, `_version`), a table of the ClickHouse store beside the contract's (not part of the contract);
- a search is `position(words, ' w1 w2 ') > 0`: the phrase between spaces, exactly the DuckDB scan's test
  (`contains`), on the same text made by the same SQL. `hasToken(words, w)` for each word is ANDed in: it
  is implied by the phrase (each word of it is a whole token of `words`, since the words hold only letters and
  digits and are separated by single spaces), so it changes no answer; it lets the token bloom filter index
  skip the granules that cannot match;
- a match counts only while its run is still the one whose words were made (same run_id and `ingested_at`),
  as the tantivy index's do; a run with no current words (written before this table existed, or by a writer
  that did not make them) cannot be searched: the search says how many and how to write them, never answers
  without them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa

TABLE = "run_words_rows"
# 1024-row granules: a bloom filter per granule of 1,024 runs' words (8,192 runs hold too many distinct words
# for a filter of this size to skip anything).
DDL = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
  run_id String, ingested_at DateTime64(6, 'UTC'), words String, _version UInt64,
  INDEX words_tokens words TYPE tokenbf_v1(65536, 3, 0) GRANULARITY 1
) ENGINE = ReplacingMergeTree(_version) ORDER BY run_id SETTINGS index_granularity = 1024"""

# The runs whose current version has no words: a search cannot answer for them.
MISSING = f"""SELECT count() AS n FROM runs
WHERE (run_id, ingested_at) NOT IN (SELECT run_id, ingested_at FROM {TABLE})"""  # noqa: S608 - a constant


# What the runs are now (the newest ingest, how many): the check above is made again only when it moved.
STAMP = "SELECT max(ingested_at) AS t, count() AS n FROM runs"


def hits_sql(words: list[str]) -> tuple[str, dict[str, str]]:
    """The runs (current versions) whose words hold the phrase, and the parameters."""
    params = {f"w{i}": w for i, w in enumerate(words)}
    params["phrase"] = f" {' '.join(words)} "
    tokens = " AND ".join(f"hasToken(words, {{w{i}:String}})" for i in range(len(words)))
    sql = (f"SELECT run_id FROM runs WHERE (run_id, ingested_at) IN (SELECT run_id, ingested_at FROM {TABLE} "  # noqa: S608 - constants
           f"WHERE {tokens} AND position(words, {{phrase:String}}) > 0)")
    return sql, params


class NotSearchable(ValueError):
    """Runs of the store have no words: a search would miss them."""


def search(ch: Any, words: list[str], table: str = "_search_hits") -> int:
    """Fill the connection's table `table` (run_id) with the runs whose words hold the phrase `words` (made by
    explore.search.query_words) on the ClickHouseConnection `ch` (typed Any: connection.py imports this module
    for its DDL); returns how many. NotSearchable when some runs have no words."""
    stamp = tuple(ch.engine.query(STAMP).to_pylist()[0].values())
    missing = 0 if ch.words_checked == stamp else int(ch.engine.query(MISSING).column("n")[0].as_py())
    ch.words_checked = stamp if not missing else None  # checked again only when runs were written since
    if missing:
        raise NotSearchable(
            f"{missing:,} runs of this ClickHouse store have no search words (written before agentlens made "
            "them, or by a writer that does not): `agentlens store migrate` of their DuckDB database writes them")
    sql, params = hits_sql(words)
    ch.create_native(table, sql, params)
    return int(ch.engine.query(f"SELECT count() AS n FROM `{ch.real_name(table)}`").column("n")[0].as_py())  # noqa: S608 - our own table


def write(ch: Any, batches: Iterable[pa.Table], version: int) -> int:
    """Words of runs (run_id, ingested_us, words: explore.search.RUN_WORDS) into the store. Returns the rows."""
    n = 0
    for t in batches:
        if t.num_rows == 0:
            continue
        out = pa.table({
            "run_id": t.column("run_id").cast(pa.string()),
            "ingested_at": t.column("ingested_us").cast(pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "words": t.column("words").cast(pa.string()),
            "_version": pa.array([version] * t.num_rows, pa.uint64()),
        })
        ch.engine.insert(TABLE, out)
        n += out.num_rows
    return n
