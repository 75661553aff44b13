"""Plotly figures from DataFrames. Functions here never open the database: they take the frames the
library returns (`trace.trace_layout`, cost and signal tables) and return a `plotly.graph_objects.Figure`.

Plotly renders hover text, tick labels, legend entries and titles as a subset of HTML, and trace
content (span names, feature values, error messages) is untrusted: every string that reaches a figure
goes through `esc` (`html.escape`), which plotly shows back as the literal text.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl

from ..core.results import _fmt

KIND_COLORS: dict[str, str] = {
    "agent": "#4c78a8", "llm": "#b279a2", "tool": "#f58518", "retriever": "#72b7b2",
    "embedding": "#9d755d", "chain": "#bab0ac", "guardrail": "#54a24b", "other": "#79706e",
}
ERROR_COLOR = "#d62728"
EVIDENCE_COLOR = "#ff1f5b"
SELECTED_COLOR = "#111111"
SELECTED = "selected span"  # name of the one-bar trace that outlines the selection
ROW_PX = 22          # height of one span row in the waterfall
MAX_ROWS_SHOWN = 40  # rows in view at once; larger traces pan and zoom vertically
MAX_INDENT = 16
INDENT = 2.0         # label column units per level of depth (the column is LABEL_UNITS wide)
LABEL_UNITS = 70.0
LABEL_WIDTH = 0.3    # share of the figure's width for the span names
HOVER_TEXT = 300     # characters of an error message in a hover box

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6",
           "#9d755d", "#bab0ac")


def esc(v: Any) -> str:
    """Text for a plotly label or hover box: formatted like the tables, HTML-escaped."""
    return html.escape(_fmt(v), quote=False)


def usd(v: float | None) -> str:
    """An amount in USD to six decimals at most ($0.10, $0.000337, $1.25)."""
    if v is None:
        return "n/a"
    if abs(v) >= 1:
        return f"${v:,.2f}"
    whole, frac = f"{v:.6f}".split(".")
    return f"${whole}.{frac.rstrip('0'):0<2}"


def _short(text: Any, n: int) -> str:
    s = _fmt(text)
    return s if len(s) <= n else s[: n - 1] + "…"


def span_label(name: Any, depth: int, status: str | None = None) -> str:
    """A waterfall row label (escaped): the span name, after a branch mark below the root and ✖
    when it failed. Its indentation is its x position in the label column."""
    lead = "└\u00a0" if depth else ""
    mark = "✖\u00a0" if status == "error" else ""
    return esc(lead + mark + _short(name, 60))


def _hover(row: Mapping[str, Any], modes: Sequence[str]) -> str:
    parts = [f"<b>{esc(_short(row['name'], 80))}</b>",
             f"{esc(row['kind'])} · {esc(row['status'])} · depth {row['depth']}",
             f"start +{esc(round(row['offset_ms'] or 0.0, 1))} ms · "
             f"{'duration unknown' if row['duration_ms'] is None else esc(round(row['duration_ms'], 1)) + ' ms'}"]
    if row.get("model"):
        parts.append(f"model {esc(row['model'])}")
    if row.get("tool_name"):
        parts.append(f"tool {esc(row['tool_name'])}")
    if row.get("input_tokens") is not None or row.get("output_tokens") is not None:
        parts.append(f"tokens {esc(row.get('input_tokens'))} in / {esc(row.get('output_tokens'))} out")
    if row.get("cost_usd") is not None:
        parts.append(f"cost {esc(usd(row['cost_usd']))}" + (
            f" (computed; reported {esc(usd(row.get('reported_cost_usd')))})"
            if row.get("cost_differs") and row["cost_usd"] == row.get("computed_cost_usd") else
            f" (reported; computed {esc(usd(row.get('computed_cost_usd')))})" if row.get("cost_differs") else ""))
    if row.get("error_type") or row.get("status_message"):
        parts.append(f"error {esc(row.get('error_type'))}: {esc(_short(row.get('status_message'), HOVER_TEXT))}")
    if modes:
        parts.append(f"<b>failure evidence: {esc(', '.join(modes))}</b>")
    return "<br>".join(parts)


def _arr(values: Sequence[Any], dtype: Any = None) -> np.ndarray:
    """Plotly validates numpy arrays in one step, lists item by item (2,000 spans: 15 ms vs 3 s)."""
    return np.asarray(values, dtype=dtype)


def trace_waterfall(
    layout: pl.DataFrame,
    evidence: Mapping[str, Sequence[str]] | None = None,
    selected: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """The waterfall of one run from `trace.trace_layout`: one bar per span (time on x from the run's
    start, one row per span in depth-first order, the names in a column on the left indented by
    depth), coloured by kind; error spans outlined in red and marked ✖, spans named by failure
    evidence marked with a star, the `selected` span outlined in black. Each bar's `customdata` is
    its row number (what a click handler gets back)."""
    evidence = evidence or {}
    n = layout.height
    rows = layout.to_dicts()
    hover = [_hover(r, evidence.get(r["span_id"], ())) for r in rows]
    starts = [r["offset_ms"] or 0.0 for r in rows]
    widths = [max(r["duration_ms"] or 0.0, 0.0) for r in rows]
    fig = go.Figure()

    def bars(idx: list[int], **kw: Any) -> go.Bar:
        return go.Bar(orientation="h", y=_arr(idx), x=_arr([widths[i] for i in idx], float),
                      base=_arr([starts[i] for i in idx], float), customdata=_arr(idx),
                      hovertext=_arr([hover[i] for i in idx], object),
                      hovertemplate="%{hovertext}<extra></extra>", width=0.7, **kw)

    by_kind: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_kind.setdefault(r["kind"] if r["kind"] in KIND_COLORS else "other", []).append(i)
    for kind, idx in by_kind.items():
        fig.add_trace(bars(idx, name=esc(kind), marker={"color": KIND_COLORS[kind], "line": {"width": 0}}))
    errors = [i for i, r in enumerate(rows) if r["status"] == "error"]
    if errors:  # a red outline drawn over the failed spans' bars
        fig.add_trace(bars(errors, name="error", marker={
            "color": "rgba(0,0,0,0)", "line": {"color": ERROR_COLOR, "width": 2}}))
    marked = [i for i, r in enumerate(rows) if r["span_id"] in evidence]
    if marked:
        fig.add_trace(go.Scatter(
            name="failure evidence", mode="markers", x=_arr([starts[i] for i in marked], float), y=_arr(marked),
            customdata=_arr(marked), hovertext=_arr([hover[i] for i in marked], object),
            hovertemplate="%{hovertext}<extra></extra>",
            marker={"symbol": "star", "size": 13, "color": EVIDENCE_COLOR, "line": {"color": "#000", "width": 1}},
        ))
    fig.add_trace(bars([], name=SELECTED, showlegend=False, marker={
        "color": "rgba(0,0,0,0)", "line": {"color": SELECTED_COLOR, "width": 3}}))
    # the span names, left-aligned and indented by depth, in a column of their own left of the bars
    for failed in (False, True):
        idx = [i for i, r in enumerate(rows) if (r["status"] == "error") == failed]
        if idx:
            fig.add_trace(go.Scatter(
                x=_arr([min(rows[i]["depth"], MAX_INDENT) * INDENT for i in idx], float), y=_arr(idx),
                text=_arr([span_label(rows[i]["name"], rows[i]["depth"], rows[i]["status"]) for i in idx], object),
                mode="text", textposition="middle right", cliponaxis=True, showlegend=False, xaxis="x2",
                textfont={"family": "monospace", "size": 11, "color": ERROR_COLOR if failed else "#1f2328"},
                customdata=_arr(idx), hovertext=_arr([hover[i] for i in idx], object),
                hovertemplate="%{hovertext}<extra></extra>", name="labels",
            ))
    shown = min(n, MAX_ROWS_SHOWN)
    fig.update_layout(
        title={"text": esc(title) if title else None, "font": {"size": 14}},
        barmode="overlay", bargap=0.25, dragmode="pan" if n > MAX_ROWS_SHOWN else "zoom",
        height=max(220, ROW_PX * shown + 130), margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 40},
        legend={"orientation": "h", "y": -0.12 if shown > 10 else -0.3, "x": 0},
        hoverlabel={"align": "left"}, plot_bgcolor="#fff", clickmode="event",
        xaxis={"title": {"text": "ms since the run started"}, "gridcolor": "#eee", "zeroline": False,
               "domain": [LABEL_WIDTH + 0.01, 1]},
        xaxis2={"domain": [0, LABEL_WIDTH], "range": [-0.2, LABEL_UNITS], "visible": False, "fixedrange": True},
        yaxis={"range": [shown - 0.5, -0.5], "showticklabels": False, "showgrid": False, "zeroline": False},
    )
    if selected is not None:
        restyle_selection(fig, layout, selected)
    return fig


def restyle_selection(fig: go.Figure, layout: pl.DataFrame, selected: str | None) -> None:
    """Move the black outline to the `selected` span, in place: only the one-bar `SELECTED` trace
    changes."""
    sel = next(tr for tr in fig.data if tr.name == SELECTED)
    row = layout["span_id"].to_list().index(selected) if selected is not None else None
    if row is None:
        sel.update(x=_arr([], float), base=_arr([], float), y=_arr([]), customdata=_arr([]),
                   hovertext=_arr([], object))
        return
    src = next(tr for tr in fig.data if isinstance(tr, go.Bar) and tr.name != SELECTED
               and tr.customdata is not None and row in list(tr.customdata))
    k = list(src.customdata).index(row)
    sel.update(x=_arr([src.x[k]], float), base=_arr([src.base[k]], float), y=_arr([row]),
               customdata=_arr([row]), hovertext=_arr([src.hovertext[k]], object))


def _series_name(v: Any) -> str:
    return "(none)" if v is None else esc(v)


def line_chart(
    df: pl.DataFrame, x: str, y: str | Sequence[str], color: str | None = None, title: str | None = None,
    y_title: str | None = None, mode: str = "lines+markers", hover: Iterable[str] = (),
) -> go.Figure:
    """Lines of `y` (one column, or several) over `x`, one line per value of `color`."""
    ys = [y] if isinstance(y, str) else list(y)
    fig = go.Figure()
    groups = df.partition_by(color, maintain_order=True, as_dict=True) if color else {(None,): df}
    extra = list(hover)
    for i, (key, part) in enumerate(groups.items()):
        part = part.sort(x)
        for j, col in enumerate(ys):
            name = _series_name(key[0]) if color else esc(col)
            if color and len(ys) > 1:
                name += f" · {esc(col)}"
            texts = _hover_rows(part, [x, col, *extra]) if extra or color else None
            fig.add_trace(go.Scatter(
                x=part[x].to_list(), y=part[col].to_list(), name=name, mode=mode,
                line={"color": PALETTE[(i * len(ys) + j) % len(PALETTE)]},
                hovertext=texts, hovertemplate="%{hovertext}<extra></extra>" if texts else None,
            ))
    _layout(fig, title, x, y_title or (ys[0] if len(ys) == 1 else None))
    return fig


def bar_chart(
    df: pl.DataFrame, x: str, y: str, color: str | None = None, title: str | None = None,
    y_title: str | None = None, horizontal: bool = False, stacked: bool = True,
) -> go.Figure:
    """Bars of `y` by `x` (categories are escaped), stacked by `color` when given."""
    fig = go.Figure()
    groups = df.partition_by(color, maintain_order=True, as_dict=True) if color else {(None,): df}
    for i, (key, part) in enumerate(groups.items()):
        cats = [_series_name(v) if df.schema[x] == pl.String else v for v in part[x].to_list()]
        vals = part[y].to_list()
        fig.add_trace(go.Bar(
            x=vals if horizontal else cats, y=cats if horizontal else vals,
            orientation="h" if horizontal else "v",
            name=_series_name(key[0]) if color else esc(y),
            marker={"color": PALETTE[i % len(PALETTE)]},
            hovertext=_hover_rows(part, [x, y] + ([color] if color else [])),
            hovertemplate="%{hovertext}<extra></extra>",
        ))
    _layout(fig, title, x, y_title or y)
    fig.update_layout(barmode="stack" if stacked else "group", showlegend=color is not None)
    if horizontal:
        fig.update_layout(xaxis_title=esc(y_title or y), yaxis_title=esc(x),
                          yaxis={"autorange": "reversed", "automargin": True})
    return fig


def _hover_rows(df: pl.DataFrame, cols: Sequence[str]) -> list[str]:
    cols = list(dict.fromkeys(c for c in cols if c in df.columns))
    return ["<br>".join(f"{esc(c)}: {esc(v)}" for c, v in zip(cols, row, strict=True))
            for row in df.select(cols).iter_rows()]


def _layout(fig: go.Figure, title: str | None, x_title: str | None, y_title: str | None) -> None:
    fig.update_layout(
        title={"text": esc(title) if title else None, "font": {"size": 14}},
        margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 40}, height=360,
        plot_bgcolor="#fff", hoverlabel={"align": "left"},
        xaxis={"title": {"text": esc(x_title) if x_title else None}, "gridcolor": "#eee", "automargin": True},
        yaxis={"title": {"text": esc(y_title) if y_title else None}, "gridcolor": "#eee", "automargin": True},
        legend={"orientation": "h", "y": -0.2, "x": 0},
    )


# --- golden signals ---------------------------------------------------------------------------------

# (panel title, columns drawn without a group-by, the column drawn per group, y-axis format)
SIGNAL_PANELS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("latency: run duration p50 / p95 (ms)", ("latency_p50_ms", "latency_p95_ms"), "latency_p95_ms", ",.0f"),
    ("traffic: runs", ("runs",), "runs", ",d"),
    ("errors: failed runs / runs with a failure mode", ("error_rate", "implicit_error_rate"), "error_rate", ".0%"),
    ("saturation: rate-limited share of LLM calls", ("rate_limited_share",), "rate_limited_share", ".0%"),
)
COUNT_COLUMNS = {"runs", "errors", "llm_calls", "tool_calls", "input_tokens", "output_tokens", "rate_limited_calls"}


DENSE_BUCKETS = 500  # up to this many buckets per line, every empty one is a point of its own


def fill_buckets(df: pl.DataFrame, every: dt.timedelta, by: Sequence[str] = (),
                 dense: int = DENSE_BUCKETS) -> pl.DataFrame:
    """Add the empty buckets between the first and the last (per group): counts 0, rates NULL, so
    a line shows a quiet hour as zero traffic and a gap in the error rate, not a straight line.

    Over more than `dense` buckets (a year of hours: 8,760), a stretch of empty buckets keeps only
    its first and its last: the lines draw the same (zero between two zeros, a gap after a NULL)
    and the figure stays small (a few runs over 17 months per hour: 70 points, not 12,700)."""
    if df.height == 0:
        return df
    lo, hi = df["bucket"].min(), df["bucket"].max()
    assert isinstance(lo, dt.datetime) and isinstance(hi, dt.datetime)
    grid = pl.DataFrame({"bucket": pl.datetime_range(lo, hi, every, eager=True, time_zone="UTC")})
    grid = grid.with_columns(pl.col("bucket").cast(df.schema["bucket"]))
    if by:
        grid = grid.join(df.select(list(by)).unique(maintain_order=True), how="cross")
    out = grid.join(df.with_columns(pl.lit(False).alias("_empty")), on=["bucket", *by], how="left",
                    nulls_equal=True).with_columns(pl.col("_empty").fill_null(True)).sort([*by, "bucket"])
    if (hi - lo) / every + 1 > dense:
        group = list(by) or None
        stretch = (pl.col("_empty") != pl.col("_empty").shift(1)).fill_null(True).cum_sum()
        out = out.with_columns((stretch.over(group) if group else stretch).alias("_stretch"))
        keys = [*(group or []), "_stretch"]
        pos, n = pl.int_range(pl.len()).over(keys), pl.len().over(keys)
        out = out.filter(~pl.col("_empty") | (pos == 0) | (pos == n - 1)).drop("_stretch")
    counts = [c for c in out.columns if c in COUNT_COLUMNS]
    return out.with_columns(pl.col(counts).fill_null(0)).drop("_empty").sort(["bucket", *by])


def signal_panels(df: pl.DataFrame, every: dt.timedelta | None = None, by: str | None = None,
                  title: str | None = None) -> go.Figure:
    """The four golden signals over time from `metrics.signals.signals(..., every=...)`, one panel
    each (latency, traffic, errors, saturation), sharing the time axis; one line per value of `by`
    when given (top 8 by runs, the rest left out and named in the title). Each point's customdata is
    [bucket start (ISO), group value], for a click to list the runs in it."""
    from plotly.subplots import make_subplots

    keys = [by] if by else []
    note = ""
    if by and df.height:
        top = (df.group_by(by).agg(pl.col("runs").sum()).sort(["runs", by], descending=[True, False],
                                                                nulls_last=True))
        if top.height > 8:
            note = f" (top 8 of {top.height} {by} values by runs)"
        keep = top[by].head(8)
        df = df.filter(pl.col(by).is_in(keep.drop_nulls().to_list())
                       | (pl.col(by).is_null() if keep.null_count() else pl.lit(False)))
    if every is not None:
        df = fill_buckets(df, every, keys)
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[esc(p[0]) for p in SIGNAL_PANELS])
    groups = df.partition_by(by, maintain_order=True, as_dict=True) if by else {(None,): df}
    series = 0  # without `by`, every series (p50, p95, runs, error rate ...) has its own colour
    for gi, (key, part) in enumerate(groups.items()):
        part = part.sort("bucket")
        value = key[0]
        iso = [b.isoformat() if b is not None else None for b in part["bucket"].to_list()]
        custom = np.array([[b, None if value is None else str(value)] for b in iso], dtype=object)
        for row, (_, plain, grouped, _fmt_y) in enumerate(SIGNAL_PANELS, start=1):
            cols = [grouped] if by else [c for c in plain if c in part.columns and part[c].null_count() < part.height]
            for col in cols:
                name = (_series_name(value) if by else esc(col))
                color = PALETTE[(gi if by else series) % len(PALETTE)]
                series += 0 if by else 1
                fig.add_trace(go.Scatter(
                    x=part["bucket"].to_numpy(), y=part[col].to_numpy(), name=name, mode="lines+markers",
                    marker={"size": 4}, line={"color": color, "width": 1.5},
                    legendgroup=name, showlegend=(row == 1) if by else True, customdata=custom,
                    hovertext=_arr(_hover_rows(part, ["bucket", *keys, col, "runs"]), object),
                    hovertemplate="%{hovertext}<extra></extra>", connectgaps=False,
                ), row=row, col=1)
        for row, panel in enumerate(SIGNAL_PANELS, start=1):
            fig.update_yaxes(tickformat=panel[3], rangemode="tozero", gridcolor="#eee", row=row, col=1)
    fig.update_layout(
        title={"text": esc((title or "golden signals") + note), "font": {"size": 14}},
        height=820, margin={"l": 10, "r": 10, "t": 70, "b": 30}, plot_bgcolor="#fff",
        hoverlabel={"align": "left"}, clickmode="event", legend={"orientation": "h", "y": -0.05, "x": 0},
    )
    fig.update_xaxes(gridcolor="#eee")
    return fig


def stacked_over_time(df: pl.DataFrame, x: str, y: str, color: str, title: str | None = None,
                      y_title: str | None = None, top: int = 8) -> go.Figure:
    """Stacked bars of `y` per `x` (a period or day), one colour per value of `color` (the `top`
    largest overall; the rest summed as "(other)")."""
    if df.height == 0:
        return bar_chart(df, x, y, None, title, y_title)
    totals = df.group_by(color).agg(pl.col(y).sum()).sort([y, color], descending=[True, False], nulls_last=True)
    keep = totals[color].head(top).to_list()
    if totals.height > top:
        other = df.filter(~pl.col(color).is_in(keep) & pl.col(color).is_not_null()).group_by(x).agg(
            pl.col(y).sum()).with_columns(pl.lit("(other)").alias(color))
        df = pl.concat([df.filter(pl.col(color).is_in(keep) | pl.col(color).is_null()).select(x, color, y),
                        other.select(x, color, y)], how="vertical_relaxed")
    order = {v: i for i, v in enumerate([*keep, "(other)"])}
    df = df.sort([pl.col(color).replace_strict(order, default=len(order), return_dtype=pl.Int64), x])
    return bar_chart(df, x, y, color, title, y_title)
