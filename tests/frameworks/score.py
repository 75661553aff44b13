"""Score agentlens's failure classifiers on the framework corpus, through the stable public API only:

    python tests/frameworks/score.py [--fresh] [--runs]

ingests each framework's committed recording (tests/frameworks/recordings/FRAMEWORK.otlp.jsonl.gz), or a fresh
one with --fresh, into a new database (`agentlens.open(path)`, `lens.ingest(path)`), reads `failures` and
`runs` with `lens.sql`, and prints per framework and mode: precision, recall, false alarms on healthy runs,
and run-status accuracy (markdown), then with --runs every wrong call, run by run.

Counting, per framework and mode, a run once:
- a true positive is a detection on a run that MUST show the mode; a false negative, a miss there;
- a false positive is a detection on a run that MUST NOT show it (every mode not in the run's `must`,
  `may` or `gaps`); detections of a `may` mode are not counted either way;
- a false alarm is a false positive on a healthy run (a run with no `must`);
- precision = TP / (TP + FP), recall = TP / (TP + FN); "-" where there is nothing to count.
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
GOLDEN = HERE / "recordings"

from corpus import FRAMEWORKS, MODES  # noqa: E402


@dataclass
class Outcome:
    """What agentlens made of one framework's corpus."""

    framework: str
    labels: list[dict[str, Any]]
    detected: dict[str, dict[str, str]]  # run_id -> mode -> explanation (first detection)
    status: dict[str, str]  # run_id -> status agentlens stored
    runs_stored: int = 0
    per_mode: dict[str, dict[str, Any]] = field(default_factory=dict)

    def modes_of(self, run_id: str) -> set[str]:
        return set(self.detected.get(run_id, {}))

    def false_negatives(self, mode: str) -> list[dict[str, Any]]:
        return [lab for lab in self.labels if mode in lab["must"] and mode not in self.modes_of(lab["run_id"])]

    def false_positives(self, mode: str, healthy: bool | None = None) -> list[dict[str, Any]]:
        return [lab for lab in self.labels
                if mode in lab["must_not"] and mode in self.modes_of(lab["run_id"])
                and (healthy is None or lab["healthy"] == healthy)]

    def wrong_status(self) -> list[dict[str, Any]]:
        return [lab for lab in self.labels if self.status.get(lab["run_id"]) != lab["status"]]

    def row(self, mode: str) -> dict[str, Any]:
        must = [lab for lab in self.labels if mode in lab["must"]]
        tp = len(must) - len(self.false_negatives(mode))
        fp = len(self.false_positives(mode))
        return {"mode": mode, "labelled": len(must), "tp": tp, "fp": fp, "fn": len(must) - tp,
                "false_alarms": len(self.false_positives(mode, healthy=True)),
                "precision": tp / (tp + fp) if tp + fp else None, "recall": tp / len(must) if must else None}


def ingest(framework: str, trace: Path, labels: list[dict[str, Any]], db: Path) -> Outcome:
    """A fresh agentlens database with the recording in it, and what its classifiers said."""
    import agentlens

    with agentlens.open(db) as lens:
        lens.ingest(trace)
        detected: dict[str, dict[str, str]] = {}
        for r in lens.sql("SELECT run_id, mode, explanation FROM failures ORDER BY run_id, mode, span_id").to_dicts():
            detected.setdefault(r["run_id"], {}).setdefault(r["mode"], r["explanation"])
        status = {r["run_id"]: r["status"] for r in lens.sql("SELECT run_id, status FROM runs").to_dicts()}
    return Outcome(framework, labels, detected, status, len(status))


def golden(framework: str) -> tuple[Path, list[dict[str, Any]]]:
    data = json.loads((GOLDEN / f"{framework}.labels.json").read_text())
    return GOLDEN / f"{framework}.otlp.jsonl.gz", data["runs"]


def _cell(r: dict[str, Any]) -> str:
    if not r["labelled"] and not r["fp"]:
        return "-"
    p = "-" if r["precision"] is None else f"{r['precision']:.2f}"
    rec = "-" if r["recall"] is None else f"{r['recall']:.2f}"
    fa = f", {r['false_alarms']} FA" if r["false_alarms"] else ""
    return f"{p} / {rec} ({r['tp']}/{r['labelled']}{fa})"


def table(outcomes: list[Outcome]) -> str:
    """Markdown: a row per mode, a column per framework, each cell `precision / recall (TP/labelled, N FA)`."""
    lines = ["| mode | " + " | ".join(o.framework for o in outcomes) + " |",
             "|---|" + "---|" * len(outcomes)]
    for mode in MODES:
        lines.append(f"| `{mode}` | " + " | ".join(_cell(o.row(mode)) for o in outcomes) + " |")
    healthy = [[lab for lab in o.labels if lab["healthy"]] for o in outcomes]
    alarms = [[lab for lab in h if set(lab["must_not"]) & o.modes_of(lab["run_id"])]
              for o, h in zip(outcomes, healthy, strict=True)]
    lines.append("| healthy runs with a false alarm | "
                 + " | ".join(f"{len(a)} of {len(h)}" for a, h in zip(alarms, healthy, strict=True)) + " |")
    lines.append("| run status right | " + " | ".join(
        f"{len(o.labels) - len(o.wrong_status())} of {len(o.labels)}" for o in outcomes) + " |")
    return "\n".join(lines)


def wrong_calls(o: Outcome) -> list[str]:
    out = []
    for lab in o.labels:
        got = o.modes_of(lab["run_id"])
        fps = sorted(set(lab["must_not"]) & got)
        fns = [m for m in lab["must"] if m not in got]
        st = o.status.get(lab["run_id"])
        for m in fps:
            out.append(f"{o.framework} {lab['scenario']}: false {m}: {o.detected[lab['run_id']][m]}")
        for m in fns:
            out.append(f"{o.framework} {lab['scenario']}: missed {m}")
        if st != lab["status"]:
            out.append(f"{o.framework} {lab['scenario']}: status {st}, expected {lab['status']}")
    return out


def record_fresh(framework: str, d: Path) -> tuple[Path, list[dict[str, Any]]]:
    import subprocess

    trace, labels = d / f"{framework}.otlp.jsonl", d / f"{framework}.labels.jsonl"
    subprocess.run([sys.executable, str(HERE / "record_frameworks.py"), framework, str(trace), str(labels)],
                   check=True, timeout=600)
    return trace, [json.loads(line) for line in labels.read_text().splitlines()]


def main() -> None:
    outcomes = []
    with tempfile.TemporaryDirectory() as d:
        for fw in FRAMEWORKS:
            trace, labels = record_fresh(fw, Path(d)) if "--fresh" in sys.argv else golden(fw)
            outcomes.append(ingest(fw, trace, labels, Path(d) / f"{fw}.duckdb"))
    print(table(outcomes))
    if "--runs" in sys.argv:
        print()
        for o in outcomes:
            for line in wrong_calls(o):
                print("-", line)


def read_trace(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


if __name__ == "__main__":
    main()
