"""Searching everything a run holds: its input and output, every LLM message, tool arguments and results,
error and exception messages.

What matches: the words of the query, in that order, next to each other (a phrase), case-insensitive;
everything but letters and digits separates words (`A-12345` is the phrase `a 12345`), and JSON escapes
in tool payloads (`\n`) too. The same rule on both paths below (tantivy's simple tokenizer, lowercased;
`WORDS` in SQL), so a run matches the same way whether it is indexed yet or not.

How it is fast: a full-text index ([tantivy](https://github.com/quickwit-oss/tantivy-py)) in a folder
beside the database (`agentlens.duckdb.search/`), one document per run: the run's words (`RUN_DOCS`,
SQL run by DuckDB), the `ingested_at` of the run it was made from and the run's `started_at` (fast fields:
the index sorts its matches by them). The database stays the truth:

- the process that holds the database brings the index up to date after the ingests it publishes
  (`sync`, a write operation: it runs where the database is, under its write lock, so the runs it reads
  are committed and no write is under way), indexing the runs rebuilt since its watermark (the newest
  `ingested_at` indexed, committed with the documents); a few fresh runs wait for a later publish
  (`LAZY_RUNS`, `LAZY_SECONDS`);
- a search takes the index's matches only where the run is still the one indexed (same `run_id` and
  `ingested_at`: a rebuilt or deleted run's old document matches nothing), and scans the runs ingested
  after the watermark with the same rule in SQL. An index that is behind, missing or unreadable makes a
  search slower, never wrong;
- other processes only read the folder (tantivy's readers take no lock); `rebuild` (`agentlens index`)
  makes it again from the database.

A page of a search (`page`: by `started_at`, the default newest first, or by `ingested_at`) is answered from
the index a page at a time: its matches in that order, the first few, checked against `runs` as above and
with the page's other filters, more fetched in rounds until the page is full or the matches run out (with
other filters of fewer runs than the matches, the index is asked only about those runs). A count (`count`)
is tantivy's count of the matches (among the filter's runs, with other filters), less those of runs rebuilt
since the watermark, plus the scanned ones, where the index checks whole. Other sorts, an index of an older
layout (its schema: the next `sync` makes it again) and the cases `count` and `page` give up on collect
every match (`prepare`), as every search did before.
"""

from __future__ import annotations

import shutil
import threading
import weakref
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
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
SELECT t.run_id, epoch_us(r.ingested_at) AS ingested_us, epoch_us(r.started_at) AS started_us, coalesce(string_agg(x.v, ' ' ORDER BY x.v), '') AS doc
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
placed AS (  -- by rowid: a semi-join read the long text of every span to weigh those of a few (1M runs: 9.4 s -> 0.2 s)
  SELECT s.run_id, min(s.rowid) AS r0, max(s.rowid) AS r1, sum({SPAN_WEIGHT_SQL}) AS bytes
  FROM spans s WHERE s.rowid IN (SELECT x.rowid FROM spans x SEMI JOIN todo USING (run_id)) GROUP BY ALL),
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
# The runs not indexed (ingested after the watermark): how many, and how long ago the oldest was ingested.
BACKLOG = ("SELECT count(*), epoch(now()) - epoch(min(ingested_at)) FROM runs "
           "WHERE $wm IS NULL OR epoch_us(ingested_at) > $wm")
# The words of each run of `_search_runs` as a ClickHouse store keeps them (agentlens.scale.search): the text
# the scan tests, `' ' || WORDS(doc) || ' '`, made here in DuckDB where the run is built.
RUN_WORDS = f"SELECT run_id, ingested_us, ' ' || {WORDS.format(v='doc')} || ' ' AS words FROM ({RUN_DOCS})"  # noqa: S608 - constants
ALL_SQL = {"RUN_DOCS": RUN_DOCS, "QUERY_WORDS": QUERY_WORDS, "TODO": TODO, "TODO_COUNT": TODO_COUNT,
           "INDEX_HITS": INDEX_HITS, "SCAN": SCAN, "SCAN_HITS": SCAN_HITS, "NEWEST": NEWEST, "BACKLOG": BACKLOG, "RUN_WORDS": RUN_WORDS}

