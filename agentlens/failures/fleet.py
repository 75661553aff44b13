"""Fleet-level checks: incidents no single run shows, stored in `fleet_incidents`.

**spend_spike**: a UTC day whose spend for one feature, customer or tool is far above its baseline.
Spend is the runs' `cost_usd` for features and customers, and for tools the money their successful
side-effecting calls moved (the first of `[policy.fleet].amount_keys` found in the call's arguments:
refunds issued, orders placed). The baseline of day D is the median daily spend of the same value over
the `baseline_days` days before D on which it had any spend; a day is judged only when there are at
least `min_baseline_days` such days. A day is a spike when its spend is at least `spike_factor` x the
baseline *and* at least `spike_min_excess_usd` above it. Severity `high` when every run of that day
stayed under the per-run cost cap (so no run-level alert fired: the procurement agent that placed
$1.4M of orders in an afternoon, each under its limit), `medium` when some runs were over it.

**retry_storm**: many runs hitting one failing dependency together. Failed calls (LLM calls by
provider and model, tools by name) are ordered in time per dependency; a failure more than
`storm_gap_minutes` after the previous one starts a new group; a group that touches at least
`storm_min_runs` distinct runs is a storm. Severity `high`, `critical` when 20 or more runs.

`agentlens classify` recomputes both over the whole database. An ingest recomputes only what its runs
can change: the spend spikes of their days (the days they had before the file too: a run's start moves
when earlier spans arrive) and the `baseline_days` after them, read from the `baseline_days` before; the
retry storms with a failure within one gap of their time, read from a window around it that widens
until it holds those storms whole.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pyarrow as pa

from ..core import patterns as P
from ..core.duck import arrow, registered
from .policy import FleetPolicy, Policy

# A successful call of a side-effect tool (the policy's list), and the amount it moved: the first of the
# amount keys found in its arguments, the keys' values in one parse (a call's arguments may be long).
SIDE_EFFECT_CALL = """s.kind = 'tool' AND s.status <> 'error' AND s.tool_name IS NOT NULL AND json_valid(s.tool_arguments)
    AND len(list_filter($side_effect_globs::VARCHAR[], lambda g: lower(s.tool_name) GLOB g)) > 0"""
TOOL_AMOUNT = """list_filter(list_transform(json_extract_string(s.tool_arguments,
                                                list_transform($amount_keys::VARCHAR[], lambda k: '$.' || k)),
                                 lambda v: try_cast(v AS DOUBLE)),
                  lambda v: v IS NOT NULL)[1]"""

# The UTC day of a TIMESTAMPTZ, by arithmetic on its epoch: DuckDB's date_trunc('day', ...) on a TIMESTAMPTZ goes
# through ICU's calendar, 52 ms per million values against 2 ms (the fleet check reads every run of its days).
def utc_day(col: str) -> str:
    """SQL: the start of `col`'s UTC day, a TIMESTAMPTZ (`col`: a column name, never a value)."""
    return f"to_timestamp(floor(epoch({col}) / 86400) * 86400)"


