"""CLI commands of the live sources: `agentlens collect` (the OTLP/HTTP receiver), and `agentlens serve`
(hold a database and serve it to the other agentlens processes).

`agentlens ingest postgresql://...?table=agent_runs` needs no command of its own: `ingest` routes
URLs to their source (agentlens.sources).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from ..present import terminal
from ..sources.collector import DEFAULT_PORT, TRACES_PATH, Collector, Stats
from .common import CONFIG_OPTION, DB_OPTION, _open


@click.command()
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 exposes the receiver to the network).")
@DB_OPTION
@CONFIG_OPTION
@click.option("--flush-spans", default=5000, show_default=True, type=click.IntRange(min=1),
              help="Write when this many spans are waiting...")
@click.option("--flush-seconds", default=2.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="...or when the oldest waiting span is this old.")
def collect(port: int, host: str, db: str | None, config: str | None, flush_spans: int, flush_seconds: float) -> None:
    """Receive OTLP/HTTP traces on POST /v1/traces (protobuf or JSON, gzip too) into the database.

    Point an OpenTelemetry exporter at it, e.g. OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318.
    Spans are written in batches, one transaction per batch; a request that cannot be read gets a
    400 and is quarantined. Runs until Ctrl-C or SIGTERM, then writes what is pending and prints a
    summary. While it runs it holds the database and serves it to the other agentlens processes (the CLI,
    notebooks, cron jobs); when another process already holds it, the spans are written through that one.
    """
    with _open(db, config) as lens:
        try:
            collector = Collector(lens, host=host, port=port, flush_spans=flush_spans, flush_seconds=flush_seconds,
                                  pipeline=lens.pipeline)
        except OSError as e:
            raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
        collector.start()
        h, p = collector.address
        try:
            _until_stopped(f"agentlens collect: receiving OTLP/HTTP on http://{h}:{p}{TRACES_PATH} into {lens.path} "
                           "(Ctrl-C to stop)")
        finally:
            stats = collector.stop()
        terminal.say(_summary(stats))
        for problem in stats.write_errors[-3:]:
            terminal.note(f"write error: {problem}")


def _summary(s: Stats) -> str:
    replayed = (f", requests replayed from a killed receiver's spool: {s.replayed_requests}"
                if s.replayed_requests else "")
    return (f"requests: {s.requests} ({s.bad_requests} rejected), spans accepted: {s.spans_accepted}, "
            f"spans stored: {s.spans_stored}, spans rejected: {s.spans_rejected}, runs updated: {s.runs_updated}, "
            f"writes: {s.flushes}{replayed}")


@click.command()
@DB_OPTION
@CONFIG_OPTION
def serve(db: str | None, config: str | None) -> None:
    """Hold the database and serve it to the other agentlens processes until Ctrl-C or SIGTERM.

    Whatever process holds a database serves it (`collect`, an ingest, a notebook); `serve` is one that does
    nothing else, for a team that keeps notebooks, cron jobs and the CLI on one database all day. The
    others send it their queries and writes over a Unix socket in a private folder ($AGENTLENS_RUNTIME_DIR,
    $XDG_RUNTIME_DIR/agentlens, else /tmp/agentlens-UID). Exit status 3 when another process holds it.
    """
    from ..store import owner
    from .common import DatabaseError

    with _open(db, config, create=False) as lens:
        if lens.remote is not None:
            info = owner.read_info(owner.endpoint(lens.path))
            who = info.describe() if info is not None else "another process"
            raise DatabaseError(f"{lens.path}: already held and served by {who}; nothing to do")
        _until_stopped(f"agentlens serve: serving {lens.path} to other agentlens processes"
                       + (" (read-only: the file cannot be written)" if lens.read_only else "") + " (Ctrl-C to stop)")
        terminal.say("agentlens serve: stopped; requests under way finished first")


def _until_stopped(started: str) -> None:
    """Say `started`, then wait for Ctrl-C or SIGTERM (cron and service managers stop with SIGTERM)."""
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = signal.signal(signal.SIGTERM, stop)
    terminal.say(started)
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
