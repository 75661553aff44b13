"""agent_runs round-trips from CSV, JSON Lines and Parquet: the same rows give the same runs."""

from __future__ import annotations

import json

import polars as pl
import pytest

ROWS = [
    {"id": 101, "user_id": "u-1",
     "request": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Where is my order?"}],
                 "metadata": {"feature": "order_status", "customer_id": "cust_7", "session_id": "s-1"}},
     "response": "It ships tomorrow.", "tokens_in": 1200, "tokens_out": 85, "cost_usd": 0.000231,
     "created_at": "2026-11-10T08:15:02.123456Z"},
    {"id": 102, "user_id": "u-2",
     "request": {"model": "gpt-4o", "feature": "refund", "customer_id": "cust_9",
                 "messages": [{"role": "user", "content": "Refund <script>alert(1)</script>"}]},
     "response": '{"error": "upstream timeout"}', "tokens_in": 300, "tokens_out": 0, "cost_usd": 0.00075,
     "created_at": "2026-11-10T09:00:00Z"},
]
EXPECTED = [
    {"run_id": "101", "source": "agent_runs", "status": "ok", "model": "gpt-4o-mini", "user_id": "u-1",
     "session_id": "s-1", "customer_id": "cust_7", "feature": "order_status", "input_tokens": 1200,
     "output_tokens": 85, "cost_usd": 0.000231, "input": "Where is my order?", "output": "It ships tomorrow.",
     "span_count": 1, "error_count": 0},
    {"run_id": "102", "source": "agent_runs", "status": "error", "model": "gpt-4o", "user_id": "u-2",
     "session_id": None, "customer_id": "cust_9", "feature": "refund", "input_tokens": 300,
     "output_tokens": 0, "cost_usd": 0.00075, "input": "Refund <script>alert(1)</script>",
     "output": '{"error": "upstream timeout"}', "span_count": 1, "error_count": 1},
]


def _frame() -> pl.DataFrame:
    return pl.DataFrame([{**r, "request": json.dumps(r["request"])} for r in ROWS])


def write(kind: str, path):
    df = _frame()
    if kind == "csv":
        df.write_csv(path)
    elif kind == "jsonl":
        # JSONB exported by Postgres tools arrives as a nested object, not a string
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    else:
        df.write_parquet(path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_round_trip(lens, tmp_path, kind):
    p = write(kind, tmp_path / f"agent_runs.{kind}")
    s = lens.ingest(p)
    assert s.files[0].format == "agent_runs" and s.runs == 2 and not s.quarantined
    got = lens.runs(order_by="run_id", descending=False).select(list(EXPECTED[0])).to_dicts()
    assert got == EXPECTED
    started = lens.runs(order_by="run_id", descending=False)["started_at"].to_list()
    assert [t.isoformat() for t in started] == ["2026-11-10T08:15:02.123456+00:00", "2026-11-10T09:00:00+00:00"]
    span = lens.spans("102").row(0, named=True)
    assert (span["kind"], span["status"], span["status_message"]) == ("llm", "error", "upstream timeout")
    # re-ingesting the same rows (same file, or the same rows in another format) changes nothing
    before = lens.sql("SELECT * EXCLUDE (ingested_at) FROM runs ORDER BY run_id")
    lens.ingest(p)
    other = "csv" if kind != "csv" else "parquet"
    lens.ingest(write(other, tmp_path / f"again.{other}"))
    assert lens.sql("SELECT * EXCLUDE (ingested_at) FROM runs ORDER BY run_id").equals(before)
    assert lens.sql("SELECT count(*) n FROM spans")["n"][0] == 2


@pytest.mark.slow
def test_three_formats_give_identical_rows(tmp_path):
    import agentlens

    frames = []
    for kind in ("csv", "jsonl", "parquet"):
        with agentlens.open(tmp_path / f"{kind}.duckdb") as lens:
            lens.ingest(write(kind, tmp_path / f"r.{kind}"))
            frames.append(lens.sql("SELECT * EXCLUDE (ingested_at) FROM runs ORDER BY run_id"))
    assert frames[0].equals(frames[1]) and frames[1].equals(frames[2])


def test_dimension_paths_into_request(tmp_path):
    import agentlens

    cfg = tmp_path / "c.toml"
    cfg.write_text('[dimensions]\nfeature = ["request.metadata.product_area"]\n')
    rows = [{**ROWS[0], "request": {**ROWS[0]["request"], "metadata": {"product_area": "logistics",
                                                                        "feature": "order_status"}}}]
    p = tmp_path / "r.jsonl"
    p.write_text(json.dumps(rows[0]) + "\n")
    with agentlens.open(tmp_path / "x.duckdb", config=cfg) as lens:
        lens.ingest(p)
        assert lens.runs()["feature"][0] == "logistics"


def test_csv_row_with_invalid_utf8_is_quarantined_and_the_rest_goes_in(lens, tmp_path):
    p = write("csv", tmp_path / "agent_runs.csv")
    lines = p.read_bytes().splitlines(keepends=True)
    bad = lines[1].replace(b"101", b"103").replace(b"u-1", b"u-\xff\xfe")  # a third row, its user id not UTF-8
    p.write_bytes(lines[0] + lines[1] + bad + lines[2])
    s = lens.ingest(p)
    assert s.runs == 2 and s.quarantined == {"invalid_utf8": 1}
    row = lens.quarantine("invalid_utf8").row(0, named=True)
    assert row["line"] == 3 and row["reason"] == "line 3: invalid UTF-8"
    assert "u-\\xff\\xfe" in row["raw"] and "103" in row["raw"]
    assert lens.sql("SELECT run_id FROM runs ORDER BY run_id")["run_id"].to_list() == ["101", "102"]
