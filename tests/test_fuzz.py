"""A short seeded run of the mutation fuzzer (bench/fuzz.py; its long run: `python bench/fuzz.py --cases
2000`): every input format, mutated by byte flips, truncation, values of another type, huge numbers and
strings, invalid UTF-8, deep nesting, repeated ids, parent cycles, a byte-order mark, a .gz cut short.
No traceback, no DuckDB internal error, every record stored or quarantined (with raw text, line and
reason) exactly once, whatever its neighbours."""

from __future__ import annotations

import random
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import fuzz


def test_the_seeds_cover_every_format():
    names = {p.name for p in fuzz.seeds(real=False)}
    assert {"agent_runs.csv", "query-v2.jsonl", "blob-observations_v2.jsonl", "bulk-export.parquet",
            "support-agent.genai.otlp.jsonl", "recorded-otel-v2.otlp.jsonl.gz"} <= names


@pytest.mark.parametrize("mutation", sorted(fuzz.MUTATIONS))
def test_each_mutation_changes_a_seed(mutation):
    data = fuzz.plain(ROOT / "tests" / "golden" / "otlp" / "traceloop-workflow.otlp.jsonl")
    assert fuzz.MUTATIONS[mutation](data, random.Random(3)) not in (None, data)


def test_a_broken_adapter_would_be_caught(tmp_path, monkeypatch):
    """The checks can fail: a record that vanishes breaks conservation."""
    from agentlens.adapters import langsmith
    data = fuzz.plain(ROOT / "tests" / "golden" / "langsmith" / "query-v2.jsonl")
    real_row = langsmith.run_row

    def lossy(run, config, filename):
        if run.get("run_type") == "LLM":
            raise langsmith.RecordError("missing_field", "lost")  # quarantined alone: fine ...
        return real_row(run, config, filename)

    monkeypatch.setattr(langsmith, "run_row", lossy)
    assert fuzz.check_case("ok", data, "runs.jsonl", tmp_path, fuzz.Config(), store=False) == []
    monkeypatch.setattr(langsmith.records, "dump", lambda v: None)  # ... but not without its raw text
    found = fuzz.check_case("raw", data, "runs2.jsonl", tmp_path, fuzz.Config(), store=False)
    assert [f.kind for f in found] == ["incomplete_quarantine"]


@pytest.mark.slow
def test_short_seeded_fuzz_run_finds_nothing():
    findings, _, _ = fuzz.run(40, seed=24, real=True, store_every=2)
    assert findings == [], "\n".join(f"[{f.kind}] {f.case}: {f.detail}" for f in findings[:10])


def test_very_short_seeded_fuzz_run_finds_nothing():
    findings, _, _ = fuzz.run(8, seed=7, real=False, store_every=4)
    assert findings == [], "\n".join(f"[{f.kind}] {f.case}: {f.detail}" for f in findings[:10])
