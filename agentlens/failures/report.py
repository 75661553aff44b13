"""What the classifiers found: counts per mode (and per dimension), the worst runs with their
explanations, and the fleet incidents. `agentlens failures` prints this; notebooks get the same
object (it renders itself, and its tables are polars DataFrames)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl
from rich.console import Group
from rich.padding import Padding
from rich.text import Text

from ..core.dimensions import RUN_DIMENSIONS
from ..core.results import BaseResult, Result, _fmt, rich_table
from ..core.timeparse import parse_window
from .classifiers import MODES, SEVERITIES
from .policy import load_policy

if TYPE_CHECKING:
    from ..store import Store

FLEET_KINDS = ("spend_spike", "retry_storm")

# --by dimensions: name -> SQL expression over failures f, runs r (a fixed allowlist: never user text)
BY: dict[str, str] = {
    **{d: f"r.{d}" for d in RUN_DIMENSIONS},
    "severity": "f.severity",
    "day": "strftime(r.started_at, '%Y-%m-%d')",
    "tool": "coalesce(f.evidence->>'$.tool', f.evidence->>'$.acted_tool')",
}

SEV_RANK = "list_position(['critical', 'high', 'medium', 'low'], {})"

# The detections of the runs started in [since, until), of the given modes: parameters `_scope_params`.
SCOPE = """
FROM failures f LEFT JOIN runs r USING (run_id)
WHERE (?::TIMESTAMPTZ IS NULL OR r.started_at >= ?::TIMESTAMPTZ)
  AND (?::TIMESTAMPTZ IS NULL OR r.started_at < ?::TIMESTAMPTZ)
  AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], f.mode))
"""

DETECTIONS = """
SELECT f.run_id, r.started_at, f.mode, f.severity, f.span_id, f.explanation, {by} AS {name},
       r.agent_name, r.feature, r.customer_id, r.status AS run_status, f.evidence, f.policy_hash, f.classified_at
