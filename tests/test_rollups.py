"""Rollups: incremental, idempotent, late data re-rolls its buckets, histograms merge within the
documented bound, and a rollup waits for another process holding the database."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner
from signals_data import MODELS_CONFIG, Run, at, five_runs, write

import agentlens
from agentlens.cli import main
from agentlens.core.config import Config
from agentlens.metrics import rollups as RU
from agentlens.metrics import signals as S
from conftest import SAMPLES

approx = pytest.approx
TABLES = ("rollup_runs", "rollup_calls", "rollup_buckets", "rollup_ledger")


@pytest.fixture
def five(tmp_path):
    lens = agentlens.open(tmp_path / "r.duckdb", Config.from_dict(MODELS_CONFIG))
    lens.ingest(write(tmp_path / "five.jsonl", five_runs()))
    yield lens
    lens.close()


def snapshot(lens):
    """The rollup tables without their `rolled_at` stamps, in a stable order."""
    out = {}
    for t in TABLES:
        df = lens.sql(f"SELECT * FROM {t}")
        df = df.drop("rolled_at") if "rolled_at" in df.columns else df
        out[t] = df.sort([c for c in df.columns if not df[c].dtype.is_nested()])  # histograms are nested
    return out


def test_first_rollup_then_nothing_to_do(five):
    s = RU.rollup(five, "1h")
    # R1..R4 start in the 10:00 bucket, R5 in 11:00. rollup_runs rows per bucket x dimensions:
    # 10:00 refund gpt-4o (R1 R2), 10:00 refund claude (R3), 10:00 billing gpt-4o-mini (R4), 11:00 billing (R5)
    assert (s.changed_runs, s.buckets) == (5, 2)
    assert s.rows == {"rollup_runs": 4, "rollup_calls": 6, "rollup_buckets": 2}
    rows = five.sql("SELECT bucket_start, feature, model, runs, errors, llm_calls, rate_limited_calls, tool_calls "
                    "FROM rollup_runs ORDER BY bucket_start, feature, model").rows()
    assert rows == [
        (at(0), "billing", "gpt-4o-mini", 1, 0, 1, 0, 1),
        (at(0), "refund", "claude-3-5-sonnet", 1, 0, 2, 1, 1),
        (at(0), "refund", "gpt-4o", 2, 1, 3, 1, 1),
        (at(60), "billing", "gpt-4o-mini", 1, 1, 1, 0, 0),
    ]
    before = snapshot(five)
    again = RU.rollup(five, "1h")
    assert (again.changed_runs, again.buckets, sum(again.rows.values())) == (0, 0, 0)
    after = snapshot(five)
    for t in TABLES:
        assert after[t].equals(before[t]), t  # re-running adds and changes nothing


@pytest.mark.slow
def test_rollup_signals_equal_the_raw_ones(five):
    RU.rollup(five, "1h")
    raw, rolled = S.signals(five, every="1h"), RU.signals(five, every="1h")
    exact = ["bucket", "runs", "errors", "error_rate", "timed_runs", "llm_calls", "tool_calls", "input_tokens",
             "output_tokens", "rate_limited_calls", "rate_limited_share", "rate_limited_runs", "max_concurrency"]
    assert rolled.select(exact).equals(raw.select(exact))
    assert rolled["cost_usd"].to_list() == approx(raw["cost_usd"].to_list())
    for col in ("latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms"):
        for a, b in zip(rolled[col], raw[col], strict=True):
            assert abs(a / b - 1) <= RU.ALPHA + 1e-12


@pytest.mark.slow
def test_merged_percentiles_by_hand(five):
    RU.rollup(five, "1h")
    day = RU.signals(five, every="1d").row(0, named=True)  # two hourly buckets merged
    v = RU.bin_value  # each value reads back as its bin's value, within 1%
    assert all(abs(v(x) / x - 1) <= RU.ALPHA for x in (100, 200, 300, 400, 500))
    # 5 durations 100..500: p50 at h = 4 * .5 = 2 -> the bin of 300; p95 at h = 3.8 -> 400 + .8 (500 - 400)
    assert day["latency_p50_ms"] == approx(v(300))
    assert day["latency_p95_ms"] == approx(v(400) + 0.8 * (v(500) - v(400)))
    # failed runs 200 and 500: p95 at h = .95
    assert day["latency_error_p95_ms"] == approx(v(200) + 0.95 * (v(500) - v(200)))
    assert day["runs"] == 5 and day["errors"] == 2 and day["llm_calls"] == 7


@pytest.mark.slow
def test_late_spans_re_roll_their_buckets_and_a_moved_run_leaves_its_old_one(five, tmp_path):
    RU.rollup(five, "1h")
    r2, r5 = five_runs()[1], five_runs()[4]
    # a late LLM call of R2 (10:10, bucket 10:00), and a late span of R5 that starts at 10:55: R5's
    # start moves from 11:05 (bucket 11:00) to 10:55 (bucket 10:00)
    late2 = Run(2, r2.start, 200)
    late2._k = late5_k = 50  # span ids not used by the first file
    late2.llm("gpt-4o", 150, 10, inp=10, out=1, cost=0.001)
    late5 = Run(5, r5.start, 500)
    late5._k = late5_k
    late5.tool("get_order", -10 * 60_000, 100)
    late = tmp_path / "late.jsonl"
    late.write_text("".join(json.dumps({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [
        {"scope": {"name": "t"}, "spans": r.children}]}]}) + "\n" for r in (late2, late5)))
    five.ingest(late)
    assert five.sql("SELECT started_at FROM runs WHERE run_id = ?", [r5.trace])["started_at"][0] == at(55)
    s = RU.rollup(five, "1h")
    # R2 changed in 10:00; R5 left 11:00 for 10:00: both buckets re-rolled (and R5's end, 11:05.5, is in 11:00)
    assert (s.changed_runs, s.buckets) == (2, 2)
    rolled = RU.signals(five, every="1h")
    raw = S.signals(five, every="1h")
    cols = ["bucket", "runs", "errors", "llm_calls", "tool_calls", "input_tokens"]
    assert rolled.select(cols).equals(raw.select(cols))
    # nothing is left in R5's old bucket: 11:00 had only R5
    assert five.sql("SELECT count(*) AS n FROM rollup_runs WHERE bucket_start = ?", [at(60)])["n"][0] == 0
    assert rolled["bucket"].to_list() == [at(0)]
    assert rolled["runs"].to_list() == [5] and rolled["llm_calls"].to_list() == [8]  # R2's late call
    assert rolled["tool_calls"].to_list() == [4]  # R5's late tool span
    assert RU.rollup(five, "1h").buckets == 0  # and again: nothing


@pytest.mark.slow
def test_new_runs_only_roll_their_own_buckets(five, tmp_path):
    RU.rollup(five, "1h")
    five.ingest(write(tmp_path / "new.jsonl", [Run(7, at(180), 100), Run(8, at(185), 300, error="boom")]))
    s = RU.rollup(five, "1h")
    assert (s.changed_runs, s.buckets, s.rows["rollup_runs"]) == (2, 1, 1)
    last = RU.signals(five, every="1h").row(-1, named=True)
    assert (last["bucket"], last["runs"], last["errors"]) == (at(180), 2, 1)


@pytest.mark.slow
def test_repriced_runs_re_roll_their_bucket(five):
    RU.rollup(five, "1h")
    # `agentlens reprice` rewrites costs in place, without rebuilding the runs
    five.con.execute("UPDATE runs SET cost_usd = 1.0 WHERE run_id = ?", [five_runs()[4].trace])  # R5, 11:00
    s = RU.rollup(five, "1h")
    assert (s.changed_runs, s.buckets) == (1, 1)
    assert RU.signals(five, every="1h")["cost_usd"].to_list() == approx([0.01 + 0.2 + 0.3 + 0.002, 1.0])


@pytest.mark.slow
def test_rebuild_recomputes_the_same_rows(five):
    RU.rollup(five, "1h")
    before = snapshot(five)
    s = RU.rollup(five, "1h", rebuild=True)
    assert s.changed_runs == 5 and s.rebuilt
    after = snapshot(five)
    for t in TABLES:
        assert after[t].drop("ingested_at", strict=False).equals(before[t].drop("ingested_at", strict=False)), t


def test_concurrency_is_rolled_per_bucket(lens, tmp_path):
    runs = [Run(1, at(50), 15 * 60_000), Run(2, at(55), 10 * 60_000), Run(4, at(58), 22 * 60_000),
            Run(5, at(59), 60_000, "billing"), Run(6, at(60), 60_000, "billing"), Run(3, at(70), 60_000)]
    lens.ingest(write(tmp_path / "c.jsonl", runs))
    RU.rollup(lens, "1h")
    # as in test_signals: 4 in flight at 10:59 and at 11:00 (E ended as F started)
    assert lens.sql("SELECT max_concurrency FROM rollup_buckets ORDER BY bucket_start")["max_concurrency"].to_list() \
        == [4, 4]
    assert RU.signals(lens, every="1h")["max_concurrency"].to_list() == [4, 4]
    assert RU.signals(lens, every="1d")["max_concurrency"].to_list() == [4]
    assert RU.signals(lens, by="feature")["max_concurrency"].to_list() == [None, None]  # peaks do not add up


def test_calls_per_model_and_tool_from_rollups(five):
    RU.rollup(five, "1h")
    llm = {r["model"]: r for r in RU.calls(five, "llm", every=None).to_dicts()}
    raw = {r["model"]: r for r in S.llm_calls(five).to_dicts()}
    for model, r in raw.items():
        got = llm[model]
        assert (got["calls"], got["errors"], got["rate_limited_calls"], got["ttft_calls"]) == \
            (r["calls"], r["errors"], r["rate_limited_calls"], r["ttft_calls"])
        for col in ("latency_p50_ms", "latency_p95_ms", "context_utilization_p95"):
            if r[col] is not None:
                assert abs(got[col] / r[col] - 1) <= RU.ALPHA + 1e-12, (model, col)
        assert got["context_utilization_max"] == approx(r["context_utilization_max"])  # max is exact
    tools = {r["tool"]: r for r in RU.calls(five, "tool").to_dicts()}
    assert (tools["get_order"]["calls"], tools["get_order"]["errors"]) == (2, 1)


def _exact_vs_rolled(lens, every):
    """Largest relative error of rolled percentiles against quantile_cont of the raw values."""
    worst = 0.0
    raw = S.signals(lens, every=every)
    rolled = RU.signals(lens, every=every)
    assert rolled["runs"].to_list() == raw["runs"].to_list()
    for col in ("latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms", "latency_ok_p95_ms"):
        for a, b in zip(rolled[col], raw[col], strict=True):
            if b is not None:
                worst = max(worst, abs(a / b - 1))
    return worst


@pytest.mark.slow
def test_error_bound_on_the_sample_traces(tmp_path):
    with agentlens.open(tmp_path / "samples.duckdb") as lens:
        lens.ingest(SAMPLES)
        RU.rollup(lens, "1h")
        for every in (None, "1d", "1h"):
            assert _exact_vs_rolled(lens, every) <= RU.ALPHA + 1e-12
        raw = {r["model"]: r for r in S.llm_calls(lens).to_dicts()}
        for r in RU.calls(lens, "llm").to_dicts():
            for col in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms"):
                if raw[r["model"]][col] is None:  # a model seen only in agent_runs rows (calls with no duration)
                    assert r[col] is None
                    continue
                assert abs(r[col] / raw[r["model"]][col] - 1) <= RU.ALPHA + 1e-12


@pytest.mark.slow
def test_error_bound_on_real_recorded_traces(real_traces, tmp_path):
    with agentlens.open(tmp_path / "real.duckdb") as lens:
        lens.ingest(real_traces / "instrumentation_samples")
        RU.rollup(lens, "1m")
        raw = {r["model"]: r for r in S.llm_calls(lens).to_dicts()}
        rolled = {r["model"]: r for r in RU.calls(lens, "llm").to_dicts()}
        assert raw and set(rolled) == set(raw)
        for model, r in raw.items():
            assert rolled[model]["calls"] == r["calls"]
            for col in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms"):
                assert abs(rolled[model][col] / r[col] - 1) <= RU.ALPHA + 1e-12


def test_error_bound_on_heavy_tailed_durations(lens):
    # 20,000 log-normal durations (median ~2 s, spanning ~4 decades) over two days, merged from
    # hourly rows into days and into the whole: every percentile within 1% of quantile_cont.
    lens.con.execute("SELECT setseed(0.42)")
    lens.con.execute("""
        INSERT INTO runs (run_id, source, started_at, ended_at, duration_ms, status, feature, ingested_at)
        SELECT 'r' || i, 'test', TIMESTAMPTZ '2026-03-02 00:00:00+00' + to_seconds(i * 8.64),
               NULL, exp(7.6 + 1.3 * sqrt(-2 * ln(random())) * cos(2 * pi() * random())),
               CASE WHEN random() < 0.05 THEN 'error' ELSE 'ok' END,
               ['a', 'b', 'c'][1 + (i % 3)], now()
        FROM range(20000) t(i)""")
    RU.rollup(lens, "1h")
    for every in (None, "1d", "6h"):
        assert _exact_vs_rolled(lens, every) <= RU.ALPHA + 1e-12
    raw, rolled = S.signals(lens, by="feature"), RU.signals(lens, by="feature")
    for a, b in zip(rolled["latency_p99_ms"], raw["latency_p99_ms"], strict=True):
        assert abs(a / b - 1) <= RU.ALPHA + 1e-12


def test_widths_and_alignment_are_checked(five):
    with pytest.raises(S.SignalsError, match="nothing rolled up yet"):
        RU.signals(five)
    with pytest.raises(S.SignalsError, match="divides a day"):
        RU.rollup(five, "7m")
    RU.rollup(five, "1h")
    with pytest.raises(S.SignalsError, match="bucket boundaries"):
        RU.signals(five, since="2026-03-02T10:30:00Z")
    with pytest.raises(S.SignalsError, match="multiple of a rolled width"):
        RU.signals(five, every="30m")
    with pytest.raises(S.SignalsError, match="'customer_id' is not one of them"):
        RU.signals(five, by="customer_id")
    assert RU.signals(five, since="2026-03-02T11:00:00Z")["runs"].to_list() == [1]


HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS held (x INTEGER)")
print("holding", flush=True)
sys.stdin.readline()
con.close()
"""


