"""The on-call engineer's terminal: a list of runs, one run's span tree, a session, a comparison and the
quarantine, as rich renderables that fit the console's width (`agentlens runs`, `trace`, `session`,
`compare`, `quarantine` print them through present/terminal.py).

Every piece of trace text goes through `core.textsafe.visible` (controls shown, never obeyed) and is
never read as rich markup (Text objects, not markup strings). Times show the year when the data spans
years (else the header says it); money has the same decimals down a column.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..core.results import _fmt, money_decimals
from ..core.textsafe import visible
from ..explore.compare import RULES, Comparison
from ..explore.session import Session
from ..explore.trace import evidence_spans

# --- cells ------------------------------------------------------------------------------------------


def t(value: Any, style: str = "") -> Text:
    """Untrusted text as a cell: controls shown, no markup."""
    return Text(visible("" if value is None else str(value), newlines=False), style=style)


def time_format(values: Iterable[dt.datetime | None]) -> tuple[str, str]:
    """strftime format and header note for a column of times: without the year when they all fall in
    one year (the header names it), with it when they span years."""
    years = {v.astimezone(dt.UTC).year for v in values if v is not None}
    if len(years) <= 1:
        year = next(iter(years), None)
        return "%m-%d %H:%M:%S", f" ({year}, UTC)" if year else " (UTC)"
    return "%Y-%m-%d %H:%M", " (UTC)"


def fmt_time(v: dt.datetime | None, fmt: str) -> str:
    return "" if v is None else v.astimezone(dt.UTC).strftime(fmt)


def fmt_ms(v: float | None) -> str:
    if v is None:
        return ""
    if v < 1000:
        return f"{v:,.0f} ms"
    if v < 60_000:
        return f"{v / 1000:,.1f} s"
    return f"{v / 60_000:,.1f} min"


def money(values: Sequence[float | None]) -> list[str]:
    """Amounts in USD with the same decimals down the column."""
    d = money_decimals(list(values))
    return ["" if v is None else f"${v:,.{d}f}" for v in values]


def fmt_tokens(i: int | None, o: int | None) -> str:
    if i is None and o is None:
        return ""
    return f"{_fmt(i or 0)}/{_fmt(o or 0)}"


def _table(**kw: Any) -> Table:
    return Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, header_style="bold", **kw)


# --- a list of runs --------------------------------------------------------------------------------


@dataclass
class Col:
    """A column of a table fitted to the width: its cells, and how important it is (lower: dropped first
    when the width is short)."""

    header: str
    cells: list[Text]
    priority: int
    justify: str = "left"
    cap: int | None = None  # widest it may be (ellipsis past it)
    flex: bool = False  # takes the width left (at least FLEX_MIN), cut with an ellipsis


FLEX_MIN = 16
GAP = 2  # columns of space between two columns (SIMPLE_HEAD, no edge padding)


def fitted(cols: list[Col], width: int, title: str | None = None) -> Table:
    """A table of `cols` no wider than `width`: each fixed column as wide as its widest cell (up to its
    cap), the flexible one gets what is left, and the least important columns go when even that does
    not fit."""
    cols = list(cols)

    def need(c: Col) -> int:
        w = max([len(c.header), *(x.cell_len for x in c.cells)])
        return min(w, c.cap) if c.cap else w

    while True:
        fixed = sum(need(c) for c in cols if not c.flex) + GAP * (len(cols) - 1)
        flex = [c for c in cols if c.flex]
        room = width - fixed
        if (not flex and room >= 0) or (flex and room >= FLEX_MIN) or len(cols) <= 2:
            break
        cols.remove(min(cols, key=lambda c: c.priority))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, header_style="bold", padding=(0, 1),
                  collapse_padding=True, title=visible(title) if title else None, title_justify="left",
                  title_style="bold")
    for c in cols:
        w = max(FLEX_MIN, min(room, max([len(c.header), *(x.cell_len for x in c.cells)]))) if c.flex else need(c)
        table.add_column(visible(c.header), justify=c.justify, no_wrap=True, overflow="ellipsis",  # type: ignore[arg-type]
                         width=w, min_width=w, max_width=w)
    for row in zip(*(c.cells for c in cols), strict=True):
        table.add_row(*row)
    return table


def runs_table(df: pl.DataFrame, width: int, title: str | None = None, numbered: bool = False) -> RenderableType:
    """A page of runs (find_runs(..., describe=True)) as a person scans it: id, start, name, status,
    duration, cost, tokens, failures, and the preview taking what width is left (cut with …); on a
    narrow terminal the least needed columns go first (tokens, failures, duration, name)."""
    if df.height == 0:
        return Text("no runs match")
    fmt, note = time_format(df["started_at"].to_list())
    rows = list(df.iter_rows(named=True))
    cols: list[Col] = []
    if numbered:
        cols.append(Col("#", [Text(str(i)) for i in range(1, len(rows) + 1)], 95, "right"))
    cols += [
        Col("run", [t(r["run_id"]) for r in rows], 100),
        Col("started" + note, [Text(fmt_time(r["started_at"], fmt)) for r in rows], 90),
        Col("name", [t(r.get("name")) for r in rows], 40, cap=24),
        Col("status", [Text(r["status"] or "", style="red" if r["status"] == "error" else "") for r in rows], 80),
        Col("duration", [Text(fmt_ms(r.get("duration_ms"))) for r in rows], 50, "right"),
        Col("cost", [Text(c) for c in money(df["cost_usd"].to_list())], 60, "right"),
        Col("tokens in/out", [Text(fmt_tokens(r.get("input_tokens"), r.get("output_tokens"))) for r in rows], 10,
            "right"),
    ]
    if "failure_modes" in df.columns:
        cols.append(Col("failures", [t(r.get("failure_modes"), "yellow") for r in rows], 45, cap=28))
    cols.append(Col("preview", [t(r.get("preview")) for r in rows], 75, flex=True))
    return fitted(cols, width, title)


def runs_view(df: pl.DataFrame, total: int, width: int, search_note: str | None = None) -> RenderableType:
    """The list and a line saying how many match and how many are shown."""
    if total == 0:
        return Text("no runs match")
    shown = f"{df.height:,} of {total:,} runs" if total > df.height else f"{total:,} run" + ("s" if total > 1 else "")
    parts: list[RenderableType] = [runs_table(df, width), Text(shown + (f"; {search_note}" if search_note else ""),
                                                        style="dim")]
    return Group(*parts)


# --- one run's span tree ------------------------------------------------------------------------


def _prefixes(layout: pl.DataFrame) -> list[str]:
    """Tree-drawing prefixes (├─ └─ │) for the rows of a depth-first layout."""
    rows = layout.select("span_id", "parent_span_id", "depth").rows()
    n = len(rows)
    last_child = [True] * n
    # a row is its parent's last child when no later row at the same depth shares the parent before
    # the layout climbs above it
    for i, (_, parent, depth) in enumerate(rows):
        for j in range(i + 1, n):
            dj = rows[j][2]
            if dj < depth:
                break
            if dj == depth and rows[j][1] == parent:
                last_child[i] = False
                break
    out: list[str] = []
    open_at: list[bool] = []  # per depth: does the ancestor at that depth have siblings below
    for i, (_, _, depth) in enumerate(rows):
        del open_at[depth:]
        if depth == 0:
            out.append("")
        else:
            out.append("".join("│  " if o else "   " for o in open_at[1:depth]) + ("└─ " if last_child[i] else "├─ "))
        open_at.append(not last_child[i])
    return out


def _bar(offset: float | None, duration: float | None, total: float, width: int) -> Text:
    if width <= 0:
        return Text("")
    if total <= 0 or offset is None:
        return Text(" " * width)
    start = min(width - 1, max(0, int(offset / total * width)))
    length = max(1, round((duration or 0) / total * width))
    length = min(length, width - start)
    return Text(" " * start + "━" * length + " " * (width - start - length))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit:,} more characters)"


def _pretty(value: str | None) -> str:
    if value is None:
        return ""
    try:
        return json.dumps(json.loads(value), indent=2, ensure_ascii=False)
    except ValueError:
        return value


def _messages_text(value: str | None, limit: int) -> list[Text]:
    """An LLM span's message list role by role (else the text as it is), as indented lines."""
    out: list[Text] = []
    msgs: Any = None
    if value:
        try:
            msgs = json.loads(value)
        except ValueError:
            msgs = None
    if isinstance(msgs, list) and all(isinstance(m, dict) and "role" in m for m in msgs):
        for m in msgs:
            body = m.get("content")
            if body is not None and not isinstance(body, str):
                body = json.dumps(body, ensure_ascii=False)
            line = Text(f"{visible(str(m.get('role')), newlines=False)}: ", style="bold")
            line.append(visible(_cut(body or "", limit)))
            out.append(line)
            for c in m.get("tool_calls") or []:
                if isinstance(c, dict):
                    args = c.get("arguments")
                    args = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
                    out.append(Text(visible(f"  → calls {c.get('name')}({_cut(args or '', limit)})")))
    elif value:
        out.append(Text(visible(_cut(_pretty(value), limit))))
    return out


