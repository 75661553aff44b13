"""The terminal, and the files a command writes: the one place that prints a result object or a
DataFrame for a person, or emits it as JSON, CSV or Parquet. Every `agentlens` command prints through it.

- Width: the terminal's, or `$COLUMNS` when it is set (also when the output is piped), else 150 columns
  when the output is not a terminal (a log, cron mail, `make demo > log`: rich's 80 would wrap the tables).
- A table wider than that has its text wrapped at word boundaries; one that is still too wide (its numbers
  never fold) is split by columns, its leading key columns (bucket, feature, ...) repeated in each part,
  so that numbers are never folded mid-digit and no line is wider than the width.
- Trace content is untrusted: it is printed as text, never as rich markup (`core.results.rich_table`
  escapes it, and plain messages go out with markup off), and terminal control sequences in it (ESC,
  CSI, OSC titles and hyperlinks, C1 controls, bidi overrides) are shown, never obeyed:
  `core.textsafe.visible` where the text is laid out, and the console itself (`SafeConsole`) as the
  last line of defence for every renderable, whoever made it. Money in a column has the same decimals
  down the column (`core.results.column_formatter`).
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import polars as pl
from rich.console import Console
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from ..core.results import BaseResult, Result, _fmt, rich_table
from ..core.textsafe import picture, visible

LOG_WIDTH = 150
FORMATS = ("table", "json", "csv", "parquet")


class OutputError(ValueError):
    """Output that cannot be written as asked (the message says why and what to do instead)."""


def width(stream: IO[str] | None = None) -> int | None:
    """The width to print at: $COLUMNS when set, else the terminal's (None: rich asks it), else LOG_WIDTH."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    stream = stream or sys.stdout
    return None if stream.isatty() else LOG_WIDTH


class SafeConsole(Console):
    """A rich Console that writes no control character of the text it prints: each text segment goes
    out through `core.textsafe.picture` (one character for one, so the layout holds); rich's own
    control segments (styles, cursor moves) are left alone."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            seg if seg.control else Segment(picture(seg.text), seg.style, seg.control) for seg in buffer)


def console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr) at `width()`, made when printing (the streams and $COLUMNS are read
    then, so a test runner's or a redirected stream is the one written to)."""
    return SafeConsole(stderr=stderr, highlight=False, width=width(sys.stderr if stderr else sys.stdout),
                       soft_wrap=False)


# --- printing for a person --------------------------------------------------------------------------------
def show(obj: Any) -> None:
    """Print a result object (its facts, then each table fitted to the width), a DataFrame, or text."""
    con = console()
    if isinstance(obj, pl.DataFrame):
        _print_table(con, obj, None)
    elif (isinstance(obj, BaseResult) and type(obj).__rich__ is BaseResult.__rich__) or isinstance(obj, Result):
        res = obj.result()
        con.print(Text(visible(res.title), style="bold underline"))
        for k, v in res.facts.items():
            con.print(Text(visible(f"  {k}: {_fmt(v)}")))
        for name, df in res.tables.items():
            _print_table(con, df, name)
    elif isinstance(obj, str):
        con.print(Text(visible(obj)))
    else:  # an object with its own terminal layout (a failure report), or plain data
        con.print(obj)


def say(message: str) -> None:
    """A line for the user on stdout, as text (a path or a name with [brackets] is not markup)."""
    console().print(Text(visible(message)), soft_wrap=True)


def note(message: str) -> None:
    """A line on stderr: progress, what was written where, a warning."""
    console(stderr=True).print(Text(visible(message)), soft_wrap=True)


def data(body: str) -> None:
    """Machine-readable output (JSON, CSV) on stdout, as it is; on a terminal, with the controls of the
    text shown rather than obeyed (CSV carries trace text as it is)."""
    if sys.stdout.isatty():
        body = visible(body, tabs=True)
    sys.stdout.write(body if body.endswith("\n") else body + "\n")


