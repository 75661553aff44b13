"""LangSmith runs: `Client.list_runs` / `runs.query` output (JSON Lines, a JSON array, CSV) and the
bulk export (Parquet, `runs/year=.../*.parquet`); also the SDK's own ingest payload
`{"post": [...], "patch": [...]}` (what `@traceable` and `wrap_openai` send).

One run is one span: `span_id` = run `id`, `parent_span_id` = `parent_run_id`, `run_id` (the agentlens
run) = the LangSmith `trace_id` (the root run's id). Missing `trace_id` / `parent_run_id` are read from
`dotted_order` (segments `<%Y%m%dT%H%M%S%fZ><run uuid>` joined by `.`: the first is the root, the
penultimate the parent). `run_type` gives the kind (llm, chain, tool, retriever, embedding; prompt
and parser are chains); the v2 query API's upper-case values are accepted.

LLM runs: tokens from the run's `prompt_tokens` / `completion_tokens` (+ `prompt_token_details`,
`completion_token_details`) when the export has them (LangSmith computes them), else from
`outputs.usage_metadata` as the SDK sends it (`input_tokens` includes cache reads, as in OTel), else
from a raw OpenAI `usage`; cost from `total_cost`. Model: the response's model, else
`extra.metadata.ls_model_name`, else the request's; provider `ls_provider`. Messages from OpenAI
request/response bodies and LangChain messages (chat.py). Chain runs in `list_runs` carry the token
totals of their children: they are stored on the span and, as for OTel agent spans, not added again.

Dimensions are looked up in `extra.metadata` (`metadata.thread_id` / `session_id` /
`conversation_id` are LangSmith's thread keys) and the tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import IO, Any

from ..core.config import Config
from . import records
from .base import SPAN_SCHEMA, Bad, Batch, Columns, check_span, failure, flag, to_json
from .chat import lc_class, to_messages
from .records import RecordError, listing, mapping, micros
from .semconv import (
    LANGSMITH_KINDS,
    as_float,
    as_int,
    as_text,
    dimensions,
    error_type_from_message,
    langchain_tool_message,
    not_counts,
    parse_json,
    reasoning_from_total,
    tool_definitions,
)

NAME = "langsmith"
BATCH_SPANS = 20_000

_SEGMENT = re.compile(r"^(\d{8}T\d{6}\d*Z?)?([0-9a-fA-F-]{32,36})$")
_ERROR_TYPE = re.compile(r"^([A-Za-z_][\w.]*)(?:\(|: )")


def _is_run_keys(keys: set[str]) -> bool:
    return "run_type" in keys and bool(keys & {"dotted_order", "trace_id", "parent_run_id", "start_time"})


def sniff(head: bytes, filename: str) -> bool:
    if head.startswith(b"PAR1"):  # the store appends the footer, where the column names are
        return b"run_type" in head and b"dotted_order" in head
    keys = records.first_record_keys(head)
    if keys & {"post", "patch"} and b'"run_type"' in head[:65536]:
        return True
    return _is_run_keys(keys)


# --- ids -------------------------------------------------------------------------------------------


def dotted_ids(dotted: str | None) -> list[str]:
    """Run ids along a dotted_order, root first."""
    out = []
    for seg in (dotted or "").split("."):
        m = _SEGMENT.match(seg.strip())
        if m:
            out.append(m.group(2).lower())
    return out


# --- fields ----------------------------------------------------------------------------------------


def _obj(v: Any, field: str) -> dict[str, Any]:
    try:
        return mapping(v, field)
    except RecordError:
        return {"value": as_text(v)}


def _money(v: Any) -> float | None:
    """Costs: numbers, decimal strings, Decimals (Parquet decimal columns)."""
    if isinstance(v, Decimal):
        return float(v)
    return as_float(v)


def _sub(d: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    v = d.get(key)
    return v if isinstance(v, Mapping) else {}


def _usage(run: Mapping[str, Any], outputs: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict[str, Any]:
    cols: dict[str, Any] = {}
    p, c = as_int(run.get("prompt_tokens")), as_int(run.get("completion_tokens"))
    um = outputs.get("usage_metadata") or metadata.get("usage_metadata")
    if not isinstance(um, Mapping):
        um = _generation_usage(outputs)
    if p is not None or c is not None:
        pd: Mapping[str, Any] = _obj(run.get("prompt_token_details"), "prompt_token_details")
        cd: Mapping[str, Any] = _obj(run.get("completion_token_details"), "completion_token_details")
        if not pd and not cd and isinstance(um, Mapping) and (
                as_int(um.get("input_tokens")), as_int(um.get("output_tokens"))) == (p, c):
            pd, cd = _sub(um, "input_token_details"), _sub(um, "output_token_details")  # same call's details
        cols.update(input_tokens=p, output_tokens=c, cached_input_tokens=as_int(pd.get("cache_read")),
                    cache_write_input_tokens=as_int(pd.get("cache_write", pd.get("cache_creation"))),
                    reasoning_tokens=as_int(cd.get("reasoning")))
        reasoning_from_total(cols, as_int(run.get("total_tokens")))
        return cols
    if isinstance(um, Mapping):
        itd = _sub(um, "input_token_details")
        otd = _sub(um, "output_token_details")
        cols.update(input_tokens=as_int(um.get("input_tokens")), output_tokens=as_int(um.get("output_tokens")),
                    cached_input_tokens=as_int(itd.get("cache_read")),
                    cache_write_input_tokens=as_int(itd.get("cache_creation", itd.get("cache_write"))),
                    reasoning_tokens=as_int(otd.get("reasoning")))
        reasoning_from_total(cols, as_int(um.get("total_tokens")))
        return cols
    raw = outputs.get("usage")  # a raw OpenAI response body
    if isinstance(raw, Mapping) and ("prompt_tokens" in raw or "completion_tokens" in raw):
        ptd = _sub(raw, "prompt_tokens_details")
        ctd = _sub(raw, "completion_tokens_details")
        cols.update(input_tokens=as_int(raw.get("prompt_tokens")), output_tokens=as_int(raw.get("completion_tokens")),
                    cached_input_tokens=as_int(ptd.get("cached_tokens")),
                    reasoning_tokens=as_int(ctd.get("reasoning_tokens")))
    return cols


def _generation_usage(outputs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A LangChain LLMResult: the first generation's AIMessage carries usage_metadata."""
    gens = outputs.get("generations")
    if isinstance(gens, list) and gens:
        first = gens[0][0] if isinstance(gens[0], list) and gens[0] else gens[0]
        if isinstance(first, Mapping):
            msg = first.get("message")
            if isinstance(msg, Mapping):
                fields = msg.get("kwargs") if lc_class(msg) else msg
                if isinstance(fields, Mapping) and isinstance(fields.get("usage_metadata"), Mapping):
                    return fields["usage_metadata"]
    return None


