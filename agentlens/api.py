"""The top of the library: `agentlens.open()` assembles a Lens with the ingest pipeline."""

from __future__ import annotations

from pathlib import Path

from . import pipeline
from .config import Config
from .store import Lens


def open(path: str | Path | None = None, config: Config | str | Path | None = None,
         read_only: bool = False) -> Lens:
    """Open (creating and migrating if needed) an agentlens database.
    `path` defaults to $AGENTLENS_DB, else ./agentlens.duckdb. `config` is a Config or a TOML path."""
    cfg = config if isinstance(config, Config) else Config.load(config)
    return Lens(path, cfg, read_only=read_only, steps=pipeline.steps(), file_steps=pipeline.file_steps(),
                staged_steps=pipeline.staged_steps())
