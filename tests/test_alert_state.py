"""The alert state on the sample traces: a firing alert is announced once, again after its rule's
`renotify`, its end once with how long it fired, then nothing; through the library, through the CLI in
processes of its own, while another process holds the database, and on a ClickHouse store (not kept).

The sample traces at 2026-11-12 (UTC), error rate per feature over 6h above 10% (min_runs 3) and a 95%
availability SLO (min_runs 5): at 18:00 `account` (1 of 3 runs failed) and `refund` (1 of 4) fire, and
the SLO's ticket pair (3d and 6h); at 19:00 `account` has 2 runs in 6h (no data), the others still fire;
at 22:00 nothing fires."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import agentlens
import agentlens.api
from agentlens.metrics import alerts as A
from conftest import ROOT, SAMPLES

RULES = """
[defaults]
min_runs = 3

[[threshold]]
name = "error rate by feature"
metric = "error_rate"
above = 0.10
window = "6h"
by = ["feature"]
severity = "ticket"

[[slo]]
name = "support-agent availability"
objective = 0.95
min_runs = 5
renotify = "1h"
"""
ACCOUNT = '["error rate by feature", {"feature": "account"}]'
REFUND = '["error rate by feature", {"feature": "refund"}]'
SLO = '["support-agent availability", {"long_window": "3d", "short_window": "6h"}]'


def at(hhmm: str) -> dt.datetime:
    h, m = hhmm.split(":")
    return dt.datetime(2026, 11, 12, int(h), int(m), tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("samples") / "samples.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(SAMPLES)
    return db


@pytest.fixture
def db(sample_db: Path, tmp_path: Path) -> Path:
    """A copy of the sample database, with no alert state yet."""
    return Path(shutil.copy(sample_db, tmp_path / "s.duckdb"))


def notices(report: A.AlertReport) -> dict[str, str]:
    return {a.key: a.notice for a in report.alerts if a.notice is not None}


def state(lens: agentlens.Lens) -> dict[str, dict]:
    df = lens.sql("SELECT * FROM alert_state ORDER BY alert_key")
    return {r["alert_key"]: r for r in df.to_dicts()}


def test_announced_once_renotified_resolved_once_then_silent(db: Path) -> None:
    rules = A.rules_from_dict(__import__("tomllib").loads(RULES))
    with agentlens.open(db) as lens:
        def run(hhmm: str) -> A.AlertReport:
            return A.evaluate(lens, rules, at(hhmm), state="record")

        first = run("18:00")
        assert notices(first) == {ACCOUNT: "new", REFUND: "new", SLO: "new"}
        assert [a.key for a in first.announced] == [ACCOUNT, REFUND, SLO]
        assert first.to_dict()["state"] == "recorded" and first.to_dict()["new"] == 3
        # the announcements name example runs and the command that lists them
        assert all(a.details["example_runs"] and a.details["look"].startswith("agentlens runs ")
                   for a in first.announced)
        s = state(lens)
        assert set(s) == {ACCOUNT, REFUND, SLO}
        assert s[REFUND]["firing"] and s[REFUND]["firing_since"] == at("18:00")
        assert s[REFUND]["last_value"] == pytest.approx(0.25) and s[REFUND]["notifications"] == 1
        assert json.loads(s[REFUND]["labels"]) == {"feature": "refund"} and s[REFUND]["kind"] == "threshold"

        again = run("18:00")  # the same minute twice (a retried cron job): nothing new
        assert notices(again) == {ACCOUNT: "suppressed", REFUND: "suppressed", SLO: "suppressed"}
        assert again.announced == [] and len(again.firing) == 3
        assert "0 new, 0 repeated, 0 resolved; 3 still firing and announced before" in again.text()
        assert notices(run("18:30")) == {ACCOUNT: "suppressed", REFUND: "suppressed", SLO: "suppressed"}

        # 19:00: the SLO's renotify (1h) has passed: announced again; account has no data now: resolved
        seven = run("19:00")
        assert notices(seven) == {ACCOUNT: "resolved", REFUND: "suppressed", SLO: "repeat"}
        resolved = {a.key: a for a in seven.alerts}[ACCOUNT]
        assert resolved.status == "no_data" and resolved.fired_for == dt.timedelta(hours=1)
        assert "RESOLVED after 1h (since 2026-11-12 18:00Z): error rate by feature [feature=account]; now no data" \
            in seven.text()
        assert "STILL FIRING since 2026-11-12 18:00Z (1h): support-agent availability" in seven.text()
        assert notices(run("19:30")) == {REFUND: "suppressed", SLO: "suppressed"}
        assert notices(run("20:00")) == {REFUND: "suppressed", SLO: "repeat"}

        ten = run("22:00")
        assert notices(ten) == {REFUND: "resolved", SLO: "resolved"} and ten.firing == []
        assert {a.key: a.fired_for for a in ten.announced} == {REFUND: dt.timedelta(hours=4),
                                                               SLO: dt.timedelta(hours=4)}
        assert run("22:05").announced == [] and notices(run("22:10")) == {}

        s = state(lens)
        assert not any(r["firing"] for r in s.values())
        assert s[SLO]["notifications"] == 3  # 18:00, 19:00, 20:00
        assert (s[SLO]["firing_since"], s[SLO]["resolved_at"]) == (at("18:00"), at("22:00"))
        assert s[ACCOUNT]["resolved_at"] == at("19:00") and s[SLO]["evaluated_at"] == at("22:10")

        # the past is not recorded over the present: evaluated at 20:00 now, it says so and writes nothing
        past = run("20:00")
        assert past.state_note is not None and "the state only moves forward" in past.state_note
        assert state(lens) == s


def test_no_data_hold_keeps_an_alert_firing_until_data_says_ok(db: Path) -> None:
    rules = A.rules_from_dict(__import__("tomllib").loads(RULES.replace('severity = "ticket"',
                                                                        'severity = "ticket"\nno_data = "hold"')))
    with agentlens.open(db) as lens:
        assert notices(A.evaluate(lens, rules, at("18:00"), state="record"))[ACCOUNT] == "new"
        seven = A.evaluate(lens, rules, at("19:00"), state="record")
        assert notices(seven)[ACCOUNT] == "held" and ACCOUNT not in {a.key for a in seven.announced}
        # at 22:00 account has no run in its window at all: still held, listed as no data
        ten = A.evaluate(lens, rules, at("22:00"), state="record")
        held = {a.key: a for a in ten.alerts}[ACCOUNT]
        assert (held.notice, held.status) == ("held", "no_data") and "no run in its window" in held.summary
        assert state(lens)[ACCOUNT]["firing"] and state(lens)[ACCOUNT]["notifications"] == 1


def test_reading_the_state_records_nothing_and_no_state_ignores_it(db: Path) -> None:
    rules = A.rules_from_dict(__import__("tomllib").loads(RULES))
    with agentlens.open(db) as lens:
        look = A.evaluate(lens, rules, at("18:00"), state="read")
        assert notices(look) == {ACCOUNT: "new", REFUND: "new", SLO: "new"} and state(lens) == {}
        plain = A.evaluate(lens, rules, at("18:00"))
        assert notices(plain) == {} and len(plain.announced) == 3 and state(lens) == {}
        A.evaluate(lens, rules, at("18:00"), state="record")
        assert notices(A.evaluate(lens, rules, at("18:05"), state="read"))[REFUND] == "suppressed"


def test_a_delivery_that_fails_records_nothing(db: Path) -> None:
    rules = A.rules_from_dict(__import__("tomllib").loads(RULES))

    def fail(report: A.AlertReport) -> None:
        assert len(report.announced) == 3
        raise OSError("webhook down")

    with agentlens.open(db) as lens:
        with pytest.raises(OSError):
            A.evaluate(lens, rules, at("18:00"), state="record", deliver=fail)
        assert state(lens) == {}
        assert len(A.evaluate(lens, rules, at("18:01"), state="record").announced) == 3  # announced again


def test_renotify_and_no_data_are_checked_rule_keys(tmp_path: Path) -> None:
    p = tmp_path / "r.toml"
    p.write_text('[[slo]]\nname = "a"\nobjective = 0.99\nrenotify = "often"\n')
    with pytest.raises(A.RulesError, match=r"\(a\)\.renotify 'often' is not a duration"):
        A.load_rules(p)
    p.write_text('[defaults]\nno_data = "ignore"\n[[slo]]\nname = "a"\nobjective = 0.99\n')
    with pytest.raises(A.RulesError, match=r"\[defaults\]\.no_data must be \"resolve\""):
        A.load_rules(p)
    p.write_text('[defaults]\nrenotify = "4h"\n[[slo]]\nname = "a"\nobjective = 0.99\n')
    assert A.load_rules(p).slos[0].renotify == dt.timedelta(hours=4)


# --- the command, in processes of its own (as cron runs it) ------------------------------------------------
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "AGENTLENS_WAIT": "60"}
CLI = [sys.executable, "-c", "from agentlens.cli import main; main(prog_name='agentlens')"]


def agentlens_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_cli_from_cron(db: Path, tmp_path: Path) -> None:
    rules = tmp_path / "alerts.toml"
    rules.write_text(RULES)

    def alerts(hhmm: str, *more: str) -> subprocess.CompletedProcess[str]:
        return agentlens_cli("alerts", "--db", str(db), "--rules", str(rules), "--at", f"2026-11-12T{hhmm}:00Z",
                             *more, cwd=tmp_path)

    look = alerts("18:00", "--all")  # a person looking first takes nothing from the cron job
    assert look.returncode == 1 and "alert state: read, not recorded (--all)" in look.stdout
    assert "ok " in look.stdout and "firing    new" in look.stdout  # every alert, with its notice
    r = alerts("18:00")
    assert r.returncode == 1, r.stderr
    out = " ".join(r.stdout.split())
    assert "new: 3" in out and "FIRING: error rate by feature [feature=account]" in out
    assert "runs: agentlens runs --since" in out and "(agentlens trace " in out
    r = alerts("18:05")
    assert r.returncode == 1 and "announced: none" in r.stdout  # still firing: exit 1, nothing announced
    assert "still firing, announced before: 3" in r.stdout
    r = alerts("19:00", "--format", "json")
    body = json.loads(r.stdout)
    assert r.returncode == 1 and (body["new"], body["repeated"], body["resolved"], body["suppressed"]) == (0, 1, 1, 1)
    by = {(a["rule"], a.get("group", {}).get("feature") or a.get("long_window")): a for a in body["alerts"]}
    assert by[("error rate by feature", "account")]["notice"] == "resolved"
    assert by[("error rate by feature", "account")]["fired_for"] == "1h"
    assert by[("support-agent availability", "3d")]["notice"] == "repeat"
    assert by[("support-agent availability", "3d")]["firing_since"] == "2026-11-12T18:00:00Z"
    assert body["text"].count("RESOLVED") == 1 and body["text"].count("STILL FIRING") == 1
    r = alerts("22:00")
    assert r.returncode == 0 and " ".join(r.stdout.split()).count("RESOLVED after 4h") == 2
    r = alerts("22:05")
    assert r.returncode == 0 and "announced: none" in r.stdout and "resolved: 0" in r.stdout
    r = alerts("22:05", "--all")
    assert r.returncode == 0 and "alerts (firing first)" in r.stdout
    with agentlens.open(db, read_only=True) as lens:
        assert lens.one("SELECT max(evaluated_at) FROM alert_state")[0] == at("22:05")  # --all wrote nothing


@pytest.mark.slow
def test_cli_while_another_process_holds_the_database(db: Path, tmp_path: Path) -> None:
    """`agentlens serve` holds the database (as the receiver or a notebook would): cron's alerts record their
    state through it, and a notebook reads the state while it is held."""
    rules = tmp_path / "alerts.toml"
    rules.write_text(RULES)
    serve = subprocess.Popen([*CLI, "serve", "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=ENV, cwd=tmp_path)
    try:
        assert serve.stdout is not None and "serving" in serve.stdout.readline()
        r = agentlens_cli("alerts", "--db", str(db), "--rules", str(rules), "--at", "2026-11-12T18:00:00Z",
                          "--format", "json", cwd=tmp_path)
        assert r.returncode == 1, r.stderr
        assert json.loads(r.stdout)["new"] == 3 and json.loads(r.stdout)["state"] == "recorded"
        with agentlens.open(db) as lens:  # a notebook: a client of the process that holds it
            assert lens.remote is not None
            assert {k: v["firing"] for k, v in state(lens).items()} == {ACCOUNT: True, REFUND: True, SLO: True}
            r = agentlens_cli("alerts", "--db", str(db), "--rules", str(rules), "--at", "2026-11-12T18:05:00Z",
                              "--format", "json", cwd=tmp_path)
            assert (r.returncode, json.loads(r.stdout)["new"], json.loads(r.stdout)["suppressed"]) == (1, 0, 3)
            assert state(lens)[REFUND]["evaluated_at"] == at("18:05")
        assert serve.poll() is None  # still holding it
    finally:
        serve.kill()
        serve.communicate(timeout=60)


@pytest.mark.slow
def test_on_a_clickhouse_store_alerts_evaluate_and_say_the_state_is_not_kept(db: Path, tmp_path: Path) -> None:
    pytest.importorskip("chdb")
    store = f"clickhouse+chdb://{tmp_path / 'ch'}"
    r = agentlens_cli("store", "migrate", "--db", str(db), "--to", store, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rules = tmp_path / "alerts.toml"
    rules.write_text(RULES)
    for _ in range(2):  # nothing recorded: both runs report the three firing alerts
        r = agentlens_cli("alerts", "--store", store, "--rules", str(rules), "--at", "2026-11-12T18:00:00Z",
                          "--format", "json", cwd=tmp_path)
        assert r.returncode == 1, r.stderr
        body = json.loads(r.stdout)
        assert body["firing"] == 3 and body["state"] == "not kept"
        assert "agentlens: alert state not kept on a ClickHouse store" in " ".join(r.stderr.split())
        assert body["text"].startswith("agentlens: 3 alert(s) firing at 2026-11-12 18:00:00Z")


def test_a_database_opened_read_only_evaluates_and_says_the_state_is_not_kept(db: Path) -> None:
    rules = A.rules_from_dict(__import__("tomllib").loads(RULES))
    with agentlens.api.Lens(db, read_only=True, serve=False) as lens:  # the file opened read-only here
        for _ in range(2):
            report = A.evaluate(lens, rules, at("18:00"), state="record")
            assert report.state_note is not None and "open read-only here" in report.state_note
            assert notices(report) == {} and len(report.announced) == 3  # every firing alert, each time
            assert report.to_dict()["state"] == "not kept"
    with agentlens.open(db) as lens:
        assert state(lens) == {}
