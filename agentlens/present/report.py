"""The standalone HTML report: `agentlens report -o report.html`, `build_report(lens).save(path)`.

One self-contained file (plotly.js inlined, gzipped: no network needed to open it, about 2 MB) made of
sections. A section
is a function `section(lens, options) -> Section | None` listed in `SECTIONS`; returning None leaves it
out (no data, or a module that is not installed). Adding a report section is adding a function there.

Everything from the traces is untrusted and reaches the page only as escaped text: facts and tables
through `html.escape`, figures through `plots` (which escapes every label), the trace view's span
details through `trace.SpanDetail`. The page also carries a Content-Security-Policy that allows only
the scripts agentlens wrote (by their SHA-256), so a `<script>` or `onerror=` that slipped through
could not run anyway.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import gzip
import hashlib
import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import plotly.graph_objects as go
import polars as pl
from plotly.offline import get_plotlyjs

from ..core.results import BaseResult, Result, _fmt, html_table
from ..core.timeparse import TimeSpecError, format_duration, parse_window
from ..explore import runs as explore
from ..explore.trace import (
    DETAIL_CSS,
    evidence_spans,
    failure_marks,
    has_table,
    run_header,
    run_summary_html,
    span_details,
    trace_layout,
)
from ..failures.report import SEV_RANK
from ..store import Store
from . import plots
from .costs import cost_result


@dataclass(frozen=True)
class ReportOptions:
    """What the report covers: runs started in [since, until) (None: all), the runs whose trace
    view it shows (None: picked, see `pick_runs`), at most `max_rows` rows per table."""

    since: dt.datetime | str | None = None
    until: dt.datetime | str | None = None
    run_ids: tuple[str, ...] = ()
    traces: int = 3
    max_rows: int = 20
    max_text: int = 4_000  # characters of one text field in a span's details

    @property
    def filter(self) -> explore.RunFilter:
        return explore.RunFilter(since=self.since, until=self.until)


class Html(str):
    """Markup agentlens built from escaped pieces (never raw trace content)."""


Block: TypeAlias = go.Figure | tuple[str, pl.DataFrame] | Html


@dataclass
class Section:
    """A part of the report: plain `text`, headline `facts`, then `blocks` in order: figures,
    (name, DataFrame) tables, and `Html` fragments."""

    title: str
    text: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    css_class: str = ""

    @property
    def figures(self) -> list[go.Figure]:
        return [b for b in self.blocks if isinstance(b, go.Figure)]

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        return {b[0]: b[1] for b in self.blocks if isinstance(b, tuple)}


SectionFn = Callable[[Store, ReportOptions], "Section | None"]


# --- sections -------------------------------------------------------------------------------------

# The runs of the report's window, in figures and by source and feature (RunFilter's WHERE over `runs`)
WINDOW_OVERVIEW = """
SELECT count(*) AS runs, count(*) FILTER (WHERE status = 'error') AS error_runs,
       min(started_at) AS first_run, max(started_at) AS last_run, sum(llm_calls)::BIGINT AS llm_calls,
       sum(input_tokens)::BIGINT AS input_tokens, sum(output_tokens)::BIGINT AS output_tokens,
       sum(cost_usd) AS cost_usd, count(cost_usd) AS runs_with_cost
FROM runs WHERE {where}
"""
WINDOW_BY = """
SELECT coalesce({col}, '(none)') AS {col}, count(*) AS runs, count(*) FILTER (WHERE status = 'error') AS error_runs,
       (coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0))::BIGINT AS tokens, sum(cost_usd) AS cost_usd
