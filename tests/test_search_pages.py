"""A page of `agentlens runs --search` answered from the index a page at a time (explore.search.page) is the
page of the full path (every match collected, explore.search.prepare) and of the scan with no index at all,
and the count from the index (explore.search.count) is theirs: on the sample traces, on hand-made runs with
many matches, runs sharing a start, stale index documents (runs rebuilt after the watermark, one of them
moved to another start), runs ingested after the watermark, other filters, offsets and the other orders;
and on bench/gen.py's runs (slow)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import agentlens
from agentlens import explore
from agentlens.explore import search as S
from conftest import ROOT, SAMPLES, doc, jsonl, span

NS = 1_795_000_000_000_000_000
SEC = 1_000_000_000
TEXT = "refund request"
COLUMNS = ("run_id", "started_at", "ingested_at", "status", "feature")


def _run(n: int, start_s: int, text: str, failed: bool = False, extra: str | None = None) -> dict:
    """Run n: a root (feature by parity) and a tool whose result is `text` (an error when `failed`)."""
    trace, root = f"{n:032x}", f"{n:08x}00000001"
    spans = [span(trace, root, None, "invoke_agent bot", NS + start_s * SEC, NS + (start_s + 9) * SEC,
                  {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "bot",
                   "feature": "refund" if n % 2 else "billing"}),
             span(trace, f"{n:08x}00000002", root, "execute_tool lookup", NS + (start_s + 1) * SEC,
                  NS + (start_s + 2) * SEC, {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup",
                                             "gen_ai.tool.call.result": text},
                  status={"code": 2, "message": "lookup failed"} if failed else None)]
    if extra is not None:
        spans.append(_extra(n, start_s + 3, extra))
    return doc(*spans)


def _extra(n: int, start_s: int, text: str, k: int = 9) -> dict:
    """One more tool span of run n (a later file: the run is rebuilt), starting at `start_s`."""
    return span(f"{n:032x}", f"{n:08x}{k:08x}", f"{n:08x}00000001", "execute_tool lookup", NS + start_s * SEC,
                NS + (start_s + 1) * SEC, {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.call.result": text})


def _text(n: int) -> str:
    return f"please {TEXT} for order {n}" if n % 5 else f"nothing for order {n}"


FILTERS = [explore.RunFilter(), explore.RunFilter(status="error"), explore.RunFilter(equals={"feature": "refund"}),
           explore.RunFilter(since="2026-11-18T11:11:40Z", until="2026-11-18T11:21:40Z"),
           explore.RunFilter(equals={"feature": "billing"}, status="ok")]
ORDERS = [("started_at", True), ("started_at", False), ("ingested_at", True), ("ingested_at", False),
          ("cost_usd", True)]


@contextmanager
def _no_index(lens: agentlens.Lens):
    """The index folder moved aside: every run scanned (the truth without the index)."""
    path = S.index_path(lens)
    assert path is not None and path.exists()
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)
    S.forget(lens)
    try:
        yield
    finally:
        aside.rename(path)
        S.forget(lens)


def _page(lens: agentlens.Lens, flt: explore.RunFilter, sort: str, desc: bool, limit: int, offset: int) -> list[Any]:
    S.forget(lens)
    page = explore.find_runs(lens, flt, sort, desc, limit, offset, columns=COLUMNS)
    return page.rows()


def _full(lens: agentlens.Lens, flt: explore.RunFilter, sort: str, desc: bool, limit: int, offset: int,
          monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], int]:
    """The page and the count by the full path: every match collected (no order answered from the index)."""
    with monkeypatch.context() as m:
        m.setattr(S, "PAGE_KEYS", {})
        m.setattr(S, "count", lambda *_: None)
        rows = _page(lens, flt, sort, desc, limit, offset)
        return rows, explore.count_runs(lens, flt)


def _agree(lens: agentlens.Lens, text: str, monkeypatch: pytest.MonkeyPatch, limits=((20, 0), (7, 14), (50, 40), (30, 300)),
           filters=FILTERS, orders=ORDERS) -> dict[str, Any]:
    """Every page (filters x orders x limits) and count of `text`: from the index, by the full path, and by the
    scan with no index, equal. Returns how the pages from the index were answered."""
    seen: dict[str, Any] = {"partial": 0, "pages": 0, "newest first": False}
    cases = [(f.with_(text=text), s, d, lim, off) for f in filters for s, d in orders for lim, off in limits]
    fast = []
    for flt, sort, desc, limit, offset in cases:
        rows = _page(lens, flt, sort, desc, limit, offset)
        hits = lens.one("SELECT count(*) FROM _search_hits")[0]
        n = explore.count_runs(lens, flt)
        seen["pages"] += 1
        seen["partial"] += hits < n  # the page came from some of the matches, not all
        if (flt.with_(text=None), sort, desc, limit, offset) == (explore.RunFilter(), "started_at", True, 20, 0):
            seen["newest first"] = hits < n  # `agentlens runs --search TEXT`
        assert len(rows) == min(limit, max(0, n - offset))
        assert (rows, n) == _full(lens, flt, sort, desc, limit, offset, monkeypatch), (flt, sort, desc, limit, offset)
        fast.append(((flt, sort, desc, limit, offset), (rows, n)))
    with _no_index(lens):
        for key, (rows, n) in fast:
            flt, sort, desc, limit, offset = key
            assert (_page(lens, flt, sort, desc, limit, offset), explore.count_runs(lens, flt)) == (rows, n), key
    return seen


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("samples") / "samples.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(SAMPLES)
    return db


@pytest.mark.slow
@pytest.mark.parametrize("text", ["refund", "customer", "insufficient merchant balance", "nothing like this"])
def test_pages_of_the_samples_from_the_index_are_the_full_paths(sample_db, text, monkeypatch):
    with agentlens.open(sample_db, read_only=True) as lens:
        _agree(lens, text, monkeypatch, limits=((20, 0), (5, 3)),
               filters=[explore.RunFilter(), explore.RunFilter(status="error"),
                        explore.RunFilter(equals={"feature": "refund"})])


def test_a_search_alone_is_counted_and_paged_from_the_index(sample_db):
    with agentlens.open(sample_db, read_only=True) as lens:
        S.forget(lens)
        flt = explore.RunFilter(text="customer")
        n = explore.count_runs(lens, flt)
        assert n > 100
        assert lens.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_search_hits'").fetchall()[0][0] == 0
        page = explore.find_runs(lens, flt, limit=5)
        assert page.height == 5 and lens.one("SELECT count(*) FROM _search_hits")[0] < n
        assert explore.count_runs(lens, flt) == n == S.prepare(lens, "customer").matches


@pytest.fixture
def many(tmp_path) -> Path:
    """300 runs, four in five holding TEXT, three sharing each start, one in seven failed; indexed. Then
    with the index as it was: 100 runs more (after the watermark), 32 rebuilt (stale documents: some gain
    TEXT, one's start moved earlier than every other), 5 without a start."""
    db = tmp_path / "many.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(jsonl(tmp_path / "a.jsonl", *[_run(n, (n // 3) * 10, _text(n), failed=n % 7 == 0) for n in range(300)]))
        path = S.index_path(lens)
        assert path is not None
        shutil.copytree(path, tmp_path / "old-index")
        later = [_run(n, (n // 3) * 10 + 5, _text(n), failed=n % 7 == 0) for n in range(300, 400)]
        rebuilt = [doc(_extra(n, (n // 3) * 10 + 4, f"{TEXT} again" if n % 2 else "more words")) for n in range(10, 40)]
        rebuilt += [doc(_extra(41, -500, "an earlier start")), doc(_extra(42, 5000, "the newest end", k=10))]
        lens.ingest(jsonl(tmp_path / "b.jsonl", *later, *rebuilt))
        # runs without a start (rebuilt so: a newer ingested_at): last in either order
        lens.con.execute("UPDATE runs SET started_at = NULL, ingested_at = now() WHERE run_id IN (SELECT unnest(?))",
                         [[f"{n:032x}" for n in (51, 52, 53, 305, 306)]])
        shutil.rmtree(path)
        shutil.copytree(tmp_path / "old-index", path)  # the index before b.jsonl: stale documents, runs to scan
    return db


@pytest.mark.slow
def test_pages_from_an_index_behind_with_stale_documents_are_the_full_paths(many, monkeypatch):
    with agentlens.open(many, read_only=True) as lens:
        plan = S.prepare(lens, TEXT)
        assert plan.scanned_runs == 135 and 0 < plan.indexed_matches and plan.matches > 250
        assert S.count(lens, TEXT) == plan.matches
        seen = _agree(lens, TEXT, monkeypatch)
        assert seen["newest first"] and seen["partial"] >= 3
        _agree(lens, "order", monkeypatch, limits=((20, 0),))
        with monkeypatch.context() as m:  # filters of more runs than the matches: pages in rounds, counts by the
            m.setattr(S, "FILTER_TERMS_MIN", 0)  # full path; rounds past PAGE_DOCS_MAX: every match collected
            _agree(lens, "again", monkeypatch, limits=((20, 0),), orders=ORDERS[:1])
            m.setattr(S, "PAGE_DOCS_MAX", 60)
            _agree(lens, TEXT, monkeypatch, limits=((20, 0),), orders=ORDERS[:2])
        _agree(lens, "again", monkeypatch, limits=((20, 0),), filters=FILTERS[:2])


@pytest.mark.slow
def test_pages_from_an_index_up_to_date_are_the_full_paths(many, monkeypatch):
    with agentlens.open(many) as lens:
        S.sync(lens)
        plan = S.prepare(lens, TEXT)
        assert plan.scanned_runs == 0 and plan.matches > 250
        assert _agree(lens, TEXT, monkeypatch)["newest first"]


@pytest.mark.slow
def test_an_index_of_the_older_layout_is_read_whole_and_made_again_by_sync(tmp_path, monkeypatch):
    """An index made before `started_us` (layout 1: run_id, ingested_us, doc): searched by collecting every
    match; the next sync makes it again in the current layout."""
    import tantivy

    db = tmp_path / "old.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(jsonl(tmp_path / "a.jsonl", *[_run(n, n * 10, _text(n)) for n in range(60)]))
        path = S.index_path(lens)
        assert path is not None
        shutil.rmtree(path)
        b = tantivy.SchemaBuilder()
        b.add_text_field("run_id", stored=True, fast=True, tokenizer_name="raw")
        b.add_integer_field("ingested_us", stored=True, fast=True, indexed=True)
        b.add_text_field("doc", stored=False, tokenizer_name="al_words")
        path.mkdir()
        old = tantivy.Index(b.build(), path=str(path))
        old.register_tokenizer("al_words", S._analyzer())
        rows = lens.con.execute("SELECT run_id, epoch_us(ingested_at), max(epoch_us(ingested_at)) OVER () FROM runs").fetchall()
        w = old.writer(heap_size=15_000_000, num_threads=1)
        for run_id, stamp, _ in rows:
            w.add_document(tantivy.Document(run_id=run_id, ingested_us=stamp, doc=_text(int(run_id, 16))))
        w.add_document(tantivy.Document(run_id=S.META_ID, ingested_us=rows[0][2], doc=""))
        w.commit()
        S.forget(lens)
        plan = S.prepare(lens, TEXT)
        assert plan.scanned_runs == 0 and plan.indexed_matches == plan.matches == 48  # read from the old index
        _agree(lens, TEXT, monkeypatch, limits=((10, 0),), filters=FILTERS[:2], orders=ORDERS[:2])
        S.sync(lens)  # nothing new to index, but the layout changed: made again
        S.forget(lens)
        st = S.state(lens)
        assert st.documents == lens.one("SELECT count(*) FROM runs")[0] == 59 and S._open_reader(path)[1]  # run 0: no trace id
        assert _agree(lens, TEXT, monkeypatch, limits=((3, 0),), filters=FILTERS[:1], orders=ORDERS[:1])["partial"] == 1


@pytest.mark.slow
def test_pages_of_generated_runs_from_the_index_are_the_full_paths(tmp_path, monkeypatch):
    """bench/gen.py's 2,000 runs: a common word (most runs), a rare error; then 10% more runs not indexed."""
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen.py"), str(tmp_path), "--runs", "2000"], check=True,
                   capture_output=True)
    db = tmp_path / "gen.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(tmp_path / "runs-2k.otlp.jsonl")
        for text in ("refund", "503 Service Unavailable"):
            assert _agree(lens, text, monkeypatch, limits=((20, 0), (20, 100)), filters=FILTERS[:3])["pages"]
        path = S.index_path(lens)
        assert path is not None
        shutil.copytree(path, tmp_path / "old-index")
        lens.con.execute("INSERT INTO runs SELECT * REPLACE (run_id || '-x' AS run_id, now() AS ingested_at) FROM runs "
                         "WHERE hash(run_id) % 10 = 0")
        lens.con.execute("INSERT INTO spans SELECT * REPLACE (run_id || '-x' AS run_id) FROM spans "
                         "WHERE run_id IN (SELECT left(run_id, -2) FROM runs WHERE run_id LIKE '%-x')")
        S.forget(lens)
        assert S.prepare(lens, "refund").scanned_runs > 100
        assert _agree(lens, "refund", monkeypatch, limits=((20, 0),), filters=FILTERS[:3])["newest first"]
