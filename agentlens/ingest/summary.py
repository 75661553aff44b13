"""What an ingest did: per file (`FileResult`) and in all (`IngestSummary`, which renders itself)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..core.results import BaseResult, Result

FIRST_REASONS = 5  # quarantined records an ingest summary names, with their reason


# What a publish counts, per file: summed over the publishes of a live source's batches.
COUNTS = ("runs", "spans", "runs_added", "runs_changed", "runs_unchanged", "spans_changed", "spans_unchanged",
          "spans_outdated")


@dataclass
class FileResult:
    path: str
    format: str | None = None
    status: str = "ingested"  # ingested | skipped_duplicate | skipped_unknown | failed
    runs: int = 0  # added or changed
    spans: int = 0  # added
    runs_added: int = 0
    runs_changed: int = 0  # rebuilt (a span added or changed) or replaced whole (a run given whole)
    runs_unchanged: int = 0  # in the file, nothing new
    spans_changed: int = 0  # a stored span replaced by another version
    spans_unchanged: int = 0  # read again, the same content as the one stored (or one earlier in the file)
    spans_outdated: int = 0  # read again with other content, but the version kept is another (counted, not stored)
    quarantined: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    message: str | None = None
    first_bad: list[tuple[int | None, str, str]] = field(default_factory=list)  # (line, kind, reason), the first few


@dataclass
class IngestSummary(BaseResult):
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def runs(self) -> int:
        return sum(f.runs for f in self.files)

    @property
    def spans(self) -> int:
        return sum(f.spans for f in self.files)

    def total(self, name: str) -> int:
        """A FileResult count summed over the files (`runs_added`, `spans_changed`, ...)."""
        return sum(getattr(f, name) for f in self.files)

    @property
    def quarantined(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for f in self.files:
            total.update(f.quarantined)
        return total

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    def result(self) -> Result:
        q = self.quarantined
        facts: dict[str, Any] = {
            "files ingested": self.count("ingested"),
            "files skipped (already ingested)": self.count("skipped_duplicate"),
            "files skipped (not a trace format)": self.count("skipped_unknown"),
            "files failed": self.count("failed"),
            "runs added": self.total("runs_added"),
            "runs changed": self.total("runs_changed"),
            "runs unchanged": self.total("runs_unchanged"),
            "spans added": self.spans,
            "spans changed": self.total("spans_changed"),
            "spans unchanged": self.total("spans_unchanged"),
            "spans outdated (another version kept)": self.total("spans_outdated"),
            "records quarantined": sum(q.values()),
            "seconds": round(self.seconds, 2),
        }
        tables = {}
        if q:
            tables["quarantined by kind"] = pl.DataFrame(
                {"kind": list(q), "records": list(q.values())}
            ).sort("records", descending=True)
        first = [(f.path, line, kind, reason) for f in self.files for line, kind, reason in f.first_bad][:FIRST_REASONS]
        if first:
            tables["first quarantined records (agentlens quarantine lists them all)"] = pl.DataFrame(
                {"file": [x[0] for x in first], "line": [x[1] for x in first], "kind": [x[2] for x in first],
                 "reason": [x[3] for x in first]}, schema={"file": pl.String, "line": pl.Int64, "kind": pl.String,
                                                           "reason": pl.String})
        problems = [f for f in self.files if f.status == "failed" or f.quarantined]
        if problems:
            tables["files with problems"] = pl.DataFrame({
                "file": [f.path for f in problems],
                "status": [f.status for f in problems],
                "quarantined": [sum(f.quarantined.values()) for f in problems],
                "message": [f.message or ", ".join(f"{k}: {v}" for k, v in f.quarantined.items()) for f in problems],
            })
        return Result("ingest summary", facts, tables)
