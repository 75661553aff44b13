"""labels.jsonl, a line per run: the failure modes injected into it (names from `FAILURE_MODES`, in the
catalogue's order) and the status it ended in; the ground truth for the classifiers. `run_id` is the
OTLP runs' traceId and the agent_runs rows' id."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..helpers import cjson
from ..scenarios import FAILURE_MODES
from . import FILE_LABELS


def run_label(run_id: str, file: str, modes: Sequence[str], status: str) -> dict[str, Any]:
    """A line of labels.jsonl: a run's injected failure modes (in the catalogue's order) and its status."""
    return {"run_id": run_id, "file": file, "modes": sorted(modes, key=FAILURE_MODES.index), "status": status}


def write_labels(out_dir: Path, labels: list[dict[str, Any]]) -> dict[str, Any]:
    """Write labels.jsonl, a line per run: the ground truth for the classifiers."""
    data = "".join(cjson(lab) + "\n" for lab in labels).encode("utf-8")
    (out_dir / FILE_LABELS).write_bytes(data)
    return {"bytes": len(data), "lines": len(labels), "runs": len(labels)}