def _model(outputs: Mapping[str, Any], metadata: Mapping[str, Any], inputs: Mapping[str, Any],
           invocation: Mapping[str, Any]) -> str | None:
    m = outputs.get("model")
    if isinstance(m, str) and m:
        return m
    gens = outputs.get("generations")
    if isinstance(gens, list) and gens:
        first = gens[0][0] if isinstance(gens[0], list) and gens[0] else gens[0]
        msg = first.get("message") if isinstance(first, Mapping) else None
        fields = (msg.get("kwargs") if lc_class(msg) else msg) if isinstance(msg, Mapping) else None
        rm = fields.get("response_metadata") if isinstance(fields, Mapping) else None
        if isinstance(rm, Mapping) and isinstance(rm.get("model_name") or rm.get("model"), str):
            return rm.get("model_name") or rm.get("model")
    llm_output = outputs.get("llm_output")
    if isinstance(llm_output, Mapping) and isinstance(llm_output.get("model_name"), str):
        return llm_output["model_name"]
    for v in (metadata.get("ls_model_name"), invocation.get("model"), invocation.get("model_name"), inputs.get("model")):
        if isinstance(v, str) and v:
            return v
    return None


def _error(err: Any) -> tuple[str | None, str | None]:
    """(exception type, message) from LangSmith's error text: `ValueError('msg')` + traceback."""
    text = as_text(err)
    if not text:
        return None, None
    lines = [x for x in text.strip().splitlines() if x.strip()]
    last = lines[-1].strip() if lines else text
    m = _ERROR_TYPE.match(last) if "Traceback" in text else None
    if m and ": " in last:
        return m.group(1), last.split(": ", 1)[1]
    m = _ERROR_TYPE.match(lines[0].strip()) if lines else None
    first = lines[0].strip() if lines else text
    return (m.group(1) if m else error_type_from_message(first)), first


