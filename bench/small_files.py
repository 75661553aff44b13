"""Many small files: a folder of single-trace downloads, against one publish per file measured in the same run.

    python bench/small_files.py [--files 10k] [--baseline 100] [--data bench/data] [--out bench/out]

Writes `bench/data/small-<N>/` once: gen.py's OTLP runs (seeded) cut into one file per trace, each an
`ExportTraceServiceRequest` as a single-trace download or an exporter's file per trace is (~10 spans,
~29 KB). Then, into fresh databases in this process (imports done before the clocks start):

- baseline: the first `--baseline` files ingested one publish per file (what every file cost before
  ingest/batch.py: `SMALL_FILE_BYTES = 0` turns the batches off), extrapolated to all the files;
- batched: every file, as `agentlens ingest FOLDER` does it now.

Prints and writes (bench/out/small-files.json) both, their ratio, and checks that the two ingests agree on
the runs of the files they share. Target (issue 25): 10,000 files in under a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen import label, otlp_path, parse_count  # noqa: E402


def write_files(data: Path, n: int) -> Path:
    folder = data / f"small-{label(n)}"
    if folder.is_dir() and sum(1 for _ in folder.iterdir()) == n:
        return folder
    source = otlp_path(data, n)
    if not source.exists():
        subprocess.run([sys.executable, str(HERE / "gen.py"), str(data), "--runs", str(n), "--no-csv"], check=True)
    traces: dict[str, list] = defaultdict(list)  # trace id -> [(resource, scope, span)]
    with source.open("rb") as f:
        for line in f:
            doc = json.loads(line)
            for rs in doc["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    for sp in ss["spans"]:
                        traces[sp["traceId"]].append((json.dumps(rs["resource"]), json.dumps(ss["scope"]), sp))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i, (_, spans) in enumerate(sorted(traces.items())):
        groups: dict[tuple[str, str], list] = defaultdict(list)
        for res, scope, sp in spans:
            groups[(res, scope)].append(sp)
        doc = {"resourceSpans": [{"resource": json.loads(r), "scopeSpans": [{"scope": json.loads(s), "spans": sps}]}
                                 for (r, s), sps in groups.items()]}
        (folder / f"trace-{i:05d}.json").write_text(json.dumps(doc))
    return folder


def cpu(who: int | None = None) -> float:
    """CPU seconds of this process and of its finished children (the ingest's worker processes), or of one."""
    if who is not None:
        r = resource.getrusage(who)
        return r.ru_utime + r.ru_stime
    return cpu(resource.RUSAGE_SELF) + cpu(resource.RUSAGE_CHILDREN)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=parse_count, default=10_000)
    ap.add_argument("--baseline", type=int, default=100, help="files ingested one publish per file")
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args()

    t = time.perf_counter()
    folder = write_files(args.data, args.files)
    files = sorted(folder.iterdir())
    print(f"{len(files):,} files ({sum(f.stat().st_size for f in files) / 1e6:.0f} MB) in {folder} "
          f"({time.perf_counter() - t:.1f} s to write)")

    import agentlens
    from agentlens.ingest import batch

    work = args.data / "small-files-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    base_dir = work / "baseline"
    base_dir.mkdir()
    for f in files[: args.baseline]:
        (base_dir / f.name).symlink_to(f)

    small = batch.SMALL_FILE_BYTES
    batch.SMALL_FILE_BYTES = 0  # every file its own publish, as before
    with agentlens.open(work / "baseline.duckdb") as lens:
        t, c = time.perf_counter(), cpu()
        s = lens.ingest(base_dir, progress=False)
        baseline, baseline_cpu = time.perf_counter() - t, cpu() - c
        base_runs = lens.sql("SELECT run_id, span_count, cost_usd FROM runs ORDER BY run_id")
    batch.SMALL_FILE_BYTES = small
    assert s.count("ingested") == args.baseline, s.result().facts
    per_file = baseline / args.baseline

    with agentlens.open(work / "batched.duckdb") as lens:
        t, c, w = time.perf_counter(), cpu(), cpu(resource.RUSAGE_CHILDREN)
        s = lens.ingest(folder, progress=False)
        batched, batched_cpu = time.perf_counter() - t, cpu() - c
        workers_cpu = cpu(resource.RUSAGE_CHILDREN) - w
        runs = lens.sql("SELECT count(*) FROM runs").item()
        same = lens.sql("SELECT run_id, span_count, cost_usd FROM runs WHERE run_id IN (SELECT unnest(?)) "
                        "ORDER BY run_id", [base_runs["run_id"].to_list()])
    assert s.count("ingested") == len(files), s.result().facts
    agree = same.equals(base_runs)
    result = {
        "files": len(files), "runs": runs,
        "baseline_files": args.baseline, "baseline_seconds": round(baseline, 2),
        "baseline_seconds_per_file": round(per_file, 4),
        "baseline_extrapolated_seconds": round(per_file * len(files), 1),
        "baseline_cpu_seconds_per_file": round(baseline_cpu / args.baseline, 4),
        "batched_seconds": round(batched, 2), "batched_seconds_per_file": round(batched / len(files), 5),
        "batched_cpu_seconds": round(batched_cpu, 1), "batched_cpu_seconds_of_workers": round(workers_cpu, 1),
        "speedup": round(per_file * len(files) / batched, 1),
        "cpu_speedup": round(baseline_cpu / args.baseline * len(files) / batched_cpu, 1),
        "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        "runs_agree_with_baseline": agree,
    }
    print(json.dumps(result, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "small-files.json").write_text(json.dumps(result, indent=2))
    if not agree:
        sys.exit("the batched ingest's runs differ from the baseline's")


if __name__ == "__main__":
    main()
