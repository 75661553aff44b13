"""Ingest semantics: dedupe, spans spread over lines and files, counting each LLM call once,
dimensions, interrupted ingests."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import agentlens
from agentlens import pricing
from agentlens.adapters import otlp
from agentlens.ingest import sql as Q
from agentlens.store.chunks import SPAN_WEIGHT_SQL
from conftest import ROOT, SAMPLES, doc, jsonl, span

T = "5b8efff798038103d269b633813fc60c"
NS = 1_795_000_000_000_000_000


def llm(sid, parent, inp, out, cached=None, model="gpt-4o", start=10, **extra):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
             "gen_ai.usage.input_tokens": inp, "gen_ai.usage.output_tokens": out, **extra}
    if cached is not None:
        attrs["gen_ai.usage.cache_read.input_tokens"] = cached
    return span(T, sid, parent, f"chat {model}", NS + start, NS + start + 5, attrs)


def agent(sid="a000000000000001", parent=None, usage=None, start=0, end=100, **attrs):
    a = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "bot", **attrs}
    if usage:
        a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"] = usage
    return span(T, sid, parent, "invoke_agent bot", NS + start, NS + end, a)


@pytest.mark.slow
def test_agent_usage_totals_are_not_added_again(lens, tmp_path):
    # the invoke_agent span carries the sum of its children, as real frameworks do
    root = agent(usage=(300, 30))
    p = jsonl(tmp_path / "t.jsonl", doc(llm("b000000000000001", root["spanId"], 100, 10, cached=40),
                                        llm("b000000000000002", root["spanId"], 200, 20, start=20), root))
    lens.ingest(p)
    r = lens.runs().row(0, named=True)
    assert (r["input_tokens"], r["output_tokens"], r["cached_input_tokens"], r["llm_calls"]) == (300, 30, 40, 2)


def test_wrapper_llm_span_is_not_counted_twice(lens, tmp_path):
    # a framework LLM span (OpenInference LLM) wrapping the provider SDK's span, both with usage
    root = agent()
    wrapper = span(T, "c000000000000001", root["spanId"], "ChatOpenAI", NS + 5, NS + 50,
                   {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o",
                    "llm.token_count.prompt": 100, "llm.token_count.completion": 10})
    inner = llm("c000000000000002", "c000000000000001", 100, 10)
    lens.ingest(jsonl(tmp_path / "t.jsonl", doc(root, wrapper, inner)))
    r = lens.runs().row(0, named=True)
    assert (r["input_tokens"], r["output_tokens"], r["llm_calls"]) == (100, 10, 1)


def test_root_usage_is_used_when_no_llm_span_reports_any(lens, tmp_path):
    lens.ingest(jsonl(tmp_path / "t.jsonl", doc(agent(usage=(70, 7)))))
    r = lens.runs().row(0, named=True)
    assert (r["input_tokens"], r["output_tokens"], r["llm_calls"]) == (70, 7, 0)


@pytest.mark.slow
def test_spans_spread_over_lines_and_files_in_any_order(lens, tmp_path):
    root = agent()
    a = llm("d000000000000001", root["spanId"], 11, 1)
    b = llm("d000000000000002", root["spanId"], 22, 2, start=30)
    jsonl(tmp_path / "1.jsonl", doc(b))
    jsonl(tmp_path / "2.jsonl", doc(root), doc(a))
    lens.ingest(tmp_path / "1.jsonl")
    assert lens.runs().row(0, named=True)["input_tokens"] == 22
    lens.ingest(tmp_path / "2.jsonl")
    r = lens.runs().row(0, named=True)
    assert (r["input_tokens"], r["span_count"], r["root_span_id"], r["agent_name"]) == (33, 3, root["spanId"], "bot")
    assert lens.quarantine().height == 0


@pytest.mark.slow
def test_encodings_base64_ids_enum_names_numbers_snake_case(lens, tmp_path):
    root = agent()
    child = llm("e000000000000001", root["spanId"], 5, 6)
    # base64 ids, enum names, int64 as JSON numbers
    child["traceId"] = base64.b64encode(bytes.fromhex(T)).decode()
    child["spanId"] = base64.b64encode(bytes.fromhex("e000000000000001")).decode()
    child["parentSpanId"] = base64.b64encode(bytes.fromhex(root["spanId"])).decode()
    child["kind"] = "SPAN_KIND_CLIENT"
    child["status"] = {"code": "STATUS_CODE_ERROR", "message": "boom"}
    child["startTimeUnixNano"] = int(child["startTimeUnixNano"])
    for a in child["attributes"]:
        if "intValue" in a["value"]:
            a["value"]["intValue"] = int(a["value"]["intValue"])
    # the root in snake_case keys, uppercase hex, parent given as all zeros
    snake = {"resource_spans": [{"resource": {"attributes": []}, "scope_spans": [{"spans": [{
        "trace_id": T.upper(), "span_id": root["spanId"].upper(), "parent_span_id": "0" * 16,
        "name": root["name"], "start_time_unix_nano": root["startTimeUnixNano"],
        "end_time_unix_nano": root["endTimeUnixNano"], "attributes": root["attributes"]}]}]}]}
    lens.ingest(jsonl(tmp_path / "t.jsonl", doc(child), snake))
    spans = {s["span_id"]: s for s in lens.spans(T).to_dicts()}
    assert set(spans) == {"e000000000000001", root["spanId"]}
    assert spans["e000000000000001"]["parent_span_id"] == root["spanId"]
    assert spans["e000000000000001"]["status"] == "error"
    assert spans["e000000000000001"]["status_message"] == "boom"
    assert spans["e000000000000001"]["input_tokens"] == 5
    # the root closed OK, but its only call failed and nothing came after it: the run ended in that error
    assert lens.runs().row(0, named=True)["status"] == "error"


def test_every_anyvalue_type(lens, tmp_path):
    s = span(T, "f000000000000001", None, "x", NS, NS + 1)
    s["attributes"] = [
        {"key": "s", "value": {"stringValue": "a"}}, {"key": "b", "value": {"boolValue": True}},
        {"key": "i", "value": {"intValue": "9007199254740993"}}, {"key": "d", "value": {"doubleValue": 1.5}},
        {"key": "arr", "value": {"arrayValue": {"values": [{"intValue": 1}, {"stringValue": "x"}]}}},
        {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": False}}]}}},
        {"key": "by", "value": {"bytesValue": "AQID"}}, {"key": "empty", "value": {}},
    ]
    lens.ingest(jsonl(tmp_path / "t.jsonl", doc(s)))
    attrs = json.loads(lens.spans(T)["attributes"][0])
    assert attrs == {"s": "a", "b": True, "i": 9007199254740993, "d": 1.5, "arr": [1, "x"],
                     "kv": {"k": False}, "by": "AQID", "empty": None}


def test_run_status_is_the_roots(lens, tmp_path):
    root = agent(start=0, end=100)
    root["status"] = {"code": 2, "message": "agent crashed"}
    tool = span(T, "9000000000000001", root["spanId"], "execute_tool t", NS + 1, NS + 2,
                {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "t"}, status={"code": 2})
    lens.ingest(jsonl(tmp_path / "t.jsonl", doc(root, tool)))
    r = lens.runs().row(0, named=True)
    assert r["status"] == "error" and r["error_count"] == 2 and r["tool_calls"] == 1


def _oi(sid, parent, kind, start, end, error=False):
    """A span of the OpenAI Agents SDK's shape (OpenInference kinds), failed with `error`."""
    return span(T, sid, parent, kind.lower(), NS + start, NS + end, {"openinference.span.kind": kind},
                status={"code": 2, "message": f"{kind} failed"} if error else None)