def text(obj: Any, at: int = 120) -> str:
    """What `show` prints, as text of `at` columns (for writing to a file)."""
    if isinstance(obj, BaseResult | str):
        return str(obj)
    buf = io.StringIO()
    SafeConsole(file=buf, width=at, force_terminal=False, color_system=None, highlight=False).print(
        rich_table(obj) if isinstance(obj, pl.DataFrame) else obj)
    return buf.getvalue()


def fmt_value(v: Any) -> str:
    """A value as the tables write it (times in UTC with the year, numbers with separators)."""
    return _fmt(v)


def _print_table(con: Console, df: pl.DataFrame, title: str | None) -> None:
    if df.height == 0:  # a line that says so, not an empty table
        con.print(Text(visible(f"{title}: none" if title else "none")))
        return
    for table in fit(df, title, con):
        con.print(table)


def fit(df: pl.DataFrame, title: str | None, con: Console) -> Iterator[Table]:
    """The table as one rich Table when it fits the console's width, else as parts of its columns, each
    with the leading key columns (the non-numeric ones before the first number) repeated."""
    whole = rich_table(df, title)
    if _needs(con, whole) <= con.width or _least(con, whole) <= con.width or df.width <= 1:
        yield whole  # fits, or fits with its text folded at word boundaries (numbers never fold)
        return
    keys: list[str] = []
    for name, dtype in df.schema.items():
        if dtype.is_numeric() or len(keys) >= 3:
            break
        keys.append(name)
    rest = [c for c in df.columns if c not in keys]
    if not rest or _needs(con, rich_table(df.select(*keys, rest[0]), title)) > con.width:
        keys, rest = [], df.columns  # the keys alone fill the width: no key repeated
    parts: list[list[str]] = [[]]
    for col in rest:
        trial = parts[-1] + [col]
        if parts[-1] and _needs(con, rich_table(df.select(*keys, *trial), title)) > con.width:
            parts.append([col])
        else:
            parts[-1] = trial
    for i, cols in enumerate(parts, 1):
        part = title if i == 1 else f"{title or ''} (continued, {i}/{len(parts)})".strip()
        yield rich_table(df.select(*keys, *cols), part)


def _least(con: Console, table: Table) -> int:
    """The narrowest the table can be with its text wrapped at word boundaries and its numbers whole."""
    return Measurement.get(con, con.options.update(max_width=100_000), table).minimum


def _needs(con: Console, table: Table) -> int:
    """The width the table takes with room to spare (measured by rich, not clamped to the console)."""
    return Measurement.get(con, con.options.update(max_width=100_000), table).maximum


# --- emitting data ------------------------------------------------------------------------------------------
def emit(obj: BaseResult | pl.DataFrame, fmt: str, output: str | Path | None = None, table: str | None = None) -> None:
    """`obj` in `fmt` (table, json, csv, parquet) to `output` (a file) or stdout. A result object gives
    its whole self as JSON, its table `table` (else its first) as CSV or Parquet; a DataFrame is a list of
    records as JSON. `table` to a file writes the text a terminal of 120 columns would show."""
    if fmt not in FORMATS:
        raise OutputError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "table":
        if output is None:
            show(obj)
        else:
            Path(output).write_text(text(obj), encoding="utf-8")
        return
    if fmt == "parquet":
        if output is None:
            raise OutputError("--format parquet needs -o FILE (Parquet is binary)")
        df = obj if isinstance(obj, pl.DataFrame) else obj.table(table)
        df.write_parquet(output)
        return
    if fmt == "json":
        body = obj.write_json() if isinstance(obj, pl.DataFrame) else obj.to_json()
        body += "\n"
    else:
        body = (obj if isinstance(obj, pl.DataFrame) else obj.table(table)).write_csv()
    if output is None:
        data(body)
    else:
        Path(output).write_text(body, encoding="utf-8")
