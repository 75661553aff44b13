"""Alerts: thresholds, the SRE Workbook's multiwindow multi-burn-rate decisions, the low-traffic
guard, the rules file's errors, exit codes and the webhook, against numbers worked out by hand."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import shlex
import socket
import subprocess
import sys
import threading
from typing import ClassVar

import pytest
from click.testing import CliRunner
from signals_data import Run, at, write

import agentlens
from agentlens.cli import main
from agentlens.metrics import alerts as A

H, M = dt.timedelta(hours=1), dt.timedelta(minutes=1)
AT = at(0)  # 2026-03-02 10:00 UTC


def slo(**kw):
    return A.rules_from_dict({"slo": [{"name": "avail", "objective": 0.999, **kw}]}).slos[0]


def counts(**windows):
    """(events, bad) per window; windows not given are empty."""
    s = slo()
    base = {w: (0, 0) for w in A.slo_windows(s)}
    names = {"m5": 5 * M, "m30": 30 * M, "h1": H, "h6": 6 * H, "d3": 72 * H, "d30": 720 * H}
    base.update({names[k]: v for k, v in windows.items()})
    return base


def statuses(alerts):
    return [(a.details["long_window"], a.details["short_window"], a.status) for a in alerts]


# --- the burn-rate decision (objective 99.9%: budget 0.1%; page at 14.4x = 1.44% over 1h and 5m,
# page at 6x = 0.6% over 6h and 30m, ticket at 1x = 0.1% over 3d and 6h) ---------------------------
def test_workbook_windows_are_the_default():
    s = slo()
    assert [(w.severity, w.long, w.short, w.burn_rate) for w in s.windows] == [
        ("page", H, 5 * M, 14.4), ("page", 6 * H, 30 * M, 6.0), ("ticket", 72 * H, 6 * H, 1.0)]


def test_fast_burn_pages_when_both_windows_burn():
    # 1h: 20/1000 = 2% > 1.44%; 5m: 2/100 = 2% > 1.44%  -> page. 6h: 20/6000 = 0.33% < 0.6%: no.
    # 3d: 20/72000 = 0.028% < 0.1%: no.
    got = A.decide(slo(), counts(h1=(1000, 20), m5=(100, 2), h6=(6000, 20), m30=(500, 10), d3=(72000, 20),
                                 d30=(720000, 20)))
    assert statuses(got) == [("1h", "5m", "firing"), ("6h", "30m", "ok"), ("3d", "6h", "ok")]
    page = got[0]
    assert page.details["long"]["burn_rate"] == pytest.approx(20.0)  # 2% / 0.1%
    assert page.details["short"]["burn_rate"] == pytest.approx(20.0)
    assert page.details["budget_consumed_if_sustained"] == pytest.approx(14.4 * 1 / 720)  # 2% of 30 days


def test_a_burn_that_stopped_does_not_page():
    # 1h still at 2%, but the last 5 minutes are clean (1/100 = 1% < 1.44%): the page resets
    got = A.decide(slo(), counts(h1=(1000, 20), m5=(100, 1)))
    assert statuses(got)[0] == ("1h", "5m", "ok")


def test_a_short_blip_does_not_page():
    # 5m at 5/100 = 5%, but the hour at 10/1000 = 1% < 1.44%
    got = A.decide(slo(), counts(h1=(1000, 10), m5=(100, 5)))
    assert statuses(got)[0] == ("1h", "5m", "ok")


def test_at_the_threshold_is_not_above_it():
    # 144/10000 = 1.44% exactly: "above 14.4x" is strict
    got = A.decide(slo(), counts(h1=(10000, 144), m5=(1000, 20)))
    assert statuses(got)[0] == ("1h", "5m", "ok")
    got = A.decide(slo(), counts(h1=(10000, 145), m5=(1000, 20)))
    assert statuses(got)[0] == ("1h", "5m", "firing")


def test_slow_burn_pages_on_six_hours_and_tickets_on_three_days():
    # 6h: 42/6000 = 0.7% > 0.6%, 30m: 4/500 = 0.8% > 0.6% -> page; 1h: 7/1000 = 0.7% < 1.44% -> ok
    # 3d: 100/72000 = 0.139% > 0.1% and 6h 0.7% > 0.1% -> ticket
    got = A.decide(slo(), counts(h1=(1000, 7), m5=(80, 1), h6=(6000, 42), m30=(500, 4), d3=(72000, 100)))
    assert statuses(got) == [("1h", "5m", "ok"), ("6h", "30m", "firing"), ("3d", "6h", "firing")]
    assert [a.severity for a in got] == ["page", "page", "ticket"]
    # 3d at 70/72000 = 0.097% < 0.1%: no ticket, though the last 6h burn at 0.7%
    got = A.decide(slo(), counts(h6=(6000, 42), m30=(500, 4), d3=(72000, 70)))
    assert statuses(got)[2] == ("3d", "6h", "ok")


def test_low_traffic_guard_and_empty_windows_are_no_data():
    # the Workbook's caveat: 10 runs an hour, one failure = 10% = a 100x burn. With min_runs = 50
    # the hour is "no data" rather than a page. 6h: 1/600 = 0.17% < 0.6%: ok; 3d: 1/720 = 0.14% and
    # 6h 0.17% > 0.1%: ticket.
    guarded = slo(min_runs=50)
    got = A.decide(guarded, counts(h1=(10, 1), m5=(1, 1), h6=(600, 1), m30=(5, 1), d3=(720, 1)))
    assert statuses(got) == [("1h", "5m", "no_data"), ("6h", "30m", "ok"), ("3d", "6h", "firing")]
    assert "10 event(s) in 1h (min_runs 50)" in got[0].summary
    # without the guard the same hour pages
    assert statuses(A.decide(slo(), counts(h1=(10, 1), m5=(1, 1))))[0] == ("1h", "5m", "firing")
    # an empty short window is no data, not ok, even when the long window burns
    got = A.decide(slo(), counts(h1=(1000, 50)))
    assert statuses(got)[0] == ("1h", "5m", "no_data") and "0 event(s) in 5m" in got[0].summary
    # and nothing at all: every pair is no data
    assert {a.status for a in A.decide(slo(), counts())} == {"no_data"}


def test_custom_windows():
    s = slo(windows=[{"severity": "ticket", "long": "24h", "short": "2h", "burn_rate": 3}])
    assert A.slo_windows(s) == [2 * H, 24 * H, 720 * H]
    got = A.decide(s, {2 * H: (100, 1), 24 * H: (1000, 4), 720 * H: (1000, 4)})  # 1% and 0.4% > 0.3%
    assert statuses(got) == [("1d", "2h", "firing")] and got[0].severity == "ticket"


# --- the counts, end to end from ingested runs ---------------------------------------------------------
def runs_before(n0, minutes_before, count, bad, feature="refund"):
    """`count` runs of 1 ms ending `minutes_before` AT, the first `bad` of them failed."""
    return [Run(n0 + i, AT - dt.timedelta(minutes=minutes_before), 1, feature=feature,
                error="boom" if i < bad else None) for i in range(count)]


@pytest.fixture
def history(tmp_path):
    runs = (runs_before(100, 2, 3, 2)      # in 5m: 3 runs, 2 failed
            + runs_before(200, 20, 3, 0)   # in 30m
            + runs_before(300, 45, 1, 1)   # in 1h
            + runs_before(400, 120, 4, 0)  # in 6h
            + runs_before(500, 2880, 10, 0)  # in 3d (2 days before)
            + runs_before(600, 14400, 1, 1)  # in 30d (10 days before)
            + [Run(700, AT, 1)])             # at AT itself: windows are [AT - w, AT), so not counted
    db = tmp_path / "h.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(write(tmp_path / "h.jsonl", runs))
    return db


def test_slo_counts_per_window(history):
    with agentlens.open(history, read_only=True) as lens:
        s = slo()
        got = A.slo_counts(lens, s, AT, A.slo_windows(s))
    # cumulative: 5m 3 (2 bad); 30m +3; 1h +1 bad; 6h +4; 3d +10; 30d +1 bad
    assert got == {5 * M: (3, 2), 30 * M: (6, 2), H: (7, 3), 6 * H: (11, 3), 72 * H: (21, 3), 720 * H: (22, 4)}


def test_slo_end_to_end(history):
    rules = A.rules_from_dict({"slo": [{"name": "avail", "objective": 0.99, "min_runs": 5}]})
    with agentlens.open(history, read_only=True) as lens:
        report = A.evaluate(lens, rules, at=AT)
        # budget 1%: 1h 3/7 = 42.9% and 5m 2/3 = 66.7% > 14.4%: page; 6h 3/11 = 27% and 30m 2/6 = 33% > 6%:
        # page; 3d 3/21 = 14.3% and 6h 27% > 1%: ticket. Period 30d: 4/22 bad.
        assert [a.status for a in report.alerts] == ["firing", "firing", "firing"]
        assert report.alerts[0].details["period_error_ratio"] == pytest.approx(4 / 22)
        # an hour later: 5m and 30m are empty -> no data; 3d/6h: 3 bad of 20 (the run at AT is now in)
        later = A.evaluate(lens, rules, at=AT + H)
        assert [a.status for a in later.alerts] == ["no_data", "no_data", "firing"]
        # the guard: min_runs 25 makes even the 3-day window too thin
        thin = A.rules_from_dict({"slo": [{"name": "avail", "objective": 0.99, "min_runs": 25}]})
        assert {a.status for a in A.evaluate(lens, thin, at=AT).alerts} == {"no_data"}


def test_latency_and_llm_slis(tmp_path):
    # two runs in the last hour: 100 ms (with a 429 LLM call among 2 calls) and 900 ms
    r1 = Run(1, AT - 10 * M, 100)
    r1.llm("gpt-4o", 10, 5, error=("RateLimitError", "Error code: 429"))
    r1.llm("gpt-4o", 20, 50, inp=10, out=1)
    r2 = Run(2, AT - 20 * M, 900)
    r2.llm("gpt-4o", 10, 700, inp=10, out=1)
    with agentlens.open(tmp_path / "l.duckdb") as lens:
        lens.ingest(write(tmp_path / "l.jsonl", [r1, r2]))
        s = slo(sli="latency", threshold_ms=500)
        assert A.slo_counts(lens, s, AT, [H])[H] == (2, 1)  # 900 ms > 500 ms
        s = slo(sli="rate_limited")
        assert A.slo_counts(lens, s, AT, [H])[H] == (3, 1)  # 3 LLM calls, one rejected
        s = slo(sli="llm_errors", where={"feature": "billing"})
        assert A.slo_counts(lens, s, AT, [H])[H] == (0, 0)


# --- thresholds ------------------------------------------------------------------------------------------
def spend_runs(costs, minutes_before=5, feature="refund"):
    out = []
    for i, c in enumerate(costs):
        r = Run(900 + i, AT - dt.timedelta(minutes=minutes_before + i), 1000, feature=feature)
        # as many gpt-4o input tokens as the reported cost buys at $2.50 per million: the two figures agree
        r.llm("gpt-4o", 10, 100, inp=round(c / 2.5e-6), out=0, cost=c)
        out.append(r)
    return out


SPEND = {"threshold": [{"name": "spend rate", "metric": "cost_usd_per_hour", "above": 4.16, "window": "15m"}]}


@pytest.mark.parametrize("costs, status, rate", [
    ((0.5, 0.6), "firing", 4.4),  # $1.10 in 15 minutes = $4.40/h > $4.16/h ($100/day)
    ((0.5, 0.5), "ok", 4.0),      # $1.00 in 15 minutes = $4.00/h
])
def test_spend_rate_threshold(tmp_path, costs, status, rate):
    with agentlens.open(tmp_path / "s.duckdb") as lens:
        lens.ingest(write(tmp_path / "s.jsonl", spend_runs(costs)))
        (alert,) = A.evaluate(lens, A.rules_from_dict(SPEND), at=AT).alerts
        assert alert.status == status and alert.details["value"] == pytest.approx(rate)
        assert alert.details["runs"] == 2 and alert.details["window"] == "15m"


def test_thresholds_by_group_with_guard_and_traffic_drop(tmp_path):
    runs = ([Run(i, AT - 10 * M, 100 * i, feature="refund", error="x" if i < 3 else None) for i in range(1, 5)]
            + [Run(10, AT - 10 * M, 50, feature="billing")])
    rules = A.rules_from_dict({"threshold": [
        {"name": "errors", "metric": "error_rate", "above": 0.25, "window": "1h", "by": ["feature"], "min_runs": 2},
        {"name": "slow", "metric": "latency_p95_ms", "below": 60, "window": "1h", "where": {"feature": "billing"}},
        {"name": "no traffic", "metric": "runs", "below": 1, "window": "1h", "min_runs": 0},
        {"name": "quiet hour", "metric": "error_rate", "above": 0.1, "window": "1h", "min_runs": 1},
    ]})
    with agentlens.open(tmp_path / "t.duckdb") as lens:
        lens.ingest(write(tmp_path / "t.jsonl", runs))
        got = {(a.rule, tuple(a.details.get("group", {}).values())): a for a in A.evaluate(lens, rules, at=AT).alerts}
        # refund: 2 of 4 failed = 50% > 25%: fires; billing: 1 run < min_runs 2: no data (not ok)
        assert got[("errors", ("refund",))].status == "firing"
        assert got[("errors", ("billing",))].status == "no_data"
        assert got[("slow", ())].status == "firing" and got[("slow", ())].details["value"] == pytest.approx(50)
        assert got[("no traffic", ())].status == "ok"
        # two hours later nothing ran for an hour: traffic below 1 fires; the error rate has no data
        later = {a.rule: a for a in A.evaluate(lens, rules, at=AT + 2 * H).alerts}
        assert later["no traffic"].status == "firing" and later["no traffic"].details["value"] == 0
        assert later["quiet hour"].status == "no_data"
        assert later["errors"].status == "no_data"


# --- the rules file ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("[[threshold]]\nname = 'x'\nmetric = 'cost'\nabove = 1\nwindow = '1h'\n",
     "[[threshold]] #1 (x).metric 'cost' is not a metric"),
    ("[[threshold]]\nname = 'x'\nmetric = 'runs'\nwindow = '1h'\n", "[[threshold]] #1 (x) needs exactly one of above"),
    ("[[threshold]]\nname = 'x'\nmetric = 'runs'\nabove = 1\nwindow = 'soon'\n", "window 'soon' is not a duration"),
    ("[[threshold]]\nname = 'x'\nmetric = 'runs'\nabove = 1\nwindow = '1h'\nwhere = { prompt = 'a' }\n",
     "[[threshold]] #1 (x).where.prompt is not a run dimension"),
    ("[[slo]]\nname = 'a'\nobjective = 99.9\n", "[[slo]] #1 (a).objective must be between 0 and 1"),
    ("[[slo]]\nname = 'a'\nobjective = 0.99\nsli = 'latency'\n", "[[slo]] #1 (a).threshold_ms is required"),
    ("[[slo]]\nname = 'a'\nobjective = 0.99\nwindows = [{ long = '5m', short = '1h', burn_rate = 2 }]\n",
     "[[slo]] #1 (a).windows #1.short must be shorter than long"),
    ("[[slo]]\nname = 'a'\nobjective = 0.99\nmin_run = 5\n", "[[slo]] #1 (a).min_run is not a known key"),
    ("[[slo]]\nname = 'a'\nobjective = 0.99\n[[slo]]\nname = 'a'\nobjective = 0.9\n", "names must be unique"),
    ("[defaults]\nmin_runs = -1\n[[slo]]\nname = 'a'\nobjective = 0.99\n", "[defaults].min_runs must be a whole"),
    ("", "no [[threshold]] or [[slo]] rules"),
    ("[[slo]\n", "not valid TOML"),
])
def test_rules_errors_name_the_file_and_key(tmp_path, text, message):
    p = tmp_path / "rules.toml"
    p.write_text(text)
    with pytest.raises(A.RulesError) as e:
        A.load_rules(p)
    assert str(e.value).startswith(f"{p}:") and message in str(e.value)


def test_the_documented_example_rules_load():
    doc = A.__doc__ or ""
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    rules = A.rules_from_dict(__import__("tomllib").loads(example), "example")
    assert [t.name for t in rules.thresholds] == ["spend rate", "p95 latency by feature"]
    assert rules.slos[0].min_runs == 10 and rules.slos[0].where == (("agent_name", "support-agent"),)
    assert rules.thresholds[0].where == (("environment", "production"),)  # from [defaults]


# --- the command: exit codes, JSON, webhook ----------------------------------------------------------------
@pytest.fixture
def spend_db(tmp_path):
    db = tmp_path / "cli.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(write(tmp_path / "s.jsonl", spend_runs((0.5, 0.6))))
    rules = tmp_path / "rules.toml"
    rules.write_text('[[threshold]]\nname = "spend rate"\nmetric = "cost_usd_per_hour"\nabove = 4.16\n'
                     'window = "15m"\n')
    return str(db), str(rules)


def cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_exit_status_for_cron(spend_db, tmp_path):
    db, rules = spend_db
    r = cli("alerts", "--db", db, "--rules", rules, "--at", "2026-03-02T10:00:00Z")
    assert r.exit_code == 1 and "firing" in r.output and "4.40" in r.output
    r = cli("alerts", "--db", db, "--rules", rules, "--at", "2026-03-02T12:00:00Z")
    assert r.exit_code == 0, r.output  # two hours later: no spend, nothing fires
    bad = tmp_path / "bad.toml"
    bad.write_text("[[threshold]]\nname = 'x'\n")
    r = cli("alerts", "--db", db, "--rules", str(bad))
    assert r.exit_code == 2 and "bad.toml: [[threshold]] #1 (x).metric is required" in r.output
    r = cli("alerts", "--db", str(tmp_path / "missing.duckdb"), "--rules", rules)
    assert r.exit_code == 3 and "missing.duckdb: no such database" in r.output  # 3: the database cannot be used


def test_json_output(spend_db):
    db, rules = spend_db
    r = cli("alerts", "--db", db, "--rules", rules, "--at", "2026-03-02T10:00:00Z", "--format", "json")
    assert r.exit_code == 1
    body = json.loads(r.output)
    assert body["at"] == "2026-03-02T10:00:00Z" and body["firing"] == 1 and body["rules"] == rules
    (a,) = body["alerts"]
    assert (a["rule"], a["status"], a["metric"], a["threshold"], a["operator"]) == \
        ("spend rate", "firing", "cost_usd_per_hour", 4.16, ">")
    assert a["value"] == pytest.approx(4.4) and "spend rate" in body["text"]
    # a firing alert names example runs of its window and the command that lists them
    with agentlens.open(db, read_only=True) as lens:
        in_window = lens.sql("SELECT run_id FROM runs WHERE coalesce(ended_at, started_at) >= '2026-03-02T09:45:00Z' "
                             "AND coalesce(ended_at, started_at) < '2026-03-02T10:00:00Z' "
                             "ORDER BY cost_usd DESC, run_id")["run_id"].to_list()
    assert a["example_runs"] == in_window[:3] and len(in_window) >= 1
    assert a["look"].startswith("agentlens runs --since 2026-03-02T09:") and "--until 2026-03-02T10:00:00Z" in a["look"]
    assert f"agentlens trace {in_window[0]}" in a["summary"] and f"runs: {a['look']}" in body["text"]
    # and the command lists them
    r = cli("runs", "--db", db, *shlex.split(a["look"])[2:], "--format", "json")
    assert {row["run_id"] for row in json.loads(r.output)} >= set(a["example_runs"])


class _Sink(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Sink.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_posts_the_json_report(spend_db):
    db, rules = spend_db
    server = http.server.HTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Sink.received.clear()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hooks/agentlens"
        r = cli("alerts", "--db", db, "--rules", rules, "--at", "2026-03-02T10:00:00Z", "--format", "json",
                "--webhook", url)
        assert r.exit_code == 1
        assert "posted 1 notice(s): 1 new, 0 repeated, 0 resolved" in r.stderr and "HTTP 204" in r.stderr
        (path, ctype, body), = _Sink.received
        assert path == "/hooks/agentlens" and ctype == "application/json"
        assert json.loads(body) == json.loads(r.stdout)  # the same report as printed
        # still firing five minutes later, announced before: nothing is posted (exit 1: it fires)
        r = cli("alerts", "--db", db, "--rules", rules, "--at", "2026-03-02T10:05:00Z", "--webhook", url)
        assert r.exit_code == 1 and len(_Sink.received) == 1
        # nothing fires two hours later: the resolved notice is posted, once (exit 0: nothing fires)
        r = cli("alerts", "--db", db, "--rules", rules, "--at", "2026-03-02T12:00:00Z", "--webhook", url)
        assert r.exit_code == 0 and len(_Sink.received) == 2
        resolved = json.loads(_Sink.received[1][2])
        assert (resolved["resolved"], resolved["alerts"][0]["notice"]) == (1, "resolved")
        assert resolved["alerts"][0]["fired_for"] == "2h" and "RESOLVED after 2h" in resolved["text"]
        r = cli("alerts", "--db", db, "--rules", rules, "--at", "2026-03-02T12:05:00Z", "--webhook", url)
        assert r.exit_code == 0 and len(_Sink.received) == 2
        # --no-state: every firing alert is posted, as often as it is run
        for _ in range(2):
            r = cli("alerts", "--db", db, "--rules", rules, "--at", "2026-03-02T10:00:00Z", "--webhook", url,
                    "--no-state")
            assert r.exit_code == 1 and "posted 1 firing alert(s)" in r.stderr
        assert len(_Sink.received) == 4
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_failure_is_an_error(spend_db):
    db, rules = spend_db
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = cli("alerts", "--db", db, "--rules", rules, "--at", "2026-03-02T10:00:00Z",
            "--webhook", f"http://127.0.0.1:{port}/x")
    assert r.exit_code == 2 and f"webhook http://127.0.0.1:{port}/x" in r.output


def test_a_locked_database_is_an_error_after_waiting(spend_db):
    db, rules = spend_db
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, duckdb; c = duckdb.connect(sys.argv[1]); print('holding', flush=True); "
                               "sys.stdin.readline()", db],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        r = cli("alerts", "--db", db, "--rules", rules, "--wait", "0.3")
        # exit 3: the database cannot be used now; one line naming the process, its command line, what to do
        assert r.exit_code == 3 and f"PID {holder.pid} (python -c import sys, duckdb" in r.output, r.output
        assert "gave up after 0.3 s" in r.output and "Traceback" not in r.output
    finally:
        holder.kill()
        holder.wait()