# The runs ingested after the watermark (rebuilt since, or new): an index document of one of them is stale.
AFTER_WM = "SELECT run_id FROM runs WHERE epoch_us(ingested_at) > ?"
# INDEX_HITS of a page's few matches, given as lists (no Arrow table: pyarrow would import pandas, ~0.5-1 s)
PAGE_HITS = """
INSERT INTO _search_hits
SELECT r.run_id FROM runs r
JOIN (SELECT unnest($ids::VARCHAR[]) AS run_id, unnest($stamps::BIGINT[]) AS ingested_us) h
  ON h.run_id = r.run_id AND h.ingested_us = epoch_us(r.ingested_at)
WHERE epoch_us(r.ingested_at) <= $wm
"""
# The runs the index should hold, each by exactly one document: those ingested up to the watermark.
UP_TO_WM = "SELECT count(*) FROM runs WHERE epoch_us(ingested_at) <= ?"
SCANNED = "CREATE OR REPLACE TEMP TABLE _search_scanned (run_id VARCHAR)"
SCANNED_HITS = f"INSERT INTO _search_scanned {SCAN}"
HITS_FROM_SCANNED = "CREATE OR REPLACE TEMP TABLE _search_hits AS SELECT run_id FROM _search_scanned"
# The key of a run in the order of a page answered from the index (the index's fast field), and how a run's key
# compares with a round's bound when it is at or before it in that order (descending: NULL starts last).
PAGE_KEYS = {"started_at": ("started_us", "coalesce(epoch_us(started_at), -9223372036854775808)", "epoch_us(started_at)"),
             "ingested_at": ("ingested_us", "epoch_us(ingested_at)", "epoch_us(ingested_at)")}
# Of a page's runs (`where`: the filter's clause, its matches the round's `_search_hits`), those at or before
# the round's bound: when they fill the page, so do the runs of every match (see `page`).
PAGE_BEFORE = "SELECT count(*) FROM runs WHERE ({where}) AND {key} {cmp} ?"
# The runs of a filter (`where`, without the search) indexed as they are, at most $2 of them; the scanned
# matches of a filter.
FILTERED_UP_TO_WM = "SELECT run_id FROM runs WHERE ({where}) AND epoch_us(ingested_at) <= ? LIMIT ?"
SCANNED_OF = "SELECT count(*) FROM runs WHERE ({where}) AND run_id IN (SELECT run_id FROM _search_scanned)"
ALL_SQL.update({"PAGE_HITS": PAGE_HITS, "AFTER_WM": AFTER_WM, "UP_TO_WM": UP_TO_WM, "SCANNED": SCANNED, "SCANNED_HITS": SCANNED_HITS,
                "HITS_FROM_SCANNED": HITS_FROM_SCANNED})

INDEX_CHUNK_RUNS = 20_000  # runs whose words are made in one statement while indexing (fewer when long: TODO)
META_ID = "\x00meta"  # the document that holds the watermark (no run id starts with NUL)
NULL_US = -(2**63)  # `started_us` of a run without a start: after every start, newest first
STALE_MAX = 200_000  # runs not indexed as they are above which a count collects every match
FILTER_TERMS_MIN = 20_000  # runs of a filter counted through the index even when the matches are fewer
PAGE_DOCS_MAX = 20_000  # documents a page reads from the index (their run ids) before it collects every match
_INDEX_LOCK = threading.Lock()
# A publish leaves the index behind (`sync(lazy=True)`) while the runs not indexed are few and fresh: at most
# LAZY_RUNS, the oldest ingested less than LAZY_SECONDS ago. A single-trace file or a receiver's flush then
# skips the index's commit (~40 ms of a ~0.2 s publish); the next publish after that brings it up to date, and
# meanwhile a search scans those few runs (see the module's docstring: slower by that scan, never wrong).
LAZY_RUNS = 200
LAZY_SECONDS = 60


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
    b.add_integer_field("started_us", stored=False, fast=True, indexed=True)  # layout 2: pages in start order
    return b.build()


def _analyzer() -> Any:
    import tantivy

    # WORDS in SQL is the same rule: split on what is not a letter or digit, lowercase (no length limit)
    return tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.lowercase()).build()