def _payload(d: Mapping[str, Any], key: str) -> str | None:
    """Inputs / outputs as text: a lone `input` / `output` value as it is, else the JSON object."""
    if not d:
        return None
    if set(d) == {key}:
        return as_text(d[key])
    return to_json(d)


def _tool_definitions(inputs: Mapping[str, Any], invocation: Mapping[str, Any]) -> str | None:
    for body in (inputs, invocation):
        defs = tool_definitions({"input.value": body}) if isinstance(body.get("tools"), list) else None
        if defs:
            return to_json(defs)
    return None


def _events(v: Any) -> list[dict[str, Any]]:
    out = []
    for e in listing(v):
        e = parse_json(e)
        if isinstance(e, Mapping):
            kw = e.get("kwargs")
            out.append({"name": e.get("name"), "time": as_text(e.get("time")),
                        "attributes": dict(kw) if isinstance(kw, Mapping) else {}})
    return out


def run_row(run: Mapping[str, Any], config: Config, filename: str) -> tuple[dict[str, Any], Bad | None]:
    run_id = as_text(run.get("id"))
    if not run_id:
        raise RecordError("missing_field", "run has no id")
    run_id = run_id.lower()
    chain = dotted_ids(as_text(run.get("dotted_order")))
    trace_id = (as_text(run.get("trace_id")) or (chain[0] if chain else None) or "").lower() or None
    parent = as_text(run.get("parent_run_id"))
    if parent is None and len(chain) >= 2 and chain[-1] == run_id:
        parent = chain[-2]
    parent = parent.lower() if parent else None
    if trace_id is None:
        if parent is not None:
            raise RecordError("missing_field", f"run {run_id} has a parent but no trace_id or dotted_order")
        trace_id = run_id

    run_type = (as_text(run.get("run_type")) or "").lower()
    kind = LANGSMITH_KINDS.get(run_type, "other")
    inputs = _obj(run.get("inputs"), "inputs")
    outputs = _obj(run.get("outputs"), "outputs")
    extra = _obj(run.get("extra"), "extra")
    metadata = _obj(run.get("metadata") or extra.get("metadata"), "extra.metadata")
    invocation = _obj(extra.get("invocation_params"), "extra.invocation_params")
    runtime = _obj(extra.get("runtime"), "extra.runtime")
    tags = [t for t in listing(run.get("tags")) if isinstance(t, str)]
    start = micros(run.get("start_time"), "start_time")
    end = micros(run.get("end_time"), "end_time")
    status_text = (as_text(run.get("status")) or "").lower()
    error_type, error_message = _error(run.get("error"))
    failed = error_message is not None or status_text == "error"

    row: dict[str, Any] = {
        "run_id": trace_id, "span_id": run_id, "parent_span_id": parent, "name": as_text(run.get("name")) or run_type,
        "kind": kind, "status": "error" if failed else "ok", "status_message": error_message,
        "error_type": error_type, "cost_usd": _money(run.get("total_cost")),
        "tool_calls": None, "tool_definitions": None, "finish_reason": None,
    }
    provider = metadata.get("ls_provider")
    row["provider"] = provider.lower() if isinstance(provider, str) else None
    row.update(_usage(run, outputs, metadata))
    problems = not_counts((k, run.get(k)) for k in ("prompt_tokens", "completion_tokens", "total_tokens"))
    if problems:
        row["_problems"] = problems  # flagged by base.impossible
    if row["cost_usd"] is None and isinstance(outputs.get("usage_metadata"), Mapping):
        row["cost_usd"] = _money(outputs["usage_metadata"].get("total_cost"))

    if kind in ("llm", "embedding"):
        row["model"] = _model(outputs, metadata, inputs, invocation)
        in_msgs = to_messages(inputs)
        if in_msgs is None and isinstance(inputs.get("prompts"), list):
            in_msgs = [{"role": "user", "content": as_text(p)} for p in inputs["prompts"]]
        out_msgs = to_messages(outputs)
        row["input"] = to_json(in_msgs) if in_msgs else _payload(inputs, "input")
        row["output"] = to_json(out_msgs) if out_msgs else _payload(outputs, "output")
        if out_msgs:
            calls = [c for m in out_msgs for c in m.get("tool_calls", ())]
            row["tool_calls"] = to_json(calls) if calls else None
            row["finish_reason"] = next((str(m["finish_reason"]) for m in out_msgs if m.get("finish_reason")), None)
        if row["finish_reason"] is None and isinstance(outputs.get("choices"), list) and outputs["choices"]:
            c0 = outputs["choices"][0]
            row["finish_reason"] = as_text(c0.get("finish_reason")) if isinstance(c0, Mapping) else None
        row["tool_definitions"] = _tool_definitions(inputs, invocation)
    elif kind == "tool":
        row["tool_name"] = row["name"]
        tool_msg = langchain_tool_message(outputs.get("output", outputs))
        row["tool_arguments"] = _payload(inputs, "input")
        if isinstance(tool_msg, Mapping):
            row["tool_call_id"] = as_text(tool_msg.get("tool_call_id"))
            row["tool_result"] = as_text(tool_msg.get("content"))
        else:
            row["tool_result"] = _payload(outputs, "output")
        if row.get("tool_call_id") is None:
            row["tool_call_id"] = as_text(inputs.get("tool_call_id") or metadata.get("tool_call_id"))
        row["input"], row["output"] = row["tool_arguments"], row["tool_result"]
    else:
        row["input"], row["output"] = _payload(inputs, "input"), _payload(outputs, "output")

    first_token = micros(run.get("first_token_time"), "first_token_time")
    events = _events(run.get("events"))
    if first_token is None:
        tok = next((e for e in events if e["name"] == "new_token" and e["time"]), None)
        if tok is not None:
            try:
                first_token = micros(tok["time"], "events.time")
            except RecordError:
                first_token = None
    if first_token is not None and start is not None and first_token >= start:
        row["time_to_first_token_ms"] = (first_token - start) / 1000.0

    attrs: dict[str, Any] = {
        "langsmith.run_type": run_type or None,
        "metadata": metadata or None,
        "tags": tags or None,
        "langsmith.project": as_text(run.get("session_name")),
        "langsmith.project_id": as_text(run.get("session_id") or run.get("project_id")),
        "langsmith.dotted_order": as_text(run.get("dotted_order")),
        "langsmith.reference_example_id": as_text(run.get("reference_example_id")),
        "langsmith.feedback_stats": parse_json(run.get("feedback_stats")) or None,
        "langsmith.thread_id": as_text(run.get("thread_id")),
        "invocation_params": invocation or None,
    }
    attrs = {k: v for k, v in attrs.items() if v is not None}

    note = None
    if start is None:
        note = Bad("missing_field", f"run {run_id} has no start_time; stored without times", "",
                   run_id=trace_id, span_id=run_id, stored=True)
        end = None
    elif end is not None and end < start:
        note = Bad("end_before_start", f"run {run_id} ends before it starts; stored without an end time", "",
                   run_id=trace_id, span_id=run_id, stored=True)
        end = None
    row.update(
        started_at=start, ended_at=end,
        duration_ms=None if start is None or end is None else (end - start) / 1000.0,
        attributes=to_json(attrs), events=to_json(events) if events else None,
        resource_attributes=to_json(runtime) if runtime else None, scope_name=as_text(runtime.get("sdk")),
        service_name=None, source=NAME, source_file=filename,
    )
    row.update(dimensions(config, attrs, {"thread_id": attrs.get("langsmith.thread_id")}))
    return row, note


