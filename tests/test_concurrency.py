"""The three ways people use agentlens, at the same time, on one database, with real processes:
`agentlens collect` receiving a steady stream from the OpenTelemetry SDK's exporter, a cron-style loop of
`ingest` / `rollup` / `alerts`, the read commands an on-call engineer types, and a notebook run by
papermill. At the end: every span the receiver acknowledged is stored, and no command failed.

Also, one process at a time: a database held by a process that does not serve it (DuckDB's own client) is
waited for and then named in one line; a missing database is said to be missing; a writer whose owner
exits takes over.

Hardening: an owner killed -9 while a client is connected and while a client's write runs in it (one clear
error, the next opener takes over, the write complete or absent), and while the receiver writes through it
(the receiver takes over, nothing acknowledged is lost); a client killed in a transaction (the lock is
freed) or stopped in one (freed after the idle limit); two client processes writing at once; a read during
a long write (the last committed state, without waiting); an unsafe or too-long socket folder; a database
at a path over 200 characters.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import papermill
import pytest

import agentlens
from conftest import ROOT, SAMPLES

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "AGENTLENS_WAIT": "120"}
CLI = [sys.executable, "-c", "from agentlens.cli import main; main(prog_name='agentlens')"]
NS = 1_764_000_000_000_000_000


def run_cli(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=timeout)


def otlp_file(path: Path, i: int) -> Path:
    """A small OTLP JSON file of one new run (a cron job ingests one every few seconds)."""
    trace = f"{i:032x}"
    start = NS + i * 10**9
    spans = [
        {"traceId": trace, "spanId": f"{i:08x}00000001", "name": "invoke_agent batch", "kind": 1,
         "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 5 * 10**8),
         "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_agent"}}]},
        {"traceId": trace, "spanId": f"{i:08x}00000002", "parentSpanId": f"{i:08x}00000001", "name": "chat",
         "kind": 3, "startTimeUnixNano": str(start + 10**7), "endTimeUnixNano": str(start + 4 * 10**8),
         "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "500"}},
                        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "20"}}]},
    ]
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cron"}}]},
                              "scopeSpans": [{"spans": spans}]}]}
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    db = tmp_path / "shared.duckdb"
    r = run_cli("ingest", str(SAMPLES), "--db", str(db), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return db


def test_receiver_cron_reads_and_a_notebook_at_once(db: Path, tmp_path: Path) -> None:
    collect = subprocess.Popen([*CLI, "collect", "--port", "0", "--db", str(db), "--flush-seconds", "0.5"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
    failures: list[str] = []
    latencies: dict[str, list[float]] = {}
    stop = threading.Event()
    try:
        assert collect.stdout is not None
        line = collect.stdout.readline()
        assert "receiving OTLP/HTTP on http://127.0.0.1:" in line, line + (collect.stderr.read() if collect.stderr else "")
        endpoint = line.split(" on ", 1)[1].split(" ", 1)[0]
        load = subprocess.Popen([sys.executable, str(HERE / "concurrency" / "otel_load.py"), endpoint, "25", "200",
                                 "load-app"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)

        def check(name: str, r: subprocess.CompletedProcess[str], ok: tuple[int, ...] = (0,)) -> None:
            if r.returncode not in ok or "Traceback" in r.stderr or "Traceback" in r.stdout:
                failures.append(f"{name}: exit {r.returncode}: {(r.stderr or r.stdout)[-600:]}")

        def reads() -> None:  # what the on-call engineer types, over and over
            commands = [("show",), ("costs",), ("failures",), ("signals",), ("export-evals", "-o", "cases.jsonl"),
                        ("report", "-o", "report.html")]
            i = 0
            while not stop.is_set():
                args = commands[i % len(commands)]
                t0 = time.perf_counter()
                r = run_cli(*args, "--db", str(db), cwd=tmp_path)
                latencies.setdefault(args[0], []).append(time.perf_counter() - t0)
                check(" ".join(args), r)
                i += 1

        rules = tmp_path / "alerts.toml"
        rules.write_text('[[threshold]]\nname = "errors"\nmetric = "error_rate"\nabove = 0.99\nwindow = "1h"\n')

        def cron() -> None:  # ingest of new files, rollup, alerts, every few seconds; twice at least (on a
            i = 1              # loaded machine one round can outlast the load, the second then runs after it)
            while not stop.is_set() or i <= 2:
                f = otlp_file(tmp_path / f"batch-{i}.otlp.json.gz", i)
                check("ingest", run_cli("ingest", str(f), "--db", str(db), cwd=tmp_path))
                check("rollup", run_cli("rollup", "--db", str(db), cwd=tmp_path))
                check("alerts", run_cli("alerts", "--db", str(db), "--rules", str(rules), cwd=tmp_path), ok=(0, 1))
                i += 1
                stop.wait(2)

        threads = [threading.Thread(target=reads), threading.Thread(target=cron)]
        for t in threads:
            t.start()
        try:  # the notebook of an incident, executed as a scheduler would while all that runs
            papermill.execute_notebook(str(ROOT / "notebooks" / "01-incident-investigation.ipynb"),
                                       str(tmp_path / "01.out.ipynb"), parameters={"DB": str(db)},
                                       cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
        except Exception as e:  # papermill raises on a failed cell
            failures.append(f"notebook: {type(e).__name__}: {str(e)[-600:]}")
        out, errs = load.communicate(timeout=300)
        stop.set()
        for t in threads:
            t.join(timeout=300)
        assert load.returncode == 0, errs
        acknowledged = int(out.strip().splitlines()[-1].split()[-1])
        assert acknowledged >= 4000, out  # 25 s at 200 spans/s, less what the exporter could not send
    finally:
        stop.set()
        collect.send_signal(signal.SIGTERM)
        try:
            collect.communicate(timeout=120)
        finally:
            if collect.poll() is None:
                collect.kill()
    assert collect.returncode == 0
    assert not failures, "\n".join(failures)
    with agentlens.open(db, read_only=True) as lens:
        stored = lens.sql("SELECT count(*) n FROM spans WHERE run_id IN "
                          "(SELECT run_id FROM runs WHERE service_name = 'load-app')")["n"][0]
        cron_runs = lens.sql("SELECT count(*) n FROM runs WHERE service_name = 'cron'")["n"][0]
    assert stored == acknowledged, f"acknowledged {acknowledged}, stored {stored}"
    assert cron_runs >= 2
    assert all(latencies.get(c) for c in ("show", "signals")), latencies


def test_a_database_held_without_serving_is_waited_for_then_named(db: Path, tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import sys, duckdb; c = duckdb.connect(sys.argv[1]); "
                               "print('holding', flush=True); sys.stdin.readline()", str(db)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        for args in (("show",), ("ingest", str(SAMPLES)), ("rollup",)):
            t0 = time.perf_counter()
            r = run_cli("--wait", "1", *args, "--db", str(db), cwd=tmp_path)
            assert time.perf_counter() - t0 >= 1
            assert r.returncode == 3, (args, r.stdout, r.stderr)
            assert f"held by PID {holder.pid} (python -c import sys, duckdb" in r.stderr
            assert "gave up after 1 s" in r.stderr and "Traceback" not in r.stderr
            assert len(r.stderr.strip().splitlines()) <= 2  # the wait notice and the error: one line each
        # once it lets go, the waiting command goes through
        waiting = subprocess.Popen([*CLI, "show", "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=ENV, cwd=tmp_path)
        assert waiting.stderr is not None
        notice = waiting.stderr.readline()  # it says what it waits for (then we let go), not after a fixed sleep
        assert f"held by PID {holder.pid}" in notice and "waiting up to 120 s" in notice, notice
        holder.stdin.write("\n")  # type: ignore[union-attr]
        holder.stdin.flush()  # type: ignore[union-attr]
        out, errs = waiting.communicate(timeout=120)
        assert waiting.returncode == 0, notice + errs
        assert "runs: 120" in out
    finally:
        holder.kill()
        holder.wait()


def test_missing_databases_are_never_created_by_readers_or_maintenance(tmp_path: Path) -> None:
    missing = tmp_path / "typo.duckdb"
    for args in (("show",), ("costs",), ("failures",), ("signals",), ("report", "-o", "r.html"), ("export-evals", "-o", "c.jsonl"),
                 ("rollup",), ("classify",), ("reprice",), ("serve",)):
        r = run_cli(*args, "--db", str(missing), cwd=tmp_path)
        assert r.returncode == 3, (args, r.stdout, r.stderr)
        assert f"{missing}: no such database" in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert not missing.exists(), args
    unwritable = tmp_path / "no-such-folder" / "x.duckdb"
    r = run_cli("ingest", str(SAMPLES), "--db", str(unwritable), cwd=tmp_path)
    assert r.returncode == 3 and "cannot open the database" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_client_takes_over_when_the_owner_exits(db: Path, tmp_path: Path) -> None:
    owner = subprocess.Popen([*CLI, "serve", "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=ENV, cwd=tmp_path)
    try:
        assert owner.stdout is not None and "serving" in owner.stdout.readline()
        with agentlens.open(db) as lens:
            assert lens.remote is not None  # a client of `agentlens serve`
            assert lens.sql("SELECT count(*) n FROM runs")["n"][0] == 120
            summary = lens.ingest(otlp_file(tmp_path / "one.otlp.json.gz", 1))  # published by the owner
            assert summary.runs == 1
            owner.send_signal(signal.SIGTERM)
            owner.communicate(timeout=60)
        with agentlens.open(db) as lens:  # nobody holds it now: this process does, and serves it
            assert lens.remote is None and lens.serving is not None
            assert lens.sql("SELECT count(*) n FROM runs")["n"][0] == 121
            r = run_cli("show", "--db", str(db), cwd=tmp_path)  # a reader goes through this process
            assert r.returncode == 0 and "runs: 121" in r.stdout, r.stderr
    finally:
        if owner.poll() is None:
            owner.kill()


# --- hardening: owners and clients that die, writers at once, reads during writes, the socket folder ---------

CLIENT = [sys.executable, str(HERE / "concurrency" / "client.py")]


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated OTLP file of 2,000 runs (58 MB): its publish in the owner lasts long enough to be seen."""
    sys.path.insert(0, str(ROOT / "bench"))
    import gen

    return gen.generate(tmp_path_factory.mktemp("gen"), 2000, csv_too=False, quiet=True)["otlp"]


