"""Dashboards: the golden signals over time, and the cost explorer. Both compose the library
(`metrics.signals`, `costs`) with `plots` and the run explorer; their state is plain Python.

    from agentlens.widgets import SignalsDashboard, CostExplorer
    SignalsDashboard(lens, every="1h", by="feature")   # click a point: the runs of that bucket
    CostExplorer(lens, by="customer_id", period="day")
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import duckdb
import ipywidgets as w
import plotly.graph_objects as go
import polars as pl

from ..core.dimensions import GROUP_DIMENSIONS, RUN_DIMENSIONS
from ..core.results import html_table
from ..core.timeparse import format_duration, parse_duration, parse_time
from ..explore.runs import NONE_VALUE
from ..metrics import costs
from ..metrics import signals as sig
from ..present import plots
from ..store import Store
from .clicks import PlotBox
from .run_explorer import RunExplorer

EVERY = ("15m", "1h", "6h", "1d", "7d")
NO_GROUP = "(no grouping)"


def _error(message: str) -> str:
    return f"<span style='color:#b00'>{html.escape(message)}</span>"


def _when(v: str, what: str) -> dt.datetime | None:
    """A since/until box: ISO time or date (UTC), `now`, or a duration before now (`24h`)."""
    return parse_time(v.strip() or None, what=what)


class SignalsDashboard(w.VBox):
    """Latency, traffic, errors and saturation per time bucket, optionally one line per value of a
    dimension; choosing a bucket (click a point, or `select_bucket`) lists its runs below."""

    def __init__(self, lens: Store, every: str = "1h", by: str | None = None, since: str | None = None,
                 until: str | None = None, where: dict[str, str | None] | None = None, page_size: int = 10):
        self.lens = lens
        self.where = {k: v for k, v in (where or {}).items() if v is not None}
        self.data = pl.DataFrame()
        self.selected_bucket: dt.datetime | None = None
        self.selected_group: str | None = None
        self.error: str | None = None
        text = {"continuous_update": False, "layout": w.Layout(width="230px")}
        self.every = w.Dropdown(options=sorted({*EVERY, every}, key=lambda e: parse_duration(e)), value=every,
                                description="bucket")
        self.by = w.Dropdown(options=[NO_GROUP, *GROUP_DIMENSIONS], value=by or NO_GROUP, description="group by")
        self.since = w.Text(value=since or "", description="since", placeholder="ISO time or 24h", **text)
        self.until = w.Text(value=until or "", description="until", placeholder="(exclusive)", **text)
        for c in (self.every, self.by, self.since, self.until):
            c.observe(lambda _: self.refresh(), names="value")
        self.message = w.HTML()
        self.bucket_info = w.HTML()
        self.figure = go.Figure()
        # a plain plotly output, redrawn when a control changes; a click on a point comes back through
        # the plot box's click bridge (widgets/clicks.py), not a FigureWidget carrying plotly.js
        self.plot = PlotBox()
        self.plot.on_click(self._on_click)
        self.runs = RunExplorer(lens, page_size=page_size, **self._run_filter_where())
        super().__init__([w.HBox([self.every, self.by, self.since, self.until]), self.message, self.plot,
                          self.bucket_info, self.runs])
        self.refresh()

    def _run_filter_where(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in self.where.items():
            if k == "status":
                out["status"] = v
            elif k in GROUP_DIMENSIONS:
                out[k] = v
        return out

    @property
    def group_by(self) -> str | None:
        return None if self.by.value == NO_GROUP else self.by.value

    def refresh(self) -> None:
        """Query the signals for the current controls and redraw."""
        try:
            every = parse_duration(self.every.value)
            self.data = sig.signals(self.lens, by=self.group_by, every=every, since=_when(self.since.value, "since"),
                                    until=_when(self.until.value, "until"), where=self.where or None)
        except (ValueError, duckdb.Error) as e:  # a bad time or interval (ValueError) says which
            self.error = str(e)
            self.message.value = _error(str(e))
            return
        self.error = None
        self.message.value = "" if self.data.height else "<i>no runs in this window</i>"
        title = f"golden signals per {format_duration(every)}" + (
            " · " + ", ".join(f"{k} = {v}" for k, v in self.where.items()) if self.where else "")
        self.figure = plots.signal_panels(self.data, every, self.group_by, title=title)
        self.plot.show(self.figure)

    def select_bucket(self, bucket: dt.datetime | str, group: str | None = None) -> RunExplorer:
        """List the runs started in one bucket (and of one group value when grouped)."""
        start = bucket if isinstance(bucket, dt.datetime) else dt.datetime.fromisoformat(bucket)
        end = start + parse_duration(self.every.value)
        self.selected_bucket, self.selected_group = start, group
        filters: dict[str, Any] = {**self._run_filter_where(), "since": start, "until": end}
        dim = self.group_by
        if dim == "status":
            filters["status"] = group
        elif dim is not None:
            filters[dim] = NONE_VALUE if group is None else group
        self.runs.set_filter(replace=True, **filters)
        label = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC" + (f", {dim} = {group}" if dim else "")
        self.bucket_info.value = (f"<b>runs started {html.escape(label)}</b>: {self.runs.total:,} "
                                  "(click one to see its trace)")
        return self.runs

    def _on_click(self, customdata: Any, _curve: str | None = None) -> None:
        """A click on a point: its customdata is [bucket start (ISO), group value or null]."""
        if not (isinstance(customdata, list | tuple) and len(customdata) == 2 and isinstance(customdata[0], str)):
            return
        bucket, group = customdata
        try:
            start = dt.datetime.fromisoformat(bucket)
        except ValueError:
            return
        self.select_bucket(start, None if group is None else str(group))


class CostExplorer(w.VBox):
    """Cost by any dimension (a run column, `attr:KEY` or `json:$.path`) and period, the models
    without a price, and the most expensive runs (a run explorer sorted by cost: open one to see
    where the money went)."""

    def __init__(self, lens: Store, by: str = "feature", period: str | None = "day", since: str | None = None,
                 until: str | None = None, page_size: int = 10):
        self.lens = lens
        self.data = pl.DataFrame()
        self.unpriced = pl.DataFrame()
        self.error: str | None = None
        text = {"continuous_update": False, "layout": w.Layout(width="230px")}
        self.by = w.Combobox(value=by, options=RUN_DIMENSIONS, description="cost by",
                             placeholder="feature, attr:app.team, json:$.metadata.team", ensure_option=False,
                             continuous_update=False)
        self.period = w.Dropdown(options=["(whole window)", *costs.PERIODS], value=period or "(whole window)",
                                 description="per")
        self.since = w.Text(value=since or "", description="since", placeholder="ISO date", **text)
        self.until = w.Text(value=until or "", description="until", placeholder="(exclusive)", **text)
        for c in (self.by, self.period, self.since, self.until):
            c.observe(lambda _: self.refresh(), names="value")
        self.message = w.HTML()
        self.figure = go.Figure()
        self.plot = PlotBox(clickable=False)  # a plain plotly output: nothing to click here
        self.table = w.HTML()
        self.unpriced_panel = w.HTML()
        self.runs = RunExplorer(lens, page_size=page_size, sort="cost_usd")
        super().__init__([w.HBox([self.by, self.period, self.since, self.until]), self.message, self.plot,
                          self.table, self.unpriced_panel, w.HTML("<b>most expensive runs</b>"), self.runs])
        self.refresh()

    @property
    def period_value(self) -> str | None:
        return None if self.period.value == "(whole window)" else self.period.value

    def refresh(self) -> None:
        by = self.by.value.strip() or "feature"
        try:
            since, until = _when(self.since.value, "since"), _when(self.until.value, "until")
            self.data = costs.by(self.lens, by=[by], period=self.period_value, since=since, until=until)
            self.unpriced = costs.unpriced(self.lens, since, until)
            self.runs.set_filter(replace=True, since=since, until=until)
        except ValueError as e:  # a bad dimension, period or time: say which
            self.error = str(e)
            self.message.value = _error(self.error)
            return
        self.error = None
        self.message.value = "" if self.data.height else "<i>no runs in this window</i>"
        key = self.data.columns[1] if self.period_value else self.data.columns[0]
        if self.period_value:
            fig = plots.stacked_over_time(self.data, "period", "total_cost_usd", key,
                                          title=f"cost per {self.period_value} by {by} (USD)", y_title="USD")
        else:
            fig = plots.bar_chart(self.data.head(30), key, "total_cost_usd", title=f"cost by {by} (USD)",
                                  y_title="USD")
        self.figure = fig
        self.plot.show(fig)
        view = self.data.select([c for c in self.data.columns if not c.endswith("_tokens")])
        self.table.value = html_table(view, f"cost by {by}" + (f" per {self.period_value}" if self.period_value else ""),
                                      max_rows=100)
        self.unpriced_panel.value = (
            html_table(self.unpriced.select("model", "provider", "reason", "calls", "runs", "input_tokens",
                                            "output_tokens"),
                       "models without a price (never counted as $0: add a pricing override, then agentlens reprice)")
            if self.unpriced.height else "<i>every call has a price</i>")
