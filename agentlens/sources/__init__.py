"""Sources that are not files: read live and written through the store (`Lens.ingest_batches`).

`agentlens ingest postgresql://...?table=agent_runs` (and `lens.ingest(url)`) reads a live table; the
OTLP receiver is `agentlens.collector`. `ingest_url` routes a URL to its source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store import FileResult, Lens

URL_SCHEMES = ("postgresql://", "postgres://")


def is_url(path: object) -> bool:
    return isinstance(path, str) and path.startswith(URL_SCHEMES)


def ingest_url(lens: Lens, url: str) -> FileResult:
    from . import postgres

    return postgres.ingest(lens, url)