FROM runs WHERE {where} GROUP BY ALL ORDER BY runs DESC, {col}
"""


def overview_section(lens: Store, opts: ReportOptions) -> Section:
    """The runs of the window (all runs without one): how many, failed, tokens, cost, by source,
    model and feature. Every figure is of the window the report was asked for."""
    from ..metrics import signals as sig

    flt = opts.filter
    where, params = flt.where(has_table(lens, "failures"))
    ov = lens.sql(WINDOW_OVERVIEW.format(where=where), params).row(0, named=True)
    facts: dict[str, Any] = {"database": lens.path}
    if opts.since or opts.until:
        facts["window"] = f"{opts.since or 'start'} to {opts.until or 'end'}"
    facts.update({"runs": ov["runs"], "runs with error status": ov["error_runs"], "first run": ov["first_run"],
                  "last run": ov["last_run"], "LLM calls": ov["llm_calls"], "input tokens": ov["input_tokens"],
                  "output tokens": ov["output_tokens"],
                  f"cost (USD, {ov['runs_with_cost']:,} of {ov['runs']:,} runs have one)": ov["cost_usd"]})
    if not ov["runs"]:
        return Section("Runs in this window" if opts.since or opts.until else "What is in the database",
                       "No runs in this window." if opts.since or opts.until else "The database has no runs.",
                       facts=facts)
    blocks: list[Block] = [
        ("runs by source", lens.sql(WINDOW_BY.format(col="source", where=where), params)),
        ("LLM calls by model", sig.llm_calls(lens, since=opts.since, until=opts.until).select(
            "model", "calls", "errors", "input_tokens", "output_tokens")),
        ("runs by feature", lens.sql(WINDOW_BY.format(col="feature", where=where), params)),
    ]
    return Section("Runs in this window" if opts.since or opts.until else "What is in the database",
                   facts=facts, blocks=[b for b in blocks if not isinstance(b, tuple) or b[1].height])


RUN_TABLE_COLUMNS = ("run_id", "started_at", "feature", "customer_id", "status", "model", "duration_ms",
                     "cost_usd", "total_tokens", "error_count")


def _run_table(df: pl.DataFrame) -> pl.DataFrame:
    cols = [c for c in (*RUN_TABLE_COLUMNS, "failure_modes") if c in df.columns]
    out = df.select(cols)
    if "input" in df.columns:
        out = out.with_columns(
            df["input"].str.replace_all(r"\s+", " ").str.slice(0, 100).alias("input (start)"))
    return out


def runs_section(lens: Store, opts: ReportOptions) -> Section | None:
    """Runs to look at first: the latest errors, the slowest and the most expensive runs."""
    flt = opts.filter
    if explore.count_runs(lens, flt) == 0:
        return None
    n = opts.max_rows
    tables = {
        "latest error runs": _run_table(explore.find_runs(lens, flt.with_(status="error"), "started_at", limit=n)),
        "slowest runs": _run_table(explore.find_runs(lens, flt, "duration_ms", limit=min(n, 10))),
        "most expensive runs": _run_table(explore.find_runs(lens, flt, "cost_usd", limit=min(n, 10))),
    }
    return Section("Runs to look at", "Newest errors first; then the slowest and the most expensive runs.",
                   blocks=[(k, v) for k, v in tables.items() if v.height])


# The worst runs of the window: by their most severe failure (critical first), then runs with a trace to
# look at (more than one span: an agent_runs row is a single dot), then the most detections, the latest.
WORST_RUNS = """
SELECT f.run_id FROM failures f JOIN runs r USING (run_id) WHERE {where}
GROUP BY f.run_id
ORDER BY min(""" + SEV_RANK.format("f.severity") + """), any_value(r.span_count) > 1 DESC, count(*) DESC,
         max(r.started_at) DESC, f.run_id
LIMIT ?
"""
# What each of those runs shows: its worst failure's explanation first
WORST_FACTS = """
SELECT r.run_id, r.started_at, r.agent_name, r.feature, r.status, r.cost_usd, r.span_count,
       arg_min(f.severity, (""" + SEV_RANK.format("f.severity") + """, f.mode)) AS severity,
       string_agg(DISTINCT f.mode, ', ' ORDER BY f.mode) AS modes,
       arg_min(f.explanation, (""" + SEV_RANK.format("f.severity") + """, f.mode, f.explanation)) AS explanation
