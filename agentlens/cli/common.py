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
from ..core.timeparse import TimeSpecError, parse_duration, parse_time
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


# --- the option vocabulary every command shares -----------------------------------------------------------
class Time(click.ParamType):
    """A point in time as every command takes it (core.timeparse): an ISO time or date (UTC unless it says
    otherwise), `now`, or a duration before now (`24h`, `7d`)."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        try:
            t = parse_time(value, what="")
        except TimeSpecError as e:
            self.fail(str(e).strip(), param, ctx)
        assert t is not None
        return t


class Duration(click.ParamType):
    """A bucket width or window: a number and a unit, s m h d w (`15m`, `1h`, `7d`)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.timedelta:
        if isinstance(value, dt.timedelta):
            return value
        try:
            return parse_duration(value, what="")
        except TimeSpecError as e:
            self.fail(str(e).strip(), param, ctx)


TIME = Time()
DURATION = Duration()
TIME_FORMS = "an ISO date or time (2026-11-10, 2026-11-10T08:00Z; UTC unless it says), now, or a duration ago (24h, 7d)"


def since_option(what: str = "Runs started") -> Callable[[Any], Any]:
    return click.option("--since", type=TIME, default=None, metavar="TIME",
                        help=f"{what} at or after TIME: {TIME_FORMS}.")


def until_option(what: str = "Runs started") -> Callable[[Any], Any]:
    return click.option("--until", type=TIME, default=None, metavar="TIME", help=f"{what} before TIME (same forms).")
