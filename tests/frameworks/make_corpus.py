"""Refresh the committed framework corpus: `python tests/frameworks/make_corpus.py [FRAMEWORK ...]`.

For each framework, records every case it plays (record_frameworks.py, one process per framework) into
`tests/frameworks/recordings/FRAMEWORK.otlp.jsonl.gz` (machine paths scrubbed as tests/recorder/make_golden.py
does) and writes `FRAMEWORK.labels.json`: the library versions, how the agent is configured, and one row
per run with its labels (corpus.Case.label: must, must_not, may, gaps, status) and what the recording saw.
The labels come from corpus.py, never from a classifier. Refuses to write a recording whose runs did not
play as scripted (model requests made != the script's steps, or a run that raised where its label says
ok, or the reverse).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
GOLDEN = HERE / "recordings"

from corpus import FRAMEWORK_SETUP, FRAMEWORKS  # noqa: E402
from make_golden import scrub  # noqa: E402  (tests/recorder)

PACKAGES = {
    "langgraph": ("langgraph", "langchain", "langchain-core", "langchain-openai", "openinference-instrumentation-langchain"),
    "openai-agents": ("openai-agents", "openinference-instrumentation-openai-agents"),
    "pydantic-ai": ("pydantic-ai-slim",),
}
SHARED = ("openai", "opentelemetry-sdk", "opentelemetry-exporter-otlp-json-file")


def played_as_scripted(rows: list[dict]) -> list[str]:
    """The runs whose recording does not match their case (empty when every run played as written)."""
    bad = []
    for r in rows:
        seen = r["recorded"]
        if seen["model_requests"] != seen["script_steps"]:
            bad.append(f"{r['scenario']}: {seen['model_requests']} model requests, the script has {seen['script_steps']}")
        if (seen["raised"] is not None) != (r["status"] == "error"):
            bad.append(f"{r['scenario']}: labelled {r['status']}, the run raised {seen['raised']!r}")
    return bad


def main() -> None:
    from importlib.metadata import version

    GOLDEN.mkdir(parents=True, exist_ok=True)
    todo = sys.argv[1:] or list(FRAMEWORKS)
    with tempfile.TemporaryDirectory() as tmp:
        for fw in todo:
            out, labels = Path(tmp) / f"{fw}.jsonl", Path(tmp) / f"{fw}.labels.jsonl"
            subprocess.run([sys.executable, str(HERE / "record_frameworks.py"), fw, str(out), str(labels)], check=True)
            rows = [json.loads(line) for line in labels.read_text().splitlines()]
            bad = played_as_scripted(rows)
            if bad:
                raise SystemExit(f"{fw}: not written, runs did not play as scripted:\n  " + "\n  ".join(bad))
            for r in rows:
                r["recorded"].pop("seconds")  # varies run to run
                r["recorded"]["raised"] = r["recorded"]["raised"] and scrub(r["recorded"]["raised"].encode()).decode()
            data = scrub(out.read_bytes())
            (GOLDEN / f"{fw}.otlp.jsonl.gz").write_bytes(gzip.compress(data, mtime=0))
            doc = {
                "about": f"Recorded by tests/frameworks/record_frameworks.py: the support agent on {fw} against the "
                         "scripted local model server, one run per case of tests/frameworks/corpus.py. Labels come "
                         "from the cases, never from a classifier; `recorded` is what the recording saw.",
                "versions": {p: version(p) for p in (*PACKAGES[fw], *SHARED)},
                "setup": FRAMEWORK_SETUP[fw],
                "runs": rows,
            }
            (GOLDEN / f"{fw}.labels.json").write_text(json.dumps(doc, indent=1) + "\n")
            print(f"{fw}: {len(rows)} runs, {len(data):,} bytes")


if __name__ == "__main__":
    main()
