"""Result objects that render themselves: text for the terminal, escaped HTML in Jupyter, and
polars / JSON / CSV / Parquet for everything else. Trace content is untrusted, so every value
goes through `html.escape` before it reaches HTML."""

from __future__ import annotations

import datetime as dt
import html
import io
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from rich import box
from rich.console import Console
from rich.table import Table


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


def rich_table(df: pl.DataFrame, title: str | None = None, max_rows: int = 50) -> Table:
    t = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left", title_style="bold")
    for name, dtype in df.schema.items():
        t.add_column(name, justify="right" if dtype.is_numeric() else "left", overflow="fold")
    for row in df.head(max_rows).iter_rows():
        # markup=False semantics: escape rich markup in untrusted text
        t.add_row(*(_fmt(v).replace("[", r"\[") for v in row))
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


@dataclass
class Result:
    """Named tables plus a few headline facts; renders itself."""

    title: str
    facts: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.text import Text

        parts: list[Any] = [Text(self.title, style="bold underline")]
        for k, v in self.facts.items():
            parts.append(Text(f"  {k}: {_fmt(v)}"))
        for name, df in self.tables.items():
            parts.append(rich_table(df, name))
        return Group(*parts)

    def __str__(self) -> str:
        buf = io.StringIO()
        Console(file=buf, width=120, force_terminal=False, color_system=None).print(self)
        return buf.getvalue()

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
