"""Large JSON Lines files are read by worker processes (agentlens.adapters.parallel): the database
must come out the same as when one process reads them, bad lines included, with their line numbers."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import agentlens
from agentlens.adapters import otlp, parallel
from conftest import ROOT

SAMPLES = ROOT / "sample_traces"
SPAN_COLS = "* EXCLUDE (source_file)"


def _bad_file(tmp_path: Path) -> Path:
    """The GenAI sample with bad lines early, in the middle and at the very end (cut off)."""
    lines = (SAMPLES / "support-agent.genai.otlp.jsonl").read_bytes().splitlines(keepends=True)
    mid = len(lines) // 2
    lines.insert(mid, b'{"resourceSpans": [ this is not json\n')
    lines.insert(3, b"\xff\xfe not utf-8\n")
    lines.insert(mid + 7, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "no ids"}]}]}]}\n')
    lines.append(lines[10][:-40])  # the file ends mid-record
    path = tmp_path / "bad.otlp.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def _ingest(tmp_path: Path, name: str, files: list[Path], workers: int, monkeypatch) -> dict:
    monkeypatch.setenv("AGENTLENS_WORKERS", str(workers))
    monkeypatch.setattr(parallel, "BLOCK_BYTES", 64 * 1024)  # ~10 blocks per sample file
    started = []
    init = parallel._Worker.__init__

    def counted(self):
        started.append(self)
        init(self)

    monkeypatch.setattr(parallel._Worker, "__init__", counted)
    with agentlens.open(tmp_path / f"{name}.duckdb") as lens:
        summary = lens.ingest(*files)
        assert all(f.status == "ingested" for f in summary.files), summary
        assert len(started) == (0 if workers == 1 else workers * len(files))
        return {
            "spans": lens.sql(f"SELECT {SPAN_COLS} FROM spans ORDER BY run_id, span_id").rows(),
            "runs": lens.sql("SELECT * EXCLUDE (ingested_at) FROM runs ORDER BY run_id").rows(),
            "failures": lens.sql("SELECT * EXCLUDE (classified_at) FROM failures ORDER BY ALL").rows(),
            "quarantine": lens.sql(
                "SELECT line, kind, reason, raw, run_id, span_id, stored FROM quarantine ORDER BY id").rows(),
        }


@pytest.mark.slow
def test_workers_give_the_same_database_as_one_process(tmp_path, monkeypatch):
    files = [SAMPLES / "support-agent.genai.otlp.jsonl", SAMPLES / "support-agent.openinference.otlp.jsonl",
             _bad_file(tmp_path)]
    one = _ingest(tmp_path, "one", files, 1, monkeypatch)
    two = _ingest(tmp_path, "two", files, 2, monkeypatch)
    assert len(one["spans"]) > 300 and len(one["runs"]) > 40 and one["failures"]
    for table in one:
        assert one[table] == two[table], table
    n = len((SAMPLES / "support-agent.genai.otlp.jsonl").read_bytes().splitlines())
    mid = n // 2  # line numbers count across blocks (64 KB blocks: ~10 lines each)
    assert {(q[0], q[1]) for q in two["quarantine"]} == {
        (4, "invalid_utf8"), (mid + 2, "malformed_json"), (mid + 8, "missing_field"),
        (n + 4, "truncated"),  # only the file's last line can be cut off
    }


def test_block_boundaries_do_not_split_lines(tmp_path):
    data = b"".join(b'{"n": %d}\n' % i for i in range(10_000)) + b'{"n": "last"}'
    path = tmp_path / "x.jsonl"
    path.write_bytes(data)
    with path.open("rb") as f:
        first = f.readline()
        blocks = list(parallel._blocks(first, f, 1000))
    assert b"".join(b for b, *_ in blocks) == data
    assert all(b.endswith(b"\n") for b, _, final, _ in blocks if not final)
    assert [final for *_, final, _ in blocks].count(True) == 1
    line = 1
    for block, first_line, _, _ in blocks:  # each block knows the file line it starts on
        assert first_line == line
        line += block.count(b"\n")


def _fails_on_spans(block: bytes, first_line: int, final: bool) -> list:
    """A block function that fails (as an adapter bug would) on any block holding a span. The adapters
    themselves judge each record alone and never raise."""
    if b"resourceSpans" in block:
        raise ValueError("a bug")
    return []


@pytest.mark.slow
def test_a_failing_worker_is_an_error_not_a_hang(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTLENS_WORKERS", "2")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # the workers import this module
    monkeypatch.setattr(parallel, "BLOCK_BYTES", 64 * 1024)
    fn = _fails_on_spans
    # the first block (read in this process while the workers start) holds only unreadable lines; the
    # blocks after it go to the workers
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"not json\n" * 8000 + (SAMPLES / "support-agent.genai.otlp.jsonl").read_bytes())
    with path.open("rb") as f:
        with pytest.raises(RuntimeError, match="worker process failed"):
            list(parallel.read_lines(f.readline(), f, fn))


@pytest.mark.slow
def test_a_script_without_a_main_guard_can_ingest(tmp_path):
    """multiprocessing's spawn workers would re-run such a script; ours are plain subprocesses."""
    script = tmp_path / "ingest_script.py"
    script.write_text(textwrap.dedent(f"""
        import os
        import agentlens
        from agentlens.adapters import parallel
        parallel.BLOCK_BYTES = 64 * 1024
        os.environ["AGENTLENS_WORKERS"] = "2"
        lens = agentlens.open({str(tmp_path / "s.duckdb")!r})
        s = lens.ingest({str(SAMPLES / "support-agent.genai.otlp.jsonl")!r})
        print("spans", s.files[0].spans)
        lens.close()
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("spans ") == 1 and int(proc.stdout.split()[-1]) > 200


def test_workers_setting_is_checked(monkeypatch):
    monkeypatch.setenv("AGENTLENS_WORKERS", "many")
    with pytest.raises(ValueError, match="AGENTLENS_WORKERS"):
        parallel.workers()
    monkeypatch.setenv("AGENTLENS_WORKERS", "3")
    assert parallel.workers() == 3


@pytest.mark.slow
def test_ctrl_c_with_workers_leaves_nothing_behind(tmp_path):
    """Ctrl-C in a terminal reaches the whole foreground process group: the ingest stops with one
    KeyboardInterrupt, its workers go away, and the database is as it was (nothing of the file). The
    workers are not in that group and ignore SIGINT anyway (here they get one each, once they say they
    are ready): no traceback of theirs buries the ingest's message."""
    sys.path.insert(0, str(ROOT / "bench"))
    import gen  # bench/gen.py: 1,000 runs of OTLP JSON Lines, ~26 MB

    data = gen.generate(tmp_path / "data", 1000, csv_too=False, quiet=True)["otlp"]
    db = tmp_path / "c.duckdb"
    script = tmp_path / "ingest_script.py"
    script.write_text(textwrap.dedent(f"""
        import os
        import sys
        import time
        import agentlens
        from agentlens.adapters import parallel
        parallel.BLOCK_BYTES = 256 * 1024  # ~100 blocks: read on the workers
        os.environ["AGENTLENS_WORKERS"] = "2"
        workers = []
        start = parallel._Worker.__init__

        def started(worker):
            start(worker)
            workers.append(worker)

        def receive(worker):  # the ingest's first wait for an answer: tell the test once every worker is ready
            for w in workers:
                if not w.ready.wait(120):
                    raise RuntimeError("a worker never said it was ready")
            print("ready", *[w.proc.pid for w in workers], file=sys.stderr, flush=True)
            # and wait here, in Python, for the Ctrl-C: one that lands in a DuckDB statement interrupts the
            # statement (RuntimeError: Query interrupted), which the ingest takes for a failed file
            while True:
                time.sleep(0.01)

        parallel._Worker.__init__ = started
        parallel._Worker.receive = receive
        lens = agentlens.open({str(db)!r})
        try:
            lens.ingest({str(data)!r}, progress=False)
            print("finished")
        except KeyboardInterrupt:
            print("interrupted")
        lens.close()
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, cwd=tmp_path)
    assert proc.stderr is not None
    before = []  # stderr lines until the workers are ready (none expected)
    while not (line := proc.stderr.readline()).startswith("ready ") and line:
        before.append(line)
    workers = [int(pid) for pid in line.split()[1:]]
    assert len(workers) == 2, "".join(before) + proc.communicate(timeout=120)[1]
    for pid in workers:
        os.kill(pid, signal.SIGINT)  # ignored
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    out, err = proc.communicate(timeout=120)
    err = "".join(before) + err
    assert out.strip() == "interrupted", out + err
    assert "Traceback" not in err, err  # not one traceback per worker
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    with agentlens.open(db, read_only=True) as lens:
        assert lens.sql("SELECT count(*) AS n FROM spans")["n"][0] == 0
        assert lens.sql("SELECT count(*) AS n FROM ingested_files")["n"][0] == 0
    assert not list(tmp_path.glob(".c.duckdb.stage-*"))  # the staging folder is gone too


@pytest.mark.slow
def test_a_worker_says_it_is_ready_and_ignores_sigint(tmp_path):
    """The worker's handshake, and SIGINT kept from it: a process group of its own (the terminal's
    Ctrl-C goes to the foreground group), and ignored from the first statement of its program."""
    w = parallel._Worker()
    try:
        assert os.getpgid(w.proc.pid) == w.proc.pid != os.getpgid(0)
        assert w.ready.wait(60), "the worker never said it was ready"
        os.kill(w.proc.pid, signal.SIGINT)
        block = (SAMPLES / "support-agent.genai.otlp.jsonl").read_bytes()[:200_000]
        block = block[:block.rindex(b"\n") + 1]
        w.send((functools.partial(otlp._block, filename="x", config=agentlens.Config()), block, 1, False))
        assert w.receive() == otlp._block(block, 1, False, filename="x", config=agentlens.Config())
        w.close()
        assert w.proc.returncode == 0
    finally:
        w.kill()
    assert parallel.WORKER_BOOT.startswith("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN);")


def _agent_runs_files(tmp_path: Path) -> list[Path]:
    """The sample agent_runs export 8 times over (new ids), as CSV with a multi-line quoted field, a row
    of invalid UTF-8, a short row and a wrong number spread over it; and as JSON Lines cut off at the end."""
    import csv
    import io
    import json

    rows = list(csv.DictReader(io.StringIO((SAMPLES / "agent_runs.csv").read_text(encoding="utf-8"))))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(rows[0].keys())
    jsonl = []
    n = 0
    for copy in range(8):
        for r in rows:
            n += 1
            r = {**r, "id": f"{r['id']}-{copy}"}
            if n % 97 == 0:
                r["response"] = "line one\nline two, with \"quotes\"\n\nline four"
            if n % 131 == 0:
                r["tokens_in"] = "many"
            w.writerow(r.values() if n % 149 else list(r.values())[:5])
            jsonl.append(json.dumps({**r, "request": json.loads(r["request"])}) + "\n")
    data = out.getvalue().encode("utf-8")
    cut = data.index(b"\n", len(data) // 2) + 1  # a row of invalid UTF-8 in the middle
    csv_path = tmp_path / "runs.agent_runs.csv"
    csv_path.write_bytes(data[:cut] + b'bad-utf8,u,"{}",\xff\xfe,1,1,0.1,2026-05-01T00:00:00Z\n' + data[cut:])
    jsonl_path = tmp_path / "runs.agent_runs.jsonl"
    jsonl_path.write_text("".join(jsonl) + '{"id": "cut-off", "tokens_in"', encoding="utf-8")
    return [csv_path, jsonl_path]


@pytest.mark.slow
def test_agent_runs_exports_on_workers_give_the_same_database_as_one_process(tmp_path, monkeypatch):
    """The CSV's records are split in this process (quoted fields hold newlines) and made rows by the
    workers; JSON Lines are cut in blocks of lines like OTLP. Same runs, spans and quarantine, with the
    same line numbers, as one process reading them."""
    files = _agent_runs_files(tmp_path)
    assert all(f.stat().st_size > 6 * 64 * 1024 for f in files)  # more blocks than are read in-process
    one = _ingest(tmp_path, "one", files, 1, monkeypatch)
    two = _ingest(tmp_path, "two", files, 2, monkeypatch)
    assert len(one["runs"]) > 500 and len(one["quarantine"]) > 10
    for table in one:
        assert one[table] == two[table], table
    kinds = {q[1] for q in two["quarantine"]}
    assert {"invalid_utf8", "bad_row", "wrong_type", "truncated"} <= kinds
