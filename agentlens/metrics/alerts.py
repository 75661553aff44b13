"""Alerts from a rules file: thresholds on the golden signals, and SLOs with the multiwindow,
multi-burn-rate alerts of the Google SRE Workbook (ch. 5, "Alerting on SLOs").

    rules = alerts.load_rules("alerts.toml")
    report = alerts.evaluate(lens, rules, at="2026-11-12T18:00:00Z")
    report.firing            # the alerts that fire, with the numbers behind them
    report.to_json()         # what `agentlens alerts --format json` prints and --webhook posts
                             # (agentlens.present.notify.post_webhook delivers it)
    report = alerts.evaluate(lens, rules, state="record")   # what `agentlens alerts` does: each alert
    report.announced         # compared with the alert state (new, repeat, resolved) and the state recorded
                             # (agentlens.metrics.alert_state; state="read": compare only, as --all)

The rules file (TOML; every key is checked, errors name the file and the key):

```toml
[defaults]                     # optional: applies to every rule that does not say otherwise
min_runs = 20                  # a window with fewer events is "no data": it neither fires nor is ok
where = { environment = "production" }

[[threshold]]
name = "spend rate"            # $100/day = $4.16/h
metric = "cost_usd_per_hour"   # any column of `agentlens signals`, or runs/errors/cost_usd/
above = 4.16                   #   input_tokens/output_tokens/llm_calls _per_hour
window = "15m"                 # measured over the 15 minutes before --at
severity = "page"              # page (default) or ticket
min_runs = 1

[[threshold]]
name = "p95 latency by feature"
metric = "latency_p95_ms"
above = 30000
window = "1h"
by = ["feature"]               # one alert per feature

[[slo]]
name = "support-agent availability"
objective = 0.99               # 99% of runs succeed
sli = "errors"                 # errors | latency | implicit | cost | llm_errors | rate_limited
period = "30d"                 # the SLO period (error budget consumed is reported against it)
min_runs = 10                  # guard on the long window (the short one needs short_min_runs = 1)
where = { agent_name = "support-agent" }
renotify = "4h"                # announce it again every 4h while it fires (default: once)
no_data = "hold"               # a firing pair with no data now stays firing (default: "resolve")
# windows default to the SRE Workbook's table 5-8:
#   page 14.4x over 1h and 5m, page 6x over 6h and 30m, ticket 1x over 3d and 6h
```

Events: runs count in a window when they ended in it (`coalesce(ended_at, started_at)`: their
outcome is known), LLM calls likewise by their own end. A burn-rate pair fires when both its long
and its short window burn the error budget faster than its rate: error ratio > burn_rate x (1 -
objective). A window with fewer events than its guard is "no data" and the pair does not fire.
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..core import patterns
from ..core.config import Invalid, Section, number, read_toml, text
from ..core.dimensions import GROUP_DIMENSIONS, RUN_DIMENSIONS
from ..core.results import BaseResult, Result
from ..core.timeparse import format_duration, parse_duration, parse_time
from ..store import Store
from . import alert_state
from . import queries as Q
from .signals import _PARAM, SIGNAL_COLUMNS, has_failures, make_query, signals


class RulesError(ValueError):
    """The rules file is unreadable or wrong (the message names the file and the key)."""


SEVERITIES = ("page", "ticket")
RATES = {"runs_per_hour": "runs", "errors_per_hour": "errors", "cost_usd_per_hour": "cost_usd",
         "input_tokens_per_hour": "input_tokens", "output_tokens_per_hour": "output_tokens",
         "llm_calls_per_hour": "llm_calls"}
METRICS = tuple(c for c in SIGNAL_COLUMNS) + tuple(RATES)
COUNTS = {"runs", "errors", "llm_calls", "tool_calls", "input_tokens", "output_tokens", "cost_usd",
          "rate_limited_calls", "rate_limited_runs", "timed_runs", *RATES}
SLIS = {
    "errors": "runs with status error",
    "latency": "runs slower than threshold_ms (runs without a duration are not events)",
    "implicit": "runs with status error or a failure mode (needs failure classification)",
    "cost": "runs costing more than max_cost_usd (runs without a cost are not events)",
    "llm_errors": "LLM calls that failed",
    "rate_limited": "LLM calls rejected for a rate limit",
}


@dataclass(frozen=True)
class BurnWindow:
    severity: str
    long: dt.timedelta
    short: dt.timedelta
    burn_rate: float


# Google SRE Workbook, table 5-8 (99.9% SLO; the burn rates hold for any objective).
WORKBOOK_WINDOWS = (
    BurnWindow("page", dt.timedelta(hours=1), dt.timedelta(minutes=5), 14.4),
    BurnWindow("page", dt.timedelta(hours=6), dt.timedelta(minutes=30), 6.0),
    BurnWindow("ticket", dt.timedelta(days=3), dt.timedelta(hours=6), 1.0),
)


@dataclass(frozen=True)
class Threshold:
    name: str
    metric: str
    window: dt.timedelta
    above: float | None = None
    below: float | None = None
    severity: str = "page"
    by: tuple[str, ...] = ()
    where: tuple[tuple[str, str], ...] = ()
    min_runs: int = 1
    renotify: dt.timedelta | None = None
    no_data: str = "resolve"


@dataclass(frozen=True)
class Slo:
    name: str
    objective: float
    sli: str = "errors"
    period: dt.timedelta = dt.timedelta(days=30)
    windows: tuple[BurnWindow, ...] = WORKBOOK_WINDOWS
    where: tuple[tuple[str, str], ...] = ()
    min_runs: int = 1
    short_min_runs: int = 1
    threshold_ms: float | None = None
    max_cost_usd: float | None = None
    renotify: dt.timedelta | None = None
    no_data: str = "resolve"


@dataclass(frozen=True)
class Rules:
    thresholds: tuple[Threshold, ...] = ()
    slos: tuple[Slo, ...] = ()
    path: str | None = None


# --- reading the rules file ---------------------------------------------------------------------------------
def _count(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise Invalid("must be a whole number of events (0 or more)")
    return v


def _above_zero(v: Any) -> float:
    x = number(v)
    if x <= 0:
        raise Invalid("must be above 0")
    return x


def _duration(v: Any) -> dt.timedelta:
    try:
        return parse_duration(v, "")
    except ValueError as e:
        raise Invalid(str(e).strip(), show_value=False) from None


def _severity(v: Any) -> str:
    if v not in SEVERITIES:
        raise Invalid(f"must be one of {', '.join(SEVERITIES)}")
    return str(v)


def _where(t: Section, key: str) -> tuple[tuple[str, str], ...]:
    """A `where = { dimension = "value" }` table of a rule (or of [defaults])."""
    if not isinstance(t.get(key), dict):
        raise t.fail('must be a table of run dimensions, e.g. { feature = "refund" }', key)
    where = t.table(key).only(RUN_DIMENSIONS, "a run dimension")
    return tuple((d, where.value(d, _string)) for d in where)


def _no_data(v: Any) -> str:
    if v not in ("resolve", "hold"):
        raise Invalid('must be "resolve" (a firing alert with no data now is resolved) or "hold" (it stays '
                      'firing until data says it is ok)')
    return str(v)


def _string(v: Any) -> str:
    if not isinstance(v, str):
        raise Invalid("must be a string")
    return v


def _by(v: Any) -> tuple[str, ...]:
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
        raise Invalid("must be a list of run dimensions")
    for d in items:
        if d not in GROUP_DIMENSIONS:
            raise Invalid(f"names {d!r}, not a run dimension to group by; use {', '.join(GROUP_DIMENSIONS)}",
                          show_value=False)
    return tuple(items)


def _rules(doc: Section, table: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> Iterator[Section]:
    """Each `[[table]]` entry, named in messages by its number and name (`[[slo]] #2 (api)`), checked for
    unknown and missing keys."""
    for t in doc.tables(table):
        if "name" in t:
            t = t.named(f" ({t.value('name', text)})")
        yield t.only(allowed).require(*required)


_THRESHOLD_KEYS = ("name", "metric", "above", "below", "window", "severity", "by", "where", "min_runs", "renotify",
                   "no_data")
_SLO_KEYS = ("name", "objective", "sli", "period", "windows", "where", "min_runs", "short_min_runs",
             "threshold_ms", "max_cost_usd", "renotify", "no_data")
_WINDOW_KEYS = ("severity", "long", "short", "burn_rate")


def load_rules(path: str | Path) -> Rules:
    """Read and check a rules file."""
    return rules_from_dict(read_toml(path, "rules file", RulesError), str(path))


def rules_from_dict(data: Mapping[str, Any], path: str | None = None) -> Rules:
    doc = Section.document(data, path or "rules", RulesError).only(("defaults", "threshold", "slo"))
    defaults = doc.table("defaults").only(("min_runs", "where", "severity", "renotify", "no_data"))
    d_min = defaults.value("min_runs", _count, 1)
    d_renotify = defaults.value("renotify", _duration, None)
    d_no_data = defaults.value("no_data", _no_data, "resolve")
    d_where = _where(defaults, "where") if "where" in defaults else ()
    d_sev = defaults.value("severity", _severity, "page")

    thresholds, slos, names = [], [], set()
    for t in _rules(doc, "threshold", _THRESHOLD_KEYS, ("name", "metric", "window")):
        metric = t.value("metric", text)
        if metric not in METRICS:
            raise t.fail(f"{metric!r} is not a metric; use one of {', '.join(METRICS)}", "metric")
        if ("above" in t) == ("below" in t):
            raise t.fail("needs exactly one of above = N or below = N")
        thresholds.append(Threshold(
            name=t["name"], metric=metric, window=t.value("window", _duration),
            above=t.value("above", number, None), below=t.value("below", number, None),
            severity=t.value("severity", _severity, d_sev),
            by=t.value("by", _by, ()),
            where=_where(t, "where") if "where" in t else d_where,
            min_runs=t.value("min_runs", _count, d_min),
            renotify=t.value("renotify", _duration, d_renotify),
            no_data=t.value("no_data", _no_data, d_no_data),
        ))
        if t["name"] in names:
            raise t.fail("is used by another rule: names must be unique", "name")
        names.add(t["name"])

    for s in _rules(doc, "slo", _SLO_KEYS, ("name", "objective")):
        objective = s.value("objective", number)
        if not 0 < objective < 1:
            raise s.fail(f"must be between 0 and 1 (0.999 for 99.9%), got {objective!r}", "objective")
        sli = s.get("sli", "errors")
        if sli not in SLIS:
            raise s.fail(f"{sli!r} is not an SLI; use one of {', '.join(SLIS)}", "sli")
        threshold_ms = s.value("threshold_ms", _above_zero, None)
        max_cost = s.value("max_cost_usd", _above_zero, None)
        if sli == "latency" and threshold_ms is None:
            raise s.fail('is required with sli = "latency" (runs slower are bad)', "threshold_ms")
        if sli == "cost" and max_cost is None:
            raise s.fail('is required with sli = "cost" (runs costing more are bad)', "max_cost_usd")
        windows: tuple[BurnWindow, ...] = WORKBOOK_WINDOWS
        if "windows" in s:
            if not isinstance(s["windows"], list) or not s["windows"]:
                raise s.fail("must be a non-empty array of tables", "windows")
            ws = []
            for w in s.tables("windows"):
                w.only(_WINDOW_KEYS).require("long", "short", "burn_rate")
                long_, short = w.value("long", _duration), w.value("short", _duration)
                if short >= long_:
                    raise w.fail("must be shorter than long (the Workbook uses 1/12 of it)", "short")
                ws.append(BurnWindow(w.value("severity", _severity, "page"), long_, short,
                                     w.value("burn_rate", _above_zero)))
            windows = tuple(ws)
        slos.append(Slo(
            name=s["name"], objective=objective, sli=sli,
            period=s.value("period", _duration, dt.timedelta(days=30)),
            windows=windows,
            where=_where(s, "where") if "where" in s else d_where,
            min_runs=s.value("min_runs", _count, d_min),
            short_min_runs=s.value("short_min_runs", _count, 1),
            threshold_ms=threshold_ms, max_cost_usd=max_cost,
            renotify=s.value("renotify", _duration, d_renotify),
            no_data=s.value("no_data", _no_data, d_no_data),
        ))
        if s["name"] in names:
            raise s.fail("is used by another rule: names must be unique", "name")
        names.add(s["name"])
    if not thresholds and not slos:
        raise RulesError(f"{path or 'rules'}: no [[threshold]] or [[slo]] rules")
    return Rules(tuple(thresholds), tuple(slos), path)


# --- evaluation -----------------------------------------------------------------------------------------------
@dataclass
class Alert:
    """One evaluated rule (or one group of a rule with `by`, or one burn-rate window pair).

    `labels` tell it apart from the other alerts of its rule (the group's dimensions, the SLO pair's
    windows); `key` identifies it from one evaluation to the next (the alert state). `notice` is set when
    the evaluation is compared with the recorded state (agentlens.metrics.alert_state): new, repeat,
    suppressed, resolved, held, or None (nothing to say); `since` (when it started firing, as recorded) and
    `resolved_for` (how long it fired, for a resolved one) come with it."""

    rule: str
    kind: str  # threshold | slo
    severity: str
    status: str  # firing | ok | no_data
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    renotify: dt.timedelta | None = None
    no_data: str = "resolve"  # what no data does to it when it was firing: resolve | hold
    notice: str | None = None
    since: dt.datetime | None = None
    last_notified: dt.datetime | None = None
    fired_for: dt.timedelta | None = None
    subject: str = ""

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    @property
    def key(self) -> str:
        return alert_state.alert_key(self.rule, self.labels)

    @property
    def value(self) -> float | None:
        """The number it is decided on: the threshold's metric, the SLO pair's long-window burn rate."""
        if self.kind == "slo":
            v = self.details.get("long", {}).get("burn_rate")
        else:
            v = self.details.get("value")
        return float(v) if v is not None else None

    def label(self) -> str:
        """What its summary is about: the rule and its group or windows."""
        return self.subject or self.rule

    def finding(self) -> str:
        """Its summary without the subject: the numbers."""
        head = self.label() + ": "
        return self.summary[len(head):] if self.summary.startswith(head) else self.summary

    def to_dict(self) -> dict[str, Any]:
        out = {"rule": self.rule, "kind": self.kind, "severity": self.severity, "status": self.status,
               "summary": self.summary, **self.details}
        if self.renotify is not None:
            out["renotify"] = format_duration(self.renotify)
        if self.notice is not None:
            out["notice"] = self.notice
            out["firing_since"] = _iso(self.since)
            out["last_notified_at"] = _iso(self.last_notified)
            if self.fired_for is not None:
                out["fired_for"] = _span(self.fired_for)
                out["fired_seconds"] = self.fired_for.total_seconds()
        return out


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _span(td: dt.timedelta) -> str:
    """A length of time as people say it: 4h, 1d 2h, 35m, 20s."""
    secs = int(td.total_seconds())
    if secs < 60:
        return f"{secs}s"
    d, rest = divmod(secs, 86400)
    h, rest = divmod(rest, 3600)
    m = rest // 60
    parts = [f"{d}d" if d else "", f"{h}h" if h else "", f"{m}m" if m and not d else ""]
    return " ".join(p for p in parts if p)


# what each notice says, in the text a webhook shows and on the terminal
_SAYS = {"new": "FIRING", "repeat": "STILL FIRING", "suppressed": "still firing, announced before",
         "resolved": "RESOLVED", "held": "firing, held: no data now"}


@dataclass
class AlertReport(BaseResult):
    """The alerts evaluated at `at`. With the alert state (`state` of `evaluate`), each alert carries its
    notice and the report announces only what is new, repeated after `renotify`, or resolved
    (`announced`); `show_all` lists every alert in the terminal table (`agentlens alerts --all`)."""

    at: dt.datetime
    alerts: list[Alert]
    rules_path: str | None = None
    state: str | None = None  # None: no alert state; "record": compared with it and recorded; "read": compared
    state_note: str | None = None  # why the state was not used or not recorded
    show_all: bool = True
    stateful: bool = False  # the alerts were compared with the state: each carries its notice

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.firing]

    @property
    def announced(self) -> list[Alert]:
        """What this evaluation announces: with the state, the new, repeated and resolved alerts; without
        it, every firing alert."""
        if not self.stateful:
            return sorted(self.firing, key=_order)
        return [a for a in sorted(self.alerts, key=lambda a: (_NOTICE_ORDER[a.notice or ""], _order(a)))
                if a.notice in alert_state.ANNOUNCED]

    def counts(self) -> dict[str, int]:
        return {n: sum(a.notice == n for a in self.alerts) for n in alert_state.NOTICES}

    def text(self) -> str:
        at = f"{self.at:%Y-%m-%d %H:%M:%S}Z"
        if not self.stateful:
            f = sorted(self.firing, key=_order)
            if not f:
                return f"agentlens: no alert firing at {at} ({len(self.alerts)} evaluated)"
            lines = [f"agentlens: {len(f)} alert(s) firing at {at}"]
            for a in f:
                lines.append(f"[{a.severity}] {a.summary}")
                if a.details.get("look"):
                    lines.append(f"    runs: {a.details['look']}")
            return "\n".join(lines)
        c = self.counts()
        head = (f"agentlens at {at}: {c['new']} new, {c['repeat']} repeated, {c['resolved']} resolved; "
                f"{c['suppressed']} still firing and announced before"
                + (f", {c['held']} fired before and have no data now" if c["held"] else "")
                + f" ({len(self.alerts)} evaluated)")
        lines = [head]
        for a in self.announced:
            lines.append(f"[{a.severity}] {self.describe(a)}")
            if a.notice != "resolved" and a.details.get("look"):
                lines.append(f"    runs: {a.details['look']}")
        return "\n".join(lines)

    def describe(self, a: Alert) -> str:
        """One line for an alert with its notice."""
        if a.notice == "resolved":
            since = f" (since {a.since:%Y-%m-%d %H:%M}Z)" if a.since else ""
            fired = f" after {_span(a.fired_for)}{since}" if a.fired_for is not None else ""
            return f"RESOLVED{fired}: {a.label()}; now {a.finding()}"
        if a.notice in ("repeat", "suppressed", "held") and a.since is not None:
            when = f"since {a.since:%Y-%m-%d %H:%M}Z ({_span(self.at - a.since)})"
            head = {"repeat": f"STILL FIRING {when}", "suppressed": f"still firing {when}, announced before",
                    "held": f"firing {when}, held: no data now"}[a.notice]
            return f"{head}: {a.summary}"
        return f"{_SAYS.get(a.notice or '', a.status.upper())}: {a.summary}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "rules": self.rules_path,
            "firing": len(self.firing),
        }
        if self.state is not None:
            c = self.counts()
            out.update({"state": "recorded" if self.state == "record" and self.state_note is None else
                        "read" if self.stateful else "not kept",
                        "state_note": self.state_note, "new": c["new"], "repeated": c["repeat"],
                        "suppressed": c["suppressed"], "resolved": c["resolved"], "held": c["held"]})
        out["text"] = self.text()  # a Slack-style incoming webhook shows this field
        out["alerts"] = [a.to_dict() for a in sorted(self.alerts, key=_order)]
        return out

    def result(self) -> Result:
        facts: dict[str, Any] = {"at": self.at, "rules": self.rules_path or "", "evaluated": len(self.alerts),
                                 "firing": len(self.firing)}
        if self.stateful:
            c = self.counts()
            facts.update({"new": c["new"], "repeated (renotify)": c["repeat"], "resolved": c["resolved"],
                          "still firing, announced before": c["suppressed"]})
            if c["held"]:
                facts["firing before, no data now (held)"] = c["held"]
        if self.state_note:
            facts["alert state"] = self.state_note
        if self.stateful and not self.show_all:
            rows = [{"notice": a.notice, "severity": a.severity,
                     "summary": self.describe(a) + (f"; runs: {a.details['look']}"
                                                    if a.notice != "resolved" and a.details.get("look") else "")}
                    for a in self.announced]
            schema = {"notice": pl.String, "severity": pl.String, "summary": pl.String}
            return Result("alerts", facts, {"announced": pl.DataFrame(rows, schema=schema)})
        rows = [{"status": a.status, "notice": a.notice, "severity": a.severity,
                 "summary": self.describe(a) if a.notice in ("resolved", "repeat", "suppressed", "held") else a.summary}
                for a in sorted(self.alerts, key=_order)]
        schema = {"status": pl.String, "notice": pl.String, "severity": pl.String, "summary": pl.String}
        table = pl.DataFrame(rows, schema=schema)
        if not self.stateful:
            table = table.drop("notice")
        return Result("alerts", facts, {"alerts (firing first)": table})


_NOTICE_ORDER = {"new": 0, "repeat": 1, "resolved": 2, "suppressed": 3, "held": 4, "": 5}


def _order(a: Alert) -> tuple[int, int, str]:
    return ({"firing": 0, "no_data": 1, "ok": 2}[a.status], SEVERITIES.index(a.severity), a.rule)


def evaluate(lens: Store, rules: Rules, at: str | dt.datetime | None = None, examples: int = 3,
             state: str | None = None, deliver: Callable[[AlertReport], Any] | None = None) -> AlertReport:
    """Evaluate every rule at `at` (default: now). A firing alert names up to `examples` runs of its window
    (`example_runs`) and the command that lists them (`look`).

    `state`: None (default) evaluates alone: every firing alert is reported. "record" compares each alert
    with the recorded alert state and records the new one (what `agentlens alerts` does from cron: see
    agentlens.metrics.alert_state), "read" compares without recording (`--all`). On a store where the state
    cannot be kept (ClickHouse, a database opened read-only) "record" reads and writes nothing and
    `state_note` says why.

    `deliver(report)` (e.g. posting `report.announced` to a webhook) is called once the notices are decided
    and before the state is recorded: when it raises, nothing is recorded, so what it failed to deliver is
    announced again at the next evaluation."""
    t = parse_time(at, what="--at") if at is not None else dt.datetime.now(dt.UTC)
    assert t is not None
    alerts: list[Alert] = []
    for th in rules.thresholds:
        for a in _threshold(lens, th, t):
            a.labels, a.renotify, a.no_data = dict(a.details.get("group", {})), th.renotify, th.no_data
            a.subject = _subject(th.name, a.labels)
            if a.firing and examples:
                group = tuple(a.details.get("group", {}).items())
                _add_examples(lens, a, t - th.window, t, th.where + group, th.metric, examples)
            alerts.append(a)
    for slo in rules.slos:
        for a in _slo(lens, slo, t):
            a.labels = {"long_window": a.details["long_window"], "short_window": a.details["short_window"]}
            a.renotify, a.no_data = slo.renotify, slo.no_data
            a.subject = (f"{slo.name} ({a.severity}: {a.details['burn_rate_threshold']:g}x over "
                         f"{a.details['long_window']} and {a.details['short_window']})")
            if a.firing and examples:
                longest = max(w.long for w in slo.windows if w.severity == a.severity)
                _add_examples(lens, a, t - longest, t, slo.where, slo.sli, examples)
            alerts.append(a)
    report = AlertReport(t, alerts, rules.path, state=state)
    if state is None:
        if deliver is not None:
            deliver(report)
        return report
    if state not in STATES:
        raise ValueError(f"state {state!r}: use one of {', '.join(STATES)} (or None)")
    why = state_unavailable(lens)
    if why is not None and (state == "record" or getattr(lens, "clickhouse", None) is not None):
        report.state_note = why
    else:
        report.alerts += _absent(lens, rules, report.alerts)
        _compare_with_state(lens, report, "read")
    if deliver is not None:
        deliver(report)
    if state == "record" and report.stateful and report.state_note is None:
        _compare_with_state(lens, report, "record")  # decided again under the write lock, and recorded
    return report


STATES = ("record", "read")


def _subject(rule: str, group: Mapping[str, Any]) -> str:
    return rule + (" [" + ", ".join(f"{k}={v}" for k, v in group.items()) + "]" if group else "")


def _absent(lens: Store, rules: Rules, alerts: list[Alert]) -> list[Alert]:
    """Alerts recorded as firing, of rules of this file, that this evaluation has no result for (a group of
    a rule with `by` that had no run in the window): no data, so that the state says they are held."""
    seen = {a.key for a in alerts}
    kinds = {**{t.name: ("threshold", t.renotify, t.no_data) for t in rules.thresholds},
             **{s.name: ("slo", s.renotify, s.no_data) for s in rules.slos}}
    out = []
    for row in alert_state.firing(lens):
        if row["key"] in seen or row["rule"] not in kinds or kinds[row["rule"]][0] != row["kind"]:
            continue
        subject = _subject(row["rule"], row["labels"])
        out.append(Alert(row["rule"], row["kind"], row["severity"], "no_data",
                         f"{subject}: no data: no run in its window", {"group": row["labels"]},
                         labels=row["labels"], renotify=kinds[row["rule"]][1], no_data=kinds[row["rule"]][2],
                         subject=subject))
    return out


def state_unavailable(lens: Store) -> str | None:
    """Why the alert state cannot be kept in this store (None: it can)."""
    if getattr(lens, "clickhouse", None) is not None:
        return ("not kept on a ClickHouse store (it takes the ingest's writes only): every firing alert is "
                "announced at every run and no resolved notice is sent")
    if lens.read_only:
        return (f"not kept: {lens.path} is open read-only here: every firing alert is announced at every run "
                "and no resolved notice is sent")
    return None


def _compare_with_state(lens: Store, report: AlertReport, state: str) -> None:
    evaluated = [{"key": a.key, "rule": a.rule, "kind": a.kind, "severity": a.severity, "labels": a.labels,
                  "status": a.status, "value": a.value, "summary": a.summary,
                  "renotify_seconds": a.renotify.total_seconds() if a.renotify is not None else None,
                  "hold_no_data": a.no_data == "hold"}
                 for a in report.alerts]
    got = (alert_state.record if state == "record" else alert_state.look)(lens, report.at, evaluated)
    report.stateful = True
    for a, d in zip(report.alerts, got["decisions"], strict=True):
        a.notice = d["notice"]
        s, p = d["state"] or {}, d["prior"] or {}
        a.since = s.get("firing_since") or p.get("firing_since")
        a.last_notified = s.get("last_notified_at") or p.get("last_notified_at")
        if a.notice == "resolved" and a.since is not None:
            a.fired_for = report.at - a.since
    if got["stale"] is not None:
        report.state_note = (f"not recorded: these alerts were evaluated at {got['stale']:%Y-%m-%d %H:%M:%S}Z, "
                             "after --at: the state only moves forward (notices as that state says)")
    elif state == "read" and report.state == "read":
        report.state_note = "read, not recorded (--all)"


# The runs to look at first among those that ended in [since, until) (the alerts' events) and match the rule's
# where / group: failed runs first, then by what the rule measures (slowest for latency, costliest for cost,
# otherwise those with the most error spans), the latest first. `{where}`: ' AND "dim" IS NOT DISTINCT FROM $w0'.
EXAMPLE_RUNS = """
SELECT run_id, started_at, status FROM runs
WHERE coalesce(ended_at, started_at) >= $since AND coalesce(ended_at, started_at) < $until{where}
ORDER BY status = 'error' DESC, {order} DESC NULLS LAST, coalesce(ended_at, started_at) DESC, run_id
LIMIT $n
"""
_EXAMPLE_ORDER = {"latency": "duration_ms", "cost": "cost_usd"}


def _example_order(metric: str) -> str:
    for key, col in _EXAMPLE_ORDER.items():
        if key in metric:
            return col
    return "error_count"


def _add_examples(lens: Store, alert: Alert, since: dt.datetime, until: dt.datetime,
                  where: tuple[tuple[str, Any], ...], metric: str, n: int) -> None:
    """Name the alert's example runs and the `agentlens runs` command that lists the runs of its window."""
    clause = "".join(f' AND "{name}" IS NOT DISTINCT FROM $w{i}' for i, (name, _) in enumerate(where))
    sql = EXAMPLE_RUNS.format(where=clause, order=_example_order(metric))  # names from the checked rules
    rows = lens.con.execute(sql, {"since": since, "until": until, "n": n,
                                  **{f"w{i}": v for i, (_, v) in enumerate(where)}}).fetchall()
    alert.details["example_runs"] = [r[0] for r in rows]
    # the runs list starts from the earliest start among them (a run counts by its end, and may have started
    # before the window)
    start = min([since, *(r[1] for r in rows if r[1] is not None)])
    opts = [("--since", f"{start:%Y-%m-%dT%H:%M:%SZ}"), ("--until", f"{until:%Y-%m-%dT%H:%M:%SZ}")]
    opts += [("--where", f"{name}={'(none)' if value is None else value}") for name, value in where]
    if any(r[2] == "error" for r in rows):
        opts.append(("--status", "error"))
    alert.details["look"] = "agentlens runs " + " ".join(f"{flag} {shlex.quote(str(v))}" for flag, v in opts)
    if rows:
        alert.summary += f"; e.g. run {rows[0][0]} (agentlens trace {shlex.quote(rows[0][0])})"



