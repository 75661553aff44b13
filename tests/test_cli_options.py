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
from agentlens.cli.common import Group

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
    every = group.every_command() if isinstance(group, Group) else group.commands  # the lazy ones too
    for name, cmd in sorted(every.items()):
        out.append((f"{prefix} {name}", cmd))
        if isinstance(cmd, click.Group):
            out += commands(cmd, f"{prefix} {name}")
    return out


def options(name: str) -> list[tuple[str, click.Command, click.Parameter]]:
    """The --NAME options of every command (`ingest --format` names the input's format: not an output one)."""
    found = [(path, cmd, p) for path, cmd in commands() for p in cmd.params
             if isinstance(p, click.Option) and f"--{name}" in p.opts and p.name != "input_format"]
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
    assert r.exit_code == 2 and "must be after" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("name", ["by", "where", "format"])
def test_every_by_where_and_format_option_takes_the_same_forms(name):
    found = options(name)
    assert found
    for path, cmd, param in found:
        if name == "by":  # comma-separated or repeated; checked by the library, a bad name a usage error
            assert convert(cmd, param, ("feature",)) == ("feature",), path
            assert convert(cmd, param, ("feature,feature", "feature")) == ("feature",), path
            with pytest.raises(click.BadParameter, match="nope"):
                convert(cmd, param, ("nope",))
        elif name == "where":
            assert convert(cmd, param, ("feature=refund", "status=error")) == {"feature": "refund", "status": "error"}
            for bad in ("feature", "prompt=x"):
                with pytest.raises(click.BadParameter):
                    convert(cmd, param, (bad,))
        else:
            for fmt in ("table", "json", "csv", "parquet"):
                assert convert(cmd, param, fmt) == fmt, path
            with pytest.raises(click.BadParameter):
                convert(cmd, param, "xml")
            assert any("--output" in p.opts for p in cmd.params), f"{path}: --format without -o/--output"


def test_no_command_writes_to_the_terminal_but_through_present_terminal():
    import ast

    from conftest import ROOT

    found = []
    for path in sorted((ROOT / "agentlens" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            text = ast.unparse(node) if isinstance(node, ast.Call) else ""
            if text.startswith(("print(", "click.echo(", "sys.stdout.write(", "sys.stderr.write(", "Console(")) \
                    or ".write_csv(" in text or ".write_json(" in text or ".write_parquet(" in text:
                found.append(f"{path.name}:{node.lineno}: {text[:60]}")
    assert not found, found


@pytest.fixture
def signals_db(tmp_path):
    db = tmp_path / "w.duckdb"
    runs = []
    for i in range(6):
        r = Run(i + 1, dt.datetime(2026, 3, 2, 10, i, tzinfo=dt.UTC), 1000 + i, feature=f"feature-{i % 2}")
        r.llm("gpt-4o-mini", 10, 100, 100, 10)
        runs.append(r)
    with agentlens.open(db) as lens:
        lens.ingest(write(tmp_path / "w.jsonl", runs))
    return str(db)


@pytest.mark.parametrize("columns", [60, 100, 150])
def test_terminal_output_honours_columns(signals_db, columns):
    r = CliRunner().invoke(main, ["signals", "--db", signals_db, "--by", "feature", "--every", "1h"],
                           env={"COLUMNS": str(columns)}, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert max(len(line) for line in lines) <= columns
    assert "feature-0" in r.output and "latency_p95_ms" in r.output
    if columns < 100:  # the wide signals tables are split by columns, their keys repeated
        assert "(continued, 2/" in r.output
        assert sum("feature-0" in line for line in lines) > 2


def test_wide_tables_are_not_cut_when_the_terminal_is_wide(signals_db):
    r = CliRunner().invoke(main, ["signals", "--db", signals_db, "--table", "llm"], env={"COLUMNS": "400"},
                           catch_exceptions=False)
    assert r.exit_code == 0 and "(continued" not in r.output
    assert max(len(line) for line in r.output.splitlines()) > 150  # one table as wide as its columns


def test_known_errors_are_one_line_and_no_command_shows_a_traceback(tmp_path, signals_db):
    runner = CliRunner()
    cases = [
        (["show", "--db", str(tmp_path / "no" / "such" / "dir" / "x.duckdb")], None),
        (["costs", "--db", signals_db, "--what-if-model", "no-such-model"], "no price for model"),
        (["report", "--db", signals_db, "--run", "nope", "-o", str(tmp_path / "r.html")], "no run 'nope'"),
        (["signals", "--db", signals_db, "--format", "parquet"], "needs -o FILE"),
        (["failures", "--db", signals_db, "--by", "feature,model"], "one dimension at a time"),
        (["alerts", "--db", signals_db, "--rules", str(tmp_path / "none.toml")], "rules file not found"),
    ]
    for args, message in cases:
        r = runner.invoke(main, args, catch_exceptions=False)
        assert r.exit_code != 0 and "Traceback" not in r.output, (args, r.output)
        error = [line for line in r.output.splitlines() if line.startswith("Error")]
        assert len(error) == 1, (args, r.output)
        assert message is None or message in r.output, (args, r.output)
