"""README sections generated from the code: the schema tables and the CLI reference.

`python -m agentlens.docs` rewrites them in README.md; `tests/test_docs.py` fails when they drift.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import click

from . import schema
from .cli import main as cli_main

README = Path(__file__).resolve().parents[1] / "README.md"


def cli_reference() -> str:
    parts = []
    def context(cmd: click.Command, name: str, parent: click.Context | None = None) -> click.Context:
        return click.Context(cmd, info_name=name, parent=parent, terminal_width=100, max_content_width=100,
                             help_option_names=["-h", "--help"])

    ctx = context(cli_main, "agentlens")
    parts.append("```\n" + cli_main.get_help(ctx).rstrip() + "\n```")
    for name in sorted(cli_main.commands):
        cmd = cli_main.commands[name]
        sub = context(cmd, name, ctx)
        parts.append(f"#### `agentlens {name}`\n\n```\n{cmd.get_help(sub).rstrip()}\n```")
    return "\n\n".join(parts) + "\n"


SECTIONS = {"schema": schema.markdown_tables, "cli": cli_reference}


def _replacer(body: str) -> Callable[[re.Match[str]], str]:
    def replace(m: re.Match[str]) -> str:
        return m.group(1) + body + m.group(2)

    return replace


def render(text: str) -> str:
    for name, fn in SECTIONS.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"README.md has no <!-- {name}:start --> ... <!-- {name}:end --> section")
        text = pattern.sub(_replacer(fn()), text)
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    current = README.read_text(encoding="utf-8")
    new = render(current)
    if "--check" in argv:
        if new != current:
            print("README.md is out of date: run `python -m agentlens.docs`", file=sys.stderr)
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
