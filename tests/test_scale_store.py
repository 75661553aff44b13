"""A ClickHouse store (agentlens.scale), on ClickHouse's own engine in this process (chdb): the contract as
ClickHouse columns, the URLs, the translation rules one by one, ingests that build runs in a DuckDB work
database and ship them (a run rebuilt as its spans arrive stays one run), the refusal of statements the
conformance suite has not passed, and the CLI with `--store`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from agentlens import schema
from agentlens.api import Lens
from agentlens.scale import connect, ddl, parse
from agentlens.scale.connection import NotSupportedOnClickHouse
from agentlens.scale.translate import NotSupported, translate
from agentlens.scale.url import StoreURLError
from conftest import SAMPLES, clickhouse_url, doc, jsonl, span


def url(root: Path, db: str) -> str:
    return clickhouse_url(root, db)


# --- the contract ----------------------------------------------------------------------------------------
def test_clickhouse_columns_are_the_contract(chdb_root: Path) -> None:
    """Every view has the contract's columns in its order, each of the ClickHouse type the DuckDB type maps to
    (read back from ClickHouse, not from ddl.py)."""
    ch = connect(url(chdb_root, "contract"))
    rows = ch.engine.query("SELECT table, name, type FROM system.columns WHERE database = currentDatabase() "
                           "ORDER BY table, position").to_pylist()
    for table, cols in schema.TABLES.items():
        got = [(r["name"], r["type"]) for r in rows if r["table"] == table]
        assert [n for n, _ in got] == [c.name for c in cols], table
        for (name, t), c in zip(got, cols, strict=True):
            base = t.removeprefix("LowCardinality(").removeprefix("Nullable(").rstrip(")")
            base = base + ")" * (base.count("(") - base.count(")"))
            assert base == ddl.TYPES[c.type].replace(", ", ",").replace(",", ", ") or \
                base.replace(" ", "") == ddl.TYPES[c.type].replace(" ", ""), (table, name, t, c.type)
            assert t.startswith(("Nullable(", "LowCardinality(Nullable(", "Map(")), (table, name, t)
    storage = {r["table"] for r in rows}
    assert {ddl.storage(t) for t in schema.TABLES} <= storage
    engines = {r["name"]: r["engine_full"] for r in ch.engine.query(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()").to_pylist()}
    assert engines["runs_rows"].startswith("ReplacingMergeTree(_version, _deleted) PARTITION BY toDate(started_at)")
    assert engines["runs"].startswith("View") or engines["runs"] == ""
    assert ch.migrate() == []  # idempotent: nothing pending the second time


# --- URLs --------------------------------------------------------------------------------------------------
def test_store_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTLENS_CLICKHOUSE_PASSWORD", "from-env")
    assert parse("clickhouse://me@h/x").password == "from-env"  # the URL's own wins:
    u = parse("clickhouse://me:s%40cret@ch.internal:9000/traces")
    assert (u.kind, u.host, u.port, u.database, u.user, u.password) == ("server", "ch.internal", 9000, "traces",
                                                                          "me", "s@cret")
    assert "s@cret" not in u.display()
    assert parse("clickhouses://h/x").port == 8443 and parse("clickhouse://h").database == "agentlens"
    c = parse("clickhouse+chdb:///var/lib/al?database=prod")
    assert (c.kind, c.path, c.database) == ("chdb", "/var/lib/al", "prod")
    assert parse("clickhouse+chdb://rel/dir").path == "rel/dir"
    for bad in ("clickhouse+chdb://", "clickhouse:///db", "clickhouse://h/bad-name;"):
        with pytest.raises(StoreURLError):
            parse(bad)


# --- the rules, one by one ----------------------------------------------------------------------------------
RULE_CASES = [
    # (DuckDB SQL, a piece the ClickHouse SQL must hold) : each a difference measured between the engines
    ("SELECT round(x, 9) FROM t", "floor(abs(x) * 1000000000 + 0.5)"),
    ("SELECT quantile_cont(x, [0.5, 0.9]) FROM t", "quantilesExactInclusive(0.5, 0.9)(x)"),
    ("SELECT median(x) FROM t", "quantileExactInclusive(0.5)(x)"),
    ("SELECT list_position(['a', 'b'], x) FROM t", "nullIf(indexOf(['a', 'b'], x), 0)"),
    ("SELECT left(x, 3) FROM t", "leftUTF8(x, 3)"),
    ("SELECT bool_or(x) FROM t", "MAX(x)"),
    ("SELECT list(x ORDER BY k) FROM t", "arraySort(p -> p.1, groupArray(tuple(k, x)))"),
    ("SELECT regexp_extract(x, 'a(b)') FROM t", "regexpExtract(x, 'a(b)', 0)"),
    ("SELECT date_trunc('day', t) FROM t", "toDateTime64(dateTrunc('DAY', t, 'UTC'), 6, 'UTC')"),
    ("SELECT s.bucket FROM s", 's.bucket AS "bucket"'),
    ("SELECT x::TIMESTAMPTZ FROM t", "CAST(x AS Nullable(DateTime64(6, 'UTC')))"),
    ("SELECT a.x FROM a LEFT JOIN b ON true", "ON a._k1 = b._k1"),
    ("SELECT count(*) FROM t", "CAST(COUNT(*) AS Int64)"),
    ("SELECT strlen(x) FROM t", "length(x)"),
    ("SELECT epoch_us(max(t)) FROM t", "toUnixTimestamp64Micro(MAX(t))"),
    ("SELECT * FROM runs ORDER BY cost_usd DESC LIMIT 5", "WHERE runs.run_id IN (SELECT runs.run_id FROM runs ORDER BY"),
]


@pytest.mark.parametrize(("duck", "piece"), RULE_CASES)
def test_rule(duck: str, piece: str) -> None:
    assert piece.lower() in translate(duck).sql.lower()


def test_a_bound_json_path_is_read_as_a_literal_one() -> None:
    """`attr:KEY` binds its JSON path: it is written as escaped keys, the inner extraction translated too, and
    the path is bound no more; a wildcard is refused."""
    t = translate("SELECT json_extract_string(json_extract_string(attributes, ?), ?) FROM runs",
                  ['$."app"', '$."it\'s \\ odd"'])
    assert "JSONHas(attributes, 'app')" in t.sql and "'it''s \\\\ odd'" in t.sql and t.params == {}
    with pytest.raises(NotSupported):
        translate("SELECT json_extract_string(attributes, ?) FROM runs", ["$.a[*].b"])


def test_parameters_stay_bound() -> None:
    import datetime as dt

    tr = translate("SELECT * FROM runs WHERE started_at >= ?::TIMESTAMPTZ AND feature = ? AND run_id = $id",
                   {"p0": dt.datetime(2026, 1, 2, tzinfo=dt.UTC), "p1": "a'b", "id": None})
    assert "{p0: Nullable(DateTime64(6, 'UTC'))}" in tr.sql and "{p1: Nullable(String)}" in tr.sql
    assert "a'b" not in tr.sql and tr.params["p1"] == "a'b" and tr.params["p0"] == "2026-01-02 00:00:00.000000"


@pytest.mark.parametrize("duck", [
    "SELECT json_transform(x, '{}') FROM t",      # no translation known
    "SELECT x FROM t WHERE rowid < 5",           # DuckDB's row ids
    "SELECT string_agg(x, ',') FROM t",          # an order ClickHouse would not keep
    "SELECT try_cast(x AS INTEGER) FROM t",
    "UPDATE runs SET status = 'ok'",             # writes go through the ingest
])
def test_unknown_constructs_are_refused(duck: str) -> None:
    with pytest.raises(NotSupported):
        translate(duck)


# --- ingest: per-run work in DuckDB, rows shipped ---------------------------------------------------------------
def _rows(ch: Lens, table: str, drop: tuple[str, ...]) -> pl.DataFrame:
    df = ch.clickhouse.native(f"SELECT * FROM {table}")
    return df.drop(*drop).sort(df.drop(*drop).columns, nulls_last=True)


def test_ingest_into_clickhouse_equals_duckdb(tmp_path: Path, chdb_root: Path) -> None:
    duck = Lens(tmp_path / "d.duckdb", serve=False)
    duck.ingest(SAMPLES)
    ch = Lens(url(chdb_root, "ingest"), work_db=tmp_path / "work.duckdb")
    summary = ch.ingest(SAMPLES)
    assert {f.status for f in summary.files} == {"ingested", "skipped_unknown"}  # README.md: not a trace
    for table, drop in (("runs", ("ingested_at",)), ("spans", ()), ("failures", ("classified_at",)),
                        ("quarantine", ("ingested_at",))):
        want = duck.sql(f"SELECT * FROM {table}").drop(*drop)
        got = _rows(ch, table, drop)
        want = want.with_columns([pl.col(c).cast(got.schema[c]) for c in want.columns])
        assert got.equals(want.sort(want.columns, nulls_last=True)), table
    assert ch.clickhouse.native("SELECT count() AS n FROM ingested_files")["n"][0] == 3
    again = ch.ingest(SAMPLES)  # the same bytes: skipped in the work database, nothing shipped twice
    assert {f.status for f in again.files} == {"skipped_duplicate", "skipped_unknown"}
    assert ch.clickhouse.native("SELECT count() AS n FROM runs")["n"][0] == duck.one("SELECT count(*) FROM runs")[0]
    ch.close()
    duck.close()


def _found(lens: Lens, text: str) -> set[str]:
    from agentlens.explore.runs import RunFilter, find_runs

    return set(find_runs(lens, RunFilter(text=text), limit=100)["run_id"].to_list())


def test_a_run_rebuilt_as_its_spans_arrive_is_one_run(tmp_path: Path, chdb_root: Path) -> None:
    """The run's tool span arrives first (no root yet), the root later and a day earlier: ClickHouse reads
    one run, built from both, in the partition of its new day; its spans once each; a search finds it by the
    words of both."""
    t = "ab" * 16
    day = 86_400 * 10**9
    t0 = 1_780_000_000 * 10**9
    early = jsonl(tmp_path / "a.jsonl", doc(span(t, "2" * 16, "1" * 16, "get_order", t0, t0 + 10**9,
                                                 {"openinference.span.kind": "TOOL", "tool.name": "get_order"},
                                                 status={"code": 2, "message": "boom"})))
    late = jsonl(tmp_path / "b.jsonl", doc(span(t, "1" * 16, None, "agent", t0 - day, t0 + 2 * 10**9,
                                                {"openinference.span.kind": "AGENT",
                                                 "input.value": "Refund please!"})))
    ch = Lens(url(chdb_root, "rebuild"), work_db=tmp_path / "work.duckdb")
    ch.ingest(early)
    first = ch.clickhouse.native("SELECT run_id, span_count, started_at FROM runs")
    assert first["span_count"].to_list() == [1]
    assert _found(ch, "boom") == {t} and _found(ch, "refund please") == set()
    ch.ingest(late)
    assert _found(ch, "boom") == {t} and _found(ch, "refund please") == {t}  # the words of the run rebuilt
    runs = ch.clickhouse.native("SELECT run_id, span_count, root_span_id, started_at FROM runs")
    assert runs["span_count"].to_list() == [2] and runs["root_span_id"].to_list() == ["1" * 16]
    assert runs["started_at"][0] < first["started_at"][0]
    stored = ch.clickhouse.native("SELECT count() AS n, uniqExact(_version) AS v FROM runs_rows")
    assert stored["n"][0] == 2 and stored["v"][0] == 2  # two versions stored, one read
    assert ch.clickhouse.native("SELECT count() AS n FROM spans")["n"][0] == 2
    ch.close()


def test_failures_are_a_set_per_run(chdb_root: Path) -> None:
    """A run classified again replaces all its failures: one found clean reads clean."""
    ch = connect(url(chdb_root, "failset"))
    e = ch.engine
    e.command("INSERT INTO failures_rows (run_id, mode, span_id, _version) VALUES ('r', 'tool_error', 's', 1), "
              "('r', 'timeout', 's', 1), ('q', 'timeout', 's', 1)")
    e.command("INSERT INTO failures_rows (run_id, _version, _marker) VALUES ('r', 1, 1), ('q', 1, 1)")
    assert ch.native("SELECT count() AS n FROM failures")["n"][0] == 3
    e.command("INSERT INTO failures_rows (run_id, mode, span_id, _version) VALUES ('r', 'timeout', 's', 2)")
    e.command("INSERT INTO failures_rows (run_id, _version, _marker) VALUES ('r', 2, 1), ('q', 2, 1)")
    got = ch.native("SELECT run_id, mode FROM failures ORDER BY run_id, mode")
    assert got.rows() == [("r", "timeout")]


def test_search_on_clickhouse_finds_what_duckdb_finds(tmp_path: Path, chdb_root: Path) -> None:
    """`runs --search` on a store the ingest shipped to: the words made in the work database at ingest
    (scale/search.py) find the runs DuckDB's search finds; a store whose runs have no words says so."""
    from agentlens.explore.runs import FilterError, RunFilter, count_runs, find_runs
    from agentlens.scale.migrate import migrate

    duck = Lens(tmp_path / "d.duckdb", serve=False)
    duck.ingest(SAMPLES)
    ch = Lens(url(chdb_root, "search"), work_db=tmp_path / "work.duckdb")
    ch.ingest(SAMPLES)
    found = {}
    for text in ("refund", "Order status", "the", "xyzzy"):
        want = set(find_runs(duck, RunFilter(text=text), limit=1000)["run_id"].to_list())
        got = set(find_runs(ch, RunFilter(text=text), limit=1000)["run_id"].to_list())
        assert got == want, text
        assert count_runs(ch, RunFilter(text=text, status="ok")) == count_runs(duck, RunFilter(text=text, status="ok"))
        found[text] = len(want)
    assert 0 < found["refund"] < found["the"] and found["xyzzy"] == 0
    bare = Lens(url(chdb_root, "search_bare"))
    migrate(duck.con, bare.clickhouse)  # without words=: as a store written before the words were
    with pytest.raises(FilterError, match="120 runs of this ClickHouse store have no search words"):
        find_runs(bare, RunFilter(text="refund"))
    ch.close()
    duck.close()


