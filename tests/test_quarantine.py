"""Bad input never crashes an ingest and never loses data: each kind of bad record is quarantined
with its raw text and a reason naming the problem, and the rest of the file is stored."""

from __future__ import annotations

import gzip
import json

from conftest import doc, jsonl, span

T1 = "0af7651916cd43dd8448eb211c80319c"
T2 = "1bf7651916cd43dd8448eb211c80319c"
NS = 1_795_000_000_000_000_000


def good(trace=T1, sid="00f067aa0ba902b7", parent=None, name="invoke_agent a"):
    return span(trace, sid, parent, name, NS, NS + 1_000_000, {"gen_ai.operation.name": "invoke_agent"})


def q(lens, kind):
    return lens.quarantine(kind).to_dicts()


def test_malformed_json_line_is_quarantined_and_other_lines_go_in(lens, tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps(doc(good())) + "\n" + '{"resourceSpans": [oops]}\n'
                 + json.dumps(doc(good(T2))) + "\n")
    s = lens.ingest(p)
    assert s.spans == 2 and s.quarantined == {"malformed_json": 1}
    (row,) = q(lens, "malformed_json")
    assert row["line"] == 2 and row["raw"] == '{"resourceSpans": [oops]}\n'
    assert row["reason"].startswith("line 2: malformed JSON") and row["source_file"] == str(p)
    assert row["stored"] is False


def test_truncated_last_line(lens, tmp_path):
    p = tmp_path / "t.jsonl"
    text = json.dumps(doc(good())) + "\n" + json.dumps(doc(good(T2)))
    p.write_text(text[:-25])  # the file ends mid-record, no trailing newline
    s = lens.ingest(p)
    assert s.spans == 1 and s.quarantined == {"truncated": 1}
    (row,) = q(lens, "truncated")
    assert row["line"] == 2 and "ends mid-record" in row["reason"]
    assert row["raw"] == text[:-25].split("\n")[1]


def test_truncated_single_document(lens, tmp_path):
    p = tmp_path / "t.json"
    text = json.dumps(doc(good()), indent=2)[:-40]
    p.write_text(text)
    s = lens.ingest(p, format="otlp")
    assert s.spans == 0 and s.quarantined == {"truncated": 1}
    (row,) = q(lens, "truncated")
    assert row["line"] == text.count("\n") + 1 and "cut off" in row["reason"]  # the line where it ends


def test_invalid_utf8_line(lens, tmp_path):
    p = tmp_path / "t.jsonl"
    bad = json.dumps(doc(good(T2))).encode().replace(b"invoke_agent a", b"invoke_agent \xff\xfe")
    p.write_bytes(json.dumps(doc(good())).encode() + b"\n" + bad + b"\n")
    s = lens.ingest(p)
    assert s.spans == 1 and s.quarantined == {"invalid_utf8": 1}
    (row,) = q(lens, "invalid_utf8")
    assert row["line"] == 2 and "\\xff\\xfe" in row["raw"] and "invalid UTF-8" in row["reason"]


def test_wrong_types_quarantine_only_the_bad_span(lens, tmp_path):
    bad_time = good(T1, "1111111111111111", "00f067aa0ba902b7", "x")
    bad_time["startTimeUnixNano"] = "yesterday"
    bad_attrs = good(T1, "2222222222222222", "00f067aa0ba902b7", "y")
    bad_attrs["attributes"] = "not a list"
    bad_id = good(T1, "3333333333333333", "00f067aa0ba902b7", "z")
    bad_id["spanId"] = 12345
    p = jsonl(tmp_path / "t.jsonl", doc(good(), bad_time, bad_attrs, bad_id))
    s = lens.ingest(p)
    assert s.spans == 1 and s.quarantined == {"wrong_type": 3}
    reasons = sorted(r["reason"] for r in q(lens, "wrong_type"))
    assert any("startTimeUnixNano must be an integer" in r for r in reasons)
    assert any("attributes must be a list" in r for r in reasons)
    assert any("spanId must be a string" in r for r in reasons)
    assert all(json.loads(r["raw"])["traceId"] == T1 for r in q(lens, "wrong_type"))


def test_missing_ids_and_not_otlp(lens, tmp_path):
    no_trace = good()
    del no_trace["traceId"]
    p = jsonl(tmp_path / "t.jsonl", doc(no_trace), {"hello": "world"}, doc(good(T2)))
    s = lens.ingest(p, format="otlp")
    assert s.spans == 1 and s.quarantined == {"missing_field": 1, "not_otlp": 1}
    assert "no resourceSpans" in q(lens, "not_otlp")[0]["reason"]