# (spans under the root AGENT -> CHAIN -> AGENT, as (id, parent, kind, start, end, failed)), expected status
MAIN_PATH_CASES = {
    "inner agent failed (provider error, step cap)": ([("c3", "c2", "AGENT", 2, 90, True),
                                                      ("t1", "c3", "CHAIN", 3, 80, False),
                                                      ("l1", "t1", "LLM", 4, 20, True)], "error"),
    "last turn failed (unknown tool)": ([("c3", "c2", "AGENT", 2, 90, False), ("t1", "c3", "CHAIN", 3, 40, False),
                                         ("t2", "c3", "CHAIN", 41, 80, True), ("l1", "t2", "LLM", 42, 60, False)],
                                        "error"),
    "last response failed (incomplete answer)": ([("c3", "c2", "AGENT", 2, 90, False),
                                                  ("t1", "c3", "CHAIN", 3, 80, False),
                                                  ("l1", "t1", "LLM", 4, 70, True)], "error"),
    "a failed response retried with success": ([("c3", "c2", "AGENT", 2, 90, False),
                                                ("t1", "c3", "CHAIN", 3, 80, False),
                                                ("l1", "t1", "LLM", 4, 20, True), ("l2", "t1", "LLM", 21, 70, False)],
                                               "ok"),
    "an earlier turn failed, the last one did not": ([("c3", "c2", "AGENT", 2, 90, False),
                                                      ("t1", "c3", "CHAIN", 3, 40, True),
                                                      ("t2", "c3", "CHAIN", 41, 80, False)], "ok"),
    "the last span is a failed tool (handed to the model)": ([("c3", "c2", "AGENT", 2, 90, False),
                                                              ("t1", "c3", "CHAIN", 3, 80, False),
                                                              ("l1", "t1", "LLM", 4, 20, False),
                                                              ("x1", "t1", "TOOL", 21, 70, True)], "ok"),
    "a failed agent under a tool (agent as a tool) is not on the path": (
        [("c3", "c2", "AGENT", 2, 90, False), ("t1", "c3", "CHAIN", 3, 80, False),
         ("x1", "t1", "TOOL", 4, 70, False), ("s1", "x1", "AGENT", 5, 60, True)], "ok"),
}


