"""One bad record never costs the others (issue 24): in every format, a record with a value that cannot be
read or cannot be true is quarantined alone (or stored without that value and flagged), with its raw text,
its line and the reason; the other records of the file are stored, and nothing escapes `ingest()`."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from pathlib import Path

import pytest

import agentlens
from agentlens.metrics import costs
from conftest import ROOT, doc, jsonl, span

T1 = "0af7651916cd43dd8448eb211c80319c"
NS = 1_795_000_000_000_000_000
GOLDEN = ROOT / "tests" / "golden"
SAMPLES = ROOT / "sample_traces"
DEEP = 1500  # levels of nesting: past what a JSON decoder (or Python) follows


def otlp_span(i: int, **attrs) -> dict:
    return span(T1, f"{i:016x}", None if i == 1 else f"{1:016x}", f"s{i}", NS, NS + 1_000_000,
                {"gen_ai.operation.name": "chat", **attrs})


def otlp_file(tmp_path: Path, bad_line: str) -> Path:
    """Three lines: a good document, the bad one, a good one."""
    p = tmp_path / "t.otlp.jsonl"
    p.write_text(json.dumps(doc(otlp_span(1))) + "\n" + bad_line + "\n" + json.dumps(doc(otlp_span(3))) + "\n")
    return p


def with_attr(key: str, value: dict) -> str:
    d = doc(otlp_span(2))
    d["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append({"key": key, "value": value})
    return json.dumps(d)


def deep_any_value() -> str:
    inner = '{"kvlistValue": {"values": [{"key": "a", "value": ' * DEEP + '{"stringValue": "x"}' + "}]}}" * DEEP
    return with_attr("deep", {"stringValue": "PLACEHOLDER"}).replace('{"stringValue": "PLACEHOLDER"}', inner)


def resource_string() -> str:
    d = doc(otlp_span(2))
    d["resourceSpans"][0]["resource"] = "a string"
    return json.dumps(d)


@pytest.mark.parametrize("bad_line, kind, reason", [
    (with_attr("x", {"intValue": "abc"}), "wrong_type", "intValue 'abc' is not a number"),
    (with_attr("x", {"doubleValue": "abc"}), "wrong_type", "doubleValue 'abc' is not a number"),
    (with_attr("x", {"kvlistValue": "abc"}), "wrong_type", "kvlistValue must be an object"),
    (resource_string(), "wrong_type", "resource must be an object"),
    (deep_any_value(), "too_deep", "nested too deep"),
], ids=["intValue-abc", "doubleValue-abc", "kvlist-string", "resource-string", "deep"])
def test_otlp_a_bad_line_is_quarantined_alone(lens, tmp_path, bad_line, kind, reason):
    s = lens.ingest(otlp_file(tmp_path, bad_line))
    assert s.files[0].status == "ingested" and s.spans == 2 and s.quarantined == {kind: 1}
    (row,) = lens.quarantine(kind).to_dicts()
    assert row["line"] == 2 and reason in row["reason"] and row["reason"].startswith("line 2: ")
    assert row["raw"] and row["stored"] is False


@pytest.mark.parametrize("key, value, problem", [
    ("gen_ai.usage.output_tokens", {"intValue": str(2**63)}, "output_tokens=9223372036854775808 does not fit in 64 bits"),
    ("gen_ai.usage.output_tokens", {"intValue": 2**70}, "does not fit in 64 bits"),
    ("gen_ai.usage.output_tokens", {"intValue": "-5"}, "output_tokens=-5 is negative"),
    ("gen_ai.usage.output_tokens", {"stringValue": "abc"}, "output_tokens='abc' is not a whole number"),
    ("gen_ai.usage.cost", {"doubleValue": "NaN"}, "cost_usd=nan is not a finite number"),
    ("gen_ai.usage.cost", {"doubleValue": "Infinity"}, "cost_usd=inf is not a finite number"),
])
def test_otlp_an_impossible_value_is_dropped_and_flagged(lens, tmp_path, key, value, problem):
    s = lens.ingest(otlp_file(tmp_path, with_attr(key, value)))
    assert s.spans == 3 and s.quarantined == {"impossible_value": 1}
    (row,) = lens.quarantine("impossible_value").to_dicts()
    assert row["stored"] is True and row["line"] == 2 and row["span_id"] == f"{2:016x}"
    assert problem in row["reason"] and "stored without them" in row["reason"]
    sp = lens.sql("SELECT output_tokens, cost_usd FROM spans WHERE span_id = ?", [f"{2:016x}"]).row(0)
    assert sp == (None, None)
    totals = lens.sql("SELECT min(output_tokens) lo, max(cost_usd) hi FROM runs").row(0)
    assert totals[0] is None or totals[0] >= 0  # no negative or infinite totals
    total = costs.by(lens, by=None)["total_cost_usd"].sum()  # `agentlens costs` failed on a NaN cost
    assert total is None or math.isfinite(total)


def langsmith_file(tmp_path: Path, **change) -> Path:
    recs = [json.loads(x) for x in (GOLDEN / "langsmith" / "query-v2.jsonl").read_text().splitlines()]
    recs[1].update(change)
    p = tmp_path / "runs.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return p


def langfuse_file(tmp_path: Path, **change) -> Path:
    recs = [json.loads(x) for x in (GOLDEN / "langfuse" / "blob-observations_v2.jsonl").read_text().splitlines()]
    recs[1].update(change)
    p = tmp_path / "observations.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return p


@pytest.mark.parametrize("change, problem", [
    ({"start_time": "0001-01-01T00:00:00"}, "started_at=-62135596800000000 is outside 1970-2262"),
    ({"end_time": "9999-12-31T23:59:59.999999"}, "ended_at=253402300799999999 is outside 1970-2262"),
    ({"prompt_tokens": "abc"}, "prompt_tokens='abc' is not a whole number"),
    ({"prompt_tokens": 2**64}, "does not fit in 64 bits"),
    ({"prompt_tokens": -100}, "input_tokens=-100 is negative"),
    ({"total_cost": "NaN"}, "cost_usd=nan is not a finite number"),
])
def test_langsmith_impossible_values(lens, tmp_path, change, problem):
    s = lens.ingest(langsmith_file(tmp_path, **change))
    assert s.spans == 2 and s.quarantined == {"impossible_value": 1}
    (row,) = lens.quarantine().to_dicts()
    assert row["stored"] is True and row["line"] == 2 and problem in row["reason"]
    lens.runs()  # timestamps come back as timestamps


@pytest.mark.parametrize("change, problem", [
    ({"start_time": "0001-01-01 00:00:00"}, "outside 1970-2262"),
    ({"usage_details": {"input": "abc", "output": 3}}, "usageDetails.input='abc' is not a whole number"),
    ({"usage_details": {"input": 2**64, "output": 3}}, "does not fit in 64 bits"),
    ({"cost_details": {"total": "NaN"}}, "cost_usd=nan is not a finite number"),
])
def test_langfuse_impossible_values(lens, tmp_path, change, problem):
    s = lens.ingest(langfuse_file(tmp_path, **change))
    assert s.spans == 4 and s.quarantined == {"impossible_value": 1}
    (row,) = lens.quarantine().to_dicts()
    assert row["stored"] is True and row["line"] == 2 and problem in row["reason"]


def test_langfuse_and_langsmith_deep_or_invalid_utf8_lines(lens, tmp_path):
    p = langfuse_file(tmp_path, input="PLACEHOLDER")
    p.write_text(p.read_text().replace('"PLACEHOLDER"', "[" * DEEP + "]" * DEEP))
    q = langsmith_file(tmp_path, name="ChatAnthropic")
    q.write_bytes(q.read_bytes().replace(b"ChatAnthropic", b"Chat\xffAnthropic"))
    s = lens.ingest(p, q)
    assert s.spans == 3 + 1 and s.quarantined == {"too_deep": 1, "invalid_utf8": 1}
    assert sorted(r["line"] for r in lens.quarantine().to_dicts()) == [2, 2]


def agent_runs_file(tmp_path: Path, column: str, value: str) -> Path:
    rows = list(csv.reader(io.StringIO((SAMPLES / "agent_runs.csv").read_text())))
    rows = rows[:6]
    rows[2][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    p = tmp_path / "agent_runs.csv"
    p.write_text(out.getvalue())
    return p


@pytest.mark.parametrize("column, value, problem", [
    ("cost_usd", "NaN", "cost_usd=nan is not a finite number"),
    ("cost_usd", "Infinity", "cost_usd=inf is not a finite number"),
    ("tokens_in", str(2**64), "does not fit in 64 bits"),
    ("created_at", "0001-01-01T00:00:00", "outside 1970-2262"),
    ("created_at", "9999-12-31T23:59:59", "outside 1970-2262"),
])
def test_agent_runs_rows_with_impossible_values_are_refused_whole(lens, tmp_path, column, value, problem):
    s = lens.ingest(agent_runs_file(tmp_path, column, value))
    assert s.runs == 4 and s.quarantined == {"impossible_value": 1}
    (row,) = lens.quarantine().to_dicts()
    assert row["stored"] is False and row["line"] == 3 and problem in row["reason"]
    assert value in row["raw"]


def test_a_bom_file_in_a_folder_is_read(lens, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "agent_runs.csv").write_bytes(b"\xef\xbb\xbf" + (SAMPLES / "agent_runs.csv").read_bytes())
    lines = (GOLDEN / "langfuse" / "blob-observations_v2.jsonl").read_bytes()
    (tmp_path / "in" / "observations.jsonl").write_bytes(b"\xef\xbb\xbf" + lines)
    s = lens.ingest(tmp_path / "in")
    assert s.count("ingested") == 2 and s.quarantined == {}
    rows = len(list(csv.reader(io.StringIO((SAMPLES / "agent_runs.csv").read_text())))) - 1
    observations = len(lines.splitlines())
    assert {f.format: f.spans for f in s.files} == {"agent_runs": rows, "langfuse": observations}


def test_a_truncated_gz_keeps_every_line_before_the_cut(lens, tmp_path):
    text = "".join(json.dumps(doc(otlp_span(i))) + "\n" for i in range(1, 401))
    gz = gzip.compress(text.encode())
    p = tmp_path / "t.otlp.jsonl.gz"
    p.write_bytes(gz[: len(gz) // 2])
    s = lens.ingest(p)
    assert s.files[0].status == "ingested" and s.quarantined == {"truncated": 1}
    (row,) = lens.quarantine().to_dicts()
    # every whole line before the cut is stored, the line it fell in is quarantined with its position
    assert s.spans == row["line"] - 1 and 0 < s.spans < 400
    assert "gzip data is cut short" in row["reason"] and row["raw"] == text.split("\n")[row["line"] - 1][:len(row["raw"])]


def test_a_corrupt_gz_and_a_bad_first_line_do_not_stop_the_folder(lens, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"garbage" * 20)
    deep_first = tmp_path / "in" / "b.jsonl"
    deep_first.write_text("[" * DEEP + "]" * DEEP + "\n" + json.dumps(doc(otlp_span(2))) + "\n")
    jsonl(tmp_path / "in" / "c.jsonl", doc(otlp_span(3)))
    s = lens.ingest(tmp_path / "in")
    assert s.spans >= 1 and {f.path.rsplit("/", 1)[1]: f.status for f in s.files}["c.jsonl"] == "ingested"
    assert "a.jsonl.gz" in lens.quarantine("unreadable_file")["source_file"][0]


def test_langsmith_js_patches_without_id_keep_end_time_and_tokens(lens, tmp_path):
    rid = "2e1d8f3b-0001-4c7e-8fa0-000000000001"
    dotted = f"20260302T100200000000Z{rid}"
    payload = {"post": [{"id": rid, "name": "agent", "run_type": "llm", "start_time": "2026-03-02T10:02:00",
                         "trace_id": rid, "dotted_order": dotted}],
               "patch": [{"trace_id": rid, "dotted_order": dotted, "end_time": "2026-03-02T10:02:05",
                          "outputs": {"usage_metadata": {"input_tokens": 5, "output_tokens": 7}}}]}
    p = tmp_path / "payload.json"
    p.write_text(json.dumps(payload))
    s = lens.ingest(p)
    assert s.spans == 1 and s.quarantined == {}
    sp = lens.sql("SELECT duration_ms, input_tokens, output_tokens FROM spans").row(0)
    assert sp == (5000.0, 5, 7)


def test_an_error_message_never_obeys_control_sequences_it_quotes(tmp_path):
    """Error messages quote what they were given (a path, a value): shown, never acted on, like every
    command's output (core.textsafe)."""
    from click.testing import CliRunner

    from agentlens.cli import main

    name = tmp_path / "missing\x1b]0;owned\x07\x1b[2J.jsonl"
    r = CliRunner().invoke(main, ["ingest", str(name), "--db", str(tmp_path / "db.duckdb")])
    assert r.exit_code == 2 and "no such file" in r.output
    assert "\x1b" not in r.output and "\x07" not in r.output and "␛]0;owned␇␛[2J" in r.output


