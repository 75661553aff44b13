"""The conformance suite on Spark (the sibling of test_scale_conformance.py, sharing its cases, scale_cases.py):
every statement the public API runs, on DuckDB and on a real standalone Spark cluster (`spark_master`) over
the same data: the sample traces with a file of bad records, ingested into DuckDB, and the Parquet lake made
from that database (tests/lake.py, the layout of `agentlens export --lake`). Answers compared as there.

The statements of the cases that match are the Spark conformance record (agentlens/scale/conformance_spark.txt):
a lake on Spark runs those and refuses any other. `AGENTLENS_CONFORMANCE_WRITE=1` rewrites the record from a
run where every case matches (or is refused as REFUSED_ON_SPARK says).

Spark answers each statement in ~0.3-3 s, so the Spark side runs on the sample traces only (not the 10k
generated runs the ClickHouse suite also uses)."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from lake import make_lake
from scale_cases import CASES, REFUSED, differences, plain

from agentlens.api import Lens
from agentlens.core.config import Config
from agentlens.metrics import costs, rollups
from agentlens.scale import conformance, spark_url
from agentlens.scale.sparkconn import NotSupportedOnSpark
from conftest import SAMPLES

pytestmark = pytest.mark.slow

from test_scale_conformance import CONFIG  # noqa: E402 - the same budgets as the ClickHouse suite

# Refused on Spark, and why: the suite checks that they are refused with these words.
_SEARCH = "searching the runs' text"
REFUSED_ON_SPARK = {
    **REFUSED,
    "explore: find runs filtered": _SEARCH,  # its filter has a text
    **{f"terminal: {n}": _SEARCH for n in ("search a word", "search a phrase", "search a common word",
                                          "search punctuation", "search nothing found", "search filtered and counted",
                                          "search counted", "runs with every filter")},
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, spark: Any, spark_master: str) -> Any:
    tmp = tmp_path_factory.mktemp("spark_samples")
    bad = tmp / "bad"  # records the quarantine keeps: malformed JSON, one long line of multi-byte text
    bad.mkdir()
    (bad / "bad.otlp.jsonl").write_text('{"resourceSpans": [}\nnot json at all\n' + "{ «données» é€" * 40 + "\n",
                                        encoding="utf-8")
    cfg_path = tmp / "agentlens.toml"
    cfg_path.write_text(CONFIG)
    config = Config.load(cfg_path)
    duck = Lens(tmp / "samples.duckdb", config, serve=False)
    duck.ingest(SAMPLES, bad)
    rollups.rollup(duck, every="1h")
    rollups.rollup(duck, every="1d")
    lake = make_lake(duck.con, tmp / "lake")
    sp = Lens(spark_url(spark_master, str(lake)), config)
    sp.spark.mode = "record"
    yield duck, sp
    sp.close()
    duck.close()


# Beside the shared cases: the statements of the commands as typed most (`agentlens costs --by model`: the
# model dimension is an expression, another statement than `--by feature`).
SPARK_CASES = [
    *CASES,
    ("metrics.costs", "by model", lambda db: costs.by(db, by="model")),
    ("metrics.costs", "by model per month", lambda db: costs.by(db, by="model", period="month")),
    ("metrics.costs", "report by model", lambda db: costs.report(db, by="model")),
]

OUTCOMES: dict[str, Any] = {}  # case -> ("match" | "differ" | "refused", details, statements ran)
SECONDS: dict[str, float] = {}


@pytest.mark.parametrize("case", SPARK_CASES, ids=[f"{m}:{n}" for m, n, _ in SPARK_CASES])
def test_samples(pair: tuple[Lens, Lens], case: tuple[str, str, Any]) -> None:
    module, name, call = case
    duck, sp = pair
    sp.spark.ran.clear()
    expected = plain(call(duck))
    key = f"{module}: {name}"
    t0 = time.perf_counter()
    try:
        if key in REFUSED_ON_SPARK:
            with pytest.raises(NotSupportedOnSpark, match=REFUSED_ON_SPARK[key]):
                call(sp)
            OUTCOMES[key] = ("refused", REFUSED_ON_SPARK[key], [])
            return
        try:
            got = plain(call(sp))
        except NotSupportedOnSpark as e:
            OUTCOMES[key] = ("refused", str(e), [])
            pytest.fail(f"{key}: refused: {e}")
        diffs = differences(expected, got, name)
        OUTCOMES[key] = ("match" if not diffs else "differ", diffs[:5], list(sp.spark.ran))
        assert not diffs, "\n".join(diffs[:10])
    finally:
        SECONDS[key] = time.perf_counter() - t0


def test_record_is_current() -> None:
    """The record holds the statements of the cases that matched, and nothing else."""
    if len(OUTCOMES) < len(SPARK_CASES):
        pytest.skip("the record is checked after a run of the whole suite")
    entries: dict[str, str] = {}
    bad: set[str] = set()
    for status, _, ran in OUTCOMES.values():
        for fp, who, _sql in ran:
            (entries.setdefault(fp, who) if status == "match" else bad.add(fp))
    for fp in bad:
        entries.pop(fp, None)  # a statement that answered differently anywhere is not passed
    counts = Counter(v[0] for v in OUTCOMES.values())
    slow = sorted(SECONDS.items(), key=lambda kv: -kv[1])[:5]
    print(f"spark conformance: {dict(counts)}; Spark side {sum(SECONDS.values()):.0f} s; slowest: "
          + ", ".join(f"{k} {s:.1f} s" for k, s in slow))
    if os.environ.get("AGENTLENS_CONFORMANCE_WRITE"):
        conformance.write(entries, "spark")
    assert set(entries) == conformance.passed("spark"), (
        "agentlens/scale/conformance_spark.txt is not what this run passed: AGENTLENS_CONFORMANCE_WRITE=1 rewrites it")


def test_lake_layout(pair: tuple[Lens, Lens]) -> None:
    """The lake the suite reads is laid out as documented: runs, spans and failures by day, the manifest."""
    duck, sp = pair
    lake = Path(sp.spark.url.lake)
    days = sorted(p.name for p in (lake / "runs").iterdir())
    assert days and all(d.startswith("day=") for d in days)
    assert (lake / "_agentlens_lake.json").is_file()
    n = duck.sql("SELECT count(*) AS n FROM runs")["n"][0]
    sp.spark.mode = "record"
    assert sp.spark._collect("SELECT count(*) AS n FROM runs", {}).column("n")[0].as_py() == n
    assert "day" not in sp.spark._collect("SELECT * FROM runs LIMIT 1", {}).column_names
