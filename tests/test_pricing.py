"""Computed costs: exact costs for known tokens and prices (cached, cache-write and reasoning
tokens included), dated, tiered and time-of-day prices, config overrides with effective dates,
unpriced models, which spans are priced, reprice, and the real instrumentation traces.

Prices used below are genai-prices' (0.2.x data), per million tokens:
  gpt-4o-mini        input 0.15, cached input 0.075, output 0.60
  gpt-4o             input 2.50, cached input 1.25,  output 10.00
  claude-3-5-sonnet  input 3.00, cache read 0.30, cache write 3.75, output 15.00
  o4-mini            input 1.10, cached input 0.275, output 4.40 (reasoning at the output rate)
  claude-sonnet-4-6  before 2026-03-13: input 3 / output 15, and 6 / 22.5 when a call's input
                     exceeds 200,000 tokens; from 2026-03-13: 3 / 15 flat
  deepseek-chat      00:30-16:30 UTC: input 0.27 / output 1.10; otherwise 0.135 / 0.55
`test_prices_used_here_are_genai_prices` pins them, so a data change fails loudly there first.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import polars as pl
import pytest
from genai_prices import Usage, calc_price

import agentlens
from agentlens import failures, pricing, schema
from agentlens.core.config import Config, ConfigError
from agentlens.pricing.models import genai_model
from agentlens.store import tables
from conftest import SAMPLES, doc, jsonl, span

T1 = "0af7651916cd43dd8448eb211c80319c"
T2 = "1af7651916cd43dd8448eb211c80319c"
T3 = "2af7651916cd43dd8448eb211c80319c"
T0 = "3af7651916cd43dd8448eb211c80319c"


def ns(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso).timestamp() * 1e9)


def chat(trace: str, span_id: str, parent: str | None, model: str, inp: int | None, out: int | None,
         at: str = "2026-11-10T10:00:00+00:00", provider: str = "openai", cached: int | None = None,
         cache_write: int | None = None, reasoning: int | None = None, cost: float | None = None,
         **extra: object) -> dict:
    a: dict = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider, "gen_ai.request.model": model}
    for k, v in (("gen_ai.usage.input_tokens", inp), ("gen_ai.usage.output_tokens", out),
                 ("gen_ai.usage.cache_read.input_tokens", cached),
                 ("gen_ai.usage.cache_creation.input_tokens", cache_write),
                 ("gen_ai.usage.reasoning.output_tokens", reasoning), ("gen_ai.usage.cost", cost)):
        if v is not None:
            a[k] = v
    a.update(extra)
    t = ns(at)
    return span(trace, span_id, parent, f"chat {model}", t, t + 10**9, a)


def agent(trace: str, span_id: str, at: str = "2026-11-10T10:00:00+00:00", **attrs: object) -> dict:
    t = ns(at) - 10**8
    return span(trace, span_id, None, "invoke_agent bot", t, t + 5 * 10**9,
                {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "bot", **attrs})


def run_row(lens, run_id: str) -> dict:
    return lens.sql("SELECT * FROM runs WHERE run_id = ?", [run_id]).row(0, named=True)


def span_row(lens, run_id: str, span_id: str) -> dict:
    return lens.sql("SELECT * FROM spans WHERE run_id = ? AND span_id = ?", [run_id, span_id]).row(0, named=True)


def open_with(tmp_path, raw: dict, name: str = "p.duckdb"):
    return agentlens.open(tmp_path / name, Config.from_dict(raw, "agentlens.toml"))


def test_prices_used_here_are_genai_prices():
    t = pricing.price_table([("gpt-4o-mini-2024-07-18", "openai"), ("claude-3-5-sonnet-20241022", "anthropic"),
                             ("o4-mini", "openai"), ("gpt-4o", "openai")])
    got = {r["model"]: (r["input_per_mtok"], r["cached_input_per_mtok"], r["cache_write_per_mtok"],
                        r["output_per_mtok"], r["reasoning_per_mtok"]) for r in t.to_dicts()}
    assert got == {
        "gpt-4o-mini-2024-07-18": (0.15, 0.075, None, 0.6, None),
        "claude-3-5-sonnet-20241022": (3.0, 0.3, 3.75, 15.0, None),
        "o4-mini": (1.1, 0.275, None, 4.4, None),
        "gpt-4o": (2.5, 1.25, None, 10.0, None),
    }


def test_cached_input_is_charged_at_the_cached_rate(lens, tmp_path):
    # gpt-4o-mini, 1,000 input tokens of which 400 cached, 200 output:
    # (600 x 0.15 + 400 x 0.075 + 200 x 0.60) / 1e6 = (90 + 30 + 120) / 1e6 = 0.000240
    lens.ingest(jsonl(tmp_path / "a.jsonl", doc(
        agent(T1, "a000000000000001"),
        chat(T1, "c000000000000001", "a000000000000001", "gpt-4o-mini-2024-07-18", 1000, 200, cached=400))))
    s = span_row(lens, T1, "c000000000000001")
    assert s["computed_cost_usd"] == pytest.approx(0.000240, rel=1e-12)
    assert s["price_source"] == "genai-prices:openai/gpt-4o-mini"
    assert span_row(lens, T1, "a000000000000001")["price_source"] is None  # the agent span is not priced
    r = run_row(lens, T1)
    assert r["computed_cost_usd"] == pytest.approx(0.000240, rel=1e-12)
    assert r["cost_usd"] == pytest.approx(0.000240, rel=1e-12)
    assert r["reported_cost_usd"] is None and r["unpriced_llm_calls"] == 0


def test_cache_write_and_reasoning_tokens(lens, tmp_path):
    # claude-3-5-sonnet: 10,000 input = 6,000 cache read + 2,000 cache write + 2,000 plain; 500 output:
    # (2,000 x 3 + 6,000 x 0.30 + 2,000 x 3.75 + 500 x 15) / 1e6 = (6,000 + 1,800 + 7,500 + 7,500) / 1e6 = 0.0228
    # o4-mini: 1,000 input, 3,000 output of which 2,500 reasoning (no separate reasoning price: output rate):
    # (1,000 x 1.10 + 3,000 x 4.40) / 1e6 = (1,100 + 13,200) / 1e6 = 0.0143
    lens.ingest(jsonl(tmp_path / "a.jsonl", doc(
        agent(T1, "a000000000000001"),
        chat(T1, "c000000000000001", "a000000000000001", "claude-3-5-sonnet-20241022", 10_000, 500,
             provider="anthropic", cached=6_000, cache_write=2_000),
        chat(T1, "c000000000000002", "a000000000000001", "o4-mini-2025-04-16", 1_000, 3_000, reasoning=2_500))))
    assert span_row(lens, T1, "c000000000000001")["computed_cost_usd"] == pytest.approx(0.0228, rel=1e-12)
    assert span_row(lens, T1, "c000000000000002")["computed_cost_usd"] == pytest.approx(0.0143, rel=1e-12)
    assert run_row(lens, T1)["computed_cost_usd"] == pytest.approx(0.0228 + 0.0143, rel=1e-12)


def test_each_call_is_priced_once(lens, tmp_path):
    # The agent span repeats the run's totals and a framework's LLM span wraps the SDK's: only the
    # innermost LLM spans with usage are priced. gpt-4o: (1,000 x 2.5 + 100 x 10) / 1e6 = 0.0035 and
    # (2,000 x 2.5 + 50 x 10) / 1e6 = 0.0055
    lens.ingest(jsonl(tmp_path / "a.jsonl", doc(
        agent(T1, "a000000000000001", **{"gen_ai.usage.input_tokens": 3000, "gen_ai.usage.output_tokens": 150,
                                         "gen_ai.request.model": "gpt-4o"}),
        chat(T1, "f000000000000001", "a000000000000001", "gpt-4o", 1000, 100),  # framework wrapper
        chat(T1, "c000000000000001", "f000000000000001", "gpt-4o", 1000, 100),  # the SDK call inside it
        chat(T1, "c000000000000002", "a000000000000001", "gpt-4o", 2000, 50))))
    priced = lens.sql("SELECT span_id, computed_cost_usd FROM spans WHERE price_source IS NOT NULL ORDER BY span_id")
    assert priced.rows() == [("c000000000000001", pytest.approx(0.0035)), ("c000000000000002", pytest.approx(0.0055))]
    r = run_row(lens, T1)
    assert r["input_tokens"] == 3000 and r["computed_cost_usd"] == pytest.approx(0.009, rel=1e-12)


def test_a_later_file_with_an_inner_call_moves_the_price(lens, tmp_path):
    # file 1 has only the wrapper (priced as the call); file 2 brings the SDK span inside it: the
    # wrapper's price is cleared and the inner call is priced instead (same tokens: same cost)
    lens.ingest(jsonl(tmp_path / "1.jsonl", doc(
        agent(T1, "a000000000000001"), chat(T1, "f000000000000001", "a000000000000001", "gpt-4o", 1000, 100))))
    assert span_row(lens, T1, "f000000000000001")["computed_cost_usd"] == pytest.approx(0.0035)
    lens.ingest(jsonl(tmp_path / "2.jsonl", doc(chat(T1, "c000000000000001", "f000000000000001", "gpt-4o", 1000, 100))))
    assert span_row(lens, T1, "f000000000000001")["price_source"] is None
    assert span_row(lens, T1, "c000000000000001")["computed_cost_usd"] == pytest.approx(0.0035)
    assert run_row(lens, T1)["computed_cost_usd"] == pytest.approx(0.0035, rel=1e-12)


def test_genai_prices_dated_and_tiered_prices(lens, tmp_path):
    # claude-sonnet-4-6, 250,000 input tokens (> 200,000: the long-context tier for the whole call), 1,000 output:
    #   2026-03-12: (250,000 x 6 + 1,000 x 22.5) / 1e6 = (1,500,000 + 22,500) / 1e6 = 1.5225
    #   2026-03-13: flat price from that day: (250,000 x 3 + 1,000 x 15) / 1e6 = 0.765
    # and 150,000 input on 2026-03-12 stays in the base tier: (150,000 x 3 + 1,000 x 15) / 1e6 = 0.465
    lens.ingest(jsonl(tmp_path / "a.jsonl", doc(
        chat(T1, "c000000000000001", None, "claude-sonnet-4-6", 250_000, 1_000, "2026-03-12T23:59:59+00:00",
             provider="anthropic"),
        chat(T2, "c000000000000002", None, "claude-sonnet-4-6", 250_000, 1_000, "2026-03-13T00:00:00+00:00",
             provider="anthropic"),
        chat(T3, "c000000000000003", None, "claude-sonnet-4-6", 150_000, 1_000, "2026-03-12T12:00:00+00:00",
             provider="anthropic"))))
    got = {r["run_id"]: (r["computed_cost_usd"], r["price_source"])
           for r in lens.sql("SELECT run_id, computed_cost_usd, price_source FROM spans").to_dicts()}
    assert got[T1] == (pytest.approx(1.5225, rel=1e-12), "genai-prices:anthropic/claude-sonnet-4-6 input>200,000")
    assert got[T2] == (pytest.approx(0.765, rel=1e-12), "genai-prices:anthropic/claude-sonnet-4-6@2026-03-13")
    assert got[T3] == (pytest.approx(0.465, rel=1e-12), "genai-prices:anthropic/claude-sonnet-4-6")


def test_genai_prices_time_of_day_prices(lens, tmp_path):
    # deepseek-chat, 10,000 input / 1,000 output:
    #   12:00 UTC (standard): (10,000 x 0.27 + 1,000 x 1.10) / 1e6 = (2,700 + 1,100) / 1e6 = 0.0038
    #   20:00 UTC (off-peak): (10,000 x 0.135 + 1,000 x 0.55) / 1e6 = (1,350 + 550) / 1e6 = 0.0019
    lens.ingest(jsonl(tmp_path / "a.jsonl", doc(
        chat(T1, "c000000000000001", None, "deepseek-chat", 10_000, 1_000, "2026-11-10T12:00:00+00:00",
             provider="deepseek"),
        chat(T2, "c000000000000002", None, "deepseek-chat", 10_000, 1_000, "2026-11-10T20:00:00+00:00",
             provider="deepseek"))))
    assert run_row(lens, T1)["computed_cost_usd"] == pytest.approx(0.0038, rel=1e-12)
    assert run_row(lens, T2)["computed_cost_usd"] == pytest.approx(0.0019, rel=1e-12)


def test_an_unknown_model_is_never_priced_at_zero(lens, tmp_path):
    lens.ingest(jsonl(tmp_path / "a.jsonl", doc(
        agent(T1, "a000000000000001"),
        chat(T1, "c000000000000001", "a000000000000001", "acme-finetune-v1", 900, 40),
        chat(T1, "c000000000000002", "a000000000000001", "gpt-4o-mini", 1000, 200))))
    s = span_row(lens, T1, "c000000000000001")
    assert s["computed_cost_usd"] is None and s["price_source"] == "unpriced: no price for this model"
    r = run_row(lens, T1)
    # one call is unpriced: the run's computed cost is unknown, not the sum of the other calls
    assert r["computed_cost_usd"] is None and r["cost_usd"] is None and r["unpriced_llm_calls"] == 1


def test_broken_usage_is_unpriced_with_the_reason(lens, tmp_path):
    lens.ingest(jsonl(tmp_path / "a.jsonl", doc(
        chat(T1, "c000000000000001", None, "gpt-4o-mini", 100, 10, cached=400))))
    s = span_row(lens, T1, "c000000000000001")
    assert s["computed_cost_usd"] is None
    assert s["price_source"] == "unpriced: cached + cache-write tokens exceed input tokens"


def test_the_headline_cost_takes_the_configured_figure_where_the_two_disagree(lens, tmp_path):
    # gpt-4o-mini 1,000 / 200 computes (1,000 x 0.15 + 200 x 0.6) / 1e6 = 0.00027; the span reports 0.0003
    # (11% apart: beyond the 1% tolerance); a third run reports 0.000270001 (within it)
    trace = jsonl(tmp_path / "a.jsonl", doc(
        chat(T1, "c000000000000001", None, "gpt-4o-mini", 1000, 200, cost=0.0003),
        chat(T2, "c000000000000002", None, "gpt-4o-mini", 1000, 200),
        chat(T3, "c000000000000003", None, "gpt-4o-mini", 1000, 200, cost=0.000270001)))
    lens.ingest(trace)
    # the default ([pricing] headline_cost = "computed"): the computed figure where they disagree
    r = run_row(lens, T1)
    assert r["cost_usd"] == pytest.approx(0.00027, rel=1e-12) and r["reported_cost_usd"] == 0.0003
    assert r["computed_cost_usd"] == pytest.approx(0.00027, rel=1e-12)
    assert span_row(lens, T1, "c000000000000001")["cost_usd"] == 0.0003  # the span's reported cost is kept
    r2 = run_row(lens, T2)
    assert r2["reported_cost_usd"] is None and r2["cost_usd"] == pytest.approx(0.00027, rel=1e-12)
    assert run_row(lens, T3)["cost_usd"] == 0.000270001  # within the tolerance: the reported figure
    # "reported": the reported figure wherever there is one
    with open_with(tmp_path, {"pricing": {"headline_cost": "reported"}}, "reported.duckdb") as other:
        other.ingest(trace)
        assert run_row(other, T1)["cost_usd"] == 0.0003 and run_row(other, T3)["cost_usd"] == 0.000270001
        assert run_row(other, T2)["cost_usd"] == pytest.approx(0.00027, rel=1e-12)
    with pytest.raises(ConfigError, match=r"headline_cost must be one of 'computed', 'reported', got 'vendor'"):
        pricing.load_pricing(Config.from_dict({"pricing": {"headline_cost": "vendor"}}, "agentlens.toml"))


def test_agent_runs_rows_are_priced_from_their_tokens(lens, tmp_path):
    # one row = one record: gpt-4o 1,000 in / 100 out = (2,500 + 1,000) / 1e6 = 0.0035 computed;
    # the row's reported cost stays the run's cost; a row with an unknown model keeps its reported cost
    rows = [
        {"id": 1, "user_id": "u", "request": json.dumps({"model": "gpt-4o"}), "response": "ok",
         "tokens_in": 1000, "tokens_out": 100, "cost_usd": 0.0035, "created_at": "2026-11-10T10:00:00Z"},
        {"id": 2, "user_id": "u", "request": json.dumps({"model": "acme-finetune-v1"}), "response": "ok",
         "tokens_in": 1000, "tokens_out": 100, "cost_usd": 0.001, "created_at": "2026-11-10T10:00:00Z"},
        {"id": 3, "user_id": "u", "request": json.dumps({"model": "gpt-4o"}), "response": "ok",
         "tokens_in": 1000, "tokens_out": 100, "cost_usd": None, "created_at": "2026-11-10T10:00:00Z"},
    ]
    p = tmp_path / "agent_runs.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lens.ingest(p, format="agent_runs")
    got = {r["run_id"]: r for r in lens.runs().to_dicts()}
    assert got["1"]["cost_usd"] == 0.0035 and got["1"]["computed_cost_usd"] == pytest.approx(0.0035, rel=1e-12)
    assert got["1"]["reported_cost_usd"] == 0.0035
    assert got["2"]["cost_usd"] == 0.001 and got["2"]["computed_cost_usd"] is None
    assert got["2"]["unpriced_llm_calls"] == 1
    assert got["3"]["cost_usd"] == pytest.approx(0.0035, rel=1e-12) and got["3"]["reported_cost_usd"] is None
    assert span_row(lens, "1", "run")["price_source"] == "genai-prices:openai/gpt-4o"


@pytest.mark.parametrize("batch", [1, pricing.REPRICE_BATCH_RUNS], ids=["a run per reprice batch", "one batch"])
def test_overrides_with_effective_dates_and_reprice(tmp_path, monkeypatch, batch):
    # acme-finetune-v1, 1,000 input / 500 output:
    #   2026-10-30 and 2026-10-31 (two runs): before any override, unknown to genai-prices: unpriced
    #   2026-11-05: override from 2026-11-01 (0.20 / 0.80): (1,000 x 0.2 + 500 x 0.8) / 1e6 = 0.0006
    #   2026-11-12 00:00 UTC: override from 2026-11-12 (0.10 / 0.40): (100 + 200) / 1e6 = 0.0003
    f = jsonl(tmp_path / "a.jsonl", doc(
        chat(T1, "c000000000000001", None, "acme-finetune-v1", 1000, 500, "2026-10-31T23:00:00+00:00"),
        chat(T0, "c000000000000004", None, "acme-finetune-v1", 1000, 500, "2026-10-30T23:00:00+00:00"),
        chat(T2, "c000000000000002", None, "acme-finetune-v1", 1000, 500, "2026-11-05T10:00:00+00:00"),
        chat(T3, "c000000000000003", None, "acme-finetune-v1", 1000, 500, "2026-11-12T00:00:00+00:00")))
    overrides = [
        {"model": "acme-finetune-v1", "effective_from": dt.date(2026, 11, 12), "input_per_mtok": 0.10,
         "output_per_mtok": 0.40},
        {"model": "acme-finetune-v1", "effective_from": dt.date(2026, 11, 1), "input_per_mtok": 0.20,
         "output_per_mtok": 0.80, "note": "GPU cost"},
    ]
    with open_with(tmp_path, {"pricing": {"overrides": overrides}}) as lens:
        lens.ingest(f)
        got = {r["run_id"]: (r["computed_cost_usd"], r["price_source"])
               for r in lens.sql("SELECT run_id, computed_cost_usd, price_source FROM spans").to_dicts()}
    assert got[T1] == (None, "unpriced: no price for this model")
    assert got[T2] == (pytest.approx(0.0006, rel=1e-12), "override:acme-finetune-v1@2026-11-01 GPU cost")
    assert got[T3] == (pytest.approx(0.0003, rel=1e-12), "override:acme-finetune-v1@2026-11-12")

    # the rate changes (0.20 -> 0.30 input): reprice recomputes 2026-11-05 as (300 + 400) / 1e6 = 0.0007; in
    # batches of one run each, the same summary (the unpriced calls of two batches counted together)
    overrides[1]["input_per_mtok"] = 0.30
    monkeypatch.setattr(pricing, "REPRICE_BATCH_RUNS", batch)
    with open_with(tmp_path, {"pricing": {"overrides": overrides}}) as lens:
        summary = failures.reprice(lens)
        assert run_row(lens, T2)["cost_usd"] == pytest.approx(0.0007, rel=1e-12)
        assert run_row(lens, T3)["cost_usd"] == pytest.approx(0.0003, rel=1e-12)
        assert run_row(lens, T1)["cost_usd"] is None
        assert (summary.runs, summary.priced_calls, summary.unpriced_calls, summary.changed_runs) == (4, 2, 2, 1)
        assert summary.cost_before == pytest.approx(0.0009) and summary.cost_after == pytest.approx(0.001)
        assert summary.unpriced.rows() == [("acme-finetune-v1", "openai", "unpriced: no price for this model", 2, 2,
                                            2000, 1000)]
        assert "runs whose cost changed: 1" in str(summary)
        assert failures.reprice(lens).changed_runs == 0  # idempotent


def test_provider_specific_override_beats_genai_prices(tmp_path):
    # a negotiated gpt-4o-mini rate on azure only: (1,000 x 0.1 + 200 x 0.4) / 1e6 = 0.00018; the
    # same call on openai keeps genai-prices' (150 + 120) / 1e6 = 0.00027
    raw = {"pricing": {"overrides": [{"model": "GPT-4O-MINI", "provider": "azure", "input_per_mtok": 0.1,
                                      "output_per_mtok": 0.4}]}}
    with open_with(tmp_path, raw) as lens:
        lens.ingest(jsonl(tmp_path / "a.jsonl", doc(
            chat(T1, "c000000000000001", None, "gpt-4o-mini", 1000, 200, provider="azure"),
            chat(T2, "c000000000000002", None, "gpt-4o-mini", 1000, 200))))
        assert run_row(lens, T1)["cost_usd"] == pytest.approx(0.00018, rel=1e-12)
        assert run_row(lens, T2)["cost_usd"] == pytest.approx(0.00027, rel=1e-12)


@pytest.mark.parametrize("raw, message", [
    ({"pricing": []}, r"agentlens.toml: \[pricing\] must be a table"),
    ({"pricing": {"tolerance": 1}}, r"\[pricing\].tolerance is not a pricing setting"),
    ({"pricing": {"overrides": [{"input_per_mtok": 1, "output_per_mtok": 1}]}}, r"\[\[pricing.overrides\]\] #1.model is required"),
    ({"pricing": {"overrides": [{"model": "m", "output_per_mtok": 1}]}},
     r'#1 \(model "m"\).input_per_mtok is required'),
    ({"pricing": {"overrides": [{"model": "m", "input_per_mtok": -1, "output_per_mtok": 1}]}},
     r'input_per_mtok must be a non-negative number of USD, got -1'),
    ({"pricing": {"overrides": [{"model": "m", "input_per_mtok": "cheap", "output_per_mtok": 1}]}},
     r"input_per_mtok must be a non-negative number of USD, got 'cheap'"),
    ({"pricing": {"overrides": [{"model": "m", "input_per_mtok": 1, "output_per_mtok": 1, "input_per_mtoks": 1}]}},
     r"input_per_mtoks is not an override key"),
    ({"pricing": {"overrides": [{"model": "m", "input_per_mtok": 1, "output_per_mtok": 1,
                                 "effective_from": "next week"}]}},
     r"effective_from must be a date such as 2026-11-01, got 'next week'"),
    ({"pricing": {"overrides": [{"model": "m", "input_per_mtok": 1, "output_per_mtok": 1},
                                {"model": "M", "input_per_mtok": 2, "output_per_mtok": 2}]}},
     r"#2 .*same model, provider and effective_from as override #1"),
])
def test_bad_pricing_config_names_the_file_and_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        pricing.load_pricing(Config.from_dict(raw, "agentlens.toml"))


def test_bad_pricing_config_fails_the_file_not_silently(tmp_path):
    raw = {"pricing": {"overrides": [{"model": "m", "output_per_mtok": 1}]}}
    with open_with(tmp_path, raw) as lens:
        s = lens.ingest(jsonl(tmp_path / "a.jsonl", doc(chat(T1, "c000000000000001", None, "m", 1, 1))))
    assert s.count("failed") == 1 and "input_per_mtok is required" in (s.files[0].message or "")


@pytest.mark.slow
def test_sample_traces_match_genai_prices_call_by_call(tmp_path):
    """Every priced call of the sample traces costs what genai-prices' own calc_price says."""
    with agentlens.open(tmp_path / "s.duckdb") as lens:
        lens.ingest(SAMPLES)
        rows = lens.sql("""SELECT s.*, r.model AS run_model FROM spans s JOIN runs r USING (run_id)
                           WHERE s.computed_cost_usd IS NOT NULL""").to_dicts()
        unpriced = lens.sql("SELECT DISTINCT model FROM spans WHERE price_source LIKE 'unpriced%'")["model"].to_list()
        # the calls priced are exactly the ones the runs' token totals count
        check = lens.sql("""
            SELECT r.run_id, r.input_tokens, r.output_tokens, sum(s.input_tokens) AS i, sum(s.output_tokens) AS o
            FROM runs r JOIN spans s ON s.run_id = r.run_id AND s.price_source IS NOT NULL GROUP BY ALL""")
        n_runs = lens.sql("SELECT count(*) AS n FROM runs WHERE input_tokens IS NOT NULL")["n"][0]
    assert len(rows) > 200 and unpriced == ["acme-finetune-v1"]
    for s in rows:
        model = s["model"] or s["run_model"]
        provider, _ = genai_model(model, s["provider"])
        want = calc_price(Usage(input_tokens=s["input_tokens"] or 0, cache_read_tokens=s["cached_input_tokens"] or 0,
                                cache_write_tokens=s["cache_write_input_tokens"] or 0,
                                output_tokens=s["output_tokens"] or 0),
                          model, provider_id=provider.id, genai_request_timestamp=s["started_at"])
        assert s["computed_cost_usd"] == pytest.approx(float(want.total_price), rel=1e-12, abs=1e-15), s["span_id"]
    assert check.height == n_runs
    assert (check["input_tokens"] == check["i"]).all() and (check["output_tokens"] == check["o"]).all()


