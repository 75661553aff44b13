"""The receiver's spool: every request it acknowledges is on disk before it answers.

A receiver batches what it accepts and writes it every few seconds (one transaction per batch). Until
then an acknowledged span lived only in memory: kill -9 lost up to a flush window of spans the exporter
had been told were stored. Like the OpenTelemetry Collector's persistent queue, the receiver now appends
each accepted request body to a segment file, fsync'd, before it answers 200; once a batch is written to
the database, the segments it came from are deleted. A receiver that starts finds the segments of
receivers that died (their process is gone) and replays them through the same decoding first.

Layout: a folder beside the database, `.NAME.spool/`, of segment files `PID-SEQ.seg`; a record is a
header (magic, body length, CRC-32 of the body, length of the media type and encoding line) followed by
`content-type\\ncontent-encoding` and the body as received. A torn last record (the process died while
appending) fails its length or CRC check: it was never acknowledged, and replay stops there.
"""

from __future__ import annotations

import os
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

from ..store.owner import alive

MAGIC = b"ALS1"
_HEADER = struct.Struct(">4sIII")  # magic, body length, body CRC-32, meta length
SEGMENT_BYTES = 64 * 1024 * 1024  # a segment is closed past this size (and at each flush)
_NAME = re.compile(r"^(\d+)-(\d+)\.seg$")


def spool_dir(db_path: str) -> Path:
    p = Path(db_path).resolve()
    return p.parent / f".{p.name}.spool"


class Spool:
    """This process's segments of the receiver's spool for one database."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._seq = 0
        self._file: object | None = None
        self._path: Path | None = None
        self._size = 0
        self._sealed: list[Path] = []  # closed segments whose records are not yet in the database

    def append(self, body: bytes, content_type: str, encoding: str) -> None:
        """Append one request and fsync it: when this returns, the request survives a crash."""
        meta = f"{content_type}\n{encoding}".encode("utf-8", "replace")
        record = _HEADER.pack(MAGIC, len(body), zlib.crc32(body), len(meta)) + meta + body
        with self._lock:
            if self._file is None or self._size >= SEGMENT_BYTES:
                self._rotate()
            f = self._file
            assert f is not None
            f.write(record)  # type: ignore[attr-defined]
            f.flush()  # type: ignore[attr-defined]
            os.fsync(f.fileno())  # type: ignore[attr-defined]
            self._size += len(record)

    def seal(self) -> list[Path]:
        """Close the current segment (a flush takes everything pending now): the segments to delete once
        that flush is written."""
        with self._lock:
            if self._file is not None:
                self._file.close()  # type: ignore[attr-defined]
                self._file = None
                if self._path is not None:
                    self._sealed.append(self._path)
            return list(self._sealed)

    def written(self, segments: list[Path]) -> None:
        """The records of `segments` are in the database: delete them."""
        with self._lock:
            for seg in segments:
                seg.unlink(missing_ok=True)
                if seg in self._sealed:
                    self._sealed.remove(seg)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()  # type: ignore[attr-defined]
                self._file = None
            if self._path is not None and self._path.exists() and self._path.stat().st_size == 0:
                self._path.unlink()

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()  # type: ignore[attr-defined]
            if self._path is not None:
                self._sealed.append(self._path)
        self._seq += 1
        self._path = self.folder / f"{os.getpid()}-{self._seq:06d}.seg"
        self._file = self._path.open("ab")
        self._size = 0
        _fsync_dir(self.folder)  # the new file's name survives a crash too


def orphans(folder: Path) -> list[Path]:
    """Segments left by receivers that are no longer running, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for seg in folder.iterdir():
        m = _NAME.match(seg.name)
        if m and int(m.group(1)) != os.getpid() and not alive(int(m.group(1))):
            found.append((int(m.group(1)), int(m.group(2)), seg))
    return [seg for _, _, seg in sorted(found, key=lambda t: (t[2].stat().st_mtime, t[0], t[1]))]


def records(seg: Path) -> Iterator[tuple[bytes, str, str]]:
    """(body, content type, encoding) of each whole record of a segment; stops at a torn one."""
    data = seg.read_bytes()
    at = 0
    while at + _HEADER.size <= len(data):
        magic, n, crc, m = _HEADER.unpack_from(data, at)
        start = at + _HEADER.size
        if magic != MAGIC or start + m + n > len(data):
            return
        meta = data[start:start + m].decode("utf-8", "replace")
        body = data[start + m:start + m + n]
        if zlib.crc32(body) != crc:
            return
        ctype, _, encoding = meta.partition("\n")
        yield body, ctype, encoding
        at = start + m + n


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