@pytest.mark.parametrize("case", sorted(MAIN_PATH_CASES))
def test_run_status_follows_the_main_path(lens, tmp_path, case):
    """A run is `error` when it ended by an exception on its main path, though its root closed OK
    (the OpenAI Agents SDK's instrumentation; the recorded corpus pins it in test_failures_frameworks)."""
    below, want = MAIN_PATH_CASES[case]
    ids = {"c1": "c000000000000001", "c2": "c000000000000002"}
    for sid, *_ in below:
        ids[sid] = sid.ljust(16, "0")
    spans = [_oi(ids["c1"], None, "AGENT", 0, 100), _oi(ids["c2"], ids["c1"], "CHAIN", 1, 95)]
    spans += [_oi(ids[sid], ids[parent], kind, start, end, failed) for sid, parent, kind, start, end, failed in below]
    lens.ingest(jsonl(tmp_path / "t.jsonl", doc(*spans)))
    assert lens.runs().row(0, named=True)["status"] == want


def test_run_status_walk_ends_on_a_parent_cycle(lens, tmp_path):
    a = span(T, "aa00000000000001", "aa00000000000002", "a", NS, NS + 10, {"openinference.span.kind": "AGENT"})
    b = span(T, "aa00000000000002", "aa00000000000001", "b", NS + 1, NS + 5, {"openinference.span.kind": "CHAIN"},
             status={"code": 2})
    lens.ingest(jsonl(tmp_path / "t.jsonl", doc(a, b)))
    assert lens.runs().row(0, named=True)["status"] == "error"


@pytest.mark.slow
def test_failed_tool_in_a_surviving_run_leaves_it_ok(lens, tmp_path):
    root = agent()
    tool = span(T, "9000000000000001", root["spanId"], "execute_tool t", NS + 1, NS + 2,
                {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "t"}, status={"code": 2},
                events=[{"timeUnixNano": str(NS + 2), "name": "exception", "attributes": [
                    {"key": "exception.type", "value": {"stringValue": "TimeoutError"}},
                    {"key": "exception.message", "value": {"stringValue": "timed out"}}]}])
    lens.ingest(jsonl(tmp_path / "t.jsonl", doc(root, tool)))
    r = lens.runs().row(0, named=True)
    assert r["status"] == "ok" and r["error_count"] == 1
    t = lens.spans(T).filter(kind="tool").row(0, named=True)
    assert (t["error_type"], t["status_message"]) == ("TimeoutError", "timed out")
    assert json.loads(t["events"])[0]["attributes"]["exception.type"] == "TimeoutError"


def test_a_users_session_beats_a_framework_conversation_id():
    from agentlens.adapters.semconv import dimensions
    from agentlens.core.config import Config

    # pydantic-ai: its own `gen_ai.conversation.id` per run beside the user's metadata on the same span
    span_attrs = {"gen_ai.conversation.id": "01a2435e-2a67", "metadata": json.dumps({"session_id": "sess-7"})}
    assert dimensions(Config(), span_attrs)["session_id"] == "sess-7"
    assert dimensions(Config(), {"gen_ai.conversation.id": "conv-1"})["session_id"] == "conv-1"  # alone, it is used
    assert dimensions(Config(), {"session.id": "s-1", **span_attrs})["session_id"] == "s-1"
    # a key the config names comes before every default
    cfg = Config.from_dict({"dimensions": {"session_id": ["gen_ai.conversation.id"]}})
    assert dimensions(cfg, span_attrs)["session_id"] == "01a2435e-2a67"


