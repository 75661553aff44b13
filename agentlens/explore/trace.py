"""One run, step by step: the waterfall layout of its spans and the details of one span.

`trace_layout` orders a run's spans depth first (children under their parent, siblings by start
time) with their depth and time offset, in one SQL statement. `span_detail` gathers what an
investigator reads about one span (messages, tool arguments and result, tokens, cost, errors and
exception events, failure evidence) into a `SpanDetail` that renders itself as escaped HTML: trace
content is untrusted and is only ever shown as text.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..core.results import _fmt
from ..pricing import cost_params, load_pricing
from ..store import Store
from ..store.runsql import costs_disagree, headline_cost

# Depth-first order of a run's spans. Tops are spans without a parent in the run (the root, and
# orphans whose parent never arrived); a span in a parent cycle (malformed input) is unreachable
# from any top and is appended at depth 0, so every span is shown exactly once.
# Each span's cost: `cost_usd` by the headline rule of runs, call by call (store.runsql HEADLINE_NOTE: the
# computed cost where the two disagree, unless [pricing] headline_cost says "reported"), with both figures
# beside it and `cost_differs` when they disagree. Named parameters: $run_id and pricing.cost_params.
TRACE_LAYOUT = """
WITH RECURSIVE
s AS (SELECT * FROM spans WHERE run_id = $run_id),
t0 AS (SELECT min(started_at) AS t0 FROM s),
keyed AS (
  SELECT s.*, lpad(coalesce(epoch_us(started_at), 0)::VARCHAR, 20, '0') || span_id AS sort_key FROM s
),
tops AS (SELECT k.* FROM keyed k ANTI JOIN s p ON p.span_id = k.parent_span_id),
tree(span_id, depth, path) AS (
  SELECT span_id, 0, [sort_key] FROM tops
  UNION ALL
  SELECT c.span_id, t.depth + 1, list_append(t.path, c.sort_key)
  FROM tree t JOIN keyed c ON c.parent_span_id = t.span_id
  WHERE t.depth < 10000
),
placed AS (
  SELECT span_id, depth, path FROM tree
  UNION ALL
  SELECT k.span_id, 0, ['~' || k.sort_key] FROM keyed k ANTI JOIN tree t USING (span_id)
),
children AS (SELECT parent_span_id AS span_id, count(*) AS n_children FROM s GROUP BY ALL)
SELECT
  (row_number() OVER (ORDER BY p.path) - 1)::INTEGER AS row,
  k.span_id, k.parent_span_id, p.depth::INTEGER AS depth, k.name, k.kind, k.status,
  date_diff('microsecond', (SELECT t0 FROM t0), k.started_at) / 1000.0 AS offset_ms,
  k.duration_ms, k.started_at, k.model, k.provider, k.tool_name,
  k.input_tokens, k.output_tokens,
  """ + headline_cost("k.cost_usd", "k.computed_cost_usd") + """ AS cost_usd,
  k.computed_cost_usd, k.cost_usd AS reported_cost_usd,
  """ + costs_disagree("k.cost_usd", "k.computed_cost_usd") + """ AS cost_differs,
  k.error_type, k.status_message, k.finish_reason,
  coalesce(json_array_length(k.events), 0)::INTEGER AS n_events,
  coalesce((SELECT count(*) FROM unnest(CAST(k.events AS JSON[])) AS e(ev)
            WHERE ev->>'name' = 'exception'), 0)::INTEGER AS n_exceptions,
  coalesce(c.n_children, 0)::INTEGER AS n_children
