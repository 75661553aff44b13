"""Format adapters: bytes in, canonical rows out (see base.py). One module per format."""

from __future__ import annotations

from types import ModuleType

from . import agent_runs, langfuse, langsmith, otlp

# Sniffing order: the first adapter whose sniff() accepts the head of a file reads it.
ADAPTERS: dict[str, ModuleType] = {
    otlp.NAME: otlp,
    langfuse.NAME: langfuse,  # before agent_runs, which claims every Parquet file
    langsmith.NAME: langsmith,
    agent_runs.NAME: agent_runs,
}


def by_name(name: str) -> ModuleType:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; known formats: {', '.join(ADAPTERS)}") from None


def sniff(head: bytes, filename: str) -> ModuleType | None:
    for mod in ADAPTERS.values():
        if mod.sniff(head, filename):
            return mod
    return None
