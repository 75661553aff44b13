"""Read: which files to ingest, whether each was ingested before, and which adapter reads it.

Files under the given paths are found (folders recursively), skipped when their bytes were ingested
before (SHA-256 in `ingested_files`), and their format sniffed from their first bytes (and a Parquet
file's footer) unless it is given. The adapter (agentlens.adapters) then turns the bytes into batches.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from .. import adapters
from ..adapters.base import Bad, Batch
from ..adapters.records import BOM
from ..core.config import Config

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


class _Input(io.RawIOBase):
    """A file's bytes as the adapters read them: gunzipped, without a leading UTF-8 byte-order mark, and,
    for gzip, ending where the data stops being readable (a .gz cut short or corrupt): what came before
    is read as usual, and `error` (with `error_at`, the bytes read until then) says what stopped it."""

    def __init__(self, inner: IO[bytes], skip: int):
        super().__init__()
        self.inner, self.skip = inner, skip
        self.pos = 0
        self.error: BaseException | None = None
        self.error_at = 0
        if skip:
            inner.seek(skip)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.inner.seekable()

    def readinto(self, b: Any) -> int:
        if self.error is not None:
            return 0
        try:
            # read1: at most one read of the file below, so that the data decompressed before a gzip error
            # is not lost with it (GzipFile.read keeps reading, and drops what it had when one fails)
            data = self.inner.read1(len(b))  # type: ignore[attr-defined]
        except (EOFError, OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            self.error, self.error_at = e, self.pos
            return 0
        n = len(data)
        b[:n] = data
        self.pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset, whence = self.pos + offset, io.SEEK_SET
        try:
            if whence == io.SEEK_SET:
                self.pos = self.inner.seek(offset + self.skip) - self.skip
            else:
                self.pos = self.inner.seek(offset, whence) - self.skip
        except (EOFError, OSError, zlib.error) as e:  # a gzip seek reads up to there: past where its data stops
            if self.error is None:
                self.error, self.error_at = e, self.pos
        return self.pos

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        self.inner.close()
        super().close()


def open_input(path: Path) -> IO[bytes]:
    """The file's bytes, gunzipped when it is gzip, without a leading UTF-8 byte-order mark (Excel's
    "CSV UTF-8" writes one). A .gz cut short or corrupt reads to where its data stops (`input_error`)."""
    f = path.open("rb")
    inner: IO[bytes] = f
    gz = f.read(2) == b"\x1f\x8b"
    f.seek(0)
    if gz:
        inner = gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[assignment]
    try:
        skip = len(BOM) if inner.read(len(BOM)) == BOM else 0
    except (EOFError, OSError, zlib.error):
        skip = 0  # a .gz not readable from its start: _Input records why at the first read
    try:
        inner.seek(0)
    except (EOFError, OSError, zlib.error):
        inner = gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[assignment]
    if not gz and not skip:
        return f
    return io.BufferedReader(_Input(inner, skip), buffer_size=1 << 16)  # type: ignore[arg-type]


def input_error(stream: IO[bytes]) -> tuple[BaseException, int] | None:
    """What stopped the reading of a .gz before its end (the exception, decompressed bytes read), or None."""
    raw = getattr(stream, "raw", None)
    if isinstance(raw, _Input) and raw.error is not None:
        return raw.error, raw.error_at
    return None


def head(path: Path) -> bytes:
    """The bytes a format is sniffed from: the first SNIFF_BYTES, and a Parquet file's footer (where its
    column names are). Raises OSError when the file cannot be read (a .gz whose data cannot be read at
    all: one cut short is sniffed from what it holds)."""
    size = path.stat().st_size
    with open_input(path) as f:
        data = f.read(SNIFF_BYTES)
        if data.startswith(b"PAR1"):  # Parquet keeps its column names in the footer: sniff it too
            f.seek(max(len(data), size - SNIFF_BYTES))
            data += f.read()
        err = input_error(f)
    if err is not None and not data:
        raise OSError(f"not readable as gzip: {type(err[0]).__name__}: {err[0]}")
    return data


def batches(adapter: ModuleType, stream: IO[bytes], path: Path, config: Config) -> Iterator[Batch]:
    """The adapter's batches of a file, then the quarantine record of what stopped its reading early: a
    .gz cut short or corrupt (every line before it is kept), or an error of the adapter itself (the
    batches before it are kept; the adapters judge each record alone, so this is a bug)."""
    done, yielded, told = 0, 0, False
    try:
        for b in adapter.read(stream, str(path), config):
            done = max(done, b.bytes_read)
            yielded += 1
            err = input_error(stream)
            if err is not None and not told:
                # the record the cut fell in, quarantined by the adapter as cut off: it says why
                for bad in b.bad:
                    if bad.kind == "truncated" and not bad.stored:
                        bad.reason += f"; {_gzip_problem(*err)}"
                        told = True
            yield b
    except MemoryError:
        raise
    except Exception as e:  # whatever the adapter raised, the file's earlier batches stay
        if not yielded:
            raise  # nothing read yet (not this format after all...): the file fails whole, with the reason
        line = _line_at(path, done)
        yield Batch(bad=[Bad("unreadable_file", f"line {line}: {path}: reading stopped after {done:,} bytes: "
                             f"{type(e).__name__}: {e}", _excerpt(path, done), line)])
        return
    err = input_error(stream)
    if err is not None and not told:  # the cut fell between two records
        line = _line_at(path, err[1])
        yield Batch(bad=[Bad("truncated", f"line {line}: {_gzip_problem(*err)}", _excerpt(path, err[1]), line)])


def _gzip_problem(e: BaseException, at: int) -> str:
    what = "cut short" if isinstance(e, EOFError) else "corrupt"
    return (f"the gzip data is {what} after {at:,} bytes (the lines before were read): "
            f"{type(e).__name__}: {e}")


def _line_at(path: Path, offset: int) -> int:
    """The line of the file's (decompressed) data where byte `offset` falls, 1-based."""
    n, left = 1, offset
    with open_input(path) as f:
        while left > 0:
            chunk = f.read(min(left, 1 << 20))
            if not chunk:
                break
            n += chunk.count(b"\n")
            left -= len(chunk)
    return n


def _excerpt(path: Path, offset: int, size: int = 4096) -> str:
    """The (decompressed) bytes of the line where `offset` falls, up to `offset`: the record cut off."""
    with open_input(path) as f:
        start = max(0, offset - size)
        f.seek(start)
        data = f.read(offset - start)
    return data[data.rfind(b"\n") + 1:].decode("utf-8", "backslashreplace")


def adapter_for(path: Path, data: bytes, explicit: bool, forced: ModuleType | None) -> ModuleType | None:
    """The adapter that reads the file: the forced one, else the sniffed one. None for a file found in a
    folder that is not a trace (a README); NotATrace for one named explicitly, and for a file whose head
    the adapters cannot even look at (it is then quarantined, and the other files are read)."""
    if forced is None:
        try:
            adapter = adapters.sniff(data.removeprefix(BOM), path.name)
            if adapter is None and b"\n" in data.strip():
                # a broken first line hides the format: sniffed from the next line, the file is read (its
                # adapter quarantines the first line) rather than skipped as not a trace
                adapter = adapters.sniff(data.split(b"\n", 1)[1], path.name)
        except RecursionError:
            raise NotATrace(f"{path}: cannot tell its format: its first record is nested too deep") from None
        except Exception as e:  # a head no sniffer foresaw: this file alone is kept out
            raise NotATrace(f"{path}: cannot tell its format: {type(e).__name__}: {e}") from None
    else:
        adapter = forced
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
