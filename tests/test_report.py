"""The standalone HTML report and the `report` / `lab` commands."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys

import pytest
from click.testing import CliRunner
from plotly.offline import get_plotlyjs
from viewdata import EVIL, EVIL_NAME, IMG, MANY_IDS, NESTED, SCRIPT, SVG, TOOL, build_template, copy_db

import agentlens
from agentlens.cli import main
from agentlens.cli.lab import LabError, lab_command
from agentlens.present import demo
from agentlens.present.report import SECTIONS, Section, build_report, pick_runs
from agentlens.store import DatabaseMissing


@pytest.fixture(scope="module")
def view_template(tmp_path_factory):
    return build_template(tmp_path_factory.mktemp("viewdata"))


@pytest.fixture
def vdb(view_template, tmp_path):
    return copy_db(view_template, tmp_path)


def scripts_of(page: str) -> list[str]:
    return re.findall(r"<script>(.*?)</script>", page, flags=re.S)


@pytest.mark.slow
def test_report_sections_and_trace_view(vdb):
    with agentlens.open(vdb, read_only=True) as lens:
        rep = build_report(lens, run_ids=[NESTED, EVIL])
    titles = [s.title for s in rep.sections]
    assert titles[:3] == ["What is broken", "Trace view", "What is in the database"] and "Runs to look at" in titles
    trace = rep.sections[titles.index("Trace view")]
    assert len(trace.figures) == 2
    page = rep.to_html()
    # every span of both runs has a details block, keyed by trace and row
    assert all(f"id='t0-span-{i}'" in page for i in range(6)) and "id='t1-span-2'" in page
    assert "data-trace-key='t0'" in page and "data-trace-key='t1'" in page
    assert "PaymentGatewayError" in page
    d = rep.to_dict()
    json.dumps(d)
    assert d["sections"][titles.index("Runs to look at")]["tables"]["latest error runs"][0]["run_id"] == MANY_IDS[24]


def test_report_escapes_untrusted_text_and_allows_only_its_own_scripts(vdb):
    with agentlens.open(vdb, read_only=True) as lens:
        rep = build_report(lens, run_ids=[EVIL])
    page = rep.to_html()
    figures = sum(len(s.figures) for s in rep.sections)
    body = page.replace(get_plotlyjs(), "")
    for raw in (SCRIPT, IMG, SVG, EVIL_NAME, "<script>window", "onerror=\"window", "<svg onload", "<b>get_order"):
        assert raw not in body, raw
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in body
    assert "[click me](javascript:window.__xss=3)" in body and "href='javascript" not in body
    # in the figures' JSON the labels are HTML-escaped (plotly shows them as the literal text), and
    # the JSON itself escapes <, > and & so that nothing in it can close the script element
    assert "\\u003cb\\u003eget_order" not in body and "\\u0026lt;b\\u0026gt;get_order" in body
    # the CSP lists exactly the page's inline scripts by hash: injected ones would not run
    csp = re.search(r"Content-Security-Policy' content=\"([^\"]+)\"", page).group(1)
    allowed = set(re.findall(r"'sha256-([^']+)'", csp))
    inline = scripts_of(page)
    assert figures >= 4 and len(inline) == figures + 2  # plotly.js' loader, one per figure, the click handler
    # ... and plotly.js itself, the inline script the loader adds once it is unpacked
    assert {base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in [*inline, get_plotlyjs()]} == allowed
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


def test_report_picks_runs_with_failure_evidence_else_the_latest_error(vdb):
    with agentlens.open(vdb) as lens:
        lens.con.execute("DELETE FROM failures")  # as if not classified: the latest error run
        assert pick_runs(lens, build_report(lens, sections=(), traces=1).options) == [MANY_IDS[24]]
        lens.con.execute("INSERT INTO failures (run_id, mode, span_id, severity, explanation, evidence) "
                         "VALUES (?, 'tool_error', ?, 'high', 'refund_order failed', '{}')", [NESTED, TOOL])
        rep = build_report(lens, traces=2)
        assert pick_runs(lens, rep.options) == [NESTED]
        assert "refund_order failed" in rep.to_html()
        # a critical failure comes before a run with more, milder ones; then runs with a trace to look at
        lens.con.execute("INSERT INTO failures (run_id, mode, span_id, severity, explanation, evidence) "
                         "VALUES (?, 'tool_error', ?, 'low', 'again', '{}'), (?, 'prompt_injection', NULL, 'critical', "
                         "'exfiltration', '{}')", [NESTED, TOOL, EVIL])
        rep = build_report(lens, traces=2)
        assert pick_runs(lens, rep.options) == [EVIL, NESTED]
        broken = rep.sections[0]
        assert broken.title == "What is broken" and "<a href='#t0'>run " + EVIL in str(broken.blocks[0])
        assert "id='t0'>Run " + EVIL in rep.to_html()


def test_report_window_and_bad_input(vdb):
    with agentlens.open(vdb, read_only=True) as lens:
        t0 = lens.sql("SELECT started_at AS t FROM runs WHERE run_id = ?", [MANY_IDS[0]])["t"][0]
        rep = build_report(lens, since=t0.isoformat())  # the 25 many runs, 7 of them errors (i % 4 == 0)
        overview = next(s for s in rep.sections if s.title == "Runs in this window")
        assert overview.facts["runs"] == 25 and overview.facts["runs with error status"] == 7
        # every table of the overview is of the window too
        assert overview.tables["runs by source"]["runs"].sum() == 25
        assert overview.tables["runs by feature"]["runs"].sum() == 25
        with pytest.raises(KeyError, match="no run 'nope'"):
            build_report(lens, run_ids=["nope"])
        empty = build_report(lens, since="2030-01-01")
        assert [(s.title, s.text) for s in empty.sections] == [
            ("What is broken", "No runs in this window."), ("Runs in this window", "No runs in this window.")]


def test_sections_are_a_list_of_functions(vdb):
    def custom(lens, opts):
        return Section("Custom <b>", "plain <i>text</i>", facts={"runs": 3})

    with agentlens.open(vdb, read_only=True) as lens:
        page = build_report(lens, sections=(custom, *SECTIONS[:1])).to_html()
    assert "<h2>Custom &lt;b&gt;</h2>" in page and "plain &lt;i&gt;text&lt;/i&gt;" in page


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_report_command(vdb, tmp_path):
    out = tmp_path / "out" / "r.html"
    r = run("report", "--db", str(vdb), "-o", str(out), "--run", EVIL, "--title", "incident 42")
    assert r.exit_code == 0, r.output
    assert str(out.resolve()) in r.output.replace("\n", "")
    page = out.read_text()
    assert "<title>incident 42</title>" in page and SCRIPT not in page.replace(get_plotlyjs(), "")
    r = run("report", "--db", str(vdb), "--run", "nope", "-o", str(out))
    assert r.exit_code == 2 and "no run 'nope'" in r.output
    r = run("report", "--db", str(vdb), "--since", "yesterday", "-o", str(out))
    assert r.exit_code == 2 and "'yesterday' is not a time" in r.output
    r = run("report", "--db", str(tmp_path / "missing.duckdb"), "-o", str(out))
    assert r.exit_code == 3 and "no such database" in r.output  # 3: the database cannot be used


def test_demo_writes_the_report_next_to_the_database(vdb):
    with agentlens.open(vdb) as lens:
        line = demo.SECTIONS[-1](lens)
    assert line.strip() == f"HTML report: {vdb.parent.resolve() / 'report.html'}"
    assert (vdb.parent / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_lab_command_line(vdb, tmp_path):
    nb = tmp_path / "nbs"
    nb.mkdir()
    cfg = tmp_path / "c.toml"
    cfg.write_text("")
    argv, env = lab_command(vdb, nb, cfg, port=8999, open_browser=False)
    assert argv[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={nb.resolve()}" in argv and "--ServerApp.ip=127.0.0.1" in argv
    assert "--ServerApp.port=8999" in argv and "--no-browser" in argv
    assert env["AGENTLENS_DB"] == str(vdb.resolve()) and env["AGENTLENS_CONFIG"] == str(cfg.resolve())
    with pytest.raises(DatabaseMissing, match="no such database"):
        lab_command(tmp_path / "nope.duckdb", nb)
    with pytest.raises(LabError, match="no such folder"):
        lab_command(vdb, tmp_path / "nope")
    r = run("lab", "--db", str(tmp_path / "nope.duckdb"), "--no-browser")
    assert r.exit_code == 3 and "no such database" in r.output  # 3: the database cannot be used


def test_lab_opens_the_checkouts_notebooks_from_anywhere(tmp_path, monkeypatch):
    from agentlens.cli.lab import find_notebooks
    from conftest import ROOT

    monkeypatch.chdir(tmp_path)  # no notebooks/ here: the checkout's
    assert find_notebooks() == (ROOT / "notebooks").resolve()
