"""Reading a Parquet lake on Spark: `--engine spark://HOST:PORT --lake DIR` on the read commands, the
`spark://HOST:PORT?lake=DIR` URL of the library, and what is refused (writes, unknown statements, an
unreachable master, a missing lake), each as one clear line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from lake import make_lake
from scale_cases import differences

from agentlens.api import Lens
from agentlens.cli import main
from agentlens.scale import parse_spark, spark_url
from agentlens.scale.sparkconn import NotSupportedOnSpark
from agentlens.store import DatabaseUnavailable
from conftest import SAMPLES

AGENTLENS = str(Path(sys.executable).with_name("agentlens"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AGENTLENS, *args], capture_output=True, text=True, timeout=600)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def duck_and_lake(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("lake")
    db = tmp / "samples.duckdb"
    with Lens(db, serve=False) as lens:
        lens.ingest(SAMPLES)
        make_lake(lens.con, tmp / "lake")
    return db, tmp / "lake"


def test_url() -> None:
    u = parse_spark(spark_url("spark://10.0.0.5:7077", "/data/lake"))
    assert (u.master, u.lake, u.host, u.port) == ("spark://10.0.0.5:7077", "/data/lake", "10.0.0.5", 7077)
    assert parse_spark("spark://h?lake=s3a://bucket/lake").port == 7077
    with pytest.raises(ValueError, match="name the lake"):
        parse_spark("spark://h:7077")


@pytest.mark.slow
def test_engine_option_errors(tmp_path: Path, duck_and_lake: tuple[Path, Path]) -> None:
    """Each mistake is one line with its exit status, before any JVM starts."""
    _, lake = duck_and_lake
    port = _free_port()  # nothing listens there
    cases = [
        (["signals", "--engine", f"spark://127.0.0.1:{port}", "--lake", str(lake)], 3, "cannot reach the Spark master"),
        (["costs", "--engine", f"spark://127.0.0.1:{port}", "--lake", str(tmp_path / "nowhere")], 3, "no such lake"),
        (["failures", "--engine", f"spark://127.0.0.1:{port}", "--lake", str(tmp_path)], 3, "not an agentlens lake"),
        (["compare", "--engine", f"spark://127.0.0.1:{port}", "--dimension", "feature", "--values", "a,b"], 2,
         "needs --lake DIR"),
        (["signals", "--lake", str(lake)], 2, "--lake needs --engine"),
        (["signals", "--engine", "local[2]", "--lake", str(lake)], 2, "not a Spark master's URL"),
        (["signals", "--db", "x.duckdb", "--engine", f"spark://127.0.0.1:{port}", "--lake", str(lake)], 2,
         "either --db or --engine"),
    ]
    for args, status, words in cases:
        p = _run(*args)
        assert p.returncode == status, (args, p.stdout, p.stderr)
        assert words in p.stderr, (args, p.stderr)
        assert "Traceback" not in p.stderr


@pytest.mark.slow
def test_commands_on_spark_match_duckdb(spark: Any, spark_master: str, duck_and_lake: tuple[Path, Path]) -> None:
    """`signals`, `costs`, `failures` and `compare` on the lake on Spark answer as on the DuckDB database. In
    this process: the command finds the test session's Spark application on the same master and works in a
    session of its own there (a second application would wait for the cores this one holds)."""
    db, lake = duck_and_lake
    engine = ["--engine", spark_master, "--lake", str(lake)]
    for cmd in (["signals", "--by", "feature", "--format", "json"], ["costs", "--by", "model", "--format", "json"],
                ["failures", "--format", "json"],
                ["compare", "--dimension", "feature", "--values", "refund,billing", "--format", "json"]):
        on_duck = CliRunner().invoke(main, [*cmd, "--db", str(db)])
        on_spark = CliRunner().invoke(main, [*cmd, *engine])
        assert on_duck.exit_code == 0, on_duck.output
        assert on_spark.exit_code == 0, (cmd, on_spark.output)
        a, b = json.loads(on_duck.stdout), json.loads(on_spark.stdout)
        assert a, cmd
        assert not differences(a, b, " ".join(cmd))


@pytest.mark.slow
def test_library_refuses_writes_and_unknown_statements(spark: Any, spark_master: str,
                                                       duck_and_lake: tuple[Path, Path]) -> None:
    _, lake = duck_and_lake
    lens = Lens(spark_url(spark_master, str(lake)))
    try:
        assert lens.read_only and lens.path == f"{spark_master}?lake={lake}"
        assert lens.runs(limit=3).height == 3  # a statement of the record
        with pytest.raises(DatabaseUnavailable, match="never written"):
            lens.ingest(SAMPLES)
        with pytest.raises(NotSupportedOnSpark, match="has not passed the conformance suite"):
            lens.sql("SELECT feature, count(*) * 7 AS n FROM runs GROUP BY feature")
        with pytest.raises(NotSupportedOnSpark, match="read-only"):  # a write says so, whoever runs it
            lens.con.execute("DELETE FROM runs")
        with pytest.raises(NotSupportedOnSpark, match="read-only"):
            lens.con.execute("UPDATE runs SET cost_usd = 0")
        lens.spark.mode = "record"  # what the suite runs: every statement that translates
        with pytest.raises(NotSupportedOnSpark, match="read-only"):
            lens.con.execute("CREATE TABLE t AS SELECT 1")
    finally:
        lens.close()


@pytest.mark.slow
def test_missing_table_and_column_read_as_contract(spark: Any, spark_master: str, tmp_path: Path,
                                                   duck_and_lake: tuple[Path, Path]) -> None:
    """A table the lake lacks reads as empty with the contract's columns; a column its files lack reads as NULL;
    the partition column is not one of them."""
    import shutil

    import pyarrow.parquet as pq

    from agentlens import schema

    _, full = duck_and_lake
    lake = tmp_path / "lake"
    shutil.copytree(full, lake)
    shutil.rmtree(lake / "fleet_incidents")
    for f in (lake / "runs").rglob("*.parquet"):  # files of an older writer, without `feature`
        pq.write_table(pq.read_table(f, partitioning=None).drop_columns(["feature"]), f)
    lens = Lens(spark_url(spark_master, str(lake)))
    try:
        fleet = lens.spark._collect("SELECT * FROM fleet_incidents", {})
        assert fleet.num_rows == 0 and fleet.column_names == [c.name for c in schema.FLEET_INCIDENT_COLUMNS]
        runs = lens.spark._collect("SELECT * FROM runs", {})
        assert runs.column_names == [c.name for c in schema.RUN_COLUMNS]
        assert runs.num_rows > 0 and runs.column("feature").null_count == runs.num_rows
    finally:
        lens.close()