# Judged: the days from $judge_from to $judge_to, from the spend of the days from $data_from (inclusive)
# to $data_to (exclusive), which must cover the judged days and the $baseline_days days before them; of
# every feature, customer and tool with $every, else of those in $features, $customers and $tools (an
# ingest of new runs: only their series' spend changed; see `refresh`).
SPEND_SPIKES = """
WITH rd AS (  -- each feature's and each customer's day in one pass over the runs (GROUPING SETS)
  SELECT feature, customer_id, grouping(feature) = 0 AS by_feature, day, sum(cost_usd) AS spend, count(*) AS runs,
         count(*) FILTER (WHERE cost_usd > $cap) AS over_cap, max(cost_usd) AS largest
  FROM (SELECT """ + utc_day("started_at") + """ AS day, feature, customer_id, cost_usd
        FROM runs WHERE cost_usd IS NOT NULL AND started_at >= $data_from AND started_at < $data_to
          AND ($every OR list_contains($features::VARCHAR[], feature)
               OR list_contains($customers::VARCHAR[], customer_id)))
  GROUP BY GROUPING SETS ((feature, day), (customer_id, day))
),
tool_amounts AS (
  SELECT s.run_id, """ + utc_day("s.started_at") + """ AS day, s.tool_name, """ + TOOL_AMOUNT + """ AS amount
  FROM spans s
  WHERE ($every OR len($tools::VARCHAR[]) > 0)  -- constant: no new amount moved, no read of the spans
    AND ($every OR list_contains($tools::VARCHAR[], s.tool_name))
    AND s.started_at >= $data_from AND s.started_at < $data_to AND """ + SIDE_EFFECT_CALL + """
),
daily AS (
  SELECT CASE WHEN by_feature THEN 'feature' ELSE 'customer_id' END AS dimension,
         CASE WHEN by_feature THEN feature ELSE customer_id END AS value, day, spend, runs, over_cap, largest,
         'LLM cost' AS measure
  FROM rd
  WHERE CASE WHEN by_feature THEN feature IS NOT NULL AND ($every OR list_contains($features::VARCHAR[], feature))
             ELSE customer_id IS NOT NULL AND ($every OR list_contains($customers::VARCHAR[], customer_id)) END
  UNION ALL
  SELECT 'tool', tool_name, day, sum(amount), count(DISTINCT run_id), NULL, max(amount), 'amount in its calls'
  FROM tool_amounts WHERE amount IS NOT NULL AND amount > 0 GROUP BY ALL
),
judged AS (
  SELECT d.dimension, d.value, d.day, d.spend, d.runs, d.over_cap, d.largest, d.measure,
         median(p.spend) AS baseline, count(p.day) AS baseline_days,
         list({day: p.day::DATE, spend: round(p.spend, 6)} ORDER BY p.day) AS history
  FROM daily d JOIN daily p
    ON p.dimension = d.dimension AND p.value = d.value AND p.day < d.day AND p.day >= d.day - to_days($baseline_days::INTEGER)
  WHERE d.dimension IN (SELECT unnest($dimensions::VARCHAR[])) AND d.day >= $judge_from AND d.day <= $judge_to
  GROUP BY ALL
  HAVING count(p.day) >= $min_baseline_days
)
SELECT md5(concat_ws('|', 'spend_spike', dimension, value, day::VARCHAR)) AS incident_id,
       'spend_spike' AS kind, dimension, value, day AS window_start, day + INTERVAL 1 DAY AS window_end,
       CASE WHEN coalesce(over_cap, 0) = 0 THEN 'high' ELSE 'medium' END AS severity, runs,
       printf('%s %s: $%,.2f of %s on %s, %.1fx its baseline of $%,.2f (median of %d prior days)%s',
              dimension, value, spend, measure, strftime(day, '%Y-%m-%d'), spend / nullif(baseline, 0), baseline,
              baseline_days,
              CASE WHEN dimension = 'tool' THEN printf('; largest single call $%,.2f', largest)
                   WHEN over_cap = 0 THEN printf('; every one of its %d runs stayed under the $%.2f per-run cap%s',
                                                 runs, $cap, $cap_note)
                   ELSE printf('; %d of its %d runs were over the per-run cap', over_cap, runs) END) AS explanation,
       to_json({spend_usd: spend, baseline_usd: baseline, baseline_days: baseline_days, history: history,
                runs: runs, runs_over_cap: over_cap, largest_usd: largest, measure: measure,
                policy: $policy::JSON})::VARCHAR AS evidence
FROM judged
WHERE spend >= $factor * baseline AND spend - baseline >= $min_excess
"""  # noqa: S608 - joins fixed SQL texts

