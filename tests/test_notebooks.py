"""Notebooks run top to bottom on the sample traces (outputs are cleared in git)."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT, SAMPLES

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_outputs_are_cleared_in_git(path):
    nb = json.loads(path.read_text())
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb["cells"] if c["cell_type"] == "code")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_on_the_sample_traces(tmp_path, path):
    if not any(SAMPLES.glob("*.jsonl")):
        pytest.skip("no sample traces")
    nb = nbformat.read(path, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source += f"\nDB = {str(tmp_path / 'nb.duckdb')!r}\nTRACES = {str(SAMPLES)!r}\n"
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(
        o.get("data", {}).get("text/html", "") + o.get("data", {}).get("text/plain", "") + o.get("text", "")
        for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    # nbclient raises on any cell error; check that the results rendered
    assert "ingest summary" in text and "agentlens: what is in the database" in text
    assert "shape:" in text or "<table" in text
