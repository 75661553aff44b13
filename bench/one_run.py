"""One run into a big database: the fixed cost of ingesting a single-trace file, and whether it grows with the
database, against the same files ingested into an empty database in the same run.

    python bench/one_run.py --db bench/data/runs-10k.duckdb [--copies 100] [--files 5] [--keep PATH] [--out bench/out]

`--db` is an ingested database of bench/gen.py's runs (`agentlens ingest --db bench/data/runs-10k.duckdb
bench/data/runs-10k.otlp.jsonl`). It is copied and its runs and spans replicated `--copies` times (10k x 100 =
1M runs, ~10M spans), and its search index rebuilt over them. Then, in this process (imports done before the
clocks start), `--files` single-trace files of new runs (gen.py, another seed), moved to the last day of the
database's runs (the live case: new runs arrive on the day the database is busiest, whose spend the fleet check
reads), are ingested one at a time:

- baseline: into an empty database (what a file costs when there is nothing else);
- big: into the replicated database.

- live: into the replicated database, runs exported in two parts as an OpenTelemetry SDK exports a run live
  (its calls and other child spans first, its root later, when the run ends): the second part touches a stored
  run, which is rebuilt, priced and classified again (each run's first part is ingested untimed).

Per file it reports wall and CPU seconds (this process and the ingest's worker processes) and the time
inside the publish (run building, pricing, the 14 classifiers, the fleet checks, the search index), the
median of the files after the first (the first pays the store's warm-up: catalog, prepared statements) and the
slowest of them (a file whose run has a failed span also pays the retry-storm check); and the
wall time of the `agentlens ingest FILE` command (a fresh process: imports and opening the database included).
With `--breakdown`, the same files into empty databases with the publish's steps added one part at a time
(spans and runs only, + pricing, + the fleet checks, + the 14 rules): where the fixed cost of a file goes.
Target (issue 25): one run into a million-run database well under 0.2 s of work.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from search import copy_runs  # noqa: E402

import agentlens  # noqa: E402
from agentlens.explore import search  # noqa: E402


def cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def single_trace_files(folder: Path, n: int, at_ns: int | None = None) -> list[Path]:
    """`n` files of one trace each, of runs no database here holds (gen.py, seed 7, numbered from 5M); with
    `at_ns`, the i-th trace moved to start at `at_ns` + i minutes (its spans and events shifted alike)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(HERE / "gen.py"), str(folder), "--runs", str(max(n, 10)), "--seed", "7",
                    "--offset", "5000000", "--no-csv", "--force"], check=True, capture_output=True)
    source = next(folder.glob("runs-*.otlp.jsonl"))
    traces: dict[str, list[tuple[str, str, Any]]] = defaultdict(list)
    with source.open("rb") as f:
        for line in f:
            for rs in json.loads(line)["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    for sp in ss["spans"]:
                        traces[sp["traceId"]].append((json.dumps(rs["resource"]), json.dumps(ss["scope"]), sp))
    out = []
    for i, (_, spans) in enumerate(sorted(traces.items())[:n]):
        groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for res, scope, sp in spans:
            groups[(res, scope)].append(sp)
        if at_ns is not None:
            shift = at_ns + i * 60 * 10**9 - min(int(sp["startTimeUnixNano"]) for _, _, sp in spans)
            for _, _, sp in spans:
                for k in ("startTimeUnixNano", "endTimeUnixNano"):
                    sp[k] = str(int(sp[k]) + shift)
                for ev in sp.get("events") or []:
                    if "timeUnixNano" in ev:
                        ev["timeUnixNano"] = str(int(ev["timeUnixNano"]) + shift)
        doc = {"resourceSpans": [{"resource": json.loads(r), "scopeSpans": [{"scope": json.loads(s), "spans": sps}]}
                                 for (r, s), sps in groups.items()]}
        p = folder / f"trace-{i}.json"
        p.write_text(json.dumps(doc))
        out.append(p)
    return out


# The publish's steps added one part at a time (`--breakdown`): what each costs of the fixed cost of a file
def _pipelines() -> dict[str, Any]:
    from agentlens import pricing
    from agentlens.failures import fleet_step
    from agentlens.ingest.steps import Pipeline

    return {
        "spans and runs only": Pipeline(),
        "+ pricing": Pipeline(staged=(pricing.price_staged_step,), chunk=(pricing.price_step,)),
        "+ the fleet checks": Pipeline(staged=(pricing.price_staged_step,), chunk=(pricing.price_step,),
                                       file=(fleet_step,)),
        "+ the 14 rules (all of it)": Pipeline.default(),
    }


def ingest_each(db: Path, files: list[Path], pipeline: Any = None) -> dict[str, Any]:
    from agentlens.ingest import publish

    inside: list[float] = []
    original = publish.publish

    def timed(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            inside.append(time.perf_counter() - t0)

    publish.publish = timed
    walls, cpus = [], []
    try:
        with agentlens.open(db) as lens:
            if pipeline is not None:
                lens.pipeline = pipeline
            for f in files:
                t0, c0 = time.perf_counter(), cpu()
                s = lens.ingest(f, progress=False)
                walls.append(time.perf_counter() - t0)
                cpus.append(cpu() - c0)
                assert s.count("ingested") == 1, s.result().facts
    finally:
        publish.publish = original
    return {**_medians(walls, cpus), "publish_s": statistics.median(_after_first(inside)) if inside else None,
            "first_wall_s": walls[0]}


def _after_first(xs: list[float]) -> list[float]:
    """The measurements after the first file's (which pays the store's warm-up), when there are any."""
    return xs[1:] if len(xs) > 1 else xs


def _medians(walls: list[float], cpus: list[float]) -> dict[str, Any]:
    return {"wall_s": statistics.median(_after_first(walls)), "cpu_s": statistics.median(_after_first(cpus)),
            "walls": walls, "cpus": cpus}


def in_two_parts(files: list[Path]) -> list[tuple[Path, Path]]:
    """Each single-trace file as two: its spans that have a parent, then its root (how a live run is exported)."""
    pairs = []
    for f in files:
        doc = json.loads(f.read_text())
        parts = []
        for has_parent in (True, False):
            def keep(spans: list[Any], has_parent: bool = has_parent) -> list[Any]:
                return [sp for sp in spans if bool(sp.get("parentSpanId")) == has_parent]
            part = {"resourceSpans": [
                {**rs, "scopeSpans": [{**ss, "spans": keep(ss["spans"])} for ss in rs["scopeSpans"]]}
                for rs in doc["resourceSpans"]]}
            path = f.with_suffix(".calls.json" if has_parent else ".root.json")
            path.write_text(json.dumps(part))
            parts.append(path)
        pairs.append((parts[0], parts[1]))
    return pairs


def ingest_second_parts(db: Path, pairs: list[tuple[Path, Path]]) -> dict[str, Any]:
    """ingest_each of the second parts, each run's first part ingested (untimed) just before."""
    walls, cpus = [], []
    with agentlens.open(db) as lens:
        for first, second in pairs:
            lens.ingest(first, progress=False)
            t0, c0 = time.perf_counter(), cpu()
            s = lens.ingest(second, progress=False)
            walls.append(time.perf_counter() - t0)
            cpus.append(cpu() - c0)
            assert s.total("runs_changed") == 1, s.result().facts
    return _medians(walls, cpus)


def command(db: Path, f: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("agentlens")), "ingest", "--db", str(db), str(f)],
                   check=True, capture_output=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True, help="an ingested database of bench/gen.py's runs")
    ap.add_argument("--copies", type=int, default=100, help="the runs this many times (default 100: 10k -> 1M)")
    ap.add_argument("--files", type=int, default=5)
    ap.add_argument("--work", type=Path, default=None, help="folder for the copies (default: a temporary one)")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--breakdown", action="store_true",
                    help="also the fixed cost of a file into an empty database with the publish's steps added one "
                         "part at a time: spans and runs only, + pricing, + the fleet checks, + the 14 rules")
    ap.add_argument("--keep", type=Path, default=None,
                    help="keep the replicated database (and its search index) here, and reuse it when it exists: "
                         "each measurement then works on a copy of it")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.work) as tmp_s:
        tmp = Path(tmp_s)
        with agentlens.open(args.db, read_only=True) as lens:  # the live case: new runs on the database's last day
            at_ns = lens.one("SELECT epoch_ns(max(started_at)) FROM runs")[0]  # type: ignore[index]
        files = single_trace_files(tmp / "files", 2 * args.files + 1, at_ns)
        cmd_file, live, files = files[-1], in_two_parts(files[args.files:-1]), files[:args.files]
        big = tmp / "big.duckdb"
        kept = args.keep
        if kept is None or not kept.exists():
            made = kept if kept is not None else big
            made.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(args.db, made)
            t0 = time.perf_counter()
            with agentlens.open(made) as lens:
                for k in range(1, args.copies):
                    copy_runs(lens, f"-{k}")
                shutil.rmtree(search.index_path(lens) or tmp / "none", ignore_errors=True)
                search.rebuild(lens)
                lens.con.execute("CHECKPOINT")
            print(f"replicated {args.copies}x and indexed in {time.perf_counter() - t0:.0f} s")
        if kept is not None:  # a copy to ingest into, the kept one stays as built
            shutil.copy(kept, big)
            index = Path(f"{kept}.search")  # explore.search.index_path
            if index.exists():
                shutil.copytree(index, Path(f"{big}.search"))
        with agentlens.open(big) as lens:
            runs, spans = lens.one("SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM spans)") or (0, 0)
        print(f"{runs:,} runs, {spans:,} spans")

        r: dict[str, Any] = {"runs": runs, "spans": spans, "files": len(files)}
        r["baseline"] = ingest_each(tmp / "empty.duckdb", files)
        if args.breakdown:
            r["breakdown"] = {name: ingest_each(tmp / f"parts-{i}.duckdb", files, pipeline)
                              for i, (name, pipeline) in enumerate(_pipelines().items())}
        r["big"] = ingest_each(big, files)
        r["live"] = ingest_second_parts(big, live)
        r["command_empty_s"] = command(tmp / "empty2.duckdb", cmd_file)
        r["command_big_s"] = command(big, cmd_file)
    r["ratio_cpu"] = r["big"]["cpu_s"] / r["baseline"]["cpu_s"]
    r["ratio_wall"] = r["big"]["wall_s"] / r["baseline"]["wall_s"]
    b, g = r["baseline"], r["big"]
    print(f"one single-trace file (median of {len(files) - 1} after the first):")
    def slowest(part: dict[str, Any]) -> str:  # a median hides the file whose run failed (the retry-storm check)
        return f"; slowest {max(_after_first(part['walls'])):.3f} s"

    print(f"  into an empty database:       {b['wall_s']:.3f} s wall, {b['cpu_s']:.3f} CPU-s, publish {b['publish_s']:.3f} s"
          + slowest(b))
    print(f"  into {runs:,} runs:        {g['wall_s']:.3f} s wall, {g['cpu_s']:.3f} CPU-s, publish {g['publish_s']:.3f} s"
          f"  (x{r['ratio_wall']:.2f} wall, x{r['ratio_cpu']:.2f} CPU)" + slowest(g))
    print(f"  a run's root after its calls, into {runs:,} runs: {r['live']['wall_s']:.3f} s wall, "
          f"{r['live']['cpu_s']:.3f} CPU-s" + slowest(r["live"]))
    print(f"  `agentlens ingest FILE` command: {r['command_empty_s']:.2f} s (empty), {r['command_big_s']:.2f} s ({runs:,} runs)")
    for name, part in r.get("breakdown", {}).items():
        print(f"  into an empty database, {name + ':':28s} {part['wall_s']:.3f} s wall, {part['cpu_s']:.3f} CPU-s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "one-run.json").write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