def _hold(db):
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "holding"
    return p


@pytest.mark.slow
def test_rollup_waits_for_another_process_holding_the_database(five, tmp_path):
    db = five.path
    five.close()
    holder = _hold(db)
    try:
        r = CliRunner().invoke(main, ["rollup", "--db", db, "--wait", "0.5"], catch_exceptions=False)
        assert r.exit_code == 3  # the database cannot be used now
        assert "held by" in r.output and f"PID {holder.pid}" in r.output and "--wait" in r.output

        def release():
            time.sleep(1.5)
            assert holder.stdin is not None
            holder.stdin.write("done\n")
            holder.stdin.flush()

        releaser = threading.Thread(target=release, daemon=True)
        releaser.start()
        t0 = time.monotonic()
        r = CliRunner().invoke(main, ["rollup", "--db", db, "--wait", "60"], catch_exceptions=False)
        releaser.join()
        assert r.exit_code == 0, r.output
        assert time.monotonic() - t0 >= 1.0  # it waited for the holder rather than failing
        assert "is held by" in r.stderr and "waiting up to 60 s" in r.stderr
        assert "runs new or changed since the last rollup: 5" in r.stdout
    finally:
        holder.kill()
        holder.wait()
    with agentlens.open(db) as lens:  # nothing half-written: the rollup is complete
        assert lens.sql("SELECT sum(runs) AS n FROM rollup_runs")["n"][0] == 5


