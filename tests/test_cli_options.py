"""Every `agentlens` command takes the same option vocabulary: --since / --until (and --at) the same time
forms, --every the same durations. The commands are found by walking the click group, not listed here,
so a new command with one of these options is checked too."""

from __future__ import annotations

import datetime as dt

import click
import pytest
from click.testing import CliRunner
from signals_data import Run, write

import agentlens
from agentlens.cli import main

TIMES = {
    "2026-11-10": dt.datetime(2026, 11, 10, tzinfo=dt.UTC),
    "2026-11-10T08:00:00Z": dt.datetime(2026, 11, 10, 8, tzinfo=dt.UTC),
    "2026-11-10T08:00+02:00": dt.datetime(2026, 11, 10, 6, tzinfo=dt.UTC),
    "2026-11-10 08:00": dt.datetime(2026, 11, 10, 8, tzinfo=dt.UTC),
}
RELATIVE = {"now": dt.timedelta(0), "24h": dt.timedelta(hours=24), "7d": dt.timedelta(days=7),
            "90m": dt.timedelta(minutes=90)}
DURATIONS = {"15m": dt.timedelta(minutes=15), "1h": dt.timedelta(hours=1), "1d": dt.timedelta(days=1),
             "1w": dt.timedelta(weeks=1), "90s": dt.timedelta(seconds=90)}


def commands(group: click.Group = main, prefix: str = "agentlens") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        out.append((f"{prefix} {name}", cmd))
        if isinstance(cmd, click.Group):
            out += commands(cmd, f"{prefix} {name}")
    return out


def options(name: str) -> list[tuple[str, click.Command, click.Parameter]]:
    found = [(path, cmd, p) for path, cmd in commands() for p in cmd.params
             if isinstance(p, click.Option) and f"--{name}" in p.opts]
    return found


def convert(cmd: click.Command, param: click.Parameter, value: str):
    ctx = click.Context(cmd, info_name=cmd.name)
    return param.process_value(ctx, value)


def test_the_options_are_where_they_should_be():
    names = {path for path, _, _ in options("since")}
    assert {"agentlens signals", "agentlens costs", "agentlens failures", "agentlens export-evals",
            "agentlens report"} <= names
    assert {path for path, _, _ in options("every")} >= {"agentlens signals", "agentlens rollup"}


@pytest.mark.parametrize("name", ["since", "until", "at"])
def test_every_time_option_takes_the_same_forms(name):
    found = options(name)
    assert found
    for path, cmd, param in found:
        for text, want in TIMES.items():
            assert convert(cmd, param, text) == want, (path, text)
        for text, ago in RELATIVE.items():
            got = convert(cmd, param, text)
            assert got.tzinfo is not None, (path, text)
            assert abs(dt.datetime.now(dt.UTC) - ago - got) < dt.timedelta(minutes=1), (path, text)
        for bad in ("yesterday", "2026-13-01", "24"):
            with pytest.raises(click.BadParameter, match="is not a time"):
                convert(cmd, param, bad)


def test_every_duration_option_takes_the_same_forms():
    for path, cmd, param in options("every"):
        for text, want in DURATIONS.items():
            assert convert(cmd, param, text) == want, (path, text)
        for bad in ("1x", "soon", "-1h"):
            with pytest.raises(click.BadParameter, match="is not a duration"):
                convert(cmd, param, bad)


def test_since_24h_works_for_signals_costs_and_failures(tmp_path):
    """The issue's example: `--since 24h` worked for signals only."""
    db = tmp_path / "t.duckdb"
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with agentlens.open(db) as lens:
        lens.ingest(write(tmp_path / "r.jsonl", [Run(1, now - dt.timedelta(hours=2), 100),
                                                 Run(2, now - dt.timedelta(days=3), 100)]))
    runner = CliRunner()
    for args in (["signals", "--format", "csv"], ["costs", "--by", "", "--format", "csv"],
                 ["failures", "--format", "json"]):
        r = runner.invoke(main, [*args, "--db", str(db), "--since", "24h"], catch_exceptions=False)
        assert r.exit_code == 0, (args, r.output)
        if args[0] in ("signals", "costs"):
            assert r.output.splitlines()[1].startswith("1,"), (args, r.output)  # one run in the last 24h
        r = runner.invoke(main, [*args, "--db", str(db), "--since", "yesterday"], catch_exceptions=False)
        assert r.exit_code == 2 and "'yesterday' is not a time" in r.output and "Traceback" not in r.output
    r = runner.invoke(main, ["costs", "--db", str(db), "--since", "now", "--until", "24h"], catch_exceptions=False)
    assert r.exit_code == 1 and "must be after" in r.output and "Traceback" not in r.output