def _open_index(path: Path, create: bool) -> Any | None:
    """The index of the current layout (its schema); ValueError for a folder of another one."""
    import tantivy

    if not create and not (path / "meta.json").exists():
        return None
    if create:
        path.mkdir(parents=True, exist_ok=True)
    index = tantivy.Index(_schema(), path=str(path), reuse=True)
    index.register_tokenizer("al_words", _analyzer())
    return index


def _open_reader(path: Path) -> tuple[Any | None, bool]:
    """The index to search and whether it has the current layout: one of an older layout (an agentlens before
    `started_us`) is read as it is, its matches collected whole, until the next sync makes it again."""
    import tantivy

    try:
        return _open_index(path, create=False), True
    except ValueError:
        index = tantivy.Index.open(str(path))
        index.register_tokenizer("al_words", _analyzer())
        return index, False


@dataclass(frozen=True)
class IndexState:
    """What the index holds: the runs ingested up to `watermark_us` (epoch microseconds), `documents`."""

    path: Path | None
    watermark_us: int | None
    documents: int


def _watermark(index: Any, searcher: Any | None = None) -> int | None:
    """The watermark of the index (reloaded), or of the documents `searcher` sees."""
    import tantivy

    if searcher is None:
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
    index = _open_reader(path)[0] if path is not None else None  # of any layout
    if index is None:
        return IndexState(path, None, 0)
    return _state(path, index, _watermark(index))


def _state(path: Path | None, index: Any, wm: int | None) -> IndexState:
    """An open index's state: its documents, less the one that holds the watermark."""
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
def sync(store: Store, rebuild: bool = False, lazy: bool = False) -> IndexState:
    """Bring the index up to date with the database: index the runs (re)built since its watermark, in
    chunks, and commit them with the new watermark. `rebuild`: make it again from nothing. `lazy` (after
    a publish): not while the runs left to index are few and fresh (LAZY_RUNS, LAZY_SECONDS). Returns the
    index's state. Runs where the database is (a write operation); a no-op for an in-memory database."""
    path = index_path(store)
    if path is None:
        return IndexState(None, None, 0)
    import tantivy

    con = store.con
    with _INDEX_LOCK:
        if rebuild and path.exists():
            shutil.rmtree(path)
        try:
            index = _open_index(path, create=True)
        except ValueError:  # another layout (an older agentlens made it) or unreadable: made again
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
        if lazy and wm is not None:
            runs, age = con.execute(BACKLOG, {"wm": wm}).fetchall()[0]
            if runs <= LAZY_RUNS and age is not None and age < LAZY_SECONDS:
                return _state(path, index, wm)
        writer = index.writer(heap_size=64_000_000, num_threads=1)
        try:
            for params in _todo_chunks(store, wm):
                table = con.sql(RUN_DOCS, params=params).to_arrow_table()
                ids, stamps, starts, docs = (table.column(c).to_pylist()
                                             for c in ("run_id", "ingested_us", "started_us", "doc"))
                for run_id, stamp, start, doc in zip(ids, stamps, starts, docs, strict=True):
                    if wm is not None:
                        writer.delete_documents_by_term("run_id", run_id)
                    writer.add_document(tantivy.Document(run_id=run_id, ingested_us=stamp, doc=doc,
                                                         started_us=NULL_US if start is None else start))
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


def _phrase(schema: Any, words: list[str] | tuple[str, ...]) -> Any:
    import tantivy

    return (tantivy.Query.term_query(schema, "doc", words[0]) if len(words) == 1
            else tantivy.Query.phrase_query(schema, "doc", list[str | tuple[int, str]](words)))


def _both(a: Any, b: Any) -> Any:
    import tantivy

    return tantivy.Query.boolean_query([(tantivy.Occur.Must, a), (tantivy.Occur.Must, b)])


def _count(searcher: Any, q: Any) -> int:
    return int(searcher.search(q, limit=1, count=True).count or 0)


def _all_hits(searcher: Any, schema: Any, words: tuple[str, ...]) -> pa.Table:
    """The index's documents holding the phrase, as (run_id, ingested_us): every one."""
    q = _phrase(schema, words)
    n = _count(searcher, q)
    if n == 0:
        return _hits_table([], [])
    hits = searcher.search(q, limit=n, count=False, order_by_field="run_id").hits
    return _hits_table([k for k, _ in hits], searcher.fast_field_values("ingested_us", [a for _, a in hits]))


