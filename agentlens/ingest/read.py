"""Read: which files to ingest, whether each was ingested before, and which adapter reads it.

Files under the given paths are found (folders recursively), skipped when their bytes were ingested
before (SHA-256 in `ingested_files`), and their format sniffed from their first bytes (and a Parquet
file's footer) unless it is given. The adapter (agentlens.adapters) then turns the bytes into batches.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import IO

from .. import adapters

SNIFF_BYTES = 64 * 1024
MAX_RAW_FILE = 1 << 20  # an unreadable file's first MiB is kept in the quarantine


class IngestError(Exception):
    """A file could not be read at all (the message names the file and the problem)."""


class NotATrace(Exception):
    """A file no adapter recognises (the message says what was expected)."""


def iter_files(paths: Iterable[str | Path]) -> Iterator[tuple[Path, bool]]:
    """Files under the given paths (folders recursively, sorted; hidden entries skipped).
    Yields (path, named_explicitly)."""
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts):
                    yield f, False
        elif p.exists():
            yield p, True
        else:
            raise IngestError(f"{p}: no such file or directory")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def open_input(path: Path) -> IO[bytes]:
    """The file's bytes, gunzipped when it is gzip."""
    f = path.open("rb")
    if f.read(2) == b"\x1f\x8b":
        f.seek(0)
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    f.seek(0)
    return f


def head(path: Path) -> bytes:
    """The bytes a format is sniffed from: the first SNIFF_BYTES, and a Parquet file's footer (where its
    column names are). Raises OSError / EOFError when the file cannot be read."""
    size = path.stat().st_size
    with open_input(path) as f:
        data = f.read(SNIFF_BYTES)
        if data.startswith(b"PAR1"):  # Parquet keeps its column names in the footer: sniff it too
            f.seek(max(len(data), size - SNIFF_BYTES))
            data += f.read()
    return data


def adapter_for(path: Path, data: bytes, explicit: bool, forced: ModuleType | None) -> ModuleType | None:
    """The adapter that reads the file: the forced one, else the sniffed one. None for a file found in a
    folder that is not a trace (a README); NotATrace for one named explicitly."""
    adapter = forced or adapters.sniff(data, path.name)
    if adapter is None and explicit and data.strip():
        raise NotATrace(
            f"{path}: not a known trace format (OTLP JSON, Langfuse or LangSmith exports, "
            "agent_runs CSV/JSONL/Parquet); give --format to read it as one")
    return adapter


def raw_excerpt(path: Path) -> str:
    """The first MiB of a file that could not be read, for its quarantine record."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_RAW_FILE)
    except OSError:
        raw = b""
    return raw.decode("utf-8", "backslashreplace")
