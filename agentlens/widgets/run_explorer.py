"""RunExplorer: find the runs that went bad, page through them, open one.

    from agentlens.widgets import RunExplorer
    ex = RunExplorer(lens)            # in a notebook cell
    ex.set_filter(status="error", feature="refund")
    ex.sort_by("cost_usd"); ex.next_page(); ex.select_row(0)   # or click a header, a row

Filters: time range (ISO text, or a window preset relative to the newest run), two dimension =
value pairs, status, failure mode (when failures are classified), cost and latency ranges, and a text
search over everything a run holds (messages, tool payloads, errors). Every query runs in DuckDB through `agentlens.explore` with bound
parameters and LIMIT/OFFSET paging, so it stays responsive on a million runs. The page is one table of
escaped HTML: click a row (or its "open") to open the run, a header to sort.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import ipywidgets as w
import polars as pl

from ..core.results import _fmt
from ..core.textsafe import visible
from ..explore.runs import (
    DIMENSIONS,
    PAGE_COLUMNS,
    FilterError,
    RunFilter,
    count_runs,
    dimension_values,
    failure_modes,
    find_runs,
    time_bounds,
)
from ..store import Store
from .clicks import ClickableHTML
from .trace_view import TraceView

# (column in the page frame, header, width of the cell text)
TABLE_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("started_at", "started (UTC)", 19), ("run_id", "run", 12), ("feature", "feature", 16),
    ("customer_id", "customer", 14), ("status", "status", 6), ("model", "model", 22),
    ("duration_ms", "duration s", 8), ("cost_usd", "cost $", 8), ("total_tokens", "tokens", 9),
    ("tool_calls", "tools", 5), ("error_count", "errors", 6), ("failure_modes", "failures", 30),
    ("input", "input", 60),
)
WINDOWS: tuple[tuple[str, dt.timedelta | None], ...] = (
    ("all time", None), ("last hour of data", dt.timedelta(hours=1)), ("last 6 h of data", dt.timedelta(hours=6)),
    ("last 24 h of data", dt.timedelta(days=1)), ("last 7 days of data", dt.timedelta(days=7)),
)
ANY = "(any)"
TABLE_CSS = (
    ".al-runs{border-collapse:collapse;font-size:12px;line-height:1.4;width:auto}"
    ".al-runs th,.al-runs td{padding:2px 8px;text-align:left;white-space:nowrap;border-bottom:1px solid #eee}"
    ".al-runs th{cursor:pointer;user-select:none;background:#f6f8fa}.al-runs th:hover{background:#e8eef5}"
    ".al-runs tbody tr[data-al-click]{cursor:pointer}.al-runs tbody tr[data-al-click]:hover{background:#f0f6ff}"
    ".al-runs tr.al-selected{background:#dbeafe}.al-runs .al-status-error{color:#b00;font-weight:600}"
    ".al-runs button{font-size:11px;padding:0 6px;cursor:pointer}"
)


def _cell_text(col: str, v: Any, width: int) -> str:
    if v is None:
        return ""
    if col == "duration_ms":
        return f"{v / 1000:,.2f}"
    if col == "cost_usd":
        return f"{v:,.4f}"
    if col == "started_at" and isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    s = " ".join(_fmt(v).split())
    return s if len(s) <= width else s[: width - 1] + "…"


def _float(text: str, what: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise FilterError(f"{what}: not a number: {text!r}") from None


class RunExplorer(w.VBox):
    """Filters, a sortable paged table of runs, and the trace view of the selected run."""

    def __init__(self, lens: Store, page_size: int = 20, sort: str = "started_at", descending: bool = True,
                 **filters: Any):
        self.lens = lens
        self.page = 0
        self.page_size = page_size
        self.sort = sort
        self.descending = descending
        self.total = 0
        self.page_df = pl.DataFrame()
        self.selected_run: str | None = None
        self.trace_view: TraceView | None = None
        self.error: str | None = None
        self._quiet = False
        self.modes = failure_modes(lens)
        self.columns = [c for c in TABLE_COLUMNS if c[0] != "failure_modes" or self.modes or self._classified()]

        text = {"continuous_update": False, "layout": w.Layout(width="220px")}
        self.window = w.Dropdown(options=[name for name, _ in WINDOWS], value="all time", description="window")
        self.since = w.Text(description="since", placeholder="2026-11-12T14:00Z", **text)
        self.until = w.Text(description="until", placeholder="(exclusive)", **text)
        self.dims = [w.Dropdown(options=DIMENSIONS, value=d, layout=w.Layout(width="130px"))
                     for d in ("feature", "customer_id")]
        self.values = [w.Combobox(placeholder=ANY, ensure_option=False, **text) for _ in self.dims]
        self.status = w.Dropdown(options=[ANY, "ok", "error"], value=ANY, description="status")
        self.mode = w.Dropdown(options=[ANY, *self.modes], value=ANY, description="failure",
                               disabled=not self.modes)
        self.min_cost = w.Text(description="cost ≥ $", placeholder="", **text)
        self.max_cost = w.Text(description="cost ≤ $", placeholder="", **text)
        self.min_ms = w.Text(description="latency ≥ ms", placeholder="", **text)
        self.max_ms = w.Text(description="latency ≤ ms", placeholder="", **text)
        self.search = w.Text(description="search", placeholder="words in messages, tools, errors", **text)
        self.reset_button = w.Button(description="reset filters")
        self.message = w.HTML()
        self.window.observe(self._on_window, names="value")
        for widget in (self.since, self.until, *self.values, self.status, self.mode, self.min_cost, self.max_cost,
                       self.min_ms, self.max_ms, self.search):
            widget.observe(self._on_filter, names="value")
        for dim, value in zip(self.dims, self.values, strict=True):
            dim.observe(self._on_dimension(value), names="value")
        self.reset_button.on_click(lambda _: self.reset())

        # the page as one escaped HTML table (not a widget per cell): a click on a row opens that run,
        # on a header sorts by it, through the click bridge (widgets/clicks.py)
        self.table = ClickableHTML()
        self.table.on_action(self._on_action)
        self.prev_button = w.Button(description="◀ previous")
        self.next_button = w.Button(description="next ▶")
        self.pager = w.HTML()
        self.prev_button.on_click(lambda _: self.prev_page())
        self.next_button.on_click(lambda _: self.next_page())
        self.trace_box = w.VBox()
        super().__init__([
            w.HBox([self.window, self.since, self.until]),
            w.HBox([w.HBox([d, v]) for d, v in zip(self.dims, self.values, strict=True)] + [self.status, self.mode]),
            w.HBox([self.min_cost, self.max_cost, self.min_ms, self.max_ms]),
            w.HBox([self.search, self.reset_button]),
            self.message, self.table, w.HBox([self.prev_button, self.next_button, self.pager]), self.trace_box,
        ])
        for dim, value in zip(self.dims, self.values, strict=True):
            self._fill_values(dim.value, value)
        if filters:
            self.set_filter(**filters)
        else:
            self.refresh()

    def _classified(self) -> bool:
        from ..explore.trace import has_table

        return has_table(self.lens, "failures")

    # -- filter state -------------------------------------------------------------------------------
    @property
    def filter(self) -> RunFilter:
        """The RunFilter the widgets describe (raises FilterError on a malformed value)."""
        equals = {d.value: v.value.strip() for d, v in zip(self.dims, self.values, strict=True) if v.value.strip()}
        if len(equals) < sum(bool(v.value.strip()) for v in self.values):
            raise FilterError("the two dimension filters name the same dimension")
        flt = RunFilter(
            since=self.since.value.strip() or None, until=self.until.value.strip() or None,
            status=None if self.status.value == ANY else self.status.value, equals=equals,
            failure_mode=None if self.mode.value == ANY else self.mode.value,
            min_cost_usd=_float(self.min_cost.value, "cost ≥"), max_cost_usd=_float(self.max_cost.value, "cost ≤"),
            min_duration_ms=_float(self.min_ms.value, "latency ≥"), max_duration_ms=_float(self.max_ms.value, "latency ≤"),
            text=self.search.value.strip() or None,
        )
        flt.where()  # validates times and names
        return flt

    def set_filter(self, replace: bool = False, **kw: Any) -> None:
        """Set filter widgets from Python, then query once. Keys: since, until, status, failure_mode,
        min_cost_usd, max_cost_usd, min_duration_ms, max_duration_ms, text, and dimension names
        (`feature="refund"`, `"(none)"` for runs without one; at most two dimensions).
        `replace`: clear every other filter first."""
        self._quiet = True
        try:
            if replace:
                self._clear()
            simple = {"since": self.since, "until": self.until, "min_cost_usd": self.min_cost,
                      "max_cost_usd": self.max_cost, "min_duration_ms": self.min_ms,
                      "max_duration_ms": self.max_ms, "text": self.search}
            slot = 0
            for key, value in kw.items():
                if key in simple:
                    simple[key].value = ("" if value is None else value.isoformat() if isinstance(value, dt.datetime)
                                         else str(value))
                elif key == "status":
                    self.status.value = value or ANY
                elif key == "failure_mode":
                    if value and value not in self.modes:
                        raise FilterError(f"no failure mode {value!r} in this database; modes: {self.modes}")
                    self.mode.value = value or ANY
                elif key in DIMENSIONS:
                    if slot >= len(self.dims):
                        raise FilterError(f"at most {len(self.dims)} dimension filters")
                    self.dims[slot].value = key
                    self.values[slot].value = value or ""
                    slot += 1
                else:
                    raise FilterError(f"unknown filter {key!r}")
        finally:
            self._quiet = False
        self.page = 0
        self.refresh()

    def _clear(self) -> None:
        self.window.value = "all time"
        for t in (self.since, self.until, *self.values, self.min_cost, self.max_cost, self.min_ms,
                  self.max_ms, self.search):
            t.value = ""
        self.status.value = ANY
        self.mode.value = ANY

    def reset(self) -> None:
        """Clear every filter (back to all runs, page 1)."""
        self._quiet = True
        try:
            self._clear()
        finally:
            self._quiet = False
        self.page = 0
        self.refresh()

    # -- querying -----------------------------------------------------------------------------------
    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    def refresh(self) -> None:
        """Run the count and page queries for the current filter, sort and page; update the table."""
        try:
            flt = self.filter
            self.total = count_runs(self.lens, flt)
            self.page = min(self.page, self.pages - 1)
            self.page_df = find_runs(self.lens, flt, self.sort, self.descending, self.page_size,
                                     self.page * self.page_size, PAGE_COLUMNS)
            self.error = None
            self.message.value = ""
        except FilterError as e:
            self.error = str(e)
            self.message.value = f"<span style='color:#b00'>{html.escape(str(e))}</span>"
            return
        self._render()

    def _render(self) -> None:
        rows = self.page_df.to_dicts()
        self.table.value = self.table_html(rows)
        first = self.page * self.page_size + 1 if self.total else 0
        last = self.page * self.page_size + len(rows)
        self.pager.value = (f"runs {first:,}–{last:,} of {self.total:,} · page {self.page + 1:,} of {self.pages:,}"
                            f" · sorted by {html.escape(self.sort)} {'descending' if self.descending else 'ascending'}")
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.pages - 1

    def table_html(self, rows: list[dict[str, Any]]) -> str:
        """The page as one HTML table: every value escaped (trace content is untrusted), control and
        bidi characters shown rather than acted on; `data-al-click` on the headers (sort) and rows
        (open) is all the click bridge sends back, and `_on_action` checks it."""
        head = "".join(
            f"<th data-al-click='sort:{html.escape(col, quote=True)}' title='sort by {html.escape(label, quote=True)}'>"
            f"{html.escape(label)}{(' ▼' if self.descending else ' ▲') if col == self.sort else ''}</th>"
            for col, label, _ in self.columns)
        body = []
        for i, row in enumerate(rows):
            cells = []
            for col, _, width in self.columns:
                v = row.get(col)
                full = html.escape(visible(_fmt(v)[:500]), quote=True)
                style = " class='al-status-error'" if col == "status" and v == "error" else ""
                cells.append(f"<td><span title='{full}'{style}>{html.escape(visible(_cell_text(col, v, width)))}</span></td>")
            selected = " class='al-selected'" if row["run_id"] == self.selected_run else ""
            body.append(f"<tr data-al-click='open:{i}'{selected}><td><button data-al-click='open:{i}' "
                        f"title='open this run&#x27;s trace below'>open</button></td>{''.join(cells)}</tr>")
        if not body:
            body.append(f"<tr><td></td><td colspan='{len(self.columns)}'><i>no runs match these filters</i></td></tr>")
        return (f"<style>{TABLE_CSS}</style><table class='al-runs'><thead><tr><th>#</th>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>")

    def sort_by(self, column: str, descending: bool | None = None) -> None:
        """Sort by a run column (again on the same column flips the direction)."""
        if descending is None:
            descending = not self.descending if column == self.sort else True
        self.sort, self.descending, self.page = column, descending, 0
        self.refresh()

    def go_to_page(self, page: int) -> None:
        self.page = max(0, min(page, self.pages - 1))
        self.refresh()

    def next_page(self) -> None:
        self.go_to_page(self.page + 1)

    def prev_page(self) -> None:
        self.go_to_page(self.page - 1)

    # -- selection ----------------------------------------------------------------------------------
    def select(self, run_id: str) -> TraceView:
        """Open a run's trace view below the table."""
        self.selected_run = run_id
        self.trace_view = TraceView(self.lens, run_id)
        self.trace_box.children = [self.trace_view]
        self._render()
        return self.trace_view

    def select_row(self, i: int) -> TraceView:
        """Open the run on row `i` (0-based) of the current page."""
        if not 0 <= i < self.page_df.height:
            raise IndexError(f"row {i} is not on this page ({self.page_df.height} rows)")
        return self.select(self.page_df["run_id"][i])

    # -- events -------------------------------------------------------------------------------------
    def _on_filter(self, _change: dict[str, Any]) -> None:
        if not self._quiet:
            self.page = 0
            self.refresh()

    def _on_window(self, change: dict[str, Any]) -> None:
        if self._quiet:  # set from Python (reset, set_filter): they query once at the end
            return
        delta = dict(WINDOWS)[change["new"]]
        _, newest = time_bounds(self.lens)
        self._quiet = True
        try:
            if delta is None or newest is None:
                self.since.value = self.until.value = ""
            else:
                self.since.value = (newest - delta).isoformat()
                self.until.value = ""
        finally:
            self._quiet = False
        self.page = 0
        self.refresh()

    def _fill_values(self, dimension: str, value: w.Combobox) -> None:
        value.options = tuple(dimension_values(self.lens, dimension, limit=500)["value"].to_list())

    def _on_dimension(self, value: w.Combobox) -> Any:
        def handler(change: dict[str, Any]) -> None:
            self._fill_values(change["new"], value)
            if value.value:
                value.value = ""  # triggers a refresh
        return handler

    def _on_action(self, value: str) -> None:
        """A click in the table: `open:ROW` (a row of this page) or `sort:COLUMN` (a shown column)."""
        what, _, arg = value.partition(":")
        if what == "open" and arg.isdigit() and int(arg) < self.page_df.height:
            self.select_row(int(arg))
        elif what == "sort" and arg in {c for c, _, _ in self.columns}:
            self.sort_by(arg)
