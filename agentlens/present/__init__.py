"""Presentation: what a person sees. Terminal text and progress bars (terminal.py, progress.py), plotly
figures from DataFrames (plots.py) and the standalone HTML report (report.py). The library below returns
DataFrames and result objects; this layer turns them into text, bars, figures and pages."""