# Failures from $data_from (inclusive) to $data_to (exclusive); the groups kept are those with a failure
# from $keep_from to $keep_to: the storms among them, and any group that reaches within a gap of the data
# window's edges (`at_edge`: failures outside the window might belong to it, so the caller widens the window).
RETRY_STORMS = """
WITH s AS (
  SELECT sp.run_id, sp.span_id, sp.kind, sp.parent_span_id, sp.started_at, sp.model, sp.provider, sp.tool_name,
         sp.name,
         CASE WHEN sp.error_type IS NOT NULL AND starts_with(coalesce(sp.status_message, ''), sp.error_type)
              THEN sp.status_message ELSE concat_ws(': ', sp.error_type, sp.status_message) END AS err
  FROM spans sp WHERE sp.status = 'error' AND sp.started_at >= $data_from AND sp.started_at < $data_to
),
callers AS (  -- of the runs whose root failed only, their spans looked up by run id (the index: the kind in the
              -- aggregate, so that the scan has no other condition), whenever the calls were made
  SELECT run_id FROM spans WHERE run_id IN (SELECT run_id FROM s WHERE parent_span_id IS NULL)
  GROUP BY run_id HAVING bool_or(kind IN ('llm', 'tool', 'retriever'))
),
f AS (
  SELECT run_id, span_id, started_at, err,
         CASE WHEN kind IN ('tool', 'retriever') THEN 'tool:' || coalesce(tool_name, name)
              ELSE 'llm:' || coalesce(provider, 'llm') || '/' || coalesce(model, '?') END AS dependency
  FROM s
  WHERE kind IN ('llm', 'tool', 'retriever')
     OR (parent_span_id IS NULL AND run_id NOT IN (SELECT run_id FROM callers))
),
g AS (
  SELECT *, CASE WHEN started_at - lag(started_at) OVER w > $gap THEN 1 ELSE 0 END AS new_group
  FROM f WINDOW w AS (PARTITION BY dependency ORDER BY started_at, span_id)
),
h AS (
  SELECT *, sum(new_group) OVER (PARTITION BY dependency ORDER BY started_at, span_id
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS grp
  FROM g
),
groups AS (
  SELECT dependency, grp, min(started_at) AS t0, max(started_at) AS t1, count(DISTINCT run_id) AS runs
  FROM h GROUP BY dependency, grp
),
kept AS (
  SELECT * FROM (
    SELECT *, runs >= $min_runs AS is_storm, t0 < $data_from + $gap OR t1 > $data_to - $gap AS at_edge FROM groups)
  WHERE t1 >= $keep_from AND t0 <= $keep_to AND (is_storm OR at_edge)
),
storms AS (  -- the details of the kept groups (t0, t1, runs: as `groups` found them)
  SELECT h.dependency, h.grp, any_value(k.is_storm) AS is_storm, any_value(k.at_edge) AS at_edge,
         any_value(k.t0) AS t0, any_value(k.t1) AS t1, count(*) AS failures,
         any_value(k.runs) AS runs, list(DISTINCT h.run_id ORDER BY h.run_id)[:100] AS run_ids,
         list(h.span_id ORDER BY h.started_at)[:100] AS span_ids,
         count(*) FILTER (WHERE regexp_matches(h.err, $rate_limit)) AS rate_limited,
         count(*) FILTER (WHERE regexp_matches(h.err, $timeout)) AS timeouts,
         arg_min(h.err, h.started_at) AS first_err
  FROM h JOIN kept k ON k.dependency = h.dependency AND k.grp = h.grp
  GROUP BY h.dependency, h.grp
)
SELECT md5(concat_ws('|', 'retry_storm', dependency, t0::VARCHAR)) AS incident_id, 'retry_storm' AS kind,
       'dependency' AS dimension, dependency AS value, t0 AS window_start, t1 AS window_end,
       CASE WHEN runs >= 20 THEN 'critical' ELSE 'high' END AS severity, runs,
       printf('%s failed %d times across %d runs in %.1f min (%s to %s UTC)%s; first: %s', dependency, failures, runs,
              date_diff('millisecond', t0, t1) / 60000.0, strftime(t0, '%Y-%m-%d %H:%M'), strftime(t1, '%H:%M'),
              CASE WHEN rate_limited > 0 THEN printf(', %d rate-limited', rate_limited) ELSE '' END
              || CASE WHEN timeouts > 0 THEN printf(', %d timed out', timeouts) ELSE '' END,
              left(regexp_replace(first_err, '\\s+', ' ', 'g'), 120)) AS explanation,
       to_json({failures: failures, runs: runs, run_ids: run_ids, span_ids: span_ids, rate_limited: rate_limited,
                timeouts: timeouts, first_error: left(first_err, 300), policy: $policy::JSON})::VARCHAR AS evidence,
       is_storm, at_edge
FROM storms
"""

