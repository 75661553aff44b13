"""TraceView: one run as a waterfall of its spans, with a detail panel for the selected span.

    from agentlens.widgets import TraceView
    TraceView(lens, run_id)          # in a notebook cell

Click a bar (or pick a span in the list, or step with the buttons) to read the span: messages, tool
arguments and result, tokens, cost, errors and exception events, failure evidence. Its state is
plain Python (`selected_span`, `layout_df`, `detail`), so it is driven and tested without a browser.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import plotly.graph_objects as go
import polars as pl

from ..explore.trace import (
    DETAIL_CSS,
    SpanDetail,
    evidence_spans,
    failure_marks,
    run_header,
    run_summary_html,
    span_detail,
    trace_layout,
)
from ..present import plots
from ..store import Store
from .clicks import PlotBox, figure_output, patched_output

_STYLE = f"<style>{DETAIL_CSS}</style>"


class TraceView(w.VBox):
    """The waterfall and detail panel of one run. `selected` picks the first span shown (default:
    the first failure evidence, else the first error, else the root)."""

    def __init__(self, lens: Store, run_id: str, selected: str | None = None, **kwargs: Any):
        self.lens = lens
        self.run_id = run_id
        self.run = run_header(lens, run_id)
        self.layout_df = trace_layout(lens, run_id)
        self.marks = failure_marks(lens, run_id)
        self._rows = self.layout_df["span_id"].to_list()
        present = set(self._rows)
        self.evidence = {k: v for k, v in evidence_spans(self.marks).items() if k in present}
        self._row_of = {sid: i for i, sid in enumerate(self._rows)}
        self.selected_span: str | None = None
        self.detail: SpanDetail | None = None

        self.header = w.HTML(_STYLE + run_summary_html(self.run, self.marks))
        # a plain plotly output (no plotly.js in the widget state); a click on a bar comes back
        # through the plot box's click bridge (widgets/clicks.py)
        self.figure: go.Figure = plots.trace_waterfall(
            self.layout_df, self.evidence, None, title=f"run {run_id} · {self.run.get('agent_name') or ''}")
        self.plot = PlotBox()
        self.plot.on_click(self._on_click)
        self._drawn: dict[str, Any] | None = None  # the waterfall's output as last drawn
        self._selected_trace = next(i for i, tr in enumerate(self.figure.data) if tr.name == plots.SELECTED)
        self.picker = w.Dropdown(
            options=[(self._option(r), r["span_id"]) for r in self.layout_df.iter_rows(named=True)],
            description="span", layout=w.Layout(width="60%"),
        )
        self.picker.observe(self._on_pick, names="value")
        self.prev_button = w.Button(description="◀ previous", tooltip="previous span in the waterfall")
        self.next_button = w.Button(description="next ▶", tooltip="next span in the waterfall")
        self.next_error_button = w.Button(description="next error", button_style="danger",
                                          disabled=not (self.layout_df["status"] == "error").any())
        self.next_evidence_button = w.Button(description="next evidence", button_style="warning",
                                             disabled=not self.evidence)
        self.prev_button.on_click(lambda _: self.step(-1))
        self.next_button.on_click(lambda _: self.step(1))
        self.next_error_button.on_click(lambda _: self.next_error())
        self.next_evidence_button.on_click(lambda _: self.next_evidence())
        self.detail_panel = w.HTML()
        super().__init__([
            self.header, self.plot,
            w.HBox([self.picker, self.prev_button, self.next_button, self.next_error_button,
                    self.next_evidence_button]),
            self.detail_panel,
        ], **kwargs)
        if self._rows:
            self.select_span(selected or self._default_span())
        else:
            self.detail_panel.value = "<i>this run has no spans</i>"
            self.plot.show(self.figure)

    # -- state --------------------------------------------------------------------------------------
    @staticmethod
    def _option(r: dict[str, Any]) -> str:
        flag = " ✖" if r["status"] == "error" else ""
        dur = "?" if r["duration_ms"] is None else f"{r['duration_ms']:,.0f} ms"
        return f"{'  ' * min(r['depth'], 12)}{r['name']} ({r['kind']}, {dur}){flag}"

    def _default_span(self) -> str:
        for sid in self._rows:
            if sid in self.evidence:
                return sid
        errors = self.layout_df.filter(pl.col("status") == "error")
        return errors["span_id"][0] if errors.height else self._rows[0]

    def select_span(self, span_id: str) -> SpanDetail:
        """Show one span: outline it in the waterfall, scroll it into view, fill the detail panel."""
        if span_id not in self._row_of:
            raise KeyError(f"run {self.run_id} has no span {span_id!r}")
        self.selected_span = span_id
        self.detail = span_detail(self.lens, self.run_id, span_id, self.marks)
        self.detail_panel.value = _STYLE + self.detail.html()
        if self.picker.value != span_id:
            self.picker.value = span_id
        row = self._row_of[span_id]
        plots.restyle_selection(self.figure, self.layout_df, span_id)
        lo, hi = sorted(self.figure.layout.yaxis.range or (len(self._rows), -0.5))
        if not lo <= row <= hi:
            span = hi - lo
            top = max(-0.5, row - span / 2)
            self.figure.layout.yaxis.range = [top + span, top]
        # redrawn with the outline (and the row in view): only that trace and the range serialised again
        self._drawn = (figure_output(self.figure) if self._drawn is None else
                       patched_output(self._drawn, self.figure, self._selected_trace, self.figure.layout.yaxis.range))
        self.plot.show(self.figure, self._drawn)
        return self.detail

    def select_row(self, row: int) -> SpanDetail:
        return self.select_span(self._rows[row])

    def step(self, delta: int) -> None:
        if self.selected_span is None:
            return
        row = self._row_of[self.selected_span] + delta
        if 0 <= row < len(self._rows):
            self.select_row(row)

    def _next_where(self, ids: set[str]) -> None:
        start = self._row_of.get(self.selected_span or "", -1)
        order = self._rows[start + 1:] + self._rows[: start + 1]
        for sid in order:
            if sid in ids:
                self.select_span(sid)
                return

    def next_error(self) -> None:
        self._next_where(set(self.layout_df.filter(pl.col("status") == "error")["span_id"].to_list()))

    def next_evidence(self) -> None:
        self._next_where(set(self.evidence))

    # -- events -------------------------------------------------------------------------------------
    def _on_click(self, customdata: Any, _curve: str | None = None) -> None:
        """A click on a bar, a star or a name: its customdata is its row (anything else is ignored)."""
        if isinstance(customdata, float) and customdata.is_integer():
            customdata = int(customdata)
        if isinstance(customdata, int) and not isinstance(customdata, bool) and 0 <= customdata < len(self._rows):
            self.select_row(customdata)

    def _on_pick(self, change: dict[str, Any]) -> None:
        if change["new"] and change["new"] != self.selected_span:
            self.select_span(change["new"])
