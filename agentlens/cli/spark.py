"""`agentlens spark ...`: Apache Spark (agentlens.scale.spark): a standalone cluster of this machine's own."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import click

from ..present import terminal


@click.group("spark")
def spark_cmd() -> None:
    """Apache Spark: a local standalone cluster (needs the spark extra and a Java runtime)."""


@spark_cmd.command("cluster")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Worker processes.")
@click.option("--cores", type=click.IntRange(min=1), default=1, show_default=True, help="Cores of each worker.")
@click.option("--memory", default="2g", show_default=True, help="Memory of each worker (Spark's notation: 2g, 512m).")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Where the processes keep their logs and work (default: a new temporary folder).")
@click.option("--ready-file", type=click.Path(dir_okay=False), default=None,
              help="Once the workers have registered, write {\"master\": URL, \"ui\": URL} here (for scripts).")
def cluster_cmd(workers: int, cores: int, memory: str, workdir: str | None, ready_file: str | None) -> None:
    """Run a standalone Spark cluster on 127.0.0.1 (a master and WORKERS workers) until interrupted.

    It prints the master's URL, for `--engine spark://...` and `agentlens spark ingest --master ...`.
    Ctrl-C (or SIGTERM) stops the master and the workers.
    """
    from ..scale.spark import LocalCluster

    started = time.monotonic()
    cluster = LocalCluster(workers=workers, cores=cores, memory=memory,
                           workdir=Path(workdir) if workdir else None)
    terminal.note(f"starting a Spark master and {workers} worker(s) on 127.0.0.1 ...")
    cluster.start()
    ui = f"http://127.0.0.1:{cluster.ui_port}"
    terminal.say(f"Spark cluster ready in {time.monotonic() - started:.0f} s: {cluster.master}   (web UI {ui}, "
                 f"logs in {cluster.workdir})")
    if ready_file:
        Path(ready_file).write_text(json.dumps({"master": cluster.master, "ui": ui}))

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in cluster.procs):
            time.sleep(1)
        terminal.note(f"a Spark process exited; stopping the cluster (logs in {cluster.workdir})")
    except KeyboardInterrupt:
        terminal.note("stopping the Spark cluster")
    finally:
        cluster.stop()
        if ready_file:
            Path(ready_file).unlink(missing_ok=True)
