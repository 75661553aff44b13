"""pandas stays out of the ingest worker processes (pyarrow imports it on its first conversion when it is
installed: ~0.8 s per worker), while the workers read real OTLP."""

from __future__ import annotations

import functools
import importlib.util
import io
import sys
from pathlib import Path

import pytest

from agentlens.adapters import otlp, parallel
from agentlens.adapters.base import Bad, Batch
from agentlens.core.config import Config

HERE = Path(__file__).resolve().parent
GENAI = HERE.parent / "sample_traces" / "support-agent.genai.otlp.jsonl"


def probe(block: bytes, first_line: int, final: bool, *, filename: str) -> list[Batch]:
    """The OTLP adapter's block function, run in a worker, then what that worker has imported."""
    batches = otlp._block(block, first_line, final, filename=filename, config=Config())
    seen = "pandas" in sys.modules
    return [*batches, Batch(bad=[Bad("probe", f"pandas imported: {seen}", "")])]


def test_ingest_workers_do_not_import_pandas(monkeypatch):
    if importlib.util.find_spec("pandas") is None:  # here, not at import: the workers import this module
        pytest.skip("pandas is not installed here")
    data = GENAI.read_bytes()
    monkeypatch.setattr(parallel, "BLOCK_BYTES", 16 * 1024)  # several blocks ...
    monkeypatch.setattr(parallel, "IN_PROCESS_BLOCKS", 0)  # ... all read by workers but the first
    monkeypatch.setenv("AGENTLENS_WORKERS", "2")
    monkeypatch.setenv("PYTHONPATH", str(HERE))  # the workers import `probe` from this module
    stream = io.BytesIO(data)
    first = stream.readline()
    batches = list(parallel.read_lines(first, stream, functools.partial(probe, filename=GENAI.name)))
    probes = [b.reason for x in batches for b in x.bad if b.kind == "probe"]
    spans = sum(x.spans.num_rows for x in batches if x.spans is not None)
    assert len(probes) > 2 and spans > 200  # the workers read the file
    # the first block is read in this process (which may have pandas); every worker's block has none
    assert probes[1:] == ["pandas imported: False"] * (len(probes) - 1)


def test_the_ingest_command_does_not_import_pandas(tmp_path):
    """`agentlens ingest FILE` reads a small file in its own process: pandas stays out of it too (0.2 s of a
    one-file command), and the file is ingested all the same."""
    if importlib.util.find_spec("pandas") is None:
        pytest.skip("pandas is not installed here")
    import subprocess

    code = ("import sys\nfrom agentlens.cli import run\n"  # the console script's entry point
            "try:\n    run()\nexcept SystemExit as e:\n    code = e.code\n"
            "print('pandas imported:', 'pandas' in sys.modules, 'exit', code)\n")
    db = tmp_path / "t.duckdb"
    out = subprocess.run([sys.executable, "-c", code, "ingest", "--db", str(db), str(GENAI)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert "pandas imported: False exit 0" in out.stdout, out.stdout + out.stderr
    assert "runs" in out.stdout
