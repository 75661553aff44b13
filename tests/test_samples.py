"""Tests for the seeded sample-trace generator (agentlens.samples). Standard library + pytest only."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agentlens import samples
from agentlens.samples import (
    FAILURE_MODES,
    FILE_CSV,
    FILE_GENAI,
    FILE_LABELS,
    FILE_OPENINFERENCE,
    FILE_README,
    OUTPUT_FILES,
    generate,
    main,
)

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "sample_traces"
FAILURE_MODES_DOC = ROOT.parent / "shared" / "reference" / "failure-modes.md"
OTLP_FILES = (FILE_OPENINFERENCE, FILE_GENAI)
SIZE_BUDGET = 1_500_000
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    d = tmp_path_factory.mktemp("samples")
    return d, generate(d)


@pytest.fixture(scope="module")
def labels(out: tuple[Path, dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out[0] / FILE_LABELS).read_text().splitlines()]


# --------------------------------------------------------------------------------------------------
# reading the OTLP files back (both dialects) into a small per-run view
# --------------------------------------------------------------------------------------------------


def _value(v: dict[str, Any]) -> Any:
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return v["boolValue"]
    if "arrayValue" in v:
        return [_value(x) for x in v["arrayValue"].get("values", [])]
    raise AssertionError(f"unexpected AnyValue {v}")


def read_otlp(path: Path) -> list[dict[str, Any]]:
    """Spans of a file, flattened, each with its line number, resource and scope."""
    spans = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        req = json.loads(line)
        assert set(req) == {"resourceSpans"}
        for rs in req["resourceSpans"]:
            res = {a["key"]: _value(a["value"]) for a in rs["resource"]["attributes"]}
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    spans.append({**sp, "_line": lineno, "_res": res, "_scope": ss["scope"],
                                  "_attrs": {a["key"]: _value(a["value"]) for a in sp["attributes"]}})
    return spans


def by_trace(spans: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for sp in spans:
        out.setdefault(sp["traceId"], []).append(sp)
    for v in out.values():
        v.sort(key=lambda s: (int(s["startTimeUnixNano"]), "parentSpanId" in s))
    return out


def root_of(spans: list[dict[str, Any]]) -> dict[str, Any]:
    roots = [s for s in spans if "parentSpanId" not in s]
    assert len(roots) == 1
    return roots[0]


def _indexed(attrs: dict[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """{'p.0.x': 1, 'p.0.y': 2} -> {0: {'x': 1, 'y': 2}}"""
    out: dict[int, dict[str, Any]] = {}
    for k, v in attrs.items():
        if k.startswith(prefix):
            idx, _, rest = k[len(prefix):].partition(".")
            out.setdefault(int(idx), {})[rest] = v
    return out


def run_view(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """Normalise one trace (OpenInference, GenAI or OpenLLMetry legacy) to: llm calls, tool calls, status."""
    root = root_of(spans)
    llms, tools = [], []
    for s in spans:
        if s is root:
            continue
        a = s["_attrs"]
        err = s["status"].get("message", "") if s["status"].get("code") == 2 else None
        kind = a.get("openinference.span.kind")
        if kind == "LLM" or a.get("gen_ai.operation.name") == "chat" or a.get("llm.request.type") == "chat":
            offered: list[str] = []
            calls: list[tuple[str, str]] = []
            finish = None
            if kind == "LLM":
                for d in _indexed(a, "llm.tools.").values():
                    schema = json.loads(d["tool.json_schema"])
                    offered.append(schema.get("name") or schema["function"]["name"])
                out = {k: v for k, v in a.items() if k.startswith("llm.output_messages.0.message.tool_calls.")}
                for d in _indexed(out, "llm.output_messages.0.message.tool_calls.").values():
                    calls.append((d["tool_call.function.name"], d["tool_call.function.arguments"]))
                tin, tout = a.get("llm.token_count.prompt"), a.get("llm.token_count.completion")
                cache = a.get("llm.token_count.prompt_details.cache_read", 0)
                if "output.value" in a:
                    ov = json.loads(a["output.value"])
                    finish = ov.get("stop_reason") or ov["choices"][0]["finish_reason"]
                text = a.get("llm.output_messages.0.message.content")
            elif "gen_ai.system" in a:  # OpenLLMetry 0.47 legacy
                offered = [d["name"] for d in _indexed(a, "llm.request.functions.").values()]
                for d in _indexed(a, "gen_ai.completion.0.tool_calls.").values():
                    calls.append((d["name"], d["arguments"]))
                tin, tout = a.get("gen_ai.usage.prompt_tokens"), a.get("gen_ai.usage.completion_tokens")
                cache = a.get("gen_ai.usage.cache_read_input_tokens", 0)
                finish = a.get("gen_ai.completion.0.finish_reason")
                text = a.get("gen_ai.completion.0.content")
            else:
                offered = [d["name"] for d in json.loads(a.get("gen_ai.tool.definitions", "[]"))]
                text = None
                for m in json.loads(a.get("gen_ai.output.messages", "[]")):
                    for p in m["parts"]:
                        if p["type"] == "tool_call":
                            args = p["arguments"]
                            calls.append((p["name"], args if isinstance(args, str) else json.dumps(args)))
                        elif p["type"] == "text":
                            text = p["content"]
                tin, tout = a.get("gen_ai.usage.input_tokens"), a.get("gen_ai.usage.output_tokens")
                cache = a.get("gen_ai.usage.cache_read.input_tokens", 0)
                finish = (a.get("gen_ai.response.finish_reasons") or [None])[0]
            llms.append({"span": s, "offered": offered, "calls": calls, "in": tin, "out": tout, "cache": cache,
                         "finish": finish, "text": text, "error": err,
                         "model": a.get("llm.model_name") or a.get("gen_ai.request.model")})
        else:
            if kind in ("TOOL", "RETRIEVER"):
                name = s["name"]
                args = a.get("input.value", "")
                if kind == "RETRIEVER":
                    args = json.dumps({"query": args}, separators=(",", ":"))
                    result = json.dumps([d.get("document.content") for d in _indexed(a, "retrieval.documents.").values()])
                else:
                    result = a.get("output.value")
            else:
                name = a["gen_ai.tool.name"]
                args = a.get("gen_ai.tool.call.arguments", "")
                result = a.get("gen_ai.tool.call.result")
            tools.append({"span": s, "name": name, "args": json.dumps(json.loads(args), sort_keys=True),
                          "result": result, "error": err})
    ra = root["_attrs"]
    answer = ra.get("output.value")
    if answer is None and llms and llms[-1]["error"] is None:
        answer = llms[-1]["text"]
    return {"root": root, "llms": llms, "tools": tools, "error": root["status"].get("code") == 2,
            "answer": answer}


def failed_tool(t: dict[str, Any]) -> bool:
    r = t["result"] or ""
    return t["error"] is not None or '"error"' in r or '"success":false' in r.replace(" ", "")


def evidence(view: dict[str, Any], all_text: str) -> set[str]:
    """A deliberately simple rule set: which failure modes does the trace show?"""
    found: set[str] = set()
    llms, tools = view["llms"], view["tools"]
    order = sorted([("llm", x) for x in llms] + [("tool", x) for x in tools],
                   key=lambda p: int(p[1]["span"]["startTimeUnixNano"]))
    # tool failures: retried successfully / run failed -> tool_error, otherwise silent
    for i, t in enumerate(tools):
        if failed_tool(t):
            retried = any(u["name"] == t["name"] and not failed_tool(u) for u in tools[i + 1:])
            found.add("tool_error" if retried or view["error"] else "silent_tool_failure")
    for x in llms:
        for name, args in x["calls"]:
            try:
                json.loads(args)
            except ValueError:
                found.add("hallucinated_tool")
            if x["offered"] and name not in x["offered"]:
                found.add("hallucinated_tool")
    fp = Counter((t["name"], t["args"]) for t in tools)
    if any(n >= 3 for n in fp.values()):
        found.add("runaway_loop")
    if any(n >= 2 and k[0] in samples.SIDE_EFFECT_TOOLS for k, n in fp.items()):
        found.add("duplicate_side_effect")
    errors = [x["error"] for _, x in order if x["error"]]
    if any("429" in e or "RateLimit" in e for e in errors):
        found.add("rate_limited")
    if any("timed out" in e.lower() for e in errors):
        found.add("timeout")
    if any(x["error"] and ("Error code: 5" in x["error"] or "Connection error" in x["error"]) for x in llms):
        found.add("provider_error")
    streak = 0
    for kind, x in order:
        if kind == "llm":
            streak = streak + 1 if x["error"] else 0
            if streak >= 3:
                found.add("cascading_retries")
    windows = {"gpt-4o": 128_000, "gpt-4o-mini": 128_000}
    for x in llms:
        if (x["error"] and "maximum context length" in x["error"]) or x["finish"] in ("length", "max_tokens"):
            found.add("context_overflow")
        base = (x["model"] or "").split("-2024")[0]
        if x["in"] and base in windows and x["in"] >= 0.95 * windows[base]:
            found.add("context_overflow")
    if "ignore all previous instructions" in all_text.lower():
        found.add("prompt_injection")
    if sum((x["in"] or 0) + (x["out"] or 0) for x in llms) > 200_000:
        found.add("budget_exceeded")
    if (view["answer"] or "").startswith("I'm sorry, but"):
        found.add("refusal")
    seen_approval = False
    for t in tools:
        if t["name"] == samples.APPROVAL_TOOL and not failed_tool(t):
            seen_approval = True
        if t["name"] in samples.IRREVERSIBLE_TOOLS and not seen_approval:
            found.add("unapproved_action")
    return found


@pytest.fixture(scope="module")
def views(out: tuple[Path, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    res = {}
    for name in OTLP_FILES:
        for tid, spans in by_trace(read_otlp(out[0] / name)).items():
            v = run_view(spans)
            v["file"] = name
            v["all_text"] = json.dumps([s["attributes"] for s in spans])
            res[tid] = v
    return res


# --------------------------------------------------------------------------------------------------
# determinism, committed copy, size
# --------------------------------------------------------------------------------------------------


def test_same_seed_same_bytes_and_other_seed_differs(out: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    generate(tmp_path / "again")
    generate(tmp_path / "other", seed=7)
    for name in OUTPUT_FILES:
        first = (out[0] / name).read_bytes()
        assert (tmp_path / "again" / name).read_bytes() == first, name
        if name != FILE_README:
            assert (tmp_path / "other" / name).read_bytes() != first, name


def test_committed_sample_traces_match_a_fresh_generation(out: tuple[Path, dict[str, Any]]) -> None:
    assert COMMITTED.is_dir(), "run: python -m agentlens.samples sample_traces"
    assert sorted(p.name for p in COMMITTED.iterdir()) == sorted(OUTPUT_FILES)
    for name in OUTPUT_FILES:
        assert (COMMITTED / name).read_bytes() == (out[0] / name).read_bytes(), (
            f"sample_traces/{name} drifted from the generator; run: python -m agentlens.samples sample_traces"
        )


def test_default_output_stays_small(out: tuple[Path, dict[str, Any]]) -> None:
    sizes = {name: (out[0] / name).stat().st_size for name in OUTPUT_FILES}
    assert sum(sizes.values()) < SIZE_BUDGET, sizes
    assert out[1]["total_bytes"] == sum(sizes.values())


def test_manifest_describes_the_files(out: tuple[Path, dict[str, Any]], labels: list[dict[str, Any]]) -> None:
    d, manifest = out
    assert manifest["seed"] == 42 and manifest["runs"] == 120 and manifest["days"] == 5
    assert manifest["start"] == "2026-11-10T00:00:00Z"
    files = manifest["files"]
    assert sum(files[n]["runs"] for n in (FILE_OPENINFERENCE, FILE_GENAI, FILE_CSV)) == 120 == len(labels)
    for name in OTLP_FILES:
        spans = read_otlp(d / name)
        assert files[name]["spans"] == len(spans)
        assert files[name]["runs"] == len({s["traceId"] for s in spans})
        assert files[name]["lines"] == len((d / name).read_text().splitlines())
    assert manifest["modes"] == {m: sum(m in lab["modes"] for lab in labels) for m in FAILURE_MODES}
    readme = (d / FILE_README).read_text()
    assert "python -m agentlens.samples sample_traces" in readme
    for name in (FILE_OPENINFERENCE, FILE_GENAI, FILE_CSV, FILE_LABELS):
        assert name in readme


# --------------------------------------------------------------------------------------------------
# OTLP encoding
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OTLP_FILES)
def test_otlp_json_encoding(out: tuple[Path, dict[str, Any]], name: str) -> None:
    text = (out[0] / name).read_text(encoding="utf-8")
    assert text.endswith("\n")
    for sp in read_otlp(out[0] / name):
        assert HEX32.match(sp["traceId"]) and HEX16.match(sp["spanId"])
        if "parentSpanId" in sp:
            assert HEX16.match(sp["parentSpanId"])
        assert isinstance(sp["kind"], int) and sp["kind"] in (1, 3)
        assert sp.get("flags", 256) == 256
        for key in ("startTimeUnixNano", "endTimeUnixNano"):
            assert isinstance(sp[key], str) and sp[key].isdigit()
        for a in sp["attributes"]:
            assert set(a) == {"key", "value"} and len(a["value"]) == 1
            if "intValue" in a["value"]:
                assert isinstance(a["value"]["intValue"], str)
        st = sp["status"]
        assert st in ({}, {"code": 1}) or (st["code"] == 2 and st["message"])
        if st.get("code") == 2:
            ev = [e for e in sp.get("events", []) if e["name"] == "exception"]
            assert ev, sp["name"]
            keys = {a["key"] for a in ev[0]["attributes"]}
            assert {"exception.type", "exception.message", "exception.stacktrace"} <= keys
        assert sp["_res"]["service.name"] == "support-agent"
        assert sp["_res"]["deployment.environment.name"] in ("production", "staging")


@pytest.mark.parametrize("name", OTLP_FILES)
def test_trace_structure_and_export_batches(out: tuple[Path, dict[str, Any]], name: str) -> None:
    spans = read_otlp(out[0] / name)
    ids = {(s["traceId"], s["spanId"]): s for s in spans}
    assert len(ids) == len(spans), "duplicate span ids"
    split = 0
    for _tid, trace in by_trace(spans).items():
        root = root_of(trace)
        assert 2 <= len(trace) <= 60
        for s in trace:
            if s is root:
                continue
            assert s["parentSpanId"] == root["spanId"]
            # exported when they end: a child is never written after its parent
            assert s["_line"] <= root["_line"]
        split += len({s["_line"] for s in trace}) > 1
    assert split >= 3, "some traces should be split over several export lines"


@pytest.mark.parametrize("name", OTLP_FILES)
def test_span_times_nest_within_parents(out: tuple[Path, dict[str, Any]], name: str) -> None:
    start = int(samples.DEFAULT_START.timestamp()) * 10**9
    for trace in by_trace(read_otlp(out[0] / name)).values():
        root = root_of(trace)
        r0, r1 = int(root["startTimeUnixNano"]), int(root["endTimeUnixNano"])
        assert start <= r0 < start + 5 * 86400 * 10**9
        assert 1 * 10**9 <= r1 - r0 <= 180 * 10**9
        prev_end = r0
        for s in trace:
            if s is root:
                continue
            s0, s1 = int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])
            assert r0 <= s0 < s1 <= r1
            assert s0 >= prev_end  # the agent runs its steps one after another
            prev_end = s1


def test_daily_traffic_shape(views: dict[str, dict[str, Any]]) -> None:
    hours = Counter((int(v["root"]["startTimeUnixNano"]) // 10**9 // 3600) % 24 for v in views.values())
    working = sum(n for h, n in hours.items() if 8 <= h < 18)
    assert working > sum(hours.values()) / 2


# --------------------------------------------------------------------------------------------------
# dialects
# --------------------------------------------------------------------------------------------------


def test_openinference_dialect(out: tuple[Path, dict[str, Any]]) -> None:
    spans = read_otlp(out[0] / FILE_OPENINFERENCE)
    kinds = Counter(s["_attrs"]["openinference.span.kind"] for s in spans)
    assert set(kinds) == {"AGENT", "LLM", "TOOL", "RETRIEVER"}
    customers = set()
    for s in spans:
        a = s["_attrs"]
        meta = json.loads(a["metadata"])
        assert meta["feature"] in samples.FEATURES and meta["tenant_id"]
        assert re.match(r"^cust_\d{4}$", meta["customer_id"])
        customers.add(meta["customer_id"])
        assert a["user.id"] and a["session.id"]
        if a["openinference.span.kind"] == "AGENT":
            assert "parentSpanId" not in s and a["agent.name"] == "support-agent" and a["input.value"]
        if a["openinference.span.kind"] == "LLM" and s["status"].get("code") != 2:
            assert a["llm.token_count.total"] == a["llm.token_count.prompt"] + a["llm.token_count.completion"]
            assert a["llm.model_name"]
            assert a.get("llm.token_count.prompt_details.cache_read", 0) < a["llm.token_count.prompt"]
        if a["openinference.span.kind"] == "TOOL":
            assert a["tool.name"] == s["name"]
        if a["openinference.span.kind"] == "RETRIEVER":
            assert "retrieval.documents.0.document.content" in a
    assert 3 <= len(customers) <= 15
    llm = [s["_attrs"] for s in spans if s["_attrs"]["openinference.span.kind"] == "LLM"]
    assert any("llm.token_count.prompt_details.cache_read" in a for a in llm)
    assert {a.get("llm.system") for a in llm} == {"openai", "anthropic"}


def test_genai_dialect_new_and_legacy(out: tuple[Path, dict[str, Any]]) -> None:
    traces = by_trace(read_otlp(out[0] / FILE_GENAI))
    legacy = 0
    for trace in traces.values():
        root = root_of(trace)
        ra = root["_attrs"]
        assert root["name"] == "invoke_agent support-agent" and ra["gen_ai.operation.name"] == "invoke_agent"
        assert ra["gen_ai.agent.name"] == "support-agent"
        assert ra["user.id"] == ra["enduser.id"] and ra["gen_ai.conversation.id"]
        assert ra["app.feature"] in samples.FEATURES and ra["app.customer_id"].startswith("cust_")
        is_legacy = "gen_ai.system" in ra
        legacy += is_legacy
        llm = [s["_attrs"] for s in trace if s["name"].startswith(("chat ", "openai.chat", "anthropic.chat"))]
        if is_legacy:
            tin = sum(a.get("gen_ai.usage.prompt_tokens", 0) for a in llm)
            tout = sum(a.get("gen_ai.usage.completion_tokens", 0) for a in llm)
            assert (ra["gen_ai.usage.prompt_tokens"], ra["gen_ai.usage.completion_tokens"]) == (tin, tout)
            assert not any(k.startswith("gen_ai.provider.name") for a in llm for k in a)
            for a in llm:
                if "gen_ai.usage.prompt_tokens" in a:
                    assert a["llm.usage.total_tokens"] == a["gen_ai.usage.prompt_tokens"] + a["gen_ai.usage.completion_tokens"]
                    assert "gen_ai.prompt.0.role" in a
        else:
            tin = sum(a.get("gen_ai.usage.input_tokens", 0) for a in llm)
            tout = sum(a.get("gen_ai.usage.output_tokens", 0) for a in llm)
            # the root repeats the totals of its LLM children: consumers must not add them twice
            assert (ra["gen_ai.usage.input_tokens"], ra["gen_ai.usage.output_tokens"]) == (tin, tout)
            assert all(a["gen_ai.provider.name"] in ("openai", "anthropic") for a in llm)
            assert not any(k.startswith("gen_ai.prompt.") or k == "gen_ai.system" for a in llm for k in a)
        for s in trace:
            a = s["_attrs"]
            if s["status"].get("code") == 2:
                assert a["error.type"]
            if s["name"].startswith("execute_tool "):
                assert a["gen_ai.tool.name"] == s["name"].removeprefix("execute_tool ")
                json.loads(a["gen_ai.tool.call.arguments"]) if a["gen_ai.tool.name"] else None
    assert 0.1 <= legacy / len(traces) <= 0.3
    llm_all = [s["_attrs"] for t in traces.values() for s in t if s["name"].startswith("chat ")]
    with_content = [a for a in llm_all if "gen_ai.input.messages" in a]
    assert with_content and len(with_content) < len(llm_all)  # some runs do not capture content
    for a in with_content:
        for m in json.loads(a["gen_ai.input.messages"]):
            assert m["role"] in ("system", "user", "assistant", "tool") and isinstance(m["parts"], list)
    assert any("gen_ai.tool.definitions" in a for a in llm_all)
    assert any("gen_ai.usage.cache_read.input_tokens" in a for a in llm_all)


def test_models_and_token_counts_follow_text(views: dict[str, dict[str, Any]]) -> None:
    models = Counter()
    for v in views.values():
        for x in v["llms"]:
            models[(x["model"] or "").split("-20")[0]] += 1
            if x["error"] is not None:
                continue
            assert x["cache"] < x["in"]
    assert {"gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet", "acme-finetune-v1"} <= set(models)
    # OpenInference keeps the full request: prompt tokens ~ chars/4 of what was sent
    for v in views.values():
        for x in v["llms"]:
            a = x["span"]["_attrs"]
            if "input.value" not in a or x["error"] is not None:
                continue
            chars = sum(len(str(val)) for k, val in a.items() if k.startswith("llm.input_messages."))
            chars += sum(len(val) for k, val in a.items() if k.startswith("llm.tools."))
            if x["span"]["name"] == "Messages":
                chars += len(json.loads(a["llm.invocation_parameters"])["system"])
            assert 0.7 <= x["in"] / (chars / 4) <= 1.5, (x["in"], chars)


# --------------------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------------------


def test_labels_point_at_real_runs(out: tuple[Path, dict[str, Any]], labels: list[dict[str, Any]],
                                   views: dict[str, dict[str, Any]]) -> None:
    rows = {r["id"]: r for r in csv.DictReader((out[0] / FILE_CSV).open(encoding="utf-8", newline=""))}
    assert len({lab["run_id"] for lab in labels}) == len(labels)
    for lab in labels:
        assert set(lab) == {"run_id", "file", "modes", "status"}
        assert lab["status"] in ("ok", "error")
        assert lab["modes"] == sorted(set(lab["modes"]), key=FAILURE_MODES.index)  # catalogue order, no repeats
        if lab["file"] == FILE_CSV:
            row = rows[lab["run_id"]]
            is_error = row["response"].startswith('{"error"')
            assert is_error == (lab["status"] == "error")
        else:
            assert HEX32.match(lab["run_id"])
            v = views[lab["run_id"]]
            assert v["file"] == lab["file"]
            assert v["error"] == (lab["status"] == "error")
    assert {lab["file"] for lab in labels} == {FILE_OPENINFERENCE, FILE_GENAI, FILE_CSV}
    assert len(rows) == sum(lab["file"] == FILE_CSV for lab in labels)
    assert len(views) == sum(lab["file"] != FILE_CSV for lab in labels)


def test_every_failure_mode_appears_at_least_twice(labels: list[dict[str, Any]]) -> None:
    counts = Counter(m for lab in labels for m in lab["modes"])
    for mode in FAILURE_MODES:
        assert counts[mode] >= 2, mode
    healthy = sum(not lab["modes"] for lab in labels) / len(labels)
    assert 0.6 <= healthy <= 0.75
    for name in (FILE_OPENINFERENCE, FILE_GENAI, FILE_CSV):
        mine = [lab for lab in labels if lab["file"] == name]
        assert sum(not lab["modes"] for lab in mine) > len(mine) / 2, name


def test_failure_mode_names_match_the_catalogue() -> None:
    if not FAILURE_MODES_DOC.exists():
        pytest.skip("shared/reference/failure-modes.md not beside the checkout")
    names = re.findall(r"^\| `([a-z_]+)` \|", FAILURE_MODES_DOC.read_text(), flags=re.M)
    assert tuple(names) == FAILURE_MODES


def test_labels_agree_with_what_the_spans_show(labels: list[dict[str, Any]],
                                               views: dict[str, dict[str, Any]]) -> None:
    """A simple rule-based reader must find exactly the labelled modes in every OTLP run."""
    for lab in labels:
        if lab["file"] == FILE_CSV:
            continue
        v = views[lab["run_id"]]
        found = evidence(v, v["all_text"])
        assert found == set(lab["modes"]), (lab, sorted(found))


def test_prompt_injection_is_sometimes_acted_on(views: dict[str, dict[str, Any]]) -> None:
    acted = [v for v in views.values() if any(
        t["name"] == "send_email" and samples.ATTACKER_EMAIL in t["args"] for t in v["tools"])]
    assert acted
    for v in acted:
        first_seen = min(int(s["span"]["startTimeUnixNano"]) for s in v["tools"]
                         if "Ignore all previous instructions" in (s["result"] or ""))
        assert all(int(t["span"]["startTimeUnixNano"]) > first_seen for t in v["tools"]
                   if samples.ATTACKER_EMAIL in t["args"])


def test_untrusted_markup_run_is_present_and_healthy(out: tuple[Path, dict[str, Any]],
                                                     labels: list[dict[str, Any]],
                                                     views: dict[str, dict[str, Any]]) -> None:
    lab_by_id = {lab["run_id"]: lab for lab in labels}
    xss = [tid for tid, v in views.items() if "<script>alert(1)</script>" in v["root"]["_attrs"].get("input.value", "")]
    assert xss and all(lab_by_id[t]["modes"] == [] for t in xss)
    assert "<img src=x onerror=alert(1)>" in views[xss[0]]["root"]["_attrs"]["input.value"]
    rows = list(csv.DictReader((out[0] / FILE_CSV).open(encoding="utf-8", newline="")))
    assert any("<script>alert(1)</script>" in r["request"] and lab_by_id[r["id"]]["modes"] == [] for r in rows)


# --------------------------------------------------------------------------------------------------
# agent_runs.csv
# --------------------------------------------------------------------------------------------------


def test_agent_runs_csv_shape(out: tuple[Path, dict[str, Any]], labels: list[dict[str, Any]]) -> None:
    path = out[0] / FILE_CSV
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == samples.CSV_COLUMNS
        rows = list(reader)
    lab = {x["run_id"]: x for x in labels if x["file"] == FILE_CSV}
    created = [r["created_at"] for r in rows]
    assert created == sorted(created)
    for r in rows:
        assert r["id"].isdigit()
        assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$", r["created_at"])
        assert re.match(r"^\d+\.\d{6}$", r["cost_usd"])
        req = json.loads(r["request"])
        assert req["model"] and req["messages"][-1]["role"] == "user"
        assert set(req["metadata"]) >= {"feature", "customer_id", "session_id"}
        assert req["metadata"]["feature"] in samples.FEATURES
        tin, tout = int(r["tokens_in"]), int(r["tokens_out"])
        if "budget_exceeded" in lab[r["id"]]["modes"]:
            assert tin + tout > 200_000
        elif lab[r["id"]]["status"] == "ok":
            assert 100 < tin < 50_000 and 0 < tout
        if r["response"].startswith("{"):
            assert set(json.loads(r["response"])) == {"error"}
        if "refusal" in lab[r["id"]]["modes"]:
            assert r["response"] == samples.REFUSAL_TEXT


# --------------------------------------------------------------------------------------------------
# CLI and parameters
# --------------------------------------------------------------------------------------------------


def test_main_writes_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "s"), "--seed", "3", "--runs", "30", "--days", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == sorted(OUTPUT_FILES)
    assert "agent_runs.csv" in capsys.readouterr().out
    labels = [json.loads(x) for x in (tmp_path / "s" / FILE_LABELS).read_text().splitlines()]
    assert len(labels) == 30


@pytest.mark.parametrize("runs", [0, 3, 240])
def test_other_run_counts(tmp_path: Path, runs: int) -> None:
    manifest = generate(tmp_path, runs=runs, seed=11, days=1)
    labels = [json.loads(x) for x in (tmp_path / FILE_LABELS).read_text().splitlines()]
    assert len(labels) == runs == sum(manifest["files"][n]["runs"] for n in (FILE_OPENINFERENCE, FILE_GENAI, FILE_CSV))
    for name in OTLP_FILES:
        for line in (tmp_path / name).read_text().splitlines():
            assert "resourceSpans" in json.loads(line)
