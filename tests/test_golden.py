"""Golden pairs: `tests/golden/<format>/NAME.<ext>` is an input file and `NAME.expected.json` the
canonical rows it must give (only the columns listed are compared; JSON-valued text columns are
compared as parsed JSON). A new case is a new pair of files, not new test code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p for p in GOLDEN.rglob("*") if p.is_file() and not p.name.endswith(".expected.json"))


def _value(v):
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def _check(actual: dict, expected: dict, what: str) -> None:
    for k, want in expected.items():
        got = actual[k]
        if isinstance(want, list | dict):
            got = _value(got)
        if isinstance(want, float) and got is not None:
            assert got == pytest.approx(want, rel=1e-9), f"{what}.{k}"
        else:
            assert got == want, f"{what}.{k}: {got!r} != {want!r}"


@pytest.mark.parametrize("case", CASES, ids=[str(c.relative_to(GOLDEN)) for c in CASES])
def test_golden(lens, case):
    expected = json.loads(case.with_name(case.name.split(".")[0] + ".expected.json").read_text())
    lens.ingest(case, format=case.parent.name)
    runs = {r["run_id"]: r for r in lens.runs().to_dicts()}
    assert sorted(runs) == sorted(r["run_id"] for r in expected["runs"])
    for want in expected["runs"]:
        _check(runs[want["run_id"]], want, f"run {want['run_id']}")
        spans = {s["span_id"]: s for s in lens.spans(want["run_id"]).to_dicts()}
        for sw in expected["spans"]:
            if sw["span_id"] in spans:
                _check(spans[sw["span_id"]], sw, f"span {sw['span_id']}")
    all_spans = set(lens.sql("SELECT span_id FROM spans")["span_id"])
    assert {s["span_id"] for s in expected["spans"]} <= all_spans
    assert sorted(lens.quarantine()["kind"]) == sorted(expected["quarantine"])


# Time to first token of streamed calls, recorded by tests/recorder (scenario `healthy_streamed`: `stream=True`
# against the fake server's server-sent chunks, the first after fake_openai.STREAM_FIRST_CHUNK_S): OpenInference
# adds a "First Token Stream Event", OpenLLMetry a `gen_ai.content.completion.chunk` event per chunk; the official
# openai-v2 instrumentation records neither.
@pytest.mark.parametrize(("lib", "recorded"), [("openinference", True), ("openllmetry", True), ("otel-v2", False)])
def test_time_to_first_token_of_streamed_calls(lens, lib, recorded):
    import sys

    from agentlens.metrics import signals

    sys.path.insert(0, str(Path(__file__).parent / "recorder"))
    from fake_openai import STREAM_FIRST_CHUNK_S

    expected = json.loads((GOLDEN / "otlp" / f"recorded-{lib}.expected.json").read_text())
    (streamed,) = [rid for rid, v in expected["failures"].items() if v["scenario"] == "healthy_streamed"]
    lens.ingest(GOLDEN / "otlp" / f"recorded-{lib}.otlp.jsonl.gz")
    calls = lens.spans(streamed).filter(kind="llm").to_dicts()
    assert len(calls) == 2 and all(c["output_tokens"] for c in calls)
    if not recorded:
        assert all(c["time_to_first_token_ms"] is None for c in calls)
        return
    for c in calls:
        assert STREAM_FIRST_CHUNK_S * 1000 <= c["time_to_first_token_ms"] < c["duration_ms"]
    # only the streamed calls have one, and the golden signals show it
    assert lens.sql("SELECT count(*) FROM spans WHERE time_to_first_token_ms IS NOT NULL").item() == 2
    row = signals.llm_calls(lens).to_dicts()[0]
    assert row["ttft_calls"] == 2 and row["ttft_p50_ms"] >= STREAM_FIRST_CHUNK_S * 1000