def _hits_table(ids: list[Any], stamps: list[Any]) -> pa.Table:
    return pa.table({"run_id": pa.array(ids, pa.string()), "ingested_us": pa.array(stamps, pa.int64())})


@dataclass(frozen=True)
class SearchPlan:
    """How a search was answered: matches from the index, runs scanned (ingested after its watermark)."""

    words: tuple[str, ...]
    indexed_matches: int
    scanned_runs: int
    matches: int


@dataclass
class _Search:
    """A search of one text on the runs as they are (`stamp`): its words, the index read (None: every run
    scanned), the runs it does not hold as they are scanned into the temp table `_search_scanned`, and
    `plan` while `_search_hits` holds every match (a page from the index leaves only some there)."""

    stamp: tuple[Any, ...]
    words: tuple[str, ...]
    wm: int | None
    index: Any | None
    current: bool
    scanned_runs: int
    scanned_matches: int
    plan: SearchPlan | None = None
    searcher: Any = None
    stored: dict[tuple[int, int], tuple[str, int]] = field(default_factory=dict)


_LAST: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def forget(store: Store) -> None:
    """Search again next time, even for the same text on unchanged runs."""
    _LAST.pop(store, None)


def _begin(store: Store, text: str) -> _Search:
    """The search of `text` on the runs as they are: reused while the text and the runs (the newest
    `ingested_at` and the count) are the same (a page and its count search once), else begun: the index
    opened and the runs it does not hold scanned."""
    stamp = (text, tuple(store.con.execute(NEWEST).fetchall()[0]))
    last = _LAST.get(store)
    if isinstance(last, _Search) and last.stamp == stamp:
        return last
    words = query_words(store, text)
    con = store.con
    path = index_path(store)
    index, current, wm, searcher = None, False, None, None
    if path is not None:
        try:
            index, current = _open_reader(path)
            if index is not None:
                index.reload()
                searcher = index.searcher()  # one view of the index: its documents and its watermark
                wm = _watermark(index, searcher)
        except (ValueError, OSError):  # unreadable (being replaced, another version): scan instead
            index, wm = None, None
    if wm is None:
        index = searcher = None
    con.execute(SCANNED)
    scanned = int(con.execute(TODO_COUNT, [wm, wm]).fetchall()[0][0])
    if scanned:
        for params in _todo_chunks(store, wm):
            con.execute(SCANNED_HITS, {**params, "phrase": f" {' '.join(words)} "})
    found = int(con.execute("SELECT count(*) FROM _search_scanned").fetchall()[0][0])
    st = _Search(stamp, tuple(words), wm, index, current, scanned, found, searcher=searcher)
    _LAST[store] = st
    return st


def _keep_current(store: Store, st: _Search, hits: pa.Table) -> None:
    """`_search_hits` made the scanned matches plus those of the index's `hits` still current."""
    con = store.con
    con.execute(HITS_FROM_SCANNED)
    if hits.num_rows:
        con.register("_search_index_hits", hits)
        try:
            con.execute(INDEX_HITS, [st.wm])
        finally:
            con.unregister("_search_index_hits")


def prepare(store: Store, text: str) -> SearchPlan:
    """Fill the session's temp table `_search_hits(run_id)` with every run whose words hold `text`'s
    (see the module's docstring): the index's matches still current, plus a scan of the runs it does not
    hold yet. `RunFilter(text=...)` reads that table. The same text asked again of unchanged runs (the
    newest `ingested_at` and the count the same) reuses it: a page and its count search once."""
    _refuse_spark(store)
    if getattr(store, "clickhouse", None) is not None:
        stamp = (text, tuple(store.con.execute(NEWEST).fetchall()[0]))
        last = _LAST.get(store)
        if isinstance(last, tuple) and last[0] == stamp:
            return last[1]
        plan = _prepare_clickhouse(store, text)
        _LAST[store] = (stamp, plan)
        return plan
    st = _begin(store, text)
    if st.plan is None:
        hits = _all_hits(st.searcher, st.index.schema, st.words) if st.index is not None else _hits_table([], [])
        _keep_current(store, st, hits)
        total = int(store.con.execute("SELECT count(*) FROM _search_hits").fetchall()[0][0])
        st.plan = SearchPlan(st.words, total - st.scanned_matches, st.scanned_runs, total)
    return st.plan


