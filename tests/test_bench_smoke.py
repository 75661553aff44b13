"""The benchmark harness runs (its smallest size, once): a smoke test, no timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_bench_smoke(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((out / "smoke.json").read_text())
    assert results  # agentlens and both baselines were measured on the same file
    assert (out / "RESULTS-smoke.md").read_text().count("| **agentlens** |") >= 1