def test_a_broken_first_line_is_one_record_not_the_whole_file(lens, tmp_path):
    """Found by the fuzzer: with its first line broken, a LangSmith file was read as one document, and its
    other bad lines were one quarantine record with it."""
    lines = (GOLDEN / "langsmith" / "query-v2.jsonl").read_bytes().splitlines(keepends=True)
    p = tmp_path / "runs.jsonl"
    p.write_bytes(b"".join(x.replace(b"support", b"supp\xb2rt", 1).replace(b"Chat", b"Ch\xa9t", 1) for x in lines))
    s = lens.ingest(p, format="langsmith")
    assert s.quarantined == {"invalid_utf8": 2}
    assert sorted(lens.quarantine()["line"]) == [1, 2]


def test_invalid_utf8_in_one_record_of_a_json_array_keeps_the_others(lens, tmp_path):
    data = (GOLDEN / "langfuse" / "ui-observations.json").read_bytes()
    n = len(json.loads(data))
    at = data.index(b'"name"', len(data) // 2) + 9  # inside a name in the second half
    p = tmp_path / "observations.json"
    p.write_bytes(data[:at] + b"\xff" + data[at:])
    s = lens.ingest(p)
    assert s.quarantined == {"invalid_utf8": 1} and s.spans == n - 1
    (row,) = lens.quarantine().to_dicts()
    assert row["line"] > n // 2 - 1 and "\ufffd" in row["raw"]


def test_a_span_given_twice_with_other_content_is_one_version_the_other_counted(tmp_path):
    first, again, retry = otlp_span(2), otlp_span(2), otlp_span(3)
    again["name"] = "other content"
    spans = (otlp_span(1), first, retry, again, retry)
    kept = []
    for name, order in (("t", spans), ("r", spans[::-1])):
        p = tmp_path / f"{name}.jsonl"
        p.write_text("".join(json.dumps(doc(s)) + "\n" for s in order))
        with agentlens.open(tmp_path / f"{name}.duckdb") as lens:
            s = lens.ingest(p)
            # one version of span 2 is stored, the other counted as outdated (docs: record identity), never
            # silently dropped; the same copy again (an exporter's retry) is not news
            assert s.spans == 3 and s.total("spans_outdated") == 1 and not s.quarantined
            kept.append(lens.sql("SELECT name FROM spans WHERE span_id = ?", [f"{2:016x}"]).item())
    assert kept[0] == kept[1]  # the version kept does not depend on the order in the file


def test_parent_cycles_are_flagged_once(lens, tmp_path):
    root, a, b, under = otlp_span(1), otlp_span(2), otlp_span(3), otlp_span(4)
    a["parentSpanId"], b["parentSpanId"], under["parentSpanId"] = f"{3:016x}", f"{2:016x}", f"{3:016x}"
    s = lens.ingest(jsonl(tmp_path / "t.jsonl", doc(root, a, b, under)))
    assert s.spans == 4 and s.quarantined == {"parent_cycle": 3}  # the cycle and what hangs under it
    rows = lens.quarantine("parent_cycle").to_dicts()
    assert sorted(r["span_id"] for r in rows) == [f"{i:016x}" for i in (2, 3, 4)]
    assert all(r["stored"] and "form a cycle" in r["reason"] for r in rows)
    assert lens.runs().row(0, named=True)["root_span_id"] == f"{1:016x}"
    more = otlp_span(5)
    assert lens.ingest(jsonl(tmp_path / "u.jsonl", doc(more))).quarantined == {}  # not flagged again
