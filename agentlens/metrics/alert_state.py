"""Alert state: what `agentlens alerts` announced, kept in the `alert_state` table, so that a cron job
announces a firing alert once, not at every run, and announces its end once.

    report = alerts.evaluate(lens, rules, state="record")   # what the CLI does (state="read": look only)
    [a.notice for a in report.alerts]                         # new | repeat | suppressed | resolved | held | None

An alert is one rule, one group of a rule with `by`, or one burn-rate window pair of an SLO; its key is
`[rule name, labels]` (labels: the group's dimensions, or the SLO pair's windows). Against what the table
holds for it, an evaluation is:

- **new**: it fires and did not before (or had resolved): announced; `firing_since` is the evaluation time.
- **suppressed**: it fires and was announced before: not announced again, unless the rule's `renotify`
  interval has passed since it was last announced: then **repeat** (announced again).
- **resolved**: it fired and is now ok, or has no data (fewer events than `min_runs`, or a group of a rule
  with `by` that had no run in the window): announced once, with how long it fired and what it says now.
- **held**: it fired and has no data now, and its rule says `no_data = "hold"`: no data "neither fires nor
  is ok", so the state stays as it was, firing, and nothing is announced; it resolves when an evaluation
  with data finds it ok. (For SLO pairs whose short window is often empty at low traffic, which would
  otherwise resolve and fire again.)

Times are evaluation times (`--at`, default now), so that replaying a period with `--at` behaves as the
cron job did. An evaluation at a time before one already recorded for the same alerts records nothing
(`StaleEvaluation` in the report's `state_note`): the state only moves forward.

Writing is a write operation (store.ops): run where the database is, under its write lock, the reading of
the previous state and the writing of the new one in one transaction, so that two cron jobs at once
announce an alert once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from ..core.duck import transaction
from ..store import Store
from ..store.ops import write_op

NOTICES = ("new", "repeat", "suppressed", "resolved", "held")
ANNOUNCED = ("new", "repeat", "resolved")

STATE = """
SELECT alert_key, firing, firing_since, last_notified_at, notifications, resolved_at, evaluated_at
FROM alert_state
"""

UPSERT = """
INSERT OR REPLACE INTO alert_state (alert_key, rule, kind, severity, labels, firing, firing_since, last_notified_at,
  notifications, last_value, summary, resolved_at, evaluated_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())
"""


@dataclass(frozen=True)
class Prior:
    """What the table holds for one alert."""

    firing: bool
    firing_since: dt.datetime | None
    last_notified_at: dt.datetime | None
    notifications: int
    resolved_at: dt.datetime | None
    evaluated_at: dt.datetime | None


def alert_key(rule: str, labels: Mapping[str, Any]) -> str:
    return json.dumps([rule, dict(labels)], sort_keys=True, ensure_ascii=False, default=str)


def read(store: Store) -> dict[str, Prior]:
    """The recorded state of every alert (none in a database older than the table, opened read-only)."""
    try:
        rows = store.con.execute(STATE).fetchall()
    except duckdb.CatalogException:
        return {}
    return {r[0]: Prior(bool(r[1]), r[2], r[3], int(r[4] or 0), r[5], r[6]) for r in rows}


FIRING = """
SELECT alert_key, rule, kind, severity, labels FROM alert_state WHERE firing ORDER BY alert_key
"""


def firing(store: Store) -> list[dict[str, Any]]:
    """The alerts recorded as firing."""
    try:
        rows = store.con.execute(FIRING).fetchall()
    except duckdb.CatalogException:
        return []
    return [{"key": r[0], "rule": r[1], "kind": r[2], "severity": r[3], "labels": json.loads(r[4] or "{}")}
            for r in rows]


def plan(evaluated: Sequence[Mapping[str, Any]], prior: Mapping[str, Prior],
         at: dt.datetime) -> list[dict[str, Any]]:
    """The notice of each evaluated alert and its new state (pure). `evaluated`: dicts with key, rule, kind,
    severity, labels, status (firing | ok | no_data), value, summary, renotify_seconds (None: never again),
    hold_no_data (no data keeps a firing alert firing, rather than resolving it).
    Returns, per alert, `notice` (or None), `state` (the row's values, None: nothing to write)."""
    out = []
    for a in evaluated:
        p = prior.get(a["key"])
        was_firing = p is not None and p.firing
        since, notified, count, resolved = ((p.firing_since, p.last_notified_at, p.notifications, p.resolved_at)
                                            if p is not None else (None, None, 0, None))
        notice: str | None = None
        if a["status"] == "firing":
            if not was_firing:
                notice, since, notified, count, resolved = "new", at, at, 1, None
            else:
                every = a.get("renotify_seconds")
                due = every is not None and (notified is None or (at - notified).total_seconds() >= every)
                notice = "repeat" if due else "suppressed"
                if due:
                    notified, count = at, count + 1
            firing = True
        elif a["status"] == "ok" or not a.get("hold_no_data"):
            if was_firing:
                notice, resolved = "resolved", at
            firing = False
        else:  # no data, and the rule says `no_data = "hold"`: the state stays
            notice = "held" if was_firing else None
            firing = was_firing
        write = p is not None or firing
        state = None if not write else {
            "firing": firing, "firing_since": since, "last_notified_at": notified, "notifications": count,
            "resolved_at": resolved, "evaluated_at": at}
        out.append({"key": a["key"], "notice": notice, "state": state,
                    "prior": None if p is None else {"firing_since": p.firing_since,
                                                     "last_notified_at": p.last_notified_at}})
    return out


def _stale(evaluated: Sequence[Mapping[str, Any]], prior: Mapping[str, Prior], at: dt.datetime) -> dt.datetime | None:
    """The latest evaluation recorded for these alerts when it is after `at` (replaying the past), else None."""
    times = [p.evaluated_at for a in evaluated if (p := prior.get(a["key"])) is not None and p.evaluated_at]
    latest = max(times, default=None)
    return latest if latest is not None and latest > at else None


@write_op("alert_state")
def record(store: Store, at: dt.datetime, evaluated: list[dict[str, Any]]) -> dict[str, Any]:
    """Decide each alert's notice against the recorded state and record the new state, in one transaction.
    Returns {"decisions": plan(...), "stale": the later evaluation time when `at` is before one already
    recorded (then nothing is written), else None}."""
    con = store.con
    with transaction(con):
        prior = read(store)
        stale = _stale(evaluated, prior, at)
        decisions = plan(evaluated, prior, at)
        if stale is None:
            rows = []
            for a, d in zip(evaluated, decisions, strict=True):
                s = d["state"]
                if s is None:
                    continue
                rows.append([a["key"], a["rule"], a["kind"], a["severity"],
                             json.dumps(a["labels"], ensure_ascii=False, default=str), s["firing"],
                             s["firing_since"], s["last_notified_at"], s["notifications"], a["value"], a["summary"],
                             s["resolved_at"], s["evaluated_at"]])
            if rows:
                con.executemany(UPSERT, rows)
    return {"decisions": decisions, "stale": stale}


def look(store: Store, at: dt.datetime, evaluated: list[dict[str, Any]]) -> dict[str, Any]:
    """What `record` would decide, without writing (`agentlens alerts --all`)."""
    prior = read(store)
    return {"decisions": plan(evaluated, prior, at), "stale": _stale(evaluated, prior, at)}
