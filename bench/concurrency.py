"""Many users of one database at once (issue 20): reads while writes go on, and the receiver with readers.

    python bench/concurrency.py [--runs 10k] [--repeat 2] [--seconds 20]
    python bench/concurrency.py --smoke        # a few hundred runs, a few seconds each: checks the harness

(a) **Read latency.** A client process (a notebook's) runs the reads a user waits for (`READ_LABELS`: the
    runs page, golden signals by feature, a trace's spans, the failure report, the `show` overview) over
    and over, each timed as the user sees it (the statement sent, the Arrow back, the frames built):
    1. through the owner while it is idle (`agentlens serve` holding the database): the baseline;
    2. on the file opened read-only, when nobody holds it (what the read commands do): a second baseline;
    3. through the owner while writes go on: `agentlens ingest` of a large generated file (its publish
       delegated to the owner) and `agentlens collect` receiving a steady stream from the OpenTelemetry
       SDK's exporter (tests/concurrency/otel_load.py), writing through the owner too.
    Reported: p50 and p95 of each read in each case, and their ratios to the idle owner's.
(b) **Receiver throughput.** `agentlens collect` holds the database; a sender posts OTLP protobuf export
    requests (made by the SDK's own encoder, 512 spans each, new trace ids each time) from several
    connections as fast as the receiver answers, for `--seconds`. Throughput: spans acknowledged and
    stored per second (from the first request until every acknowledged span is in the database). Alone,
    then with readers present: a loop of CLI reads (`show`, `signals`, `costs`, `failures`, one after
    another with `--cli-pause` between them) and a notebook-like client running the reads of (a) through
    the receiver (`--notebook-pause` between them). Alternated `--repeat` times; the ratio of the medians.

Every case starts from a copy of the same database (bench/gen.py's `--runs`, 10k by default), every
process is started fresh, and the CPU that other processes used meanwhile is recorded: on a shared machine
compare the ratios of one run, not times across runs.

Writes bench/CONCURRENCY.md (a smoke run writes bench/out/CONCURRENCY-smoke.md) and the raw numbers as
JSON in bench/out/. Targets: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import gen  # noqa: E402 - bench/gen.py, beside this file
from run import _busy_cpu_s, machine  # noqa: E402 - bench/run.py: the same machine facts

CLI = [sys.executable, "-c", "from agentlens.cli import main; main(prog_name='agentlens')"]
OTEL_LOAD = ROOT / "tests" / "concurrency" / "otel_load.py"
SERVICE = "bench-receiver"  # service.name of the sender's spans
SPANS_PER_REQUEST = 512  # what the SDK's BatchSpanProcessor sends at most per export

READ_LABELS = {
    "runs_page": "`lens.runs(limit=50)`",
    "golden_signals": "golden signals by feature (`signals(lens, by=\"feature\")`)",
    "trace_view": "a trace's spans (`lens.spans(run_id)`)",
    "failure_report": "failure report (`failures.report(lens)`)",
    "overview": "the `show` overview (`lens.overview()`)",
}
CLI_READS = (("show",), ("signals",), ("costs",), ("failures",))
SAMPLE_RUN_IDS_SQL = "SELECT run_id FROM runs USING SAMPLE reservoir(10 ROWS) REPEATABLE (42) ORDER BY run_id"


# === child side =========================================================================================

def _read_calls() -> dict[str, Callable[[Any, str], Any]]:
    from agentlens.failures.report import report as failure_report
    from agentlens.metrics.signals import signals

    calls: dict[str, Callable[[Any, str], Any]] = {
        "runs_page": lambda lens, _r: lens.runs(limit=50),
        "golden_signals": lambda lens, _r: signals(lens, by="feature"),
        "trace_view": lambda lens, r: lens.spans(r),
        "failure_report": lambda lens, _r: failure_report(lens),
        "overview": lambda lens, _r: lens.overview(),
    }
    assert calls.keys() == READ_LABELS.keys()
    return calls


def child_reader(db: str, mode: str, stop_file: str, min_rounds: int, max_rounds: int, pause: float) -> dict[str, Any]:
    """Rounds of the reads of READ_LABELS, each timed, until `stop_file` exists (and at least `min_rounds`
    were done) or `max_rounds` were done. `mode`: 'owner' (a client of the process holding the database)
    or 'file' (the file opened read-only: nobody holds it). A first round warms up, untimed."""
    import agentlens
    from agentlens.api import Lens

    calls = _read_calls()
    if mode == "owner":
        lens = agentlens.open(db)
        assert lens.remote is not None, f"{db}: nobody serves it"
    else:
        lens = Lens(db, read_only=True, serve=False)
        assert lens.remote is None, f"{db}: held by another process"
    run_ids = [r[0] for r in lens.con.execute(SAMPLE_RUN_IDS_SQL).fetchall()]
    for call in calls.values():  # warm-up: imports, the first conversions
        call(lens, run_ids[0])
    Path(stop_file + ".ready").touch()
    samples: dict[str, list[float]] = {k: [] for k in calls}
    rounds = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while rounds < max_rounds and not (rounds >= min_rounds and os.path.exists(stop_file)):
        for key, call in calls.items():
            t = time.perf_counter()
            result = call(lens, run_ids[rounds % len(run_ids)])
            samples[key].append(time.perf_counter() - t)
            if rounds == 0:
                first = getattr(result, "counts", result)
                assert getattr(first, "height", 1) > 0, f"{key} returned nothing on {db}"
            if pause:
                time.sleep(pause)
        rounds += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    lens.close()
    return {"mode": mode, "rounds": rounds, "wall_s": wall, "cpu_s": cpu, "samples": samples}


def _template() -> bytes:
    """One OTLP ExportTraceServiceRequest of SPANS_PER_REQUEST spans, made by the SDK's own encoder: agent
    runs of 4 spans (an invoke_agent root, two chat calls with GenAI attributes, a tool call), as
    tests/concurrency/otel_load.py sends them."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE, "deployment.environment.name": "bench"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for n in range(SPANS_PER_REQUEST // 4):
        with tracer.start_as_current_span("invoke_agent support-bot", attributes={
                "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support-bot",
                "app.feature": "refund" if n % 3 else "order_status", "user.id": f"u{n % 17}"}):
            for turn in range(2):
                with tracer.start_as_current_span("chat gpt-4o-mini", attributes={
                        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 800 + turn,
                        "gen_ai.usage.output_tokens": 40}):
                    pass
                if turn == 0:
                    with tracer.start_as_current_span("execute_tool get_order", attributes={
                            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_order"}):
                        pass
    provider.shutdown()
    return bytes(encode_spans(memory.get_finished_spans()).SerializeToString())


def child_send(endpoint: str, seconds: float, connections: int) -> dict[str, Any]:
    """Post export requests as fast as the receiver answers, from `connections` keep-alive connections, for
    `seconds`; each request's runs get new trace ids (nothing is a duplicate). A 503 (the receiver's buffer
    is full) is retried after its Retry-After. Counts the spans acknowledged (200)."""
    import http.client
    import urllib.parse

    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    template = trace_service_pb2.ExportTraceServiceRequest.FromString(_template())
    url = urllib.parse.urlsplit(endpoint)
    prefix = random.Random().getrandbits(64) << 64
    counter = iter(range(10**12))
    lock = threading.Lock()
    acknowledged, refused, requests = [0], [0], [0]
    first: list[float] = []
    last = [0.0]
    t0 = time.perf_counter()
    end = t0 + seconds

    def body() -> tuple[bytes, int]:
        with lock:
            i = next(counter)
        req = trace_service_pb2.ExportTraceServiceRequest()
        req.CopyFrom(template)
        ids: dict[bytes, bytes] = {}
        spans = 0
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    new = ids.get(sp.trace_id)
                    if new is None:
                        new = ids[sp.trace_id] = (prefix + i * SPANS_PER_REQUEST + len(ids)).to_bytes(16, "big")
                    sp.trace_id = new
                    spans += 1
        return req.SerializeToString(), spans

    def sender() -> None:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        while time.perf_counter() < end:
            data, spans = body()
            while True:
                if not first:
                    first.append(time.perf_counter())
                conn.request("POST", url.path, body=data, headers={"Content-Type": "application/x-protobuf"})
                resp = conn.getresponse()
                resp.read()
                with lock:
                    requests[0] += 1
                if resp.status == 200:
                    with lock:
                        acknowledged[0] += spans
                        last[0] = time.perf_counter()
                    break
                if resp.status != 503:
                    raise SystemExit(f"the receiver answered {resp.status}")
                with lock:
                    refused[0] += 1
                time.sleep(float(resp.getheader("Retry-After") or 1))
        conn.close()

    threads = [threading.Thread(target=sender) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"acknowledged": acknowledged[0], "requests": requests[0], "refused_503": refused[0],
            "first_unix": time.time() - (time.perf_counter() - first[0]) if first else None,
            "last_ack_unix": time.time() - (time.perf_counter() - last[0]) if last[0] else None,
            "sending_s": (last[0] - first[0]) if first and last[0] else None}


def child_ingest_base(db: str, file: str) -> dict[str, Any]:
    import agentlens

    t0 = time.perf_counter()
    with agentlens.open(db) as lens:
        s = lens.ingest(file, progress=False)
    return {"wall_s": time.perf_counter() - t0, "runs": s.runs, "spans": s.spans}


CHILD_TASKS: dict[str, Callable[..., dict[str, Any]]] = {
    "reader": child_reader, "send": child_send, "ingest_base": child_ingest_base}


def child_main(task: str, args: list[str]) -> None:
    conv: list[Any] = []
    for a in args:
        try:
            conv.append(int(a))
        except ValueError:
            try:
                conv.append(float(a))
            except ValueError:
                conv.append(a)
    result = CHILD_TASKS[task](*conv)
    sys.stdout.write("\n@@RESULT@@" + json.dumps(result, default=str) + "\n")


# === parent side ========================================================================================

def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Child:
    """A child task (`--child TASK`) running in the background; `result()` waits for its JSON."""

    def __init__(self, task: str, *args: Any, env: dict[str, str] | None = None):
        self.task = task
        self.p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", task, *map(str, args)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)

    def result(self, timeout: float = 1800) -> dict[str, Any]:
        out, err = self.p.communicate(timeout=timeout)
        if self.p.returncode != 0 or "@@RESULT@@" not in out:
            raise RuntimeError(f"{self.task} exited {self.p.returncode}: {err.strip()[-1500:]}")
        return json.loads(out.rsplit("@@RESULT@@", 1)[1])  # type: ignore[no-any-return]


def serve(db: Path, cwd: Path) -> subprocess.Popen[str]:
    p = subprocess.Popen([*CLI, "serve", "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=cwd)
    assert p.stdout is not None
    line = p.stdout.readline()
    if "serving" not in line:
        raise RuntimeError(f"agentlens serve: {line}{p.stderr.read() if p.stderr else ''}")
    return p


def collect(db: Path, cwd: Path, *opts: str) -> tuple[subprocess.Popen[str], str]:
    p = subprocess.Popen([*CLI, "collect", "--port", "0", "--db", str(db), *opts], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=cwd)
    assert p.stdout is not None
    line = p.stdout.readline()
    if "receiving OTLP/HTTP" not in line:
        raise RuntimeError(f"agentlens collect: {line}{p.stderr.read() if p.stderr else ''}")
    return p, line.split(" on ", 1)[1].split(" ", 1)[0]


def finish(p: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 300) -> tuple[str, str]:
    if p.poll() is None:
        p.send_signal(sig)
    try:
        return p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.communicate()


_FILES = iter(range(10**9))


def stop_file_in(work: Path, name: str) -> Path:
    """A new path for a reader's stop file (and its `.ready` beside it): never one of an earlier case."""
    return work / f"stop-{name}-{next(_FILES)}"


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a running process has used so far (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(stop_file: Path, child: Child, timeout: float = 300) -> None:
    t0 = time.monotonic()
    while not Path(str(stop_file) + ".ready").exists():
        if child.p.poll() is not None:
            child.result()  # raises with its error
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"{child.task} not ready after {timeout} s")
        time.sleep(0.05)


class Load:
    """What a phase cost the machine: wall time, the CPU of our processes (this one and its children, all
    waited for by the end of the phase) and of the others, from /proc/stat; the load average at its start."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.busy0 = _busy_cpu_s()
        self.ours0 = self._ours()
        self.loadavg = _loadavg()

    @staticmethod
    def _ours() -> float:
        s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

    def done(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.t0
        ours = self._ours() - self.ours0
        busy1 = _busy_cpu_s()
        others = None if self.busy0 is None or busy1 is None else max(0.0, (busy1 - self.busy0 - ours) / wall)
        return {"wall_s": wall, "our_cpu_cores": ours / wall, "other_cpu_cores": others, "loadavg_1m": self.loadavg}


def _loadavg() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def owner_ping(db: Path) -> Any:
    """A connection of this process to the owner of `db` (ping: which write operations run there)."""
    from agentlens.store import owner
    from agentlens.store.remote import RemoteConnection

    ep = owner.endpoint(str(db))
    info = owner.read_info(ep)
    assert info is not None, f"nobody serves {db}"
    return RemoteConnection(ep.location, str(db), None, info.pid)


def stored_spans(rc: Any) -> int:
    return int(rc.execute("SELECT coalesce(sum(span_count), 0) FROM runs WHERE service_name = ?",
                          [SERVICE]).fetchall()[0][0])


# --- (a) reads ------------------------------------------------------------------------------------------

def reads_idle(base: Path, work: Path, a: argparse.Namespace, mode: str) -> dict[str, Any]:
    db = work / f"reads-{mode}.duckdb"
    shutil.copyfile(base, db)
    stop_file = stop_file_in(work, mode)
    stop_file.touch()  # done after min_rounds
    load = Load()
    owner = serve(db, work) if mode == "owner" else None
    try:
        res = Child("reader", db, mode, stop_file, a.rounds, a.rounds, 0).result()
    finally:
        if owner is not None:
            finish(owner)
    res["load"] = load.done()
    return res


def reads_during_writes(base: Path, write_file: Path, work: Path, a: argparse.Namespace) -> dict[str, Any]:
    db = work / "reads-writes.duckdb"
    shutil.copyfile(base, db)
    stop_file = stop_file_in(work, "writes")
    load = Load()
    owner = serve(db, work)
    stream_receiver, endpoint = collect(db, work, "--flush-seconds", "0.5")
    stream = subprocess.Popen([sys.executable, str(OTEL_LOAD), endpoint, "3600", str(a.stream_rate), "bench-stream"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rc = owner_ping(db)
    busy: list[bool] = []
    try:
        t0 = time.monotonic()
        while not any(c["op"] == "publish" for c in rc.ping()["calls"]):  # the stream is being written
            if time.monotonic() - t0 > 120:
                raise RuntimeError("the receiver wrote nothing through the owner in 120 s")
            time.sleep(0.02)
        reader = Child("reader", db, "owner", stop_file, 1, 10**9, 0)
        wait_ready(stop_file, reader)
        t_ingest = time.perf_counter()
        nice = ["nice", "-n", str(a.ingest_nice)] if a.ingest_nice else []  # as a cron job may run it
        ingest = subprocess.Popen([*nice, *CLI, "ingest", str(write_file), "--db", str(db), "--no-progress"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=work)
        while ingest.poll() is None:  # how much of the window the owner spent writing
            busy.append(bool(rc.ping()["calls"]))
            time.sleep(0.1)
        ingest_s = time.perf_counter() - t_ingest
        _, err = ingest.communicate()
        if ingest.returncode != 0:
            raise RuntimeError(f"agentlens ingest exited {ingest.returncode}: {err.strip()[-800:]}")
        stop_file.touch()
        res = reader.result()
    finally:
        stream.kill()
        stream.communicate()
        c_out, _ = finish(stream_receiver)
        rc.close()
        finish(owner)
    res.update({"load": load.done(), "ingest_s": ingest_s, "ingest_runs": a.write_runs,
                "ingest_file_mb": write_file.stat().st_size / 1e6, "owner_writing": sum(busy) / max(len(busy), 1),
                "stream_rate": a.stream_rate, "receiver_summary": c_out.strip().splitlines()[-1] if c_out.strip() else ""})
    return res


# --- (b) the receiver --------------------------------------------------------------------------------------

def receiver(base: Path, work: Path, a: argparse.Namespace, with_readers: bool, rep: int) -> dict[str, Any]:
    db = work / f"receiver-{rep}-{int(with_readers)}.duckdb"
    shutil.copyfile(base, db)
    stop_file = stop_file_in(work, "receiver")
    load = Load()
    proc, endpoint = collect(db, work)
    stop = threading.Event()
    cli_runs: list[float] = []
    cli_cpu: list[float] = []
    cli_failures: list[str] = []
    notebook = None
    cli_thread = None
    rc = owner_ping(db)
    try:
        if with_readers:
            notebook = Child("reader", db, "owner", stop_file, 1, 10**9, a.notebook_pause)
            wait_ready(stop_file, notebook)

            def cli_loop() -> None:
                i = 0
                while not stop.is_set():
                    t = time.perf_counter()
                    args = CLI_READS[i % len(CLI_READS)]
                    with tempfile.TemporaryFile() as errs:
                        p = subprocess.Popen([*CLI, *args, "--db", str(db)], stdout=subprocess.DEVNULL, stderr=errs,
                                             cwd=work)
                        _, status, usage = os.wait4(p.pid, 0)  # its CPU, from the kernel
                        p.returncode = os.waitstatus_to_exitcode(status)
                        if p.returncode != 0:
                            errs.seek(0)
                            cli_failures.append(f"{args}: exit {p.returncode}: {errs.read()[-300:]!r}")
                    cli_runs.append(time.perf_counter() - t)
                    cli_cpu.append(usage.ru_utime + usage.ru_stime)
                    i += 1
                    stop.wait(a.cli_pause)

            cli_thread = threading.Thread(target=cli_loop)
            cli_thread.start()
            time.sleep(1.0)  # the readers are going
        cpu0 = proc_cpu_s(proc.pid)
        sent = Child("send", endpoint, a.seconds, a.connections).result()
        t0 = time.monotonic()
        while (stored := stored_spans(rc)) < sent["acknowledged"]:
            if time.monotonic() - t0 > 600:
                raise RuntimeError(f"acknowledged {sent['acknowledged']} spans, {stored} stored after 600 s")
            time.sleep(0.1)
        all_stored = time.time()
        receiver_cpu = proc_cpu_s(proc.pid) - cpu0  # decoding, writing, and serving the readers' queries
    finally:
        stop.set()
        if cli_thread is not None:
            cli_thread.join()
        stop_file.touch()
        reads = notebook.result() if notebook is not None else None
        rc.close()
        out, err = finish(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"agentlens collect exited {proc.returncode}: {err.strip()[-800:]}")
    if cli_failures:
        raise RuntimeError("CLI reads failed: " + "; ".join(cli_failures[:3]))
    window = all_stored - sent["first_unix"]
    res = {"with_readers": with_readers, "acknowledged": sent["acknowledged"], "stored": stored,
           "window_s": window, "spans_per_s": sent["acknowledged"] / window, "sender": sent,
           "receiver_cpu_s": receiver_cpu, "spans_per_receiver_cpu_s": sent["acknowledged"] / receiver_cpu,
           "receiver_summary": out.strip().splitlines()[-1] if out.strip() else "", "load": load.done()}
    if with_readers:
        assert reads is not None
        res["cli_reads"] = len(cli_runs)
        res["cli_read_s"] = statistics.median(cli_runs) if cli_runs else None
        res["cli_cpu_s"] = sum(cli_cpu)
        res["notebook_cpu_s"] = reads["cpu_s"]
        res["notebook_reads"] = sum(len(v) for v in reads["samples"].values())
        res["notebook_read_s"] = {k: statistics.median(v) for k, v in reads["samples"].items() if v}
    return res


# --- report ------------------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between the closest ranks."""
    v = sorted(values)
    if len(v) == 1:
        return v[0]
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def stats(samples: list[float]) -> dict[str, Any]:
    return {"n": len(samples), "p50_s": pct(samples, 0.5), "p95_s": pct(samples, 0.95), "max_s": max(samples)}


def summarize(report: dict[str, Any]) -> None:
    """Per read: p50/p95 in each case (samples of every repetition pooled), ratios to the idle owner's."""
    cases = ("idle", "file", "writes")
    out: dict[str, Any] = {}
    for key in READ_LABELS:
        row: dict[str, Any] = {}
        for case in cases:
            pooled = [x for r in report["reads"][case] for x in r["samples"][key]]
            row[case] = stats(pooled)
        for case in ("file", "writes"):
            row[f"{case}_p50_ratio"] = row[case]["p50_s"] / row["idle"]["p50_s"]
            row[f"{case}_p95_ratio"] = row[case]["p95_s"] / row["idle"]["p95_s"]
        out[key] = row
    report["read_summary"] = out
    alone = [r["spans_per_s"] for r in report["receiver"] if not r["with_readers"]]
    readers = [r["spans_per_s"] for r in report["receiver"] if r["with_readers"]]
    eff_alone = [r["spans_per_receiver_cpu_s"] for r in report["receiver"] if not r["with_readers"]]
    eff_readers = [r["spans_per_receiver_cpu_s"] for r in report["receiver"] if r["with_readers"]]
    report["receiver_summary"] = {"alone": statistics.median(alone), "with_readers": statistics.median(readers),
                                  "ratio": statistics.median(readers) / statistics.median(alone),
                                  "per_cpu_ratio": statistics.median(eff_readers) / statistics.median(eff_alone)}


def _ms(s: float) -> str:
    return f"{s * 1000:,.1f}"


def targets(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    rs = report["read_summary"]
    worst = max(rs, key=lambda k: rs[k]["writes_p95_ratio"])
    rec = report["receiver_summary"]
    t = report["targets"]
    return [
        (f"read p95 during writes within {t['read_p95_ratio']:g}x the idle owner's, for every read",
         f"worst: {rs[worst]['writes_p95_ratio']:.2f}x ({READ_LABELS[worst]}); "
         + ", ".join(f"{k} {rs[k]['writes_p95_ratio']:.2f}x" for k in rs),
         "yes" if rs[worst]["writes_p95_ratio"] <= t["read_p95_ratio"] else "**no**"),
        (f"receiver throughput with readers ≥ {t['receiver_ratio']:g}x alone",
         f"{rec['ratio']:.3f}x ({rec['with_readers']:,.0f} against {rec['alone']:,.0f} spans/s, medians)",
         "yes" if rec["ratio"] >= t["receiver_ratio"] else "**no**"),
    ]


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    loads = [r["load"] for case in report["reads"].values() for r in case] + [r["load"] for r in report["receiver"]]
    others = [x["other_cpu_cores"] for x in loads if x["other_cpu_cores"] is not None]
    avgs = [x["loadavg_1m"] for x in loads if x["loadavg_1m"] is not None]
    rs = report["read_summary"]
    w = report["reads"]["writes"]
    lines = [
        "# agentlens concurrency benchmark",
        "",
        f"Generated by `bench/concurrency.py {report['argv']}` on {m['date']} in {report['total_s'] / 60:.0f} min. "
        "See bench/README.md (\"Many users at once\") for what is measured and the targets.",
        "",
        f"Machine: {m['cores']} cores ({m['cpu'] or 'unknown CPU'}), {m['memory_gib']} GiB RAM, {m['os']}; "
        f"Python {m['python']}, DuckDB {m['duckdb']}"
        + (f"; commit {m['git_revision']}" if m.get("git_revision") else "")
        + (f" ({m['git_revision_note']})" if m.get("git_revision_note") else "") + ".",
        "",
        f"Load: other processes used {statistics.median(others):.2f} cores (median over the cases; max "
        f"{max(others):.2f}) of {m['cores']} while this ran; 1-minute load average at the cases' starts "
        f"{min(avgs):.1f}-{max(avgs):.1f}"
        + (". **The machine was shared**: the ratios compare cases of one run, each disturbed alike only on "
           "average; repeat to see their spread." if max(others) > 0.25 else " (the machine was otherwise idle)."),
        "",
        f"Database: bench/gen.py, seed {report['seed']}, {report['base']['runs']:,} runs, {report['base']['spans']:,} "
        f"spans ({report['base']['db_mb']:.0f} MB), copied afresh for every case.",
        "",
        "## Reads while writes go on",
        "",
        "A client process (a notebook's) runs each read over and over, timed as the user sees it (statement, "
        "Arrow back, frames built). **Idle owner**: through `agentlens serve` doing nothing else (the baseline). "
        "**Read-only file**: the file opened read-only when nobody holds it, as the read commands do. **During "
        "writes**: through the owner while `"
        + (f"nice -n {report['args']['ingest_nice']} " if report["args"].get("ingest_nice") else "")
        + f"agentlens ingest` of {w[0]['ingest_runs']:,} more runs "
        f"({w[0]['ingest_file_mb']:.0f} MB) runs, its publish delegated to the owner, and `agentlens collect` "
        f"writes the OpenTelemetry SDK exporter's stream of {w[0]['stream_rate']:g} spans/s through it. "
        f"Samples of {len(report['reads']['idle'])} repetition(s) pooled; milliseconds; ratios to the idle owner's.",
        "",
        "| read | idle owner p50 / p95 | read-only file p50 / p95 (p95 ratio) | during writes p50 / p95 | "
        "during writes: p50 ratio | p95 ratio | samples (idle / file / writes) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in READ_LABELS.items():
        r = rs[key]
        lines.append(
            f"| {label} | {_ms(r['idle']['p50_s'])} / {_ms(r['idle']['p95_s'])} | "
            f"{_ms(r['file']['p50_s'])} / {_ms(r['file']['p95_s'])} ({r['file_p95_ratio']:.2f}x) | "
            f"{_ms(r['writes']['p50_s'])} / {_ms(r['writes']['p95_s'])} | {r['writes_p50_ratio']:.2f}x | "
            f"**{r['writes_p95_ratio']:.2f}x** | {r['idle']['n']} / {r['file']['n']} / {r['writes']['n']} |")
    def cpu(case: str) -> str:
        ours = statistics.median(r["load"]["our_cpu_cores"] for r in report["reads"][case])
        other = [r["load"]["other_cpu_cores"] for r in report["reads"][case] if r["load"]["other_cpu_cores"] is not None]
        return f"ours {ours:.2f}, others' {statistics.median(other):.2f}" if other else f"ours {ours:.2f}"

    lines += [
        "",
        f"CPU in use while the cases ran (medians, cores of {m['cores']}): idle owner {cpu('idle')}; read-only file "
        f"{cpu('file')}; during writes {cpu('writes')}. Ours: every process of the case (owner, reader, ingest and its "
        "workers, receiver, the SDK's stream); when ours and the others' add up to every core, the reads share "
        "what is left with the writes, and their ratios measure that share as much as agentlens.",
        "",
        "The writes, per repetition: " + "; ".join(
            f"the ingest took {x['ingest_s']:.1f} s, the owner was running a write operation at "
            f"{x['owner_writing']:.0%} of the checks (every 0.1 s), the reader did {x['rounds']} rounds; "
            f"receiver: {x['receiver_summary'] or '?'}" for x in w) + ".",
        "",
        "## The receiver's throughput, with readers present",
        "",
        f"`agentlens collect` holds the database (its default batches: 5,000 spans or 2 s). A sender posts OTLP "
        f"protobuf export requests ({SPANS_PER_REQUEST} spans each, made by the OpenTelemetry SDK's encoder, new "
        f"trace ids every time) on {report['args']['connections']} connections as fast as the receiver answers, "
        f"for {report['args']['seconds']:g} s. Throughput: spans acknowledged and stored per second, from the "
        "first request until every acknowledged span is in the database. **With readers**: a loop of CLI reads "
        f"({', '.join('`' + ' '.join(c) + '`' for c in CLI_READS)}, {report['args']['cli_pause']:g} s apart) and a "
        f"notebook-like client running the reads above through the receiver ({report['args']['notebook_pause']:g} s "
        "apart). The cases alternate.",
        "",
        "| # | readers | spans acknowledged and stored | window s | spans/s | receiver CPU (cores) | spans per receiver "
        "CPU s | CLI reads (median s) | notebook reads | readers' CPU (cores) | others' CPU (cores) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(report["receiver"]):
        other = r["load"]["other_cpu_cores"]
        lines.append(
            f"| {i + 1} | {'yes' if r['with_readers'] else 'no'} | {r['acknowledged']:,} | {r['window_s']:.1f} | "
            f"{r['spans_per_s']:,.0f} | {r['receiver_cpu_s'] / r['window_s']:.2f} | "
            f"{r['spans_per_receiver_cpu_s']:,.0f} | "
            + (f"{r['cli_reads']} ({r['cli_read_s']:.2f})" if r["with_readers"] and r["cli_read_s"] else "–")
            + f" | {r['notebook_reads'] if r['with_readers'] else '–'} | "
            + (f"{(r['cli_cpu_s'] + r['notebook_cpu_s']) / r['window_s']:.2f}" if r["with_readers"] else "–") + " | "
            + (f"{other:.2f}" if other is not None else "?") + " |")
    rec = report["receiver_summary"]
    lines += [
        "",
        f"Median: {rec['alone']:,.0f} spans/s alone, {rec['with_readers']:,.0f} with readers: **{rec['ratio']:.3f}x**. "
        f"Spans per CPU second of the receiver's process: {rec['per_cpu_ratio']:.2f}x with readers. That process "
        "also serves the readers' queries, so its CPU per span rises with them; the rest of the drop in throughput "
        "is cores the readers' own processes took (the CLI's interpreter start-ups, the notebook's frames: "
        "\"readers' CPU\", over the window).",
        "",
        "## Targets (issue 20)",
        "",
        "| target | measured | met? |",
        "|---|---|---|",
        *[f"| {t} | {v} | {ok} |" for t, v, ok in targets(report)],
        "",
        f"Raw numbers: {report['json_path']}",
        "",
    ]
    return "\n".join(lines)


def revision() -> str | None:
    """The checked-out commit, with `+changes` when the sources differ from it (git; run.py's reader of .git
    does not follow a worktree's .git file)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "agentlens", "bench", "tests"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + (" +changes" if dirty else "")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child_main(argv[1], argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=gen.parse_count, default=10_000, help="runs in the database (default 10k)")
    ap.add_argument("--write-runs", type=gen.parse_count, default=None,
                    help="runs in the file ingested during the reads (default: as many as --runs)")
    ap.add_argument("--repeat", type=int, default=2, help="repetitions of every case (default 2)")
    ap.add_argument("--rounds", type=int, default=40, help="rounds of the reads on an idle owner and on the file")
    ap.add_argument("--stream-rate", type=float, default=400, help="spans/s of the SDK's stream during the reads")
    ap.add_argument("--ingest-nice", type=int, default=0,
                    help="run the ingest during the reads under `nice -n N` (its workers too; the owner's publish not)")
    ap.add_argument("--seconds", type=float, default=20, help="seconds the sender sends, per receiver case")
    ap.add_argument("--connections", type=int, default=4, help="the sender's connections")
    ap.add_argument("--cli-pause", type=float, default=1.0, help="seconds between two CLI reads")
    ap.add_argument("--notebook-pause", type=float, default=0.5, help="seconds between two notebook reads")
    ap.add_argument("--read-p95-target", type=float, default=3.0)
    ap.add_argument("--receiver-target", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "out", help="raw JSON results (default bench/out)")
    ap.add_argument("--data", type=Path, default=gen.DEFAULT_OUT, help="generated files (default bench/data)")
    ap.add_argument("--results", type=Path, default=None, help="markdown report (default bench/CONCURRENCY.md)")
    ap.add_argument("--render", type=Path, metavar="JSON", help="only rewrite the markdown from a raw JSON result")
    ap.add_argument("--smoke", action="store_true", help="a few hundred runs, seconds per case: checks the harness")
    a = ap.parse_args(argv)
    if a.smoke:
        a.runs, a.write_runs, a.repeat, a.rounds, a.seconds, a.stream_rate = 300, 300, 1, 2, 2.0, 200
        a.results = a.results or a.out / "CONCURRENCY-smoke.md"
    a.results = (a.results or HERE / "CONCURRENCY.md").resolve()
    if a.render:
        a.results.write_text(render(json.loads(a.render.read_text())))
        log(f"rendered {a.results} from {a.render}")
        return
    a.write_runs = a.write_runs or a.runs
    a.out, a.data = a.out.resolve(), a.data.resolve()
    a.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = a.out / ("concurrency-smoke.json" if a.smoke else f"concurrency-{stamp}.json")
    report: dict[str, Any] = {
        "argv": " ".join(x.replace(str(ROOT) + os.sep, "") for x in argv),  # no machine paths in the markdown
        "machine": {**machine(), "git_revision": revision()}, "seed": a.seed,
        "args": {k: v for k, v in vars(a).items() if k in ("runs", "write_runs", "repeat", "rounds", "stream_rate", "ingest_nice",
                                                            "seconds", "connections", "cli_pause", "notebook_pause")},
        "targets": {"read_p95_ratio": a.read_p95_target, "receiver_ratio": a.receiver_target},
        "reads": {"idle": [], "file": [], "writes": []}, "receiver": [],
        "json_path": str(json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT) else json_path),
    }
    base_file = gen.generate(a.data, a.runs, seed=a.seed, csv_too=False)["otlp"]
    write_file = gen.generate(a.data, a.write_runs, seed=a.seed, offset=a.runs, csv_too=False)["otlp"]
    # the sockets of this run's owners in a folder of its own (short: a socket's path has room for 107 bytes)
    runtime = Path(tempfile.mkdtemp(prefix="al-bench-"))
    os.environ["AGENTLENS_RUNTIME_DIR"] = str(runtime)
    work = Path(tempfile.mkdtemp(prefix="agentlens-conc-", dir=a.out))
    try:
        base = work / "base.duckdb"
        log(f"database: {a.runs:,} runs from {base_file.name}")
        report["base"] = Child("ingest_base", base, base_file).result()
        report["base"]["db_mb"] = base.stat().st_size / 1e6
        for rep in range(a.repeat):
            log(f"== repetition {rep + 1}/{a.repeat} ==")
            for mode, case in (("owner", "idle"), ("file", "file")):
                r = reads_idle(base, work, a, mode)
                report["reads"][case].append(r)
                log(f"  reads, {case}: " + ", ".join(f"{k} {statistics.median(v) * 1000:,.1f} ms"
                                                     for k, v in r["samples"].items()))
            r = reads_during_writes(base, write_file, work, a)
            report["reads"]["writes"].append(r)
            log(f"  reads during writes ({r['ingest_s']:.1f} s ingest, {r['rounds']} rounds): "
                + ", ".join(f"{k} {statistics.median(v) * 1000:,.1f} ms" for k, v in r["samples"].items()))
            for with_readers in (False, True):
                r = receiver(base, work, a, with_readers, rep)
                report["receiver"].append(r)
                log(f"  receiver {'with' if with_readers else 'without'} readers: {r['spans_per_s']:,.0f} spans/s "
                    f"({r['acknowledged']:,} in {r['window_s']:.1f} s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)
    report["total_s"] = time.perf_counter() - t_start
    summarize(report)
    json_path.write_text(json.dumps(report, indent=1, default=str))
    md = render(report)
    a.results.write_text(md)
    print(md)
    log(f"done in {report['total_s']:.0f} s: {a.results}, {json_path}")


if __name__ == "__main__":
    main()
