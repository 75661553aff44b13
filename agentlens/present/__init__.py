"""Presentation: what a person sees. The library below returns DataFrames and result objects; this layer
turns them into text, bars, figures, pages and messages:

- terminal.py: the one writer of every command's output (tables fitted to the width, json/csv/parquet);
- progress.py, session.py: the ingest's bar and the migration notice, and `agentlens.open()` with them;
- costs.py, demo.py: the words around the numbers (advice, the demo's sections and next commands);
- plots.py, report.py: plotly figures from DataFrames, the standalone HTML report;
- notify.py: delivering an alert report to a webhook.
"""
