"""What every `agentlens` command shares: the --db and --config options, opening the database, the option
vocabulary (times, durations, dimensions, filters, output formats: one click type each, so every command
reads them alike), and the mapping of known errors to one-line messages. Command modules import it (not
cli/__init__.py, which imports them). Printing goes through agentlens.present.terminal."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import traceback
from collections.abc import Callable, Iterable
from typing import Any

import click
import duckdb

from ..api import Lens
from ..core.config import Config, ConfigError
from ..core.duck import out_of_memory
from ..core.textsafe import visible
from ..core.timeparse import TimeSpecError, parse_duration, parse_time
from ..ingest import IngestError
from ..present import terminal
from ..present.notify import WebhookError
from ..present.progress import IngestBar, migration_notice
from ..scale import spark_url
from ..scale.spark import SparkError
from ..store import DatabaseBusy, DatabaseMissing, StoreError, default_db_path, out_of_memory_advice
from .lab import LabError

DB_OPTION: Callable[[Any], Any] = click.option(
    "--db", "--store", "db", default=None, metavar="FILE|URL",
    help="Database file, or a ClickHouse store: clickhouse://host:8123/db, clickhouse+chdb:///dir, or a lake "
         "on Spark (read commands): spark://host:7077?lake=DIR (default: $AGENTLENS_DB, else ./agentlens.duckdb).",
)


def _engine_meta(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta[f"agentlens.{param.name}"] = value


def ENGINE_OPTION(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--engine spark://HOST:PORT --lake DIR`: the command reads the Parquet lake DIR on that Spark cluster,
    another spelling of `--db 'spark://HOST:PORT?lake=DIR'` (`_open` makes the URL)."""
    f = click.option("--lake", default=None, metavar="DIR", expose_value=False, callback=_engine_meta,
                     help="The Parquet lake to read with --engine (a folder `agentlens export --lake` writes).")(f)
    return click.option("--engine", default=None, metavar="spark://HOST:PORT", expose_value=False,
                        callback=_engine_meta,
                        help="Run the command's SQL on this Spark cluster, over the lake of --lake (read-only; "
                             "the same as --db 'spark://HOST:PORT?lake=DIR').")(f)


def _engine_url(db: str | None) -> str | None:
    """The store a command opens: --db, or the Spark URL of --engine and --lake."""
    ctx = click.get_current_context(silent=True)
    meta = ctx.meta if ctx is not None else {}
    engine, lake = meta.get("agentlens.engine"), meta.get("agentlens.lake")
    if engine is None and lake is None:
        return db
    if engine is None:
        raise UserError("--lake needs --engine spark://HOST:PORT (the Spark cluster that reads it)")
    if lake is None:
        raise UserError(f"--engine {engine} needs --lake DIR (the Parquet lake it reads)")
    if db is not None:
        raise UserError("give either --db or --engine/--lake, not both")
    if not engine.lower().startswith("spark://"):
        raise UserError(f"--engine {engine}: not a Spark master's URL (spark://HOST:PORT)")
    return spark_url(engine, lake)
CONFIG_OPTION: Callable[[Any], Any] = click.option("--config", "config", default=None, metavar="FILE", help="TOML config file.")


# Exit status of every command (docs: concurrency, CLI reference): 0 done; 1 done, and something needs
# attention (an alert fires, a file failed to ingest); 2 bad usage or input (an option, a config or rules
# file, an unknown run); 3 the database cannot be used now (missing, held by a process that does not serve
# it, unwritable, out of memory); 4 an internal error (one line; AGENTLENS_DEBUG=1 shows the traceback).
EXIT_ATTENTION, EXIT_USAGE, EXIT_DATABASE, EXIT_INTERNAL = 1, 2, 3, 4
DEFAULT_WAIT = 60.0


class _Message(click.ClickException):
    """An error message for the terminal: it may quote trace content (a value, a file's name), so its
    control and bidi characters are shown, never obeyed (core.textsafe), as in every command's output."""

    def format_message(self) -> str:
        return visible(self.message)


class UserError(_Message):
    """Bad usage or input, in one line: exit status 2."""

    exit_code = EXIT_USAGE


class DatabaseError(_Message):
    """The database cannot be used now, in one line: exit status 3."""

    exit_code = EXIT_DATABASE


class InternalError(_Message):
    """An error agentlens did not expect, in one line: exit status 4."""

    exit_code = EXIT_INTERNAL


def wait_seconds(wait: float | None = None) -> float:
    """How long a command waits for a database another process holds without serving it: its own --wait,
    else the group's (`agentlens --wait SECONDS ...`, $AGENTLENS_WAIT), else 60 s."""
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
    When a process that does not serve it holds the database, waits (see wait_seconds), saying so once."""
    db = _engine_url(db)
    try:
        return Lens(db or default_db_path(), Config.load(config), read_only=read_only, announce=migration_notice,
                    bar=IngestBar, serve=not read_only, create=(not read_only) if create is None else create,
                    wait=wait_seconds(wait), notify=lambda msg: terminal.note(f"agentlens: {msg}"))
    except ConfigError as e:
        raise UserError(str(e)) from None
    except StoreError as e:
        raise DatabaseError(database_advice(e)) from None


def database_advice(e: StoreError) -> str:
    """The store's one line, and what to type about it."""
    if isinstance(e, DatabaseMissing):
        return (f"{e} (`agentlens ingest FILES --db PATH` creates one; --db or $AGENTLENS_DB points at an "
                "existing one)")
    if isinstance(e, DatabaseBusy):
        return f"{e} (`agentlens --wait SECONDS ...` waits longer)"
    return str(e)


