"""Opening a database for a person: `agentlens.open()` is the library's open (agentlens.api) with what a
terminal or a notebook shows while it works: a progress bar over a long ingest and the notice of a
migration that rewrites whole tables (present.progress)."""

from __future__ import annotations

from pathlib import Path

from ..api import Lens
from ..api import open as open_lens
from ..core.config import Config
from ..store.db import DEFAULT_WAIT
from .progress import IngestBar, migration_notice


def open(path: str | Path | None = None, config: Config | str | Path | None = None,
         read_only: bool = False, wait: float = DEFAULT_WAIT) -> Lens:
    """Open an agentlens database (agentlens.api.open: created and migrated if needed unless `read_only`;
    served to other processes, or reached through the one that holds it), with progress shown on the
    terminal. `path` defaults to $AGENTLENS_DB, else ./agentlens.duckdb. `config` is a Config or a TOML path."""
    return open_lens(path, config, read_only, announce=migration_notice, bar=IngestBar, wait=wait)