def count(store: Store, text: str, where: str = "true", params: list[Any] | None = None) -> int | None:
    """How many runs hold `text`'s words, from the index without collecting its matches: tantivy's count of
    them, less those of documents of runs ingested after the watermark (rebuilt since: stale), plus the
    scanned matches. With other filters (`where`, the filter's clause without the search, and its `params`):
    tantivy's count of the matches among the runs of the filter indexed as they are (their ids a term set:
    only while they are fewer than the matches, or FILTER_TERMS_MIN), plus the scanned matches of the filter.

    Exact where every document not of a later run is its run's as it is, which the index checks: sync keeps
    one document per run and indexes every run up to the watermark, so the documents not of the later runs
    are as many as the runs ingested up to it. Else, past STALE_MAX later runs, a filter of too many runs, or
    a ClickHouse store: None (the caller collects every match and counts in SQL)."""
    _refuse_spark(store)
    if getattr(store, "clickhouse", None) is not None:
        return None
    st = _begin(store, text)
    filtered = where != "true"
    con = store.con
    if st.plan is not None:
        return None if filtered else st.plan.matches
    if st.index is None:  # every run scanned
        return int(con.execute(SCANNED_OF.format(where=where), params or []).fetchall()[0][0])
    if st.scanned_runs > STALE_MAX:
        return None
    import tantivy

    searcher, schema = st.searcher, st.index.schema
    q = _phrase(schema, st.words)
    n = _count(searcher, q)
    later = [r for (r,) in con.execute(AFTER_WM, [st.wm]).fetchall()]
    held = _count(searcher, tantivy.Query.term_set_query(schema, "run_id", later)) if later else 0
    up_to = int(con.execute(UP_TO_WM, [st.wm]).fetchall()[0][0])
    if searcher.num_docs - 1 - held != up_to:  # less the watermark's document
        return None
    if not filtered:
        stale = _count(searcher, _both(q, tantivy.Query.term_set_query(schema, "run_id", later))) if n and held else 0
        return n - stale + st.scanned_matches
    ids = con.execute(FILTERED_UP_TO_WM.format(where=where), [*(params or []), st.wm, max(n, FILTER_TERMS_MIN) + 1])
    runs = [r for (r,) in ids.fetchall()]
    if len(runs) > max(n, FILTER_TERMS_MIN):
        return None
    indexed = _count(searcher, _both(q, tantivy.Query.term_set_query(schema, "run_id", runs))) if runs and n else 0
    return indexed + int(con.execute(SCANNED_OF.format(where=where), params or []).fetchall()[0][0])


