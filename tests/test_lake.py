"""The Parquet lake (`agentlens export --lake DIR`, agentlens.scale.lake): read back by DuckDB, polars and pyarrow it
equals the database; a second export rewrites only the day partitions whose runs changed, and equals a fresh
one; an export with nothing new writes nothing; an interrupted or killed export leaves the previous lake."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from lakes import db_table, duckdb_read, polars_read, pyarrow_read, same_rows

import agentlens
from agentlens import schema
from agentlens.scale import lake as L
from conftest import SAMPLES

pytestmark = pytest.mark.slow

GENAI = SAMPLES / "support-agent.genai.otlp.jsonl"
OPENINF = SAMPLES / "support-agent.openinference.otlp.jsonl"


def ingest(db: Path, *paths: Path) -> None:
    with agentlens.open(db) as lens:
        summary = lens.ingest(*paths)
        assert not summary.count("failed")


def export(db: Path, lake: Path, **kw) -> L.Exported:  # type: ignore[no-untyped-def]
    con = duckdb.connect(str(db), read_only=True)
    try:
        return L.export(con, lake, **kw)
    finally:
        con.close()


def snapshot(lake: Path) -> dict[str, int]:
    """Every file of the lake (the lock file aside): its path and modification time."""
    return {p.relative_to(lake).as_posix(): p.stat().st_mtime_ns for p in lake.rglob("*")
            if p.is_file() and p.name != L.LOCK}


def assert_lake_is(db: Path, lake: Path, readers=(duckdb_read,)) -> None:  # type: ignore[no-untyped-def]
    con = duckdb.connect(str(db), read_only=True)
    try:
        for t in schema.TABLES:
            want = db_table(con, t)
            for read in readers:
                same_rows(want, read(lake, t), f"{t} ({read.__name__})")
    finally:
        con.close()


def test_the_lake_read_by_duckdb_polars_and_pyarrow_is_the_database(tmp_path: Path) -> None:
    db, lake = tmp_path / "a.duckdb", tmp_path / "lake"
    ingest(db, SAMPLES)
    res = export(db, lake)
    assert res.first and res.tables["runs"].rows == 120
    assert_lake_is(db, lake, (duckdb_read, pyarrow_read, polars_read))

    # the types: the contract's, as Arrow types every reader takes
    for t in schema.TABLES:
        got = pyarrow_read(lake, t).schema
        assert [(f.name, f.type) for f in got] == [(f.name, f.type) for f in L.arrow_schema(t)], t
    kinds = {r[0]: r[1] for r in duckdb.sql("DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = true)",
                                            params=[str(lake / "runs/**/*.parquet")]).fetchall()}
    assert kinds["started_at"] == "TIMESTAMP WITH TIME ZONE" and kinds["attributes"] == "VARCHAR"
    assert kinds["llm_calls"] == "INTEGER" and kinds["cost_usd"] == "DOUBLE" and kinds["input_tokens"] == "BIGINT"
    hist = dict((f.name, f.type) for f in pyarrow_read(lake, "rollup_runs").schema)["latency_ok_hist"]
    assert hist == pa.map_(pa.int32(), pa.int64())  # no unsigned type (Spark reads UINT64 as a decimal)

    # the layout: runs, spans, failures by the UTC day of the run's start, spans in their run's partition
    con = duckdb.connect()
    rows = con.execute("""
        SELECT r.day, s.day, r.started_at FROM read_parquet(?, hive_partitioning = true) r
        JOIN read_parquet(?, hive_partitioning = true) s USING (run_id)""",
                       [str(lake / "runs/**/*.parquet"), str(lake / "spans/**/*.parquet")]).fetchall()
    assert rows and all(str(rd) == str(sd) == r.astimezone(dt.UTC).strftime("%Y-%m-%d") for rd, sd, r in rows)
    m = json.loads((lake / L.MANIFEST).read_text())
    assert m["layout_version"] == L.LAYOUT_VERSION and m["schema_version"] == schema.SCHEMA_VERSION
    listed = {f["path"] for t in m["tables"].values() for f in t["files"]}
    assert listed == set(snapshot(lake)) - {L.MANIFEST}
    assert m["watermark"]["runs"] == 120


def _spans(path: Path):  # type: ignore[no-untyped-def]
    """(line, resource, scope, span) of an OTLP JSON Lines file."""
    for line in path.read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    yield rs["resource"], ss["scope"], s


def _write(path: Path, spans) -> Path:  # type: ignore[no-untyped-def]
    """The spans as OTLP JSON Lines, one request per span."""
    with path.open("w") as f:
        for resource, scope, s in spans:
            f.write(json.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": scope, "spans": [s]}]}]})
                    + "\n")
    return path


def _day(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d")


def _parts(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """Sample traces in two parts: the second rebuilds a run (its missing spans), moves another to the day before
    (an earlier span), and brings a new run, all three of one day. Returns the parts and {what: run_id}."""
    genai, openinf = list(_spans(GENAI)), list(_spans(OPENINF))
    start: dict[str, int] = {}
    for _, _, s in genai + openinf:
        start[s["traceId"]] = min(start.get(s["traceId"], 1 << 63), int(s["startTimeUnixNano"]))
    by_day: dict[str, list[str]] = {}
    for t in dict.fromkeys(s["traceId"] for _, _, s in genai):
        by_day.setdefault(_day(start[t]), []).append(t)
    new_days = {_day(start[s["traceId"]]) for _, _, s in openinf}
    day = next(d for d, ts in sorted(by_day.items()) if len(ts) >= 2 and d in new_days)
    a, b = by_day[day][:2]
    c = next(s["traceId"] for _, _, s in openinf if _day(start[s["traceId"]]) == day)
    withheld = [x for x in genai if x[2]["traceId"] == a and x[2].get("parentSpanId")][::2]
    root_b = next(x for x in genai if x[2]["traceId"] == b and not x[2].get("parentSpanId"))
    early = dict(root_b[2], spanId="e" * 16, parentSpanId=root_b[2]["spanId"], name="early step",
                 startTimeUnixNano=str(start[b] - 86_400 * 10**9), endTimeUnixNano=str(start[b] - 86_399 * 10**9))
    early.pop("events", None)
    first = [x for x in genai if x not in withheld] + [x for x in openinf if x[2]["traceId"] != c]
    second = withheld + [(root_b[0], root_b[1], early)] + [x for x in openinf if x[2]["traceId"] == c]
    return _write(tmp_path / "part1.otlp.jsonl", first), _write(tmp_path / "part2.otlp.jsonl", second), \
        {"rebuilt": a, "moved": b, "new": c, "day": day}


def test_a_second_export_rewrites_only_the_partitions_of_changed_runs(tmp_path: Path) -> None:
    part1, part2, ids = _parts(tmp_path)
    db, lake = tmp_path / "a.duckdb", tmp_path / "lake"
    ingest(db, part1, SAMPLES / "agent_runs.csv")
    export(db, lake)
    before = snapshot(lake)
    before_manifest = json.loads((lake / L.MANIFEST).read_text())

    # nothing new: nothing written, not even the manifest
    again = export(db, lake)
    assert not again.tables and snapshot(lake) == before

    ingest(db, part2)
    con = duckdb.connect(str(db), read_only=True)
    moved_to = con.execute(f"SELECT {L.DAY} FROM runs WHERE run_id = ?", [ids["moved"]]).fetchall()[0][0]
    con.close()
    day_before = (dt.date.fromisoformat(ids["day"]) - dt.timedelta(days=1)).isoformat()
    assert moved_to == day_before, "the early span moved the run to the day before"
    res = export(db, lake)
    after = snapshot(lake)
    assert res.tables["runs"].runs == 3 and res.tables["spans"].runs == 3

    def files_by_day(snap: dict[str, int], table: str) -> dict[str, set[tuple[str, int]]]:
        out: dict[str, set[tuple[str, int]]] = {}
        for p, mtime in snap.items():
            parts = p.split("/")
            if parts[0] == table:
                out.setdefault(parts[1].removeprefix("day="), set()).add((parts[2], mtime))
        return out

    for table in ("runs", "spans"):
        old, new = files_by_day(before, table), files_by_day(after, table)
        changed = {d for d in old.keys() | new.keys() if old.get(d) != new.get(d)}
        assert changed == {ids["day"], day_before}, table
        for d in old.keys() - changed:  # the other partitions: the very same files, untouched
            assert old[d] == new[d]
        for d in changed & old.keys() & new.keys():  # a rewritten partition: new files, the old ones gone
            assert not {n for n, _ in old[d]} & {n for n, _ in new[d]}
    failures_changed = {d for d in files_by_day(before, "failures").keys() | files_by_day(after, "failures").keys()
                        if files_by_day(before, "failures").get(d) != files_by_day(after, "failures").get(d)}
    assert failures_changed <= {ids["day"], day_before}
    # the rebuilt run's old rows left its partition; the moved run is in its new day only
    runs = duckdb.sql("SELECT run_id, day::VARCHAR FROM read_parquet(?, hive_partitioning = true)",
                      params=[str(lake / "runs/**/*.parquet")]).fetchall()
    assert sorted(d for r, d in runs if r == ids["moved"]) == [day_before]
    assert len([r for r, _ in runs if r == ids["rebuilt"]]) == 1
    m = json.loads((lake / L.MANIFEST).read_text())
    assert m["exports"] == before_manifest["exports"] + 1

    # the lake equals the database, and a fresh full export of it
    assert_lake_is(db, lake)
    fresh = tmp_path / "fresh"
    export(db, fresh)
    for t in schema.TABLES:
        same_rows(duckdb_read(fresh, t), duckdb_read(lake, t), t)
    assert snapshot(lake).keys() - {L.MANIFEST} == {f["path"] for t in m["tables"].values() for f in t["files"]}


def test_an_interrupted_or_killed_export_leaves_the_previous_lake(tmp_path: Path) -> None:
    part1, part2, _ = _parts(tmp_path)
    db, lake, first = tmp_path / "a.duckdb", tmp_path / "lake", tmp_path / "first.duckdb"
    ingest(db, part1)
    export(db, lake)
    first.write_bytes(db.read_bytes())  # the database the lake holds
    before = snapshot(lake)
    ingest(db, part2)

    def stop(what: str) -> None:
        if what.startswith("spans"):  # runs are staged already
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export(db, lake, on_step=stop)
    assert snapshot(lake) == before
    assert not [p for p in lake.iterdir() if p.name.startswith(L.STAGING_PREFIX)]
    assert_lake_is(first, lake)

    # killed (SIGKILL: no cleanup) once every file is staged, just before they are published
    script = ("import duckdb, os, signal, sys\nfrom agentlens.scale import lake\n"
              "con = duckdb.connect(sys.argv[1], read_only=True)\n"
              "lake.export(con, sys.argv[2], on_step=lambda w: os.kill(os.getpid(), signal.SIGKILL) "
              "if w == 'publishing' else None)\n")
    p = subprocess.run([sys.executable, "-c", script, str(db), str(lake)], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PYTHONPATH": str(Path(L.__file__).parents[2])})
    assert p.returncode == -9, p.stderr
    assert [x for x in lake.iterdir() if x.name.startswith(L.STAGING_PREFIX)], "it died with files staged"
    assert {k: v for k, v in snapshot(lake).items() if not k.startswith(L.STAGING_PREFIX)} == before
    assert_lake_is(first, lake)  # readers see the previous lake, whole

    res = export(db, lake)  # the next export clears what the dead one left, and catches up
    assert res.tables
    assert not [x for x in lake.iterdir() if x.name.startswith(L.STAGING_PREFIX)]
    assert_lake_is(db, lake)


def test_export_command(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from agentlens.cli import main

    db, lake = tmp_path / "a.duckdb", tmp_path / "lake"
    ingest(db, SAMPLES)
    r = CliRunner().invoke(main, ["export", "--db", str(db), "--lake", str(lake), "--progress"])
    assert r.exit_code == 0, r.output
    assert "runs: 5 day partition(s) rewritten (120 runs changed)" in r.output
    r = CliRunner().invoke(main, ["export", "--db", str(db), "--lake", str(lake)])
    assert r.exit_code == 0 and "up to date, nothing written" in r.output
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    r = CliRunner().invoke(main, ["export", "--db", str(db), "--lake", str(tmp_path / "other")])
    assert r.exit_code == 2 and "not empty and not a lake" in r.output and "Traceback" not in r.output


def test_reprice_and_classify_rewrite_what_they_change(tmp_path: Path) -> None:
    """`agentlens reprice` changes costs in place (no rebuild, `ingested_at` unchanged) and `agentlens classify`
    replaces failures: the next export rewrites the partitions of the runs whose costs changed, then only
    `failures`."""
    from agentlens import failures

    db, lake = tmp_path / "a.duckdb", tmp_path / "lake"
    ingest(db, SAMPLES)
    export(db, lake)
    config = tmp_path / "agentlens.toml"  # the sample's self-hosted model, unpriced until now
    config.write_text('[[pricing.overrides]]\nmodel = "acme-finetune-v1"\ninput_per_mtok = 0.2\noutput_per_mtok = 0.8\n')
    con = duckdb.connect(str(db), read_only=True)
    before_costs = dict(con.execute("SELECT run_id, computed_cost_usd FROM runs").fetchall())
    con.close()
    with agentlens.open(db, config) as lens:
        failures.reprice(lens)
    con = duckdb.connect(str(db), read_only=True)
    changed = {r for r, c in con.execute("SELECT run_id, computed_cost_usd FROM runs").fetchall()
               if c != before_costs[r]}
    days = {d for (d,) in con.execute(f"SELECT DISTINCT {L.DAY} FROM runs WHERE run_id IN (SELECT unnest(?))",
                                      [sorted(changed)]).fetchall()}
    con.close()
    assert changed, "the override priced some runs"
    snap = snapshot(lake)
    res = export(db, lake)
    assert res.tables["runs"].runs == len(changed)
    after = snapshot(lake)
    for table in ("runs", "spans"):
        rewritten = {p.split("/")[1].removeprefix("day=") for p in set(snap) ^ set(after) if p.startswith(table + "/")}
        assert rewritten == days, table
    assert_lake_is(db, lake)

    with agentlens.open(db) as lens:
        failures.classify(lens)
    res = export(db, lake)
    assert set(res.tables) == {"failures"}, res.tables
    assert_lake_is(db, lake)


@pytest.mark.slow
def test_export_memory_stays_bounded_with_long_texts(tmp_path: Path) -> None:
    """Spans carry long prompts: the Parquet writer's row groups are bounded in bytes, not only in rows (at
    100,000 rows a row group of gen.py's spans held ~300 MB per day partition, and a 50k-run export ran out of
    DuckDB's default 1 GB). 3,000 runs of gen.py exported at a 64 MB memory limit."""
    ROOT = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen.py"), str(tmp_path), "--runs", "3000", "--no-csv"],
                   check=True, capture_output=True)
    db = tmp_path / "g.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(next(tmp_path.glob("runs-*.otlp.jsonl")), progress=False)
    env = {**os.environ, "AGENTLENS_MEMORY_LIMIT": "64MB"}
    r = subprocess.run([str(Path(sys.executable).with_name("agentlens")), "export", "--db", str(db), "--lake",
                        str(tmp_path / "lake")], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    con = duckdb.connect()
    n = con.execute("SELECT count(*) FROM read_parquet(?, hive_partitioning = true)",
                    [str(tmp_path / "lake" / "spans" / "**" / "*.parquet")]).fetchall()[0][0]
    with agentlens.open(db, read_only=True) as lens:
        assert n == lens.sql("SELECT count(*) AS n FROM spans")["n"][0]