""" + SCOPE + """ORDER BY r.started_at DESC NULLS LAST, f.run_id, {rank}, f.mode
"""


def _scope_params(since: Any, until: Any, modes: list[str] | None) -> list[Any]:
    return [since, since, until, until, modes, modes]


def check_by(by: str | None) -> str | None:
    """`by` when failures can be counted by it (a run dimension, severity, day or tool), else ValueError."""
    if by is not None and by not in BY:
        raise ValueError(f"cannot group failures by {by!r}; use one of {', '.join(BY)}")
    return by


def _modes(modes: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    if modes is None:
        return None
    ms = [modes] if isinstance(modes, str) else list(modes)
    if not ms:
        return None
    known = (*MODES, *FLEET_KINDS)
    for m in ms:
        if m not in known:
            raise ValueError(f"unknown failure mode {m!r}; modes: {', '.join(known)}")
    return ms


def _detections(lens: Store, since: Any, until: Any, modes: list[str] | None, by: str | None) -> pl.DataFrame:
    name = by or "feature_"
    q = DETECTIONS.format(by=BY[by] if by else "NULL", name=f'"{name}"', rank=SEV_RANK.format("f.severity"))
    df = lens.sql(q, _scope_params(since, until, modes))
    return df if by else df.drop(name)


Time = dt.datetime | dt.date | str | None


def detections(lens: Store, since: Time = None, until: Time = None,
               mode: str | list[str] | None = None, by: str | None = None) -> pl.DataFrame:
    """One row per detection (newest runs first), with the run's dimensions; `by` adds that column.
    Runs started in [since, until): times as core.timeparse reads them (ISO, `now`, `24h` before now)."""
    t0, t1 = parse_window(since, until)
    return _detections(lens, t0, t1, _modes(mode), check_by(by))


@dataclass
class FailureReport(BaseResult):
    """Counts per mode (and `by` dimension), the worst runs, the fleet incidents."""

    counts: pl.DataFrame
    worst: pl.DataFrame
    fleet: pl.DataFrame
    facts: dict[str, Any] = field(default_factory=dict)
    by: str | None = None

    def result(self) -> Result:
        tables = {"failures by mode" + (f" and {self.by}" if self.by else ""): self.counts,
                  "worst runs": self.worst}
        if self.fleet.height:
            tables["fleet incidents"] = self.fleet
        return Result("failure modes", dict(self.facts), tables)

    def __rich__(self) -> Any:
        """Terminal: the counts as a table, then one block per worst run and fleet incident (an
        explanation needs the width of the line). Trace text goes in as Text: never markup."""
        parts: list[Any] = [Text("failure modes", style="bold underline")]
        parts += [Text(f"  {k}: {_fmt(v)}") for k, v in self.facts.items()]
        parts.append(rich_table(self.counts, "failures by mode" + (f" and {self.by}" if self.by else "")))
        if self.worst.height:
            parts.append(Text("worst runs", style="bold"))
            for r in self.worst.iter_rows(named=True):
                dim = f"  ({self.by}: {r[self.by]})" if self.by else ""
                parts.append(Text(f"  {r['severity']:<8} {r['modes']}{dim}"))
                parts.append(Padding(Text(f"run {r['run_id']}, started {_fmt(r['started_at'])}"), (0, 0, 0, 11)))
                parts.append(Padding(Text(r["explanation"] or "", style="dim"), (0, 0, 0, 11)))
        if self.fleet.height:
            parts.append(Text("fleet incidents", style="bold"))
            for r in self.fleet.iter_rows(named=True):
                parts.append(Text(f"  {r['severity']:<8} {r['kind']}  {r['dimension']}: {r['value']}"))
                parts.append(Padding(Text(r["explanation"] or "", style="dim"), (0, 0, 0, 11)))
        return Group(*parts)


def report(lens: Store, since: Time = None, until: Time = None,
           mode: str | list[str] | None = None, by: str | None = None, limit: int = 10) -> FailureReport:
    """What the classifiers found among the runs started in [since, until) (times as core.timeparse
    reads them: ISO time or date, `now`, `24h` before now)."""
    since, until = parse_window(since, until)
    by = check_by(by)
    modes = _modes(mode)
    run_modes = [m for m in modes if m in MODES] if modes is not None else None
    mode_list = run_modes if modes is None or run_modes else ["-"]
    # The detections in scope stay in DuckDB (a temp table of the few columns the summaries read): a
    # million of them would take seconds to become a DataFrame and back.
    dim_col = f', {BY[by]} AS "{by}"' if by else ""
    lens.con.execute(
        f"CREATE OR REPLACE TEMP TABLE _rep AS SELECT f.run_id, r.started_at, f.mode, f.severity, f.explanation, "
        f"r.agent_name{dim_col} {SCOPE}", _scope_params(since, until, mode_list))  # `by`: checked against the BY allowlist
    try:
        dim = f', "{by}"' if by else ""
        rank = SEV_RANK.format("severity")
        counts = lens.sql(f"""
            SELECT mode{dim}, count(DISTINCT run_id) AS runs, count(*) AS detections,
                   count(*) FILTER (WHERE severity = 'critical') AS critical,
                   count(*) FILTER (WHERE severity = 'high') AS high,
                   count(*) FILTER (WHERE severity = 'medium') AS medium,
                   count(*) FILTER (WHERE severity = 'low') AS low
            FROM _rep GROUP BY ALL
            ORDER BY min({rank}), runs DESC, mode{dim}
        """)  # noqa: S608 - `by` is checked against the BY allowlist
        worst = lens.sql(f"""
            SELECT run_id, any_value(started_at) AS started_at,
                   arg_min(severity, ({rank}, mode)) AS severity,
                   string_agg(DISTINCT mode, ', ' ORDER BY mode) AS modes,
                   arg_min(explanation, ({rank}, mode, explanation)) AS explanation,  -- ties: the first text
                   any_value(agent_name) AS agent_name{dim}
            FROM _rep GROUP BY run_id{dim}
            ORDER BY min({rank}), count(*) DESC, any_value(started_at) DESC NULLS LAST, run_id
            LIMIT ?
        """, [int(limit)])  # noqa: S608 - `by` is checked against the BY allowlist
        tot = lens.sql("""
            SELECT count(*) AS runs FROM runs
            WHERE (?::TIMESTAMPTZ IS NULL OR started_at >= ?::TIMESTAMPTZ)
              AND (?::TIMESTAMPTZ IS NULL OR started_at < ?::TIMESTAMPTZ)
        """, [since, since, until, until]).item()
        failing, detected = lens.con.execute("SELECT count(DISTINCT run_id), count(*) FROM _rep").fetchall()[0]
        hashes = lens.sql("SELECT DISTINCT policy_hash FROM failures WHERE policy_hash IS NOT NULL")["policy_hash"]
    finally:
        lens.con.execute("DROP TABLE IF EXISTS _rep")
    fleet_kinds = [m for m in modes if m in FLEET_KINDS] if modes is not None else list(FLEET_KINDS)
    fleet = lens.sql(f"""
        SELECT kind, severity, dimension, value, window_start, runs, explanation, incident_id
        FROM fleet_incidents
        WHERE list_contains(?::VARCHAR[], kind)
          AND (?::TIMESTAMPTZ IS NULL OR window_end >= ?::TIMESTAMPTZ)
          AND (?::TIMESTAMPTZ IS NULL OR window_start < ?::TIMESTAMPTZ)
        ORDER BY {SEV_RANK.format("severity")}, window_start DESC, incident_id
    """, [fleet_kinds, since, since, until, until])  # noqa: S608 - fixed text
    current = load_policy(lens.config).hash
    stale = sorted(h for h in hashes.to_list() if h != current)
    facts: dict[str, Any] = {
        "runs": tot,
        "runs with a failure": f"{failing:,} ({100.0 * failing / tot:.1f}%)" if tot else "0",
        "detections": detected,
        "fleet incidents": fleet.height,
        "policy": current if not stale else
        f"{current}; some results were found under another policy ({', '.join(stale)}): classify again to judge "
        "every run by the current one",
    }
    if since is not None:
        facts["since"] = since
    if until is not None:
        facts["until"] = until
    return FailureReport(counts, worst, fleet, facts, by)


__all__ = ["BY", "SEVERITIES", "FailureReport", "check_by", "detections", "report"]
