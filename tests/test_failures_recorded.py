"""Failure modes on traces recorded by real instrumentation libraries (tests/recorder): the small
support agent on the real `openai` SDK, a local fake OpenAI server scripting each failure, spans
written by the official OTLP JSON file exporter. Recorded afresh in every run (so a new library
release is exercised), and from the committed golden recordings (so the rules stay tested if a
library changes). Labels come from the scenarios, never from the classifier."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import agentlens
from agentlens.core.config import Config
from agentlens.failures import evaluate

RECORDER = Path(__file__).parent / "recorder"
GOLDEN = Path(__file__).parent / "golden" / "otlp"
sys.path.insert(0, str(RECORDER))
from make_golden import KNOWN_MISSES, LIBRARIES  # noqa: E402
from scenarios import SCENARIOS, TOOL_NAMES  # noqa: E402

pytestmark = pytest.mark.slow

MODULES = {"openinference": "openinference.instrumentation.openai",
           "otel-v2": "opentelemetry.instrumentation.openai_v2",
           "openllmetry": "opentelemetry.instrumentation.openai"}
HEALTHY = {s.name for s in SCENARIOS if not s.modes}


def _modes_by_scenario(lens, labels: list[dict]) -> dict[str, list[str]]:
    got = {r["run_id"]: r["modes"] for r in lens.sql(
        "SELECT run_id, list(DISTINCT mode ORDER BY mode) AS modes FROM failures GROUP BY run_id").to_dicts()}
    return {lab["scenario"]: got.get(lab["run_id"], []) for lab in labels}


def _expected(lib: str) -> dict[str, list[str]]:
    misses = KNOWN_MISSES.get(lib, {})
    return {s.name: sorted(set(s.modes) - set(misses.get(s.name, []))) for s in SCENARIOS}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict[str, tuple[Path, list[dict]]]:
    out = {}
    d = tmp_path_factory.mktemp("recorded")
    for lib in LIBRARIES:
        if importlib.util.find_spec("openai") is None or importlib.util.find_spec(MODULES[lib].rsplit(".", 1)[0]) is None:
            continue
        trace, labels = d / f"{lib}.otlp.jsonl", d / f"{lib}.labels.jsonl"
        subprocess.run([sys.executable, str(RECORDER / "record.py"), lib, str(trace), str(labels)], check=True,
                       timeout=300)
        out[lib] = (trace, [json.loads(line) for line in labels.read_text().splitlines()])
    return out


@pytest.mark.parametrize("lib", LIBRARIES)
def test_fresh_recording_finds_every_labelled_mode(recorded, tmp_path, lib):
    if lib not in recorded:
        pytest.skip(f"{MODULES[lib]} is not installed")
    trace, labels = recorded[lib]
    with agentlens.open(tmp_path / "r.duckdb") as lens:
        summary = lens.ingest(trace)
        assert summary.runs == len(SCENARIOS) and not summary.quarantined
        got = _modes_by_scenario(lens, labels)
    assert got == _expected(lib)
    assert all(got[name] == [] for name in HEALTHY)  # no false alarm on healthy runs


def test_the_allowlist_recovers_unknown_tools_where_definitions_are_not_recorded(recorded, tmp_path):
    if "otel-v2" not in recorded:
        pytest.skip("opentelemetry-instrumentation-openai-v2 is not installed")
    trace, labels = recorded["otel-v2"]
    cfg = Config.from_dict({"policy": {"tool_allowlist": TOOL_NAMES}})
    with agentlens.open(tmp_path / "r.duckdb", cfg) as lens:
        lens.ingest(trace)
        got = _modes_by_scenario(lens, labels)
        text = lens.sql("SELECT explanation FROM failures WHERE mode = 'hallucinated_tool' ORDER BY 1").to_series()
    assert got["unknown_tool"] == ["hallucinated_tool"]
    assert got["schema_violation"] == []  # needs the declared schema, which is not recorded
    assert any("issue_store_credit" in t for t in text)


@pytest.mark.parametrize("lib", LIBRARIES)
def test_committed_recordings(tmp_path, lib):
    expected = json.loads((GOLDEN / f"recorded-{lib}.expected.json").read_text())
    with agentlens.open(tmp_path / "g.duckdb") as lens:
        lens.ingest(GOLDEN / f"recorded-{lib}.otlp.jsonl.gz")
        labels = [{"run_id": rid, **v} for rid, v in expected["failures"].items()]
        got = _modes_by_scenario(lens, labels)
        score = evaluate.score(lens, pl.DataFrame(labels).select("run_id", "modes"))
    misses = expected["known_misses"]
    assert got == {lab["scenario"]: sorted(set(lab["modes"]) - set(misses.get(lab["scenario"], [])))
                   for lab in labels}
    assert (score.filter(pl.col("mode") != "(healthy runs)")["false_positives"] == 0).all()
    assert score.filter(pl.col("mode") == "(healthy runs)")["false_positives"].item() == 0
