"""The distributed ingest (agentlens spark ingest) on a local standalone Spark cluster of 1 and 2 workers, against a
local `agentlens ingest` + `agentlens export --lake` of the same file, measured in the same run.

    .venv/bin/python bench/spark_ingest.py --runs 10k [--workers 1,2] [--part-mb 32] [--data bench/data]

Each measurement runs in a process of its own (the local ingest and export as the commands; the Spark driver
as a Python process with its session), on `bench/gen.py`'s OTLP file. For each cluster size it reports the
cluster's start, the session's start and the job (read, shuffle, build, fleet checks, publish), wall seconds;
the local ingest + export runs before and after the clusters (the machine's load drifts), and the ratio is the
job's time to the mean of the two. It checks that each lake has the local lake's runs,
spans and failures counts. The raw numbers go to bench/out/spark_ingest-<time>.json.

On a 2-core machine a cluster cannot beat a local ingest: the workers share the same two cores with the
driver, the JVMs and the shuffle. What this measures is that the job works at this size and how its time moves
from 1 worker to 2.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent

DRIVER = """
import json, sys, time
from agentlens.scale.spark import session
from agentlens.sources.spark_ingest import ingest
t0 = time.perf_counter()
spark = session(sys.argv[1], app="bench-spark-ingest", conf={"spark.executor.memory": "1500m"})
t1 = time.perf_counter()
done = ingest(spark, [sys.argv[2]], sys.argv[3], part_bytes=int(sys.argv[4]) << 20)
t2 = time.perf_counter()
spark.stop()
print(json.dumps({"session_s": t1 - t0, "job_s": t2 - t1, "stages": done.stages, "parts": done.parts,
                  "tasks": done.tasks, "tables": done.tables}))
"""


def counts(lake: Path) -> dict[str, int]:
    import duckdb

    return {t: duckdb.sql("SELECT count(*) FROM read_parquet(?, hive_partitioning = true)",
                          params=[str(lake / t / "**" / "*.parquet")]).fetchall()[0][0]
            for t in ("runs", "spans", "failures", "quarantine", "fleet_incidents")}


def timed(cmd: list[str], **kw: object) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed:\n{p.stderr[-3000:]}")
    return time.perf_counter() - t0, p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="10k")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--part-mb", type=int, default=32)
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    a = ap.parse_args()

    subprocess.run([sys.executable, str(HERE / "gen.py"), str(a.data), "--runs", a.runs, "--no-csv"], check=True)
    trace = a.data / f"runs-{a.runs}.otlp.jsonl"
    result: dict[str, object] = {"runs": a.runs, "file_mb": round(trace.stat().st_size / 1e6, 1),
                                 "cpus": os.cpu_count(), "load_before": os.getloadavg()[0], "part_mb": a.part_mb}
    with tempfile.TemporaryDirectory(prefix="bench-spark-ingest-", dir=a.data) as tmp_:
        tmp = Path(tmp_)
        def local_run(name: str) -> dict[str, object]:
            db = tmp / f"{name}.duckdb"
            ingest_s, _ = timed([str(BIN / "agentlens"), "ingest", str(trace), "--db", str(db), "--no-progress"])
            export_s, _ = timed([str(BIN / "agentlens"), "export", "--db", str(db), "--lake", str(tmp / f"{name}-lake"),
                                 "--no-progress"])
            db.unlink()
            got = counts(tmp / f"{name}-lake")
            print(f"{name}: ingest {ingest_s:.1f} s + export {export_s:.1f} s; {got}", flush=True)
            return {"ingest_s": ingest_s, "export_s": export_s, "total_s": ingest_s + export_s, "counts": got,
                    "load": os.getloadavg()[0]}

        # the local baseline before and after the cluster runs: the machine's load drifts (other sessions)
        result["local"] = first = local_run("local")
        local = first["counts"]
        from agentlens.scale.spark import LocalCluster

        for w in [int(x) for x in a.workers.split(",")]:
            t0 = time.perf_counter()
            cluster = LocalCluster(workers=w, cores=1, memory="2g", workdir=tmp / f"cluster-{w}").start()
            start_s = time.perf_counter() - t0
            try:
                lake = tmp / f"lake-{w}"
                _, p = timed([sys.executable, "-c", DRIVER, cluster.master, str(trace), str(lake), str(a.part_mb)])
                run = json.loads(p.stdout.strip().splitlines()[-1])
            finally:
                cluster.stop()
            got = counts(lake)
            assert got == local, f"{w} worker(s): {got} against the local lake's {local}"
            run.update(cluster_start_s=start_s, load=os.getloadavg()[0])
            result[f"workers_{w}"] = run
            print(f"{w} worker(s): cluster {start_s:.0f} s, session {run['session_s']:.0f} s, job {run['job_s']:.1f} s, "
                  f"stages {run['stages']}", flush=True)
        result["local_after"] = after = local_run("local-after")
        base = (float(first["total_s"]) + float(after["total_s"])) / 2  # type: ignore[arg-type]
        for w in [int(x) for x in a.workers.split(",")]:
            run = result[f"workers_{w}"]
            run["ratio_to_local"] = run["job_s"] / base  # type: ignore[index]
            print(f"{w} worker(s): job {run['job_s']:.1f} s = {run['ratio_to_local']:.2f}x the local ingest + export "  # type: ignore[index]
                  f"(mean of before and after: {base:.1f} s)")
    result["load_after"] = os.getloadavg()[0]
    a.out.mkdir(exist_ok=True)
    out = a.out / f"spark_ingest-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"raw numbers: {out}")


if __name__ == "__main__":
    main()