def _fmt(v: float | None, metric: str) -> str:
    if v is None:
        return "n/a"
    if "usd" in metric:
        return f"${v:,.4f}" if abs(v) < 1 else f"${v:,.2f}"
    if metric.endswith(("_rate", "_share")):
        return f"{v:.2%}"
    if metric.endswith("_ms"):
        return f"{v:,.0f} ms"
    return f"{v:,.4g}" if isinstance(v, float) and not float(v).is_integer() else f"{v:,.0f}"


def _threshold(lens: Store, th: Threshold, at: dt.datetime) -> list[Alert]:
    since = at - th.window
    q = make_query(by=th.by, since=since, until=at, where=dict(th.where), time="end")
    df = signals(lens, query=q)
    hours = th.window.total_seconds() / 3600
    base = RATES.get(th.metric)
    rows = df.to_dicts()
    if not rows and not th.by:
        rows = [{c: (0 if c in COUNTS else None) for c in SIGNAL_COLUMNS}]
    if not rows:  # grouped, and no run at all in the window
        return [Alert(th.name, "threshold", th.severity, "no_data",
                      f"{th.name}: no run in the last {format_duration(th.window)}",
                      {"metric": th.metric, "window": format_duration(th.window), "runs": 0,
                       "min_runs": th.min_runs, "group": {}})]
    out = []
    op, limit = (">", th.above) if th.above is not None else ("<", th.below)
    for row in rows:
        group = {d: row[d] for d in th.by}
        runs = int(row["runs"] or 0)
        value: float | None
        if base is not None:
            value = float(row[base] or 0) / hours
        else:
            value = float(row[th.metric]) if row[th.metric] is not None else None
        label = th.name + (" [" + ", ".join(f"{k}={v}" for k, v in group.items()) + "]" if group else "")
        details = {"metric": th.metric, "value": value, "operator": op, "threshold": limit,
                   "window": format_duration(th.window), "runs": runs, "min_runs": th.min_runs,
                   "group": group, "where": dict(th.where)}
        if runs < th.min_runs or value is None:
            why = (f"{runs} run(s) in the last {format_duration(th.window)}, fewer than min_runs = {th.min_runs}"
                   if runs < th.min_runs else f"{th.metric} has no value (no run with the data it needs)")
            out.append(Alert(th.name, "threshold", th.severity, "no_data", f"{label}: no data: {why}", details))
            continue
        fires = value > limit if op == ">" else value < limit  # type: ignore[operator]
        words = f"{th.metric} {_fmt(value, th.metric)} {op if fires else ('<=' if op == '>' else '>=')} " \
                f"{_fmt(limit, th.metric)} over the last {format_duration(th.window)} ({runs:,} runs)"
        out.append(Alert(th.name, "threshold", th.severity, "firing" if fires else "ok", f"{label}: {words}",
                         details))
    return out


