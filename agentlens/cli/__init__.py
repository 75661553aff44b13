"""The `agentlens` command: a thin layer over the Python API."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import duckdb

from .. import schema
from ..core.duck import out_of_memory
from ..ingest import IngestError
from ..present import demo as demo_job
from ..store import out_of_memory_advice
from ..store.db import StoreError
from .common import CONFIG_OPTION, DB_OPTION, EXIT_INTERNAL, DatabaseError, _open, err, out
from .costs import costs, reprice
from .failures import classify_cmd, export_evals_cmd, failures_cmd
from .metrics import alerts_cmd, rollup_cmd, signals_cmd
from .sources import collect, serve
from .views import lab, report


class _Group(click.Group):
    """Every command: known failures as one line with its exit status (see cli.common), never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit,
                KeyboardInterrupt):
            raise
        except duckdb.Error as e:  # any command on a database too large for the memory limit: say what to do
            if out_of_memory(e):
                raise DatabaseError(out_of_memory_advice(e)) from None
            _internal(e)
        except StoreError as e:
            raise DatabaseError(str(e)) from None
        except Exception as e:
            _internal(e)
        return None


def _internal(e: BaseException) -> None:
    if os.environ.get("AGENTLENS_DEBUG"):
        raise e
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    err.print(f"agentlens: internal error: {type(e).__name__}: {first} (AGENTLENS_DEBUG=1 shows the traceback; "
              "please report it)", markup=False, highlight=False, soft_wrap=True)
    sys.exit(EXIT_INTERNAL)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agentlens")
@click.option("--wait", type=click.FloatRange(min=0), default=None, metavar="SECONDS", envvar="AGENTLENS_WAIT",
              help="How long to wait for a database another process holds without serving it "
                   "(default 60; $AGENTLENS_WAIT).")
@click.pass_context
def main(ctx: click.Context, wait: float | None) -> None:
    """Observability and cost analytics for AI agents, on DuckDB.

    Exit status: 0 done; 1 done, and something needs attention (an alert fires, a file failed to ingest);
    2 bad usage or input; 3 the database cannot be used now (missing, held by a process that does not
    serve it, unwritable); 4 an internal error.
    """
    ctx.obj = {"wait": wait}


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@DB_OPTION
@CONFIG_OPTION
@click.option("--format", "fmt", default=None,
              help="Input format (default: sniffed): otlp, langfuse, langsmith, agent_runs.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on for inputs over 20 MB).")
def ingest(paths: tuple[str, ...], db: str | None, config: str | None, fmt: str | None,
           progress: bool | None) -> None:
    """Ingest trace files and folders (OTLP JSON, Langfuse and LangSmith exports, agent_runs
    CSV/JSONL/Parquet; .gz too) and live agent_runs tables (postgresql://user@host/db?table=agent_runs,
    read incrementally).

    Re-ingesting the same data adds nothing; what cannot be read is quarantined with the reason.
    Exit status 1 when a file or table failed as a whole.
    """
    with _open(db, config) as lens:
        try:
            summary = lens.ingest(*paths, format=fmt, progress=progress)
        except (IngestError, ValueError) as e:
            raise click.ClickException(str(e)) from None
    out.print(summary.result())
    if summary.count("failed"):
        sys.exit(1)


@main.command()
@DB_OPTION
def show(db: str | None) -> None:
    """What is in the database: runs, spans, time range, sources, models, features."""
    with _open(db, read_only=True) as lens:
        out.print(lens.overview())


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@DB_OPTION
@CONFIG_OPTION
def demo(paths: tuple[str, ...], db: str | None, config: str | None) -> None:
    """The main job: ingest PATHS (default: ./sample_traces) and report what is there."""
    paths = paths or ("sample_traces",)
    with _open(db, config) as lens:
        summary = lens.ingest(*paths)
        out.print(summary.result())
        for section in demo_job.SECTIONS:
            out.print(section(lens))
        out.print(f"\ndatabase: {lens.path}   (open it with agentlens.open({lens.path!r}))")


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--seed", default=42, show_default=True)
@click.option("--runs", default=120, show_default=True)
@click.option("--days", default=5, show_default=True)
def samples(out_dir: str, seed: int, runs: int, days: int) -> None:
    """Write the seeded sample traces of a support agent into OUT_DIR."""
    from .. import samples as gen

    manifest = gen.generate(Path(out_dir), seed=seed, runs=runs, days=days)
    out.print(manifest)


@main.command(name="schema")
@click.option("--markdown", is_flag=True, help="The column tables of docs/reference/schema.md.")
def schema_cmd(markdown: bool) -> None:
    """Print the canonical schema (DDL, or the markdown tables of the schema reference)."""
    click.echo(schema.markdown_tables() if markdown else schema.contract_ddl())


# Commands of other modules register here (each module keeps its own click commands).

COMMANDS: tuple[click.Command, ...] = (report, lab, costs, reprice, failures_cmd, classify_cmd, export_evals_cmd,
                                       signals_cmd, rollup_cmd, alerts_cmd, collect, serve)
for _command in COMMANDS:
    main.add_command(_command)


if __name__ == "__main__":
    main()