# --- what is not in the record is refused -----------------------------------------------------------------------
def test_statements_outside_the_record_are_refused(tmp_path: Path, chdb_root: Path) -> None:
    ch = Lens(url(chdb_root, "refuse"))
    assert ch.runs().height == 0  # Store.runs: in the record
    with pytest.raises(NotSupportedOnClickHouse, match="not supported on ClickHouse yet"):
        ch.sql("SELECT feature, sum(cost_usd) / count(*) AS c FROM runs GROUP BY feature")
    df = ch.clickhouse.native("SELECT count() AS n FROM runs WHERE feature = {f:String}", {"f": "x"})
    assert df["n"][0] == 0  # ClickHouse SQL as written, for what a person writes for ClickHouse


# --- the CLI ------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_with_store(tmp_path: Path) -> None:
    """`ingest`, `signals` and `store migrate` with --store, in processes of their own (each opens the chdb
    folder in turn)."""
    store = f"clickhouse+chdb://{tmp_path / 'ch'}"
    env = {**os.environ, "AGENTLENS_WORK_DB": str(tmp_path / "work.duckdb")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(Path(sys.executable).parent / "agentlens"), *args], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=300)

    r = run("ingest", "--store", store, str(SAMPLES))
    assert r.returncode == 0, r.stderr
    r = run("signals", "--store", store, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert '"runs": 120' in r.stdout.replace('"runs":120', '"runs": 120')
    r = run("ingest", "--db", str(tmp_path / "x.duckdb"), str(SAMPLES))
    assert r.returncode == 0, r.stderr
    r = run("store", "migrate", "--db", str(tmp_path / "x.duckdb"), "--to", f"{store}?database=moved")
    assert r.returncode == 0, r.stderr
    assert "migrated" in r.stdout and "runs: 120 rows" in r.stderr


def test_collect_into_clickhouse(tmp_path: Path, chdb_root: Path) -> None:
    """The OTLP receiver with a ClickHouse store: batches built in the work database, shipped on each flush."""
    import json
    import urllib.request

    from agentlens.sources.collector import TRACES_PATH, Collector

    t = "cd" * 16
    t0 = 1_780_000_000 * 10**9
    body = json.dumps(doc(span(t, "1" * 16, None, "agent", t0, t0 + 10**9, {"openinference.span.kind": "AGENT"}),
                          span(t, "2" * 16, "1" * 16, "llm", t0, t0 + 5 * 10**8,
                               {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
                                "llm.token_count.prompt": 10, "llm.token_count.completion": 5}))).encode()
    ch = Lens(url(chdb_root, "collect"), work_db=tmp_path / "work.duckdb")
    with Collector(ch, port=0, flush_seconds=0.2) as c:
        # the spool beside the work database, never a folder named after the store's URL
        assert c.spool is not None and c.spool.folder == tmp_path / ".work.duckdb.spool"
        req = urllib.request.Request(f"http://{c.address[0]}:{c.address[1]}{TRACES_PATH}", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
    runs = ch.clickhouse.native("SELECT run_id, span_count, llm_calls, input_tokens FROM runs")
    assert runs.rows() == [(t, 2, 1, 10)]
    ch.close()
