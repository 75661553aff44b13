"""Refresh the committed recorded golden set: `python tests/recorder/make_golden.py`.

For each library, records every scenario (record.py) into
`tests/golden/otlp/recorded-LIBRARY.otlp.jsonl.gz` and writes `recorded-LIBRARY.expected.json`:
the runs with their status (for tests/test_golden.py) and, under `failures`, the labelled modes
of each run (for tests/test_failures_recorded.py). The labels come from the scenarios, never from
the classifier; `known_misses` lists what the library does not record enough to find.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOLDEN = HERE.parent / "golden" / "otlp"
LIBRARIES = ("openinference", "otel-v2", "openllmetry")
FAILED_RUNS = {"provider_down", "context_length", "step_cap"}  # scenarios whose run raises
# the official instrumentation does not record the tools offered to the model (gen_ai.tool.definitions):
# an unknown tool name is found only with [policy].tool_allowlist, a schema violation not at all
KNOWN_MISSES = {"otel-v2": {"unknown_tool": ["hallucinated_tool"], "schema_violation": ["hallucinated_tool"]}}
VERSIONS = {"openinference": "openinference-instrumentation-openai", "otel-v2": "opentelemetry-instrumentation-openai-v2",
            "openllmetry": "opentelemetry-instrumentation-openai"}


def scrub(data: bytes) -> bytes:
    """Replace this machine's paths in recorded stack traces with placeholders (the repo speaks
    only of itself)."""
    paths = sysconfig.get_paths()
    for path, name in sorted(((paths["purelib"], "<site-packages>"), (paths["platlib"], "<site-packages>"),
                              (paths["stdlib"], "<stdlib>"), (str(HERE.parents[1]), "<repo>")),
                             key=lambda p: -len(p[0])):
        data = data.replace(path.encode(), name.encode())
    return data


def main() -> None:
    from importlib.metadata import version

    GOLDEN.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for lib in LIBRARIES:
            out, labels = Path(tmp) / f"{lib}.jsonl", Path(tmp) / f"{lib}.labels.jsonl"
            subprocess.run([sys.executable, str(HERE / "record.py"), lib, str(out), str(labels)], check=True)
            rows = [json.loads(line) for line in labels.read_text().splitlines()]
            data = scrub(out.read_bytes())
            (GOLDEN / f"recorded-{lib}.otlp.jsonl.gz").write_bytes(gzip.compress(data, mtime=0))
            expected = {
                "about": f"Recorded by tests/recorder/record.py with {VERSIONS[lib]} {version(VERSIONS[lib])} "
                         f"and openai {version('openai')}: the support agent against the scripted fake OpenAI "
                         "server, one run per scenario. `failures` is each run's labelled modes (scenarios.py).",
                "runs": [{"run_id": r["run_id"], "status": "error" if r["scenario"] in FAILED_RUNS else "ok"}
                         for r in rows],
                "spans": [],
                "quarantine": [],
                "failures": {r["run_id"]: {"scenario": r["scenario"], "modes": r["modes"]} for r in rows},
                "known_misses": KNOWN_MISSES.get(lib, {}),
            }
            (GOLDEN / f"recorded-{lib}.expected.json").write_text(json.dumps(expected, indent=1) + "\n")
            print(f"{lib}: {len(rows)} runs, {len(data):,} bytes")


if __name__ == "__main__":
    main()
