"""The golden signals against values computed by hand on small fixtures (tests/signals_data.py).

Percentiles are DuckDB's quantile_cont: with n sorted values x0..x(n-1), the q-quantile is at
h = (n - 1) q, interpolated: x[floor h] + (h - floor h) (x[ceil h] - x[floor h]).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from signals_data import MODELS_CONFIG, Run, at, five_runs, write

import agentlens
from agentlens.cli import main
from agentlens.core.config import Config
from agentlens.metrics import queries as Q
from agentlens.metrics import signals as S
from conftest import SAMPLES

approx = pytest.approx


@pytest.fixture
def five(tmp_path):
    lens = agentlens.open(tmp_path / "s.duckdb", Config.from_dict(MODELS_CONFIG))
    lens.ingest(write(tmp_path / "five.jsonl", five_runs()))
    yield lens
    lens.close()


def one(df):
    assert df.height == 1, df
    return df.row(0, named=True)


def test_totals_of_the_five_runs(five):
    r = one(S.signals(five))
    assert r["runs"] == 5 and r["errors"] == 2 and r["error_rate"] == approx(2 / 5)
    # durations 100 200 300 400 500: h = 4q -> p50 x2 = 300; p90 h=3.6 -> 400 + .6*100 = 460;
    # p95 h=3.8 -> 480; p99 h=3.96 -> 496
    assert (r["latency_p50_ms"], r["latency_p90_ms"], r["latency_p95_ms"], r["latency_p99_ms"]) == \
        (approx(300), approx(460), approx(480), approx(496))
    # ok runs 100 300 400: h = 2 * .95 = 1.9 -> 300 + .9*100 = 390; failed 200 500: h=.95 -> 200 + .95*300 = 485
    assert r["latency_ok_p95_ms"] == approx(390) and r["latency_error_p95_ms"] == approx(485)
    assert r["timed_runs"] == 5
    # LLM calls: R1 1 (its wrapper span is not a call), R2 2, R3 2, R4 1, R5 1 = 7; tools 1 + 1 + 1
    assert r["llm_calls"] == 7 and r["tool_calls"] == 3
    assert r["input_tokens"] == 1000 + 64000 + 100000 + 12800 and r["output_tokens"] == 10 + 20 + 30 + 40
    assert r["cost_usd"] == approx(0.01 + 0.2 + 0.3 + 0.002)
    # rate-limited: R2's 429 and R3's 529 (R2's agent span re-raising the 429 is not a call)
    assert r["rate_limited_calls"] == 2 and r["rate_limited_share"] == approx(2 / 7)
    assert r["rate_limited_runs"] == 2
    assert r["max_concurrency"] == 1  # ten minutes apart
    assert r["runs_over_budget"] is None  # no [budgets] run_usd


def test_hourly_buckets(five):
    df = S.signals(five, every="1h")
    assert df["bucket"].to_list() == [at(0), at(60)]
    first, second = df.to_dicts()
    # 10:00 holds R1..R4 (100..400 ms, R2 failed): p50 h=1.5 -> 200 + .5*100 = 250
    assert (first["runs"], first["errors"], first["latency_p50_ms"]) == (4, 1, approx(250))
    assert (second["runs"], second["errors"], second["latency_p50_ms"]) == (1, 1, approx(500))
    assert first["llm_calls"] == 6 and second["llm_calls"] == 1


def test_by_feature_and_bucket(five):
    df = S.signals(five, by="feature")
    billing, refund = df.to_dicts()
    assert (billing["feature"], billing["runs"], billing["errors"]) == ("billing", 2, 1)
    assert billing["latency_p95_ms"] == approx(400 + 0.95 * 100)  # 400 500: h=.95
    assert (refund["feature"], refund["runs"], refund["errors"]) == ("refund", 3, 1)
    assert refund["latency_p95_ms"] == approx(200 + 0.9 * 100)  # 100 200 300: h=1.9
    assert refund["rate_limited_share"] == approx(2 / 5) and billing["rate_limited_share"] == 0
    both = S.signals(five, by=["feature"], every="1h")
    assert [(r["bucket"], r["feature"], r["runs"]) for r in both.to_dicts()] == [
        (at(0), "billing", 1), (at(0), "refund", 3), (at(60), "billing", 1)]
    # "feature,model" in one argument, as the CLI passes it
    assert S.signals(five, by="feature,environment").columns[:2] == ["feature", "environment"]


def test_window_and_filters(five):
    # [10:15, 10:35): R3 and R4 only (R2 started at 10:10)
    r = one(S.signals(five, since=at(15), until=at(35)))
    assert r["runs"] == 2 and r["errors"] == 0
    assert one(S.signals(five, where={"feature": "billing"}))["runs"] == 2
    assert S.signals(five, since=at(120)).is_empty()  # no run: no row ("no data", not zeros)


def test_runs_over_budget_and_daily_budget(tmp_path):
    cfg = Config.from_dict({**MODELS_CONFIG, "budgets": {
        "run_usd": 0.25, "daily_usd": {"feature": {"refund": 0.4, "*": 1.0}}}})
    with agentlens.open(tmp_path / "b.duckdb", cfg) as lens:
        lens.ingest(write(tmp_path / "five.jsonl", five_runs()))
        assert one(S.signals(lens))["runs_over_budget"] == 1  # R3 cost 0.30 > 0.25
        daily, facts = S.budget_utilization(lens)
        rows = {r["value"]: r for r in daily.to_dicts()}
        # refund spent 0.01 + 0.20 + 0.30 = 0.51 of its 0.40 cap; billing 0.002 of the "*" cap 1.00
        assert rows["refund"]["spend_usd"] == approx(0.51) and rows["refund"]["utilization"] == approx(0.51 / 0.4)
        assert rows["billing"]["cap_usd"] == 1.0 and rows["billing"]["utilization"] == approx(0.002)
        assert facts["runs_over_run_usd"] == 1 and facts["max_run_utilization"] == approx(0.3 / 0.25)


def test_concurrency_counts_runs_in_flight_across_buckets(lens, tmp_path):
    # A 10:50-11:05, B 10:55-11:05, D 10:58-11:20, E 10:59-11:00 (billing), F 11:00-11:01 (billing),
    # C 11:10-11:11. At 10:59 A B D E are in flight: 4. At 11:00 E has ended (ends are exclusive)
    # when F starts: A B D F = 4. At 11:10: D C = 2.
    def r(n, start, minutes, feature="refund"):
        return Run(n, at(start), minutes * 60_000, feature=feature)

    runs = [r(1, 50, 15), r(2, 55, 10), r(4, 58, 22), r(5, 59, 1, "billing"), r(6, 60, 1, "billing"),
            r(3, 70, 1)]
    lens.ingest(write(tmp_path / "c.jsonl", runs))
    assert S.signals(lens, every="1h")["max_concurrency"].to_list() == [4, 4]
    # only C and F start after 11:00, but A B D are still in flight then: the window's peak is 4
    r1 = one(S.signals(lens, since=at(60)))
    assert r1["runs"] == 2 and r1["max_concurrency"] == 4
    # per feature: refund peaks at 3 in both hours (A B D; at 11:00 still A B D), billing at 1
    got = {(x["bucket"], x["feature"]): x["max_concurrency"] for x in S.signals(lens, by="feature", every="1h").to_dicts()}
    assert got == {(at(0), "billing"): 1, (at(0), "refund"): 3, (at(60), "billing"): 1, (at(60), "refund"): 3}


def test_implicit_errors_count_runs_with_a_failure_mode(five):
    five.con.execute("DELETE FROM failures")  # whatever the classifier found: we set our own rows
    r1, r4 = (five.runs(order_by="started_at", descending=False)["run_id"][i] for i in (0, 3))
    five.con.executemany("INSERT INTO failures (run_id, mode, severity) VALUES (?, ?, 'high')",
                         [[r1, "runaway_loop"], [r1, "refusal"], [r4, "silent_tool_failure"]])
    r = one(S.signals(five))
    assert r["implicit_errors"] == 2 and r["implicit_error_rate"] == approx(2 / 5)  # R1 counted once
    five.con.execute("DROP TABLE failures")
    r = one(S.signals(five))
    assert r["implicit_errors"] is None and r["implicit_error_rate"] is None  # not known, not zero


def test_llm_calls_per_model(five):
    rows = {r["model"]: r for r in S.llm_calls(five).to_dicts()}
    assert list(rows) == ["gpt-4o", "claude-3-5-sonnet", "gpt-4o-mini"]  # by calls, then name
    g = rows["gpt-4o"]
    # R1's call 50 ms (not its 60 ms wrapper), R2's 429 after 5 ms and its 80 ms call
    assert (g["calls"], g["errors"], g["rate_limited_calls"]) == (3, 1, 1)
    assert g["latency_p50_ms"] == approx(50) and g["latency_p95_ms"] == approx(50 + 0.9 * 30)  # 5 50 80
    assert g["latency_ok_p95_ms"] == approx(50 + 0.95 * 30) and g["latency_error_p95_ms"] == approx(5)
    assert g["ttft_calls"] == 1 and g["ttft_p50_ms"] == approx(30)
    # context use: 1000/128000 and 64000/128000 (the 429 has no tokens): p95 h=.95 between them
    assert g["context_window"] == 128000
    assert g["context_utilization_p95"] == approx(1000 / 128000 + 0.95 * (0.5 - 1000 / 128000))
    assert g["context_utilization_max"] == approx(0.5)
    c = rows["claude-3-5-sonnet"]
    assert (c["calls"], c["errors"], c["rate_limited_share"], c["context_utilization_max"]) == (2, 1, 0.5, 0.5)
    m = rows["gpt-4o-mini"]
    assert (m["calls"], m["errors"], m["rate_limited_calls"]) == (2, 1, 0)
    assert m["context_utilization_max"] == approx(12800 / 128000)


def test_tool_calls_per_tool(five):
    rows = {r["tool"]: r for r in S.tool_calls(five).to_dicts()}
    assert (rows["get_order"]["calls"], rows["get_order"]["errors"], rows["get_order"]["error_rate"]) == (2, 1, 0.5)
    assert rows["get_order"]["latency_p50_ms"] == approx(30)  # 20 and 40
    assert rows["get_order"]["latency_error_p95_ms"] == approx(40)
    assert (rows["search_kb"]["calls"], rows["search_kb"]["errors"]) == (1, 0)


def test_errors_by_type(five):
    got = [(r["error_type"], r["kind"], r["error_spans"], r["runs"], r["failed_runs"], r["rate_limited"])
           for r in S.errors_by_type(five).to_dicts()]
    assert got == [
        ("InternalServerError", "agent", 1, 1, 1, False),  # from R5's message "InternalServerError: ..."
        ("InternalServerError", "llm", 1, 1, 1, False),
        ("OverloadedError", "llm", 1, 1, 0, True),  # R3 survived its 529
        ("RateLimitError", "agent", 1, 1, 1, True),
        ("RateLimitError", "llm", 1, 1, 1, True),
        ("TimeoutError", "tool", 1, 1, 0, False),
    ]


def test_latency_by_status(five):
    got = {r["status"]: r for r in S.latency(five).to_dicts()}
    assert got["ok"]["runs"] == 3 and got["ok"]["latency_p50_ms"] == approx(300)
    assert got["error"]["runs"] == 2 and got["error"]["latency_p50_ms"] == approx(350)
    assert got["error"]["latency_max_ms"] == approx(500)


def test_bad_arguments_are_clear(five):
    with pytest.raises(S.SignalsError, match="cannot group or filter by 'tokens'"):
        S.signals(five, by="tokens")
    with pytest.raises(S.SignalsError, match="--every '1x' is not a duration"):
        S.signals(five, every="1x")
    with pytest.raises(S.SignalsError, match="--since 'yesterday' is not a time"):
        S.signals(five, since="yesterday")
    with pytest.raises(S.SignalsError, match="must be after --since"):
        S.signals(five, since="2026-03-02", until="2026-03-01")
    with pytest.raises(S.SignalsError, match="cannot group or filter by 'input'"):
        S.signals(five, where={"input": "x"})


@pytest.mark.parametrize("name", sorted(Q.TEMPLATES))
@pytest.mark.parametrize("variant", ["plain", "keys"])
def test_every_template_binds_on_an_empty_database(lens, name, variant):
    q = (S.make_query() if variant == "plain" else
         S.make_query(by="feature,model", every="1h", since="2026-01-01", until="2026-02-01",
                      where={"environment": "prod"}, time="end"))
    with S._Models(lens):
        if name == "BUDGET_DAILY":
            lens.con.execute("CREATE TEMP TABLE _budget_caps (dimension VARCHAR, value VARCHAR, cap_usd DOUBLE)")
            sql = Q.BUDGET_DAILY.format(dims=', "feature"', unpivot='"feature"')
            assert lens.sql(sql, {"since": q.since, "until": q.until}).is_empty()
            return
        if name in ("LLM_CALLS", "TOOL_CALLS", "ERRORS_BY_TYPE"):  # per model / tool / type: no `by`
            q = S.Query((), q.every, q.since, q.until, q.where, q.time)
        for failures in (False, True):
            sql, params = S._render(Q.TEMPLATES[name], q, has_failures=failures)
            assert lens.sql(sql, params).is_empty()


def test_sample_traces_agree_with_their_labels(tmp_path):
    labels = [json.loads(line) for line in (SAMPLES / "labels.jsonl").read_text().splitlines()]
    with agentlens.open(tmp_path / "samples.duckdb") as lens:
        lens.ingest(SAMPLES)
        r = one(S.signals(lens))
        assert r["runs"] == len(labels) == 120
        assert r["errors"] == sum(x["status"] == "error" for x in labels)
        # the generator injected `rate_limited` into these runs (OTLP spans and agent_runs rows alike)
        assert r["rate_limited_runs"] == sum("rate_limited" in x["modes"] for x in labels)
        daily = S.signals(lens, every="1d")
        assert daily["runs"].sum() == 120 and daily.height == 5  # 2026-11-10 .. 14
        assert daily["llm_calls"].sum() == lens.sql("SELECT sum(llm_calls) AS n FROM runs")["n"][0]


def test_report_renders_and_escapes_untrusted_text(tmp_path):
    run = Run(9, at(0), 100, error="<script>alert(1)</script>: boom")
    with agentlens.open(tmp_path / "x.duckdb") as lens:
        lens.ingest(write(tmp_path / "x.jsonl", [run]))
        res = S.report(lens, every="1h")
        html = res._repr_html_()
        assert "<script>" not in html and "&lt;script&gt;" in html
        text = str(res)
        assert "traffic per bucket" in text and "errors by type" in text and "saturation per bucket" in text
        assert json.dumps(res.to_dict(), default=str)


def run_cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_json_csv_and_errors(tmp_path):
    db = str(tmp_path / "c.duckdb")
    with agentlens.open(db) as lens:
        lens.ingest(write(tmp_path / "five.jsonl", five_runs()))
    r = run_cli("signals", "--db", db, "--by", "feature", "--every", "1h", "--format", "json")
    assert r.exit_code == 0, r.output
    records = json.loads(r.output)
    assert isinstance(records, list) and len(records) == 3
    need = {"bucket", "feature", "runs", "errors", "error_rate", "latency_p50_ms", "latency_p95_ms",
            "latency_p99_ms", "llm_calls", "input_tokens", "output_tokens", "cost_usd", "rate_limited_share"}
    assert need <= set(records[0])
    assert records[0]["bucket"].startswith("2026-03-02T10:00:00")
    r = run_cli("signals", "--db", db, "--format", "csv", "--where", "feature=refund")
    lines = r.output.strip().splitlines()
    assert lines[0].startswith("runs,errors,error_rate") and lines[1].startswith("3,1,")
    r = run_cli("signals", "--db", db, "--table", "llm", "--format", "json")
    assert [x["model"] for x in json.loads(r.output)] == ["gpt-4o", "claude-3-5-sonnet", "gpt-4o-mini"]
    r = run_cli("signals", "--db", db)
    assert r.exit_code == 0 and "golden signals" in r.output and "LLM calls by model" in r.output
    r = run_cli("signals", "--db", db, "--by", "prompt")
    assert r.exit_code == 2 and "cannot group or filter by 'prompt'" in r.output
    r = run_cli("signals", "--db", db, "--where", "feature")
    assert r.exit_code == 2 and "DIMENSION=VALUE" in r.output
    r = run_cli("signals", "--db", db, "--table", "budgets")
    assert r.exit_code == 2 and "no budget configured" in r.output


def test_status_is_a_filter_not_a_group(tmp_path):
    assert "status" in S.DIMENSIONS and "status" not in S.GROUP_DIMENSIONS
    with agentlens.open(tmp_path / "s.duckdb") as lens:
        with pytest.raises(S.SignalsError, match="cannot group signals by 'status'"):
            S.signals(lens, by="status")
        assert S.signals(lens, where={"status": "error"}).height <= 1
