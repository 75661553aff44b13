"""A folder of small files is published in batches (ingest/batch.py) and ends in the same tables as the
same records in one file: each file recorded, its quarantine records under its own name and line."""

from __future__ import annotations

from pathlib import Path

import agentlens

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_traces"
RUN_COLUMNS = "SELECT * EXCLUDE (ingested_at) FROM runs ORDER BY run_id"


def _split_lines(src: Path, folder: Path, suffix: str, header: bool = False) -> list[Path]:
    lines = src.read_text().splitlines(keepends=True)
    head, body = (lines[:1], lines[1:]) if header else ([], lines)
    folder.mkdir(parents=True)
    out = []
    for i in range(0, len(body), 3):
        p = folder / f"part-{i:04d}{suffix}"
        p.write_text("".join(head + body[i:i + 3]))
        out.append(p)
    return out


def test_small_files_in_one_publish_give_the_tables_of_one_file(tmp_path):
    genai = SAMPLES / "support-agent.genai.otlp.jsonl"
    runs_csv = SAMPLES / "agent_runs.csv"
    folder = tmp_path / "many"
    otlp = _split_lines(genai, folder / "otlp", ".jsonl")
    csvs = _split_lines(runs_csv, folder / "csv", ".csv", header=True)
    with agentlens.open(tmp_path / "whole.duckdb") as lens:
        lens.ingest(genai, runs_csv)
        whole = lens.sql(RUN_COLUMNS)
        whole_failures = lens.sql("SELECT * EXCLUDE (classified_at) FROM failures ORDER BY ALL")
    bad = otlp[3]
    bad.write_text(bad.read_text() + '{"resourceSpans": [oops\n')  # its 4th line is malformed
    with agentlens.open(tmp_path / "many.duckdb") as lens:
        s = lens.ingest(folder)
        assert s.count("ingested") == len(otlp) + len(csvs)
        assert sum(1 for f in s.files if (f.message or "").startswith("published with")) == len(otlp) + len(csvs) - 2
        assert lens.sql(RUN_COLUMNS).equals(whole)  # agent_runs rows beside their spans through the batch
        assert lens.sql("SELECT * EXCLUDE (classified_at) FROM failures ORDER BY ALL").equals(whole_failures)
        q = lens.sql("SELECT source_file, line, kind FROM quarantine WHERE kind <> 'orphan_span'")
        assert q.to_dicts() == [{"source_file": str(bad), "line": 4, "kind": "malformed_json"}]
        assert lens.sql("SELECT count(*) FROM ingested_files").item() == len(otlp) + len(csvs)
        assert lens.sql("SELECT count(*) FROM file_reads").item() == len(otlp) + len(csvs)
        again = lens.ingest(folder)
        assert again.count("skipped_duplicate") == len(otlp) + len(csvs)
        assert lens.sql("SELECT count(*) FROM quarantine WHERE kind <> 'orphan_span'").item() == 1
