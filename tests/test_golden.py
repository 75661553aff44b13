"""Golden pairs: `tests/golden/<format>/NAME.<ext>` is an input file and `NAME.expected.json` the
canonical rows it must give (only the columns listed are compared; JSON-valued text columns are
compared as parsed JSON). A new case is a new pair of files, not new test code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p for p in GOLDEN.rglob("*") if p.is_file() and not p.name.endswith(".expected.json"))


def _value(v):
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def _check(actual: dict, expected: dict, what: str) -> None:
    for k, want in expected.items():
        got = actual[k]
        if isinstance(want, list | dict):
            got = _value(got)
        if isinstance(want, float) and got is not None:
            assert got == pytest.approx(want, rel=1e-9), f"{what}.{k}"
        else:
            assert got == want, f"{what}.{k}: {got!r} != {want!r}"


@pytest.mark.parametrize("case", CASES, ids=[str(c.relative_to(GOLDEN)) for c in CASES])
def test_golden(lens, case):
    expected = json.loads(case.with_name(case.name.split(".")[0] + ".expected.json").read_text())
    lens.ingest(case, format=case.parent.name)
    runs = {r["run_id"]: r for r in lens.runs().to_dicts()}
    assert sorted(runs) == sorted(r["run_id"] for r in expected["runs"])
    for want in expected["runs"]:
        _check(runs[want["run_id"]], want, f"run {want['run_id']}")
        spans = {s["span_id"]: s for s in lens.spans(want["run_id"]).to_dicts()}
        for sw in expected["spans"]:
            if sw["span_id"] in spans:
                _check(spans[sw["span_id"]], sw, f"span {sw['span_id']}")
    all_spans = set(lens.sql("SELECT span_id FROM spans")["span_id"])
    assert {s["span_id"] for s in expected["spans"]} <= all_spans
    assert sorted(lens.quarantine()["kind"]) == sorted(expected["quarantine"])