def page(store: Store, text: str, sort: str, descending: bool, need: int, where: str = "true",
         params: list[Any] | None = None) -> Iterator[int | None]:
    """Rounds of a page of the first `need` matches in `sort` order (a key of PAGE_KEYS), from the index: each
    round fills `_search_hits` with the scanned matches and the index's first matches in that order still
    current, and yields its bound: every match whose key is at or before it in that order (NULL starts
    last) is there. The caller stops when `need` of the page's runs are at or before the bound (then the
    first `need` runs of every match are those of these); None: every match is there.

    Other filters (`where` without the search, and its `params`) of fewer runs than the matches (or
    FILTER_TERMS_MIN): the index asked only for the matches among the filter's runs it holds as they are (a
    term set of their ids), so a page of a rare filter comes in one round too. Rounds past PAGE_DOCS_MAX
    documents, another sort, no index or an index of an older layout: every match collected (`prepare`)."""
    _refuse_spark(store)
    st = _begin(store, text) if getattr(store, "clickhouse", None) is None else None
    if st is None or st.plan is not None or st.index is None or not st.current or sort not in PAGE_KEYS:
        prepare(store, text)
        yield None
        return
    import tantivy

    st.plan = None  # `_search_hits` holds a page's matches, not every one
    fast = PAGE_KEYS[sort][0]
    searcher, schema = st.searcher, st.index.schema
    q = _phrase(schema, st.words)
    n = _count(searcher, q)
    if where != "true" and n:
        cap = max(n, FILTER_TERMS_MIN)
        runs = [r for (r,) in store.con.execute(FILTERED_UP_TO_WM.format(where=where),
                                                [*(params or []), st.wm, cap + 1]).fetchall()]
        if len(runs) <= cap:
            q = _both(q, tantivy.Query.term_set_query(schema, "run_id", runs)) if runs else tantivy.Query.empty_query()
            n = _count(searcher, q) if runs else 0
    order = tantivy.Order.Desc if descending else tantivy.Order.Asc

    def range_of(lo: int | None, hi: int | None, lower: bool = True) -> Any:
        return _both(q, tantivy.Query.range_query(schema, fast, tantivy.FieldType.Integer, lo, hi, include_lower=lower))
    # ascending, NULL starts come last: the ordered matches are those with a start, the others added at the end
    ordered = q if descending or fast != "started_us" else range_of(NULL_US, None, lower=False)
    k = 2 * need + 16
    found: dict[tuple[int, int], Any] = {}
    while True:
        if 2 * k >= n:
            k = max(n, 1)
        elif k > PAGE_DOCS_MAX:  # a filter that keeps few of many matches: every match, ordered by run id
            prepare(store, text)
            yield None
            return
        hits = searcher.search(ordered, limit=k, count=False, order_by_field=fast, order=order).hits if n else []
        found.update(((a.segment_ord, a.doc), a) for _, a in hits)
        bound: int | None = None
        if len(hits) < k or k >= n:  # every match
            if not descending and fast == "started_us" and n:
                nulls = range_of(NULL_US, NULL_US)
                found.update(((a.segment_ord, a.doc), a) for _, a in searcher.search(nulls, limit=n).hits)
        else:  # the matches tied with the last: all of them
            bound = int(hits[-1][0])
            ties = range_of(bound, bound)
            found.update(((a.segment_ord, a.doc), a)
                         for _, a in searcher.search(ties, limit=max(1, _count(searcher, ties)), count=False).hits)
        store.con.execute(HITS_FROM_SCANNED)
        ids, stamps = _stored(st, found)
        if ids:
            store.con.execute(PAGE_HITS, {"ids": ids, "stamps": stamps, "wm": st.wm})
        yield bound
        if bound is None:
            return
        k *= 4


def _stored(st: _Search, found: dict[tuple[int, int], Any]) -> tuple[list[str], list[int]]:
    """The run_id and ingested_us of the documents at `found`'s addresses (each read once per search)."""
    assert st.searcher is not None
    for key, addr in found.items():
        if key not in st.stored:
            d = st.searcher.doc(addr)
            st.stored[key] = (d["run_id"][0], d["ingested_us"][0])
    rows = [st.stored[key] for key in found]
    return [r for r, _ in rows], [i for _, i in rows]


def page_before(where: str, sort: str, descending: bool) -> str:
    """PAGE_BEFORE for a filter's clause and a page's order (sort: a key of PAGE_KEYS, checked)."""
    _, desc_key, asc_key = PAGE_KEYS[sort]
    return PAGE_BEFORE.format(where=where, key=desc_key if descending else asc_key, cmp=">=" if descending else "<=")


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


def _refuse_spark(store: Store) -> None:
    if getattr(store, "spark", None) is not None:
        from ..scale.sparkconn import NotSupportedOnSpark

        raise NotSupportedOnSpark("not supported on Spark yet: searching the runs' text (--search): the search "
                                  "reads a DuckDB database's index, or scans its runs by rowid; it runs on DuckDB")


def scan_only(store: Store, text: str) -> int:
    """Matches by the scan alone, every run (what a search costs without the index: bench/search.py)."""
    words = query_words(store, text)
    n = 0
    for params in _todo_chunks(store, None):
        row = store.con.execute(f"SELECT count(*) FROM ({SCAN})", {**params, "phrase": f" {' '.join(words)} "})  # noqa: S608 - a constant
        n += int(row.fetchall()[0][0])
    return n


