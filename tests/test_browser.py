"""A real browser: headless Chromium (Debian's `chromium`, installed by .ci/run) driven by Playwright.

1. The HTML report: the charts and the trace views render without a console error, clicking a bar
   opens that span's details, and the malicious spans (the sample traces' and a hand-made one whose
   markup would set `window.__xss`) show as text and never run.
2. Notebook 1 in JupyterLab, started by `agentlens lab`: every cell runs, the plotly charts and the
   widgets (the trace view's waterfall and detail panel) render, and the sample run's markup shows
   as text; a click on a row of the run explorer's table opens that run's trace view below it, and a
   click on a bar of a waterfall (a plain plotly output, no FigureWidget) opens that span: both go
   back to Python through the click bridge (agentlens/widgets/clicks.py).

Screenshots go to artifacts/ (git-ignored; CI keeps the folder)."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import nbformat
import pytest
from viewdata import EVIL, EVIL_NAME, NESTED, SCRIPT, SVG, write_all

import agentlens
from agentlens.explore.trace import trace_layout
from agentlens.present.report import build_report
from conftest import ROOT, SAMPLES

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "artifacts"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium here (CI installs Debian's chromium in .ci/run)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), args=FLAGS,
            headless=True, viewport={"width": 1400, "height": 1000},
        )
        yield ctx
        ctx.close()


@pytest.fixture(scope="module")
def served_report(tmp_path_factory):
    """The report of the sample traces plus the hand-made runs, served over HTTP on 127.0.0.1.
    Trace views: the sample run with untrusted HTML, the hand-made malicious run, the nested run."""
    tmp = tmp_path_factory.mktemp("browser")
    write_all(tmp / "traces")
    with agentlens.open(tmp / "b.duckdb") as lens:
        lens.ingest(SAMPLES, tmp / "traces")
        sample_evil = lens.sql("SELECT run_id FROM runs WHERE source = 'otlp' AND input LIKE '%<script>alert(1)%'")
        assert sample_evil.height == 1, "the sample traces carry one OTLP run with untrusted HTML"
        rep = build_report(lens, run_ids=[sample_evil["run_id"][0], EVIL, NESTED], title="agentlens <i>report</i>")
        rep.save(tmp / "site" / "report.html")
    handler = functools.partial(_QuietHandler, directory=str(tmp / "site"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/report.html"
    server.shutdown()


def _centre(locator) -> tuple[float, float]:
    """Where to point the mouse at a bar: plotly's drag layer lies on top of the bars and takes the
    events, as it does for a person's mouse."""
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_report_renders_charts_and_traces_and_shows_malicious_text_as_text(browser_context, served_report):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser_context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(served_report, wait_until="load")
    page.wait_for_function("document.querySelectorAll('.plotly-graph-div .main-svg').length >= 3")
    page.screenshot(path=str(ARTIFACTS / "report-top.png"))

    # plotly drew every figure: one SVG per figure, bars in the trace views
    figures = page.locator(".plotly-graph-div").count()
    assert figures >= 3
    assert page.locator(".plotly-graph-div .main-svg").count() >= figures
    assert page.locator("[data-trace-key] g.trace.bars g.point").count() >= 4 + 3 + 6  # spans of the three runs
    assert page.title() == "agentlens <i>report</i>"  # the title is text too

    # the hand-made malicious run (trace t1): nothing ran, its markup is visible text
    assert page.evaluate("window.__xss === undefined")
    assert dialogs == []  # the sample run's alert(1) never fired
    summary = page.locator("section.al-trace .al-run").nth(1)
    assert SCRIPT in summary.inner_text()
    tool_row = page.locator("#t1-span-2")
    tool_row.locator(":scope > summary").click()
    text = tool_row.inner_text()
    assert EVIL_NAME in text and SVG in text and "[click me](javascript:window.__xss=3)" not in text
    llm_row = page.locator("#t1-span-1")
    llm_row.locator(":scope > summary").click()
    assert "[click me](javascript:window.__xss=3)" in llm_row.inner_text()
    assert page.locator("section.al-trace a").count() == 0  # no link was made from trace text
    assert page.evaluate("document.querySelectorAll('main img, main script, main iframe').length") == 0

    # the sample run's user message with <script>alert(1)</script>, <img onerror> and a markdown link
    sample_llm = page.locator("#t0-span-1")
    sample_llm.locator(":scope > summary").click()
    sample_text = sample_llm.inner_text()
    assert "<script>alert(1)</script>" in sample_text and "<img src=x onerror=alert(1)>" in sample_text
    assert "[my screenshot](https://files.example.com/s/8812.png)" in sample_text
    sample_llm.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "report-malicious-span.png"))

    # hovering the malicious tool bar shows its name as text in plotly's hover box
    evil_fig = page.locator("[data-trace-key='t1']")
    evil_fig.scroll_into_view_if_needed()
    page.mouse.move(*_centre(evil_fig.locator("g.trace.bars g.point path").last))
    page.wait_for_selector("[data-trace-key='t1'] .hoverlayer .hovertext", timeout=5000)
    assert "<b>get_order</b><img src=x" in evil_fig.locator(".hoverlayer").text_content()
    page.screenshot(path=str(ARTIFACTS / "report-hover.png"))

    # clicking a bar of the nested run opens that span's details (the failed tool, row 2)
    nested = page.locator("[data-trace-key='t2']")
    nested.scroll_into_view_if_needed()
    assert not page.locator("#t2-span-2").evaluate("d => d.open")
    # bar traces by kind in order of first appearance: agent, llm, tool, chain, retriever
    page.mouse.click(*_centre(nested.locator("g.trace.bars").nth(2).locator("g.point path").first))
    page.wait_for_function("document.getElementById('t2-span-2').open === true", timeout=5000)
    assert "PaymentGatewayError" in page.locator("#t2-span-2").inner_text()
    page.screenshot(path=str(ARTIFACTS / "report-trace-click.png"))
    page.screenshot(path=str(ARTIFACTS / "report-full.png"), full_page=True)

    assert page.evaluate("window.__xss === undefined") and dialogs == []
    assert problems == []
    page.close()


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory):
    """`agentlens lab` (the real command) on a copy of notebook 1 whose RUN_ID is the sample run with
    untrusted HTML, serving on a free port of 127.0.0.1."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    tmp = tmp_path_factory.mktemp("lab")
    db = tmp / "lab.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(SAMPLES)
        evil = lens.sql("SELECT run_id FROM runs WHERE source = 'otlp' AND input LIKE '%<script>alert(1)%'")["run_id"][0]
        layout = trace_layout(lens, evil)
        # the first span of the second kind in the waterfall (its bars are the second bar trace)
        kinds = list(dict.fromkeys(layout["kind"]))
        assert len(kinds) > 1 and layout["status"][0] == "ok"  # it opens on the root, no error to open on
        click_name = layout.filter(layout["kind"] == kinds[1])["name"][0]
    nb = nbformat.read(ROOT / "notebooks" / "01-incident-investigation.ipynb", as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source += f"\nRUN_ID = {evil!r}\n"
    nb.cells.append(nbformat.v4.new_code_cell('print("all cells ran")'))  # the test waits for its output
    (tmp / "notebooks").mkdir()
    # render every cell (no windowing), so that the test sees all outputs at once
    settings = tmp / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    nbformat.write(nb, tmp / "notebooks" / "incident.ipynb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "agentlens-browser-test"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from agentlens.cli import main; main()", "lab", "--db", str(db), "--dir", str(tmp / "notebooks"),
         "--no-browser", "--port", str(port), "--", f"--ServerApp.token={token}", "--LabApp.news_url=",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         f"--LabApp.user_settings_dir={tmp / 'settings'}", f"--LabApp.workspaces_dir={tmp / 'workspaces'}"],
        stdout=subprocess.DEVNULL, stderr=(tmp / "lab.log").open("w"), cwd=tmp, start_new_session=True)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"agentlens lab exited: {(tmp / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/lab/tree/incident.ipynb?token={token}", click_name
    finally:  # the lab and its kernels: the whole process group this test started
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_notebook_1_runs_in_jupyterlab_with_its_widgets(browser_context, lab_url):
    url, click_name = lab_url
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser_context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)  # the kernel is up
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator("li[data-command='runmenu:run-all']").click()
    page.wait_for_selector(".jp-OutputArea-output:has-text('all cells ran')", timeout=240_000)
    page.wait_for_timeout(2000)  # the last widgets draw
    notebook = page.locator(".jp-Notebook")
    assert notebook.locator("[data-mime-type='application/vnd.jupyter.stderr']").count() == 0, \
        notebook.locator("[data-mime-type='application/vnd.jupyter.stderr']").first.inner_text()
    # the charts (plotly outputs, in cells and inside the widgets) and the widgets rendered
    assert notebook.locator(".js-plotly-plot .main-svg").count() >= 4
    assert notebook.locator(".jupyter-widgets").count() > 20
    # the dashboard's chart spans the cell's width, not half of it
    dashboard_plot = notebook.locator(".widget-output .js-plotly-plot").first
    dashboard_plot.scroll_into_view_if_needed()
    cell_width = notebook.locator(".jp-OutputArea-output:has(.widget-output .js-plotly-plot)").first.bounding_box()
    plot_width = dashboard_plot.bounding_box()
    assert cell_width and plot_width and plot_width["width"] > 0.9 * cell_width["width"], (plot_width, cell_width)
    page.screenshot(path=str(ARTIFACTS / "lab-dashboard.png"))
    # a click on a point of the traffic panel (the dashboard's third line) lists that bucket's runs
    assert notebook.locator(".widget-html:has-text('runs started')").count() == 0
    points = dashboard_plot.locator("g.trace.scatter").nth(2).locator("g.points path.point")
    page.mouse.click(*_centre(points.nth(points.count() // 2)))
    page.wait_for_selector(".jp-Notebook .widget-html:has-text('runs started')", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "lab-dashboard-click.png"))
    # the trace view widget (the last widget output): its waterfall and its detail panel
    trace_view = notebook.locator(".jp-OutputArea-output .widget-vbox:has(.al-run)").last
    trace_view.scroll_into_view_if_needed()
    assert trace_view.locator(".main-svg").count() >= 1 and trace_view.locator(".al-span").count() == 1
    page.screenshot(path=str(ARTIFACTS / "lab-trace-view.png"))
    # the sample run's <script>alert(1)</script> and <img onerror> show as text, and never ran
    spans = notebook.locator(".al-span")
    assert any("<script>alert(1)</script>" in spans.nth(i).inner_text() for i in range(spans.count()))

    # a click on a bar of the waterfall opens that span in the detail panel
    detail = trace_view.locator(".al-span")
    assert not detail.locator("h4").inner_text().startswith(click_name)  # it opened on the root
    bar = trace_view.locator(".js-plotly-plot g.trace.bars").nth(1).locator("g.point path").first
    page.mouse.click(*_centre(bar))
    page.wait_for_function(
        "name => { const h = [...document.querySelectorAll('.widget-vbox .al-span h4')].pop();"
        " return h && h.textContent.startsWith(name); }", arg=click_name, timeout=15_000)
    page.wait_for_timeout(500)  # the waterfall redraws with the black outline on that bar
    trace_view.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "lab-trace-view-click.png"))

    # the run explorer (one HTML table): only the rows there are, a click on a row opens its trace
    # view below the table, that row marked
    explorer_table = notebook.locator("table.al-runs").nth(1)  # the dashboard's explorer is the first
    explorer_table.scroll_into_view_if_needed()
    rows = explorer_table.locator("tbody tr[data-al-click]")
    assert 0 < rows.count() <= 20
    box = explorer_table.bounding_box()
    assert box and box["height"] < 30 * (rows.count() + 2), box  # no blank rows reserved for a full page
    views = notebook.locator(".al-run").count()
    rows.nth(0).locator("td").nth(2).click()  # the run id cell of the first row
    page.wait_for_function(f"document.querySelectorAll('.jp-Notebook .al-run').length > {views}", timeout=30_000)
    assert explorer_table.locator("tr.al-selected").count() == 1
    page.wait_for_timeout(1000)
    explorer_table.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "lab-run-explorer-open.png"))
    # a header sorts (twice: flips)
    explorer_table.locator("th[data-al-click='sort:cost_usd']").click()
    page.wait_for_function("[...document.querySelectorAll('table.al-runs')][1]"
                           ".querySelector(\"th[data-al-click='sort:cost_usd']\").textContent.endsWith('▼')",
                           timeout=15_000)
    assert dialogs == [] and page.evaluate("window.__xss === undefined")
    page.close()
