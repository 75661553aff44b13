"""`agentlens failures`, `agentlens classify`, `agentlens export-evals`: thin commands over
agentlens.failures."""

from __future__ import annotations

import datetime as dt
import json

import click

from .. import failures as F
from ..core.config import Config
from ..failures.report import BY, FLEET_KINDS, check_by
from ..present import terminal
from .common import (
    CONFIG_OPTION,
    DB_OPTION,
    ENGINE_OPTION,
    _open,
    by_option,
    format_option,
    output_option,
    since_option,
    until_option,
)

MODE_CHOICES = click.Choice([*F.MODES, *FLEET_KINDS])


def _one_dimension(names: tuple[str, ...]) -> None:
    if len(names) > 1:
        raise ValueError(f"failures are counted by one dimension at a time, not {', '.join(names)}")
    for name in names:
        check_by(name)


@click.command(name="failures")
@DB_OPTION
@ENGINE_OPTION
@CONFIG_OPTION
@since_option()
@until_option()
@click.option("--mode", "modes", multiple=True, type=MODE_CHOICES, help="Only this mode (repeatable).")
@by_option(_one_dimension, metavar="DIM", help="Count per mode and this dimension: " + ", ".join(BY) + ".")
@click.option("--limit", default=10, show_default=True, help="Worst runs to list.")
@format_option("table: counts, worst runs and fleet incidents; json: the same as JSON; csv, parquet: one row "
               "per detection.")
@output_option()
def failures_cmd(db: str | None, config: str | None, since: dt.datetime | None, until: dt.datetime | None,
                 modes: tuple[str, ...], by_: tuple[str, ...], limit: int, fmt: str, output: str | None) -> None:
    """Failure modes found: counts per mode (and dimension), the worst runs with their explanations,
    fleet incidents (spend spikes, retry storms)."""
    by = by_[0] if by_ else None
    with _open(db, config, read_only=True) as lens:
        if fmt in ("csv", "parquet"):
            terminal.emit(F.detections(lens, since, until, list(modes) or None, by), fmt, output)
            return
        rep = F.report(lens, since, until, list(modes) or None, by, limit)
    if fmt == "table" and output is None and rep.counts.height == 0 and rep.fleet.height == 0:
        window = "".join(f", {k} {terminal.fmt_value(rep.facts[k])}" for k in ("since", "until") if k in rep.facts)
        terminal.say(f"no failures among {rep.facts.get('runs', 0):,} runs{window}"
                     + (f" (modes: {', '.join(modes)})" if modes else ""))
        return
    terminal.emit(rep, fmt, output)


@click.command(name="classify")
@DB_OPTION
@CONFIG_OPTION
@click.option("--show-policy", is_flag=True, help="Print the effective [policy] (defaults and config) and exit.")
def classify_cmd(db: str | None, config: str | None, show_policy: bool) -> None:
    """Re-classify every run under the current [policy], replacing earlier results (one transaction).

    Runs are classified when they are ingested; run this after changing the policy.
    """
    if show_policy:
        policy = F.load_policy(Config.load(config))
        doc = {"policy_hash": policy.hash, "policy": policy.to_dict(),
               "from_config": sorted(k for k, v in policy.origin.items() if v == "config")}
        terminal.data(json.dumps(doc, indent=2))
        return
    with _open(db, config, create=False) as lens:
        summary = F.classify(lens)
    terminal.show(summary)


@click.command(name="export-evals")
@DB_OPTION
@CONFIG_OPTION
@click.option("-o", "--output", "output", required=True, metavar="FILE", help="Cases file (JSON Lines); - for stdout.")
@click.option("--mode", "modes", multiple=True, type=MODE_CHOICES, help="Only runs with this mode (repeatable).")
@since_option()
@click.option("--min-severity", default=None, type=click.Choice(list(F.SEVERITIES)),
              help="Only runs with a failure at least this severe.")
@click.option("--limit", default=None, type=int, help="At most this many cases (oldest runs first).")
def export_evals_cmd(db: str | None, config: str | None, output: str, modes: tuple[str, ...], since: dt.datetime | None,
                     min_severity: str | None, limit: int | None) -> None:
    """Write the inputs, outputs and failure evidence of failing runs as eval cases (one JSON per line)."""
    with _open(db, config, read_only=True) as lens:
        n = F.export_evals(lens, output, list(modes) or None, since, min_severity, limit)
    terminal.note(f"{n:,} eval cases written to {output}")


COMMANDS: tuple[click.Command, ...] = (failures_cmd, classify_cmd, export_evals_cmd)
