"""Langfuse exports: the single-trace download, the UI's CSV/JSON exports and the blob-storage export.

Layouts read (trace-formats.md section 6):
- single-trace download: one JSON document `{"trace": {...}, "observations": [...]}` (camelCase);
  each observation's `metadata` is JSON text whose `attributes`, `resourceAttributes` and `scope`
  hold the original OpenTelemetry span when the data came in over OTel;
- UI export (CSV or a JSON array) of the observations table (camelCase observations plus
  `traceName`, `traceTags`, `userId`) or of the traces table (`id, timestamp, name, userId,
  sessionId, tags, usage, totalCost, latency, ...`); CSV holds nested values as JSON text;
- blob-storage export (Parquet, JSON, JSON Lines, CSV, `.gz` too): `observations_v2/` (snake_case
  observations with their trace's `user_id, session_id, trace_name, tags, release`), legacy
  `observations/` and `traces/`. `scores/` and `manifests/` files are not traces and are skipped.

Mapping. An observation is a span (`span_id` = observation id, `run_id` = trace id). The original
OTel attributes go through `semconv.normalize_span` like any OTLP span; Langfuse's own fields then
fill what the attributes lack: `type` gives the kind when the attributes give none (GENERATION ->
llm, TOOL -> tool, AGENT -> agent, ...), `model` / `provided_model_name`, `usageDetails`, cost,
`level: ERROR` + `statusMessage`, `input` / `output` (messages normalised by `chat.to_messages`),
`toolCalls`, `completionStartTime`. A LangChain tool run recorded by the Langfuse callback as a plain
span (its output is a `ToolMessage`) is a tool span. A trace record (the download's `trace`, a row
of a traces export) carries the trace's name, input, output, user, session, tags and metadata. In a
download it is merged into the root observation, or, when no observation is a root (the root never
arrived), stored as the root span `span_id = "trace"` (kind `chain`); a traces-export row is always that
span. Observations keep their own parents.

Tokens. Attribute usage wins (OTel semantics: cached tokens are part of input). Otherwise
`usageDetails` is read with Langfuse's semantics: recent ingestion subtracts cache and reasoning
details from `input` / `output`, older data did not; the `total` key tells which (input + output =
total means the details are already inside), and without a `total` the details are added back.
Langfuse's cost is kept only when it prices the same tokens agentlens stores.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import IO, Any

from ..core.config import Config
from . import records
from .base import SPAN_SCHEMA, Bad, Batch, Columns, check_span, failure, flag, to_json
from .chat import to_messages, tool_call
from .records import RecordError, listing, mapping, micros, unwrap_text
from .semconv import (
    as_float,
    as_int,
    as_text,
    dimensions,
    input_messages,
    langchain_tool_message,
    normalize_span,
    not_counts,
    output_messages,
    parse_json,
    reasoning_from_total,
    tool_definitions,
)

NAME = "langfuse"
BATCH_SPANS = 20_000
TRACE_SPAN_ID = "trace"  # the span a trace record becomes
DEFAULT_ENVIRONMENT = "default"  # what Langfuse shows when no environment was given: stored as NULL

_SINGLE_TRACE = re.compile(rb'^\s*\{\s*"trace"\s*:\s*\{')
OBS_TYPES = {"SPAN", "GENERATION", "EVENT", "AGENT", "TOOL", "CHAIN", "RETRIEVER", "EVALUATOR",
             "EMBEDDING", "GUARDRAIL"}


def _has(keys: set[str], *names: str) -> bool:
    return any(n in keys for n in names)


def _is_observation_keys(keys: set[str]) -> bool:
    return (_has(keys, "traceId", "trace_id") and _has(keys, "startTime", "start_time")
            and _has(keys, "parentObservationId", "parent_observation_id", "usageDetails", "usage_details",
                      "usage", "level"))


def _is_trace_keys(keys: set[str]) -> bool:
    return ("id" in keys and "timestamp" in keys and _has(keys, "sessionId", "session_id")
            and _has(keys, "bookmarked", "public", "tags") and not _has(keys, "trace_id", "traceId", "run_type"))


def sniff(head: bytes, filename: str) -> bool:
    if head.startswith(b"PAR1"):
        # the store appends the file's footer, where Parquet keeps the column names
        return (b"parent_observation_id" in head and b"usage_details" in head) or (
            b"bookmarked" in head and b"session_id" in head and b"timestamp" in head
            and b"observation_id" not in head and b"run_type" not in head)
    if _SINGLE_TRACE.match(head):
        return True
    keys = records.first_record_keys(head)
    return _is_observation_keys(keys) or _is_trace_keys(keys)


# --- field access ----------------------------------------------------------------------------------


def _g(d: Mapping[str, Any], camel: str, snake: str | None = None) -> Any:
    v = d.get(camel)
    if (v is None or v == "") and snake is not None:
        v = d.get(snake)
    return None if v == "" else v


def _text(v: Any) -> str | None:
    v = unwrap_text(v)
    if v is None or v == "":
        return None
    return as_text(v)


def _service(resource: Mapping[str, Any]) -> str | None:
    """`service.name`, unless it is the OTel SDK's placeholder for "not configured"."""
    s = as_text(resource.get("service.name"))
    return None if not s or s.startswith("unknown_service") else s


