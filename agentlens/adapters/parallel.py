"""Large files on every core: a file is cut into blocks of whole lines (JSON Lines: OTLP, agent_runs)
or into chunks of records an adapter has split itself (agent_runs CSV), worker processes turn each
into batches, and the batches come back in file order.

An adapter hands over a function of one block, `fn(block, first_line, final) -> list[Batch]`, that
must be picklable (a module-level function, or a `functools.partial` of one): it runs in a worker
process. `first_line` is the block's first line number in the file (quarantine records name their
line), `final` whether the block ends the file (a last line without its newline is then a truncated
record, not a complete one). `bytes_read` of the batches it returns count from the block's start;
they are made file offsets here, for the progress bar.

What a file gives is the same whatever the number of workers: rows and quarantine records in file
order (the store numbers them as they come, so "first of two duplicates wins" still holds).

Workers: `$AGENTLENS_WORKERS` (default: the number of cores; 1 reads in this process). Files of at
most four blocks (up to ~32 MB) are read in this process: starting the workers costs a few hundred
milliseconds, during which this process reads the first block of a larger file. Memory stays
bounded: at most two blocks per worker are in flight (one at work, one queued).

Ctrl-C: the terminal sends SIGINT to its foreground process group. The workers are not in it (each
starts in a process group of its own) and ignore SIGINT from their first statement, before any import
(`WORKER_BOOT`): the ingest process alone gets a KeyboardInterrupt, and stops (kills) its workers. A
worker that was interrupted mid-import printed a traceback of its own, burying the ingest's message.
"""

from __future__ import annotations

import gc
import io
import itertools
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .base import Batch

BLOCK_BYTES = 8 << 20
# Files of up to this many blocks are read in this process. A block takes ~0.16 s to read; starting the
# workers takes ~0.2 s each, more while they compete for the cores with this process: measured on 2
# cores, 4 blocks (26.7 MB) read in 0.63 s here and in 0.62-0.86 s with workers.
IN_PROCESS_BLOCKS = 4

BlockFn = Callable[[Any, int, bool], list[Batch]]

# The worker's program (`python -c`): SIGINT ignored first, then the imports (agentlens.adapters._worker)
WORKER_BOOT = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
               "from agentlens.adapters._worker import main; main()")
# A worker's first message, once its imports are done: it is ready for blocks
READY = "agentlens worker ready"


