"""Searching everything a run holds: its input and output, every LLM message, tool arguments and results,
error and exception messages.

What matches: the words of the query, in that order, next to each other (a phrase), case-insensitive;
everything but letters and digits separates words (`A-12345` is the phrase `a 12345`), and JSON escapes
in tool payloads (`\n`) too. The same rule on both paths below (tantivy's simple tokenizer, lowercased;
`WORDS` in SQL), so a run matches the same way whether it is indexed yet or not.

How it is fast: a full-text index ([tantivy](https://github.com/quickwit-oss/tantivy-py)) in a folder
beside the database (`agentlens.duckdb.search/`), one document per run: the run's words (`RUN_DOCS`,
SQL run by DuckDB) and the `ingested_at` of the run it was made from. The database stays the truth:

- the process that holds the database brings the index up to date after each ingest it publishes
  (`sync`, a write operation: it runs where the database is, under its write lock, so the runs it reads
  are committed and no write is under way), indexing the runs rebuilt since its watermark (the newest
  `ingested_at` indexed, committed with the documents);
- a search takes the index's matches only where the run is still the one indexed (same `run_id` and
  `ingested_at`: a rebuilt or deleted run's old document matches nothing), and scans the runs ingested
  after the watermark with the same rule in SQL. An index that is behind, missing or unreadable makes a
  search slower, never wrong;
- other processes only read the folder (tantivy's readers take no lock); `rebuild` (`agentlens index`)
  makes it again from the database.
"""

from __future__ import annotations

import shutil
import threading
import weakref
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..store import Store
from ..store.chunks import CHUNKS_EXPR, SPAN_WEIGHT_SQL
from ..store.ops import write_op

# JSON escapes (\n, \", \u00e9) in a value read as spaces (tool arguments and results are JSON text).
JSON_ESCAPES = r"""regexp_replace({v}, '\\(u[0-9a-fA-F]{{4}}|.)', ' ', 'g')"""
# Text made words as the index's tokenizer makes them (tantivy's simple tokenizer, lowercased): every run
# of characters that are not letters or digits is one space. Used by the scan and on the query.
WORDS = r"""lower(regexp_replace({v}, '[^\p{{L}}\p{{N}}]+', ' ', 'g'))"""
# The text of an LLM message list: its messages' contents (tool calls are searched on their tool spans).
_MSGS = ("CASE WHEN {v} LIKE '[%' AND json_valid({v}) AND json_type({v}) = 'ARRAY' "
         "THEN json_extract_string({v}, '$[*].content') ELSE [{v}] END")

