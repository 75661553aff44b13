"""Notebook widgets composed from the library: the run explorer, the trace view, the golden-signals
dashboard and the cost explorer. They are ipywidgets; their figures are plain plotly outputs and
clicks come back through a small bridge (`clicks.py`), so a saved notebook does not carry plotly.js
per figure. Their state is plain Python, driven by tests without a browser."""

from .dashboards import CostExplorer, SignalsDashboard
from .run_explorer import RunExplorer
from .trace_view import TraceView

__all__ = ["CostExplorer", "RunExplorer", "SignalsDashboard", "TraceView"]