def start_serve(db: Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`agentlens serve` holding `db`, once it says it serves it."""
    p = subprocess.Popen([*CLI, "serve", "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env or ENV, cwd=cwd)
    assert p.stdout is not None
    line = p.stdout.readline()
    assert "serving" in line, line + (p.stderr.read() if p.stderr else "")
    return p


def stop(p: subprocess.Popen[str]) -> None:
    if p.returncode is not None:
        return  # already waited for
    p.kill()
    p.communicate(timeout=60)


def remote(db: Path) -> Any:
    """A connection of this process to the owner of `db` (its `ping` says what runs there)."""
    from agentlens.store import owner
    from agentlens.store.remote import RemoteConnection

    ep = owner.endpoint(str(db))
    info = owner.read_info(ep)
    assert info is not None, "nobody serves the database"
    return RemoteConnection(ep.location, str(db), None, info.pid)


def wait_for_call(rc: Any, op: str, timeout: float = 300) -> dict[str, Any]:
    """Poll the owner until the write operation `op` runs there; its ping."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        p = rc.ping()
        if any(c["op"] == op for c in p["calls"]):
            return p  # type: ignore[no-any-return]
        time.sleep(0.01)
    raise AssertionError(f"no {op} ran in the owner within {timeout} s")


class Client:
    """tests/concurrency/client.py: a client process driven one statement at a time."""

    def __init__(self, db: Path, cwd: Path, env: dict[str, str] | None = None):
        self.p = subprocess.Popen([*CLIENT, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env or ENV, cwd=cwd)
        self.role = self._line()

    def _line(self) -> str:
        assert self.p.stdout is not None
        line = self.p.stdout.readline().strip()
        assert line, self.p.stderr.read() if self.p.stderr else "the client exited"
        return line

    def sql(self, statement: str) -> str:
        assert self.p.stdin is not None
        self.p.stdin.write(statement + "\n")
        self.p.stdin.flush()
        return self._line()

    def kill9(self) -> None:
        self.p.kill()
        self.p.communicate(timeout=60)


def count(db: Path, sql: str) -> int:
    with agentlens.open(db) as lens:
        return int(lens.con.execute(sql).fetchall()[0][0])


def test_the_owner_killed_while_a_client_is_connected_and_while_its_write_runs(db: Path, tmp_path: Path,
                                                                                 big_file: Path) -> None:
    """kill -9 of the process holding the database: its client gets one clear error (no hang, no traceback),
    the next process to open the database takes it over, and the database is intact, the write of the
    killed owner complete or absent."""
    owner = start_serve(db, tmp_path)
    try:
        client = Client(db, tmp_path)
        assert client.role == "remote"
        assert client.sql("SELECT count(*) FROM runs") == "ok [[120]]"
        owner.kill()  # SIGKILL: no exit handler, the socket and its description stay behind
        owner.communicate(timeout=60)
        answer = client.sql("SELECT count(*) FROM runs")
        assert answer.startswith("error OwnerGone: ") and f"(PID {owner.pid}) stopped answering" in answer, answer
        assert "open the database again" in answer
        client.kill9()
        r = run_cli("show", "--db", str(db), cwd=tmp_path)  # the next one takes it over
        assert r.returncode == 0 and "runs: 120" in r.stdout, r.stderr

        # ... and while a client's write runs in it: an ingest, whose publish runs in the owner
        owner = start_serve(db, tmp_path)
        ingest = subprocess.Popen([*CLI, "ingest", str(big_file), "--db", str(db), "--no-progress"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
        wait_for_call(remote(db), "publish")
        owner.kill()
        owner.communicate(timeout=60)
        out, errs = ingest.communicate(timeout=120)
        assert ingest.returncode == 3, (out, errs)
        assert errs.strip().count("\n") == 0 and "Traceback" not in errs, errs  # one line
        assert f"(PID {owner.pid}) stopped answering" in errs and "open the database again" in errs, errs
        with agentlens.open(db) as lens:  # takes it over: the killed owner's transaction is rolled back
            assert lens.remote is None
            runs = lens.sql("SELECT count(*) n FROM runs")["n"][0]
            assert runs in (120, 2120), runs  # the file complete or absent
            spans = lens.sql("SELECT count(*) n FROM spans WHERE run_id NOT IN (SELECT run_id FROM runs)")["n"][0]
            assert spans == 0
            summary = lens.ingest(big_file)  # intact: the same file goes in (again, if it was committed)
            assert lens.sql("SELECT count(*) n FROM runs")["n"][0] == 2120
            assert summary.files[0].status in ("ingested", "skipped_duplicate")
    finally:
        stop(owner)


def test_a_client_killed_in_a_transaction_does_not_keep_the_write_lock(db: Path, tmp_path: Path) -> None:
    """A client that dies in the middle of an explicit transaction (BEGIN, no COMMIT) is noticed by the
    owner's reaper: its transaction is rolled back and the write lock freed for the next writer. A client
    alive but stuck (SIGSTOP) is reaped after $AGENTLENS_LOCK_IDLE_SECONDS."""
    env = {**ENV, "AGENTLENS_LOCK_IDLE_SECONDS": "2"}
    owner = start_serve(db, tmp_path, env)
    try:
        setup = Client(db, tmp_path)
        assert setup.sql("CREATE TABLE notes(x INTEGER)").startswith("ok")
        setup.kill9()
        killed = Client(db, tmp_path)
        assert killed.sql("BEGIN") == "ok []"
        assert killed.sql("INSERT INTO notes VALUES (1)") == "ok [[1]]"
        killed.kill9()
        r = run_cli("ingest", str(otlp_file(tmp_path / "a.otlp.json.gz", 1)), "--db", str(db), cwd=tmp_path)
        assert r.returncode == 0, r.stderr  # the next writer got the lock
        assert count(db, "SELECT count(*) FROM notes") == 0  # rolled back

        stuck = Client(db, tmp_path)
        assert stuck.sql("BEGIN") == "ok []"
        assert stuck.sql("INSERT INTO notes VALUES (2)") == "ok [[1]]"
        os.kill(stuck.p.pid, signal.SIGSTOP)
        try:
            r = run_cli("ingest", str(otlp_file(tmp_path / "b.otlp.json.gz", 2)), "--db", str(db), cwd=tmp_path)
            assert r.returncode == 0, r.stderr  # waited for the idle limit, not forever
        finally:
            os.kill(stuck.p.pid, signal.SIGCONT)
        answer = stuck.sql("COMMIT")  # too late: its session was closed, its transaction rolled back
        assert answer.startswith("error OwnerGone: ") and "open the database again" in answer, answer
        stuck.kill9()
        assert count(db, "SELECT count(*) FROM notes") == 0
        assert count(db, "SELECT count(*) FROM runs WHERE service_name = 'cron'") == 2
    finally:
        stop(owner)


def test_two_writers_from_two_client_processes_at_once(db: Path, tmp_path: Path) -> None:
    """Writers take turns in the owner: two processes' explicit transactions updating the same row, and two
    ingests, at once, all go through (no DuckDB transaction conflict, nothing lost)."""
    owner = start_serve(db, tmp_path)
    try:
        setup = Client(db, tmp_path)
        assert setup.sql("CREATE TABLE counter(n INTEGER)").startswith("ok")
        assert setup.sql("INSERT INTO counter VALUES (0)") == "ok [[1]]"
        setup.kill9()
        n = 25
        loops = [subprocess.Popen([*CLIENT, str(db), "--increment", str(n)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path) for _ in range(2)]
        files = [otlp_file(tmp_path / f"w{i}.otlp.json.gz", 100 + i) for i in range(2)]
        ingests = [subprocess.Popen([*CLI, "ingest", str(f), "--db", str(db)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path) for f in files]
        for p in loops + ingests:
            out, errs = p.communicate(timeout=300)
            assert p.returncode == 0, (p.args, out, errs)
        assert count(db, "SELECT n FROM counter") == 2 * n
        assert count(db, "SELECT count(*) FROM runs WHERE service_name = 'cron'") == 2
    finally:
        stop(owner)


def test_a_read_during_a_long_write_answers_with_the_last_committed_state(db: Path, tmp_path: Path,
                                                                          big_file: Path) -> None:
    """A read through the owner while a write is under way answers at once with the last committed state:
    while a client's transaction holds the write lock, and while an ingest's publish runs in the owner (the
    read returns while that publish provably still runs: the owner still reports it after the read)."""
    owner = start_serve(db, tmp_path)
    try:
        writer = Client(db, tmp_path)
        assert writer.sql("CREATE TABLE notes(x INTEGER)").startswith("ok")
        assert writer.sql("INSERT INTO notes VALUES (0)") == "ok [[1]]"
        assert writer.sql("BEGIN") == "ok []"
        assert writer.sql("INSERT INTO notes SELECT range FROM range(100000)") == "ok [[100000]]"
        with agentlens.open(db) as reader:
            assert reader.remote is not None
            assert reader.sql("SELECT count(*) n FROM notes")["n"][0] == 1  # the writer has not committed
            assert writer.sql("COMMIT") == "ok []"
            assert reader.sql("SELECT count(*) n FROM notes")["n"][0] == 100001
        writer.kill9()

        rc = remote(db)
        ingest = subprocess.Popen([*CLI, "ingest", str(big_file), "--db", str(db), "--no-progress"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
        with agentlens.open(db) as reader:
            before = wait_for_call(rc, "publish")
            runs = reader.runs(limit=50)  # what a notebook reads
            total = reader.sql("SELECT count(*) n FROM runs")["n"][0]
            after = rc.ping()
        _, errs = ingest.communicate(timeout=300)
        assert ingest.returncode == 0, errs
        assert any(c["op"] == "publish" for c in after["calls"]), (
            "the publish ended before the read returned: nothing shows the read did not wait for it", before, after)
        assert total == 120 and runs.height == 50  # the last committed state
        assert count(db, "SELECT count(*) FROM runs") == 2120
        rc.close()
    finally:
        stop(owner)


def test_the_socket_folder_is_refused_when_others_may_write_to_it(db: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared-runtime"
    shared.mkdir()
    shared.chmod(0o777)
    long = tmp_path / ("r" * 120)  # no room left in a socket's path for the socket's name
    long.mkdir(mode=0o700)
    for folder, why in ((shared, "writable by others"), (long, "too long a path")):
        env = {**ENV, "AGENTLENS_RUNTIME_DIR": str(folder)}
        for args in (("show",), ("ingest", str(SAMPLES))):
            r = subprocess.run([*CLI, *args, "--db", str(db)], capture_output=True, text=True, env=env, cwd=tmp_path,
                               timeout=180)
            assert r.returncode == 3, (args, r.stdout, r.stderr)
            assert f"{folder}: {why}" in r.stderr and "AGENTLENS_RUNTIME_DIR" in r.stderr, r.stderr
            assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not list(shared.iterdir()) and not list(long.iterdir())


def test_a_database_with_a_very_long_path_is_served(db: Path, tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*[f"folder-{i:02d}-of-a-deep-tree" for i in range(10)])
    deep.mkdir(parents=True)
    long_db = deep / "a-database-with-a-long-name.duckdb"
    long_db.write_bytes(db.read_bytes())
    assert len(str(long_db)) > 200
    with agentlens.open(long_db) as lens:  # holds it and serves it
        assert lens.serving is not None
        r = run_cli("show", "--db", str(long_db), cwd=tmp_path)  # through this process: the file is held
        assert r.returncode == 0 and "runs: 120" in r.stdout, r.stderr
        client = Client(long_db, tmp_path)
        assert client.role == "remote" and client.sql("SELECT count(*) FROM runs") == "ok [[120]]"
        client.kill9()


def test_the_receiver_takes_over_when_the_owner_it_writes_through_is_killed(db: Path, tmp_path: Path) -> None:
    """`agentlens collect` writing through another process (`agentlens serve`) that is killed: it opens the
    database again, holds it, and every span it acknowledged is stored, once."""
    owner = start_serve(db, tmp_path)
    collect = subprocess.Popen([*CLI, "collect", "--port", "0", "--db", str(db), "--flush-seconds", "0.5"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
    try:
        assert collect.stdout is not None
        line = collect.stdout.readline()
        assert "receiving OTLP/HTTP" in line, line + (collect.stderr.read() if collect.stderr else "")
        endpoint = line.split(" on ", 1)[1].split(" ", 1)[0]
        load = subprocess.Popen([sys.executable, str(HERE / "concurrency" / "otel_load.py"), endpoint, "8", "200",
                                 "takeover-app"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        wait_for_call(remote(db), "publish", timeout=120)  # the receiver writes through the owner
        owner.kill()
        owner.communicate(timeout=60)
        out, errs = load.communicate(timeout=300)
        assert load.returncode == 0, errs
        acknowledged = int(out.strip().splitlines()[-1].split()[-1])
        assert acknowledged >= 800, out
    finally:
        collect.send_signal(signal.SIGTERM)
        _, errs_c = collect.communicate(timeout=120)
        stop(owner)
    assert collect.returncode == 0, errs_c
    assert "took it over" in errs_c, errs_c
    assert count(db, "SELECT count(*) FROM spans WHERE run_id IN "
                     "(SELECT run_id FROM runs WHERE service_name = 'takeover-app')") == acknowledged
