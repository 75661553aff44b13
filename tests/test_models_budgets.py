from __future__ import annotations

import datetime as dt

import pytest
from test_costs import fixture_file

import agentlens
from agentlens.core.config import Config, ConfigError
from agentlens.metrics import alerts as A
from agentlens.metrics import costs
from agentlens.metrics import signals as S
from agentlens.pricing.budgets import Budgets, load_budgets
from agentlens.pricing.models import model_info, model_table


def test_context_windows_from_genai_prices_and_config():
    assert model_info("gpt-4o-mini-2024-07-18", "openai").context_window == 128_000
    assert model_info("claude-3-5-sonnet-20241022", "anthropic").context_window == 200_000
    unknown = model_info("acme-finetune-v1", "openai")
    assert unknown.context_window is None and unknown.source is None
    cfg = Config.from_dict({"models": {"acme-finetune-v1": {"context_window": 16384}}})
    assert model_info("acme-finetune-v1", "openai", cfg).context_window == 16384
    t = model_table([("gpt-4o", "openai"), ("gpt-4o", "openai"), ("acme-finetune-v1", None)], cfg)
    assert t.rows() == [("gpt-4o", "openai", 128000, "genai-prices", "gpt-4o"),
                        ("acme-finetune-v1", None, 16384, "config", None)]


def test_bad_model_config():
    with pytest.raises(ConfigError, match=r'\[models."m"\].context_window must be a positive integer'):
        model_info("m", None, Config.from_dict({"models": {"m": {"context_window": "big"}}}))


def test_budgets():
    b = load_budgets(Config.from_dict({"budgets": {
        "run_usd": 4, "run_usd_hard": 20.0,
        "daily_usd": {"feature": {"refund": 50, "*": 100}, "customer_id": {"c1": 10}}}}))
    assert (b.run_usd, b.run_usd_hard) == (4.0, 20.0)
    assert b.daily_cap("feature", "refund") == 50.0 and b.daily_cap("feature", "billing") == 100.0
    assert b.daily_cap("customer_id", "c2") is None and b.daily_cap("user_id", "u") is None
    assert load_budgets(Config()) == Budgets()


@pytest.mark.parametrize("raw, message", [
    ({"budgets": {"run_usd": -1}}, r"\[budgets\].run_usd must be a positive number"),
    ({"budgets": {"run_usd": 5, "run_usd_hard": 1}}, r"run_usd_hard \(1.0\) is below run_usd"),
    ({"budgets": {"per_run": 5}}, r"\[budgets\].per_run is not a budget"),
    ({"budgets": {"daily_usd": {"team": {"a": 1}}}}, r"\[budgets.daily_usd\].team is not a dimension"),
])
def test_bad_budgets(raw, message):
    with pytest.raises(ConfigError, match=message):
        load_budgets(Config.from_dict(raw, "agentlens.toml"))


# --- one definition of "a run over its budget" ------------------------------------------------------------
# The cost fixture of test_costs: r1 0.10, r2 0.30, r3 0.20, r4 0.05, r5 no cost. With only a hard stop set,
# cost attribution said r2 was over it while the signals counted no run over budget and the classifier
# judged runs against its own default ($4): the run cap is run_usd, else run_usd_hard, for all of them.
@pytest.mark.parametrize("caps, over, levels", [
    ({"run_usd_hard": 0.20}, {"r2"}, {"r2": "hard stop"}),  # r3 costs the cap exactly: not over it
    ({"run_usd": 0.10, "run_usd_hard": 0.25}, {"r2", "r3"}, {"r2": "hard stop", "r3": "alarm"}),
    ({}, set(), {}),
])
def test_costs_signals_alerts_and_the_classifier_agree_on_runs_over_budget(tmp_path, caps, over, levels):
    # the fixture's hand-set costs are the headline (they disagree with the price list on purpose)
    cfg = Config.from_dict({"pricing": {"headline_cost": "reported"}, **({"budgets": caps} if caps else {})})
    budgets = load_budgets(cfg)
    with agentlens.open(tmp_path / "b.duckdb", cfg) as lens:
        lens.ingest(fixture_file(tmp_path), format="agent_runs")
        ids = dict(lens.sql("SELECT run_id, cost_usd FROM runs").rows())
        assert {r for r, c in ids.items() if budgets.over(c)} == over
        assert {r: budgets.level(c) for r, c in ids.items() if budgets.level(c)} == levels
        df = costs.runs_over_budget(lens)
        assert set(df["run_id"]) == over and dict(zip(df["run_id"], df["level"], strict=True)) == levels
        n = S.signals(lens).row(0, named=True)["runs_over_budget"]
        assert n == (len(over) if caps else None)
        flagged = set(lens.sql("SELECT run_id FROM failures WHERE mode = 'budget_exceeded' "
                               "AND explanation LIKE '%cost $%'")["run_id"])
        assert flagged == over
        at = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
        if caps:
            rule = A.Threshold("over", "runs_over_budget", dt.timedelta(days=40), above=0)
            alert = A.evaluate(lens, A.Rules((rule,)), at).alerts[0]
            assert alert.details["value"] == len(over) and alert.firing == bool(over)
            slo = A.Slo("cost", 0.5, sli="cost", max_cost_usd=budgets.run_cap)
            counts = A.slo_counts(lens, slo, at, [dt.timedelta(days=40)])
            assert counts[dt.timedelta(days=40)] == (4, len(over))  # r5 has no cost: not an event
