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
from ..core.config import Config, ConfigError
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


# Exit status of every command (docs: CLI reference): 0 done; 1 done, and something needs attention (an alert
# fires, a file failed to ingest); 2 bad usage or input (an option, a config or rules file, an unknown run);
# 3 the database cannot be used now (missing, held by a process that does not serve it, unwritable); 4 an
# internal error (one line; AGENTLENS_DEBUG=1 shows the traceback).
EXIT_ATTENTION, EXIT_USAGE, EXIT_DATABASE, EXIT_INTERNAL = 1, 2, 3, 4
DEFAULT_WAIT = 60.0


class DatabaseError(click.ClickException):
    """The database cannot be used now: exit status 3."""

    exit_code = EXIT_DATABASE


def wait_seconds(wait: float | None = None) -> float:
    """How long a command waits for a database another process holds without serving it: its own --wait,
    else the group's (`agentlens --wait SECONDS ...`), else $AGENTLENS_WAIT, else 60 s."""
    if wait is not None:
        return wait
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    if root is not None and isinstance(root.obj, dict) and root.obj.get("wait") is not None:
        return float(root.obj["wait"])
    return DEFAULT_WAIT


def _open(db: str | None, config: str | None = None, read_only: bool = False, create: bool | None = None,
          wait: float | None = None) -> Lens:
    """The database for a command. A reader (`read_only`) never creates a database and, when no process
    holds it, opens the file read-only for the command's duration; a writer holds the database and serves
    it to other processes while it runs, or hands its writes to the process that holds it (`create`:
    whether a missing database may be created; default: writers that add data do, maintenance does not).
    When no process serving it holds the database, waits for it (see wait_seconds), saying so once."""
    from ..store.db import StoreError

    try:
        return Lens(db or default_db_path(), Config.load(config), read_only=read_only, serve=not read_only,
                    create=(not read_only) if create is None else create, wait=wait_seconds(wait),
                    notify=lambda msg: err.print(f"agentlens: {msg}", markup=False, highlight=False, soft_wrap=True))
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    except StoreError as e:
        raise DatabaseError(str(e)) from None


def time_option(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.datetime | None:
    """Click callback for --since / --until: an ISO date or time, UTC unless it says otherwise."""
    if value is None:
        return None
    try:
        d = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date or time such as 2026-11-01 or 2026-11-01T08:00") from None
    return d if d.tzinfo else d.replace(tzinfo=dt.UTC)
