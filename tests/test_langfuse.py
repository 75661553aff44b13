"""Langfuse exports: the twenty real framework traces (single-trace downloads in
../shared/real_traces/langfuse_framework_traces/), the usage semantics, the trace record, the UI
and blob-storage layouts (golden pairs in tests/golden/langfuse/ cover each layout's rows; here:
sniffing, legacy traces/ + observations/ joining in either order, bad records)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from agentlens.adapters import langfuse
from conftest import ROOT

GOLDEN = ROOT / "tests" / "golden" / "langfuse"
FRAMEWORK = "langfuse_framework_traces"

# file -> (trace id, run input tokens, output tokens, cached, reasoning, llm calls, span kinds, tool names,
#          models of the LLM spans). Values read off each file's observations by hand:
# - tokens: the LLM spans with usage and no LLM span with usage below them (wrappers are skipped), each
#   from the OTel attributes when the download kept them, else from `usageDetails`;
# - kinds: each observation, plus the trace record (kind chain) where no observation is a root (C#).
FILES = {
    # OpenAIChat.invoke (OpenInference, agno's own numbers) wraps the Langfuse OpenAI integration's
    # "chat gpt-4o-mini" generation, the actual API call: 663+163 in, 225+20 out
    "agno-2025-06-11.trace.json": (
        "080130871f53145aecf7c29d5dfb6e4c", 663 + 163, 225 + 20, None, None, 2,
        {"agent": 1, "llm": 4, "tool": 1}, ["duckduckgo_search"], ["gpt-4o-mini"]),
    "autogen-2025-06-06.trace.json": (
        "1b72c51fabed12ae7df83bfd4a09f545", 41, 3, None, None, 1,
        {"llm": 1, "other": 1}, [], ["gpt-4o"]),
    # beeai's OpenInference instrumentation emits each event of a call (start / success / finish, an agent's
    # update / partial_update) as its own LLM, TOOL or AGENT span: the `start` span is the call, the others are
    # `other` (3 model calls, 1 tool call, 3 agent steps + the root). Langfuse counted the input of the three
    # "start" generations (1195 + 1988 + 2359) and no output
    "beeai-2025-08-01.trace.json": (
        "096fc09a30ab90d2431778f9ee2b3936", 1195 + 1988 + 2359, None, None, None, 3,
        {"agent": 4, "chain": 3, "llm": 3, "tool": 1, "other": 18}, ["tool.search.wikipedia"], ["gpt-4o-mini"]),
    # LangSmith OTel: four claude turns 5/94, 5/56, 5/53, 19/29; the root is a langsmith chain
    "claude-agent-2025-12-22.trace.json": (
        "097f1d8982fa909b8cffb14a166ec272", 5 + 5 + 5 + 19, 94 + 56 + 53 + 29, None, None, 4,
        {"chain": 1, "llm": 4, "tool": 2}, ["mcp__weather__get_weather"], ["claude-sonnet-4-5-20250929"]),
    # llm.token_count.prompt 190 (prompt_details.cache_read 0), completion 164 (reasoning 0)
    "crewai-2025-07-11.trace.json": (
        "a287bb31e317433610d8827617471140", 190, 164, 0, 0, 1,
        {"agent": 1, "chain": 1, "llm": 1, "other": 3}, [], ["gpt-4o-mini"]),
    # three gemini calls 3004/167, 2546/47, 2497/200; the orchestrate_tools spans carry totals, not added
    "csharp-agent-with-gemini-2026-03-09.trace.json": (
        "933dba1e9783f89d5d8bb032f041a2de", 3004 + 2546 + 2497, 167 + 47 + 200, None, None, 3,
        {"chain": 1, "llm": 3, "other": 3, "tool": 2}, ["final_result", "get_custom_report"], ["gemini-2.5-flash"]),
    "google-adk-2025-08-28.trace.json": (
        "b82a0bdc1994fc5d1c8576ca032543f7", 39 + 28, 6 + 3, None, None, 2,
        {"agent": 1, "chain": 1, "llm": 2, "tool": 1}, ["say_hello"], ["gemini-2.0-flash"]),
    # prompt 6, completion 2055 of which reasoning 1104; total 2061 = 6 + 2055 (reasoning inside)
    "google-gemini-2025-08-01.trace.json": (
        "9f2f0fe0228fd81a9fe75882934b384a", 6, 2055, None, 1104, 1, {"llm": 1}, [], ["gemini-2.5-flash"]),
    "koog-2025-08-26.trace.json": (
        "dff173a675b759ce1b70e522b27d6846", 168 + 47, 19 + 106, None, None, 2,
        {"agent": 2, "llm": 2, "other": 5, "tool": 2}, ["ByeTool", "HelloTool"], ["gpt-4o"]),
    # Langfuse SDK (LangChain callback): usageDetails exclude details. Call 1: input 179 + input_audio 0
    # + input_cache_read 0 = 179; output 35 + output_reasoning 64 + output_audio 0 = 99 (total 278).
    # Call 2: 142/24. The tool ran as a plain span whose output is a LangChain ToolMessage.
    "langgraph-js-2025-10-30.trace.json": (
        "2c1581dd9cecdafb6ca091b83d7ea99a", 179 + 142, 99 + 24, 0, 64, 2,
        {"llm": 2, "other": 17, "tool": 1}, ["get_weather"], ["gpt-5-mini-2025-08-07"]),
    "langgraph-python-2025-08-22.trace.json": (
        "e1fde3efec57ce8a69bafd3fb928a7eb", 60 + 108, 15 + 51, 0, 0, 2,
        {"llm": 2, "other": 6, "tool": 1}, ["Web-Search"], ["gpt-4o-2024-08-06"]),
    "llamaindex-2025-06-05.trace.json": (
        "12ea412956f99347b0503c1144acd0ec", 13, 81, 0, 0, 1, {"llm": 1, "other": 1}, [], ["gpt-4o"]),
    # the invoke_agent span's own 44/180 is not added to its two chat calls 77/86 + 216/20
    "microsoft-agent-2025-12-17.trace.json": (
        "8e419d3288419b5d944270505640e183", 77 + 216, 86 + 20, None, None, 2,
        {"agent": 1, "llm": 2, "tool": 1}, ["get_weather"], ["gpt-5-mini-2025-08-07"]),
    "openai-agents-2025-09-30.trace.json": (
        "fee618f96dc31e0ca38b2f7b26eb8b29", 85 + 55, 29 + 15, 0, 0, 2,
        {"agent": 2, "llm": 2, "tool": 1}, ["get_weather"], ["gpt-4.1-2025-04-14"]),
    # pydantic-ai "qa_agent run" (agent_name attribute) is an agent span carrying the call's totals
    "pydantic-ai-2025-06-06.trace.json": (
        "25f4bdeebaab60e6e1bee7e8469554bc", 31, 96, None, None, 1,
        {"agent": 1, "llm": 1, "other": 1}, [], ["gpt-4o-2024-08-06"]),
    "pydantic-ai-tools-2025-06-06.trace.json": (
        "25f4bdeebaab60e6e1bee7e8469554bc", 31, 96, None, None, 1,
        {"agent": 1, "llm": 1, "other": 1}, [], ["gpt-4o-2024-08-06"]),
    "pydantic-ai-tools-2025-12-04.trace.json": (
        "7a38edd8123db47ad8dcb8aa4c5e3926", 417 + 131 + 502 + 265, 53 + 69 + 14 + 73, None, None, 4,
        {"agent": 3, "llm": 4, "other": 2, "tool": 3},
        ["get_dad_joke_suggestion", "get_one_liner_suggestion", "get_pun_suggestion"], ["gpt-4o-mini-2024-07-18"]),
    "pydantic-ai-with-gemini-2025-12-24.trace.json": (
        "f68601af42c4a35e1d5e4699de569c1f", 40, 159, None, None, 1, {"llm": 1}, [], ["gemini-2.5-flash"]),
    # ai.generateText wraps ai.generateText.doGenerate (62/85 in both); Langfuse's own numbers for the
    # wrapper (14/43) were a tokenizer estimate: the attributes win and that estimate's cost is dropped
    "vercel-aisdk-2025-11-17.trace.json": (
        "df41e597d0a85e0d7a6ae8ebfaa70aa0", 62, 85, None, None, 1,
        {"llm": 2, "tool": 1}, ["getWeather"], ["gpt-5", "gpt-5-2025-08-07"]),
    # prompt 5, completion 845, total 2023: Gemini's 1173 thinking tokens are in the total only (reasoning_from_total)
    "vertex-ai-2025-08-01.trace.json": (
        "0298935e31d66d7de9487cac935d7d99", 5, 845 + 1173, None, 1173, 1, {"llm": 1}, [],
        ["projects/vertex-ai-integration-467711/locations/europe-central2/publishers/google/models/gemini-2.5-flash"]),
}


@pytest.mark.real_traces
@pytest.mark.parametrize("name", sorted(FILES))
def test_framework_trace(lens, real_traces, name):
    trace, inp, out, cached, reasoning, llm_calls, kinds, tools, models = FILES[name]
    path = real_traces / FRAMEWORK / name
    doc = json.loads(path.read_text())
    summary = lens.ingest(path)
    assert summary.files[0].format == "langfuse", "sniffed without --format"
    roots = [o["id"] for o in doc["observations"] if not o["parentObservationId"]]
    # each observation; the trace record only when no observation is a root of its own
    assert summary.spans == len(doc["observations"]) + (0 if roots else 1)

    run = lens.runs(run_id=trace).row(0, named=True)
    assert run["source"] == "langfuse"
    assert (run["input_tokens"], run["output_tokens"]) == (inp, out)
    assert (run["cached_input_tokens"], run["reasoning_tokens"]) == (cached, reasoning)
    assert run["llm_calls"] == llm_calls
    assert run["status"] == "ok" and run["error_count"] == 0

    spans = lens.spans(trace)
    assert dict(Counter(spans["kind"].to_list())) == kinds
    tool_spans = spans.filter(spans["kind"] == "tool")
    assert sorted(set(tool_spans["tool_name"].to_list())) == tools
    llm_models = spans.filter(spans["kind"] == "llm")["model"].to_list()
    assert sorted(set(llm_models)) == models and None not in llm_models
    # every observation is its span, with its parent
    by_id = {s["span_id"]: s for s in spans.to_dicts()}
    # (one whose parent the download does not hold hangs under the trace record, its parent's id kept)
    ids = {o["id"] for o in doc["observations"]}
    for o in doc["observations"]:
        if o["parentObservationId"] in ids or not o["parentObservationId"]:
            assert by_id[o["id"]]["parent_span_id"] == o["parentObservationId"]
        else:
            assert by_id[o["id"]]["parent_span_id"] == langfuse.TRACE_SPAN_ID
            kept = json.loads(by_id[o["id"]]["attributes"])["langfuse.observation.parent_id"]
            assert kept == o["parentObservationId"]
    # one root: the root observation, carrying the trace record's fields, else the trace record
    root = by_id[roots[0]] if roots else by_id[langfuse.TRACE_SPAN_ID]
    assert [s["span_id"] for s in by_id.values() if s["parent_span_id"] is None] == [root["span_id"]]
    assert langfuse.TRACE_SPAN_ID not in by_id or not roots
    assert json.loads(root["attributes"])["langfuse.trace.name"] == doc["trace"]["name"]
    assert run["root_span_id"] == root["span_id"]


@pytest.mark.slow
@pytest.mark.real_traces
def test_all_twenty_together(lens, real_traces):
    folder = real_traces / FRAMEWORK
    first = lens.ingest(folder)
    assert first.count("ingested") == 20 and first.count("failed") == 0
    # two files are the same pydantic-ai trace in another order: its spans are stored once
    assert lens.sql("SELECT count(*) FROM runs").item() == 19
    # no quarantine note: the C# agent's root observation never reached Langfuse, and what hung under it
    # hangs under the trace record, as Langfuse draws it (test_framework_trace)
    assert lens.quarantine().is_empty()
    again = lens.ingest(folder)
    assert again.count("skipped_duplicate") == 20 and again.spans == 0


@pytest.mark.real_traces
def test_langgraph_generation_details(lens, real_traces):
    lens.ingest(real_traces / FRAMEWORK / "langgraph-js-2025-10-30.trace.json")
    spans = {s["span_id"]: s for s in lens.spans("2c1581dd9cecdafb6ca091b83d7ea99a").to_dicts()}
    gen = spans["0856a1825ccee968"]  # usageDetails input 179, output 35, output_reasoning 64, total 278
    assert (gen["input_tokens"], gen["output_tokens"], gen["reasoning_tokens"], gen["cached_input_tokens"]) == (
        179, 35 + 64, 64, 0)
    assert gen["cost_usd"] == pytest.approx(0.00024275)  # costDetails.total
    assert gen["provider"] == "openai"  # metadata.ls_provider (the LangChain callback's metadata)
    assert json.loads(gen["output"])[0]["role"] == "assistant"
    first = spans["8f0ee27d91863fde"]
    assert json.loads(first["tool_calls"]) == [
        {"id": "call_VEZJgIQLgzcb80IIyQJm7JCi", "name": "get_weather", "arguments": {"city": "San Francisco"}}]
    tool = spans["c3a547a43cb47b18"]
    assert (tool["kind"], tool["tool_name"], tool["tool_call_id"]) == (
        "tool", "get_weather", "call_VEZJgIQLgzcb80IIyQJm7JCi")
    assert tool["tool_result"] == "It's always sunny in San Francisco!"
    assert json.loads(tool["tool_arguments"]) == {"city": "San Francisco"}


@pytest.mark.real_traces
def test_beeai_event_spans_count_once(lens, real_traces):
    lens.ingest(real_traces / FRAMEWORK / "beeai-2025-08-01.trace.json")
    spans = {s["name"]: s for s in lens.spans("096fc09a30ab90d2431778f9ee2b3936").to_dicts()}
    # a model call: its start span is the call (input, usage), its success and finish spans are events of it
    assert spans["backend.openai.chat.start-16"]["kind"] == "llm"
    assert spans["backend.openai.chat.start-16"]["input_tokens"] == 2359
    assert (spans["backend.openai.chat.success-16"]["kind"], spans["backend.openai.chat.finish-16"]["kind"]) == (
        "other", "other")
    # the success span keeps what it recorded (the answer, streamed: a message per chunk); it lost its `target`
    # attribute to the SDK's 128-attribute limit, so the kind comes from its name
    assert json.loads(spans["backend.openai.chat.success-16"]["output"])[0]["role"] == "assistant"
    # a tool call: start (the arguments), success (the result), finish
    assert (spans["tool.search.wikipedia.start-12"]["kind"], spans["tool.search.wikipedia.start-12"]["tool_name"]) == (
        "tool", "tool.search.wikipedia")
    assert spans["tool.search.wikipedia.success-12"]["kind"] == "other"
    assert spans["tool.search.wikipedia.success-12"]["output"].startswith('[{"description": "Barcelona')
    # agent steps: start is the agent, its updates are events
    assert (spans["agent.react.start-4"]["kind"], spans["agent.react.update-13"]["kind"]) == ("agent", "other")
    run = lens.runs().row(0, named=True)
    assert (run["llm_calls"], run["tool_calls"]) == (3, 1)  # were 5 and 3


@pytest.mark.real_traces
def test_thinking_tokens_in_the_total_only_are_stored_and_priced(lens, real_traces):
    # OpenInference on Vertex AI: llm.token_count.prompt 5, completion 845, total 2023, no reasoning count;
    # Langfuse priced 5 + 845 tokens ($0.00085). The 1173 thinking tokens are output, priced at gemini-2.5-flash's
    # $2.50 / M output: 5 x $0.30 / M + 2018 x $2.50 / M.
    lens.ingest(real_traces / FRAMEWORK / "vertex-ai-2025-08-01.trace.json")
    run = lens.runs().row(0, named=True)
    assert (run["input_tokens"], run["output_tokens"], run["reasoning_tokens"]) == (5, 2018, 1173)
    assert run["reported_cost_usd"] is None  # Langfuse's cost left out the thinking tokens
    assert run["cost_usd"] == run["computed_cost_usd"] == pytest.approx(5 * 0.30e-6 + 2018 * 2.50e-6)
    # google-gemini reports its reasoning (1104) inside completion (2055) and total 2061 = 6 + 2055: unchanged
    lens.ingest(real_traces / FRAMEWORK / "google-gemini-2025-08-01.trace.json")
    gem = lens.runs(run_id="9f2f0fe0228fd81a9fe75882934b384a").row(0, named=True)
    assert (gem["output_tokens"], gem["reasoning_tokens"]) == (2055, 1104)


def test_reasoning_from_a_total_only_when_nothing_else_explains_it():
    from agentlens.adapters.semconv import reasoning_from_total

    row = {"input_tokens": 5, "output_tokens": 845, "reasoning_tokens": None}
    assert reasoning_from_total(row, 2023) and (row["output_tokens"], row["reasoning_tokens"]) == (2018, 1173)
    given = {"input_tokens": 6, "output_tokens": 2055, "reasoning_tokens": 1104}
    assert not reasoning_from_total(given, 3000)  # the dialect's own count wins
    cache = {"input_tokens": 100, "output_tokens": 10, "reasoning_tokens": None, "cached_input_tokens": 40}
    assert not reasoning_from_total(cache, 150)  # an input that left out its cache reads
    assert not reasoning_from_total({"input_tokens": 5, "output_tokens": 5, "reasoning_tokens": None}, 10)
    # Langfuse usageDetails with a total above input + output: stored, and Langfuse's cost (of fewer tokens) dropped
    from agentlens.adapters import langfuse
    from agentlens.core.config import Config

    obs = {"id": "o1", "traceId": "t1", "type": "GENERATION", "name": "gen", "startTime": "2026-01-05T09:00:00Z",
           "model": "gemini-2.5-flash", "usageDetails": {"input": 5, "output": 845, "total": 2023},
           "costDetails": {"total": 0.00085}}
    row, _ = langfuse.observation_row(obs, {}, Config(), "x.json")
    assert (row["output_tokens"], row["reasoning_tokens"], row["cost_usd"]) == (2018, 1173, None)


@pytest.mark.real_traces
def test_otel_attributes_and_trace_fields_are_kept(lens, real_traces):
    lens.ingest(real_traces / FRAMEWORK / "csharp-agent-with-gemini-2026-03-09.trace.json")
    run = lens.runs().row(0, named=True)
    # the trace's user, session and environment (the root observation never arrived)
    assert (run["user_id"], run["session_id"], run["environment"]) == (
        "g.aprozeanu", "9714061f-20c0-4d98-9220-1dc7df15c3c2", "preprod")
    assert run["agent_name"] == "agentic-clientinsights"  # service.name from the resource attributes
    gen = lens.sql("SELECT * FROM spans WHERE span_id = 'c651c1dac855f97e'").row(0, named=True)
    attrs = json.loads(gen["attributes"])
    assert attrs["gen_ai.usage.input_tokens"] == "2546"  # the original OTel attribute, as sent
    assert attrs["langfuse.observation.type"] == "GENERATION"
    assert attrs["langfuse.observation.usage_details"] == {"input": 2546, "output": 47, "total": 2593}
    assert json.loads(gen["resource_attributes"])["service.name"] == "agentic-clientinsights"
    assert gen["scope_name"] == "Experimental.Microsoft.Extensions.AI"  # metadata.scope.name


def test_usage_semantics():
    u = langfuse.usage
    # the details were subtracted from input/output: 100 + 40 + 10 + 5 = 155 = total -> add them back
    assert u({"input": 100, "input_cache_read": 40, "output": 10, "output_reasoning": 5, "total": 155}) == {
        "input_tokens": 140, "output_tokens": 15, "cached_input_tokens": 40,
        "cache_write_input_tokens": None, "reasoning_tokens": 5}
    # older ingestion kept them inside: 6 + 2055 = 2061 = total -> as given
    assert u({"input": 6, "completion_details.reasoning": 1104, "output": 2055, "total": 2061})[
        "output_tokens"] == 2055
    # no total: Langfuse's current semantics (details excluded)
    assert u({"input": 10, "input_cached_tokens": 90, "input_cache_creation_5m": 3, "output": 1}) == {
        "input_tokens": 103, "output_tokens": 1, "cached_input_tokens": 90,
        "cache_write_input_tokens": 3, "reasoning_tokens": None}
    assert u({}) is None and u({"unit": "TOKENS"}) is None
    assert u({"input": "12", "output": 3.0})["input_tokens"] == 12  # numbers as text (CSV)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.iterdir() if not p.name.endswith(".expected.json")))
def test_export_layouts_are_sniffed(lens, name):
    s = lens.ingest(GOLDEN / name)
    assert [f.format for f in s.files] == ["langfuse"] and s.count("ingested") == 1


@pytest.mark.slow
def test_legacy_traces_and_observations_join_in_either_order(tmp_path):
    import agentlens

    runs = []
    for i, order in enumerate((("blob-traces.csv", "blob-observations.csv"),
                               ("blob-observations.csv", "blob-traces.csv"))):
        with agentlens.open(tmp_path / f"{i}.duckdb") as lens:
            lens.ingest(*(GOLDEN / n for n in order))
            runs.append(lens.runs().drop("ingested_at").row(0, named=True))
            assert lens.quarantine().height == 0
    assert runs[0] == runs[1]
    r = runs[0]
    # user and session come from the traces/ file, tokens from the observations/ file
    # (2000 + 150 in: the first generation's 1200 + 800 cache reads; 90 + 40 out)
    assert (r["user_id"], r["session_id"], r["input_tokens"], r["output_tokens"]) == ("u-42", "s-9", 2150, 130)
    assert r["span_count"] == 4 + 1 and r["root_span_id"] == "a1b2c3d4e5f60001"


def test_non_trace_files_of_an_export_are_skipped(lens, tmp_path):
    export = tmp_path / "proj-1"
    scores = export / "scores" / "2026-03-02.jsonl"
    scores.parent.mkdir(parents=True)
    scores.write_text(json.dumps({
        "id": "s1", "timestamp": "2026-03-02 10:00:00.000000", "project_id": "p", "environment": "default",
        "trace_id": "t1", "observation_id": None, "session_id": None, "dataset_run_id": None, "name": "quality",
        "value": 1, "source": "API", "comment": None, "data_type": "NUMERIC", "string_value": None,
        "created_at": "2026-03-02 10:00:00.000000", "updated_at": "2026-03-02 10:00:00.000000"}) + "\n")
    manifest = export / "manifests" / "2026-03-02.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"files": ["observations_v2/2026-03-02.parquet"]}))
    s = lens.ingest(export)
    assert s.count("skipped_unknown") == 2 and s.spans == 0


@pytest.mark.slow
def test_bad_records_are_quarantined_and_the_rest_stored(lens, tmp_path):
    good = json.loads((GOLDEN / "blob-observations_v2.jsonl").read_text().splitlines()[1])
    no_trace = dict(good, id="x1", trace_id="")
    bad_time = dict(good, id="x2", start_time="yesterday")
    ends_early = dict(good, id="x3", end_time="2026-03-02 09:00:00.000000")
    p = tmp_path / "observations_v2.jsonl"
    p.write_text("\n".join([json.dumps(good), json.dumps(no_trace), "{not json", json.dumps(bad_time),
                            json.dumps(ends_early)]) + "\n")
    s = lens.ingest(p)
    assert s.spans == 2  # the good one and the one stored without its end time
    q = {r["line"]: r for r in lens.quarantine().to_dicts()}
    assert q[2]["kind"] == "missing_field" and "traceId" in q[2]["reason"] and not q[2]["stored"]
    assert q[3]["kind"] == "malformed_json"
    assert q[4]["kind"] == "wrong_type" and "startTime" in q[4]["reason"] and "yesterday" in q[4]["reason"]
    assert q[5]["kind"] == "end_before_start" and q[5]["stored"]
    assert json.loads(q[2]["raw"])["id"] == "x1"  # the raw record is kept


@pytest.mark.slow
def test_error_level_and_status_message(lens):
    lens.ingest(GOLDEN / "ui-observations.json")
    tool = lens.sql("SELECT * FROM spans WHERE span_id = 'obs-tool'").row(0, named=True)
    assert (tool["status"], tool["status_message"]) == ("error", "order service timeout")
    run = lens.runs().row(0, named=True)
    assert run["status"] == "ok" and run["error_count"] == 1  # the agent survived the failed tool


@pytest.mark.slow
def test_trace_record_gives_the_run_its_context(lens, tmp_path):
    # a single-trace download whose observations carry no trace fields: the trace record does
    doc = {
        "trace": {"id": "t-1", "name": "support-bot", "timestamp": "2026-01-05T09:00:00.000Z",
                  "userId": "alice", "sessionId": "conv-7", "environment": "prod", "tags": ["beta"],
                  "input": "\"hi\"", "output": "\"hello\"", "metadata": "{\"customer_id\":\"acme\"}", "latency": 1.5},
        "observations": [{"id": "o-1", "traceId": "t-1", "type": "GENERATION", "name": "chat",
                          "startTime": "2026-01-05T09:00:00.100Z", "endTime": "2026-01-05T09:00:01.400Z",
                          "parentObservationId": None, "model": "gpt-4o-mini", "level": "DEFAULT",
                          "usageDetails": {"input": 20, "output": 5, "total": 25}, "costDetails": {"total": 0.00001},
                          "input": "[{\"role\":\"user\",\"content\":\"hi\"}]", "output": "\"hello\""}],
    }
    p = tmp_path / "t-1.json"
    p.write_text(json.dumps(doc, indent=2))
    lens.ingest(p)
    r = lens.runs().row(0, named=True)
    assert (r["user_id"], r["session_id"], r["environment"], r["customer_id"]) == ("alice", "conv-7", "prod", "acme")
    # one root: the root observation, with the trace record merged into it (no second root span)
    assert r["root_span_id"] == "o-1" and r["span_count"] == 1
    assert (r["input"], r["output"]) == ('[{"content":"hi","role":"user"}]', "hello")  # the root generation's
    assert (r["agent_name"], r["input_tokens"], r["output_tokens"], r["llm_calls"]) == ("support-bot", 20, 5, 1)
    assert r["duration_ms"] == 1300.0  # the root observation's
    attrs = json.loads(lens.sql("SELECT attributes FROM spans WHERE span_id = 'o-1'").item())
    assert attrs["langfuse.trace.tags"] == ["beta"] and attrs["user.id"] == "alice"
    assert attrs["metadata"] == {"customer_id": "acme"}  # the trace's metadata, as the root had none


@pytest.mark.slow
def test_trace_record_is_the_root_when_no_observation_is(lens, tmp_path):
    # the root observation never reached Langfuse: the trace record stands in as the run's root
    doc = {
        "trace": {"id": "t-2", "name": "support-bot", "timestamp": "2026-01-05T09:00:00.000Z", "userId": "alice",
                  "input": "\"hi\"", "output": "\"hello\""},
        "observations": [{"id": "o-2", "traceId": "t-2", "type": "GENERATION", "name": "chat",
                          "startTime": "2026-01-05T09:00:00.100Z", "endTime": "2026-01-05T09:00:01.400Z",
                          "parentObservationId": "lost-root", "model": "gpt-4o-mini",
                          "usageDetails": {"input": 20, "output": 5, "total": 25}}],
    }
    p = tmp_path / "t-2.json"
    p.write_text(json.dumps(doc))
    lens.ingest(p)
    r = lens.runs().row(0, named=True)
    assert (r["root_span_id"], r["span_count"], r["input"], r["output"]) == ("trace", 2, "hi", "hello")
    # the observation that named the lost root as its parent hangs under the trace record: one tree
    (o,) = lens.sql("SELECT parent_span_id, attributes FROM spans WHERE span_id = 'o-2'").to_dicts()
    assert o["parent_span_id"] == "trace"
    assert json.loads(o["attributes"])["langfuse.observation.parent_id"] == "lost-root"
    # the trace span ends with its last observation (09:00:01.400), not at timestamp + latency
    assert r["duration_ms"] == 1400.0


def test_read_is_pure(tmp_path):
    # the adapter is bytes in, rows out: no database involved
    from agentlens.core.config import Config

    with (GOLDEN / "ui-observations.json").open("rb") as f:
        batches = list(langfuse.read(f, "x.json", Config()))
    rows = [r for b in batches if b.spans is not None for r in b.spans.to_pylist()]
    assert sorted(r["span_id"] for r in rows) == ["obs-gen-1", "obs-gen-2", "obs-root", "obs-tool"]
    assert all(r["source"] == "langfuse" and r["source_file"] == "x.json" for r in rows)



@pytest.mark.slow
def test_trace_rows_without_totals(lens, tmp_path):
    # a traces-table row of a trace whose observations reported nothing, environment "default"
    # (Langfuse's name for "none given") and an aggregated level ERROR (some observation failed)
    row = {"id": "e4b0d7c5", "timestamp": "2026-03-02T11:05:00.000Z", "name": "refund-agent", "userId": "u-8",
           "sessionId": None, "environment": "default", "tags": [], "bookmarked": False, "public": False,
           "input": None, "output": None, "metadata": None, "latency": None,
           "usage": {"promptTokens": 0, "completionTokens": 0, "totalTokens": 0}, "totalCost": None,
           "level": "ERROR", "errorCount": 1, "observationCount": 2, "inputTokens": 0, "outputTokens": 0}
    p = tmp_path / "traces.json"
    p.write_text(json.dumps([row]))
    lens.ingest(p)
    span = lens.spans("e4b0d7c5").row(0, named=True)
    assert span["environment"] is None and span["ended_at"] is None
    assert (span["input_tokens"], span["output_tokens"], span["cost_usd"]) == (0, 0, None)
    # the export does not say which observation failed: the run stays ok, the counts are kept
    assert span["status"] == "ok"
    attrs = json.loads(span["attributes"])
    assert (attrs["langfuse.trace.level"], attrs["langfuse.trace.error_count"]) == ("ERROR", 1)
