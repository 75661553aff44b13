"""Investigating runs: finding them (runs.py: filters compiled to SQL, sorted and paged in DuckDB) and
reading one step by step (trace.py: the waterfall layout and the details of each span).

    from agentlens import explore
    explore.find_runs(lens, explore.RunFilter(status="error"), sort="cost_usd", limit=20)
"""

from .runs import (
    DIMENSIONS,
    NONE_VALUE,
    PAGE_COLUMNS,
    RUN_COLUMNS,
    FilterError,
    RunFilter,
    count_runs,
    dimension_values,
    failure_modes,
    find_runs,
    time_bounds,
)

__all__ = ["DIMENSIONS", "NONE_VALUE", "PAGE_COLUMNS", "RUN_COLUMNS", "FilterError", "RunFilter", "count_runs",
           "dimension_values", "failure_modes", "find_runs", "time_bounds"]
