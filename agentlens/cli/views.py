"""`agentlens report` and `agentlens lab`: thin commands over agentlens.report and agentlens.lab."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import click

from ..present import terminal
from ..store import default_db_path
from .common import CONFIG_OPTION, DB_OPTION, _open, since_option, until_option


@click.command()
@DB_OPTION
@CONFIG_OPTION
@click.option("-o", "--output", default="report.html", show_default=True, type=click.Path(dir_okay=False),
              help="Where to write the HTML file.")
@since_option("Only runs started")
@until_option("Only runs started")
@click.option("--run", "run_ids", multiple=True, metavar="RUN_ID",
              help="Show this run's trace view (repeatable; default: the worst runs, by their most severe "
                   "failure, else the latest errors).")
@click.option("--traces", default=3, show_default=True, help="How many of the worst runs to show as traces when --run is not given.")
@click.option("--title", default=None, help="Title of the report.")
def report(db: str | None, config: str | None, output: str, since: dt.datetime | None, until: dt.datetime | None,
           run_ids: tuple[str, ...], traces: int, title: str | None) -> None:
    """Write a standalone HTML report (signals, costs, failures, runs to look at, trace views).

    One file that opens offline: plotly is inlined, and every piece of trace text is escaped.
    """
    from ..present.report import build_report

    with _open(db, config, read_only=True) as lens:
        written = build_report(lens, since=since, until=until, run_ids=run_ids, title=title, traces=traces).save(output)
    terminal.say(f"report: {written.resolve()}")


@click.command()
@DB_OPTION
@CONFIG_OPTION
@click.option("--dir", "notebook_dir", default=None, type=click.Path(file_okay=False),
              help="Folder of notebooks (default: ./notebooks, else the agentlens checkout's).")
@click.option("--port", default=None, type=int, help="Port (default: JupyterLab's, 8888 or the next free one).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser (headless use; the URL is printed).")
@click.argument("jupyter_args", nargs=-1, type=click.UNPROCESSED)
def lab(db: str | None, config: str | None, notebook_dir: str | None, port: int | None, no_browser: bool,
        jupyter_args: tuple[str, ...]) -> None:
    """Open JupyterLab on the investigation notebooks, with this database.

    The notebooks read the database path from $AGENTLENS_DB (and the config from $AGENTLENS_CONFIG),
    which this command sets. JupyterLab listens on 127.0.0.1 only. Arguments after `--` go to
    JupyterLab as they are (`agentlens lab -- --ServerApp.token=...`).
    """
    from .lab import lab_command

    argv, env = lab_command(db or default_db_path(), notebook_dir, config, port, open_browser=not no_browser,
                            extra=jupyter_args)
    terminal.say(f"JupyterLab on {argv[3].split('=', 1)[1]} with AGENTLENS_DB={env['AGENTLENS_DB']}")
    sys.stdout.flush()
    if os.name == "posix":  # become JupyterLab: Ctrl-C and signals reach it (and its kernels) directly
        os.execve(argv[0], argv, env)
    try:
        sys.exit(subprocess.call(argv, env=env))
    except KeyboardInterrupt:
        sys.exit(130)
