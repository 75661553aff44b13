"""`agentlens spark ...`: Apache Spark (agentlens.scale.spark): a standalone cluster of this machine's own, and the\ndistributed ingest into a Parquet lake (agentlens.sources.spark_ingest)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import click

from ..present import terminal
from .common import CONFIG_OPTION, UserError


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


@spark_cmd.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--lake", "lake", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="The Parquet lake to write (docs/scale-out.md, Parquet lake).")
@click.option("--master", envvar="AGENTLENS_SPARK_MASTER", default="local[2]", show_default=True, metavar="URL",
              help="The Spark master: spark://HOST:PORT, local[N] ($AGENTLENS_SPARK_MASTER).")
@CONFIG_OPTION
@click.option("--format", "input_format", default=None,
              help="Input format (default: sniffed): otlp, langfuse, langsmith, agent_runs.")
@click.option("--tasks", type=click.IntRange(min=1), default=None,
              help="Build tasks (default: twice the cluster's cores).")
@click.option("--part-mb", type=click.IntRange(min=1), default=64, show_default=True,
              help="JSON Lines files are read in parts of about this many MB, one task each.")
@click.option("--replace", is_flag=True, help="Replace the lake in DIR (a distributed ingest writes a lake whole).")
def ingest_cmd(paths: tuple[str, ...], lake: str, master: str, config: str | None, input_format: str | None,
               tasks: int | None, part_mb: int, replace: bool) -> None:
    """Ingest TRACE_FILES on a Spark cluster into a Parquet lake in DIR.

    Each run is built by agentlens's own pipeline (adapters, run building, pricing, failure modes) inside a task,
    all its spans together even when they are in several files. The trace files and DIR must be at the same
    paths on every worker (one machine, or a shared file system), with agentlens installed there.
    """
    from ..core.config import Config
    from ..scale.lake import MANIFEST, LakeError
    from ..scale.spark import session
    from ..sources.spark_ingest import SparkIngestError, ingest

    if (Path(lake) / MANIFEST).exists() and not replace:
        raise UserError(f"{lake} holds a lake already: --replace rewrites it from these files "
                        "(a distributed ingest does not add to a lake)")
    cfg = Config.load(config)
    terminal.note(f"starting a Spark session on {master} ...")
    spark = session(master, app="agentlens-ingest")
    try:
        done = ingest(spark, paths, lake, cfg, input_format, tasks, part_mb << 20, replace)
    except (SparkIngestError, LakeError) as e:
        raise UserError(str(e)) from None
    finally:
        spark.stop()
    for line in done.lines():
        terminal.say(line)