# The text of each run of `_search_runs(run_id)`: its distinct text values, JSON escapes made spaces, in
# a fixed order, joined by a space. `doc` is what the index tokenizes and what the scan reads (as WORDS). Parameters: the
# rowid range of those runs' spans (the spans of runs ingested together lie together: reading only that
# range is what keeps a chunk from reading every span's text).
RUN_DOCS = f"""
WITH vals AS (
  SELECT r.run_id, unnest(list_concat({_MSGS.format(v="r.input")}, {_MSGS.format(v="r.output")})) AS v
  FROM runs r SEMI JOIN _search_runs t USING (run_id)
  UNION ALL
  SELECT s.run_id, unnest(list_concat(
           {_MSGS.format(v="s.input")}, {_MSGS.format(v="s.output")},
           [s.tool_arguments, s.tool_result, s.status_message, s.error_type],
           CASE WHEN s.events IS NOT NULL AND s.events::VARCHAR LIKE '%exception.message%'
                THEN json_extract_string(s.events, '$[*].attributes."exception.message"') ELSE [] END)) AS v
  FROM spans s SEMI JOIN _search_runs t USING (run_id)
  WHERE s.rowid BETWEEN $lo AND $hi
),
distinct_vals AS (SELECT DISTINCT run_id, v FROM vals WHERE v IS NOT NULL AND v <> ''),
texts AS (SELECT run_id, {JSON_ESCAPES.format(v="v")} AS v FROM distinct_vals)
SELECT t.run_id, epoch_us(r.ingested_at) AS ingested_us, coalesce(string_agg(x.v, ' ' ORDER BY x.v), '') AS doc
FROM _search_runs t JOIN runs r USING (run_id) LEFT JOIN texts x ON x.run_id = t.run_id
GROUP BY ALL
"""  # noqa: S608 - built from the constants above
QUERY_WORDS = f"SELECT trim({WORDS.format(v='?')})"
SEARCH_RUNS = "CREATE OR REPLACE TEMP TABLE _search_runs (run_id VARCHAR)"
# The runs the index does not hold as they are now (ingested after its watermark; all without one), in
# chunks of $n runs taken in the order of their spans in storage, with the rowid range of each run's spans.
TODO_OF = f"""
CREATE OR REPLACE TEMP TABLE _search_todo AS
WITH todo AS ({{runs}}),
placed AS (SELECT s.run_id, min(s.rowid) AS r0, max(s.rowid) AS r1, sum({SPAN_WEIGHT_SQL}) AS bytes
           FROM spans s SEMI JOIN todo USING (run_id) GROUP BY ALL),
weighed AS (SELECT t.run_id, p.r0, p.r1, p.r0 AS first_row, coalesce(p.bytes, 0) AS bytes
            FROM todo t LEFT JOIN placed p USING (run_id))
SELECT run_id, r0, r1, {CHUNKS_EXPR} AS chunk FROM weighed
"""  # noqa: S608 - fixed SQL texts
TODO = TODO_OF.format(runs="SELECT run_id FROM runs WHERE $wm IS NULL OR epoch_us(ingested_at) > $wm")
TODO_COUNT = "SELECT count(*) FROM runs WHERE ? IS NULL OR epoch_us(ingested_at) > ?"
CHUNK_RUNS = "INSERT INTO _search_runs SELECT run_id FROM _search_todo WHERE chunk = ?"
CHUNK_RANGE = "SELECT coalesce(min(r0), 0), coalesce(max(r1), -1) FROM _search_todo WHERE chunk = ?"
# Of the index's matches (run_id, ingested_us), the runs still as indexed.
INDEX_HITS = """
INSERT INTO _search_hits
SELECT r.run_id FROM runs r JOIN _search_index_hits h ON h.run_id = r.run_id AND h.ingested_us = epoch_us(r.ingested_at)
WHERE epoch_us(r.ingested_at) <= ?
"""
SCAN = f"SELECT run_id FROM ({RUN_DOCS}) WHERE contains(' ' || {WORDS.format(v='doc')} || ' ', $phrase)"  # noqa: S608 - constants
SCAN_HITS = f"INSERT INTO _search_hits {SCAN}"
NEWEST = "SELECT epoch_us(max(ingested_at)), count(*) FROM runs"
# The words of each run of `_search_runs` as a ClickHouse store keeps them (agentlens.scale.search): the text
# the scan tests, `' ' || WORDS(doc) || ' '`, made here in DuckDB where the run is built.
RUN_WORDS = f"SELECT run_id, ingested_us, ' ' || {WORDS.format(v='doc')} || ' ' AS words FROM ({RUN_DOCS})"  # noqa: S608 - constants
ALL_SQL = {"RUN_DOCS": RUN_DOCS, "QUERY_WORDS": QUERY_WORDS, "TODO": TODO, "TODO_COUNT": TODO_COUNT,
           "INDEX_HITS": INDEX_HITS, "SCAN": SCAN, "SCAN_HITS": SCAN_HITS, "NEWEST": NEWEST, "RUN_WORDS": RUN_WORDS}

INDEX_CHUNK_RUNS = 20_000  # runs whose words are made in one statement while indexing (fewer when long: TODO)
META_ID = "\x00meta"  # the document that holds the watermark (no run id starts with NUL)
_INDEX_LOCK = threading.Lock()