def slo_windows(slo: Slo) -> list[dt.timedelta]:
    """Every window an SLO needs counted: its long and short windows, and its period."""
    return sorted({w.long for w in slo.windows} | {w.short for w in slo.windows} | {slo.period})


def _slo(lens: Store, slo: Slo, at: dt.datetime) -> list[Alert]:
    return decide(slo, slo_counts(lens, slo, at, slo_windows(slo)))


def decide(slo: Slo, counts: Mapping[dt.timedelta, tuple[int, int]]) -> list[Alert]:
    """The burn-rate decision, one Alert per window pair, from (events, bad) per window."""
    budget = round(1 - slo.objective, 12)  # 1 - 0.999 is 0.0010000000000000009 in floating point
    period = counts[slo.period]
    period_ratio = period[1] / period[0] if period[0] else None
    out = []
    for w in slo.windows:
        (ln, lb), (sn, sb) = counts[w.long], counts[w.short]
        lr, sr = (lb / ln if ln else None), (sb / sn if sn else None)
        limit = round(w.burn_rate * budget, 12)
        details = {
            "sli": slo.sli, "objective": slo.objective, "burn_rate_threshold": w.burn_rate,
            "error_ratio_threshold": limit,
            "long_window": format_duration(w.long), "short_window": format_duration(w.short),
            "long": _window(ln, lb, lr, budget), "short": _window(sn, sb, sr, budget),
            "budget_consumed_if_sustained": w.burn_rate * w.long / slo.period,
            "period": format_duration(slo.period),
            "period_error_ratio": period_ratio,
            "period_budget_remaining": (1 - period_ratio / budget) if period_ratio is not None else None,
            "min_runs": slo.min_runs, "short_min_runs": slo.short_min_runs, "where": dict(slo.where),
        }
        label = f"{slo.name} ({w.severity}: {w.burn_rate:g}x over {format_duration(w.long)} and " \
                f"{format_duration(w.short)})"
        if ln < slo.min_runs or sn < slo.short_min_runs or lr is None or sr is None:
            short_of = (f"{ln} event(s) in {format_duration(w.long)} (min_runs {slo.min_runs})"
                        if ln < slo.min_runs else
                        f"{sn} event(s) in {format_duration(w.short)} (short_min_runs {slo.short_min_runs})")
            out.append(Alert(slo.name, "slo", w.severity, "no_data", f"{label}: no data: {short_of}", details))
            continue
        fires = lr > limit and sr > limit
        words = (f"burn rate {lr / budget:.1f}x over {format_duration(w.long)} ({lb}/{ln} bad) and "
                 f"{sr / budget:.1f}x over {format_duration(w.short)} ({sb}/{sn} bad), "
                 f"{'both above' if fires else 'not both above'} {w.burn_rate:g}x")
        out.append(Alert(slo.name, "slo", w.severity, "firing" if fires else "ok", f"{label}: {words}", details))
    return out


