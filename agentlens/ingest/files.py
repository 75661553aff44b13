"""Files read before, and how far: a file that grows is read from where the last read stopped.

The OpenTelemetry file exporter appends JSON lines to one file all day; reading it again from the start
re-read megabytes for a few new spans. Each read of a file is recorded in `file_reads` (with the commit
of what it read): the bytes read, a SHA-256 of exactly those bytes, and the lines they hold. The next
ingest of the same file (same path, same source) hashes the file's first `bytes_read` bytes: the same
fingerprint means the file only grew, and only what was appended is read (its quarantine records still
name their line in the whole file); another fingerprint means the file was rewritten, and it is read
whole (record identity keeps what was stored before from counting twice: ingest/sql.py).

Only JSON Lines are read from the middle (OTLP, agent_runs JSONL): a read that ended on a line's end.
Everything else (a CSV with its header, Parquet, one JSON document, gzip) is read whole when it changes.
A file is read up to the size it had when the ingest looked at it: lines appended meanwhile wait for the
next ingest, so the fingerprint always covers exactly what was read.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from ..adapters.base import Batch
from ..adapters.records import BOM
from ..core.config import Config, Section
from ..store import Store
from . import sql as Q
from .read import open_input

# The formats whose files are JSON Lines when they start with "{" on a line of its own: readable from any
# line's start.
LINE_FORMATS = frozenset({"otlp", "agent_runs"})

# What `Read.record` gives, in the order of `file_reads` (sql.RECORD_READ, sql.RECORD_READS)
READ_FIELDS = ("path", "source", "format", "bytes_read", "fingerprint", "lines_read", "appendable")


@dataclass(frozen=True)
class Read:
    """What to read of a file: from `offset` (a line start, `lines_before` lines in) to `size`; and what
    the ledger records once it is read."""

    path: Path
    source: str  # the source's name, '' for the format's own namespace
    digest: str  # SHA-256 of the whole file as it was looked at (ingested_files)
    size: int
    fingerprint: str  # SHA-256 of bytes [0, size)
    offset: int = 0
    lines_before: int = 0
    lines: int = 0  # lines in [0, size)
    ends_line: bool = True  # the bytes read end with a newline
    format: str | None = None  # the format of the earlier read, for a tail (which cannot be sniffed)

    @property
    def tail(self) -> bool:
        return self.offset > 0

    def grew(self) -> str | None:
        """What an ingest summary says of a file read from the middle."""
        return (f"read from byte {self.offset:,} (line {self.lines_before + 1:,}): the file grew since it was "
                "last read") if self.tail else None

    def record(self, format: str) -> tuple[object, ...]:
        """The ledger statement's parameters (RECORD_READ), to run inside the file's transaction."""
        appendable = format in LINE_FORMATS and self.ends_line and not _gzip(self.path)
        return (key(self.path), self.source, format, self.size, self.fingerprint, self.lines, appendable)


def source_names(config: Config) -> list[tuple[str, str]]:
    """`[sources.files]` of the config: a source's name for the files whose path matches a glob
    (`billing = "exports/billing/*.csv"`, or a list of globs), as (glob, name) in the config's order."""
    section = Section.of(config, "sources.files")
    out = []
    for name in section:
        globs = section[name]
        globs = [globs] if isinstance(globs, str) else globs
        if not isinstance(globs, list) or not globs or not all(isinstance(g, str) and g for g in globs):
            raise section.fail("must be a path glob or a list of them", name)
        out += [(g, name) for g in globs]
    return out


def source_of(path: Path, names: list[tuple[str, str]]) -> str | None:
    """The source a file belongs to by `[sources.files]` (its path as given, or its name, matches a glob)."""
    posix = path.as_posix()
    for glob, name in names:
        if fnmatch.fnmatchcase(posix, glob) or fnmatch.fnmatchcase(path.name, glob):
            return name
    return None


def key(path: Path) -> str:
    """A file's key in the ledger: its resolved path (`./a` and `a` are one file)."""
    return str(path.resolve())


def _gzip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == b"\x1f\x8b"


