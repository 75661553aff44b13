"""Sources that are not files, read live and written through the ingest (`ingest.ingest_batches`):

- postgres.py: `agentlens ingest postgresql://...?table=agent_runs` (and `lens.ingest(url)`) reads a live
  agent_runs table incrementally;
- collector.py: the OTLP/HTTP receiver behind `agentlens collect`.

`ingest_url` routes a URL to its source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..ingest import FileResult, Pipeline
    from ..store import Store

URL_SCHEMES = ("postgresql://", "postgres://")


def is_url(path: object) -> bool:
    return isinstance(path, str) and path.startswith(URL_SCHEMES)


def ingest_url(store: Store, url: str, pipeline: Pipeline, source: str | None = None) -> FileResult:
    from . import postgres

    return postgres.ingest(store, url, pipeline, source)
