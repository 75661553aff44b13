"""Reference pages generated from the code: the canonical schema and the CLI.

Each page under `docs/` has hand-written prose and a generated part between `<!-- NAME:start -->` and
`<!-- NAME:end -->`: `python -m agentlens.docs` rewrites the generated parts, `python -m agentlens.docs
--check` exits 1 naming the pages that are out of date. `tests/test_docs.py` runs the check and builds
the site (`mkdocs.yml`) with warnings as errors.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from . import schema
from .cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def schema_reference() -> str:
    """The column tables of every canonical table, one section (`## `table``) each."""
    return re.sub(r"^#### ", "## ", schema.markdown_tables(), flags=re.M)


def cli_reference() -> str:
    """`agentlens --help`, then the help of every command, one section (`## `agentlens NAME``) each."""
    def context(cmd: click.Command, name: str, parent: click.Context | None = None) -> click.Context:
        return click.Context(cmd, info_name=name, parent=parent, terminal_width=100, max_content_width=100,
                             help_option_names=["-h", "--help"])

    ctx = context(cli_main, "agentlens")
    parts = ["## `agentlens`\n\n```\n" + cli_main.get_help(ctx).rstrip() + "\n```"]
    for name, cmd in sorted(cli_main.every_command().items()):
        sub = context(cmd, name, ctx)
        parts.append(f"## `agentlens {name}`\n\n```\n{cmd.get_help(sub).rstrip()}\n```")
    return "\n\n".join(parts) + "\n"


@dataclass(frozen=True)
class Page:
    path: Path
    sections: dict[str, Callable[[], str]]

    @property
    def name(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


PAGES = (
    Page(DOCS / "reference" / "schema.md", {"schema": schema_reference}),
    Page(DOCS / "reference" / "cli.md", {"cli": cli_reference}),
)


def _replacer(body: str) -> Callable[[re.Match[str]], str]:
    def replace(m: re.Match[str]) -> str:
        return m.group(1) + body + m.group(2)

    return replace


def render(page: Page, text: str) -> str:
    """`text` (the page as it is) with its generated sections made current."""
    for name, fn in page.sections.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"{page.name} has no <!-- {name}:start --> ... <!-- {name}:end --> section")
        text = pattern.sub(_replacer(fn()), text)
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stale = []
    for page in PAGES:
        current = page.path.read_text(encoding="utf-8")
        new = render(page, current)
        if new == current:
            continue
        stale.append(page.name)
        if "--check" not in argv:
            page.path.write_text(new, encoding="utf-8")
    if stale and "--check" in argv:
        print(f"out of date: {', '.join(stale)}: run `python -m agentlens.docs`", file=sys.stderr)
        return 1
    for name in stale:
        print(f"rewrote {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
