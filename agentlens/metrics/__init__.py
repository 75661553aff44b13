"""Golden signals, rollups, SLOs and alerts: named SQL run by DuckDB plus thin Python.

- `signals`: the four golden signals for agents by any run dimension and time bucket;
- `rollups`: incremental, idempotent rollup tables with mergeable latency histograms;
- `alerts`: threshold and multiwindow multi-burn-rate SLO alerts from a TOML rules file.
"""
