"""Result objects that render themselves: text for the terminal, escaped HTML in Jupyter, and
polars / JSON / CSV / Parquet for everything else. Trace content is untrusted, so every value
goes through `html.escape` before it reaches HTML."""

from __future__ import annotations

import datetime as dt
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from rich import box
from rich.console import Console
from rich.table import Table

from .textsafe import visible


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.6f}".rstrip("0").rstrip(".") if abs(v) < 1 else f"{v:,.2f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(v)


def is_money(name: str) -> bool:
    """A column of amounts of money (USD), by its name."""
    n = name.lower()
    return "usd" in n or n.startswith("cost") or n.endswith("cost") or "_cost" in n or "spend" in n


def money_decimals(values: list[Any]) -> int:
    """Decimals that show every amount of a column alike: 2, more (up to 6) when one is under a cent."""
    small = [abs(v) for v in values if isinstance(v, int | float) and v and abs(v) < 0.01]
    if not small:
        return 2
    d = 2
    while d < 6 and round(min(small), d) == 0:
        d += 1
    return max(d, 4)


def column_formatter(name: str, values: list[Any], money: bool = False) -> Any:
    """How the cells of one column are written: money (by its name, or `money`: a table in USD) with the
    same decimals down the column, the rest by `_fmt`."""
    if (money or is_money(name)) and any(isinstance(v, float) for v in values):
        d = money_decimals(values)
        return lambda v: "" if v is None else f"{v:,.{d}f}" if isinstance(v, int | float) else _fmt(v)
    return _fmt


def rich_table(df: pl.DataFrame, title: str | None = None, max_rows: int = 50) -> Table:
    t = Table(title=visible(title) if title else title, box=box.SIMPLE_HEAVY, title_justify="left",
              title_style="bold")
    for name, dtype in df.schema.items():
        # numbers never fold (a table too narrow for them is split by columns: present/terminal.fit);
        # text folds at word boundaries
        t.add_column(visible(name), justify="right" if dtype.is_numeric() else "left", overflow="fold",
                     no_wrap=dtype.is_numeric())
    head = df.head(max_rows)
    in_usd = bool(title and "(USD)" in title)  # a table of amounts: its float columns are money
    fmts = [column_formatter(name, head[name].to_list(), in_usd and head.schema[name] == pl.Float64)
            for name in head.columns]
    for row in head.iter_rows():
        # markup=False semantics: escape rich markup in untrusted text; controls shown, not obeyed
        t.add_row(*(visible(f(v)).replace("[", r"\[") for f, v in zip(fmts, row, strict=True)))
    if df.height > max_rows:
        t.caption = f"{df.height - max_rows:,} more rows"
    return t


def html_table(df: pl.DataFrame, title: str | None = None, max_rows: int = 50) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>"
        for r in df.head(max_rows).iter_rows()
    )
    cap = f"<caption>{html.escape(title)}</caption>" if title else ""
    more = f"<p>{df.height - max_rows:,} more rows</p>" if df.height > max_rows else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{more}"


class BaseResult:
    """What every summary and report object of agentlens derives from: a subclass says what it is as a
    `Result` (`result()`: a title, headline facts, named tables) and gets the rest, the same for all:
    text for the terminal (`str()`, rich), escaped HTML in Jupyter, `to_dict` / `to_json`, one table as
    `to_csv` / `to_parquet`, and `save(path)` in the format its suffix names (.json, .csv, .parquet,
    .html, .txt)."""

    def result(self) -> Result:
        raise NotImplementedError

    # --- rendering -------------------------------------------------------------------------------------
    def __rich__(self) -> Any:
        return self.result().__rich__()

    def __str__(self) -> str:
        buf = io.StringIO()
        Console(file=buf, width=120, force_terminal=False, color_system=None).print(self)
        return buf.getvalue()

    def _repr_html_(self) -> str:
        return self.result()._repr_html_()

    def to_html(self) -> str:
        """A standalone HTML page of `_repr_html_` (every value escaped)."""
        title = html.escape(self.result().title)
        return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title></head>"
                f"<body>{self._repr_html_()}</body></html>\n")

    # --- data ------------------------------------------------------------------------------------------------
    def table(self, name: str | None = None) -> pl.DataFrame:
        """The table `name`, else the first one (an empty frame when there is none)."""
        tables = self.result().tables
        if name is None:
            return next(iter(tables.values()), pl.DataFrame())
        if name not in tables:
            raise KeyError(f"no table {name!r}; tables: {', '.join(tables) or '(none)'}")
        return tables[name]

    def to_dict(self) -> dict[str, Any]:
        return self.result().to_dict()

    def to_json(self, path: str | Path | None = None) -> str:
        """The whole object as JSON (title, facts, tables as lists of records); written to `path` if given."""
        text = json.dumps(self.to_dict(), indent=2, default=str)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def to_csv(self, path: str | Path | None = None, table: str | None = None) -> str:
        """One table (`table`, else the first) as CSV text; written to `path` if given."""
        text = self.table(table).write_csv()
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_parquet(self, path: str | Path, table: str | None = None) -> Path:
        """One table (`table`, else the first) as a Parquet file."""
        self.table(table).write_parquet(path)
        return Path(path)

    def save(self, path: str | Path, format: str | None = None, table: str | None = None) -> Path:
        """Write to `path` as `format` (json, csv, parquet, html, txt; default: from the suffix)."""
        p = Path(path)
        fmt = (format or p.suffix.lstrip(".") or "txt").lower()
        if fmt not in SAVE_FORMATS:
            raise ValueError(f"cannot save as {fmt!r}: use one of {', '.join(SAVE_FORMATS)}")
        p.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "json":
            self.to_json(p)
        elif fmt == "csv":
            self.to_csv(p, table)
        elif fmt == "parquet":
            self.to_parquet(p, table)
        elif fmt == "html":
            p.write_text(self.to_html(), encoding="utf-8")
        else:
            p.write_text(str(self), encoding="utf-8")
        return p


SAVE_FORMATS = ("json", "csv", "parquet", "html", "txt")


@dataclass
class Result(BaseResult):
    """Named tables plus a few headline facts; renders itself."""

    title: str
    facts: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)

    def result(self) -> Result:
        return self

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.text import Text

        parts: list[Any] = [Text(visible(self.title), style="bold underline")]
        for k, v in self.facts.items():
            parts.append(Text(visible(f"  {k}: {_fmt(v)}")))
        for name, df in self.tables.items():
            parts.append(rich_table(df, name) if df.height else Text(visible(f"{name}: none")))
        return Group(*parts)

    def _repr_html_(self) -> str:
        facts = "".join(
            f"<li><b>{html.escape(k)}</b>: {html.escape(_fmt(v))}</li>" for k, v in self.facts.items()
        )
        tables = "".join(html_table(df, name) for name, df in self.tables.items())
        return f"<div class='agentlens-result'><h4>{html.escape(self.title)}</h4><ul>{facts}</ul>{tables}</div>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "facts": {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in self.facts.items()},
            "tables": {k: df.to_dicts() for k, df in self.tables.items()},
        }