FROM runs r LEFT JOIN failures f USING (run_id)
WHERE r.run_id = ?
GROUP BY ALL
"""


def pick_runs(lens: Store, opts: ReportOptions) -> list[str]:
    """The runs whose trace the report shows: the ones asked for, else the worst runs (WORST_RUNS: the
    most severe failure first, runs with a trace before single-span ones, then the most detections),
    else the latest error runs, else the slowest."""
    if opts.run_ids:
        return list(opts.run_ids)
    return worst_runs(lens, opts.filter, opts.traces)


def worst_runs(lens: Store, flt: explore.RunFilter, n: int) -> list[str]:
    """The `n` worst runs of those `flt` selects (WORST_RUNS), else the latest error runs, else the slowest
    (the report's trace view and notebook 01 open these)."""
    if has_table(lens, "failures"):
        where, params = flt.where(True)
        ids = lens.sql(WORST_RUNS.format(where=where), [*params, n])["run_id"].to_list()
        if ids:
            return ids
    for f, sort in ((flt.with_(status="error"), "started_at"), (flt, "duration_ms")):
        ids = explore.find_runs(lens, f, sort, limit=n, columns=("run_id",))["run_id"].to_list()
        if ids:
            return ids
    return []


def trace_blocks(lens: Store, run_id: str, max_text: int, key: str) -> list[Block]:
    """One run's headline, its waterfall, and the details of each of its spans (closed `<details>`
    blocks, opened by clicking a bar). `key` makes the element ids unique in the page."""
    layout = trace_layout(lens, run_id)
    marks = failure_marks(lens, run_id)
    evidence = evidence_spans(marks)
    run = run_header(lens, run_id)
    fig = plots.trace_waterfall(layout, evidence, None, title=f"run {run_id} · {run.get('agent_name') or ''}")
    details = []
    panels = span_details(lens, run_id, marks, max_text)
    for r in layout.iter_rows(named=True):
        d = panels[r["span_id"]]
        flags = (" ✖" if r["status"] == "error" else "") + (" ★ " + ", ".join(evidence[r["span_id"]])
                                                             if r["span_id"] in evidence else "")
        details.append(
            f"<details class='al-spanbox' id='{key}-span-{r['row']}'>"
            f"<summary>{'&nbsp;&nbsp;' * min(r['depth'], 16)}{html.escape(_fmt(r['name']))} "
            f"<span class='al-dim'>{html.escape(r['kind'])} · {html.escape(_fmt(r['duration_ms']))} ms"
            f"{html.escape(flags)}</span></summary>{d.html()}</details>")
    fig.update_layout(meta={"agentlens_trace": key})
    title = f"<h3 class='al-trace-title' id='{key}'>Run {html.escape(run_id)}</h3>"
    return [Html(title + run_summary_html(run, marks)), fig, Html("<div class='al-spans'>" + "".join(details) + "</div>")]


def traces_section(lens: Store, opts: ReportOptions) -> Section | None:
    ids = pick_runs(lens, opts)
    if not ids:
        return None
    blocks: list[Block] = []
    for i, rid in enumerate(ids):
        blocks += trace_blocks(lens, rid, opts.max_text, f"t{i}")
    text = (("The runs asked for" if opts.run_ids else "The worst runs (most severe failure first), else the "
             "latest errors") + ": each bar is a span (time from the run's start; children under their parent). "
            "Click a bar to open its details below.")
    return Section("Trace view", text, blocks=blocks, css_class="al-trace")


def broken_section(lens: Store, opts: ReportOptions) -> Section:
    """What the report opens on: the worst runs of the window (the ones the trace view shows), each with
    its worst failure and a link to its trace in the page; or that nothing was found."""
    flt = opts.filter
    runs = explore.count_runs(lens, flt)
    if runs == 0:
        return Section("What is broken", "No runs in this window." if opts.since or opts.until
                       else "The database has no runs.", css_class="al-broken")
    ids = pick_runs(lens, opts)
    failing = 0
    if has_table(lens, "failures"):
        where, params = flt.where(True)
        failing = lens.sql(f"SELECT count(DISTINCT f.run_id) FROM failures f JOIN runs r USING (run_id) "  # noqa: S608 - RunFilter
                           f"WHERE {where}", params).item()
    errors = explore.count_runs(lens, flt.with_(status="error"))
    facts = {"runs": runs, "runs with a failure mode": failing, "runs with error status": errors}
    if not ids:
        return Section("What is broken", "No failure mode and no error in these runs.", facts=facts,
                       css_class="al-broken")
    items = []
    for i, rid in enumerate(ids):
        r = lens.sql(WORST_FACTS, [rid]).row(0, named=True)
        what = (f"<b>{html.escape(_fmt(r['severity']))}</b> · {html.escape(_fmt(r['modes']))}: "
                f"{html.escape(_fmt(r['explanation']))}" if r["modes"] else f"status {html.escape(_fmt(r['status']))}")
        where_ = " · ".join(html.escape(_fmt(v)) for v in (r["agent_name"], r["feature"], r["started_at"]) if v)
        cost = f" · {plots.usd(r['cost_usd'])}" if r["cost_usd"] is not None else ""
        items.append(f"<li class='al-sev-{html.escape(_fmt(r['severity']))}'>{what}<br><span class='al-dim'>"
                     f"<a href='#t{i}'>run {html.escape(rid)}</a> · {where_}{cost}</span></li>")
    text = ("The worst runs first (their most severe failure, then runs with a trace to look at, then the most "
            "detections); each links to its trace below." if not opts.run_ids else "The runs asked for.")
    return Section("What is broken", text, facts=facts, css_class="al-broken",
                   blocks=[Html("<ol class='al-worst'>" + "".join(items) + "</ol>")])


def data_quality_section(lens: Store, opts: ReportOptions) -> Section | None:
    q = lens.sql("SELECT kind, stored, count(*) AS records, any_value(reason) AS example "
                 "FROM quarantine GROUP BY ALL ORDER BY records DESC")
    if q.height == 0:
        return None
    return Section("Data quality", "Records that could not be read (stored = false) or were stored with a flag.",
                   blocks=[("quarantine", q)])


# bucket widths the report picks from, smallest first
EVERY_CHOICES = (dt.timedelta(minutes=5), dt.timedelta(minutes=15), dt.timedelta(hours=1), dt.timedelta(hours=3),
                 dt.timedelta(hours=6), dt.timedelta(hours=12), dt.timedelta(days=1), dt.timedelta(days=7))


def auto_every(lens: Store, opts: ReportOptions) -> dt.timedelta:
    """A bucket width giving readable lines over the runs in the window: the smallest of EVERY_CHOICES
    with at most one bucket per 4 runs (a few runs per point, not a comb of zeros and ones), between 6
    and 48 buckets."""
    flt = opts.filter
    where, params = flt.where(has_table(lens, "failures"))
    rows = lens.con.execute(f"SELECT min(started_at), max(started_at), count(*) FROM runs WHERE {where}",  # noqa: S608 - RunFilter
                            params).fetchall()
    lo, hi, n = rows[0]
    span = (hi - lo) if lo is not None and hi is not None else dt.timedelta(0)
    most = max(6, min(48, n // 4))
    for width in EVERY_CHOICES:
        if span / width < most:
            return width
    return EVERY_CHOICES[-1]


def _result_blocks(res: Any, skip: tuple[str, ...] = ()) -> list[Block]:
    return [(name, df) for name, df in res.tables.items() if df.height and not name.startswith(skip)]


def signals_section(lens: Store, opts: ReportOptions) -> Section | None:
    """The golden signals over time (agentlens.metrics.signals) and their summary tables."""
    from ..metrics import signals as sig

    every = auto_every(lens, opts)
    df = sig.signals(lens, every=every, since=opts.since, until=opts.until)
    if df.height == 0:
        return None
    res = sig.report(lens, since=opts.since, until=opts.until)
    fig = plots.signal_panels(df, every, title=f"golden signals per {format_duration(every)} of run start")
    text = ("Latency, traffic, errors and saturation per time bucket (runs by their start). Hover a point "
            "for its numbers; the run explorer widget lists the runs of a bucket.")
    blocks: list[Block] = [fig, *_result_blocks(res)]
    return Section("Golden signals", text, facts=res.facts, blocks=blocks)


def costs_section(lens: Store, opts: ReportOptions) -> Section | None:
    """Cost by feature over time, the most expensive runs, unpriced models (agentlens.costs)."""
    from ..metrics import costs

    per_day = costs.by(lens, by=("feature",), period="day", since=opts.since, until=opts.until)
    if per_day.height == 0:
        return None
    res = cost_result(costs.report(lens, by=("feature", "customer_id"), since=opts.since, until=opts.until,
                                   top=opts.max_rows))
    fig = plots.stacked_over_time(per_day, "period", "total_cost_usd", "feature",
                                  title="cost per day by feature (USD)", y_title="USD")
    return Section("Costs", "Cost in USD: computed from tokens and the day's prices, or reported by the source "
                   "(the 'headline cost' fact says which figure the totals take where the two disagree); runs "
                   "without a price are never counted as $0.",
                   facts=res.facts, blocks=[fig, *_result_blocks(res, ("tokens by",))])


def failures_section(lens: Store, opts: ReportOptions) -> Section | None:
    """Failure modes over time, counts, the worst runs, fleet incidents (agentlens.failures)."""
    if not has_table(lens, "failures") or explore.count_runs(lens, opts.filter) == 0:
        return None
    from ..failures.report import report as failure_report

    per_day = failure_report(lens, since=opts.since, until=opts.until, by="day", limit=0)
    if per_day.counts.height == 0:
        return Section("Failure modes", "No failure mode was found in these runs.",
                       facts=per_day.facts)
    res = failure_report(lens, since=opts.since, until=opts.until, limit=opts.max_rows)
    fig = plots.stacked_over_time(per_day.counts, "day", "runs", "mode", title="runs with each failure mode per day",
                                  y_title="runs", top=14)
    return Section("Failure modes", "What the classifiers found, most severe first; each explanation quotes "
                   "the trace (shown as text).", facts=res.facts, blocks=[fig, *_result_blocks(res.result())])


SECTIONS: tuple[SectionFn, ...] = (
    broken_section,
    traces_section,
    overview_section,
    signals_section,
    costs_section,
    failures_section,
    runs_section,
    data_quality_section,
)


# --- rendering ------------------------------------------------------------------------------------

PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2328; }
header { background: #24292f; color: #fff; padding: 14px 28px; }
header h1 { margin: 0; font-size: 20px; } header p { margin: 4px 0 0 0; color: #c9d1d9; font-size: 13px; }
nav { padding: 8px 28px; background: #f6f8fa; border-bottom: 1px solid #d0d7de; font-size: 14px; }
nav a { margin-right: 16px; }
main { padding: 0 28px 40px 28px; max-width: 1400px; }
section { border-bottom: 1px solid #d0d7de; padding: 12px 0 20px 0; }
h2 { font-size: 18px; margin: 12px 0 6px 0; }
table { border-collapse: collapse; margin: 8px 0 14px 0; font-size: 13px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border-bottom: 1px solid #eaeef2; padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
td { max-width: 520px; overflow-wrap: anywhere; }
ul.facts { columns: 2; font-size: 14px; } .al-figure { margin: 6px 0; }
.al-spanbox { border-top: 1px solid #eaeef2; padding: 2px 0; } .al-spanbox > summary { cursor: pointer; }
.al-spanbox[open] { background: #fbfcfd; } .al-spanbox .al-span { padding: 6px 12px; }
.al-fact { margin-right: 14px; white-space: nowrap; display: inline-block; }
ol.al-worst li { margin: 6px 0; } .al-sev-critical b { color: #cf222e; } .al-sev-high b { color: #bc4c00; }
.al-dim { color: #57606a; font-size: 13px; }
.al-trace-title { font-size: 16px; margin: 22px 0 6px 0; padding-top: 10px; border-top: 1px dashed #d0d7de; }
"""

# plotly.js travels gzipped (4.6 MB -> 1.9 MB in base64: the page is light enough to attach to a message) and
# is unpacked by the browser (DecompressionStream: Chrome 80, Firefox 113, Safari 16.4), then run as an inline
# script whose hash the page's Content-Security-Policy lists like every other script of the page. Everything
# that draws waits for it (`agentlensPlotly.then`).
LOADER_JS = """
window.agentlensPlotly = (async function () {
  var packed = Uint8Array.from(atob('%s'), function (c) { return c.charCodeAt(0); });
  var stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream('gzip'));
  var script = document.createElement('script');
  script.textContent = await new Response(stream).text();
  document.head.appendChild(script);
})();
"""


@functools.lru_cache(maxsize=1)
def _plotly_packed() -> str:
    return base64.b64encode(gzip.compress(get_plotlyjs().encode(), compresslevel=9, mtime=0)).decode()


CLICK_JS = """
agentlensPlotly.then(function () {
document.querySelectorAll('.plotly-graph-div').forEach(function (div) {
  var key = div.getAttribute('data-trace-key');
  if (!key || !div.on) return;
  div.on('plotly_click', function (ev) {
    if (!ev.points.length) return;
    var row = ev.points[0].customdata;
    var box = document.getElementById(key + '-span-' + row);
    if (box) { box.open = true; box.scrollIntoView({behavior: 'smooth', block: 'start'}); }
  });
});
});
"""


def _slug(title: str, i: int) -> str:
    return f"s{i}-" + "".join(ch if ch.isalnum() else "-" for ch in title.lower()).strip("-")


@dataclass
class Report(BaseResult):
    """The assembled report: `save("report.html")` writes the page (`.json`, `.csv`, `.parquet` save the
    facts and tables as every result object does, see core.results.BaseResult)."""

    title: str
    generated_at: dt.datetime
    options: ReportOptions
    sections: list[Section]
    database: str

    def result(self) -> Result:
        """Every section's facts and tables in one Result, named `section: name`."""
        facts: dict[str, Any] = {"database": self.database, "generated at": self.generated_at}
        tables: dict[str, pl.DataFrame] = {}
        for s in self.sections:
            facts.update({f"{s.title}: {k}": v for k, v in s.facts.items()})
            tables.update({f"{s.title}: {k}": df for k, df in s.tables.items()})
        return Result(self.title, facts, tables)

    def to_dict(self) -> dict[str, Any]:
        """Titles, facts and tables as JSON-ready values (times as ISO text)."""
        return {
            "title": self.title, "generated_at": self.generated_at.isoformat(), "database": self.database,
            "sections": [{"title": s.title, "text": s.text,
                          "facts": {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in s.facts.items()},
                          "tables": {k: json.loads(df.write_json()) for k, df in s.tables.items()},
                          "figures": len(s.figures)} for s in self.sections],
        }

    def to_html(self) -> str:
        scripts: list[str] = [LOADER_JS % _plotly_packed()]
        nav, body = [], []
        for i, s in enumerate(self.sections):
            anchor = _slug(s.title, i)
            nav.append(f"<a href='#{anchor}'>{html.escape(s.title)}</a>")
            parts = [f"<section id='{anchor}' class='{html.escape(s.css_class)}'><h2>{html.escape(s.title)}</h2>"]
            if s.text:
                parts.append(f"<p>{html.escape(s.text)}</p>")
            if s.facts:
                parts.append("<ul class='facts'>" + "".join(
                    f"<li><b>{html.escape(k)}</b>: {html.escape(_fmt(v))}</li>" for k, v in s.facts.items()) + "</ul>")
            for j, block in enumerate(s.blocks):
                if isinstance(block, go.Figure):
                    parts.append(self._figure(block, f"{anchor}-fig{j}", scripts))
                elif isinstance(block, tuple):
                    parts.append(html_table(block[1], block[0], max_rows=max(self.options.max_rows, 1)))
                else:
                    parts.append(str(block))
            parts.append("</section>")
            body.append("".join(parts))
        scripts.append(CLICK_JS)
        hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                          for s in [get_plotlyjs(), *scripts])  # plotly.js: the script the loader adds
        csp = (f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data:; "
               "font-src data:; base-uri 'none'; form-action 'none'")
        sub = (f"{self.database} · generated {self.generated_at:%Y-%m-%d %H:%M:%S} UTC"
               + (f" · runs from {self.options.since or 'the start'} to {self.options.until or 'the end'}"
                  if self.options.since or self.options.until else ""))
        return (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{csp}\">"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(self.title)}</title><style>{PAGE_CSS}{DETAIL_CSS}</style>"
            f"<script>{scripts[0]}</script></head><body>"
            f"<header><h1>{html.escape(self.title)}</h1><p>{html.escape(sub)}</p></header>"
            f"<nav>{''.join(nav)}</nav><main>{''.join(body)}</main>"
            + "".join(f"<script>{s}</script>" for s in scripts[1:])
            + "</body></html>"
        )

    @staticmethod
    def _figure(fig: go.Figure, div_id: str, scripts: list[str]) -> str:
        meta = fig.layout.meta
        key = meta.get("agentlens_trace") if isinstance(meta, dict) else None
        data_key = f" data-trace-key='{html.escape(key)}'" if key else ""
        spec = fig.to_plotly_json()
        payload = json.dumps({"data": spec["data"], "layout": spec["layout"],
                              "config": {"responsive": True, "displaylogo": False}},
                             cls=_Encoder, separators=(",", ":"))
        scripts.append(f"agentlensPlotly.then(function () {{ Plotly.newPlot({json.dumps(div_id)}, {_script_safe(payload)}); }});")
        return f"<div class='al-figure'><div id='{div_id}' class='plotly-graph-div'{data_key}></div></div>"

    def save(self, path: str | Path, format: str | None = None, table: str | None = None) -> Path:
        """The HTML page, unless `format` (or the suffix: .json, .csv, .parquet) asks for data."""
        suffix = Path(path).suffix.lstrip(".").lower()
        return super().save(path, format or (suffix if suffix in ("json", "csv", "parquet") else "html"), table)

    def __str__(self) -> str:
        return f"{self.title}: {len(self.sections)} sections ({', '.join(s.title for s in self.sections)})"


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, dt.datetime | dt.date):
            return o.isoformat()
        if hasattr(o, "tolist"):
            return o.tolist()
        return super().default(o)


def _script_safe(payload: str) -> str:
    """JSON text safe inside a <script> element (no `</script>`, `<!--`, or line separators)."""
    return (payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def build_report(
    lens: Store,
    since: dt.datetime | str | None = None,
    until: dt.datetime | str | None = None,
    run_ids: Sequence[str] = (),
    title: str | None = None,
    sections: Sequence[SectionFn] = SECTIONS,
    **options: Any,
) -> Report:
    """Assemble the report from `sections` (each left out when it returns None)."""
    try:  # relative times ("24h") are read once, so every section sees the same window
        t0, t1 = parse_window(since, until)
    except TimeSpecError as e:
        raise explore.FilterError(str(e)) from None
    opts = ReportOptions(since=t0, until=t1, run_ids=tuple(run_ids), **options)
    for rid in opts.run_ids:
        run_header(lens, rid)  # KeyError naming the run when it is not there
    built = [s for fn in sections if (s := fn(lens, opts)) is not None]
    return Report(title or "agentlens report", dt.datetime.now(dt.UTC), opts, built, lens.path)


def demo_section(lens: Store) -> str:
    """`agentlens demo` / `make demo`: write report.html next to the database and say where it is."""
    path = Path(lens.path).resolve().parent / "report.html"
    build_report(lens).save(path)
    return f"\nHTML report: {path}"
