"""Notebooks run top to bottom on the sample traces (outputs are cleared in git)."""

from __future__ import annotations

import json

import nbformat
import papermill
import polars as pl
import pytest

import agentlens
from agentlens.metrics import costs
from conftest import ROOT, SAMPLES

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_outputs_are_cleared_in_git(path):
    nb = json.loads(path.read_text())
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb["cells"] if c["cell_type"] == "code")


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory):
    """The sample traces ingested once; the investigation notebooks open it read-only."""
    if not any(SAMPLES.glob("*.jsonl")):
        pytest.skip("no sample traces")
    path = tmp_path_factory.mktemp("nbdb") / "samples.duckdb"
    with agentlens.open(path) as lens:
        lens.ingest(SAMPLES)
    return path


def sample_malicious_run(db) -> str:
    with agentlens.open(db, read_only=True) as lens:
        return lens.sql("SELECT run_id FROM runs WHERE source = 'otlp' AND input LIKE '%<script>alert(1)%'")["run_id"][0]


def outputs(nb, *mimes: str) -> str:
    return "\n".join(
        str(o.get("data", {}).get(m, "")) for c in nb.cells if c.cell_type == "code" for o in c.outputs for m in mimes
    ) + "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


PLOTLY = "application/vnd.plotly.v1+json"
# a saved run must stay light enough to attach to a message: one plotly.js (a FigureWidget's ES
# module, ~5 MB) coming back would break this bound; on the samples they weigh 0.1-0.7 MB
MAX_SAVED_BYTES = 2_000_000
# (in cells, in widgets) at least: the figures each notebook draws
FIGURES = {"01-": (2, 2), "02-": (2, 1), "03-": (2, 0), "04-": (2, 0), "explore": (0, 0)}


def widget_states(nb) -> dict:
    return nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})


def plotly_figures(nb) -> tuple[list[dict], list[dict]]:
    """The plotly figures of a saved notebook: those of the cells' outputs, and those drawn inside
    widgets (the widgets' `Output`s, saved in the notebook's widget state)."""
    cells = [o["data"][PLOTLY] for c in nb.cells if c.cell_type == "code" for o in c.outputs
             if PLOTLY in o.get("data", {})]
    widgets = [o["data"][PLOTLY] for m in widget_states(nb).values() if m["model_name"] == "OutputModel"
               for o in m["state"].get("outputs", []) if PLOTLY in o.get("data", {})]
    return cells, widgets


def execute(path, tmp_path, **parameters):
    """Run a notebook as a scheduler would: papermill, with parameters, in a scratch folder."""
    out = tmp_path / f"out-{path.name}"
    papermill.execute_notebook(str(path), str(out), parameters=parameters, cwd=str(tmp_path), kernel_name="python3",
                               progress_bar=False, execution_timeout=300)
    return nbformat.read(out, as_version=4)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_on_the_sample_traces(tmp_path, path, sample_db):
    evil = sample_malicious_run(sample_db)
    params = {"DB": str(sample_db)}
    if path.name == "explore.ipynb":
        params = {"DB": str(tmp_path / "nb.duckdb"), "TRACES": str(SAMPLES)}
    elif path.name.startswith("01-"):
        params |= {"RUN_ID": evil, "REPORT": "incident.html"}
    nb = execute(path, tmp_path, **params)  # papermill raises on any cell error
    # light enough to attach to a message: no widget carries plotly.js, the figures are plotly JSON
    saved = (tmp_path / f"out-{path.name}").stat().st_size
    assert saved < MAX_SAVED_BYTES, f"{path.name}: the papermill output weighs {saved:,} bytes"
    heavy = {m["model_name"]: k for m in widget_states(nb).values() for k, v in m["state"].items()
             if len(json.dumps(v)) > 500_000}
    assert not heavy, f"{path.name}: widget state that carries a bundle: {heavy}"
    in_cells, in_widgets = plotly_figures(nb)
    want = next(v for k, v in FIGURES.items() if path.name.startswith(k))
    assert len(in_cells) >= want[0] and len(in_widgets) >= want[1], (path.name, len(in_cells), len(in_widgets))
    assert all(f["data"] and "layout" in f for f in in_cells + in_widgets)
    if path.name.startswith("01-"):  # the dashboard's signals and the trace view's waterfall, in widgets
        titles = [f["layout"].get("title", {}).get("text") or "" for f in in_widgets]
        assert any(t.startswith("golden signals") for t in titles) and any(evil in t for t in titles), titles
    html = outputs(nb, "text/html")
    text = outputs(nb, "text/html", "text/plain")
    # trace text reaches HTML outputs only escaped (the sample run's user message carries markup)
    assert "<script>alert(1)</script>" not in html and "<img src=x onerror=alert(1)>" not in html
    widget_html = json.dumps(widget_states(nb))  # the widgets' HTML (the explorer's table, the trace view)
    assert "<script>alert(1)</script>" not in widget_html and "<img src=x onerror=alert(1)>" not in widget_html
    if path.name == "explore.ipynb":
        assert "ingest summary" in text and "agentlens: what is in the database" in text
        assert "shape:" in text or "<table" in text
    elif path.name.startswith("01-"):
        assert "spike: " in text and "failure modes" in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the malicious run's messages, as text
        page = (tmp_path / "incident.html").read_text()
        assert page.startswith("<!DOCTYPE html>") and evil in page
    elif path.name.startswith("02-"):
        with agentlens.open(sample_db, read_only=True) as lens:
            expected = costs.by(lens, by=["feature", "customer_id"], period="month")
        exported = pl.read_parquet(tmp_path / "cost-exports" / "cost_by_feature_customer_id_per_month.parquet")
        assert exported.equals(expected)
        assert pl.read_csv(tmp_path / "cost-exports" / "cost_by_feature_customer_id_per_month.csv").height == expected.height
        assert "total cost exported" in text
    elif path.name.startswith("03-"):
        with agentlens.open(sample_db, read_only=True) as lens:
            failing = lens.sql("SELECT count(DISTINCT run_id) AS n FROM failures")["n"][0]
        lines = (tmp_path / "eval-cases.jsonl").read_text().splitlines()
        assert failing > 0 and len(lines) == failing and f"{failing:,} eval cases written" in text
        assert all(json.loads(line)["failures"] for line in lines)
    elif path.name.startswith("04-"):
        assert "budget used" in text and "week: 2026-11-07 22:23 to 2026-11-14 22:23 UTC" in text
        assert (tmp_path / "weekly-report.html").read_text().startswith("<!DOCTYPE html>")


