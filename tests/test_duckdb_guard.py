"""A DuckDB 2.0.0 memory corruption that agentlens's SQL steers clear of (see sql.CRASH_NOTE).

A database holding the sample traces, the real traces and the Langfuse golden files before
`langfuse/blob-traces.csv`; ingesting that file adds one span to a stored run, which rebuilds the run. With
a constant `rowid >= floor` beside the rowid join filter in the run build (sql.BUILD_RUNS), that ingest
crashed the process (SIGSEGV) or failed its COMMIT ("UndoBuffer - don't know how to commit this type") in
6-22% of attempts; without the constant, 0 of 300. The attempts run in a child process, since a crash kills
it; 30 of them catch the old SQL with a probability of about 95%.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import agentlens
from conftest import SAMPLES

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).parent / "golden"
ATTEMPTS = 30

CHILD = r"""
import shutil, sys
import agentlens
state, file, attempts = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(attempts):
    db = state + ".try.duckdb"
    shutil.copy(state, db)
    with agentlens.open(db) as lens:
        before = lens.con.execute("SELECT count(*) FROM spans").fetchall()[0][0]
        lens.ingest(file, progress=False)
        after = lens.con.execute("SELECT count(*) FROM spans").fetchall()[0][0]
    assert after == before + 1, (i, before, after)
print("ok", attempts)
"""


def test_a_span_added_to_a_stored_run_after_many_files_does_not_corrupt_duckdb(tmp_path, real_traces):
    target = GOLDEN / "langfuse" / "blob-traces.csv"
    golden = sorted(p for p in GOLDEN.glob("*/*") if not p.name.endswith(".expected.json"))
    files = [SAMPLES, *sorted(real_traces.glob("*/*.json*")), *golden[:golden.index(target)]]
    state = tmp_path / "state.duckdb"
    with agentlens.open(state) as lens:
        for f in files:
            lens.ingest(f, progress=False)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(state), str(target), str(ATTEMPTS)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-3000:]}"
    assert proc.stdout.strip() == f"ok {ATTEMPTS}"
