"""One definition of "rate limited" (agentlens.core.patterns.RATE_LIMIT): the texts it must and must not
match, read the same by Python and by DuckDB, and the golden signals, the rollups, the alerts' SLI and the
`rate_limited` failure mode agreeing run by run on real ingested traces."""

from __future__ import annotations

import datetime as dt

import pytest
from signals_data import BASE, Run, write

import agentlens
from agentlens.core import patterns
from agentlens.metrics import alerts as A
from agentlens.metrics import rollups as RU
from agentlens.metrics import signals as S

# What the failure-mode catalogue calls rate_limited: HTTP 429, RateLimitError, rate_limit_exceeded, provider
# 529 overload; and the providers' other names for it (Gemini, Bedrock, the HTTP reason phrase).
RATE_LIMITED = (
    "RateLimitError",
    "Error code: 429 - {'error': {'message': 'Rate limit reached; Used 196429', 'code': 'rate_limit_exceeded'}}",
    "rate_limit_exceeded",
    "HTTP 429",
    "429 Too Many Requests",
    "too_many_requests",
    "TooManyRequests",
    "Error code: 529 - overloaded_error",
    "Overloaded",
    "RESOURCE_EXHAUSTED: quota exceeded",
    "RESOURCE-EXHAUSTED",
    "ThrottlingException: Rate exceeded",
    "rate.limit hit",
    "(429)",
)
NOT_RATE_LIMITED = (
    "Used 196429",
    "503 Service Unavailable",
    "InternalServerError: Error code: 500",
    "order A-42900 not found",
    "request took 1429 ms",
    "used 1,429 tokens",
    "latency 1.429 s",
    "BadRequestError: context_length_exceeded",
    "Request timed out.",
    "APIConnectionError: Connection error.",
    "",
)


@pytest.mark.parametrize("text, expected", [(t, True) for t in RATE_LIMITED] + [(t, False) for t in NOT_RATE_LIMITED])
def test_rate_limit_pattern(lens, text, expected):
    assert patterns.is_rate_limited(None, text) is expected
    assert patterns.is_rate_limited(text, None) is expected  # the type alone says it too
    got = lens.con.execute("SELECT regexp_matches(?, ?)", [text, patterns.RATE_LIMIT]).fetchall()[0][0]
    assert got is expected  # DuckDB's RE2 reads the pattern as Python does


def test_there_is_one_rate_limit_pattern():
    names = [n for n, v in vars(patterns).items() if isinstance(v, str) and "429" in v]
    assert names == ["RATE_LIMIT"]


# Each run's LLM call failed with this (error.type, message); the run recovered (a later call succeeded).
CASES = (
    ("RateLimitError", "Error code: 429 - rate_limit_exceeded", True),
    ("APIStatusError", "too_many_requests", True),          # counted by the signals only, before
    ("ResourceExhausted", "RESOURCE-EXHAUSTED", True),       # counted by the classifier only, before
    ("OverloadedError", "Error code: 529 - overloaded", True),
    ("InternalServerError", "503 Service Unavailable", False),
    ("BadRequestError", "Used 196429 of your tokens", False),
)


def test_signals_rollups_alerts_and_the_classifier_agree(tmp_path):
    runs = []
    for i, (etype, message, _) in enumerate(CASES):
        r = Run(i + 1, BASE + dt.timedelta(minutes=i), 1000, feature=f"f{i}")
        r.llm("gpt-4o-mini", 10, 100, 100, 10, error=(etype, message))
        r.llm("gpt-4o-mini", 200, 100, 100, 10)
        runs.append(r)
    with agentlens.open(tmp_path / "rl.duckdb") as lens:
        lens.ingest(write(tmp_path / "rl.jsonl", runs))
        want = {f"f{i}": expected for i, (_, _, expected) in enumerate(CASES)}
        by_feature = S.signals(lens, by="feature")
        assert {r["feature"]: r["rate_limited_runs"] == 1 for r in by_feature.to_dicts()} == want
        assert {r["feature"]: r["rate_limited_calls"] == 1 for r in by_feature.to_dicts()} == want
        classified = set(lens.sql("SELECT r.feature FROM failures f JOIN runs r USING (run_id) "
                                  "WHERE f.mode = 'rate_limited'")["feature"])
        assert {f: f in classified for f in want} == want
        lens.con.execute("CHECKPOINT")
    with agentlens.open(tmp_path / "rl.duckdb") as lens:
        RU.rollup(lens, "1h")
        rolled = RU.signals(lens, by="feature")
        assert {r["feature"]: r["rate_limited_runs"] == 1 for r in rolled.to_dicts()} == want
        slo = A.Slo("rl", 0.5, sli="rate_limited")
        at = BASE + dt.timedelta(hours=1)
        events, bad = A.slo_counts(lens, slo, at, [dt.timedelta(hours=2)])[dt.timedelta(hours=2)]
        assert (events, bad) == (2 * len(CASES), sum(want.values()))
