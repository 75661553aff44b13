"""A live PostgreSQL agent_runs table, read incrementally through ADBC, against a real PostgreSQL
server started for these tests (tests/pgserver.py; `.ci/run` installs it)."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json

import pytest
from click.testing import CliRunner

import agentlens
from agentlens.cli import main
from agentlens.core.config import Config, ConfigError
from agentlens.sources import postgres

pytestmark = pytest.mark.slow

pg_dbapi = pytest.importorskip("adbc_driver_postgresql.dbapi")

UTC = dt.UTC
_dbs = itertools.count()


@pytest.fixture(scope="module")
def server():
    import pgserver

    try:
        srv = pgserver.start()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    yield srv
    srv.stop()


@pytest.fixture
def db(server):
    """A fresh database with an agent_runs table as production has it; returns its URL."""
    name = f"t{next(_dbs)}"
    with pg_dbapi.connect(server.url(), autocommit=True) as c, c.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    url = server.url(name)
    execute(url, """
        CREATE TABLE agent_runs (
          id bigserial PRIMARY KEY, user_id text, request jsonb, response text,
          tokens_in integer, tokens_out integer, cost_usd numeric(12, 6),
          created_at timestamptz NOT NULL DEFAULT now())""")
    return url


def execute(url: str, sql: str, params: tuple | None = None) -> None:
    with pg_dbapi.connect(url, autocommit=True) as c, c.cursor() as cur:
        cur.execute(sql, parameters=params)


# (user_id, request, response, tokens_in, tokens_out, cost_usd, created_at as PostgreSQL prints it)
ROWS = [
    ("u-1", {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "Be brief."},
                                                  {"role": "user", "content": "Refund order A-17"}],
             "metadata": {"feature": "refunds", "customer_id": "acme"}},
     "Refund issued.", 120, 18, "0.000031", "2026-03-02 10:00:00+00"),
    ("u-2", {"model": "gpt-4o", "input": "Où est ma commande ? 📦", "metadata": {"feature": "tracking"}},
     '{"error": "upstream timeout"}', 300, None, "0.001234", "2026-03-02 12:00:01.5+02"),  # 10:00:01.5 UTC
    ("u-3", None, "", 5, 0, None, "2026-03-02 10:00:02+00"),
]


def insert(url: str, rows=ROWS) -> None:
    for user, req, resp, tin, tout, cost, created in rows:
        execute(url, "INSERT INTO agent_runs (user_id, request, response, tokens_in, tokens_out, cost_usd, created_at) "
                     "VALUES ($1, $2::jsonb, $3, $4, $5, $6::numeric, $7::timestamptz)",
                (user, None if req is None else json.dumps(req), resp, tin, tout, cost, created))


def pg_url(url: str, **params) -> str:
    return url + "?" + "&".join(f"{k}={v}" for k, v in {"table": "agent_runs", **params}.items())


def runs_of(lens) -> list[dict]:
    return lens.sql("SELECT * EXCLUDE (ingested_at) FROM runs ORDER BY run_id").to_dicts()


def test_same_runs_as_the_csv_export_and_the_types(db, tmp_path):
    insert(db)
    # the same rows as a CSV export of the table (`\copy agent_runs TO 'x.csv' CSV HEADER`)
    export = tmp_path / "agent_runs.csv"
    with export.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "user_id", "request", "response", "tokens_in", "tokens_out", "cost_usd", "created_at"])
        for i, (user, req, resp, tin, tout, cost, created) in enumerate(ROWS, 1):
            w.writerow([i, user, "" if req is None else json.dumps(req), resp, tin, "" if tout is None else tout,
                        cost or "", created])
    with agentlens.open(tmp_path / "csv.duckdb") as a, agentlens.open(tmp_path / "pg.duckdb") as b:
        a.ingest(export)
        s = b.ingest(pg_url(db))
        assert s.count("failed") == 0, s.files[0].message
        assert s.runs == 3 and s.spans == 3
        assert runs_of(a) == runs_of(b)

        r1, r2, r3 = runs_of(b)
        assert r1["source"] == "agent_runs"  # the same rows as an export: the same source
        assert r2["reported_cost_usd"] == 0.001234  # numeric(12,6), exact (cost_usd: the headline figure)
        assert r2["started_at"] == dt.datetime(2026, 3, 2, 10, 0, 1, 500000, tzinfo=UTC)  # timestamptz, +02 -> UTC
        assert (r1["feature"], r1["customer_id"], r1["model"]) == ("refunds", "acme", "gpt-4o-mini")  # jsonb
        assert r1["input"] == "Refund order A-17"
        assert r2["input"] == "Où est ma commande ? 📦" and r2["status"] == "error"
        assert r3["status"] == "error" and r3["attributes"] is None  # empty response, NULL request
        span = b.spans(r1["run_id"]).row(0, named=True)
        assert span["source_file"] == pg_url(db)


def test_incremental_reads_only_new_rows(db, tmp_path):
    insert(db, ROWS[:2])
    url = pg_url(db)
    with agentlens.open(tmp_path / "x.duckdb") as lens:
        first = lens.ingest(url)
        assert first.runs == 2
        again = lens.ingest(url)
        assert (again.runs, again.spans, again.count("failed")) == (0, 0, 0)  # re-running adds nothing

        insert(db, ROWS[2:])
        third = lens.ingest(url)
        assert (third.runs, third.spans) == (1, 1)
        assert lens.sql("SELECT count(*) FROM runs").item() == 3
        mark = lens.sql("SELECT * FROM source_watermarks").row(0, named=True)
        assert mark["source"] == url and mark["kind"] == "postgres" and mark["rows_read"] == 3
        # the newest row: 10:00:02 UTC, id 3
        assert (mark["watermark_created_at"], mark["watermark_id"]) == (dt.datetime(2026, 3, 2, 10, 0, 2, tzinfo=UTC), "3")


def test_late_rows_within_the_lookback_are_picked_up(db, tmp_path):
    insert(db, ROWS[:1])  # 10:00:00
    url = pg_url(db, lookback_seconds=60)
    with agentlens.open(tmp_path / "x.duckdb") as lens:
        lens.ingest(url)
        # committed after that ingest, with created_at 30 s before the watermark (a long transaction)...
        late = [("u-late", {"model": "gpt-4o-mini"}, "ok", 1, 1, None, "2026-03-02 09:59:30+00")]
        # ...and one 10 minutes before it, older than the lookback: missed, as documented
        too_late = [("u-lost", {"model": "gpt-4o-mini"}, "ok", 1, 1, None, "2026-03-02 09:50:00+00")]
        insert(db, late + too_late)
        s = lens.ingest(url)
        assert s.runs == 1
        users = sorted(lens.sql("SELECT user_id FROM runs")["user_id"].to_list())
        assert users == ["u-1", "u-late"]
        # without a lookback only (created_at, id) after the watermark is read
        insert(db, [("u-next", None, "ok", 1, 1, None, "2026-03-02 10:05:00+00")])
        s = lens.ingest(pg_url(db, lookback_seconds=0))
        assert s.runs == 1 and lens.sql("SELECT count(*) FROM runs").item() == 3


def test_one_transaction_per_batch_and_resume_after_a_failure(db, tmp_path, monkeypatch):
    rows = [(f"u-{i}", {"model": "m"}, "ok", i, 1, "0.000001", f"2026-03-02 10:00:{i:02d}+00") for i in range(5)]
    insert(db, rows)
    url = pg_url(db, batch_rows=2)
    with agentlens.open(tmp_path / "x.duckdb") as lens:
        real = postgres.ingest_batches
        calls = []

        def failing_second(*args, **kw):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("disk full")
            return real(*args, **kw)

        monkeypatch.setattr(postgres, "ingest_batches", failing_second)
        s = lens.ingest(url)
        assert s.files[0].status == "failed" and "disk full" in s.files[0].message
        # the first batch (rows 0 and 1) committed with its watermark; the second rolled back
        assert lens.sql("SELECT count(*) FROM runs").item() == 2
        assert lens.sql("SELECT rows_read, watermark_id FROM source_watermarks").row(0) == (2, "2")
        monkeypatch.setattr(lens, "ingest_batches", real)
        s = lens.ingest(url)
        assert s.runs == 3  # rows 2, 3, 4 in two more batches
        assert lens.sql("SELECT count(*), count(DISTINCT run_id) FROM runs").row(0) == (5, 5)


def test_bad_rows_are_quarantined_once(db, tmp_path):
    insert(db, [*ROWS[:1], ("u-bad", {"model": "m"}, "ok", -4, 1, None, "2026-03-02 10:00:05+00")])
    url = pg_url(db)
    with agentlens.open(tmp_path / "x.duckdb") as lens:
        s = lens.ingest(url)
        assert s.runs == 1 and dict(s.quarantined) == {"wrong_type": 1}
        q = lens.quarantine().row(0, named=True)
        assert q["source_file"] == url and q["run_id"] == "2" and "tokens_in is negative" in q["reason"]
        assert json.loads(q["raw"])["tokens_in"] == -4
        lens.ingest(url)  # the bad row is inside the lookback window again: not quarantined twice
        assert lens.quarantine().height == 1


def test_clear_errors(db, server, tmp_path):
    with agentlens.open(tmp_path / "x.duckdb") as lens:
        with pytest.raises(ValueError, match=r"\?table=agent_runs"):
            lens.ingest(db)
        with pytest.raises(ValueError, match="not a table name"):
            lens.ingest(db + "?table=agent_runs;drop")
        s = lens.ingest(db + "?table=nope")
        assert s.files[0].status == "failed" and 'no table "nope"' in s.files[0].message
        execute(db, "CREATE TABLE other (id int, created_at timestamptz)")
        s = lens.ingest(db + "?table=other")
        assert "missing column(s) tokens_in, tokens_out" in s.files[0].message
        closed = f"postgresql://agent:s3cret@127.0.0.1:{server.port + 1}/x?table=agent_runs"
        s = lens.ingest(closed)
        msg = s.files[0].message
        assert s.files[0].status == "failed" and "cannot connect" in msg and "s3cret" not in msg


def test_config_section(tmp_path):
    cfg = Config.from_dict({"sources": {"postgres": {"lookback_seconds": 300, "batch_rows": 500}}}, "c.toml")
    t = postgres.parse_url("postgresql://u:pw@h:5/db?table=public.agent_runs&sslmode=disable", cfg)
    assert (t.settings.lookback_seconds, t.settings.batch_rows) == (300, 500)
    assert (t.schema, t.name, t.sql_name()) == ("public", "agent_runs", '"public"."agent_runs"')
    assert t.uri == "postgresql://u:pw@h:5/db?sslmode=disable" and "pw" not in t.display
    with pytest.raises(ConfigError, match=r"c.toml: \[sources.postgres\].lookback_seconds must be an integer"):
        postgres.parse_url("postgresql://h/db?table=t",
                           Config.from_dict({"sources": {"postgres": {"lookback_seconds": "1m"}}}, "c.toml"))
    with pytest.raises(ConfigError, match=r"\[sources.postgres\].lookback is not a setting"):
        postgres.parse_url("postgresql://h/db?table=t", Config.from_dict({"sources": {"postgres": {"lookback": 1}}}, "c.toml"))


def test_cli(db, tmp_path):
    insert(db)
    out = tmp_path / "x.duckdb"
    r = CliRunner().invoke(main, ["ingest", pg_url(db), "--db", str(out)])
    assert r.exit_code == 0, r.output
    assert "runs added: 3" in r.output
    r = CliRunner().invoke(main, ["ingest", db + "?table=missing", "--db", str(out)])
    assert r.exit_code == 1 and "no table" in r.output