@pytest.mark.real_traces
@pytest.mark.parametrize("name, expected", [
    # gpt-4o-mini-2024-07-18, two calls: 57 input (32 cached) + 80 input, 17 + 7 output:
    # (25 x 0.15 + 32 x 0.075 + 80 x 0.15 + 24 x 0.60) / 1e6 = (3.75 + 2.4 + 12 + 14.4) / 1e6 = 0.00003255
    ("openinference.otlp.jsonl", 32.55e-6),
    ("openllmetry.otlp.jsonl", 32.55e-6),
    ("openllmetry-0.47.3-legacy.otlp.jsonl", 32.55e-6),
    # opentelemetry-instrumentation-openai-v2 does not record cached tokens: all 137 at the input rate:
    # (137 x 0.15 + 24 x 0.60) / 1e6 = (20.55 + 14.4) / 1e6 = 0.00003495
    ("otel-v2.otlp.jsonl", 34.95e-6),
])
def test_real_instrumentation_traces(lens, real_traces, name, expected):
    lens.ingest(real_traces / "instrumentation_samples" / name)
    r = lens.runs().row(0, named=True)
    assert (r["input_tokens"], r["output_tokens"], r["llm_calls"]) == (137, 24, 2)
    assert r["computed_cost_usd"] == pytest.approx(expected, rel=1e-12)
    assert r["cost_usd"] == pytest.approx(expected, rel=1e-12) and r["unpriced_llm_calls"] == 0
    sources = lens.sql("SELECT DISTINCT price_source FROM spans WHERE price_source IS NOT NULL")["price_source"]
    assert sources.to_list() == ["genai-prices:openai/gpt-4o-mini"]