class SearchError(ValueError):
    """A search that cannot be run as given (no letter or digit in it)."""


def index_path(store: Store) -> Path | None:
    """The index folder of the database (None for an in-memory one, and for the work database of an ingest into
    a ClickHouse store, `search_index = False`: searched there from the words it ships)."""
    p = str(store.path)
    if not p or p.startswith(":memory:") or not getattr(store, "search_index", True):
        return None
    return Path(p + ".search")


def _schema() -> Any:
    import tantivy

    b = tantivy.SchemaBuilder()
    b.add_text_field("run_id", stored=True, fast=True, tokenizer_name="raw")
    b.add_integer_field("ingested_us", stored=True, fast=True, indexed=True)
    b.add_text_field("doc", stored=False, tokenizer_name="al_words")
    return b.build()


def _analyzer() -> Any:
    import tantivy

    # WORDS in SQL is the same rule: split on what is not a letter or digit, lowercase (no length limit)
    return tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.lowercase()).build()


def _open_index(path: Path, create: bool) -> Any | None:
    import tantivy

    if not create and not (path / "meta.json").exists():
        return None
    if create:
        path.mkdir(parents=True, exist_ok=True)
    index = tantivy.Index(_schema(), path=str(path), reuse=True)
    index.register_tokenizer("al_words", _analyzer())
    return index


@dataclass(frozen=True)
class IndexState:
    """What the index holds: the runs ingested up to `watermark_us` (epoch microseconds), `documents`."""

    path: Path | None
    watermark_us: int | None
    documents: int


def _watermark(index: Any) -> int | None:
    import tantivy

    index.reload()
    searcher = index.searcher()
    q = tantivy.Query.term_query(index.schema, "run_id", META_ID)
    hits = searcher.search(q, limit=1).hits
    if not hits:
        return None
    return int(searcher.doc(hits[0][1])["ingested_us"][0])


def state(store: Store) -> IndexState:
    """The index of the database as it is on disk (no index: watermark None)."""
    path = index_path(store)
    index = _open_index(path, create=False) if path is not None else None
    if index is None:
        return IndexState(path, None, 0)
    wm = _watermark(index)
    return IndexState(path, wm, max(index.searcher().num_docs - (wm is not None), 0))


def _todo_chunks(store: Store, wm: int | None) -> Iterator[dict[str, Any]]:
    """The runs not indexed as they are (see TODO), a chunk at a time: each chunk's runs in
    `_search_runs`, and the parameters of RUN_DOCS for it."""
    b = store.chunk_bytes()  # making a run's words holds a few copies of its text: chunks weighed as ingest's
    store.con.execute(TODO, {"wm": wm, **_chunking(b)})
    return _chunks(store.con)


def _chunking(chunk_bytes: int) -> dict[str, int]:
    """TODO's chunk parameters: at most INDEX_CHUNK_RUNS runs and `chunk_bytes` of their text a chunk."""
    return {"n": INDEX_CHUNK_RUNS, "b": chunk_bytes, "nb": INDEX_CHUNK_RUNS * chunk_bytes}


def _chunks(con: Any) -> Iterator[dict[str, Any]]:
    try:
        for (chunk,) in con.execute("SELECT DISTINCT chunk FROM _search_todo ORDER BY chunk").fetchall():
            con.execute(SEARCH_RUNS)
            con.execute(CHUNK_RUNS, [chunk])
            lo, hi = con.execute(CHUNK_RANGE, [chunk]).fetchall()[0]
            yield {"lo": lo, "hi": hi}
    finally:
        con.execute("DROP TABLE IF EXISTS _search_todo")
        con.execute("DROP TABLE IF EXISTS _search_runs")