def test_end_before_start_is_stored_without_end_and_flagged(lens, tmp_path):
    s1 = good()
    s1["endTimeUnixNano"] = str(NS - 5)
    lens.ingest(jsonl(tmp_path / "t.jsonl", doc(s1)))
    (row,) = q(lens, "end_before_start")
    assert row["stored"] is True and row["span_id"] == "00f067aa0ba902b7"
    assert "ends" in row["reason"] and "before it starts" in row["reason"]
    sp = lens.spans(T1).row(0, named=True)
    assert sp["ended_at"] is None and sp["duration_ms"] is None and sp["started_at"] is not None


def test_orphan_span_flagged_then_resolved_when_parent_arrives(lens, tmp_path):
    child = span(T1, "2222222222222222", "00f067aa0ba902b7", "chat m", NS + 10, NS + 20,
                 {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 10,
                  "gen_ai.usage.output_tokens": 5, "gen_ai.request.model": "m"})
    s = lens.ingest(jsonl(tmp_path / "a.jsonl", doc(child)))
    assert s.quarantined == {"orphan_span": 1}  # the summary counts the flag, as `agentlens quarantine` shows it
    (row,) = q(lens, "orphan_span")
    assert row["stored"] is True and "never arrived" in row["reason"]
    run = lens.runs().row(0, named=True)
    assert run["input_tokens"] == 10 and run["root_span_id"] is None  # nothing lost meanwhile

    lens.ingest(jsonl(tmp_path / "b.jsonl", doc(good())))  # the parent, in a later file
    assert q(lens, "orphan_span") == []
    run = lens.runs().row(0, named=True)
    assert run["root_span_id"] == "00f067aa0ba902b7" and run["span_count"] == 2 and run["input_tokens"] == 10


def test_agent_runs_bad_rows(lens, tmp_path):
    p = tmp_path / "agent_runs.csv"
    p.write_text(
        "id,user_id,request,response,tokens_in,tokens_out,cost_usd,created_at\n"
        '1,u1,"{""model"": ""gpt-4o""}",ok,10,5,0.01,2026-11-10T10:00:00Z\n'
        '2,u1,"{""model"": ""gpt-4o""}",ok,ten,5,0.01,2026-11-10T10:00:00Z\n'
        '3,u1,"{""model"": ""gpt-4o""}",ok,10,5,0.01,\n'
        '4,u1,"{""model"": ""gpt-4o""}",ok,10,5\n'
        '5,u1,not json,ok,10,5,0.02,2026-11-10T11:00:00Z\n'
    )
    s = lens.ingest(p)
    assert s.quarantined == {"wrong_type": 2, "missing_field": 1, "bad_row": 1}
    assert sorted(lens.runs()["run_id"]) == ["1", "5"]
    reasons = {r["line"]: r["reason"] for r in lens.quarantine().to_dicts()}
    assert "tokens_in must be an integer, got 'ten'" in reasons[3]
    assert "created_at" in reasons[4]
    assert "6 fields, the header has 8" in reasons[5]
    assert "request is not a JSON object" in reasons[6]  # stored, flagged


def test_one_bad_file_does_not_stop_the_others(lens, tmp_path):
    (tmp_path / "in").mkdir()
    jsonl(tmp_path / "in" / "a.jsonl", doc(good()))
    (tmp_path / "in" / "b.jsonl.gz").write_bytes(b"\x1f\x8b garbage that is not gzip")
    jsonl(tmp_path / "in" / "c.jsonl", doc(good(T2)))
    s = lens.ingest(tmp_path / "in", format="otlp")
    assert s.count("ingested") == 2 and s.count("failed") == 1 and s.spans == 2
    (row,) = q(lens, "unreadable_file")
    assert "b.jsonl.gz" in row["reason"]


def test_gzip_and_unknown_files_in_folders(lens, tmp_path):
    (tmp_path / "in").mkdir()
    with gzip.open(tmp_path / "in" / "a.jsonl.gz", "wt") as f:
        f.write(json.dumps(doc(good())) + "\n")
    (tmp_path / "in" / "README.md").write_text("# not traces\n")
    s = lens.ingest(tmp_path / "in")
    assert s.count("ingested") == 1 and s.count("skipped_unknown") == 1 and s.spans == 1


def test_explicit_unknown_file_is_a_clear_failure(lens, tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello\n")
    s = lens.ingest(p)
    assert s.count("failed") == 1
    assert "not a known trace format" in s.files[0].message and "--format" in s.files[0].message
