"""Notebook widgets (ipywidgets + plotly FigureWidget) composed from the library: the run explorer,
the trace view, the golden-signals dashboard and the cost explorer. Their state is plain Python,
driven by tests without a browser."""

from .dashboards import CostExplorer, SignalsDashboard
from .run_explorer import RunExplorer
from .trace_view import TraceView

__all__ = ["CostExplorer", "RunExplorer", "SignalsDashboard", "TraceView"]
