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
    html = outputs(nb, "text/html")
    text = outputs(nb, "text/html", "text/plain")
    # trace text reaches HTML outputs only escaped (the sample run's user message carries markup)
    assert "<script>alert(1)</script>" not in html and "<img src=x onerror=alert(1)>" not in html
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
