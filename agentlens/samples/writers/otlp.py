"""What the two OTLP files share. The OTLP JSON encoding of spans (attributes, events, status, as the
OTel file exporter writes them), tool results recorded as the frameworks record them (truncated past
`TOOL_RESULT_RECORD_LIMIT`), and the processes (pods: resources) that export a run's spans, in the
batches of a BatchSpanProcessor or one by one; `write_otlp()` writes a file of them."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..content import AGENT_NAME
from ..helpers import NS, cjson, rand_uuid4
from ..run import Err, Run
from .labels import run_label

TOOL_RESULT_RECORD_LIMIT = 4096
EXPORT_INTERVAL_NS = 5 * NS  # BatchSpanProcessor schedule_delay default


def truncate_recorded(text: str) -> str:
    if len(text) <= TOOL_RESULT_RECORD_LIMIT:
        return text
    return text[:TOOL_RESULT_RECORD_LIMIT] + f"...[truncated, {len(text)} chars total]"


Attr = tuple[str, Any]


def _any_value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, (list, tuple)):
        return {"arrayValue": {"values": [_any_value(i) for i in v]}}
    return {"stringValue": str(v)}


def _attrs(items: Sequence[Attr]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any_value(v)} for k, v in items if v is not None]


@dataclass
class SpanOut:
    end: int
    scope: tuple[str, str, str]  # name, version, schemaUrl
    span: dict[str, Any]


def otlp_span(
    run: Run, span_id: str, parent: str | None, name: str, kind: int, start: int, end: int,
    attrs: Sequence[Attr], *, error: Err | None = None, status_message: str | None = None, ok_code: int | None = None,
    flags: bool = True,
) -> dict[str, Any]:
    d: dict[str, Any] = {"traceId": run.trace_id, "spanId": span_id}
    if parent:
        d["parentSpanId"] = parent
    if flags:
        d["flags"] = 256
    d["name"] = name
    d["kind"] = kind
    d["startTimeUnixNano"] = str(start)
    d["endTimeUnixNano"] = str(end)
    d["attributes"] = _attrs(attrs)
    if error is not None:
        d["events"] = [{
            "timeUnixNano": str(end),
            "name": "exception",
            "attributes": _attrs([("exception.type", error.type), ("exception.message", error.message),
                                  ("exception.stacktrace", error.stacktrace)]),
        }]
        d["status"] = {"message": status_message if status_message is not None else error.message, "code": 2}
    elif ok_code:
        d["status"] = {"code": ok_code}
    else:
        d["status"] = {}
    return d


def fw_status(err: Err) -> str:
    """Status description the OTel SDK sets when an exception escapes a `with start_as_current_span`."""
    return f"{err.type}: {err.message}"


@dataclass
class Pod:
    key: str
    resource: list[Attr]
    simple: bool  # SimpleSpanProcessor: one span per export (line)
    phase: int  # BatchSpanProcessor timer offset, ns
    lines: list[tuple[int, int, list[SpanOut]]] = field(default_factory=list)


def make_pod(rng: random.Random, key: str, *, env: str, version: str, sdk: str, simple: bool = False,
             extra: Sequence[Attr] = (), instance_id: bool = True) -> Pod:
    res: list[Attr] = [("telemetry.sdk.language", "python"), ("telemetry.sdk.name", "opentelemetry"),
                       ("telemetry.sdk.version", sdk)]
    if instance_id:
        res.append(("service.instance.id", rand_uuid4(rng)))
    res += [("service.name", AGENT_NAME), ("service.version", version), ("deployment.environment.name", env)]
    res += list(extra)
    return Pod(key, res, simple, rng.randrange(EXPORT_INTERVAL_NS))


def _export_lines(pods: list[Pod], spans: dict[str, list[SpanOut]]) -> list[str]:
    entries: list[tuple[int, int, int, Pod, list[SpanOut]]] = []
    for pi, pod in enumerate(pods):
        items = sorted(spans.get(pod.key, []), key=lambda s: (s.end, s.span["spanId"]))
        if pod.simple:
            for j, so in enumerate(items):
                entries.append((so.end, pi, j, pod, [so]))
            continue
        batches: dict[int, list[SpanOut]] = {}
        for so in items:
            k = math.ceil((so.end - pod.phase) / EXPORT_INTERVAL_NS)
            batches.setdefault(k, []).append(so)
        for k, group in batches.items():
            entries.append((pod.phase + k * EXPORT_INTERVAL_NS, pi, 0, pod, group))
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    lines = []
    for _, _, _, pod, group in entries:
        scopes: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for so in group:
            scopes.setdefault(so.scope, []).append(so.span)
        scope_spans = []
        for (name, version, schema), sp in scopes.items():
            sc: dict[str, Any] = {"scope": {"name": name, "version": version}, "spans": sp}
            if schema:
                sc["schemaUrl"] = schema
            scope_spans.append(sc)
        req = {"resourceSpans": [{"resource": {"attributes": _attrs(pod.resource)}, "scopeSpans": scope_spans}]}
        lines.append(cjson(req))
    return lines


Render = Callable[[Run, random.Random], list[SpanOut]]


def write_otlp(
    out_dir: Path, name: str, seed: int, runs: list[Run], pods: list[Pod], render: Render,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Write the OTLP JSON lines file `name`: each run rendered into spans by `render` (with its own seeded
    rng), exported as its pod would. Returns the file's counts and the runs' labels."""
    by_pod: dict[str, list[SpanOut]] = {}
    labels: list[dict[str, Any]] = []
    n_spans = 0
    for r in runs:
        spans = render(r, random.Random(f"{seed}/{name}/{r.index}/render"))
        n_spans += len(spans)
        by_pod.setdefault(r.pod, []).extend(spans)
        labels.append(run_label(r.trace_id, name, r.modes, "error" if r.error else "ok"))
    lines = _export_lines(pods, by_pod)
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    (out_dir / name).write_bytes(data)
    return {"bytes": len(data), "lines": len(lines), "runs": len(runs), "spans": n_spans}, labels
