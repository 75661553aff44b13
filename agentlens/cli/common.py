"""What every `agentlens` command shares: the consoles, the --db and --config options, opening the
database. Command modules import it (not cli.py, which imports them)."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from ..api import Lens
from ..api import open as open_lens
from ..core.config import ConfigError
from ..store import default_db_path

# In a terminal rich uses its width; piped or logged (cron, CI, `make demo > log`), rich would fall
# back to 80 columns and wrap numbers mid-digit, so use a width that fits the wide tables.
LOG_WIDTH = 150
out = Console(highlight=False, width=None if sys.stdout.isatty() else LOG_WIDTH)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else LOG_WIDTH)

DB_OPTION: Callable[[Any], Any] = click.option(
    "--db", "db", default=None, metavar="FILE",
    help="Database file (default: $AGENTLENS_DB, else ./agentlens.duckdb).",
)
CONFIG_OPTION: Callable[[Any], Any] = click.option("--config", "config", default=None, metavar="FILE", help="TOML config file.")


def _open(db: str | None, config: str | None = None, read_only: bool = False) -> Lens:
    try:
        return open_lens(db or default_db_path(), config, read_only=read_only)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None


def time_option(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.datetime | None:
    """Click callback for --since / --until: an ISO date or time, UTC unless it says otherwise."""
    if value is None:
        return None
    try:
        d = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date or time such as 2026-11-01 or 2026-11-01T08:00") from None
    return d if d.tzinfo else d.replace(tzinfo=dt.UTC)
