"""The `agentlens` command: a thin layer over the Python API."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import schema
from ..core import nopandas
from ..present import terminal
from .common import CONFIG_OPTION, DB_OPTION, ENGINE_OPTION, Group, _open

# The commands of other modules (each module keeps its own click commands), imported when used (Group.lazy)
LAZY_COMMANDS = {
    "report": ".views:report", "lab": ".views:lab", "costs": ".costs:costs", "reprice": ".costs:reprice",
    "failures": ".failures:failures_cmd", "classify": ".failures:classify_cmd",
    "export-evals": ".failures:export_evals_cmd", "signals": ".metrics:signals_cmd", "rollup": ".metrics:rollup_cmd",
    "alerts": ".metrics:alerts_cmd", "collect": ".sources:collect", "serve": ".sources:serve",
    "store": ".store:store_cmd", "export": ".store:export_cmd", "spark": ".spark:spark_cmd",
    "runs": ".explore:runs_cmd", "trace": ".explore:trace_cmd", "session": ".explore:session_cmd",
    "compare": ".explore:compare_cmd", "quarantine": ".explore:quarantine_cmd", "index": ".explore:index_cmd",
}


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]}, lazy=LAZY_COMMANDS)
@click.version_option(package_name="agentlens")
@click.option("--wait", type=click.FloatRange(min=0), default=None, metavar="SECONDS", envvar="AGENTLENS_WAIT",
              help="How long to wait for a database another process holds without serving it "
                   "(default 60; $AGENTLENS_WAIT).")
@click.pass_context
def main(ctx: click.Context, wait: float | None) -> None:
    """Observability and cost analytics for AI agents, on DuckDB.

    Exit status: 0 done; 1 done, and something needs attention (an alert fires, a file failed to ingest);
    2 bad usage or input; 3 the database cannot be used now (missing, held by a process that does not
    serve it, unwritable, out of memory); 4 an internal error.
    """
    ctx.obj = {"wait": wait}


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@DB_OPTION
@CONFIG_OPTION
@click.option("--format", "input_format", default=None,
              help="Input format (default: sniffed): otlp, langfuse, langsmith, agent_runs.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on for inputs over 20 MB).")
@click.option("--source", default=None, metavar="NAME",
              help="Name of the source: its records are its own (run ids NAME:id), apart from another source's "
                   "with the same ids (default: the format's ids; a live table's name).")
def ingest(paths: tuple[str, ...], db: str | None, config: str | None, input_format: str | None,
           progress: bool | None, source: str | None) -> None:
    """Ingest trace files and folders (OTLP JSON, Langfuse and LangSmith exports, agent_runs
    CSV/JSONL/Parquet; .gz too) and live agent_runs tables (postgresql://user@host/db?table=agent_runs,
    read incrementally).

    Re-ingesting the same data adds nothing; a record that comes back changed replaces the stored one,
    whatever the order of the files; a file that grew is read from where it stopped. What cannot be read
    is quarantined with the reason. Exit status 1 when a file or table failed as a whole.
    """
    with _open(db, config) as lens:
        # pyarrow would import pandas on its first conversion (~0.2 s of a one-file ingest); a ClickHouse store
        # (chdb) needs pandas
        if _own_process and lens.clickhouse is None:
            nopandas.install()
        summary = lens.ingest(*paths, format=input_format, progress=progress, source=source)
    terminal.show(summary)
    if summary.count("failed"):
        sys.exit(1)


@main.command()
@DB_OPTION
@ENGINE_OPTION
def show(db: str | None) -> None:
    """What is in the database: runs, spans, time range, sources, models, features."""
    with _open(db, read_only=True) as lens:
        terminal.show(lens.overview())


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@DB_OPTION
@CONFIG_OPTION
def demo(paths: tuple[str, ...], db: str | None, config: str | None) -> None:
    """The main job: ingest PATHS (default: ./sample_traces) and report what is there."""
    from ..present import demo as demo_job

    paths = paths or ("sample_traces",)
    with _open(db, config) as lens:
        terminal.show(lens.ingest(*paths))
        for section in demo_job.SECTIONS:
            terminal.show(section(lens))
        terminal.say(f"\ndatabase: {lens.path}   (open it with agentlens.open({lens.path!r}))")


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--seed", default=42, show_default=True)
@click.option("--runs", default=120, show_default=True)
@click.option("--days", default=5, show_default=True)
def samples(out_dir: str, seed: int, runs: int, days: int) -> None:
    """Write the seeded sample traces of a support agent into OUT_DIR."""
    from .. import samples as gen

    manifest = gen.generate(Path(out_dir), seed=seed, runs=runs, days=days)
    terminal.show(manifest)


@main.command(name="schema")
@click.option("--markdown", is_flag=True, help="The README's column tables.")
def schema_cmd(markdown: bool) -> None:
    """Print the canonical schema (DDL, or the README's markdown tables)."""
    terminal.data(schema.markdown_tables() if markdown else schema.contract_ddl())


_own_process = False  # set by `run`: the command has the process to itself (not a test's CliRunner)


def run() -> None:
    """The `agentlens` console script: `main` in a process of its own, which a command may then shape to
    its needs (`ingest` keeps pandas out of it: core/nopandas.py)."""
    global _own_process
    _own_process = True
    main()


if __name__ == "__main__":
    run()