@pytest.mark.slow
def test_dimensions_default_keys_and_config(tmp_path):
    root = agent(**{"user.id": "u-1", "metadata": json.dumps({"customer_id": "c-9", "feature": "refund"})})
    child = llm("a100000000000001", root["spanId"], 1, 1, **{"session.id": "s-1", "app.team": "growth"})
    p = jsonl(tmp_path / "t.jsonl", doc(root, child, resource={"deployment.environment.name": "prod"}))
    with agentlens.open(tmp_path / "a.duckdb") as lens:
        lens.ingest(p)
        r = lens.runs().row(0, named=True)
    assert (r["user_id"], r["customer_id"], r["feature"], r["session_id"], r["environment"]) == (
        "u-1", "c-9", "refund", "s-1", "prod")

    cfg = tmp_path / "agentlens.toml"
    cfg.write_text('[dimensions]\nfeature = ["app.team"]\n')
    with agentlens.open(tmp_path / "b.duckdb", config=cfg) as lens:
        lens.ingest(p)
        # root first: the root has metadata.feature (a default); app.team is only on the child,
        # and the root is searched with every key before the other spans are
        assert lens.runs().row(0, named=True)["feature"] == "refund"
    cfg.write_text('[dimensions]\nfeature = "app.team"\ncustomer_id = ["nope"]\n')
    with agentlens.open(tmp_path / "c.duckdb", config=cfg) as lens:
        lens.ingest(jsonl(tmp_path / "u.jsonl", doc(agent(), child)))
        assert lens.runs().row(0, named=True)["feature"] == "growth"


