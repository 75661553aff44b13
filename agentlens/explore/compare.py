"""Two sets of runs side by side: two time windows (this week against last) or two values of a dimension
(a release, a prompt version, a model, an environment), each a `RunFilter`.

    compare(lens, Side("last week", RunFilter(since=..., until=...)), Side("this week", RunFilter(...)))
    compare_values(lens, "model", "gpt-4o", "gpt-4o-mini", RunFilter(since="7d"))

Per side: runs, failed runs and runs with a failure mode (in all and per mode), latency percentiles,
cost per run; and per row the difference (b - a) with a note where the counts are too small to mean
anything, by a stated rule:

- a rate (errors, a failure mode): the two-proportion z-test, whose normal approximation needs at least 5
  expected runs with and without it on each side (the usual rule of thumb); below that the note says
  "too few: 1.4 expected < 5", else it gives the p-value and calls a difference with p >= 0.05 "noise";
- a percentile p needs at least 1 / (1 - p) runs on a side to exist at all (20 for p95, 100 for p99);
- a mean (cost per run, duration) compares by Welch's z (normal approximation), which needs 30 runs on
  a side (the central limit theorem's rule of thumb).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from ..core.results import BaseResult, Result
from ..store import Store
from .runs import RunFilter, prepare
from .trace import has_table

SIDE_STATS = """
SELECT count(*) AS runs,
       count(*) FILTER (WHERE status = 'error') AS errors,
       quantile_cont(duration_ms, 0.5) AS p50, quantile_cont(duration_ms, 0.95) AS p95,
       quantile_cont(duration_ms, 0.99) AS p99,
       avg(duration_ms) AS duration_mean, stddev_samp(duration_ms) AS duration_sd, count(duration_ms) AS timed,
       avg(cost_usd) AS cost_mean, stddev_samp(cost_usd) AS cost_sd, count(cost_usd) AS priced,
       sum(cost_usd) AS cost_total
