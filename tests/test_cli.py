"""The CLI is a thin layer: check it end to end as a user runs it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from agentlens.cli import main
from conftest import doc, jsonl, span

NS = 1_795_000_000_000_000_000
T = "0af7651916cd43dd8448eb211c80319c"


def run(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_ingest_show_and_reingest(tmp_path):
    p = jsonl(tmp_path / "t.jsonl", doc(span(T, "00f067aa0ba902b7", None, "invoke_agent bot", NS, NS + 10**9,
                                             {"gen_ai.operation.name": "invoke_agent", "feature": "refund"})))
    db = str(tmp_path / "x.duckdb")
    r = run("ingest", str(p), "--db", db)
    assert r.exit_code == 0, r.output
    assert "files ingested: 1" in r.output and "spans added: 1" in r.output
    r = run("ingest", str(p), "--db", db)
    assert "files skipped (already ingested): 1" in r.output and "spans added: 0" in r.output
    r = run("show", "--db", db)
    assert r.exit_code == 0 and "runs: 1" in r.output and "refund" in r.output


def test_db_from_environment(tmp_path):
    p = jsonl(tmp_path / "t.jsonl", doc(span(T, "00f067aa0ba902b7", None, "x", NS, NS + 1)))
    env = {"AGENTLENS_DB": str(tmp_path / "env.duckdb")}
    assert run("ingest", str(p), env=env).exit_code == 0
    assert (tmp_path / "env.duckdb").exists()


def test_failed_file_exits_non_zero_with_the_reason(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello\n")
    r = run("ingest", str(p), "--db", str(tmp_path / "x.duckdb"))
    assert r.exit_code == 1 and "not a known trace format" in r.output


def test_missing_path_and_bad_format_are_clear_errors(tmp_path):
    r = run("ingest", str(tmp_path / "nope.jsonl"), "--db", str(tmp_path / "x.duckdb"))
    assert r.exit_code == 2 and "nope.jsonl: no such file or directory" in r.output
    p = jsonl(tmp_path / "t.jsonl", doc())
    r = run("ingest", str(p), "--format", "zipkin", "--db", str(tmp_path / "x.duckdb"))
    assert r.exit_code == 2 and "unknown format 'zipkin'" in r.output


def test_bad_config_is_a_clear_error(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[dimensions\n")
    p = jsonl(tmp_path / "t.jsonl", doc())
    r = run("ingest", str(p), "--config", str(cfg), "--db", str(tmp_path / "x.duckdb"))
    assert r.exit_code == 2 and "c.toml: not valid TOML" in r.output


def test_schema_command():
    r = run("schema")
    assert "CREATE TABLE runs" in r.output and "cached_input_tokens BIGINT" in r.output
    r = run("schema", "--markdown")
    assert "| `run_id` | VARCHAR |" in r.output


def test_untrusted_text_is_not_markup_in_terminal_output(tmp_path):
    name = "[bold red]x[/] <script>alert(1)</script>"
    p = jsonl(tmp_path / "t.jsonl", doc(span(T, "00f067aa0ba902b7", None, "n", NS, NS + 1, {"feature": name})))
    db = str(tmp_path / "x.duckdb")
    run("ingest", str(p), "--db", db)
    r = run("show", "--db", db)
    assert "[bold red]x[/]" in r.output  # shown as text, not interpreted as rich markup


@pytest.mark.slow
def test_demo_on_the_sample_traces(tmp_path):
    from conftest import SAMPLES

    r = run("demo", str(SAMPLES), "--db", str(tmp_path / "demo.duckdb"))
    assert r.exit_code == 0, r.output
    for text in ("files ingested: 3", "runs: 120", "spans: 418", "first run: 2026-11-10",
                 "LLM calls by model", "runs by feature", "order_status"):
        assert text in r.output