def _window(n: int, bad: int, ratio: float | None, budget: float) -> dict[str, Any]:
    return {"events": n, "bad": bad, "error_ratio": ratio,
            "burn_rate": round(ratio / budget, 9) if ratio is not None else None}


def slo_counts(lens: Store, slo: Slo, at: dt.datetime,
               windows: list[dt.timedelta]) -> dict[dt.timedelta, tuple[int, int]]:
    """(events, bad events) of the SLI in each window [at - w, at)."""
    if slo.sli == "implicit" and not has_failures(lens):
        raise RulesError(f"SLO {slo.name!r}: sli = \"implicit\" needs failure classification "
                         "(this database has no `failures` table)")
    where = "".join(f' AND "{name}" IS NOT DISTINCT FROM $w{i}' for i, (name, _) in enumerate(slo.where))
    sql = Q.SLO_COUNTS.format(events=Q.SLI_EVENTS[slo.sli].format(where=where))
    values: dict[str, Any] = {
        "at": at, "lo": at - max(windows), "secs": [int(w.total_seconds()) for w in windows],
        "threshold_ms": slo.threshold_ms, "max_cost_usd": slo.max_cost_usd,
        "rate_limit": patterns.RATE_LIMIT, **{f"w{i}": v for i, (_, v) in enumerate(slo.where)},
    }
    used = set(_PARAM.findall(sql))
    rows = lens.con.execute(sql, {k: v for k, v in values.items() if k in used}).fetchall()
    got = {int(s): (int(n), int(b)) for s, n, b in rows}
    return {w: got.get(int(w.total_seconds()), (0, 0)) for w in windows}