Last = tuple[int, str, int, str, bool]  # a file's row of `file_reads` (sql.LAST_READ)


def last_reads(store: Store, paths: list[Path], source: str | None) -> dict[str, Last]:
    """The ledger rows of many files at once, by key (a query per file cost ~3 ms: 30 s for 10,000 files)."""
    rows = store.con.execute(Q.LAST_READS, [source or "", [key(p) for p in paths]]).fetchall()
    return {r[0]: (r[1], r[2], r[3], r[4], r[5]) for r in rows}


def plan(store: Store, path: Path, source: str | None, known: dict[str, Last] | None = None) -> Read:
    """How to read the file now: whole, or from where the last read stopped (one pass over its bytes, which
    also gives the whole file's SHA-256). `known`: the ledger rows looked up already (`last_reads`)."""
    src = source or ""
    size = path.stat().st_size
    last = known.get(key(path)) if known is not None else store.one(Q.LAST_READ, [key(path), src])
    at = int(last[0]) if last is not None and last[4] and 0 < int(last[0]) <= size else None
    h, prefix_hash = hashlib.sha256(), None
    lines = last_byte = 0
    lines_at = 0
    done = 0
    with path.open("rb") as f:
        while done < size:
            chunk = f.read(min(1 << 20, size - done if at is None or done >= at else at - done))
            if not chunk:
                break
            h.update(chunk)
            lines += chunk.count(b"\n")
            last_byte = chunk[-1]
            done += len(chunk)
            if at is not None and done == at:
                prefix_hash, lines_at = h.hexdigest(), lines
    size = done  # a file cut meanwhile: what is there
    digest = h.hexdigest()
    read = Read(path, src, digest, size, digest, lines=lines, ends_line=last_byte == ord("\n"))
    if last is not None and prefix_hash is not None and prefix_hash == last[1] and at is not None and at < size:
        return replace(read, offset=at, lines_before=lines_at, format=last[3])
    return read


def open_part(path: Path, read: Read) -> IO[bytes]:
    """The bytes [offset, size) of a plain file; a gzip file whole, gunzipped (ingest.read.open_input)."""
    if _gzip(path) or read.offset == 0:  # from the start: as ingest.read opens it (a UTF-8 BOM dropped)
        return open_input(path)
    f = path.open("rb")
    f.seek(read.offset)
    return io.BufferedReader(_Limited(f, read.size - read.offset), 1 << 20)


def open_range(path: Path, start: int, end: int) -> IO[bytes]:
    """The bytes [start, end) of a plain file (a UTF-8 byte-order mark at its very start dropped, as
    ingest.read.open_input does): a part of a JSON Lines file read on its own (a distributed ingest)."""
    f = path.open("rb")
    if start == 0 and f.read(len(BOM)) == BOM:
        start = len(BOM)
    f.seek(start)
    return io.BufferedReader(_Limited(f, max(0, end - start)), 1 << 20)


class _Limited(io.RawIOBase):
    """A part of a file, `n` bytes from where it stands, as a file of its own (seekable: adapters look back
    at their first bytes)."""

    def __init__(self, f: IO[bytes], n: int):
        self.f, self.start, self.n, self.pos = f, f.tell(), n, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.n}[whence]
        self.pos = max(0, min(self.n, base + pos))
        self.f.seek(self.start + self.pos)
        return self.pos

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        left = self.n - self.pos
        if left <= 0:
            return 0
        data = self.f.read(min(len(b), left))
        b[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def close(self) -> None:
        self.f.close()
        super().close()


def renumbered(batches: Iterable[Batch], lines_before: int) -> Iterator[Batch]:
    """A tail's batches with their quarantine records' lines counted from the file's start."""
    def moved(m: re.Match[str]) -> str:
        return f"{m.group(1)} {int(m.group(2)) + lines_before}"

    for b in batches:
        if lines_before and b.bad:
            b = replace(b, bad=[replace(x, line=x.line + lines_before, reason=_LINE.sub(moved, x.reason, count=1))
                                if x.line is not None else x for x in b.bad])
        yield b


_LINE = re.compile(r"\b(line|row) (\d+)")