# --- errors: one line each, never a traceback ---------------------------------------------------------------
def one_line(e: BaseException) -> str:
    """What to tell the user about an error a command did not handle: the library's message (it names the
    file, key, option or value), DuckDB's advice when the database outgrew its memory limit."""
    if isinstance(e, duckdb.Error) and out_of_memory(e):
        return out_of_memory_advice(e)
    if isinstance(e, KeyError) and e.args:
        return str(e.args[0])
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0] if isinstance(e, duckdb.Error) else text


# Errors whose message is meant for the user: bad input (exit 2), or a database that cannot be used (exit 3).
INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, LookupError, OSError, IngestError, WebhookError,
                                                 LabError)
DATABASE_ERRORS: tuple[type[BaseException], ...] = (StoreError, duckdb.Error, SparkError)


class Group(click.Group):
    """The `agentlens` group: every failure is one line with its exit status (above), never a traceback.
    `lazy`: commands of other modules by name, as `module:attribute` (relative to agentlens.cli), imported
    when the command is run or listed: a command imports what it needs, not what every other one does
    (`agentlens ingest` would import the receiver, the report and the notebooks' code first)."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, attribute = self.lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(module, "agentlens.cli"), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def every_command(self) -> dict[str, click.Command]:
        """Every command by name, the lazy ones imported (the docs, the tests)."""
        with click.Context(self) as ctx:
            return {name: cmd for name in self.list_commands(ctx) if (cmd := self.get_command(ctx, name))}

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, KeyboardInterrupt, SystemExit):
            raise
        except click.ClickException as e:
            if type(e) is click.ClickException:  # a command's own message about what it was given
                raise UserError(e.message) from None
            raise
        except StoreError as e:
            raise DatabaseError(database_advice(e)) from None
        except DATABASE_ERRORS as e:
            raise DatabaseError(one_line(e)) from None
        except INPUT_ERRORS as e:
            raise UserError(one_line(e)) from None
        except Exception as e:
            if os.environ.get("AGENTLENS_DEBUG"):
                traceback.print_exc()
            raise InternalError(f"internal error: {type(e).__name__}: {one_line(e)} "
                                "(AGENTLENS_DEBUG=1 shows where; please report it)") from None


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


class Names(click.ParamType):
    """A comma-separated list (the option may be repeated too: `--by feature --by model`), checked by
    `check` (a library function raising ValueError with a message that names the bad item)."""

    name = "names"

    def __init__(self, check: Callable[[tuple[str, ...]], object] | None = None):
        self.check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, ...]:
        items = value if isinstance(value, tuple) else tuple(str(value).split(","))
        names = tuple(dict.fromkeys(n.strip() for n in items if n.strip()))
        if self.check is not None:
            try:
                self.check(names)
            except ValueError as e:
                self.fail(str(e), param, ctx)
        return names


class Where(click.ParamType):
    """`DIMENSION=VALUE`: a filter on a run dimension (checked by `check`)."""

    name = "where"

    def __init__(self, check: Callable[[str], object] | None = None):
        self.check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        name, sep, v = str(value).partition("=")
        if not sep or not name.strip():
            self.fail(f"{value!r}: write DIMENSION=VALUE, e.g. feature=refund", param, ctx)
        if self.check is not None:
            try:
                self.check(name.strip())
            except ValueError as e:
                self.fail(str(e), param, ctx)
        return name.strip(), v


TIME = Time()
DURATION = Duration()
TIME_FORMS = "an ISO date or time (2026-11-10, 2026-11-10T08:00Z; UTC unless it says), now, or a duration ago (24h, 7d)"


def since_option(what: str = "Runs started") -> Callable[[Any], Any]:
    return click.option("--since", type=TIME, default=None, metavar="TIME",
                        help=f"{what} at or after TIME: {TIME_FORMS}.")


def until_option(what: str = "Runs started") -> Callable[[Any], Any]:
    return click.option("--until", type=TIME, default=None, metavar="TIME", help=f"{what} before TIME (same forms).")


def _flatten(ctx: click.Context, param: click.Parameter, value: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for names in value for n in names))


def by_option(check: Callable[[tuple[str, ...]], object], help: str, default: str | None = None,
              metavar: str = "DIM,...") -> Callable[[Any], Any]:
    """--by: group keys, comma-separated or repeated, checked by the library's own check."""
    return click.option("--by", "by_", type=Names(check), multiple=True, default=(default,) if default is not None
                        else (), show_default=default, metavar=metavar, callback=_flatten, help=help)


def where_option(check: Callable[[str], object]) -> Callable[[Any], Any]:
    return click.option("--where", "where_", type=Where(check), multiple=True, metavar="DIM=VALUE",
                        callback=lambda ctx, param, value: dict(value),
                        help="Only runs with this dimension value (repeatable).")


def format_option(help: str, default: str = "table") -> Callable[[Any], Any]:
    """--format: the same four everywhere (table, json, csv, parquet); see present.terminal.emit."""
    return click.option("--format", "fmt", type=click.Choice(terminal.FORMATS), default=default,
                        show_default=True, help=help)


def output_option(help: str = "Write to FILE instead of standard output (parquet needs it).") -> Callable[[Any], Any]:
    return click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="FILE", help=help)