@write_op("search_sync")
def sync(store: Store, rebuild: bool = False) -> IndexState:
    """Bring the index up to date with the database: index the runs (re)built since its watermark, in
    chunks, and commit them with the new watermark. `rebuild`: make it again from nothing. Runs where the
    database is (a write operation); a no-op for an in-memory database."""
    path = index_path(store)
    if path is None:
        return IndexState(None, None, 0)
    import tantivy

    con = store.con
    with _INDEX_LOCK:
        if rebuild and path.exists():
            shutil.rmtree(path)
        index = _open_index(path, create=True)
        wm = _watermark(index)
        newest, _runs = con.execute(NEWEST).fetchall()[0]
        if wm is not None and (newest is None or wm > newest):
            # an index of another database (this one was made again): start over
            shutil.rmtree(path)
            index, wm = _open_index(path, create=True), None
        if newest is None or (wm is not None and newest <= wm):
            return state(store)
        assert index is not None
        writer = index.writer(heap_size=64_000_000, num_threads=1)
        try:
            for params in _todo_chunks(store, wm):
                table = con.sql(RUN_DOCS, params=params).to_arrow_table()
                ids, stamps, docs = (table.column(c).to_pylist() for c in ("run_id", "ingested_us", "doc"))
                for run_id, stamp, doc in zip(ids, stamps, docs, strict=True):
                    if wm is not None:
                        writer.delete_documents_by_term("run_id", run_id)
                    writer.add_document(tantivy.Document(run_id=run_id, ingested_us=stamp, doc=doc))
            writer.delete_documents_by_term("run_id", META_ID)
            writer.add_document(tantivy.Document(run_id=META_ID, ingested_us=int(newest), doc=""))
            writer.commit()
            writer.wait_merging_threads()
        except BaseException:
            with suppress(Exception):
                writer.rollback()
            raise
    return state(store)


def run_words(con: Any, runs: str = "SELECT run_id FROM runs", chunk_bytes: int = 256 << 20) -> Iterator[pa.Table]:
    """The search words (RUN_WORDS: run_id, ingested_us, words) of the runs of the query `runs` on a DuckDB
    connection, a chunk of runs at a time: what a ClickHouse store searches (agentlens.scale.search), made
    where the runs are built (the ingest's work database, or the database `store migrate` moves)."""
    con.execute(TODO_OF.format(runs=runs), _chunking(chunk_bytes))
    for params in _chunks(con):
        yield con.sql(RUN_WORDS, params=params).to_arrow_table()


def rebuild(store: Store) -> IndexState:
    """The index made again from the database (`agentlens index`)."""
    return sync(store, rebuild=True)


def query_words(store: Store, text: str) -> list[str]:
    """The words a search looks for, made by the same rule as the runs' words."""
    row = store.con.execute(QUERY_WORDS, [text]).fetchall()
    words = (row[0][0] or "").split() if row else []
    if not words:
        raise SearchError(f"search {text!r} has no letter or digit to look for")
    return words


def _index_hits(path: Path, words: list[str]) -> tuple[int | None, pa.Table]:
    """The index's watermark and its documents holding the phrase, as (run_id, ingested_us)."""
    import tantivy

    index = _open_index(path, create=False)
    empty = pa.table({"run_id": pa.array([], pa.string()), "ingested_us": pa.array([], pa.int64())})
    if index is None:
        return None, empty
    wm = _watermark(index)
    if wm is None:
        return None, empty
    searcher = index.searcher()
    schema = index.schema
    q = (tantivy.Query.term_query(schema, "doc", words[0]) if len(words) == 1
         else tantivy.Query.phrase_query(schema, "doc", list[str | tuple[int, str]](words)))
    n = searcher.search(q, limit=1, count=True).count or 0
    if n == 0:
        return wm, empty
    hits = searcher.search(q, limit=n, count=False, order_by_field="run_id").hits
    addrs = [a for _, a in hits]
    return wm, pa.table({"run_id": pa.array([k for k, _ in hits], pa.string()),
                         "ingested_us": pa.array(searcher.fast_field_values("ingested_us", addrs), pa.int64())})


