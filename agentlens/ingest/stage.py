"""Stage: a file's batches written as Parquet files in a temporary folder beside the database, before
anything touches the database (so memory stays bounded whatever the file's size, and the publish can
stream them in set-based statements)."""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from pathlib import Path

import pyarrow as pa

from ..adapters.base import Batch
from ..store.chunks import span_weights
from ..store.owner import alive

FIRST_BAD = 5  # records whose reason an ingest summary names (agentlens quarantine lists them all)


class Stage:
    """A file's batches as Parquet files in a temporary folder: spans, given runs, quarantine records.
    Each row carries `_row`, its order in the file, so that the first of two duplicates wins."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.spans = self.runs = self.bad = 0  # files written of each kind
        self.rows = 0
        self.bad_kinds: Counter[str] = Counter()
        self.flagged: Counter[str] = Counter()  # flags the publish adds (orphan spans), by kind
        self.first_bad: list[tuple[int | None, str, str]] = []  # (line, kind, reason) of the first few

    def glob(self, kind: str) -> str:
        return str(self.folder / f"{kind}-*.parquet")

    def _write(self, kind: str, table: pa.Table, n: int) -> None:
        table = table.append_column("_row", pa.array(range(self.rows, self.rows + table.num_rows), pa.int64()))
        if kind == "spans":  # `_bytes`: what the span weighs in a chunk of runs (sql.STAGE_REBUILD)
            table = table.append_column("_bytes", span_weights(table))
        self.rows += table.num_rows
        import pyarrow.parquet as pq  # here: ~0.1 s to import, which a command that reads never pays

        pq.write_table(table, self.folder / f"{kind}-{n:06d}.parquet", compression="lz4")

    def add(self, batch: Batch) -> None:
        if batch.runs is not None and batch.runs.num_rows:
            self._write("runs", batch.runs, self.runs)
            self.runs += 1
        if batch.spans is not None and batch.spans.num_rows:
            self._write("spans", batch.spans, self.spans)
            self.spans += 1
        if batch.bad:
            self._write("bad", pa.table({
                "line": pa.array([b.line for b in batch.bad], pa.int64()),
                "kind": [b.kind for b in batch.bad], "reason": [b.reason for b in batch.bad],
                "raw": [b.raw for b in batch.bad], "run_id": pa.array([b.run_id for b in batch.bad], pa.string()),
                "span_id": pa.array([b.span_id for b in batch.bad], pa.string()),
                "stored": pa.array([b.stored for b in batch.bad], pa.bool_()),
            }), self.bad)
            self.bad += 1
            self.bad_kinds.update(b.kind for b in batch.bad)
            self.first_bad += [(b.line, b.kind, b.reason) for b in batch.bad[: max(0, FIRST_BAD - len(self.first_bad))]]

    def drop(self, kind: str) -> None:
        """Delete the staged files of a kind once they are stored: the staged spans of a large file are a
        quarter of its size on disk (29 GB of OTLP: ~7 GB), not to be held through the rest of its publish."""
        for f in self.folder.glob(f"{kind}-*.parquet"):
            f.unlink()


def stage_prefix(db_path: str) -> str:
    """The name of this process's staging folders for the database: `.NAME.stage-PID-`."""
    return f".{Path(db_path).name}.stage-{os.getpid()}-"


def stage_parent(db_path: str) -> str | None:
    """Stage next to the database (same disk, usually larger than /tmp); in-memory: the system's."""
    if db_path in (":memory:", "") or db_path.startswith(":memory:"):
        return None
    return str(Path(db_path).resolve().parent)


_STAGE_PID = re.compile(r"\.stage-(\d+)-")


def sweep_stages(db_path: str) -> None:
    """Remove the staging folders that killed ingests left behind: those of processes no longer running
    (another process may be staging a file beside the database right now, to publish it through us)."""
    parent = stage_parent(db_path)
    if parent is None:
        return
    for stale in Path(parent).glob(f".{Path(db_path).name}.stage-*"):
        m = _STAGE_PID.search(stale.name)
        if m is not None and alive(int(m.group(1))):
            continue
        shutil.rmtree(stale, ignore_errors=True)