def _environment(v: Any) -> str | None:
    s = as_text(v)
    return None if not s or s == DEFAULT_ENVIRONMENT else s


def _split_metadata(v: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Observation/trace metadata -> (OTel attributes, resource attributes, scope, user metadata)."""
    try:
        md = mapping(v, "metadata")
    except RecordError:
        md = {"value": as_text(v)}
    otel = md.pop("attributes", None)
    resource = md.pop("resourceAttributes", None)
    scope = md.pop("scope", None)
    return (
        dict(otel) if isinstance(otel, Mapping) else {},
        dict(resource) if isinstance(resource, Mapping) else {},
        dict(scope) if isinstance(scope, Mapping) else {},
        md,
    )


# --- usage ------------------------------------------------------------------------------------------


def _input_side(k: str) -> bool:
    return k.startswith(("input", "prompt", "cache_read", "cache_creation", "cached"))


def _output_side(k: str) -> bool:
    return k.startswith(("output", "completion", "reasoning"))


def usage(details: Mapping[str, Any]) -> dict[str, int | None] | None:
    """Langfuse `usageDetails` -> canonical token columns (input includes cached, output includes
    reasoning), or None when there is no usage."""
    vals: dict[str, int] = {}
    for k, v in details.items():
        n = as_int(v)
        if n is not None:
            vals[str(k)] = n
    if not vals:
        return None
    total = vals.pop("total", None)
    in_base, out_base = vals.pop("input", None), vals.pop("output", None)
    in_det = {k: v for k, v in vals.items() if _input_side(k)}
    out_det = {k: v for k, v in vals.items() if _output_side(k) and k not in in_det}

    def part(d: dict[str, int], *needles: str) -> int | None:
        hits = [v for k, v in d.items() if any(n in k for n in needles)]
        return sum(hits) if hits else None

    det = sum(in_det.values()) + sum(out_det.values())
    included = total is not None and det > 0 and (in_base or 0) + (out_base or 0) == total
    if included:
        inp, out = in_base, out_base
    else:
        inp = None if in_base is None and not in_det else (in_base or 0) + sum(in_det.values())
        out = None if out_base is None and not out_det else (out_base or 0) + sum(out_det.values())
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cached_input_tokens": part(in_det, "cache_read", "cached"),
        "cache_write_input_tokens": part(in_det, "cache_creation", "cache_write"),
        "reasoning_tokens": part(out_det, "reasoning"),
    }


def _legacy_usage(u: Any) -> dict[str, Any]:
    """The UI export's `usage: {input, output, total, unit}` (tokens only)."""
    try:
        d = mapping(u, "usage")
    except RecordError:
        return {}
    if d.get("unit") not in (None, "TOKENS"):
        return {}
    return {k: d[k] for k in ("input", "output", "total") if d.get(k) is not None}


def _cost(o: Mapping[str, Any], has_usage: bool) -> float | None:
    try:
        cd = mapping(_g(o, "costDetails", "cost_details"), "costDetails")
    except RecordError:
        cd = {}
    if cd:
        if cd.get("total") is not None:
            return as_float(cd["total"])
        vals = [as_float(v) for v in cd.values()]
        if all(v is not None for v in vals):
            return float(sum(v for v in vals if v is not None))
    tc = as_float(_g(o, "totalCost", "total_cost"))
    if tc is not None and (tc > 0 or has_usage):
        return tc
    return None


# --- observations -----------------------------------------------------------------------------------


def trace_context(t: Mapping[str, Any]) -> dict[str, Any]:
    """Trace-level fields as the attributes the Langfuse SDK itself sends over OTel."""
    ctx = {
        "langfuse.trace.name": as_text(_g(t, "name")),
        "langfuse.trace.tags": listing(_g(t, "tags")) or None,
        "user.id": as_text(_g(t, "userId", "user_id")),
        "session.id": as_text(_g(t, "sessionId", "session_id")),
        "langfuse.environment": _environment(_g(t, "environment")),
        "langfuse.release": as_text(_g(t, "release")),
    }
    return {k: v for k, v in ctx.items() if v is not None}


def _observation_context(o: Mapping[str, Any]) -> dict[str, Any]:
    """Trace fields denormalised onto an observation row (observations_v2, the UI export)."""
    ctx = {
        "langfuse.trace.name": _g(o, "traceName", "trace_name"),
        "langfuse.trace.tags": listing(_g(o, "traceTags", "tags")) or None,
        "user.id": as_text(_g(o, "userId", "user_id")),
        "session.id": as_text(_g(o, "sessionId", "session_id")),
        "langfuse.release": as_text(_g(o, "release")),
    }
    return {k: v for k, v in ctx.items() if v is not None}


def _langchain_tool(out: Any) -> Mapping[str, Any] | None:
    """The fields of a LangChain ToolMessage when an observation's output is one."""
    return langchain_tool_message(unwrap_text(out))


def observation_row(
    o: Mapping[str, Any], ctx: Mapping[str, Any], config: Config, filename: str
) -> tuple[dict[str, Any], Bad | None]:
    obs_id = as_text(_g(o, "id"))
    trace_id = as_text(_g(o, "traceId", "trace_id"))
    if not trace_id:
        raise RecordError("missing_field", f"observation {obs_id or '?'} has no traceId")
    if not obs_id:
        raise RecordError("missing_field", f"an observation of trace {trace_id} has no id")
    parent = as_text(_g(o, "parentObservationId", "parent_observation_id")) or None
    typ = (as_text(_g(o, "type")) or "SPAN").upper()
    name = as_text(_g(o, "name")) or ""
    level = (as_text(_g(o, "level")) or "DEFAULT").upper()
    status_message = as_text(_g(o, "statusMessage", "status_message"))
    start = micros(_g(o, "startTime", "start_time"), "startTime")
    end = micros(_g(o, "endTime", "end_time"), "endTime")
    otel, resource, scope, user_md = _split_metadata(_g(o, "metadata"))
    code = 2 if level == "ERROR" else 0

    typed = typ in OBS_TYPES and typ not in ("SPAN", "EVENT")
    row = normalize_span(otel or ({"langfuse.observation.type": typ.lower()} if typed else {}),
                         name, code, status_message, [])
    if row["kind"] == "other" and typed and otel:
        # the attributes name no kind: Langfuse's type does (it mapped the same attributes, or the
        # Langfuse SDK set it); normalising again with it also reads messages and tool definitions
        row = normalize_span({**otel, "langfuse.observation.type": typ.lower()}, name, code, status_message, [])
    kind = row["kind"]

    lf_in, lf_out = _g(o, "input"), _g(o, "output")
    tool_msg = _langchain_tool(lf_out) if kind in ("other", "tool") and row["tool_result"] is None else None
    if tool_msg is not None:  # a LangChain tool run (the Langfuse callback records it as a plain span)
        kind = row["kind"] = "tool"
        row["tool_name"] = row["tool_name"] or as_text(tool_msg.get("name")) or name
        row["tool_call_id"] = row["tool_call_id"] or as_text(tool_msg.get("tool_call_id"))
        row["tool_arguments"] = row["tool_arguments"] or _text(lf_in)
        row["tool_result"] = _text(tool_msg.get("content"))
        if tool_msg.get("status") == "error" and row["status"] == "ok":
            row["status"], row["status_message"] = "error", row["status_message"] or row["tool_result"]

    # model and provider
    row["model"] = row["model"] or as_text(_g(o, "model", "provided_model_name")) or as_text(user_md.get("ls_model_name"))
    if row["provider"] is None and isinstance(user_md.get("ls_provider"), str):
        row["provider"] = user_md["ls_provider"].lower()

    # tokens and cost
    try:
        details = mapping(_g(o, "usageDetails", "usage_details"), "usageDetails")
    except RecordError:
        details = {}
    lf_usage = usage(details or _legacy_usage(_g(o, "usage")))
    problems = not_counts((f"usageDetails.{k}", v) for k, v in details.items())
    if lf_usage is not None and typ not in ("GENERATION", "EMBEDDING") and not any(lf_usage.values()):
        lf_usage = None  # exports fill zeros into the usage of spans, tools and events
    cost_ok = True
    if row["input_tokens"] is None and row["output_tokens"] is None:
        if lf_usage is not None:
            row.update(lf_usage)
            # thinking tokens in the total only: stored as reasoning. Langfuse priced input + output without
            # them; its figure is still what it reported (kept: reconciliation flags the difference, and the
            # headline takes the computed one by default, [pricing] headline_cost)
            legacy = _legacy_usage(_g(o, "usage")) if not details else {}
            reasoning_from_total(row, as_int((details or legacy).get("total")))
    elif lf_usage is not None:
        same = (lf_usage["input_tokens"], lf_usage["output_tokens"]) == (row["input_tokens"], row["output_tokens"])
        # Langfuse priced other token counts (a tokenizer's estimate): leave it to pricing. The same counts
        # but for thinking tokens the attributes give in a total only (Vertex AI) are Langfuse's own reading
        # of this call: its figure is kept as reported, and reconciliation flags the difference.
        out, reasoning = row["output_tokens"], row["reasoning_tokens"] or 0
        cost_ok = same or (lf_usage["input_tokens"] == row["input_tokens"] and out is not None
                           and lf_usage["output_tokens"] == out - reasoning and not lf_usage["reasoning_tokens"])
        if same:
            for k in ("cached_input_tokens", "cache_write_input_tokens", "reasoning_tokens"):
                if row[k] is None:
                    row[k] = lf_usage[k]
    if row["cost_usd"] is None and cost_ok:
        row["cost_usd"] = _cost(o, lf_usage is not None)

    if row["time_to_first_token_ms"] is None and start is not None:
        first = micros(_g(o, "completionStartTime", "completion_start_time"), "completionStartTime")
        if first is not None and first >= start:
            row["time_to_first_token_ms"] = (first - start) / 1000.0

    # input and output: the attributes' messages, else Langfuse's
    if kind in ("llm", "embedding"):
        if input_messages(otel, []) is None:
            msgs = to_messages(lf_in)
            row["input"] = to_json(msgs) if msgs else (row["input"] or _text(lf_in))
        if output_messages(otel, []) is None:
            msgs = to_messages(lf_out)
            if msgs:
                row["output"] = to_json(msgs)
                calls = [c for m in msgs for c in m.get("tool_calls", ())]
                row["tool_calls"] = to_json(calls) if calls else row["tool_calls"]
                if row["finish_reason"] is None:
                    row["finish_reason"] = next((str(m["finish_reason"]) for m in msgs if m.get("finish_reason")), None)
            else:
                row["output"] = row["output"] or _text(lf_out)
        if row["tool_calls"] is None:
            row["tool_calls"] = _tool_calls(o)
        if row["tool_definitions"] is None:
            row["tool_definitions"] = _tool_definitions(_g(o, "toolDefinitions", "tool_definitions"))
    elif kind == "tool":
        row["tool_arguments"] = row["tool_arguments"] or _text(lf_in)
        row["tool_result"] = row["tool_result"] or _text(lf_out)
        row["input"], row["output"] = row["tool_arguments"], row["tool_result"]
    else:
        row["input"] = row["input"] or _text(lf_in)
        row["output"] = row["output"] or _text(lf_out)

    attrs: dict[str, Any] = dict(otel)
    own = {
        "langfuse.observation.type": typ,
        "langfuse.observation.level": level,
        "langfuse.observation.model.name": as_text(_g(o, "model", "provided_model_name")),
        "langfuse.observation.model.parameters": _json_or_none(_g(o, "modelParameters", "model_parameters")),
        "langfuse.observation.usage_details": details or None,
        "langfuse.observation.cost_details": _json_or_none(_g(o, "costDetails", "cost_details")),
        "langfuse.observation.prompt.name": as_text(_g(o, "promptName", "prompt_name")),
        "langfuse.observation.prompt.version": _g(o, "promptVersion", "prompt_version"),
        "langfuse.observation.version": as_text(_g(o, "version")),
        "langfuse.environment": _environment(_g(o, "environment")),
        **_observation_context(o),
        **ctx,
    }
    for k, v in own.items():
        if v is not None:
            attrs.setdefault(k, v)
    if user_md and "metadata" not in attrs:
        attrs["metadata"] = user_md

    note = None
    if start is None:
        note = Bad("missing_field", f"observation {obs_id} has no startTime; stored without times", "",
                   run_id=trace_id, span_id=obs_id, stored=True)
        end = None
    elif end is not None and end < start:
        note = Bad("end_before_start", f"observation {obs_id} ends before it starts; stored without an end time",
                   "", run_id=trace_id, span_id=obs_id, stored=True)
        end = None
    row.update(
        kind=kind, run_id=trace_id, span_id=obs_id, parent_span_id=parent, started_at=start, ended_at=end,
        duration_ms=None if start is None or end is None else (end - start) / 1000.0,
        attributes=to_json(attrs), events=None, resource_attributes=to_json(resource) if resource else None,
        scope_name=as_text(scope.get("name")), service_name=_service(resource),
        source=NAME, source_file=filename,
    )
    row.update(dimensions(config, attrs, resource))
    if problems:
        row["_problems"] = [*row.get("_problems", ()), *problems]  # flagged by base.impossible
    return row, note


def _json_or_none(v: Any) -> Any:
    v = parse_json(v)
    return None if v in (None, "", {}, []) else v


def _tool_calls(o: Mapping[str, Any]) -> str | None:
    """Langfuse's `toolCalls` (the raw call payloads, JSON text each) with `toolCallNames`."""
    raw = listing(_g(o, "toolCalls", "tool_calls"))
    names = listing(_g(o, "toolCallNames", "tool_call_names"))
    calls = []
    for i, c in enumerate(raw):
        c = parse_json(c)
        if not isinstance(c, Mapping):
            continue
        call = tool_call(c)
        if call["name"] is None and i < len(names):
            call["name"] = names[i]
        calls.append(call)
    return to_json(calls) if calls else None


def _tool_definitions(v: Any) -> str | None:
    v = parse_json(unwrap_text(v))
    if isinstance(v, Mapping):  # {name: definition}; Parquet exports hold each definition as JSON text
        defs = []
        for k, d in v.items():
            d = parse_json(d)
            d = d if isinstance(d, Mapping) else {}
            defs.append(d if "name" in d or isinstance(d.get("function"), Mapping) else {"name": k, **d})
        v = defs
    if not isinstance(v, list) or not v:
        return None
    return to_json(tool_definitions({"gen_ai.tool.definitions": v}))


# --- traces ----------------------------------------------------------------------------------------


def trace_row(t: Mapping[str, Any], config: Config, filename: str, end: int | None = None) -> dict[str, Any]:
    """A trace record -> its span (`span_id = "trace"`)."""
    trace_id = as_text(_g(t, "id"))
    if not trace_id:
        raise RecordError("missing_field", "trace record has no id")
    start = micros(_g(t, "timestamp"), "timestamp")
    if start is None:
        raise RecordError("missing_field", f"trace {trace_id} has no timestamp")
    latency = as_float(_g(t, "latency"))
    if end is None and latency is not None and math.isfinite(latency) and 0 <= latency < 1e9:
        end = start + int(latency * 1e6)
    _otel, resource, _scope, user_md = _split_metadata(_g(t, "metadata"))
    attrs: dict[str, Any] = trace_context(t)
    extra = {
        "langfuse.trace.version": as_text(_g(t, "version")),
        "langfuse.trace.public": _g(t, "public"),
        "langfuse.trace.bookmarked": _g(t, "bookmarked"),
        "langfuse.trace.level": as_text(_g(t, "level")),
        "langfuse.trace.observation_count": as_int(_g(t, "observationCount", "observation_count")),
        "langfuse.trace.error_count": as_int(_g(t, "errorCount", "error_count")),
        "metadata": user_md or None,
    }
    attrs.update({k: v for k, v in extra.items() if v is not None})
    try:
        u = mapping(_g(t, "usage"), "usage")
    except RecordError:
        u = {}
    usage_in = as_int(_g(t, "inputTokens", "input_tokens"))
    usage_in = usage_in if usage_in is not None else as_int(u.get("promptTokens", u.get("input")))
    usage_out = as_int(_g(t, "outputTokens", "output_tokens"))
    usage_out = usage_out if usage_out is not None else as_int(u.get("completionTokens", u.get("output")))
    row: dict[str, Any] = {
        "run_id": trace_id, "span_id": TRACE_SPAN_ID, "parent_span_id": None,
        "name": as_text(_g(t, "name")) or "trace", "kind": "chain",
        "started_at": start, "ended_at": end if end is not None and end >= start else None,
        "duration_ms": (end - start) / 1000.0 if end is not None and end >= start else None,
        "status": "ok", "input_tokens": usage_in, "output_tokens": usage_out,
        "cost_usd": as_float(_g(t, "totalCost", "total_cost")),
        "input": _text(_g(t, "input")), "output": _text(_g(t, "output")),
        "attributes": to_json(attrs), "resource_attributes": to_json(resource) if resource else None,
        "service_name": _service(resource), "source": NAME, "source_file": filename,
    }
    row.update(dimensions(config, attrs, resource))
    return row


# --- reading ---------------------------------------------------------------------------------------


class _Out:
    def __init__(self) -> None:
        self.cols = Columns(SPAN_SCHEMA)
        self.bad: list[Bad] = []

    def full(self) -> bool:
        return self.cols.rows >= BATCH_SPANS or len(self.bad) >= BATCH_SPANS

    def batch(self, nbytes: int = 0) -> Batch:
        b = Batch(spans=self.cols.take(self.bad), bad=self.bad, bytes_read=nbytes)
        self.bad = []
        return b

    def check(self, row: dict[str, Any], raw: Mapping[str, Any], line: int | None) -> None:
        """Flag (and drop) the values of a row no record can hold (base.impossible)."""
        problems = check_span(row)
        if problems:
            self.bad.append(flag(problems, records.dump(raw), line, row["run_id"], row["span_id"],
                                 f"observation {row['span_id']}"))

    def failed(self, e: Exception, raw: Mapping[str, Any], line: int | None, what: str) -> None:
        """A record whose reading raised an exception no rule foresaw: it alone is kept out."""
        b = failure(e, records.dump(raw), line, what)
        b.reason = b.reason.replace(f"line {line}: ", _where(line), 1)
        b.run_id, b.span_id = _id(_g(raw, "traceId", "trace_id")), _id(_g(raw, "id"))
        self.bad.append(b)


def _id(v: Any) -> str | None:
    """An id for a quarantine row: text as given (cut to 200 characters), None for anything else."""
    return v[:200] if isinstance(v, str) else None


def _where(line: int | None) -> str:
    return f"record {line}: " if line is not None else ""


def _add_observation(out: _Out, o: Mapping[str, Any], ctx: Mapping[str, Any], config: Config,
                     filename: str, line: int | None, hold: list[dict[str, Any]] | None = None) -> None:
    """Store an observation's row (or, with `hold`, keep it there for its document to finish)."""
    try:
        row, note = observation_row(o, ctx, config, filename)
    except MemoryError:
        raise
    except RecordError as e:
        out.bad.append(Bad(e.kind, _where(line) + str(e), records.dump(o), line,
                           run_id=_id(_g(o, "traceId", "trace_id")), span_id=_id(_g(o, "id"))))
        return
    except Exception as e:  # a shape no rule foresaw: this observation alone is kept out
        out.failed(e, o, line, "observation")
        return
    out.check(row, o, line)
    if hold is not None:
        hold.append(row)
    else:
        out.cols.append(row, line, checked=True)
    if note is not None:
        note.raw, note.line, note.reason = records.dump(o), line, _where(line) + note.reason
        out.bad.append(note)


def _add_document(out: _Out, doc: Mapping[str, Any], config: Config, filename: str, line: int | None) -> None:
    """A single-trace download `{trace, observations}`. The trace record is the run's root only when no
    observation is a root of its own (the root observation never reached Langfuse: the observations that
    named it as their parent hang under the trace record, their parent's id kept in the attribute
    `langfuse.observation.parent_id`, as Langfuse draws them); otherwise it describes
    that root (Langfuse shows the two as one: the trace timestamp is the root's start) and is merged into it,
    so the run has one root."""
    t = doc.get("trace")
    obs = doc.get("observations")
    if not isinstance(t, Mapping):
        out.bad.append(Bad("wrong_type", _where(line) + "`trace` must be an object", records.dump(doc), line))
        return
    if not obs and isinstance(t.get("observations"), list):
        obs = [x for x in t["observations"] if isinstance(x, Mapping)]
    if not isinstance(obs, list):
        out.bad.append(Bad("wrong_type", _where(line) + "`observations` must be a list", records.dump(doc), line))
        obs = []
    ctx = trace_context(t)
    ends = []
    rows: list[dict[str, Any]] = []
    for o in obs:
        if not isinstance(o, Mapping):
            out.bad.append(Bad("wrong_type", _where(line) + "an observation must be an object", records.dump(o), line))
            continue
        o = dict(o)
        o.setdefault("traceId", t.get("id"))
        _add_observation(out, o, ctx, config, filename, line, hold=rows)
        try:
            e = micros(_g(o, "endTime", "end_time"), "endTime")
        except RecordError:
            e = None
        if e is not None:
            ends.append(e)
    roots = [r for r in rows if r["parent_span_id"] is None and r["run_id"] == as_text(_g(t, "id"))]
    if roots:
        root = min(roots, key=lambda r: (r["started_at"] is None, r["started_at"] or 0, r["span_id"]))
        try:
            _merge_trace(root, trace_row(t, config, filename))
        except MemoryError:
            raise
        except RecordError as e:
            out.bad.append(Bad(e.kind, _where(line) + str(e), records.dump(t), line, run_id=_id(_g(t, "id"))))
        except Exception as e:  # a shape no rule foresaw: the root observation is stored without it
            out.failed(e, t, line, "trace record")
    if not roots:  # the trace record is the root: what hung under the missing root observation hangs under it
        ids = {r["span_id"] for r in rows}
        for r in rows:
            if r["parent_span_id"] not in ids and r["run_id"] == as_text(_g(t, "id")):
                attrs = parse_json(r["attributes"]) or {}
                attrs.setdefault("langfuse.observation.parent_id", r["parent_span_id"])
                r["attributes"], r["parent_span_id"] = to_json(attrs), TRACE_SPAN_ID
    for r in rows:
        out.cols.append(r, line, checked=True)
    if not roots:
        _add_trace(out, t, config, filename, line, end=max(ends) if ends else None)


TRACE_FILLS = ("input", "output", "resource_attributes", "service_name", "user_id", "session_id", "customer_id",
               "feature", "environment")


def _merge_trace(root: dict[str, Any], trace: Mapping[str, Any]) -> None:
    """The trace record's fields onto the root observation: its attributes where the root has none of that
    name (`langfuse.trace.*`, the trace's metadata), its input, output and dimensions where the root has none."""
    attrs = parse_json(root["attributes"]) or {}
    for k, v in (parse_json(trace["attributes"]) or {}).items():
        attrs.setdefault(k, v)
    root["attributes"] = to_json(attrs)
    for col in TRACE_FILLS:
        if root.get(col) is None:
            root[col] = trace.get(col)


def _add_trace(out: _Out, t: Mapping[str, Any], config: Config, filename: str, line: int | None,
               end: int | None = None) -> None:
    try:
        row = trace_row(t, config, filename, end)
    except MemoryError:
        raise
    except RecordError as e:
        out.bad.append(Bad(e.kind, _where(line) + str(e), records.dump(t), line, run_id=_id(_g(t, "id"))))
        return
    except Exception as e:  # a shape no rule foresaw: this trace record alone is kept out
        out.failed(e, t, line, "trace record")
        return
    out.check(row, t, line)
    out.cols.append(row, line)


def read(stream: IO[bytes], filename: str, config: Config) -> Iterator[Batch]:
    out = _Out()
    for line, rec, bad in records.read(stream):
        if bad is not None:
            out.bad.append(bad)
        elif rec is not None:
            keys = {str(k) for k in rec}
            if "trace" in keys and ("observations" in keys or isinstance(rec.get("trace"), Mapping)):
                try:
                    _add_document(out, rec, config, filename, line)
                except MemoryError:
                    raise
                except Exception as e:  # the document's own checks did not foresee it
                    out.failed(e, rec, line, "document")
            elif _has(keys, "traceId", "trace_id") and _has(keys, "startTime", "start_time", "type"):
                _add_observation(out, rec, {}, config, filename, line)
            elif "id" in keys and "timestamp" in keys and not _has(keys, "traceId", "trace_id"):
                _add_trace(out, rec, config, filename, line)
            else:
                out.bad.append(Bad("missing_field",
                                   _where(line) + "neither a Langfuse observation (traceId and startTime) "
                                   f"nor a trace (id and timestamp); keys: {', '.join(sorted(keys)[:8])}",
                                   records.dump(rec), line))
        if out.full():
            yield out.batch(records.position(stream))
    yield out.batch(records.position(stream))
