"""Who holds a database: the owner process and how others reach it.

One process at a time opens a database file for writing (DuckDB's lock), and while it does no other
process can even read it. So the process that holds a database serves it: it listens on a Unix socket
(Arrow Flight, agentlens.server) and the other agentlens processes (the CLI, notebooks, widgets, cron
jobs) send it their queries and their writes instead of opening the file (see docs: concurrency).

This module is the rendezvous: where an owner's socket and its description live, whether the owner
there is alive, and what to tell a user about a process that holds the file.

The socket and the description live in a private folder of the user (`$AGENTLENS_RUNTIME_DIR`, else
`$XDG_RUNTIME_DIR/agentlens`, else `/tmp/agentlens-<uid>`; mode 0700), named by a hash of the
database's real path: a Unix socket path may not be longer than ~107 bytes, a database path may.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import StoreError


class RuntimeDirError(StoreError):
    """The folder for owners' sockets is unsafe (not ours, or writable by others), or its path is too long
    for a socket: the CLI exits 3."""


def runtime_dir() -> Path:
    """The user's private folder for sockets, created 0700; refused when another user owns it or others
    may write to it (a socket there could be someone else's)."""
    base = os.environ.get("AGENTLENS_RUNTIME_DIR")
    if base:
        d = Path(base)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        d = Path(os.environ["XDG_RUNTIME_DIR"]) / "agentlens"
    else:
        d = Path(tempfile.gettempdir()) / f"agentlens-{os.getuid()}"
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = d.stat()
    except OSError as e:
        raise RuntimeDirError(f"{d}: cannot use it as the folder of agentlens's sockets ({e.strerror or e}); set "
                              "$AGENTLENS_RUNTIME_DIR to a private folder") from None
    why = ("not a folder" if not stat.S_ISDIR(st.st_mode) else
           "owned by another user" if st.st_uid != os.getuid() else
           "writable by others" if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) else None)
    if why:
        raise RuntimeDirError(f"{d}: {why}, so agentlens will not use it for its sockets (one there could be "
                              "another user's); set $AGENTLENS_RUNTIME_DIR to a private folder (mode 0700)")
    return d


def db_key(path: str) -> str:
    return hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Endpoint:
    """Where the owner of one database listens and describes itself."""

    socket: Path
    info: Path

    @property
    def location(self) -> str:
        return f"grpc+unix://{self.socket}"


SOCKET_PATH_MAX = 107  # bytes of a Unix socket's path (sun_path is 108 with its NUL)


def endpoint(path: str) -> Endpoint:
    """Where the owner of the database at `path` listens: named by a hash of its real path, so that a long
    database path makes no long socket path; the folder's own path must leave room for the name."""
    d = runtime_dir()
    key = db_key(path)
    socket = d / f"{key}.sock"
    if len(os.fsencode(str(socket))) > SOCKET_PATH_MAX:
        room = SOCKET_PATH_MAX - len(os.fsencode(socket.name)) - 1
        raise RuntimeDirError(f"{d}: too long a path for agentlens's sockets ({len(os.fsencode(str(d)))} bytes; a Unix "
                              f"socket's path has room for {room}); set $AGENTLENS_RUNTIME_DIR to a shorter one")
    return Endpoint(socket, d / f"{key}.json")


@dataclass(frozen=True)
class OwnerInfo:
    """What an owner says about itself (its endpoint's .json)."""

    pid: int
    command: str
    database: str
    since: str  # ISO time the process started serving
    writes: bool  # accepts writes (a read-only file is served for reading only)

    def describe(self) -> str:
        return describe_process(self.pid, self.command, _parse(self.since))


def _parse(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def write_info(ep: Endpoint, info: OwnerInfo) -> None:
    tmp = ep.info.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(info)), encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(ep.info)


def read_info(ep: Endpoint) -> OwnerInfo | None:
    try:
        data = json.loads(ep.info.read_text(encoding="utf-8"))
        return OwnerInfo(int(data["pid"]), str(data["command"]), str(data["database"]), str(data["since"]),
                         bool(data["writes"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def clear(ep: Endpoint, pid: int) -> None:
    """Remove an endpoint's files if they are `pid`'s (an owner leaving, or a dead owner's leftovers)."""
    info = read_info(ep)
    if info is not None and info.pid != pid:
        return
    for f in (ep.info, ep.socket):
        try:
            f.unlink()
        except FileNotFoundError:
            pass


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, dead and not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def command_line(pid: int) -> str:
    """The process's command line (Linux /proc), '' when unknown."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    parts = [p.decode("utf-8", "replace") for p in raw.split(b"\0") if p]
    if len(parts) >= 2 and Path(parts[0]).name.startswith("python") and parts[1].endswith("agentlens"):
        parts = parts[1:]  # `python .venv/bin/agentlens ...` reads as `agentlens ...`
    if parts:
        parts[0] = Path(parts[0]).name
    return " ".join(parts)


def started(pid: int) -> dt.datetime | None:
    """When the process started (Linux /proc), None when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, IndexError, ValueError, StopIteration):
        return None
    return dt.datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), dt.UTC)


def _age(since: dt.datetime | None) -> str:
    if since is None:
        return ""
    secs = max(0, int((dt.datetime.now(dt.UTC) - since).total_seconds()))
    if secs < 120:
        return f"{secs} s"
    if secs < 7200:
        return f"{secs // 60} min"
    return f"{secs // 3600} h {secs % 3600 // 60} min"


def describe_process(pid: int, command: str | None = None, since: dt.datetime | None = None) -> str:
    """`PID 4242 (agentlens collect --port 4318), for 12 min`."""
    command = command or command_line(pid) or "unknown command"
    since = since or started(pid)
    age = _age(since)
    return f"PID {pid} ({command})" + (f", for {age}" if age else "")


def wait_backoff(attempt: int) -> float:
    """Seconds to sleep before the next attempt to reach or open a database (50 ms doubling, at most 1 s)."""
    return min(0.05 * (2 ** attempt), 1.0)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def monotonic() -> float:
    return time.monotonic()