@dataclass(frozen=True)
class SearchPlan:
    """How a search was answered: matches from the index, runs scanned (ingested after its watermark)."""

    words: tuple[str, ...]
    indexed_matches: int
    scanned_runs: int
    matches: int


_LAST: weakref.WeakKeyDictionary[Any, tuple[Any, SearchPlan]] = weakref.WeakKeyDictionary()


def forget(store: Store) -> None:
    """Search again next time, even for the same text on unchanged runs."""
    _LAST.pop(store, None)


def prepare(store: Store, text: str) -> SearchPlan:
    """Fill the session's temp table `_search_hits(run_id)` with the runs whose words hold `text`'s
    (see the module's docstring): the index's matches still current, plus a scan of the runs it does not
    hold yet. `RunFilter(text=...)` reads that table. The same text asked again of unchanged runs (the
    newest `ingested_at` and the count the same) reuses it: a page and its count search once."""
    stamp = (text, tuple(store.con.execute(NEWEST).fetchall()[0]))
    last = _LAST.get(store)
    if last is not None and last[0] == stamp:
        return last[1]
    plan = _prepare(store, text)
    _LAST[store] = (stamp, plan)
    return plan


def _prepare_clickhouse(store: Store, text: str) -> SearchPlan:
    """A ClickHouse store: the words of the query made by DuckDB (the same SQL, in memory), the matches from
    the store's words of each run (agentlens.scale.search)."""
    import duckdb

    from ..scale import search as ch_search

    local = duckdb.connect()
    try:
        row = local.execute(QUERY_WORDS, [text]).fetchall()
    finally:
        local.close()
    words = (row[0][0] or "").split() if row else []
    if not words:
        raise SearchError(f"search {text!r} has no letter or digit to look for")
    try:
        n = ch_search.search(store.clickhouse, words)
    except ch_search.NotSearchable as e:
        raise SearchError(str(e)) from None
    return SearchPlan(tuple(words), n, 0, n)


def _prepare(store: Store, text: str) -> SearchPlan:
    if getattr(store, "spark", None) is not None:
        from ..scale.sparkconn import NotSupportedOnSpark

        raise NotSupportedOnSpark("not supported on Spark yet: searching the runs' text (--search): the search "
                                  "reads a DuckDB database's index, or scans its runs by rowid; it runs on DuckDB")
    if getattr(store, "clickhouse", None) is not None:
        return _prepare_clickhouse(store, text)
    words = query_words(store, text)
    con = store.con
    path = index_path(store)
    wm: int | None = None
    hits = None
    if path is not None:
        try:
            wm, hits = _index_hits(path, words)
        except (ValueError, OSError):  # unreadable (being replaced, another version): scan instead
            wm, hits = None, None
    con.execute("CREATE OR REPLACE TEMP TABLE _search_hits (run_id VARCHAR)")
    indexed = 0
    if wm is not None and hits is not None and hits.num_rows:
        con.register("_search_index_hits", hits)
        try:
            con.execute(INDEX_HITS, [wm])
        finally:
            con.unregister("_search_index_hits")
        indexed = int(con.execute("SELECT count(*) FROM _search_hits").fetchall()[0][0])
    scanned = int(con.execute(TODO_COUNT, [wm, wm]).fetchall()[0][0])
    if scanned:
        for params in _todo_chunks(store, wm):
            con.execute(SCAN_HITS, {**params, "phrase": f" {' '.join(words)} "})
    total = int(con.execute("SELECT count(*) FROM _search_hits").fetchall()[0][0])
    return SearchPlan(tuple(words), indexed, scanned, total)


def scan_only(store: Store, text: str) -> int:
    """Matches by the scan alone, every run (what a search costs without the index: bench/search.py)."""
    words = query_words(store, text)
    n = 0
    for params in _todo_chunks(store, None):
        row = store.con.execute(f"SELECT count(*) FROM ({SCAN})", {**params, "phrase": f" {' '.join(words)} "})  # noqa: S608 - a constant
        n += int(row.fetchall()[0][0])
    return n


