"""LangSmith runs: recorded live from the real `langsmith` SDK (tests/langsmith_recorder.py), the
SDK's own ingest payload, dotted_order, sniffing and bad records. The golden pairs in
tests/golden/langsmith/ pin the rows of a committed recording, a bulk export (Parquet) and the v2
query shape."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest

from agentlens.adapters import langsmith
from conftest import ROOT

pytestmark = pytest.mark.slow

GOLDEN = ROOT / "tests" / "golden" / "langsmith"


@pytest.fixture(scope="module")
def recorded():
    """Runs sent by the real SDK: the agent answers once, then fails in its tool."""
    pytest.importorskip("langsmith")
    pytest.importorskip("openai")
    import langsmith_recorder

    return langsmith_recorder.record()


def test_live_recording_from_the_sdk(lens, tmp_path, recorded):
    import langsmith_recorder

    path = langsmith_recorder.write_jsonl(recorded, tmp_path / "runs.jsonl")
    s = lens.ingest(path)
    assert s.files[0].format == "langsmith" and not s.quarantined
    assert s.spans == 7  # run 1: chain, 2 LLM calls, tool; run 2: chain, 1 LLM call, tool

    ok, failed = lens.runs(order_by="started_at", descending=False).to_dicts()
    assert ok["source"] == "langsmith" and ok["agent_name"] == "weather-agent"
    # two chat calls: 57 in (32 of them cache reads) / 17 out, then 80 / 7
    assert (ok["input_tokens"], ok["output_tokens"], ok["cached_input_tokens"]) == (57 + 80, 17 + 7, 32)
    assert (ok["llm_calls"], ok["tool_calls"], ok["span_count"], ok["status"]) == (2, 1, 4, "ok")
    assert ok["model"] == "gpt-4o-mini-2024-07-18"  # the response's model, not the requested alias
    assert (ok["user_id"], ok["session_id"], ok["customer_id"], ok["feature"]) == ("u-42", "thread-7", "acme", "weather")
    assert ok["output"] == "It is rainy in Paris."

    assert failed["status"] == "error" and failed["session_id"] == "thread-8"
    assert (failed["input_tokens"], failed["output_tokens"], failed["llm_calls"]) == (57, 17, 1)

    spans = lens.spans(ok["run_id"]).to_dicts()
    assert Counter(s["kind"] for s in spans) == {"chain": 1, "llm": 2, "tool": 1}
    root = next(s for s in spans if s["parent_span_id"] is None)
    assert root["span_id"] == ok["run_id"] == ok["root_span_id"]  # LangSmith's trace id is the root run's id
    assert all(s["parent_span_id"] == root["span_id"] for s in spans if s is not root)
    chat1, chat2 = (s for s in spans if s["kind"] == "llm")
    assert chat1["provider"] == "openai" and chat1["finish_reason"] == "tool_calls"
    assert json.loads(chat1["tool_calls"]) == [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]
    assert [d["name"] for d in json.loads(chat1["tool_definitions"])] == ["get_weather"]
    assert [m["role"] for m in json.loads(chat2["input"])] == ["system", "user", "assistant", "tool"]
    assert json.loads(chat2["output"])[0]["content"] == "It is rainy in Paris."
    tool = next(s for s in spans if s["kind"] == "tool")
    assert (tool["tool_name"], json.loads(tool["tool_arguments"]), tool["tool_result"]) == (
        "get_weather", {"city": "Paris"}, "rainy")
    attrs = json.loads(root["attributes"])
    assert attrs["tags"] == ["prod"] and attrs["langsmith.run_type"] == "chain"
    assert attrs["metadata"]["thread_id"] == "thread-7"
    assert json.loads(root["resource_attributes"])["sdk"] == "langsmith-py"

    bad_tool = next(s for s in lens.spans(failed["run_id"]).to_dicts() if s["kind"] == "tool")
    assert (bad_tool["status"], bad_tool["error_type"], bad_tool["status_message"]) == (
        "error", "ValueError", "no weather station in Atlantis")


def test_the_sdk_ingest_payload_reads_the_same(tmp_path, recorded):
    # what the SDK posts to /runs/batch: {"post": [created runs], "patch": [their updates]}
    import langsmith_recorder

    import agentlens

    patch_keys = {"id", "trace_id", "dotted_order", "parent_run_id", "end_time", "outputs", "error", "events", "extra"}
    payload = {"post": [{k: v for k, v in r.items() if k not in ("end_time", "outputs", "error")} for r in recorded],
               "patch": [{k: v for k, v in r.items() if k in patch_keys} for r in recorded]}
    (tmp_path / "payload.json").write_text(json.dumps(payload))
    langsmith_recorder.write_jsonl(recorded, tmp_path / "runs.jsonl")
    rows = []
    for name in ("payload.json", "runs.jsonl"):
        with agentlens.open(tmp_path / f"{name}.duckdb") as lens:
            lens.ingest(tmp_path / name)
            rows.append(lens.sql("SELECT * EXCLUDE (ingested_at) FROM runs ORDER BY run_id").to_dicts())
    assert rows[0] == rows[1] and len(rows[0]) == 2


def test_dotted_order_gives_trace_and_parent():
    root = "01a1fd59-62a6-78c7-84a7-2409cecd5442"
    child = "01a1fd59-62fc-770c-9021-7ad288aadd58"
    dotted = f"20261121T090416038422Z{root}.20261121T090416124426Z{child}"
    assert langsmith.dotted_ids(dotted) == [root, child]
    from agentlens.core.config import Config

    row, note = langsmith.run_row({"id": child, "run_type": "llm", "dotted_order": dotted,
                                   "start_time": "2026-11-21T09:04:16.124426"}, Config(), "f")
    assert (row["run_id"], row["parent_span_id"], row["kind"], note) == (root, root, "llm", None)
    # a naive time is UTC; microseconds since the epoch
    utc = dt.datetime(2026, 11, 21, 9, 4, 16, 124426, tzinfo=dt.UTC)
    assert row["started_at"] == (utc - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


@pytest.mark.parametrize("name", ["sdk-recorded.jsonl", "bulk-export.parquet", "query-v2.jsonl"])
def test_formats_are_sniffed(lens, name):
    s = lens.ingest(GOLDEN / name)
    assert [f.format for f in s.files] == ["langsmith"]


def test_reingest_adds_nothing(lens):
    lens.ingest(GOLDEN)
    before = lens.sql("SELECT count(*) FROM spans").item()
    again = lens.ingest(GOLDEN)
    assert again.count("skipped_duplicate") == 3 and lens.sql("SELECT count(*) FROM spans").item() == before


def test_bad_runs_are_quarantined_and_the_rest_stored(lens, tmp_path):
    good = json.loads((GOLDEN / "query-v2.jsonl").read_text().splitlines()[0])
    lines = [
        json.dumps(good),
        json.dumps({k: v for k, v in good.items() if k != "id"}),                       # no id
        json.dumps({"id": "r-9", "run_type": "llm", "parent_run_id": "r-1",              # parent, but no trace
                    "start_time": "2026-03-02T10:00:00"}),
        json.dumps(dict(good, id="2e1d8f3b-0009-4c7e-8fa0-000000000009", start_time="soon")),
        '{"id": "r-3", "run_type": ',                                                    # cut off
    ]
    p = tmp_path / "runs.jsonl"
    p.write_text("\n".join(lines))
    s = lens.ingest(p)
    assert s.spans == 1
    q = {r["line"]: r for r in lens.quarantine().to_dicts()}
    assert q[2]["kind"] == "missing_field" and "no id" in q[2]["reason"]
    assert q[3]["kind"] == "missing_field" and "trace_id" in q[3]["reason"]
    assert q[4]["kind"] == "wrong_type" and "start_time" in q[4]["reason"]
    assert q[5]["kind"] == "truncated"
    assert not any(r["stored"] for r in q.values())