INSERT = """
INSERT INTO fleet_incidents
SELECT incident_id, kind, dimension, value, window_start, window_end, severity, runs, explanation, evidence,
       now(), ?
FROM _fleet
"""

# The series the runs a file touched are in: their features and customers, and the side-effect tools their
# calls moved an amount with (fleet_step adds the features and customers the runs had before the file).
# Looked up by run id (conditions in FILTERs: DuckDB then uses the run_id index).
TOUCHED_SERIES = """
SELECT (SELECT coalesce(list(DISTINCT feature), []) FROM runs WHERE run_id IN (SELECT run_id FROM _touched)),
       (SELECT coalesce(list(DISTINCT customer_id), []) FROM runs WHERE run_id IN (SELECT run_id FROM _touched)),
       (SELECT coalesce(list(DISTINCT s.tool_name)
                         FILTER (WHERE CASE WHEN """ + SIDE_EFFECT_CALL + " THEN " + TOOL_AMOUNT + """ > 0 END), [])
        FROM spans s WHERE s.run_id IN (SELECT run_id FROM _touched))
"""  # noqa: S608 - joins fixed SQL texts (CASE: the arguments parsed only once json_valid passed, never an error)
SERIES = ("feature", "customer_id", "tool")  # SPEND_SPIKES's dimensions, as `series` names them


def _tool_params(policy: Policy) -> dict[str, list[str]]:
    """The values of SIDE_EFFECT_CALL's and TOOL_AMOUNT's parameters."""
    return {"amount_keys": list(policy.fleet.amount_keys),
            "side_effect_globs": [g.lower() for g in policy.side_effect_tools]}


def touched_series(con: duckdb.DuckDBPyConnection, policy: Policy) -> dict[str, list[str]]:
    """The series the runs a file touched (`_touched`) are in, for `refresh(series=...)`."""
    row = con.execute(TOUCHED_SERIES, _tool_params(policy)).fetchone()
    return dict(zip(SERIES, row or ([], [], []), strict=True))


ALL_SQL = {"SPEND_SPIKES": SPEND_SPIKES, "RETRY_STORMS": RETRY_STORMS, "INSERT": INSERT,
           "TOUCHED_SERIES": TOUCHED_SERIES}


def _json(d: dict[str, Any]) -> str:
    import json

    return json.dumps(d, sort_keys=True)