FROM placed p
JOIN keyed k USING (span_id)
LEFT JOIN children c USING (span_id)
ORDER BY row
"""  # noqa: S608 - joins fixed SQL texts (store.runsql), never a value

RUN_HEADER = "SELECT * FROM runs WHERE run_id = ?"
# a span's row with its cost by the headline rule (`call_cost_usd`, as TRACE_LAYOUT's `cost_usd`) and whether
# its two figures disagree; named parameters as TRACE_LAYOUT's
_WITH_COST = ("*, " + headline_cost("cost_usd", "computed_cost_usd") + " AS call_cost_usd, "
              + costs_disagree("cost_usd", "computed_cost_usd") + " AS cost_differs")
SPAN_ROW = "SELECT " + _WITH_COST + " FROM spans WHERE run_id = $run_id AND span_id = $span_id"  # noqa: S608 - fixed SQL
SPANS_OF_RUN = ("SELECT " + _WITH_COST  # noqa: S608 - fixed SQL
                + " FROM spans WHERE run_id = $run_id ORDER BY started_at NULLS LAST, span_id")
FAILURES_OF_RUN = """
SELECT span_id, mode, severity, explanation, evidence::VARCHAR AS evidence
FROM failures WHERE run_id = ? ORDER BY span_id NULLS LAST, mode
"""
TABLE_EXISTS = "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'"

ALL_SQL = {"TRACE_LAYOUT": TRACE_LAYOUT, "RUN_HEADER": RUN_HEADER, "SPAN_ROW": SPAN_ROW, "SPANS_OF_RUN": SPANS_OF_RUN,
           "FAILURES_OF_RUN": FAILURES_OF_RUN, "TABLE_EXISTS": TABLE_EXISTS}

MAX_TEXT = 50_000  # characters of one text field shown in a detail panel before it is cut


def has_table(lens: Store, name: str) -> bool:
    rows = lens.con.execute(TABLE_EXISTS, [name]).fetchall()
    return bool(rows and rows[0][0])


def trace_layout(lens: Store, run_id: str) -> pl.DataFrame:
    """The run's spans in waterfall order: `row`, `depth`, `offset_ms` (from the run's first span)
    and the fields a waterfall shows. Empty when the run has no spans."""
    return lens.sql(TRACE_LAYOUT, {"run_id": run_id, **cost_params(load_pricing(lens.config))})


def failure_marks(lens: Store, run_id: str) -> pl.DataFrame:
    """The failures found in the run (mode, span, severity, explanation, evidence), or an empty
    frame when the database has no `failures` table (classification not installed)."""
    if not has_table(lens, "failures"):
        return pl.DataFrame(schema={"span_id": pl.String, "mode": pl.String, "severity": pl.String,
                                    "explanation": pl.String, "evidence": pl.String})
    df = lens.sql(FAILURES_OF_RUN, [run_id])
    return df.with_columns(pl.col("severity").cast(pl.String))


def _named_spans(mark: dict[str, Any]) -> list[str]:
    """The spans one failure row names: its own `span_id`, and `span_id` / `span_ids` in its
    evidence JSON."""
    ids: list[str] = [mark["span_id"]] if mark.get("span_id") else []
    try:
        ev = json.loads(mark["evidence"]) if mark.get("evidence") else None
    except (ValueError, TypeError):
        ev = None
    if isinstance(ev, dict):
        extra = ev.get("span_ids")
        if isinstance(extra, list):
            ids += [x for x in extra if isinstance(x, str)]
        if isinstance(ev.get("span_id"), str):
            ids.append(ev["span_id"])
    return list(dict.fromkeys(ids))


def evidence_spans(marks: pl.DataFrame) -> dict[str, list[str]]:
    """span_id -> the failure modes whose evidence names that span."""
    out: dict[str, list[str]] = {}
    for mark in marks.iter_rows(named=True):
        for sid in _named_spans(mark):
            modes = out.setdefault(sid, [])
            if mark["mode"] not in modes:
                modes.append(mark["mode"])
    return out


# --- the detail panel ----------------------------------------------------------------------------

def _esc(v: Any) -> str:
    return html.escape(_fmt(v), quote=True)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… ({len(text) - limit:,} more characters not shown)"


def _pretty(text: str | None) -> str:
    """JSON text pretty-printed when it parses, else the text as given."""
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _pre(text: str, limit: int) -> str:
    return f"<pre class='al-text'>{html.escape(_cut(text, limit))}</pre>"


def _messages(text: str | None) -> list[dict[str, Any]] | None:
    """The canonical message list of an LLM span, or None when the text is not one."""
    if not text:
        return None
    try:
        msgs = json.loads(text)
    except ValueError:
        return None
    if isinstance(msgs, list) and all(isinstance(m, dict) and "role" in m for m in msgs):
        return msgs
    return None


def _render_messages(msgs: list[dict[str, Any]], limit: int) -> str:
    parts = []
    for m in msgs:
        body = m.get("content")
        if body is not None and not isinstance(body, str):
            body = json.dumps(body, indent=2, ensure_ascii=False)
        calls = ""
        for c in m.get("tool_calls") or []:
            if not isinstance(c, dict):
                continue
            args = c.get("arguments")
            args_text = args if isinstance(args, str) else json.dumps(args, indent=2, ensure_ascii=False)
            calls += (f"<div class='al-call'>calls <b>{_esc(c.get('name'))}</b>"
                      f" <span class='al-dim'>{_esc(c.get('id'))}</span>{_pre(_pretty(args_text), limit)}</div>")
        tcid = f" <span class='al-dim'>(result of {_esc(m['tool_call_id'])})</span>" if m.get("tool_call_id") else ""
        content = _pre(body, limit) if body else ""
        parts.append(f"<div class='al-msg al-role-{_esc(m.get('role'))}'><b>{_esc(m.get('role'))}</b>{tcid}"
                     f"{content}{calls}</div>")
    return "".join(parts)


@dataclass
class SpanDetail:
    """Everything about one span, rendered as escaped HTML (`_repr_html_`) or a dict."""

    span: dict[str, Any]
    modes: list[dict[str, Any]] = field(default_factory=list)
    max_text: int = MAX_TEXT

    @property
    def span_id(self) -> str:
        return str(self.span["span_id"])

    def events(self) -> list[dict[str, Any]]:
        try:
            ev = json.loads(self.span.get("events") or "[]")
        except ValueError:
            return []
        return [e for e in ev if isinstance(e, dict)] if isinstance(ev, list) else []

    def to_dict(self) -> dict[str, Any]:
        d = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in self.span.items()}
        d["failures"] = self.modes
        return d

    def _repr_html_(self) -> str:
        return self.html()

    def html(self) -> str:
        s, lim = self.span, self.max_text
        out = [f"<div class='al-span'><h4>{_esc(s['name'])} <span class='al-kind'>{_esc(s['kind'])}</span>"
               f" <span class='al-status al-{_esc(s['status'])}'>{_esc(s['status'])}</span></h4>"]
        facts = {
            "span": s["span_id"], "parent": s.get("parent_span_id"), "started": s.get("started_at"),
            "duration (ms)": s.get("duration_ms"), "model": s.get("model"), "provider": s.get("provider"),
            "finish reason": s.get("finish_reason"), "time to first token (ms)": s.get("time_to_first_token_ms"),
            "input tokens": s.get("input_tokens"), "output tokens": s.get("output_tokens"),
            "cached input tokens": s.get("cached_input_tokens"),
            "cache write input tokens": s.get("cache_write_input_tokens"),
            "reasoning tokens": s.get("reasoning_tokens"), **cost_facts(s),
            "tool": s.get("tool_name"), "tool call id": s.get("tool_call_id"),
        }
        out.append("<table class='al-facts'>" + "".join(
            f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in facts.items() if v is not None
        ) + "</table>")
        for m in self.modes:
            out.append(f"<div class='al-evidence'><b>failure: {_esc(m.get('mode'))}</b>"
                       f" ({_esc(m.get('severity'))}) {_esc(m.get('explanation'))}</div>")
        if s.get("status") == "error" or s.get("error_type") or s.get("status_message"):
            out.append(f"<div class='al-error'><b>error</b> {_esc(s.get('error_type'))}"
                       f"{_pre(s['status_message'], lim) if s.get('status_message') else ''}</div>")
        for e in self.events():
            raw_attrs = e.get("attributes")
            attrs: dict[str, Any] = raw_attrs if isinstance(raw_attrs, dict) else {}
            if e.get("name") == "exception":
                out.append(
                    f"<div class='al-error'><b>exception</b> {_esc(attrs.get('exception.type'))}"
                    f" <span class='al-dim'>{_esc(e.get('time'))}</span>"
                    f"{_pre(str(attrs.get('exception.message') or ''), lim)}"
                    + (f"<details><summary>stack trace</summary>{_pre(str(attrs['exception.stacktrace']), lim)}"
                       "</details>" if attrs.get("exception.stacktrace") else "")
                    + "</div>")
            else:
                out.append(f"<div class='al-event'><b>event</b> {_esc(e.get('name'))}"
                           f" <span class='al-dim'>{_esc(e.get('time'))}</span>"
                           f"{_pre(json.dumps(attrs, indent=2, ensure_ascii=False), lim) if attrs else ''}</div>")
        if s.get("tool_arguments") is not None or s.get("tool_result") is not None:
            out.append("<h5>tool arguments</h5>" + _pre(_pretty(s.get("tool_arguments")), lim))
            out.append("<h5>tool result</h5>" + _pre(_pretty(s.get("tool_result")), lim))
        calls_shown = False
        for label, key in (("input", "input"), ("output", "output")):
            text = s.get(key)
            if text is None or (key in ("input", "output") and s.get("kind") == "tool"
                                and text in (s.get("tool_arguments"), s.get("tool_result"))):
                continue
            msgs = _messages(text)
            body = _render_messages(msgs, lim) if msgs is not None else _pre(_pretty(text), lim)
            out.append(f"<h5>{label}{' messages' if msgs is not None else ''}</h5>{body}")
            calls_shown |= key == "output" and msgs is not None and any(m.get("tool_calls") for m in msgs)
        if s.get("tool_calls") and not calls_shown:
            out.append("<h5>tool calls requested</h5>" + _pre(_pretty(s["tool_calls"]), lim))
        if s.get("tool_definitions"):
            out.append("<details><summary>tools offered</summary>" + _pre(_pretty(s["tool_definitions"]), lim)
                       + "</details>")
        if s.get("attributes"):
            out.append("<details><summary>attributes</summary>" + _pre(_pretty(s["attributes"]), lim)
                       + "</details>")
        out.append("</div>")
        return "".join(out)


def cost_facts(span: dict[str, Any]) -> dict[str, Any]:
    """What a call cost, for a detail panel: its cost by the headline rule, and both figures when they
    disagree (which one the cost is, and the other beside it)."""
    cost = span.get("call_cost_usd", span.get("cost_usd"))
    computed, reported = span.get("computed_cost_usd"), span.get("cost_usd")
    if span.get("cost_differs"):
        which = "computed" if cost == computed else "reported"
        return {"cost (USD)": f"{_fmt(cost)} ({which}; they differ)", "computed cost (USD)": computed,
                "reported cost (USD)": reported, "price": span.get("price_source")}
    return {"cost (USD)": cost, "price": span.get("price_source")}


def span_detail(lens: Store, run_id: str, span_id: str, marks: pl.DataFrame | None = None,
                max_text: int = MAX_TEXT) -> SpanDetail:
    """The detail panel of one span. `marks`: the run's `failure_marks` when already fetched."""
    df = lens.sql(SPAN_ROW, {"run_id": run_id, "span_id": span_id, **cost_params(load_pricing(lens.config))})
    if df.height == 0:
        raise KeyError(f"run {run_id!r} has no span {span_id!r}")
    if marks is None:
        marks = failure_marks(lens, run_id)
    modes = [m for m in marks.to_dicts() if span_id in _named_spans(m)]
    return SpanDetail(df.row(0, named=True), modes, max_text)


