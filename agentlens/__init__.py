"""agentlens: observability and cost analytics for AI agents.

    import agentlens
    lens = agentlens.open("agentlens.duckdb")      # or $AGENTLENS_DB, else ./agentlens.duckdb
    lens.ingest("traces/")                          # OTLP JSON, agent_runs CSV/JSONL/Parquet, .gz
    lens.runs(feature="refund")                     # polars DataFrame
    lens.spans(run_id)                              # the steps of one run
    lens.con                                        # the DuckDB connection, for any SQL
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import pricing as pricing  # agentlens.pricing.price_table(...)
    from .api import Lens
    from .core.config import Config, ConfigError
    from .ingest import IngestError, IngestSummary
    from .metrics import costs as costs  # agentlens.costs.by(lens, by=["feature"])
    from .present.session import open
    from .store import default_db_path

__all__ = ["Config", "ConfigError", "IngestError", "IngestSummary", "Lens", "default_db_path", "open"]
__version__ = "0.1.0"

# Imported on first use (PEP 562): `import agentlens.adapters.otlp` in an ingest worker process, or
# the CLI's --help, should not pay for DuckDB, polars and the price tables.
_LAZY = {
    "costs": ".metrics.costs", "pricing": ".pricing", "open": ".present.session", "Lens": ".api",
    "Config": ".core.config", "ConfigError": ".core.config",
    "IngestError": ".ingest", "IngestSummary": ".ingest", "default_db_path": ".store",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'agentlens' has no attribute {name!r}")
    module = importlib.import_module(target, __name__)
    value = module if name in ("costs", "pricing") else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
