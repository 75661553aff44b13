"""`agentlens failures`, `agentlens classify`, `agentlens export-evals`: thin commands over
agentlens.failures."""

from __future__ import annotations

import datetime as dt
import json
import sys

import click

from .. import failures as F
from ..core.config import Config, ConfigError
from ..failures.report import BY, FLEET_KINDS
from .common import CONFIG_OPTION, DB_OPTION, _open, err, out, since_option, until_option

MODE_CHOICES = click.Choice([*F.MODES, *FLEET_KINDS])


@click.command(name="failures")
@DB_OPTION
@CONFIG_OPTION
@since_option()
@until_option()
@click.option("--mode", "modes", multiple=True, type=MODE_CHOICES, help="Only this mode (repeatable).")
@click.option("--by", "by", default=None, type=click.Choice(list(BY)),
              help="Count per mode and this dimension.")
@click.option("--limit", default=10, show_default=True, help="Worst runs to list.")
@click.option("--format", "fmt", default="table", show_default=True, type=click.Choice(["table", "json", "csv"]),
              help="table: counts, worst runs and fleet incidents; json: the same as JSON; csv: one row per detection.")
def failures_cmd(db: str | None, config: str | None, since: dt.datetime | None, until: dt.datetime | None,
                 modes: tuple[str, ...], by: str | None, limit: int, fmt: str) -> None:
    """Failure modes found: counts per mode (and dimension), the worst runs with their explanations,
    fleet incidents (spend spikes, retry storms)."""
    with _open(db, config, read_only=True) as lens:
        try:
            if fmt == "csv":
                F.detections(lens, since, until, list(modes) or None, by).write_csv(sys.stdout)
                return
            rep = F.report(lens, since, until, list(modes) or None, by, limit)
        except (ValueError, ConfigError) as e:
            raise click.ClickException(str(e)) from None
    if fmt == "json":
        click.echo(json.dumps(rep.to_dict(), indent=2, default=str))
    else:
        out.print(rep)


@click.command(name="classify")
@DB_OPTION
@CONFIG_OPTION
@click.option("--show-policy", is_flag=True, help="Print the effective [policy] (defaults and config) and exit.")
def classify_cmd(db: str | None, config: str | None, show_policy: bool) -> None:
    """Re-classify every run under the current [policy], replacing earlier results (one transaction).

    Runs are classified when they are ingested; run this after changing the policy.
    """
    if show_policy:
        cfg = _config(config)
        try:
            policy = F.load_policy(cfg)
        except ConfigError as e:
            raise click.ClickException(str(e)) from None
        doc = {"policy_hash": policy.hash, "policy": policy.to_dict(),
               "from_config": sorted(k for k, v in policy.origin.items() if v == "config")}
        click.echo(json.dumps(doc, indent=2))
        return
    with _open(db, config) as lens:
        try:
            summary = F.classify(lens)
        except ConfigError as e:
            raise click.ClickException(str(e)) from None
    out.print(summary)


def _config(path: str | None) -> Config:
    try:
        return Config.load(path)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None


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
        try:
            n = F.export_evals(lens, output, list(modes) or None, since, min_severity, limit)
        except ValueError as e:
            raise click.ClickException(str(e)) from None
    err.print(f"{n:,} eval cases written to {output}")


COMMANDS: tuple[click.Command, ...] = (failures_cmd, classify_cmd, export_evals_cmd)
