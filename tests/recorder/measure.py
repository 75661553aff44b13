"""Print the precision/recall table of docs/failure-modes.md: `python tests/recorder/measure.py`.

Source (a): sample_traces/ against sample_traces/labels.jsonl. Source (b): the committed recordings
(tests/golden/otlp/recorded-*.otlp.jsonl.gz) against their scenario labels, default policy.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import polars as pl

import agentlens
from agentlens.failures import evaluate

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "otlp"


def _score(paths: list[Path], labels: pl.DataFrame) -> pl.DataFrame:
    with tempfile.TemporaryDirectory() as d, agentlens.open(Path(d) / "m.duckdb") as lens:
        lens.ingest(*paths)
        return evaluate.score(lens, labels)


def _cell(row: dict) -> str:
    if row["labelled"] == 0:
        return "-"
    p = "-" if row["precision"] is None else f"{row['precision']:.2f}"
    return f"{p} / {row['recall']:.2f} ({row['true_positives']}/{row['labelled']})"


def main() -> None:
    samples = _score([ROOT / "sample_traces"], pl.read_ndjson(ROOT / "sample_traces" / "labels.jsonl"))
    libs = {}
    for exp in sorted(GOLDEN.glob("recorded-*.expected.json")):
        lib = exp.name[len("recorded-"):-len(".expected.json")]
        e = json.loads(exp.read_text())
        labels = pl.DataFrame([{"run_id": k, "modes": v["modes"]} for k, v in e["failures"].items()],
                              schema={"run_id": pl.String, "modes": pl.List(pl.String)})
        libs[lib] = _score([GOLDEN / f"recorded-{lib}.otlp.jsonl.gz"], labels)
    names = list(libs)
    print("| mode | sample traces | " + " | ".join(f"recorded: {n}" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for i, row in enumerate(samples.iter_rows(named=True)):
        if row["mode"] == "(healthy runs)":
            cells = [f"{r['false_positives']} of {r['labelled']}" for r in
                     [row] + [libs[n].row(i, named=True) for n in names]]
            print("| false alarms on healthy runs | " + " | ".join(cells) + " |")
            continue
        print(f"| `{row['mode']}` | {_cell(row)} | "
              + " | ".join(_cell(libs[n].row(i, named=True)) for n in names) + " |")


if __name__ == "__main__":
    sys.exit(main())
