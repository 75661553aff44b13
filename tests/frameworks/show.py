"""Print the span tree of recorded runs, to see what a framework put where:

    python tests/frameworks/show.py TRACE.otlp.jsonl[.gz] LABELS[.jsonl|.json] [SCENARIO ...] [--attrs]

One line per span: name, kind attribute (openinference.span.kind / gen_ai.operation.name), status and
its message, and with --attrs every attribute (long values clipped). Reads the file as the OTLP JSON
file exporter wrote it; no agentlens involved.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any


def _value(v: dict[str, Any]) -> Any:
    for k in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if k in v:
            return v[k]
    if "arrayValue" in v:
        return [_value(x) for x in v["arrayValue"].get("values", [])]
    return v


def spans_by_trace(path: Path) -> dict[str, list[dict[str, Any]]]:
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode()
    out: dict[str, list[dict[str, Any]]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        for rs in json.loads(line).get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for s in ss.get("spans", []):
                    s["attrs"] = {a["key"]: _value(a["value"]) for a in s.get("attributes", [])}
                    s["scope"] = ss.get("scope", {}).get("name")
                    out.setdefault(s["traceId"].lower(), []).append(s)
    return out


def labels_of(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".json":
        return json.loads(path.read_text())["runs"]
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def show(spans: list[dict[str, Any]], attrs: bool = False) -> None:
    kids: dict[str | None, list[dict[str, Any]]] = {}
    ids = {s["spanId"] for s in spans}
    for s in spans:
        parent = s.get("parentSpanId") or None
        kids.setdefault(parent if parent in ids else None, []).append(s)

    def walk(parent: str | None, depth: int) -> None:
        for s in sorted(kids.get(parent, []), key=lambda x: int(x["startTimeUnixNano"])):
            a = s["attrs"]
            kind = a.get("openinference.span.kind") or a.get("gen_ai.operation.name") or ""
            st = s.get("status", {})
            code = {0: "", 1: "OK", 2: "ERROR"}.get(st.get("code", 0), st.get("code"))
            ms = (int(s["endTimeUnixNano"]) - int(s["startTimeUnixNano"])) / 1e6
            msg = (st.get("message") or "")[:100]
            ev = ",".join(e["name"] for e in s.get("events", []))
            print(f"{'  ' * depth}{s['name']} [{kind}] {code} {msg!r} {ms:.0f}ms"
                  + (f" events={ev}" if ev else "") + (f" dropped={s['droppedAttributesCount']}"
                                                       if s.get("droppedAttributesCount") else ""))
            if attrs:
                for k, v in a.items():
                    text = v if isinstance(v, str) else json.dumps(v)
                    print(f"{'  ' * depth}    {k} = {text[:160]!r}")
            walk(s["spanId"], depth + 1)

    walk(None, 0)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) < 2:
        raise SystemExit(__doc__)
    traces = spans_by_trace(Path(args[0]))
    for lab in labels_of(Path(args[1])):
        if args[2:] and lab["scenario"] not in args[2:]:
            continue
        print(f"=== {lab['scenario']} (run {lab['run_id']}; must {lab['must']}; status {lab['status']})")
        show(traces.get(lab["run_id"], []), "--attrs" in sys.argv)


if __name__ == "__main__":
    main()