def test_bad_config_is_a_clear_error(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[dimensions]\nteam = ['x']\n")
    with pytest.raises(agentlens.ConfigError, match=r"bad.toml: \[dimensions\].team is not a dimension"):
        agentlens.open(tmp_path / "x.duckdb", config=cfg)


@pytest.mark.slow
def test_reingest_adds_nothing(lens, tmp_path):
    root = agent()
    p = jsonl(tmp_path / "t.jsonl", doc(root, llm("b000000000000001", root["spanId"], 100, 10)))
    lens.ingest(p)
    before = lens.sql("SELECT * EXCLUDE (ingested_at) FROM runs")
    assert lens.ingest(p).count("skipped_duplicate") == 1
    # the same spans in a different file (a copy with other bytes): no new rows either
    (tmp_path / "copy.jsonl").write_text(p.read_text() + "\n")
    s = lens.ingest(tmp_path / "copy.jsonl")
    assert s.count("ingested") == 1 and s.spans == 0
    assert lens.sql("SELECT count(*) n FROM spans")["n"][0] == 2
    assert lens.sql("SELECT * EXCLUDE (ingested_at) FROM runs").equals(before)


@pytest.mark.slow
def test_ctrl_c_mid_file_leaves_the_database_as_before(lens, tmp_path, monkeypatch):
    root = agent()
    first = jsonl(tmp_path / "a.jsonl", doc(root))
    lens.ingest(first)
    before = (lens.sql("SELECT count(*) n FROM spans")["n"][0], lens.sql("SELECT count(*) n FROM runs")["n"][0])
    monkeypatch.setattr(otlp, "BATCH_SPANS", 1)
    real_read = otlp.read

    def interrupted(stream, filename, config):
        for i, batch in enumerate(real_read(stream, filename, config)):
            if i == 2:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(otlp, "read", interrupted)
    other = "6c8efff798038103d269b633813fc60c"
    p = jsonl(tmp_path / "b.jsonl", *[doc(span(other, f"{i:016x}", None, "x", NS, NS + 1)) for i in range(1, 6)])
    with pytest.raises(KeyboardInterrupt):
        lens.ingest(p)
    after = (lens.sql("SELECT count(*) n FROM spans")["n"][0], lens.sql("SELECT count(*) n FROM runs")["n"][0])
    assert after == before
    assert lens.sql("SELECT count(*) n FROM ingested_files")["n"][0] == 1
    monkeypatch.setattr(otlp, "read", real_read)
    assert lens.ingest(p).spans == 5  # and the file is not marked as ingested


def test_ctrl_c_while_duckdb_runs_a_statement_stops_the_ingest(lens, tmp_path, monkeypatch):
    """DuckDB turns a Ctrl-C that lands while it runs a statement into an error of its own ("Query
    interrupted"): that is the user stopping the ingest, not a bad file to record as failed and go past."""
    import duckdb

    from agentlens.ingest import publish as P

    def interrupted(*args, **kwargs):
        raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")

    monkeypatch.setattr(P, "_publish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        lens.ingest(SAMPLES)
    assert lens.sql("SELECT count(*) n FROM ingested_files")["n"][0] == 0
    assert lens.sql("SELECT count(*) n FROM quarantine")["n"][0] == 0  # nothing recorded as a failed file


KILL_CHILD = """
import sys, time
import agentlens
from agentlens.adapters import otlp

otlp.BATCH_SPANS = 1000
real_read = otlp.read

def read_then_wait(stream, filename, config):
    for i, batch in enumerate(real_read(stream, filename, config)):
        yield batch
        if i == 3:  # four batches are in the open transaction: say so, and wait to be killed
            print("mid-file", flush=True)
            time.sleep(120)

otlp.read = read_then_wait
agentlens.open(sys.argv[1]).ingest(sys.argv[2])
print("finished", flush=True)
"""


@pytest.mark.slow
def test_killed_process_mid_file_leaves_the_database_intact(tmp_path):
    """SIGKILL in the middle of a file's transaction: the database opens and holds nothing of it."""
    db = tmp_path / "k.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(jsonl(tmp_path / "small.jsonl", doc(agent())))
    big = tmp_path / "big.jsonl"
    with big.open("w") as f:
        for i in range(5_000):
            t = f"{i + 1:032x}"
            f.write(json.dumps(doc(span(t, "a000000000000001", None, "x", NS, NS + 5, {"p": "x" * 500}),
                                   span(t, "b000000000000001", "a000000000000001", "y", NS, NS + 5))) + "\n")
    proc = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(db), str(big)], cwd=ROOT,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == b"mid-file\n"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert list(tmp_path.glob(".k.duckdb.stage-*")), "the killed ingest left its staging folder"
    with agentlens.open(db) as lens:
        assert not list(tmp_path.glob(".k.duckdb.stage-*"))  # swept by the next writer
        assert lens.sql("SELECT count(*) n FROM spans")["n"][0] == 1
        assert lens.sql("SELECT count(*) n FROM runs")["n"][0] == 1
        assert lens.sql("SELECT count(*) n FROM ingested_files")["n"][0] == 1
        assert lens.ingest(big).spans == 10_000


def test_paths_that_do_not_exist(lens, tmp_path):
    with pytest.raises(agentlens.IngestError, match=r"nope\.jsonl: no such file"):
        lens.ingest(tmp_path / "nope.jsonl")


def test_default_db_path(monkeypatch, tmp_path):
    monkeypatch.delenv("AGENTLENS_DB", raising=False)
    assert agentlens.default_db_path() == "agentlens.duckdb"
    monkeypatch.setenv("AGENTLENS_DB", str(tmp_path / "env.duckdb"))
    with agentlens.open() as lens:
        assert Path(lens.path) == tmp_path / "env.duckdb"


def test_pipeline_steps_see_every_touched_run_inside_the_file_transaction(tmp_path):
    seen: list[list[str]] = []

    def record(lens):
        seen.append(sorted(r[0] for r in lens.con.execute("SELECT run_id FROM _affected").fetchall()))

    def explode(lens):
        raise RuntimeError("step failed")

    root = agent()
    otlp_file = jsonl(tmp_path / "t.jsonl", doc(root, llm("b000000000000001", root["spanId"], 1, 1)))
    csv_file = tmp_path / "agent_runs.csv"
    csv_file.write_text("id,user_id,request,response,tokens_in,tokens_out,cost_usd,created_at\n"
                        '7,u,"{}",ok,1,1,0.1,2026-11-10T10:00:00Z\n')
    with agentlens.Lens(tmp_path / "a.duckdb", steps=(record,)) as lens:
        lens.ingest(otlp_file, csv_file)
    assert seen == [[T], ["7"]]

    with agentlens.Lens(tmp_path / "b.duckdb", steps=(explode,)) as lens:
        s = lens.ingest(otlp_file)
        assert s.count("failed") == 1 and "step failed" in s.files[0].message
        assert lens.sql("SELECT count(*) n FROM spans")["n"][0] == 0  # the whole file rolled back


@pytest.mark.slow
def test_chunked_build_gives_the_same_rows(tmp_path, monkeypatch):
    """Runs are built and the pipeline steps run in chunks of runs (bounded memory): tiny chunks
    must give exactly what one chunk gives, costs and failure modes included."""
    from agentlens.store import chunks as store
    from conftest import SAMPLES

    def snapshot(db):
        with agentlens.open(db) as lens:
            lens.ingest(SAMPLES)
            return (lens.sql("SELECT * EXCLUDE (ingested_at) FROM runs ORDER BY run_id"),
                    lens.sql("SELECT run_id, mode, span_id, severity, explanation FROM failures "
                             "ORDER BY ALL"))

    whole = snapshot(tmp_path / "whole.duckdb")
    monkeypatch.setattr(store, "BUILD_CHUNK_RUNS", 7)
    chunked = snapshot(tmp_path / "chunked.duckdb")
    assert whole[0].height == 120 and whole[1].height > 0
    assert whole[0].equals(chunked[0]) and whole[1].equals(chunked[1])


@pytest.mark.slow
def test_runs_with_long_prompts_are_built_in_chunks_that_fit_the_memory_limit(tmp_path, monkeypatch):
    """600 runs whose root and LLM call carry a 40 KB prompt (49 MB of OTLP) at a 256 MB DuckDB limit:
    built 20,000 runs at a time, they ran out of memory (the roots' attributes are parsed as JSON, several
    times their size). Weighed by their long text, they are built in several chunks and all go in."""
    prompt = ("Summarise the attached contract, clause by clause. " * 800)[:40_000]
    docs = []
    for i in range(600):
        t, at = f"{i + 1:032x}", NS + i * 1_000_000_000
        docs.append(doc(
            span(t, "00000000000000a1", None, "agent", at, at + 10**9,
                 {"openinference.span.kind": "AGENT", "input.value": f"{i} {prompt}", "output.value": "done"}),
            span(t, "00000000000000b1", "00000000000000a1", "llm", at + 10, at + 10**8,
                 {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o",
                  "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": prompt,
                  "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": "ok",
                  "llm.token_count.prompt": 10_000, "llm.token_count.completion": 5}, kind=3)))
    path = jsonl(tmp_path / "long.jsonl", *docs)
    monkeypatch.setenv("AGENTLENS_MEMORY_LIMIT", "256MB")
    with agentlens.open(tmp_path / "long.duckdb") as lens:
        res = lens.ingest(path).files[0]
        assert (res.status, res.message) == ("ingested", None)
        assert lens.con.execute("SELECT count(DISTINCT chunk) FROM _rebuild").fetchall()[0][0] > 1
        assert lens.sql("SELECT count(*) FROM runs WHERE length(input) > 40000 AND llm_calls = 1").item() == 600
        # the staged weights (Arrow) and store.SPAN_WEIGHT_SQL (stored spans, for `classify`) are one measure
        weights = lens.con.execute(f"SELECT (SELECT sum(bytes) FROM _rebuild), sum({SPAN_WEIGHT_SQL}) FROM spans")
        staged, stored = weights.fetchall()[0]
        assert staged == stored > 600 * 5 * 40_000


@pytest.mark.slow
def test_runs_with_long_tool_results_are_classified_within_the_memory_limit(tmp_path, monkeypatch):
    """400 runs each with a 150 KB JSON tool result (65 MB of OTLP) at a 512 MB DuckDB limit: classifying
    them parsed each result once per field it checks (~15 times), and every parse holds a vector's worth of
    results; they ran out of memory. Parsed three times, they go in, and a failure reported in the result
    (`"status": "error"`) is still found."""
    items = [{"id": i, "text": "lorem ipsum dolor sit amet " * 4} for i in range(1150)]
    docs = []
    for i in range(400):
        t, at = f"{i + 1:032x}", NS + i * 1_000_000_000
        result = json.dumps({"status": "error" if i == 7 else "ok", "items": items})
        docs.append(doc(
            span(t, "00000000000000a1", None, "invoke_agent bot", at, at + 10**9,
                 {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "bot"}),
            span(t, "00000000000000c1", "00000000000000a1", "execute_tool search", at + 10, at + 10**8,
                 {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search",
                  "gen_ai.tool.call.arguments": '{"q": "x"}', "gen_ai.tool.call.result": result})))
    path = jsonl(tmp_path / "tools.jsonl", *docs)
    monkeypatch.setenv("AGENTLENS_MEMORY_LIMIT", "512MB")
    with agentlens.open(tmp_path / "tools.duckdb") as lens:
        res = lens.ingest(path).files[0]
        assert (res.status, res.message) == ("ingested", None)
        found = lens.sql("SELECT run_id, mode, explanation FROM failures").rows()
        assert found == [(f"{8:032x}", "silent_tool_failure",
                          "search failed (status: error) and the run still ended ok, with no successful retry of search")]


@pytest.mark.slow
def test_out_of_memory_is_reported_as_such(tmp_path, monkeypatch):
    """A limit too low for a file: the file fails with a message that says so and what to do, the
    database keeps nothing of it, and the quarantine records why (kind out_of_memory)."""
    prompt = "x" * 200_000
    path = jsonl(tmp_path / "big.jsonl", *[doc(span(f"{i + 1:032x}", "00000000000000a1", None, "agent", NS, NS + 5,
                                                    {"input.value": prompt + str(i)})) for i in range(300)])
    monkeypatch.setenv("AGENTLENS_MEMORY_LIMIT", "16MB")
    with agentlens.open(tmp_path / "oom.duckdb") as lens:
        res = lens.ingest(path).files[0]
        assert res.status == "failed"
        assert "DuckDB ran out of memory at its limit of 16MB" in res.message
        assert "nothing of the file was stored" in res.message and "raise $AGENTLENS_MEMORY_LIMIT" in res.message
        assert lens.sql("SELECT count(*) FROM spans").item() == 0
        assert lens.sql("SELECT kind FROM quarantine").item() == "out_of_memory"


def test_parent_cycle_still_gives_one_run(lens, tmp_path):
    # a broken writer: two spans naming each other as parent, no root
    a = span(T, "aa00000000000001", "aa00000000000002", "a", NS, NS + 10)
    b = span(T, "aa00000000000002", "aa00000000000001", "b", NS + 1, NS + 5)
    lens.ingest(jsonl(tmp_path / "t.jsonl", doc(a, b)))
    r = lens.runs().row(0, named=True)
    assert (r["span_count"], r["root_span_id"]) == (2, None)
    assert lens.ingest(jsonl(tmp_path / "u.jsonl", doc(a, b), doc(a))).spans == 0  # and re-ingest adds nothing


def test_a_run_whose_parents_form_a_cycle_is_priced_like_it_is_built(tmp_path):
    """Building and pricing share one definition of a run's calls and root (sql.RUN_CALLS_CTES):
    a run with no top span is built around its earliest span, and priced from it too."""
    a = span(T, "ab00000000000001", "ab00000000000002", "invoke_agent bot", NS, NS + 10,
             {"gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "gpt-4o-mini",
              "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100})
    b = span(T, "ab00000000000002", "ab00000000000001", "x", NS + 1, NS + 5)
    with agentlens.open(tmp_path / "c.duckdb") as lens:
        lens.ingest(jsonl(tmp_path / "t.jsonl", doc(a, b)))
        r = lens.runs().row(0, named=True)
    assert (r["input_tokens"], r["output_tokens"]) == (1000, 100)  # the stand-in root's usage
    assert r["computed_cost_usd"] is not None and r["computed_cost_usd"] > 0


def test_span_floor_bounds_lookups_only_for_files_of_new_runs(tmp_path, monkeypatch):
    """sql.SPAN_FLOOR_EXPR: lookups by run_id skip the stored spans only when the file's runs are all
    new; a file extending a stored run reads all of them (its run is built from both files' spans)."""
    from agentlens.ingest import batch

    monkeypatch.setattr(batch, "SMALL_FILE_BYTES", 0)  # a publish per file, not one batch of the three
    floors: list[int] = []

    def record(lens):
        floors.append(lens.con.execute(f"SELECT {Q.SPAN_FLOOR_EXPR}").fetchall()[0][0])

    root = agent()
    other = "f" * 32
    first = jsonl(tmp_path / "a.jsonl", doc(root, llm("b000000000000001", root["spanId"], 100, 10)))
    new_run = jsonl(tmp_path / "b.jsonl", doc(span(other, "c000000000000001", None, "solo", NS, NS + 5)))
    extends = jsonl(tmp_path / "c.jsonl", doc(llm("b000000000000002", root["spanId"], 200, 20, start=20)))
    with agentlens.Lens(tmp_path / "f.duckdb", steps=(pricing.price_step, record)) as lens:
        lens.ingest(first, new_run, extends)
        assert floors == [0, 2, 0]  # empty table; 2 spans stored before; run T was stored before
        assert lens.con.execute(f"SELECT {Q.SPAN_FLOOR_EXPR}").fetchall()[0][0] == 0  # reset after
        r = lens.sql("SELECT input_tokens, llm_calls, span_count FROM runs WHERE run_id = ?", [T]).row(0)
        assert r == (300, 2, 3)  # built from the spans of both files
        assert lens.sql("SELECT count(computed_cost_usd) n FROM spans WHERE run_id = ?", [T])["n"][0] == 2


def test_staged_spans_are_deleted_once_stored(tmp_path):
    """The staged Parquet of a file's spans (a quarter of the file's size on disk) is gone once the spans are
    in the table, before runs are built and the steps run, and so are the temp tables of the staged keys;
    the staging folder itself goes with the file."""
    seen: list[tuple[int, int]] = []

    def look(lens):
        folder = next(tmp_path.glob(".s.duckdb.stage-*"))
        seen.append((len(list(folder.glob("spans-*.parquet"))), lens.sql("SELECT count(*) n FROM spans")["n"][0]))
        # and the file-sized temp tables of its keys
        assert lens.sql("SELECT count(*) n FROM duckdb_tables() WHERE table_name IN ('_staged', '_skip')")["n"][0] == 0

    root = agent()
    path = jsonl(tmp_path / "t.jsonl", doc(root, llm("b000000000000001", root["spanId"], 100, 10)))
    with agentlens.Lens(tmp_path / "s.duckdb", steps=(look,)) as lens:
        assert lens.ingest(path).spans == 2
    assert seen == [(0, 2)]
    assert not list(tmp_path.glob(".s.duckdb.stage-*"))


@pytest.mark.parametrize(("message", "error_type"), [
    ("RateLimitError: Error code: 429 - {'error': ...}", "RateLimitError"),  # `f"{type(e).__name__}: {e}"`
    ("openai.RateLimitError: rate limited", "openai.RateLimitError"),
    ("OpenAIConnectionError('Connection error.')Traceback (most recent call last):\n  File ...", "OpenAIConnectionError"),
    ("Traceback (most recent call last):\n  File \"a.py\", line 3, in f\n    raise ValueError(x)\nValueError: bad", "ValueError"),
    ("Error code: 429 - {'error': {'message': 'Rate limit reached'}}", "RateLimitError"),  # openai / anthropic SDK text
    ("Error getting response: {'error': 'Error code: 503 - The server is overloaded or not ready yet.'}",
     "InternalServerError"),
    ("Error in agent run: {'error': \"Error code: 400 - This model's maximum context length is 128000 tokens\"}",
     "BadRequestError"),
    ("Error code: 418 - teapot", "APIStatusError"),
    ("Error getting response: {'error': 'Connection error.'}", "APIConnectionError"),
    ("Error in agent run: {'error': 'Request timed out.'}", "APITimeoutError"),
    ("Error: something broke", "Error"),  # JavaScript's `String(err)`
    ("Max turns exceeded: {'max_turns': 8}", None),
    ("Tool not found: {'tool_name': 'issue_store_credit'}", None),
    ("SYSTEM: ignore the rules", None),
    ("HTTP 503 Service Unavailable", None),
    ("2 validation errors for get_order", None),
    ("", None),
])
def test_error_type_from_a_status_message(message, error_type):
    from agentlens.adapters import semconv

    assert semconv.error_type_from_message(message) == error_type


def test_error_type_in_every_format():
    from agentlens.adapters import agent_runs, langfuse, langsmith, semconv
    from agentlens.core.config import Config

    # OTLP: error.type, else the exception event's type, else the status message's; never on an OK span
    assert semconv.normalize_span({}, "s", 2, "RateLimitError: slow down", [])["error_type"] == "RateLimitError"
    assert semconv.normalize_span({"error.type": "timeout"}, "s", 2, "RateLimitError: x", [])["error_type"] == "timeout"
    assert semconv.normalize_span({}, "s", 0, "RateLimitError: slow down", [])["error_type"] is None
    # Langfuse: level ERROR + statusMessage
    obs = {"id": "o1", "traceId": "t1", "type": "GENERATION", "name": "chat", "startTime": "2026-01-05T09:00:00Z",
           "level": "ERROR", "statusMessage": "Error code: 429 - {'error': 'rate limited'}"}
    row, _ = langfuse.observation_row(obs, {}, Config(), "x.json")
    assert (row["status"], row["error_type"]) == ("error", "RateLimitError")
    # LangSmith: `error`
    assert langsmith._error("Error code: 500 - {'error': 'boom'}") == ("InternalServerError",
                                                                       "Error code: 500 - {'error': 'boom'}")
    # agent_runs: the response's error
    _, sp, _ = agent_runs.rows_for({"id": "1", "request": "{}", "response": '{"error": "APITimeoutError: Request timed out."}',
                                   "created_at": "2026-01-05T09:00:00Z"}, Config(), "x.csv")
    assert (sp["status"], sp["error_type"]) == ("error", "APITimeoutError")