def test_migrating_a_0001_database_keeps_reported_costs(tmp_path):
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ)")
    schema.m0001_initial(con)
    con.execute("INSERT INTO schema_migrations VALUES ('0001_initial', now())")
    con.execute("INSERT INTO runs (run_id, cost_usd) VALUES ('old', 0.25)")
    con.close()
    with agentlens.open(db) as lens:
        r = run_row(lens, "old")
        assert r["reported_cost_usd"] == 0.25 and r["cost_usd"] == 0.25 and r["computed_cost_usd"] is None


def test_every_pricing_statement_parses(lens):
    for name, text in pricing.ALL_SQL.items():
        assert len(lens.con.extract_statements(text)) == 1, name
    assert {"PRICE_SET", "SPAN_COSTS", "SET_RUN_COSTS", "WHAT_IF_RUNS", "COST_MACRO"} <= set(pricing.ALL_SQL)


def test_sql_matches_calc_price_for_every_genai_prices_model():
    """Each model genai-prices knows, at seeded random days, times, token mixes and tier sizes: the
    SQL cost equals `calc_price`'s, or the call is unpriced because genai-prices has no token price
    for it (an image or audio model) rather than priced at $0."""
    import random
    import warnings

    from genai_prices import data_snapshot

    rng = random.Random(7)
    calls = []
    for prov in data_snapshot.get_snapshot().providers:
        for m in prov.models:
            for k in range(2):
                i = rng.choice([0, 10, 1000, 150_000, 250_000, 1_200_000])
                cr = rng.randint(0, i // 2)
                cw = rng.randint(0, (i - cr) // 2)
                o = rng.randint(0, 5000)
                calls.append({"run_id": f"{prov.id}/{m.id}/{k}", "span_id": "s", "is_root": False, "has_usage": True,
                              "at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=rng.randint(0, 10**8)),
                              "model": m.id, "provider": prov.id, "i": i, "cr": cr, "cw": cw, "o": o,
                              "r": rng.randint(0, o), "reported": None})
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("_calls", pl.DataFrame(calls).to_arrow())
    con.execute("CREATE TEMP TABLE _price_set AS SELECT * FROM _calls")
    con.execute(pricing.COST_MACRO)
    con.register("_prices", pricing.price_table(con.execute(pricing.PRICE_PAIRS).fetchall()).to_arrow())
    con.execute(tables.SPAN_COSTS.create())
    con.execute(pricing.SPAN_COSTS)
    got = dict(con.execute("SELECT run_id, computed_cost_usd FROM _span_costs").fetchall())
    matched = 0
    for c in calls:
        found = genai_model(c["model"], c["provider"])
        if found is None:
            assert got[c["run_id"]] is None
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = float(calc_price(Usage(input_tokens=c["i"], cache_read_tokens=c["cr"], cache_write_tokens=c["cw"],
                                          output_tokens=c["o"], output_reasoning_tokens=c["r"]),
                                    c["model"], provider_id=found[0].id, genai_request_timestamp=c["at"]).total_price)
        if got[c["run_id"]] is None:
            assert want == 0, c["run_id"]
        else:
            assert got[c["run_id"]] == pytest.approx(want, rel=1e-9, abs=1e-12), c["run_id"]
            matched += 1
    assert matched > 4000


@pytest.mark.slow
def test_runs_priced_before_they_are_stored_cost_what_pricing_them_after_gives(tmp_path, monkeypatch):
    """A file of new runs is priced from its staged spans before they are stored (pricing.price_staged_step,
    so that no row the file adds is updated); a file touching stored runs is priced after, by UPDATE. Both
    give the same costs, to the last bit, on every sample trace (tiny chunks: runs priced in many chunks)."""
    from agentlens.store import chunks as store

    monkeypatch.setattr(store, "BUILD_CHUNK_RUNS", 7)
    staged_calls = []

    def counted(lens):
        staged_calls.append(1)
        # a chunk's staged spans are its own runs' only (sql.CHUNK_NARROW): the whole file's, looked up per
        # chunk, made pricing grow with the square of the file
        narrow, chunk = (set(lens.sql(f"SELECT DISTINCT run_id FROM {t}")["run_id"]) for t in ("_narrow", "_affected"))
        assert narrow == chunk and 0 < len(chunk) <= 7
        pricing.price_staged_step(lens)

    # a run priced by its root (no call reports usage), whose model is the run's, from a call without usage
    ns = 1_763_000_000_000_000_000
    trace = "ab" * 16
    root_priced = jsonl(tmp_path / "root.jsonl", doc(
        span(trace, "a000000000000001", None, "invoke_agent", ns, ns + 10**9,
             {"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 1000,
              "gen_ai.usage.output_tokens": 100}),
        span(trace, "a000000000000002", "a000000000000001", "chat", ns + 10, ns + 10**8,
             {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}, kind=3)))

    def snapshot(db, staged):
        with agentlens.Lens(db, Config(), staged_steps=(counted,) if staged else ()) as lens:
            lens.ingest(SAMPLES, root_priced)
            return [lens.sql(q) for q in (
                "SELECT run_id, cost_usd, reported_cost_usd, computed_cost_usd, unpriced_llm_calls FROM runs "
                "ORDER BY run_id",
                "SELECT run_id, span_id, computed_cost_usd, price_source FROM spans ORDER BY run_id, span_id",
                "SELECT run_id, mode, span_id, explanation FROM failures ORDER BY ALL")]

    before = snapshot(tmp_path / "before.duckdb", staged=True)
    assert len(staged_calls) >= 5
    after = snapshot(tmp_path / "after.duckdb", staged=False)
    runs, spans, failures = before
    assert runs.height == 121 and runs["computed_cost_usd"].is_not_null().sum() > 50
    assert runs.filter(pl.col("run_id") == trace)["computed_cost_usd"].item() > 0  # at gpt-4o-mini's price
    assert spans["price_source"].is_not_null().sum() > 100 and failures.height > 0
    for b, a in zip(before, after, strict=True):
        assert b.equals(a)