# --- reading ---------------------------------------------------------------------------------------


def merge_operations(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The SDK's ingest payload `{post: [...], patch: [...]}` -> one record per run."""
    merged: dict[str, dict[str, Any]] = {}
    for op in ("post", "patch"):
        ops = payload.get(op) or []
        for r in ops if isinstance(ops, list) else ():
            if not isinstance(r, Mapping):
                continue
            # the JS SDK's patch entries carry no `id`: the run is the last run of their dotted_order
            rid = r.get("id") or next(iter(dotted_ids(as_text(r.get("dotted_order")))[-1:]), None)
            if not rid:
                continue
            cur = merged.setdefault(str(rid).lower(), {"id": rid})
            for k, v in r.items():
                if k == "extra" and isinstance(cur.get("extra"), Mapping) and isinstance(v, Mapping):
                    cur["extra"] = {**cur["extra"], **v}
                elif v is not None or k not in cur:
                    cur[k] = v
    return list(merged.values())


def read(stream: IO[bytes], filename: str, config: Config) -> Iterator[Batch]:
    cols = Columns(SPAN_SCHEMA)
    bad: list[Bad] = []

    def add(run: Mapping[str, Any], line: int | None) -> None:
        where = f"record {line}: " if line is not None else ""
        try:
            row, note = run_row(run, config, filename)
        except MemoryError:
            raise
        except RecordError as e:
            bad.append(Bad(e.kind, where + str(e), records.dump(run), line, run_id=_id(run.get("trace_id")),
                           span_id=_id(run.get("id"))))
            return
        except Exception as e:  # a shape no rule foresaw: this run alone is kept out
            b = failure(e, records.dump(run), line, "run")
            b.reason = b.reason.replace(f"line {line}: ", where, 1)
            b.run_id, b.span_id = _id(run.get("trace_id")), _id(run.get("id"))
            bad.append(b)
            return
        problems = check_span(row)
        cols.append(row, line, checked=True)
        if note is not None:
            note.raw, note.line, note.reason = records.dump(run), line, where + note.reason
            bad.append(note)
        if problems:
            bad.append(flag(problems, records.dump(run), line, row["run_id"], row["span_id"], f"run {row['span_id']}"))

    for line, rec, b in records.read(stream):
        if b is not None:
            bad.append(b)
        elif rec is not None:
            if ("post" in rec or "patch" in rec) and "run_type" not in rec:
                try:
                    runs = merge_operations(rec)
                except MemoryError:
                    raise
                except Exception as e:
                    bad.append(failure(e, records.dump(rec), line, "payload"))
                    runs = []
                for run in runs:
                    add(run, line)
            elif "run_type" in rec or "dotted_order" in rec:
                add(rec, line)
            else:
                bad.append(Bad("missing_field", f"record {line}: not a LangSmith run (no run_type); keys: "
                               f"{', '.join(sorted(map(str, rec))[:8])}", records.dump(rec), line))
        if cols.rows >= BATCH_SPANS or len(bad) >= BATCH_SPANS:
            yield Batch(spans=cols.take(bad), bad=bad, bytes_read=records.position(stream))
            bad = []
    yield Batch(spans=cols.take(bad), bad=bad, bytes_read=records.position(stream))


def _id(v: Any) -> str | None:
    """An id for a quarantine row: text as given (cut to 200 characters), None for anything else."""
    return v[:200] if isinstance(v, str) else None
