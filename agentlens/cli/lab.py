"""`agentlens lab`: JupyterLab on the investigation notebooks, with the database passed through.

The notebooks read the database path from `$AGENTLENS_DB` (and the config from `$AGENTLENS_CONFIG`)
in their parameters cell, so opening any of them in the lab works on the database the command was
given; papermill overrides the same parameters when they run on a schedule.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..store import DatabaseMissing

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"  # the repository's, in a checkout (agentlens/cli/..)


class LabError(RuntimeError):
    pass


def find_notebooks(notebook_dir: str | Path | None = None) -> Path:
    """The folder to open: the one given, else ./notebooks, else the repository's notebooks/."""
    if notebook_dir is not None:
        p = Path(notebook_dir)
        if not p.is_dir():
            raise LabError(f"{p}: no such folder of notebooks")
        return p.resolve()
    for p in (Path.cwd() / "notebooks", NOTEBOOKS):
        if p.is_dir():
            return p.resolve()
    raise LabError("no notebooks/ folder here or in the agentlens checkout: give --dir")


def lab_command(db: str | Path, notebook_dir: str | Path | None = None, config: str | Path | None = None,
                port: int | None = None, open_browser: bool = True, ip: str = "127.0.0.1",
                extra: tuple[str, ...] = ()) -> tuple[list[str], dict[str, str]]:
    """The JupyterLab command line and environment: the lab serves the notebooks folder on `ip`
    (localhost by default) with `AGENTLENS_DB` (absolute) and `AGENTLENS_CONFIG` set."""
    folder = find_notebooks(notebook_dir)
    db_path = Path(db).resolve()
    if not db_path.exists():
        raise DatabaseMissing(f"{db}: no such database")
    env = dict(os.environ)
    env["AGENTLENS_DB"] = str(db_path)
    if config is not None:
        cfg = Path(config).resolve()
        if not cfg.is_file():
            raise LabError(f"{config}: config file not found")
        env["AGENTLENS_CONFIG"] = str(cfg)
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}", f"--ServerApp.ip={ip}"]
    if port is not None:
        argv.append(f"--ServerApp.port={int(port)}")
    if not open_browser:
        argv.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI run as root; Jupyter refuses otherwise
        argv.append("--allow-root")
    argv += list(extra)
    return argv, env
