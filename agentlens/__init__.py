"""agentlens: observability and cost analytics for AI agents.

    import agentlens
    lens = agentlens.open("agentlens.duckdb")      # or $AGENTLENS_DB, else ./agentlens.duckdb
    lens.ingest("traces/")                          # OTLP JSON, agent_runs CSV/JSONL/Parquet, .gz
    lens.runs(feature="refund")                     # polars DataFrame
    lens.spans(run_id)                              # the steps of one run
    lens.con                                        # the DuckDB connection, for any SQL
"""

from . import costs as costs  # agentlens.costs.by(lens, by=["feature"])
from . import pricing as pricing  # agentlens.pricing.reprice(lens)
from .api import open
from .config import Config, ConfigError
from .store import IngestError, IngestSummary, Lens, default_db_path

__all__ = ["Config", "ConfigError", "IngestError", "IngestSummary", "Lens", "default_db_path", "open"]
__version__ = "0.1.0"