def test_notebooks_take_their_parameters_from_a_tagged_cell():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, path.name
        assert "DB = " in tagged[0].source, path.name
        # `agentlens lab --db prod.duckdb` passes the database through the environment
        assert 'os.environ.get("AGENTLENS_DB"' in tagged[0].source, path.name


@pytest.mark.slow
def test_explore_opens_the_database_agentlens_lab_gives_and_ingests_nothing_into_it(tmp_path, sample_db, monkeypatch):
    import shutil

    db = tmp_path / "prod.duckdb"
    shutil.copy(sample_db, db)
    monkeypatch.setenv("AGENTLENS_DB", str(db))
    before = db.stat().st_mtime_ns
    nb = execute(ROOT / "notebooks" / "explore.ipynb", tmp_path)
    text = outputs(nb, "text/html", "text/plain")
    assert "ingest summary" not in text and str(db) in text
    assert db.stat().st_mtime_ns == before  # opened read-only


@pytest.mark.slow
def test_incident_notebook_says_when_there_is_no_spike_and_opens_a_run_with_a_trace(tmp_path, sample_db):
    import shutil

    db = tmp_path / "healthy.duckdb"
    shutil.copy(sample_db, db)
    with agentlens.open(db) as lens:  # as if nothing had failed
        lens.con.execute("DELETE FROM failures")
        lens.con.execute("UPDATE runs SET status = 'ok', error_count = 0")
        lens.con.execute("UPDATE spans SET status = 'ok', error_type = NULL, status_message = NULL")
    nb = execute(ROOT / "notebooks" / "01-incident-investigation.ipynb", tmp_path, DB=str(db))
    text = outputs(nb, "text/html", "text/plain")
    assert "no spike: no run failed and no failure mode was found" in text and "spike: 20" not in text


@pytest.mark.slow
@pytest.mark.real_traces
def test_incident_notebook_stays_light_on_the_real_traces(tmp_path, real_traces):
    """The real traces' few runs span months: hourly buckets over them must not make a chart of every
    empty hour (it weighed 48 MB)."""
    db = tmp_path / "real.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(real_traces)
        first, last = lens.sql("SELECT min(started_at) AS a, max(started_at) AS b FROM runs").row(0)
    assert (last - first).days > 30, "the real traces span months (else this test proves nothing)"
    path = ROOT / "notebooks" / "01-incident-investigation.ipynb"
    nb = execute(path, tmp_path, DB=str(db))
    saved = (tmp_path / f"out-{path.name}").stat().st_size
    assert saved < MAX_SAVED_BYTES, f"the papermill output weighs {saved:,} bytes"
    in_cells, in_widgets = plotly_figures(nb)
    assert len(in_cells) >= 2 and len(in_widgets) >= 2
