"""The distributed ingest (agentlens.sources.spark_ingest) on a real standalone Spark cluster (tests/conftest.py
`spark`): the same rows as a local `agentlens ingest` of the same files exported with `agentlens export --lake`,
for the sample traces with bad records, and for 2,000 generated runs whose spans were dealt to three files (most
runs' spans are in two or three), and files read in several parts.

Columns not compared, because they are made by the process that writes them and cannot agree between two
ingests (the same holds between two local ingests of the same files):
- `runs.ingested_at`, `failures.classified_at`, `fleet_incidents.classified_at`, `quarantine.ingested_at`, `ingested_files.ingested_at`,
  `file_reads.read_at`: when that process wrote them;
- `quarantine.id`: a sequence of each store (each build task numbers its own records);
- `ingested_files.runs`, `.spans`, `.seconds`: a file's counts when it is published alone; a distributed
  ingest publishes every file with others (in every build task), and leaves them NULL, as a local ingest does for
  small files published together.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from lakes import duckdb_read, same_rows

import agentlens
from agentlens import schema
from agentlens.core.config import Config
from agentlens.scale import lake as L
from agentlens.sources import spark_ingest as S
from conftest import ROOT, SAMPLES

pytestmark = pytest.mark.slow

PER_PROCESS = {
    "runs": ("ingested_at",),
    "failures": ("classified_at",),
    "fleet_incidents": ("classified_at",),
    "quarantine": ("id", "ingested_at"),
    "ingested_files": ("ingested_at", "runs", "spans", "seconds"),
    "file_reads": ("read_at",),
}


def local_lake(tmp: Path, files: list[Path], config: Path | None = None) -> Path:
    """`agentlens ingest FILES` then `agentlens export --lake`: what the distributed ingest must equal."""
    db, lake = tmp / "local.duckdb", tmp / "local-lake"
    with agentlens.open(db, config) as lens:
        lens.ingest(*files)
    con = duckdb.connect(str(db), read_only=True)
    L.export(con, lake)
    con.close()
    return lake


def assert_same_lakes(local: Path, distributed: Path) -> dict[str, int]:
    rows = {}
    for t in schema.TABLES:
        a, b = duckdb_read(local, t), duckdb_read(distributed, t)
        same_rows(a, b, t, ignore=PER_PROCESS.get(t, ()))
        rows[t] = a.num_rows
    return rows


def test_sample_traces_with_bad_records(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = (SAMPLES / "support-agent.openinference.otlp.jsonl").read_text().splitlines(keepends=True)
    bad = tmp_path / "bad.otlp.jsonl"  # real lines, and lines that are not: malformed, not OTLP, cut off
    bad.write_text(lines[0] + "{not json\n" + lines[1] + '{"resourceSpans": 7}\n' + lines[2][:400] + "\n" + lines[3])
    files = [SAMPLES, bad]
    config = tmp_path / "agentlens.toml"  # the CSV as a named source: its run ids are `billing:ID`
    config.write_text('[sources.files]\nbilling = "agent_runs.csv"\n')
    local = local_lake(tmp_path, files, config)
    done = S.ingest(spark, files, tmp_path / "lake", Config.load(config), tasks=3, part_bytes=64 << 10)
    assert done.parts > len([f for f in done.files if f.status == "read"]), "a file was read in several parts"
    rows = assert_same_lakes(local, tmp_path / "lake")
    assert rows["runs"] == 120 + 0 and rows["quarantine"] >= 3  # the bad file's runs are the sample's own
    assert sum(r.startswith("billing:") for r in duckdb_read(tmp_path / "lake", "runs")["run_id"].to_pylist()) == 72
    q = duckdb_read(tmp_path / "lake", "quarantine").to_pylist()
    assert {(r["source_file"], r["line"]) for r in q if r["kind"] == "malformed_json"} >= {(str(bad), 2)}
    # Spark reads the lake back: the partition column from the folders, the contract's types
    runs = spark.read.parquet(str(tmp_path / "lake" / "runs"))
    types = dict(runs.dtypes)
    assert runs.count() == 120 and types["started_at"] == "timestamp" and types["llm_calls"] == "int"
    assert types["attributes"] == "string" and types["input_tokens"] == "bigint" and "day" in types
    hist = dict(spark.read.parquet(str(tmp_path / "lake" / "rollup_runs")).dtypes)["latency_ok_hist"]
    assert hist == "map<int,bigint>"
    # a second ingest into the same folder needs --replace
    with pytest.raises(S.SparkIngestError, match="--replace"):
        S.ingest(spark, files, tmp_path / "lake")


def test_generated_runs_split_across_files(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gen = tmp_path / "gen"
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen.py"), str(gen), "--runs", "2000", "--no-csv"],
                   check=True, capture_output=True)
    outs: list[list[str]] = [[], [], []]
    traces: dict[str, set[int]] = {}
    for n, line in enumerate((gen / "runs-2k.otlp.jsonl").read_text().splitlines()):
        # a request's spans dealt to the three files by their place in it (a third of the lines whole in one
        # file): most runs' spans end up in two or three files
        for i in range(3):
            doc = json.loads(line)
            for rs in doc["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    ss["spans"] = [s for k, s in enumerate(ss["spans"]) if (n % 3 == 0 and i == 0) or (n % 3 and k % 3 == i)]
            spans = [s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
            if spans:
                outs[i].append(json.dumps(doc) + "\n")
                for s in spans:
                    traces.setdefault(s["traceId"], set()).add(i)
    files = []
    for i, out in enumerate(outs):
        f = tmp_path / f"part-{i}.otlp.jsonl"
        f.write_text("".join(out))
        files.append(f)
    assert sum(len(v) > 1 for v in traces.values()) > 1000
    local = local_lake(tmp_path, files)
    done = S.ingest(spark, files, tmp_path / "lake", part_bytes=4 << 20)
    assert done.parts > 3
    rows = assert_same_lakes(local, tmp_path / "lake")
    assert rows["runs"] == 2000 and rows["spans"] > 20_000 and rows["failures"] > 0
    m = json.loads((tmp_path / "lake" / L.MANIFEST).read_text())
    assert m["written_by"] == "agentlens spark ingest" and m["tables"]["runs"]["rows"] == 2000


def test_spark_ingest_command(tmp_path: Path) -> None:
    """The command in a process of its own, as a user runs it, on `local[2]` (a second application on the test
    cluster would wait for the cores the `spark` session holds)."""
    pytest.importorskip("pyspark")
    exe = str(Path(sys.executable).with_name("agentlens"))
    p = subprocess.run([exe, "spark", "ingest", str(SAMPLES), "--lake", str(tmp_path / "lake"),
                        "--master", "local[2]"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "runs 120, spans 418" in p.stdout and "Traceback" not in p.stderr
    p = subprocess.run([exe, "spark", "ingest", str(SAMPLES), "--lake", str(tmp_path / "lake"),
                        "--master", "local[2]"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 2 and "--replace" in p.stderr and "Traceback" not in p.stderr
