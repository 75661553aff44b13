from __future__ import annotations

import pytest

from agentlens.core.config import Config, ConfigError
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
