"""The benchmark harness runs (its smallest size, once): a smoke test, no timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def test_bench_smoke(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((out / "smoke.json").read_text())
    assert results  # agentlens and both baselines were measured on the same file
    assert (out / "RESULTS-smoke.md").read_text().count("| **agentlens** |") >= 1
    # the query timings go through the library's own functions, each measured and shown
    sys.path.insert(0, str(ROOT / "bench"))
    import run

    queries = results["sizes"][0]["queries"]
    assert set(run.QUERY_LABELS) <= set(queries)
    assert all(queries[k]["median_s"] > 0 for k in run.QUERY_LABELS)
    md = (out / "RESULTS-smoke.md").read_text()
    assert all(f"| {label} |" in md for label in run.QUERY_LABELS.values())
    # the floors: the store floor wrote every span and run the ingest stored, the decode floor read every line
    size = results["sizes"][0]
    floors = size["floors"]
    assert floors["store"]["raw"][0]["rows"]["spans"] == size["spans"]
    assert floors["store"]["raw"][0]["rows"]["runs"] == size["runs"]
    otlp = ROOT / size["file"]  # relative to the checkout, or absolute (then the join keeps it)
    with open(otlp, "rb") as f:
        assert floors["decode"]["raw"][0]["docs"] == sum(1 for line in f if line.strip())
    assert 0 < floors["store"]["read_s"] < floors["store"]["wall_s"]["median"]
    assert 0 < floors["store"]["write_s"] <= floors["bound_s"]
    assert "## How close to the machine" in md


def test_a_failed_measurement_says_why(tmp_path):
    """A measurement that fails is reported with its reason (the child's last line of stderr), not only its
    exit code: the 1M-run ingest that ran out of disk at its commit was first shown as "failed (exit 1)"."""
    sys.path.insert(0, str(ROOT / "bench"))
    import run

    with pytest.raises(run.ChildFailed) as failed:
        run.run_child("agentlens", tmp_path / "x.duckdb", tmp_path / "missing.jsonl")
    message = str(failed.value)
    assert message.startswith("agentlens exited 1 after ")
    assert message.endswith("missing.jsonl: no such file or directory"), message


def test_the_bench_agents_fail_as_healthy_agents_do(tmp_path):
    """The generated workload is a healthy fleet's: the model only calls the tools it was offered, with
    arguments of their schemas' types (an earlier generator offered one tool of five and typed every
    argument as a string, so half the runs were hallucinated tool use and the failure report timed a
    1.5M-detection outlier); what fails is tool calls (~4%, with an exception event) and runs (~2%)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import gen

    import agentlens

    data = gen.generate(tmp_path / "data", 400, csv_too=False, quiet=True)["otlp"]
    lens = agentlens.open(tmp_path / "g.duckdb")
    lens.ingest(data, progress=False)
    modes = dict(lens.con.execute("SELECT mode, count(DISTINCT run_id) FROM failures GROUP BY mode").fetchall())
    offered = lens.con.execute("SELECT count(*) FROM spans WHERE kind = 'llm' AND tool_definitions IS NOT NULL"
                               ).fetchone()[0]
    lens.close()
    assert offered > 0  # the OpenInference half offers its tools: hallucinated tool use is judged
    assert "hallucinated_tool" not in modes
    assert {"tool_error", "silent_tool_failure"} <= set(modes)
    assert sum(modes.values()) < 0.4 * 400


def test_concurrency_bench_smoke(tmp_path):
    """bench/concurrency.py --smoke: every case runs (reads on an idle owner, on the read-only file, during an
    ingest and the SDK's stream; the receiver alone and with readers) and the report shows each; no timing
    asserted."""
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "concurrency.py"), "--smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((out / "concurrency-smoke.json").read_text())
    sys.path.insert(0, str(ROOT / "bench"))
    import concurrency

    for case in ("idle", "file", "writes"):
        (r,) = results["reads"][case]
        assert set(r["samples"]) == set(concurrency.READ_LABELS) and all(r["samples"].values()), case
    assert results["reads"]["writes"][0]["ingest_s"] > 0
    receiver = results["receiver"]
    assert [r["with_readers"] for r in receiver] == [False, True]
    assert all(r["acknowledged"] > 0 and r["stored"] == r["acknowledged"] for r in receiver)
    assert receiver[1]["cli_reads"] > 0 and receiver[1]["notebook_reads"] > 0
    md = (out / "CONCURRENCY-smoke.md").read_text()
    assert all(f"| {label} |" in md for label in concurrency.READ_LABELS.values())
    assert "## The receiver's throughput, with readers present" in md and "## Targets (issue 20)" in md


def test_search_bench_smoke(tmp_path):
    """bench/search.py on the sample traces copied twice: it runs, and the index, the scan of every run's
    words and the plain ILIKE scan agree where the query is one phrase."""
    import agentlens

    db = tmp_path / "samples.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(ROOT / "sample_traces")
    out = tmp_path / "search.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "search.py"), "--db", str(db), "--copies", "2",
                           "--repeat", "1", "--work", str(tmp_path), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    r = json.loads(out.read_text())
    assert r["runs"] == 240 and r["index_bytes"] > 0
    q = r["queries"]
    assert q["a common word"]["matches"] > 0 and q["a common word"]["matches"] <= q["a common word"]["baseline_matches"]
    # the samples hold this phrase (in one run's tool error, copied twice); gen.py's runs never do
    assert q["found nowhere"]["matches"] == q["found nowhere"]["baseline_matches"] == 2