def workers() -> int:
    """Worker processes to use: `$AGENTLENS_WORKERS`, else the cores this process may run on."""
    env = os.environ.get("AGENTLENS_WORKERS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"AGENTLENS_WORKERS must be a whole number of processes, got {env!r}") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def lines(block: bytes) -> Iterator[bytes]:
    """The lines of a block, each with its newline (split on b"\\n" only, as reading a file does)."""
    return iter(io.BytesIO(block))


def _blocks(first: bytes, stream: IO[bytes], size: int) -> Iterator[tuple[bytes, int, bool, int]]:
    """(block, first line number, final?, offset of the block in the file): blocks of about `size`
    bytes cut after a newline. `first` is what the caller has already read from the stream."""
    line_no, offset = 1, 0
    pending = first
    while True:
        chunk = stream.read(size)
        if not chunk:
            if pending:
                yield pending, line_no, True, offset
            return
        data = pending + chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # no newline yet: one very long line, keep reading
            pending = data
            continue
        block, pending = data[:cut], data[cut:]
        yield block, line_no, False, offset
        line_no += block.count(b"\n")
        offset += len(block)


def read_lines(first: bytes, stream: IO[bytes], fn: BlockFn) -> Iterator[Batch]:
    """Every batch of the stream (of which `first` was already read), in file order."""
    return read_chunks(_blocks(first, stream, BLOCK_BYTES), fn)


def read_chunks(chunks: Iterator[tuple[Any, int, bool, int]], fn: BlockFn) -> Iterator[Batch]:
    """Every batch of `fn` over the chunks (chunk, first line number, final?, offset in the file), in
    file order: blocks of lines (`read_lines`), or records an adapter has already split (agent_runs CSV,
    whose quoted fields may hold newlines). A chunk is any picklable value of about `BLOCK_BYTES`."""
    rest = iter(chunks)
    head = list(itertools.islice(rest, IN_PROCESS_BLOCKS + 1))
    blocks = itertools.chain(head, rest)
    n = workers()
    if len(head) <= IN_PROCESS_BLOCKS or n == 1:  # small file, or one core: this process reads it
        for block, line_no, final, offset in blocks:
            yield from _shift(_here(fn, block, line_no, final), offset)
        return
    pool: list[_Worker] = []
    # blocks in flight, in file order: (worker, offset) sent to a worker, (None, batches) read here
    inflight: deque[tuple[_Worker | None, Any]] = deque()
    try:
        for _ in range(n):  # inside the try: a Ctrl-C while they start stops those already started
            pool.append(_Worker())
        # The first block is read here while the workers start (a Python start-up and the imports:
        # ~0.3 s, as long as reading a block): a file of a few blocks (an incremental ingest) then
        # costs about one block less than with every block sent to a worker.
        block, line_no, final, offset = next(blocks)
        inflight.append((None, list(_shift(_here(fn, block, line_no, final), offset))))
        for i, (block, line_no, final, offset) in enumerate(blocks):
            if len(inflight) >= 2 * n:  # each worker has one block at work and one queued
                yield from _answer(*inflight.popleft())
            worker = pool[i % n]  # round robin: each worker answers in the order it was asked
            worker.send((fn, block, line_no, final))
            inflight.append((worker, offset))
        while inflight:
            yield from _answer(*inflight.popleft())
        for w in pool:
            w.close()
    finally:
        for w in pool:
            w.kill()


def _here(fn: BlockFn, block: Any, line_no: int, final: bool) -> list[Batch]:
    """A block read in this process, without the cycle collector while it runs, as in a worker (`serve`):
    its passes over the many small containers of decoded JSON doubled the decoding time (0.12 -> 0.24 s
    for 26.7 MB). They come back on after the block: what the block made is then mostly garbage or Arrow."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return fn(block, line_no, final)
    finally:
        if enabled:
            gc.enable()


def _answer(worker: _Worker | None, value: Any) -> Iterator[Batch]:
    """The batches of a block in flight: read here (value: the batches), or the worker's answer
    (value: the block's offset in the file)."""
    if worker is None:
        yield from value
    else:
        yield from _shift(worker.receive(), value)


class _Worker:
    """A worker process (`python -c WORKER_BOOT`: agentlens.adapters._worker) fed through its stdin and
    answering on its stdout, length-prefixed pickles both ways. Plain subprocesses rather than
    multiprocessing: its "spawn" workers re-import the caller's main script, so a script calling
    `lens.ingest()` at its top level (no `if __name__ == "__main__"` guard) would run again in each
    worker. A thread drains the answers as they come, so a worker never waits on a full pipe while we
    write to it. The worker's first message is READY (its imports done): `ready` is set then."""

    def __init__(self) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # the folder holding the agentlens package
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER_BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
            # its own process group: the terminal's Ctrl-C (SIGINT to the foreground group) reaches only us,
            # even while the interpreter starts, before WORKER_BOOT's first statement
            process_group=0 if os.name == "posix" else None,
        )
        self.answers: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        while True:
            try:
                message = _read(self.proc.stdout, "an agentlens worker process")
            except EOFError:
                self.answers.put((False, "the worker process exited (killed, or out of memory?)"))
                return
            except (RuntimeError, OSError, ValueError, pickle.UnpicklingError) as e:
                self.answers.put((False, f"{type(e).__name__}: {e}"))
                return
            if self.ready.is_set():
                self.answers.put(message)
            elif message == READY:
                self.ready.set()
            else:
                self.answers.put((False, f"the worker process began with {message!r}, not {READY!r}"))
                return

    def send(self, request: Any) -> None:
        assert self.proc.stdin is not None
        _write(self.proc.stdin, request)

    def receive(self) -> list[Batch]:
        ok, value = self.answers.get()
        if not ok:
            raise RuntimeError(f"an agentlens worker process failed:\n{value}")
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # end of input: the worker exits
        self.proc.wait()
        self.reader.join()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()


_LEN = struct.Struct("<Q")


def _write(f: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(_LEN.pack(len(data)))
    f.write(data)
    f.flush()


def _read(f: IO[bytes], who: str) -> Any:
    head = f.read(_LEN.size)
    if len(head) < _LEN.size:
        if not head:
            raise EOFError
        raise RuntimeError(f"{who} ended mid-message")
    n = _LEN.unpack(head)[0]
    data = f.read(n)
    if len(data) < n:
        raise RuntimeError(f"{who} ended mid-message")
    return pickle.loads(data)  # our own worker process, over its private pipe: trusted bytes


def serve() -> None:
    """The worker: read (fn, block, first line, final) requests from stdin until it closes, answer
    each with (True, batches) or (False, the traceback)."""
    # Decoded JSON is many small containers and never cyclic: the cycle collector's passes over them
    # cost ~15% of the work, so it runs once per block instead.
    gc.disable()
    # Ctrl-C is the ingest process's to handle: it stops and kills its workers (a traceback from each
    # worker would only bury its message). WORKER_BOOT ignores SIGINT already; again here for `python -m`
    # and over any handler a library installed as it was imported (polars installs one).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # a stray print must not corrupt the answers
    inp = sys.stdin.buffer
    _write(out, READY)
    while True:
        try:
            fn, block, line_no, final = _read(inp, "the agentlens ingest process")
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (True, fn(block, line_no, final))
        except Exception:
            answer = (False, traceback.format_exc())
        _write(out, answer)
        del answer
        gc.collect()


def _shift(batches: list[Batch], offset: int) -> Iterator[Batch]:
    for b in batches:
        b.bytes_read += offset
        yield b
