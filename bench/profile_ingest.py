"""Where agentlens's ingest spends its time: cProfile of one ingest of a generated file.

    python bench/profile_ingest.py [--runs 10k] [--top 25] [--out bench/out] [--incremental]

Generates the file if missing (bench/gen.py), ingests it into a fresh temporary database under cProfile,
prints the top functions by cumulative and by own ("self") time, and saves the raw profile as
bench/out/ingest-<runs>.prof (open it with `python -m pstats` or snakeviz). Also prints how the time splits
between modules (own time), and which store functions run the expensive SQL.

`--incremental` profiles instead the ingest of the "1% more runs" file into a database that already holds
the N runs (ingested first, not profiled): what an incremental ingest pays beyond its share.

As in run.py, pandas is hidden from the process (set AGENTLENS_BENCH_SEE_PANDAS=1 to let pyarrow import it).
(Not named profile.py: that would shadow the standard library module cProfile imports.)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=gen.parse_count, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--data", type=Path, default=gen.DEFAULT_OUT)
    ap.add_argument("--incremental", action="store_true",
                    help="profile the ingest of 1%% more runs into a database holding the N runs")
    a = ap.parse_args()

    import os

    from run import hide_pandas

    if not os.environ.get("AGENTLENS_BENCH_SEE_PANDAS"):  # as in run.py: agentlens without pandas installed
        hide_pandas()
    import agentlens

    path = gen.generate(a.data, a.runs, seed=a.seed, csv_too=False)["otlp"]
    a.out.mkdir(parents=True, exist_ok=True)
    prof_path = a.out / f"ingest-{gen.label(a.runs)}{'-incremental' if a.incremental else ''}.prof"
    with tempfile.TemporaryDirectory(dir=a.out) as tmp:
        lens = agentlens.open(Path(tmp) / "profile.duckdb")
        if a.incremental:
            t = time.perf_counter()
            lens.ingest(path, progress=False)
            print(f"# not profiled: ingest of {path.name} in {time.perf_counter() - t:.1f} s")
            path = gen.generate(a.data, max(1, a.runs // 100), seed=a.seed, offset=a.runs, csv_too=False)["otlp"]
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        summary = lens.ingest(path, progress=False)
        lens.close()
        prof.disable()
        wall = time.perf_counter() - t0
    prof.dump_stats(prof_path)
    size = path.stat().st_size
    from run import _code_hash

    print(f"# {path.name}: {size / 1e6:,.0f} MB, {summary.spans:,} spans, {summary.runs:,} runs; "
          f"agentlens sources hash {_code_hash(Path(agentlens.__file__).parent)}")
    print(f"# ingest under cProfile: {wall:.2f} s ({size / 1e6 / wall:.1f} MB/s; cProfile adds overhead "
          "to Python-heavy code, so Python's share is overstated)\n")

    for order, title in (("cumulative", "by cumulative time"), ("tottime", "by own (self) time")):
        buf = io.StringIO()
        st = pstats.Stats(prof, stream=buf)
        st.strip_dirs().sort_stats(order).print_stats(a.top)
        text = buf.getvalue()
        print(f"## top {a.top} {title}\n")
        print(text[text.index("   ncalls"):] if "   ncalls" in text else text)

    # Own time grouped by where the code lives. DuckDB's C++ methods are not seen by cProfile: the time
    # of a SQL statement shows as own time of the Python function that runs it (store.py, duckdb's _seam.py).
    st = pstats.Stats(prof)
    total = max(st.total_tt, 1e-9)  # type: ignore[attr-defined]
    groups: dict[str, float] = {}
    store_funcs: dict[str, float] = {}
    for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        fn = filename.replace("\\", "/")
        if "/agentlens/" in fn:
            key = "agentlens/" + fn.split("/agentlens/", 1)[1]
            if fn.endswith("/store.py"):
                store_funcs[func] = store_funcs.get(func, 0.0) + tt
        elif "site-packages/" in fn:
            key = fn.split("site-packages/", 1)[1].split("/", 1)[0] + " (package)"
        elif filename == "~":
            key = "builtin " + func.split(" of ", 1)[0].replace("<method ", "").replace("<built-in method ", "")
            key = key.rstrip(">")
        else:
            key = "stdlib / other: " + Path(fn).name
        groups[key] = groups.get(key, 0.0) + tt
    print("## own time by module\n")
    for k, v in sorted(groups.items(), key=lambda kv: -kv[1])[:20]:
        print(f"- {k}: {v:.2f} s ({v / total:.0%})")
    print("\n## store.py functions by own time (mostly the SQL statements they run)\n")
    for k, v in sorted(store_funcs.items(), key=lambda kv: -kv[1])[:10]:
        if v >= 0.005 * total:
            print(f"- store.{k}: {v:.2f} s ({v / total:.0%})")
    print(f"\nraw profile: {prof_path}")


if __name__ == "__main__":
    main()