def refresh(con: duckdb.DuckDBPyConnection, policy: Policy,
            days: tuple[dt.datetime, dt.datetime] | None = None, storms: bool = True,
            series: dict[str, list[str]] | None = None) -> int:
    """Recompute the fleet incidents (in the caller's transaction). Returns how many it wrote.

    `days` (first, last), from an ingest: the spend changed only on those days, so only the spend
    spikes it can change are judged again: the days from `first` to `last` + `baseline_days` (each is
    judged against the days before it), read from `first` - `baseline_days` on, not from the whole
    history. Likewise the retry storms: only those with a failure within a gap of that time (see `_storms`);
    none with `storms=False` (an ingest that touched no run that has or had a failed span). `series`
    (dimension -> values, with `days`): only the spend of those features, customers and tools changed (an
    ingest: `TOUCHED_SERIES` and the series its stored runs had, failures.fleet_step), so only their spikes
    are judged again; on a day of a million runs, judging every series read them all for each single-run file
    (0.7 s)."""
    fp = policy.fleet
    cap = policy.max_cost_usd_per_run
    spike_policy = _json({
        "baseline_days": fp.baseline_days, "min_baseline_days": fp.min_baseline_days,
        "spike_factor": fp.spike_factor, "spike_min_excess_usd": fp.spike_min_excess_usd,
        "max_cost_usd_per_run": cap, "amount_keys": list(fp.amount_keys),
    })
    storm_policy = _json({"storm_gap_minutes": fp.storm_gap_minutes, "storm_min_runs": fp.storm_min_runs})
    chosen = series if days is not None else None
    of = {"every": chosen is None, "features": (chosen or {}).get("feature", []),
          "customers": (chosen or {}).get("customer_id", []), "tools": (chosen or {}).get("tool", [])}
    if days is None:
        window: dict[str, Any] = {"judge_from": _EARLIEST, "judge_to": _LATEST, "data_from": _EARLIEST,
                                  "data_to": _LATEST}
        con.execute("DELETE FROM fleet_incidents")
    else:
        first, last = (d.replace(hour=0, minute=0, second=0, microsecond=0) for d in days)
        back = dt.timedelta(days=fp.baseline_days)
        window = {"judge_from": first, "judge_to": last + back,
                  "data_from": first - back, "data_to": last + back + dt.timedelta(days=1)}
        con.execute("DELETE FROM fleet_incidents WHERE kind = 'spend_spike' AND window_start >= $judge_from "
                    "AND window_start <= $judge_to AND ($every OR list_contains(CASE dimension WHEN 'feature' THEN "
                    "$features::VARCHAR[] WHEN 'customer_id' THEN $customers::VARCHAR[] ELSE $tools::VARCHAR[] END, "
                    "value))", {"judge_from": window["judge_from"], "judge_to": window["judge_to"], **of})
    spikes = arrow(con, SPEND_SPIKES, {
        "cap": cap, **_tool_params(policy),
        "baseline_days": fp.baseline_days, "dimensions": list(fp.spike_dimensions),
        "min_baseline_days": fp.min_baseline_days, "cap_note": policy.note("max_cost_usd_per_run"),
        "policy": spike_policy, "factor": fp.spike_factor, "min_excess": fp.spike_min_excess_usd, **window, **of,
    })
    found = [spikes, _storms(con, fp, storm_policy, days)] if storms or days is None else [spikes]
    n = 0
    for table in found:
        if table.num_rows:
            with registered(con, "_fleet", table):
                con.execute(INSERT, [policy.hash])
            n += table.num_rows
    return n


def _storms(con: duckdb.DuckDBPyConnection, fp: FleetPolicy, storm_policy: str,
            days: tuple[dt.datetime, dt.datetime] | None) -> pa.Table:
    """The retry storms to (re)insert, their earlier rows deleted. With `days` (an ingest's touched time
    span): a failure added or removed there changes only the groups with a failure within one gap of it, so
    only those groups are recomputed, from the failures of a window around them. A group reaching within a
    gap of the window's edge may go on beyond it: the window is widened (4x) until none does, or, past
    `STORM_MAX_WINDOW`, everything is recomputed. Whether a run whose root failed made calls (then its
    calls' failures count, not the root's) is seen from all its spans, looked up by run id."""
    gap = dt.timedelta(minutes=fp.storm_gap_minutes)
    params = {"gap": gap, "min_runs": fp.storm_min_runs, "rate_limit": P.RATE_LIMIT, "timeout": P.TIMEOUT,
              "policy": storm_policy}
    margin = STORM_FIRST_WINDOW
    while days is not None and margin <= STORM_MAX_WINDOW:
        keep = {"keep_from": days[0] - gap, "keep_to": days[1] + gap}
        window = {"data_from": keep["keep_from"] - margin, "data_to": keep["keep_to"] + margin}
        found = arrow(con, RETRY_STORMS, {**params, **keep, **window})
        if not any(found["at_edge"].to_pylist()):
            con.execute("DELETE FROM fleet_incidents WHERE kind = 'retry_storm' AND window_end >= ? "
                        "AND window_start <= ?", [keep["keep_from"], keep["keep_to"]])
            return found.filter(found["is_storm"])
        margin *= 4
    con.execute("DELETE FROM fleet_incidents WHERE kind = 'retry_storm'")
    everything = {"keep_from": _EARLIEST, "keep_to": _LATEST, "data_from": _EARLIEST, "data_to": _LATEST}
    found = arrow(con, RETRY_STORMS, {**params, **everything})
    return found.filter(found["is_storm"])


STORM_FIRST_WINDOW = dt.timedelta(days=1)  # failures read on each side of an ingest's storm window, at first
STORM_MAX_WINDOW = dt.timedelta(days=64)   # beyond this, every storm is recomputed

# Bounds of "every day" for a whole refresh (DuckDB prunes row groups only on constant bounds).
_EARLIEST = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
