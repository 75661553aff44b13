"""The Spark cluster the distributed tests run on (tests/conftest.py `spark_master`): real JVM processes, a
master and two workers, whose executors run agentlens's Python (the same interpreter, DuckDB inside)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

pytestmark = pytest.mark.slow


def test_tasks_run_agentlens_on_both_workers(spark) -> None:  # type: ignore[no-untyped-def]
    def task(batches):  # type: ignore[no-untyped-def]
        import os
        import socket

        import duckdb

        import agentlens

        for b in batches:
            n = duckdb.sql("SELECT sum(x) FROM b").fetchall()[0][0] if b.num_rows else 0
            yield pa.RecordBatch.from_pydict({"pid": [os.getpid()], "host": [socket.gethostname()],
                                              "version": [agentlens.__version__], "total": [int(n or 0)]})

    df = spark.range(0, 1000, numPartitions=4).selectExpr("id AS x")
    rows = df.mapInArrow(task, "pid long, host string, version string, total long").collect()
    assert sum(r.total for r in rows) == sum(range(1000))
    assert {r.version for r in rows} == {__import__("agentlens").__version__}
    status = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size()  # driver + executors
    assert status >= 3, "the tasks ran on a cluster with two executors"


def test_cluster_command_starts_and_stops(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    p = subprocess.Popen([str(Path(sys.executable).with_name("agentlens")), "spark", "cluster", "--workers", "1",
                          "--memory", "512m", "--workdir", str(tmp_path / "w"), "--ready-file", str(ready)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(240):
            if ready.exists() and ready.read_text():
                break
            assert p.poll() is None, p.communicate()
            time.sleep(0.5)
        info = json.loads(ready.read_text())
        assert info["master"].startswith("spark://127.0.0.1:")
    finally:
        p.terminate()
        out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "Spark cluster ready" in out and info["master"] in out
    assert "Traceback" not in out + err
    assert not ready.exists()