def span_details(lens: Store, run_id: str, marks: pl.DataFrame | None = None,
                 max_text: int = MAX_TEXT) -> dict[str, SpanDetail]:
    """The detail panels of every span of a run, from one query: span_id -> SpanDetail."""
    if marks is None:
        marks = failure_marks(lens, run_id)
    named = [(m, _named_spans(m)) for m in marks.to_dicts()]
    return {row["span_id"]: SpanDetail(row, [m for m, ids in named if row["span_id"] in ids], max_text)
            for row in lens.sql(SPANS_OF_RUN, {"run_id": run_id, **cost_params(load_pricing(lens.config))}
                                ).iter_rows(named=True)}


def run_header(lens: Store, run_id: str) -> dict[str, Any]:
    df = lens.sql(RUN_HEADER, [run_id])
    if df.height == 0:
        raise KeyError(f"no run {run_id!r} in {lens.path}")
    return df.row(0, named=True)


def run_summary_html(run: dict[str, Any], marks: pl.DataFrame) -> str:
    """The run's headline (escaped): who, when, how long, how much, which failures."""
    facts = {
        "run": run["run_id"], "agent": run.get("agent_name"), "status": run.get("status"),
        "started": run.get("started_at"), "duration (ms)": run.get("duration_ms"),
        "feature": run.get("feature"), "customer": run.get("customer_id"), "user": run.get("user_id"),
        "session": run.get("session_id"), "model": run.get("model"),
        "tokens in / out": f"{_fmt(run.get('input_tokens'))} / {_fmt(run.get('output_tokens'))}",
        "cost (USD)": run.get("cost_usd"), "LLM calls": run.get("llm_calls"),
        "tool calls": run.get("tool_calls"), "spans": run.get("span_count"), "error spans": run.get("error_count"),
    }
    cells = "".join(f"<span class='al-fact'><b>{_esc(k)}</b> {_esc(v)}</span>" for k, v in facts.items()
                    if v is not None and v != "")
    fails = "".join(
        f"<div class='al-evidence'><b>{_esc(m['mode'])}</b> ({_esc(m['severity'])}): {_esc(m['explanation'])}</div>"
        for m in marks.unique(subset=["mode", "explanation"], maintain_order=True).to_dicts()
    )
    return f"<div class='al-run'>{cells}{fails}</div>"


