"""Record identity: a record is its source and its key. Two sources with the same ids coexist; within one
source a record that comes back changed replaces the stored one whole (run, spans, costs, detections), and
the version kept does not depend on the order the files come in. A file that grew is read from where the
last read stopped; one that was rewritten is read whole."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import agentlens
from agentlens.cli import main
from agentlens.ingest import batch

ROOT = Path(__file__).resolve().parent.parent
GENAI = ROOT / "sample_traces" / "support-agent.genai.otlp.jsonl"
COLUMNS = ["id", "user_id", "request", "response", "tokens_in", "tokens_out", "cost_usd", "created_at"]


def export(path: Path, seed: int, ids: range = range(1, 61), response: bool = True) -> Path:
    """An agent_runs CSV export: rows `ids` of one table (seeded content: two seeds are two tables)."""
    r = random.Random(seed)
    rows = [{"id": i, "user_id": f"u{r.randint(1, 9)}",
             "request": json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{i} of {seed}"}]}),
             "response": f"answer {i} of {seed}" if response else "", "tokens_in": r.randint(10, 500),
             "tokens_out": r.randint(5, 100), "cost_usd": round(r.random() / 100, 6),
             "created_at": f"2026-12-0{1 + i % 3}T10:{i // 60:02d}:{i % 60:02d}Z"} for i in ids]
    pl.DataFrame(rows, schema={c: pl.String if c in ("request", "response", "user_id", "created_at") else None
                               for c in COLUMNS}).write_csv(path)
    return path


def test_two_exports_with_the_same_ids_are_two_sources_never_a_mix(tmp_path):
    a, b = export(tmp_path / "a.csv", 1), export(tmp_path / "b.csv", 2)
    with agentlens.open(tmp_path / "named.duckdb") as lens:
        first = lens.ingest(a, source="billing")
        second = lens.ingest(b, source="support")
        assert (first.total("runs_added"), second.total("runs_added"), second.total("runs_changed")) == (60, 60, 0)
        assert lens.sql("SELECT count(*) FROM runs").item() == 120
        assert lens.sql("SELECT count(*) FROM runs WHERE run_id LIKE 'billing:%'").item() == 60
    # ingested together without names: one namespace, so each id is one record in two versions: one version
    # is kept whole (its row and its span), never a mix of the two files' columns
    with agentlens.open(tmp_path / "one.duckdb") as lens:
        s = lens.ingest(a, b)
        assert lens.sql("SELECT count(*) FROM runs").item() == 60
        assert s.total("runs_added") == 60 and s.total("runs_changed") + s.total("spans_outdated") == 60
        mixed = lens.sql("""SELECT count(*) FROM runs r JOIN spans s USING (run_id)
                            WHERE r.user_id IS DISTINCT FROM s.user_id OR r.input_tokens <> s.input_tokens
                               OR r.reported_cost_usd <> s.cost_usd OR r.output <> s.output""").item()
        assert mixed == 0
        # and the versions kept are those a reversed order keeps
        kept = lens.sql("SELECT run_id, user_id, output, cost_usd FROM runs ORDER BY run_id")
    with agentlens.open(tmp_path / "rev.duckdb") as lens:
        lens.ingest(b)
        lens.ingest(a)
        assert lens.sql("SELECT run_id, user_id, output, cost_usd FROM runs ORDER BY run_id").equals(kept)


def test_a_row_filled_in_later_replaces_the_run_whole(tmp_path):
    with agentlens.open(tmp_path / "f.duckdb") as lens:
        lens.ingest(export(tmp_path / "before.csv", 5, response=False))
        s = lens.ingest(export(tmp_path / "after.csv", 5))  # the same rows, their responses filled in
        assert (s.total("runs_added"), s.total("runs_changed"), s.total("spans_changed")) == (0, 60, 60)
        assert lens.sql("SELECT count(*) FROM runs WHERE output LIKE 'answer %'").item() == 60
        assert lens.sql("SELECT count(*) FROM spans").item() == 60
        # the old version coming back (an older export ingested late) changes nothing, and is counted
        again = lens.ingest(export(tmp_path / "old-again.csv", 5, ids=range(60, 0, -1), response=False))
        assert (again.total("runs_changed"), again.total("runs_unchanged"), again.total("spans_outdated")) == (0, 60, 60)
        assert lens.sql("SELECT count(*) FROM runs WHERE output LIKE 'answer %'").item() == 60


def _docs() -> list[dict]:
    return [json.loads(line) for line in GENAI.read_text().splitlines() if line.strip()]


def _spans(doc: dict):
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            yield from ss["spans"]


def _write(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def _three_files(tmp_path: Path) -> list[Path]:
    """Three OTLP exports of one service that overlap, with spans exported again changed: with more
    attributes, with a later end, and the same span changed two ways in two files."""
    docs = _docs()
    n = len(docs)
    one = _write(tmp_path / "one.jsonl", docs[: n * 2 // 3])
    two_docs = json.loads(json.dumps(docs[n // 3:]))
    for d in two_docs[: n // 6]:
        for sp in _spans(d):
            sp["attributes"].append({"key": "app.exported_again", "value": {"stringValue": "with more"}})
    two = _write(tmp_path / "two.jsonl", two_docs)
    three_docs = json.loads(json.dumps(docs[n // 4:]))
    for d in three_docs[: n // 3]:
        for sp in _spans(d):
            sp["endTimeUnixNano"] = str(int(sp["endTimeUnixNano"]) + 1_000_000)
            sp["attributes"].append({"key": "app.exported_again", "value": {"stringValue": "other"}})
    three = _write(tmp_path / "three.jsonl", three_docs)
    return [one, two, three]


def _tables(lens) -> dict[str, pl.DataFrame]:
    return {
        "runs": lens.sql("SELECT * EXCLUDE (ingested_at) FROM runs ORDER BY run_id"),
        "spans": lens.sql("SELECT * EXCLUDE (source_file) FROM spans ORDER BY run_id, span_id"),
        "failures": lens.sql("SELECT * EXCLUDE (classified_at) FROM failures ORDER BY ALL"),
    }


@pytest.mark.slow
def test_the_end_state_does_not_depend_on_the_order_of_the_files(tmp_path):
    files = _three_files(tmp_path)
    ends = []
    for i, order in enumerate(itertools.permutations(files)):
        with agentlens.open(tmp_path / f"p{i}.duckdb") as lens:
            s = lens.ingest(*order)
            assert s.count("ingested") == 3
            assert s.total("spans_changed") + s.total("spans_outdated") > 0  # counted, never silently dropped
            ends.append(_tables(lens))
            keys = lens.sql("SELECT count(*) - count(DISTINCT (run_id, span_id)) FROM spans").item()
            assert keys == 0
    for end in ends[1:]:
        for table, df in end.items():
            assert df.equals(ends[0][table]), table
    # the changed versions won: the later end, then the one with more content
    with agentlens.open(tmp_path / "p0.duckdb") as lens:
        assert lens.sql("SELECT count(*) FROM spans WHERE attributes->>'$.\"app.exported_again\"' = 'other'").item() > 0


def test_a_span_exported_again_changed_is_counted_and_its_run_rebuilt(tmp_path):
    docs = _docs()
    with agentlens.open(tmp_path / "c.duckdb") as lens:
        lens.ingest(_write(tmp_path / "a.jsonl", docs))
        changed = json.loads(json.dumps(docs[:1]))
        n = sum(1 for _ in _spans(changed[0]))
        for sp in _spans(changed[0]):
            sp["status"] = {"code": 2, "message": "RateLimitError: slow down"}
        s = lens.ingest(_write(tmp_path / "b.jsonl", changed))
        assert (s.spans, s.total("spans_changed"), s.total("runs_changed")) == (0, n, len({sp["traceId"] for sp in _spans(changed[0])}))
        run = next(_spans(changed[0]))["traceId"]
        assert lens.sql("SELECT error_count FROM runs WHERE run_id = ?", [run]).item() >= n


@pytest.mark.parametrize("small", [True, False], ids=["in a batch of small files", "alone"])
def test_a_growing_file_is_read_from_where_it_stopped(tmp_path, monkeypatch, small):
    if not small:
        monkeypatch.setattr(batch, "SMALL_FILE_BYTES", 0)
    docs = _docs()
    path = _write(tmp_path / "exporter.jsonl", docs[:60])
    with agentlens.open(tmp_path / "g.duckdb") as lens:
        lens.ingest(path)
        spans_before = lens.sql("SELECT count(*) FROM spans").item()
        with path.open("a") as f:  # the exporter appends five lines, the last one cut off
            f.write("".join(json.dumps(d) + "\n" for d in docs[60:64]) + '{"resourceSpans": [\n')
        new = sum(1 for d in docs[60:64] for _ in _spans(d))
        s = lens.ingest(path)
        f0 = s.files[0]
        assert (f0.spans, f0.spans_unchanged, f0.runs_unchanged) == (new, 0, 0)
        assert "read from byte" in (f0.message or "")
        assert lens.sql("SELECT count(*) FROM spans").item() == spans_before + new
        # the cut line is quarantined with its line number in the whole file
        assert lens.sql("SELECT line FROM quarantine WHERE source_file = ? AND kind <> 'orphan_span'", [str(path)]).item() == 65
        # rewritten (not only grown): read whole, nothing counted twice
        _write(path, docs[:30] + docs[31:64])
        s = lens.ingest(path)
        assert "read from byte" not in (s.files[0].message or "") and s.spans == 0
        assert s.total("spans_unchanged") == spans_before + new - sum(1 for _ in _spans(docs[30]))
        assert lens.sql("SELECT count(*) FROM spans").item() == spans_before + new


def test_cli_summary_counts_added_changed_unchanged(tmp_path):
    db = str(tmp_path / "cli.duckdb")
    a = export(tmp_path / "a.csv", 1)
    r = CliRunner().invoke(main, ["ingest", str(a), "--db", db, "--source", "billing"], catch_exceptions=False)
    assert "runs added: 60" in r.output and "runs changed: 0" in r.output
    r = CliRunner().invoke(main, ["ingest", str(export(tmp_path / "b.csv", 1, response=False)), "--db", db,
                                  "--source", "billing"], catch_exceptions=False)
    assert "runs unchanged: 60" in r.output and "spans outdated (another version kept): 60" in r.output


def test_the_config_names_the_sources_of_files(tmp_path):
    a, b = export(tmp_path / "billing-runs.csv", 1), export(tmp_path / "support-runs.csv", 2)
    config = tmp_path / "agentlens.toml"
    config.write_text('[sources.files]\nbilling = "billing-*.csv"\nsupport = ["nothing/*", "*/support-*.csv"]\n')
    with agentlens.open(tmp_path / "cfg.duckdb", config=config) as lens:
        s = lens.ingest(a, b)
        assert s.total("runs_added") == 120 and s.total("runs_changed") == 0
        prefixes = lens.sql("SELECT split_part(run_id, ':', 1) AS p, count(*) AS n FROM runs GROUP BY p ORDER BY p")
        assert prefixes.rows() == [("billing", 60), ("support", 60)]
        assert lens.ingest(b, source="other").total("runs_added") == 60  # --source wins over the config
    config.write_text('[sources.files]\nbilling = 3\n')
    with agentlens.open(tmp_path / "bad.duckdb", config=config) as lens, pytest.raises(ValueError, match="billing"):
        lens.ingest(a)
