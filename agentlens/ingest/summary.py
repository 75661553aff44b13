"""What an ingest did: per file (`FileResult`) and in all (`IngestSummary`, which renders itself)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..core.results import BaseResult, Result


@dataclass
class FileResult:
    path: str
    format: str | None = None
    status: str = "ingested"  # ingested | skipped_duplicate | skipped_unknown | failed
    runs: int = 0
    spans: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    message: str | None = None


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
            "runs added or updated": self.runs,
            "spans added": self.spans,
            "records quarantined": sum(q.values()),
            "seconds": round(self.seconds, 2),
        }
        tables = {}
        if q:
            tables["quarantined by kind"] = pl.DataFrame(
                {"kind": list(q), "records": list(q.values())}
            ).sort("records", descending=True)
        problems = [f for f in self.files if f.status == "failed" or f.quarantined]
        if problems:
            tables["files with problems"] = pl.DataFrame({
                "file": [f.path for f in problems],
                "status": [f.status for f in problems],
                "quarantined": [sum(f.quarantined.values()) for f in problems],
                "message": [f.message or ", ".join(f"{k}: {v}" for k, v in f.quarantined.items()) for f in problems],
            })
        return Result("ingest summary", facts, tables)
