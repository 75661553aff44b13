"""The conformance suite (ibis-style): every statement the public API runs, run on DuckDB and on ClickHouse
(chdb: ClickHouse's own engine, in this process) over the same data, the answers compared (order-insensitive,
floats within a relative tolerance, JSON parsed). Data: the sample traces, and 10k runs from bench/gen.py.

The statements of the cases that match are the conformance record (agentlens/scale/conformance.txt): the
ClickHouse store runs those and refuses any other. `AGENTLENS_CONFORMANCE_WRITE=1` rewrites the record from a
run where every case matches."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from scale_cases import CASES, REFUSED, differences, plain

from agentlens.api import Lens
from agentlens.core.config import Config
from agentlens.explore.search import run_words
from agentlens.metrics import rollups
from agentlens.scale import conformance
from agentlens.scale.connection import NotSupportedOnClickHouse
from agentlens.scale.migrate import migrate
from conftest import ROOT, SAMPLES, clickhouse_url

pytestmark = pytest.mark.slow

CONFIG = """
[budgets]
run_usd = 0.02
run_usd_hard = 0.5

[budgets.daily_usd]
feature = { refund = 0.05, "*" = 0.2 }
customer_id = { "*" = 0.01 }
"""


def _pair(tmp: Path, chdb_root: Path, name: str, *inputs: Path) -> tuple[Lens, Lens]:
    cfg_path = tmp / "agentlens.toml"
    cfg_path.write_text(CONFIG)
    config = Config.load(cfg_path)
    duck = Lens(tmp / f"{name}.duckdb", config, serve=False)
    duck.ingest(*inputs)
    rollups.rollup(duck, every="1h")
    rollups.rollup(duck, every="1d")
    ch = Lens(clickhouse_url(chdb_root, f"conf_{name}"), config)
    migrate(duck.con, ch.clickhouse, words=run_words)
    ch.clickhouse.mode = "record"
    return duck, ch


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory, chdb_root: Path) -> Any:
    tmp = tmp_path_factory.mktemp("samples")
    bad = tmp / "bad"  # records the quarantine keeps: malformed JSON, one long line of multi-byte text
    bad.mkdir()
    (bad / "bad.otlp.jsonl").write_text('{"resourceSpans": [}\nnot json at all\n' + "{ «données» é€" * 40 + "\n",
                                        encoding="utf-8")
    duck, ch = _pair(tmp, chdb_root, "samples", SAMPLES, bad)
    yield duck, ch
    duck.close()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory, chdb_root: Path) -> Any:
    tmp = tmp_path_factory.mktemp("gen10k")
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen.py"), str(tmp / "data"), "--runs", "10000"],
                   check=True, capture_output=True)
    duck, ch = _pair(tmp, chdb_root, "gen10k", tmp / "data" / "runs-10k.otlp.jsonl")
    yield duck, ch
    duck.close()


OUTCOMES: dict[str, dict[str, Any]] = {}  # dataset -> case -> "match" | differences | refusal


def _check(pair: tuple[Lens, Lens], dataset: str, case: tuple[str, str, Any]) -> None:
    module, name, call = case
    duck, ch = pair
    ch.clickhouse.ran.clear()
    expected = plain(call(duck))
    key = f"{module}: {name}"
    if key in REFUSED:
        with pytest.raises(NotSupportedOnClickHouse, match=REFUSED[key]):
            call(ch)
        OUTCOMES.setdefault(dataset, {})[key] = ("refused", REFUSED[key], [])
        return
    try:
        got = plain(call(ch))
    except NotSupportedOnClickHouse as e:
        OUTCOMES.setdefault(dataset, {})[key] = ("refused", str(e), [])
        pytest.fail(f"{key}: refused: {e}")
    diffs = differences(expected, got, name)
    ran = list(ch.clickhouse.ran)
    OUTCOMES.setdefault(dataset, {})[key] = ("match" if not diffs else "differ", diffs[:5], ran)
    assert not diffs, "\n".join(diffs[:10])


@pytest.mark.parametrize("case", CASES, ids=[f"{m}:{n}" for m, n, _ in CASES])
def test_samples(samples: tuple[Lens, Lens], case: tuple[str, str, Any]) -> None:
    _check(samples, "samples", case)


@pytest.mark.parametrize("case", CASES, ids=[f"{m}:{n}" for m, n, _ in CASES])
def test_generated_10k(generated: tuple[Lens, Lens], case: tuple[str, str, Any]) -> None:
    _check(generated, "gen10k", case)


def test_record_is_current() -> None:
    """The record holds the statements of the cases that matched on both data sets, and nothing else."""
    if len(OUTCOMES) < 2 or any(len(v) < len(CASES) for v in OUTCOMES.values()):
        pytest.skip("the record is checked after a run of the whole suite")
    entries: dict[str, str] = {}
    bad: set[str] = set()
    for cases in OUTCOMES.values():
        for status, _, ran in cases.values():
            for fp, who, _sql in ran:
                (entries.setdefault(fp, who) if status == "match" else bad.add(fp))
    for fp in bad:
        entries.pop(fp, None)  # a statement that answered differently anywhere is not passed
    counts = Counter(k.split(":")[0] for cases in OUTCOMES.values() for k, v in cases.items() if v[0] == "match")
    print("conformance (cases matching, both data sets):", dict(counts))
    if os.environ.get("AGENTLENS_CONFORMANCE_WRITE"):
        conformance.write(entries)
    assert set(entries) == conformance.passed(), (
        "agentlens/scale/conformance.txt is not what this run passed: AGENTLENS_CONFORMANCE_WRITE=1 rewrites it")