DETAIL_CSS = """
.al-span h4 { margin: 0 0 6px 0; }
.al-kind, .al-status { font-size: 80%; padding: 1px 6px; border-radius: 8px; background: #eee; }
.al-status.al-error { background: #fbd5d5; color: #9b1c1c; }
.al-facts th { text-align: left; padding-right: 12px; font-weight: 600; }
.al-facts td, .al-facts th { padding: 1px 8px 1px 0; font-size: 90%; }
.al-text { white-space: pre-wrap; word-break: break-word; max-height: 24em; overflow: auto;
           background: #f6f8fa; color: #111; padding: 6px; border-radius: 4px; font-size: 85%; margin: 4px 0; }
.al-msg { border-left: 3px solid #9aa5b1; padding-left: 8px; margin: 6px 0; }
.al-role-user { border-color: #4c78a8; } .al-role-assistant { border-color: #54a24b; }
.al-role-tool { border-color: #f58518; } .al-role-system { border-color: #bab0ac; }
.al-error { border-left: 3px solid #d62728; padding-left: 8px; margin: 6px 0; }
.al-evidence { border-left: 3px solid #ff7f0e; background: #fff4e5; padding: 4px 8px; margin: 6px 0; }
.al-event { border-left: 3px solid #bab0ac; padding-left: 8px; margin: 6px 0; }
.al-dim { color: #777; font-size: 85%; }
.al-fact { margin-right: 14px; white-space: nowrap; display: inline-block; }
"""