@pytest.mark.slow
def test_cli_rollup_and_signals_from_rollups(five):
    db = five.path
    five.close()
    run = CliRunner().invoke
    r = run(main, ["rollup", "--db", db, "--every", "1h"], catch_exceptions=False)
    assert r.exit_code == 0 and "buckets re-rolled: 2" in r.output
    r = run(main, ["rollup", "--db", db], catch_exceptions=False)
    assert "runs new or changed since the last rollup: 0" in r.output
    r = run(main, ["signals", "--db", db, "--from-rollups", "--every", "1d", "--format", "json"],
            catch_exceptions=False)
    records = json.loads(r.output)
    assert [x["runs"] for x in records] == [5] and records[0]["bucket"].startswith("2026-03-02T00:00:00")
    r = run(main, ["signals", "--db", db, "--from-rollups"], catch_exceptions=False)
    assert r.exit_code == 0 and "golden signals (rollups)" in r.output and "within 1%" in r.output
    r = run(main, ["rollup", "--db", db, "--every", "7m"], catch_exceptions=False)
    assert r.exit_code == 2 and "divides a day" in r.output
    assert dt.timedelta(hours=1) in RU.widths(agentlens.open(db, read_only=True))


# --- signals(source=...): the library decides between the raw tables and the rollups ------------------------
def test_source_auto_reads_the_rollups_only_when_they_cover_the_query(five, tmp_path):
    def same(a, b):
        return a.equals(b)

    raw = S.signals(five, every="1h")
    assert same(S.signals(five, every="1h", source="auto"), raw)  # nothing rolled up yet: raw
    RU.rollup(five, "1h")
    rolled = RU.signals(five, every="1h")
    assert not same(rolled, raw)  # histogram percentiles: within 1%, not equal
    assert same(S.signals(five, every="1h", source="auto"), rolled)
    assert same(S.signals(five, every="1h", source="rollups"), rolled)
    assert same(S.signals(five, every="1h", source="raw"), raw)
    assert same(S.signals(five, by="feature", source="auto"), RU.signals(five, by="feature"))
    # not coverable: a dimension the rollups do not keep, a filter on status, alerts' time="end", a bucket
    # narrower than the rolled width, a window off its boundaries
    for kw in ({"by": "customer_id"}, {"where": {"status": "error"}}, {"time": "end"}, {"every": "15m"},
               {"since": "2026-03-02T10:30:00Z"}):
        assert same(S.signals(five, source="auto", **kw), S.signals(five, **kw)), kw
    # a run added after the rollup: the rollups no longer cover its window (raw), until rolled again
    late = Run(9, at(5), 700, feature="refund")
    five.ingest(write(tmp_path / "late.jsonl", [late]))
    now_raw = S.signals(five, every="1h")
    assert now_raw["runs"].sum() == 6 and same(S.signals(five, every="1h", source="auto"), now_raw)
    assert S.signals(five, every="1h", since="2026-03-02T11:00:00Z", source="auto").equals(
        RU.signals(five, every="1h", since="2026-03-02T11:00:00Z"))  # the 11:00 bucket is still covered
    RU.rollup(five, "1h")
    assert same(S.signals(five, every="1h", source="auto"), RU.signals(five, every="1h"))
    # the per-model and per-tool tables and the report follow the same choice
    assert same(S.llm_calls(five, source="auto"), RU.calls(five, "llm"))
    assert same(S.tool_calls(five, source="auto"), RU.calls(five, "tool"))
    assert S.report(five, source="auto").title == "golden signals (rollups)"
    assert S.report(five, where={"feature": "refund"}, source="auto").title == "golden signals"
    # what the rollups do not keep: an error with source="rollups", the raw tables with "auto"
    with pytest.raises(S.SignalsError, match="run latency by status is not kept in the rollups"):
        S.latency(five, source="rollups")
    assert same(S.latency(five, source="auto"), S.latency(five))
    with pytest.raises(S.SignalsError, match="time='end' needs the raw tables"):
        S.signals(five, time="end", source="rollups")
    with pytest.raises(S.SignalsError, match="source must be one of auto, raw, rollups"):
        S.signals(five, source="cache")  # type: ignore[arg-type]


def test_cli_source_maps_onto_the_library(five):
    db = five.path
    RU.rollup(five, "1h")
    five.close()
    run = CliRunner().invoke
    for args in (["--source", "rollups"], ["--from-rollups"], ["--source", "auto"]):
        r = run(main, ["signals", "--db", db, *args], catch_exceptions=False)
        assert r.exit_code == 0 and "golden signals (rollups)" in r.output, args
    r = run(main, ["signals", "--db", db, "--source", "raw"], catch_exceptions=False)
    assert r.exit_code == 0 and "golden signals (rollups)" not in r.output and "errors by type" in r.output
    r = run(main, ["signals", "--db", db, "--from-rollups", "--table", "errors"], catch_exceptions=False)
    assert r.exit_code == 2 and "errors by type is not kept in the rollups" in r.output
    r = run(main, ["signals", "--db", db, "--from-rollups", "--where", "feature=refund"], catch_exceptions=False)
    assert r.exit_code == 2 and "filtered by run dimension" in r.output  # --where was ignored, silently