FROM runs WHERE {where}
"""
SIDE_MODES = """
SELECT f.mode, count(DISTINCT f.run_id) AS runs FROM failures f
WHERE f.run_id IN (SELECT run_id FROM runs WHERE {where}) GROUP BY f.mode
"""
SIDE_FAILED = "SELECT count(DISTINCT run_id) FROM failures WHERE run_id IN (SELECT run_id FROM runs WHERE {where})"
ALL_SQL = {"SIDE_STATS": SIDE_STATS, "SIDE_MODES": SIDE_MODES, "SIDE_FAILED": SIDE_FAILED}

MIN_EXPECTED = 5       # per cell, for the two-proportion z-test
MIN_MEAN_RUNS = 30     # per side, for a comparison of means
ALPHA = 0.05
RULES = ("notes: a rate's p is the two-proportion z-test's (\"too few\" when a side expects under "
         f"{MIN_EXPECTED} runs with or without it); a mean's is Welch's z (needs {MIN_MEAN_RUNS} runs a side); "
         "p95 needs 20 runs a side, p99 100; \"noise\": p >= 0.05")


@dataclass(frozen=True)
class Side:
    label: str
    filter: RunFilter


def _stats(lens: Store, side: Side, classified: bool) -> dict[str, Any]:
    where, params = prepare(lens, side.filter, classified)
    row = lens.sql(SIDE_STATS.format(where=where), params).row(0, named=True)
    row["modes"] = {}
    row["failed"] = None
    if classified:
        row["modes"] = dict(lens.sql(SIDE_MODES.format(where=where), params).iter_rows())
        row["failed"] = int(lens.con.execute(SIDE_FAILED.format(where=where), params).fetchall()[0][0])
    return row


def two_proportions(x1: int, n1: int, x2: int, n2: int) -> tuple[float | None, str]:
    """The two-sided p-value of the difference of x1/n1 and x2/n2 (pooled z-test), and the note."""
    if n1 == 0 or n2 == 0:
        return None, "no runs on a side"
    p = (x1 + x2) / (n1 + n2)
    expected = min(n1 * p, n1 * (1 - p), n2 * p, n2 * (1 - p))
    if expected < MIN_EXPECTED:
        return None, f"too few: {expected:.1f} expected < {MIN_EXPECTED}"
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    pv = math.erfc(abs(x2 / n2 - x1 / n1) / se / math.sqrt(2)) if se else 1.0
    return pv, (f"p={pv:.2g}" + ("" if pv < ALPHA else ", noise"))


def two_means(m1: float | None, s1: float | None, n1: int, m2: float | None, s2: float | None,
              n2: int) -> tuple[float | None, str]:
    """The two-sided p-value of the difference of two means (Welch's z), and the note."""
    if min(n1, n2) < MIN_MEAN_RUNS or m1 is None or m2 is None:
        return None, f"too few: {min(n1, n2)} < {MIN_MEAN_RUNS} runs"
    se = math.sqrt((s1 or 0) ** 2 / n1 + (s2 or 0) ** 2 / n2)
    pv = math.erfc(abs(m2 - m1) / se / math.sqrt(2)) if se else (1.0 if m1 == m2 else 0.0)
    return pv, (f"p={pv:.2g}" + ("" if pv < ALPHA else ", noise"))


def _percentile_note(q: float, n1: int, n2: int) -> str:
    need = math.ceil(1 / (1 - q) - 1e-9)
    return "" if min(n1, n2) >= need else f"too few: {min(n1, n2)} < {need} runs"


@dataclass
class Comparison(BaseResult):
    """Two sides and their rows: metric, unit (runs, share, ms, usd), a, b, difference, change, p_value, note."""

    a: Side
    b: Side
    rows: pl.DataFrame

    def result(self) -> Result:
        return Result(f"{self.a.label} against {self.b.label}",
                      {"a": self.a.label, "b": self.b.label}, {"comparison": self.rows})


def compare(lens: Store, a: Side, b: Side) -> Comparison:
    """The two sides' numbers and their differences (b - a), each with its note (see the module)."""
    classified = has_table(lens, "failures")
    sa, sb = _stats(lens, a, classified), _stats(lens, b, classified)
    na, nb = int(sa["runs"]), int(sb["runs"])
    rows: list[dict[str, Any]] = []

    def add(metric: str, unit: str, va: Any, vb: Any, pv: float | None = None, note: str = "") -> None:
        diff = vb - va if va is not None and vb is not None else None
        change = diff / va if diff is not None and va else None
        rows.append({"metric": metric, "unit": unit, "a": None if va is None else float(va),
                     "b": None if vb is None else float(vb), "difference": None if diff is None else float(diff),
                     "change": change, "p_value": pv, "note": note})

    add("runs", "runs", na, nb)
    pv, note = two_proportions(int(sa["errors"]), na, int(sb["errors"]), nb)
    add("failed runs (status error)", "share", sa["errors"] / na if na else None, sb["errors"] / nb if nb else None,
        pv, note)
    if classified:
        pv, note = two_proportions(sa["failed"], na, sb["failed"], nb)
        add("runs with a failure mode", "share", sa["failed"] / na if na else None,
            sb["failed"] / nb if nb else None, pv, note)
        for mode in sorted(set(sa["modes"]) | set(sb["modes"])):
            xa, xb = int(sa["modes"].get(mode, 0)), int(sb["modes"].get(mode, 0))
            pv, note = two_proportions(xa, na, xb, nb)
            add(f"  {mode}", "share", xa / na if na else None, xb / nb if nb else None, pv, note)
    ta, tb = int(sa["timed"]), int(sb["timed"])
    for q, col in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        add(f"latency {col}", "ms", sa[col], sb[col], None, _percentile_note(q, ta, tb))
    pv, note = two_means(sa["duration_mean"], sa["duration_sd"], ta, sb["duration_mean"], sb["duration_sd"], tb)
    add("latency mean", "ms", sa["duration_mean"], sb["duration_mean"], pv, note)
    pa_, pb_ = int(sa["priced"]), int(sb["priced"])
    pv, note = two_means(sa["cost_mean"], sa["cost_sd"], pa_, sb["cost_mean"], sb["cost_sd"], pb_)
    add("cost per run", "usd", sa["cost_mean"], sb["cost_mean"], pv, note)
    add("cost in all", "usd", sa["cost_total"], sb["cost_total"])
    schema = {"metric": pl.String, "unit": pl.String, "a": pl.Float64, "b": pl.Float64, "difference": pl.Float64,
              "change": pl.Float64, "p_value": pl.Float64, "note": pl.String}
    return Comparison(a, b, pl.DataFrame(rows, schema=schema))


def compare_values(lens: Store, dimension: str, value_a: str, value_b: str,
                   base: RunFilter | None = None) -> Comparison:
    """The runs with `dimension` = `value_a` against those with `value_b` (a run column, `attr:KEY` or
    `json:$.PATH`), both within `base` (a time window, other filters)."""
    base = base or RunFilter()
    sides = [Side(f"{dimension}={v}", base.with_(equals={**base.equals, dimension: v})) for v in (value_a, value_b)]
    return compare(lens, sides[0], sides[1])