def trace_view(run: dict[str, Any], layout: pl.DataFrame, marks: pl.DataFrame, width: int,
               details: dict[str, Any] | None = None, full: bool = False, max_text: int = 2000) -> RenderableType:
    """The run's headline, its failures, and its span tree: nesting, start offset, duration and a bar
    on the run's time axis, kind, model, tokens, cost, errors (✖ and the message) and the failure
    evidence (★ mode) on the spans that show it. `full`: each span's messages, tool arguments and result
    below it (`details`: span_id -> span row)."""
    _, note = time_format([run.get("started_at")])
    head = Text()
    head.append(visible(str(run["run_id"])), style="bold")
    for label, value in (("agent", run.get("agent_name")), ("status", run.get("status")),
                         ("started" + note, fmt_time(run.get("started_at"), "%Y-%m-%d %H:%M:%S")),
                         ("duration", fmt_ms(run.get("duration_ms"))),
                         ("cost", money([run.get("cost_usd")])[0]),
                         ("tokens in/out", fmt_tokens(run.get("input_tokens"), run.get("output_tokens"))),
                         ("feature", run.get("feature")), ("customer", run.get("customer_id")),
                         ("session", run.get("session_id")), ("model", run.get("model"))):
        if value not in (None, ""):
            head.append(f"   {label} ", style="dim")
            head.append(visible(str(value), newlines=False), style="red" if value == "error" else "")
    parts: list[RenderableType] = [head]
    if marks.height:
        for m in marks.unique(subset=["mode", "explanation"], maintain_order=True).iter_rows(named=True):
            line = Text("★ ", style="yellow")
            line.append(visible(f"{m['mode']} ({m['severity']}): {m['explanation']}", newlines=False))
            parts.append(line)
    else:
        parts.append(Text("no failures", style="dim"))
    if layout.height == 0:
        parts.append(Text("this run has no spans"))
        return Group(*parts)

    total = max((float(o or 0) + float(d or 0) for o, d in layout.select("offset_ms", "duration_ms").rows()),
                default=0.0)
    evidence = evidence_spans(marks)
    prefixes = _prefixes(layout)
    rows = list(layout.iter_rows(named=True))
    bar_width = max(10, min(40, width // 8))
    # the fixed columns, as wide as their widest cell; the span names take what is left
    fixed: list[tuple[str, list[str], str, int]] = [  # header, cells, justify, priority
        ("kind", [str(r["kind"] or "") for r in rows], "left", 60),
        ("start", [fmt_ms(r["offset_ms"]) for r in rows], "right", 70),
        ("duration", [fmt_ms(r["duration_ms"]) for r in rows], "right", 80),
        ("bar", [""] * len(rows), "left", 90),
        ("model / tool", [visible(str(r.get("model") or r.get("tool_name") or ""), newlines=False)[:24]
                          for r in rows], "left", 40),
        ("tokens in/out", [fmt_tokens(r.get("input_tokens"), r.get("output_tokens")) for r in rows], "right", 30),
        ("cost", money(layout["cost_usd"].to_list()), "right", 50),
    ]
    if "cost_differs" in layout.columns and layout["cost_differs"].any():
        # a call whose reported and computed costs disagree: the figure its cost is not, beside it
        first = next(r for r in rows if r["cost_differs"])
        headline_computed = first["cost_usd"] == first["computed_cost_usd"]
        other = [(r["reported_cost_usd"] if headline_computed else r["computed_cost_usd"]) if r["cost_differs"]
                 else None for r in rows]
        fixed.append(("reported" if headline_computed else "computed", money(other), "right", 45))
    widths = {h: (bar_width if h == "bar" else max(len(h), *(len(c) for c in cells)))
              for h, cells, _, _ in fixed}
    # the span names' column wants its longest name whole (with the tree's prefix, ✖ and ★ marks), up to
    # a little over half the width: below that the least important columns go (tokens, model, cost ...)
    tails = [len(" ✖" if r["status"] == "error" else "") + sum(len(" ★ ") + len(visible(", ".join(m), newlines=False))
                                                          for m in [evidence.get(r["span_id"])] if m)
             for r in rows]
    want = max(len(p) + len(visible(str(r["name"]), newlines=False)) + t for r, p, t in zip(rows, prefixes, tails, strict=True))
    room = max(24, min(want, width * 11 // 20))
    while True:
        short = room - (width - sum(widths[h] + GAP for h, _, _, _ in fixed))
        if short <= 0 or len(fixed) <= 2:
            break
        if widths.get("model / tool", 0) - short >= 12 and any(f[0] == "model / tool" for f in fixed):
            widths["model / tool"] -= short  # narrowed (its names cut with …) rather than left out
            continue
        drop = min(fixed, key=lambda f: f[3])
        fixed.remove(drop)
    name_w = max(12, width - sum(widths[h] + GAP for h, _, _, _ in fixed))

    def cell(text: str, w: int, justify: str) -> str:
        text = text if len(text) <= w else text[: max(0, w - 1)] + "…"
        return text.rjust(w) if justify == "right" else text.ljust(w)

    header = Text(cell("span", name_w, "left"), style="bold")
    for h, _, justify, _ in fixed:
        label = f"0 ─ {fmt_ms(total)}" if h == "bar" else h
        header.append(" " * GAP + cell(label, widths[h], justify), style="bold")
    lines: list[RenderableType] = [header, Text("─" * min(width, header.cell_len), style="dim")]
    for i, (row, prefix) in enumerate(zip(rows, prefixes, strict=True)):
        failed = row["status"] == "error"
        modes = evidence.get(row["span_id"], [])
        line = Text(prefix, style="dim")
        name = visible(str(row["name"]), newlines=False)
        tail = (" ✖" if failed else "") + (" ★ " + visible(", ".join(modes), newlines=False) if modes else "")
        room = name_w - len(prefix)
        if len(name) + len(tail) > room:
            name = name[: max(1, room - len(tail) - 1)] + "…"
        line.append(name, style="red" if failed else "")
        if failed:
            line.append(" ✖", style="red bold")
        if modes:
            line.append(" ★ " + visible(", ".join(modes), newlines=False), style="yellow")
        line.append(" " * max(0, name_w - line.cell_len))
        line.truncate(name_w)
        for h, cells, justify, _ in fixed:
            line.append(" " * GAP)
            if h == "bar":
                line.append_text(_bar(row["offset_ms"], row["duration_ms"], total, bar_width))
            else:
                line.append(cell(cells[i], widths[h], justify))
        lines.append(line)
        pad = prefix.replace("├─ ", "│  ").replace("└─ ", "   ") + ("│  " if row["n_children"] else "   ")
        if failed or row.get("error_type") or row.get("status_message"):
            msg = row.get("status_message") or row.get("error_type") or "(no message)"
            if row.get("error_type") and not str(msg).startswith(str(row["error_type"])):
                msg = f"{row['error_type']}: {msg}"
            err = Text(pad, style="dim")
            err.append("error: " + visible(" ".join(str(msg).split()), newlines=False), style="red")
            err.truncate(width, overflow="ellipsis")
            lines.append(err)
        if full and details is not None:
            for label, texts in _detail_lines(details.get(row["span_id"]) or {}, max_text):
                lines.append(Text(pad + label, style="bold dim"))
                for text in texts:
                    for piece in _wrap(text, width - len(pad) - 2):
                        body = Text(pad + "  ", style="dim")
                        body.append_text(piece)
                        lines.append(body)
    parts += lines
    return Group(*parts)


def _wrap(text: Text, width: int) -> list[Text]:
    """A text's lines, each cut into pieces of `width` cells (so an indented block stays indented)."""
    width = max(10, width)
    out: list[Text] = []
    for line in text.split("\n", allow_blank=True):
        if line.cell_len <= width:
            out.append(line)
            continue
        plain = line.plain
        for i in range(0, len(plain), width):
            out.append(line[i: i + width])
    return out


def _detail_lines(span: dict[str, Any], limit: int) -> list[tuple[str, list[Text]]]:
    out: list[tuple[str, list[Text]]] = []
    if span.get("kind") == "tool" or span.get("tool_arguments") is not None or span.get("tool_result") is not None:
        if span.get("tool_arguments") is not None:
            out.append(("arguments", [Text(visible(_cut(_pretty(span["tool_arguments"]), limit)))]))
        if span.get("tool_result") is not None:
            out.append(("result", [Text(visible(_cut(_pretty(span["tool_result"]), limit)))]))
    else:
        for key in ("input", "output"):
            lines = _messages_text(span.get(key), limit)
            if lines:
                out.append((key, lines))
    return out


# --- a session ---------------------------------------------------------------------------------------


def session_view(s: Session, width: int) -> RenderableType:
    tot = s.totals
    head = Text()
    head.append(f"session {visible(s.session_id, newlines=False)}", style="bold")
    facts = (("runs", _fmt(tot["runs"])), ("failed", _fmt(tot["failed_runs"])),
             ("from", fmt_time(tot["first_started"], "%Y-%m-%d %H:%M:%S")),
             ("to", fmt_time(tot["last_ended"], "%Y-%m-%d %H:%M:%S") + " UTC"),
             ("run time", fmt_ms(tot["run_time_ms"])), ("cost", money([tot["cost_usd"]])[0]),
             ("tokens in/out", fmt_tokens(tot["input_tokens"], tot["output_tokens"])),
             ("LLM calls", _fmt(tot["llm_calls"])), ("tool calls", _fmt(tot["tool_calls"])),
             ("user", tot.get("users")), ("customer", tot.get("customers")))
    for label, value in facts:
        if value not in (None, ""):
            head.append(f"   {label} ", style="dim")
            head.append(visible(str(value), newlines=False))
    return Group(head, runs_table(s.runs, width, numbered=True))


# --- a comparison ---------------------------------------------------------------------------------


def _value(unit: str, v: float | None, signed: bool = False, decimals: int = 4) -> str:
    if v is None:
        return ""
    sign = "+" if signed and v > 0 else ""
    if unit == "share":
        return f"{sign}{v * 100:.1f}" + (" pp" if signed else "%")
    if unit == "ms":
        return sign + fmt_ms(abs(v)) if v >= 0 else "-" + fmt_ms(-v)
    if unit == "usd":
        return f"{sign}{'-' if v < 0 else ''}${abs(v):,.{decimals}f}"
    return f"{sign}{v:,.0f}"


def compare_view(c: Comparison) -> RenderableType:
    """The comparison side by side: a, b, the difference, the change, and the note."""
    rows = c.rows
    usd = [v for u, a, b in rows.select("unit", "a", "b").rows() if u == "usd" for v in (a, b)]
    d = money_decimals(usd)
    table = _table(title=visible(f"a: {c.a.label}   b: {c.b.label}"), title_justify="left", title_style="bold")
    table.add_column("", no_wrap=True)
    table.add_column("a", justify="right", no_wrap=True)
    table.add_column("b", justify="right", no_wrap=True)
    table.add_column("b - a", justify="right", no_wrap=True)
    table.add_column("change", justify="right", no_wrap=True)
    table.add_column("note", overflow="fold", ratio=1, min_width=16)
    for r in rows.iter_rows(named=True):
        noisy = "too few" in (r["note"] or "") or "noise" in (r["note"] or "")
        change = "" if r["change"] is None else f"{r['change'] * 100:+.0f}%"
        table.add_row(t(r["metric"]), _value(r["unit"], r["a"], decimals=d), _value(r["unit"], r["b"], decimals=d),
                      _value(r["unit"], r["difference"], signed=True, decimals=d), change,
                      t(r["note"], "dim" if noisy else "bold"))
    return Group(table, Text(RULES, style="dim"))


# --- the quarantine -----------------------------------------------------------------------------------


def quarantine_view(counts: pl.DataFrame, records: pl.DataFrame) -> RenderableType:
    if counts.height == 0:
        return Text("nothing quarantined")
    by = _table(title="quarantined records by file and kind", title_justify="left", title_style="bold")
    by.add_column("file", overflow="fold", max_width=40)
    by.add_column("kind", no_wrap=True)
    by.add_column("records", justify="right", no_wrap=True)
    by.add_column("stored", justify="right", no_wrap=True)
    by.add_column("first line", justify="right", no_wrap=True)
    by.add_column("first reason", overflow="fold", ratio=1, min_width=16)
    for r in counts.iter_rows(named=True):
        by.add_row(t(r["file"]), t(r["kind"]), _fmt(r["records"]), _fmt(r["stored"]), _fmt(r["first_line"]),
                   t(r["first_reason"]))
    fmt, note = time_format(records["ingested_at"].to_list())
    rec = _table(title=f"the newest {records.height:,} records", title_justify="left", title_style="bold")
    rec.add_column("when" + note, no_wrap=True)
    rec.add_column("file", overflow="fold", max_width=30)
    rec.add_column("line", justify="right", no_wrap=True)
    rec.add_column("kind", no_wrap=True)
    rec.add_column("reason", overflow="fold", ratio=3, min_width=20)
    rec.add_column("raw excerpt", overflow="fold", ratio=2, min_width=16)
    for r in records.iter_rows(named=True):
        rec.add_row(fmt_time(r["ingested_at"], fmt), t(r["file"]), _fmt(r["line"]), t(r["kind"]), t(r["reason"]),
                    t(r["excerpt"], "dim"))
    return Group(by, Text(""), rec)
