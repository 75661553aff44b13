"""The on-call engineer's terminal (issue 22): `agentlens runs`, `trace`, `session`, `compare`, `quarantine`
through the library, through the CLI, and in a real terminal (tmux, a fixed size, read back with
capture-pane), on the sample traces and on hand-made runs; the search index kept true under re-ingest,
rebuilt runs and another process holding the database; trace content with terminal control sequences
shown, never obeyed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.text import Text

import agentlens
from agentlens import explore
from agentlens.cli import main
from agentlens.core.textsafe import picture, visible
from agentlens.explore import compare as C
from agentlens.explore import quarantine as Q
from agentlens.explore import search as S
from agentlens.explore import session as SS
from agentlens.explore.runs import looks_like_id, preview, run_name
from conftest import SAMPLES, doc, jsonl, span

# a run of the samples whose refund tool failed: the error is only in the tool span and its exception
PAYMENT_RUN = "d32ecfd788c768c99cf1eefb0f2b4932"
PAYMENT_TEXT = "insufficient merchant balance"
SESSION = "sess_2b545a2837b2"  # four runs of one conversation in the samples

NS = 1_795_000_000_000_000_000
SEC = 1_000_000_000
OSC_TITLE = "\x1b]0;PWNED\x07"
CLEAR = "\x1b[2J\x1b[H"
OSC8 = "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\"
BIDI = "\u202etxt.exe"
C1_CSI = "\x9b31m"
EVIL = "0cf7651916cd43dd8448eb211c80319c"


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("samples") / "samples.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(SAMPLES)
        S.sync(lens)  # the last file's few fresh runs wait for the next publish (search.LAZY_RUNS): indexed now
    return db


def evil_doc() -> dict:
    root, tool = "c000000000000001", "c000000000000002"
    return doc(
        span(EVIL, root, None, f"invoke_agent {OSC_TITLE}support", NS, NS + 4 * SEC,
             {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": f"bot{CLEAR}", "feature": f"f{C1_CSI}",
              "session.id": "s-evil", "input.value": f"hello {OSC8} {BIDI}"}),
        span(EVIL, tool, root, f"execute_tool {BIDI}", NS + SEC, NS + 2 * SEC,
             {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup",
              "gen_ai.tool.call.arguments": json.dumps({"q": OSC_TITLE}), "gen_ai.tool.call.result": f"{CLEAR}done"},
             status={"code": 2, "message": f"failed {OSC_TITLE}{CLEAR}"}),
    )


@pytest.fixture(scope="module")
def evil_db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("evil")
    db = folder / "evil.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(jsonl(folder / "evil.jsonl", evil_doc()))
    return db


def run_cli(*args: str, columns: int = 120) -> str:
    r = CliRunner().invoke(main, list(args), env={"COLUMNS": str(columns)}, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    return r.output


# --- escaping ----------------------------------------------------------------------------------------


def test_visible_shows_every_control_and_bidi_character():
    out = visible(f"a{OSC_TITLE}b{CLEAR}{C1_CSI}{BIDI}\x7f\tline\nnext")
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\u202e" not in out
    assert "␛]0;PWNED␇" in out and "\\x9b31m" in out and "\\u202etxt.exe" in out and "␡" in out
    assert "line\nnext" in out  # newlines kept unless asked
    assert "␊" in visible("a\nb", newlines=False)
    assert len(picture(f"x{OSC_TITLE}{BIDI}")) == len(f"x{OSC_TITLE}{BIDI}")  # one for one, layout kept


def test_the_console_obeys_no_control_sequence_whoever_made_the_renderable(capsys):
    from agentlens.present import terminal

    terminal.show(Text(f"raw {OSC_TITLE}{CLEAR}{C1_CSI}"))  # a renderable that did not escape its text
    terminal.say(f"said {OSC8}")
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out
    assert "PWNED" in out and "said" in out


def test_trace_content_is_shown_not_obeyed_in_every_command(evil_db):
    for args in (["runs"], ["runs", "--search", "PWNED"], ["trace", EVIL], ["trace", EVIL, "--full"],
                 ["session", "s-evil"], ["compare", "--dimension", "session_id", "--values", "s-evil,x"],
                 ["failures"], ["costs"], ["show"]):
        out = run_cli(*args, "--db", str(evil_db))
        assert "\x1b" not in out and "\x9b" not in out and "\u202e" not in out and "\x07" not in out, args
    # CSV is data and keeps the text as it is, except on a terminal (the tmux test below)
    assert "\x1b" in run_cli("runs", "--format", "csv", "--db", str(evil_db))
    full = run_cli("trace", EVIL, "--full", "--db", str(evil_db))
    assert "␛]0;PWNED␇" in full and "\\u202etxt.exe" in full


# --- search ------------------------------------------------------------------------------------------


def test_search_finds_text_only_a_tool_error_holds(sample_db):
    """The issue's example: the words are in a tool span's error, not in the run's input or output."""
    with agentlens.open(sample_db, read_only=True) as lens:
        run = lens.sql("SELECT input, output FROM runs WHERE run_id = ?", [PAYMENT_RUN]).row(0)
        assert all(PAYMENT_TEXT not in (v or "") for v in run)
        page = explore.find_runs(lens, explore.RunFilter(text=PAYMENT_TEXT), describe=True)
        assert page["run_id"].to_list() == [PAYMENT_RUN]
        assert explore.count_runs(lens, explore.RunFilter(text="Insufficient  MERCHANT balance!")) == 1
        # words in order and next to each other: a phrase, not a bag of words
        assert explore.count_runs(lens, explore.RunFilter(text="balance merchant insufficient")) == 0


@pytest.mark.parametrize("text", [PAYMENT_TEXT, "refund", "A-34267", "Ignore all previous instructions",
                                  "send_email", "rate limit", "PaymentGatewayError", "nothing like this at all"])
def test_the_index_and_the_scan_agree(sample_db, text):
    with agentlens.open(sample_db, read_only=True) as lens:
        assert S.state(lens).watermark_us is not None  # the ingest indexed the runs
        plan = S.prepare(lens, text)
        assert plan.scanned_runs == 0
        indexed = set(lens.sql("SELECT run_id FROM _search_hits")["run_id"].to_list())
        assert S.scan_only(lens, text) == len(indexed)
        # the plain substring scan of every text column finds the same runs where the text is one phrase
        base = lens.sql("SELECT DISTINCT run_id FROM spans WHERE concat_ws(' ', input, output, tool_arguments, "
                        "tool_result, status_message, events::VARCHAR) ILIKE ? UNION SELECT run_id FROM runs "
                        "WHERE concat_ws(' ', input, output) ILIKE ?", [f"%{text}%"] * 2)
        if text in (PAYMENT_TEXT, "Ignore all previous instructions", "PaymentGatewayError"):
            assert indexed == set(base["run_id"].to_list())


def _run_doc(n: int, texts: list[str], start_s: int = 0) -> dict:
    trace = f"{n:032x}"
    root = f"{n:08x}00000001"
    spans = [span(trace, root, None, "invoke_agent bot", NS + start_s * SEC, NS + (start_s + 9) * SEC,
                  {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "bot"})]
    for k, text in enumerate(texts, 2):
        spans.append(span(trace, f"{n:08x}{k:08x}", root, "execute_tool lookup", NS + (start_s + k) * SEC,
                          NS + (start_s + k) * SEC + 1000, {"gen_ai.operation.name": "execute_tool",
                                                            "gen_ai.tool.name": "lookup",
                                                            "gen_ai.tool.call.result": text}))
    return doc(*spans)


def _search(lens: agentlens.Lens, text: str) -> set[str]:
    S.forget(lens)
    return set(explore.find_runs(lens, explore.RunFilter(text=text), limit=100)["run_id"].to_list())


def test_the_index_stays_true_under_reingest_rebuilt_runs_and_an_index_left_behind(tmp_path):
    db = tmp_path / "t.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(jsonl(tmp_path / "a.jsonl", _run_doc(1, ["alpha bravo"]), _run_doc(2, ["charlie"])))
        assert _search(lens, "alpha bravo") == {f"{1:032x}"}
        old = S.state(lens)
        shutil.copytree(old.path, tmp_path / "old-index")
        # a later file adds a span to run 2: the run is rebuilt (a new ingested_at); one fresh run waits for the
        # next publish (search.LAZY_RUNS), scanned meanwhile, then is indexed again
        lens.ingest(jsonl(tmp_path / "b.jsonl", doc(span(f"{2:032x}", f"{2:08x}00000009", f"{2:08x}00000001",
                                                           "execute_tool lookup", NS + 5 * SEC, NS + 6 * SEC,
                                                           {"gen_ai.operation.name": "execute_tool",
                                                            "gen_ai.tool.call.result": "delta echo"}))))
        assert _search(lens, "delta echo") == {f"{2:032x}"} and _search(lens, "charlie") == {f"{2:032x}"}
        assert S.state(lens).watermark_us == old.watermark_us and S.prepare(lens, "delta echo").scanned_runs == 1
        S.sync(lens)
        S.forget(lens)  # the searcher this process keeps open: reopened on the new commit
        assert S.state(lens).watermark_us > old.watermark_us and S.prepare(lens, "delta echo").scanned_runs == 0
        assert _search(lens, "delta echo") == {f"{2:032x}"} and _search(lens, "charlie") == {f"{2:032x}"}
        # the same bytes again: nothing changes
        lens.ingest(tmp_path / "a.jsonl")
        assert _search(lens, "alpha bravo") == {f"{1:032x}"}
        # the index as it was before run 2 was rebuilt (a crash between the commit and the sync): run 2's
        # old document no longer counts, and the run is scanned, so the search is still right
        shutil.rmtree(old.path)
        shutil.copytree(tmp_path / "old-index", old.path)
        plan = S.prepare(lens, "delta echo")
        assert plan.scanned_runs == 1 and plan.matches == 1
        assert _search(lens, "delta echo") == {f"{2:032x}"} and _search(lens, "alpha") == {f"{1:032x}"}
        # no index at all: every run scanned, same answers; `agentlens index --rebuild` makes it again
        shutil.rmtree(old.path)
        assert _search(lens, "delta echo") == {f"{2:032x}"}
        assert not (tmp_path / "t.duckdb.search").exists()
    out = run_cli("index", "--rebuild", "--db", str(db))
    assert "search index: 2 runs" in out
    with agentlens.open(db, read_only=True) as lens:
        assert S.prepare(lens, "delta echo").scanned_runs == 0 and _search(lens, "delta echo") == {f"{2:032x}"}


@pytest.mark.slow
def test_search_through_the_process_that_holds_the_database(tmp_path, sample_db, monkeypatch):
    """Another process holds the database (it serves it): the command is its client, reads the index
    folder itself and runs its SQL in the holder; an ingest from the client is indexed by the holder."""
    db = tmp_path / "held.duckdb"
    shutil.copy(sample_db, db)
    shutil.copytree(Path(str(sample_db) + ".search"), Path(str(db) + ".search"))
    monkeypatch.setenv("AGENTLENS_RUNTIME_DIR", str(tmp_path / "rt"))
    env = {**os.environ, "COLUMNS": "150"}
    cli = [str(Path(sys.executable).parent / "agentlens")]
    with agentlens.open(db) as holder:
        assert holder.remote is None
        r = subprocess.run([*cli, "runs", "--db", str(db), "--search", PAYMENT_TEXT], capture_output=True,
                           text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        assert PAYMENT_RUN in r.stdout and "1 run" in r.stdout
        jsonl(tmp_path / "new.jsonl", _run_doc(77, ["zulu yankee from a client"]))
        monkeypatch.setattr(S, "LAZY_RUNS", 0)  # this one run indexed by the publish itself, not the next one
        r = subprocess.run([*cli, "ingest", str(tmp_path / "new.jsonl"), "--db", str(db)], capture_output=True,
                           text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        plan = S.prepare(holder, "zulu yankee")
        assert plan.matches == 1 and plan.scanned_runs == 0  # indexed by the holder after the publish


# --- the list, the preview, the name -----------------------------------------------------------------


def test_preview_is_the_last_user_message_not_the_system_prompt_or_json():
    msgs = json.dumps([{"role": "system", "content": "You are a bot."}, {"role": "user", "content": "first"},
                       {"role": "assistant", "content": "ok"}, {"role": "user", "content": "Where is\n my order?"}])
    assert preview(msgs) == "Where is my order?"
    assert preview(json.dumps({"messages": [{"role": "user", "content": "weather in SF?"}]})) == "weather in SF?"
    assert preview(json.dumps({"new_message": {"parts": [{"text": "hi"}], "role": "user"}})) == "hi"
    assert preview(json.dumps({"prompt": "What is up?", "system": "be nice"})) == "What is up?"
    assert preview(json.dumps({"args": ["What is Langfuse?"]})) == "What is Langfuse?"
    parts = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "from parts"}]}])
    assert preview(parts) == "from parts"
    assert preview("plain   text\nhere") == "plain text here"
    assert preview("x" * 500, limit=20) == "x" * 19 + "…"
    assert looks_like_id("171105b7-59dd-49c0-9677-0b95395aa46a") and looks_like_id("1072")
    assert not looks_like_id("support-agent")
    assert run_name("171105b7-59dd-49c0-9677-0b95395aa46a", "invoke_agent travel") == "invoke_agent travel"
    assert run_name("support-agent", "root") == "support-agent" and run_name(None, "agent_run") == "agent_run"


def test_runs_lists_filters_and_says_when_nothing_matches(sample_db):
    out = run_cli("runs", "--db", str(sample_db), "-n", "5", columns=150)
    assert "5 of 120 runs" in out and "started (2026, UTC)" in out and "preview" in out
    assert "You are Acme" not in out  # the system prompt is not the preview
    out = run_cli("runs", "--db", str(sample_db), "--search", PAYMENT_TEXT, columns=150)
    assert PAYMENT_RUN in out and "tool_error" in out and "1 run" in out
    out = run_cli("runs", "--db", str(sample_db), "--status", "error", "--feature", "refund", "--mode",
                  "tool_error", "--format", "json")
    assert [r["run_id"] for r in json.loads(out)] == [PAYMENT_RUN]
    assert run_cli("runs", "--db", str(sample_db), "--search", "no such words anywhere").strip() == "no runs match"
    assert run_cli("runs", "--db", str(sample_db), "--since", "2030-01-01").strip() == "no runs match"
    out = run_cli("runs", "--db", str(sample_db), "--sort", "cost_usd", "-n", "3", "--format", "csv")
    assert out.splitlines()[0].startswith("run_id,") and len(out.splitlines()) == 4


@pytest.mark.parametrize("columns", [60, 80, 100, 150])
def test_every_new_command_fits_the_width(sample_db, columns):
    for args in (["runs", "-n", "10"], ["trace", PAYMENT_RUN], ["trace", PAYMENT_RUN, "--full"],
                 ["session", SESSION], ["compare", "--period", "2d", "--until", "2026-11-15"], ["quarantine"]):
        out = run_cli(*args, "--db", str(sample_db), columns=columns)
        assert max(len(line) for line in out.splitlines()) <= columns, (args, columns)


def test_money_has_the_same_decimals_down_a_column(sample_db):
    out = run_cli("runs", "--db", str(sample_db), "-n", "20", "--sort", "cost_usd", columns=200)
    costs = [w for line in out.splitlines() for w in line.split() if w.startswith("$")]
    assert len(costs) == 20 and len({len(c.split(".")[1]) for c in costs}) == 1


# --- trace, session, compare, quarantine ------------------------------------------------------------


def test_trace_draws_the_tree_with_errors_and_evidence(sample_db):
    out = run_cli("trace", PAYMENT_RUN, "--db", str(sample_db), columns=150)
    lines = out.splitlines()
    tool = next(line for line in lines if "execute_tool refund_order" in line)
    assert tool.startswith("└─ ") and "✖" in tool and "★ tool_error" in tool and "━" in tool
    assert any(line.lstrip("│ ").startswith("error: PaymentGatewayError: refund rejected") for line in lines)
    assert "★ tool_error (medium)" in out and "gpt-4o" in out and "329/12" in out
    full = run_cli("trace", PAYMENT_RUN, "--full", "--db", str(sample_db), columns=150)
    assert '"reason": "item arrived damaged"' in full  # tool arguments, pretty JSON
    # at 80 columns the span names win over the cost, tokens and model columns: the failing tool's name whole
    narrow = run_cli("trace", PAYMENT_RUN, "--db", str(sample_db), columns=80)
    assert "└─ execute_tool refund_order ✖ ★ tool_error" in narrow and "├─ execute_tool request_approval " in narrow
    assert max(len(line) for line in narrow.splitlines()) <= 80 and "duration" in narrow
    bad = CliRunner().invoke(main, ["trace", "nope", "--db", str(sample_db)])
    assert bad.exit_code == 2 and "no run 'nope'" in bad.output and "Traceback" not in bad.output


def test_session_lists_a_conversation_in_order_with_totals(sample_db):
    with agentlens.open(sample_db, read_only=True) as lens:
        s = SS.session(lens, SESSION)
        started = s.runs["started_at"].to_list()
        assert s.totals["runs"] == 4 == s.runs.height and started == sorted(started)
        assert abs(s.totals["cost_usd"] - sum(s.runs["cost_usd"].to_list())) < 1e-9
    out = run_cli("session", SESSION, "--db", str(sample_db), columns=150)
    assert "runs 4" in out and out.count(" ok ") == 4
    assert CliRunner().invoke(main, ["session", "nope", "--db", str(sample_db)]).exit_code == 2


def test_compare_says_when_counts_are_too_small():
    assert C.two_proportions(1, 10, 3, 12)[1].startswith("too few: ")
    pv, note = C.two_proportions(100, 1000, 150, 1000)
    assert pv is not None and pv < 0.01 and note.startswith("p=")
    pv, note = C.two_proportions(100, 1000, 104, 1000)
    assert note.endswith("noise")
    assert C.two_means(1.0, 0.1, 10, 2.0, 0.1, 10)[1] == "too few: 10 < 30 runs"


def test_compare_two_windows_and_two_values(sample_db):
    with agentlens.open(sample_db, read_only=True) as lens:
        total = explore.count_runs(lens)
        a = C.Side("a", explore.RunFilter(until="2026-11-12"))
        b = C.Side("b", explore.RunFilter(since="2026-11-12"))
        rows = {r["metric"]: r for r in C.compare(lens, a, b).rows.iter_rows(named=True)}
        assert rows["runs"]["a"] + rows["runs"]["b"] == total
        assert rows["latency p99"]["note"].startswith("too few")
        by = C.compare_values(lens, "feature", "refund", "order_status")
        assert by.rows.row(0, named=True)["a"] == explore.count_runs(lens, explore.RunFilter(equals={"feature": "refund"}))
    out = run_cli("compare", "--dimension", "feature", "--values", "refund,order_status", "--db", str(sample_db),
                  columns=150)
    assert "feature=refund" in out and "too few" in out and "two-proportion z-test" in out
    empty = run_cli("compare", "--period", "1d", "--until", "2001-01-01", "--db", str(sample_db))
    assert empty.strip() == "no runs match on either side"


def test_quarantine_lists_what_could_not_be_read(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad.otlp.jsonl").write_text('{"resourceSpans": [}\nnot json ' + OSC_TITLE + "\n")
    db = tmp_path / "q.duckdb"
    r = CliRunner().invoke(main, ["ingest", str(folder), str(SAMPLES), "--db", str(db)], env={"COLUMNS": "150"})
    assert "first quarantined records" in r.output and "line 2: malformed JSON" in r.output
    with agentlens.open(db, read_only=True) as lens:
        recs = Q.records(lens)
        assert recs.height == 2 and set(recs["kind"]) == {"malformed_json"} and sorted(recs["line"]) == [1, 2]
        assert Q.counts(lens)["records"].to_list() == [2]
    out = run_cli("quarantine", "--db", str(db), columns=150)
    assert "malformed_json" in out and "bad.otlp.jsonl" in out and "\x1b" not in out and "␛]0;PWNED␇" in out
    empty = tmp_path / "e.duckdb"
    with agentlens.open(empty) as lens:
        lens.ingest(SAMPLES)
    assert run_cli("quarantine", "--db", str(empty)).strip() == "nothing quarantined"


# --- in a real terminal ----------------------------------------------------------------------------------


class Tmux:
    """A tmux server of its own (-L), one window of a fixed size running bash."""

    def __init__(self, width: int, height: int, cwd: Path):
        self.sock = f"agentlens-test-{uuid.uuid4().hex[:8]}"
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")}
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        env["PS1"] = "$ "
        self.env = env
        self._tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), "-c", str(cwd),
                   "bash --norc --noprofile")

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.sock, *args], check=True, capture_output=True, text=True,
                              env=self.env, timeout=30).stdout

    def run(self, command: str, timeout: float = 90) -> str:
        """Type `command` and Enter, wait for it to finish; the screen as a person sees it."""
        self._tmux("send-keys", "-t", "t", "clear", "Enter")
        start, marker = f"__start_{uuid.uuid4().hex[:6]}__", f"__done_{uuid.uuid4().hex[:6]}__"
        self._tmux("send-keys", "-t", "t", f"echo {start}; {command}; echo {marker}", "Enter")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # -J: lines the terminal wrapped are joined, so a line wider than the window shows as one (the
            # typed command line is not always joined: the output is what lies between the two markers' lines)
            screen = self._tmux("capture-pane", "-p", "-J", "-t", "t", "-S", "-400")
            if f"\n{marker}" in screen and f"\n{start}\n" in screen:
                return "\n" + screen.split(f"\n{start}\n", 1)[-1].split(f"\n{marker}")[0]
            time.sleep(0.3)
        raise AssertionError(f"{command!r} did not finish: {screen}")

    def title(self) -> str:
        return self._tmux("display-message", "-p", "-t", "t", "#{pane_title}").strip()

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True, env=self.env, timeout=30)


@pytest.fixture
def tmux(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (.ci/run installs it)")
    sessions: list[Tmux] = []

    def start(width: int = 100, height: int = 60) -> Tmux:
        sessions.append(Tmux(width, height, tmp_path))
        return sessions[-1]

    yield start
    for s in sessions:
        s.close()


@pytest.mark.slow
@pytest.mark.parametrize("width", [80, 120])
def test_in_a_real_terminal(tmux, sample_db, width):
    term = tmux(width)
    db = str(sample_db)
    screen = term.run(f"agentlens runs --db {db} -n 8")
    lines = screen.strip("\n").splitlines()
    assert "8 of 120 runs" in screen and "started (2026, UTC)" in screen
    assert max(len(line) for line in lines) <= width
    assert "Traceback" not in screen
    screen = term.run(f"agentlens runs --db {db} --search '{PAYMENT_TEXT}'")
    assert PAYMENT_RUN in screen and "1 run" in screen
    screen = term.run(f"agentlens trace {PAYMENT_RUN} --db {db}")
    # the failing tool's name whole, at 80 columns too (the less important columns give way)
    assert "└─ execute_tool refund_order ✖ ★ tool_error" in screen
    assert max(len(line) for line in screen.splitlines()) <= width
    screen = term.run(f"agentlens session {SESSION} --db {db}")
    assert "runs 4" in screen
    screen = term.run(f"agentlens compare --db {db} --period 2d --until 2026-11-15")
    assert "too few" in screen and "latency p95" in screen
    assert term.run(f"agentlens runs --db {db} --search 'no such words anywhere'").strip() == "no runs match"
    assert term.run(f"agentlens quarantine --db {db}").strip() == "nothing quarantined"


@pytest.mark.slow
def test_a_real_terminal_is_not_taken_over_by_trace_content(tmux, evil_db):
    term = tmux(120)
    title = term.title()
    for command in (f"agentlens trace {EVIL} --full --db {evil_db}", f"agentlens runs --db {evil_db}",
                    f"agentlens runs --db {evil_db} --format csv"):
        screen = term.run(command)
        assert term.title() == title and "PWNED" not in term.title()  # OSC 0 did not set the window title
        assert "␛" in screen  # the escape is shown where it was
        assert "\x1b" not in screen
    screen = term.run(f"agentlens trace {EVIL} --db {evil_db}")
    assert "invoke_agent ␛]0;PWNED␇support" in screen  # a clear-screen sequence did not wipe the tree


def test_every_sql_text_of_the_terminal_parses_and_binds(lens):
    """The named SQL of search, compare, session and quarantine, on an empty migrated database."""
    con = lens.con
    con.execute(S.SEARCH_RUNS)
    con.execute("CREATE TEMP TABLE _search_hits (run_id VARCHAR)")
    con.execute("CREATE TEMP TABLE _search_todo (run_id VARCHAR, r0 BIGINT, r1 BIGINT, chunk BIGINT)")
    con.execute("CREATE TEMP TABLE _search_index_hits (run_id VARCHAR, ingested_us BIGINT)")
    named = {
        "RUN_DOCS": {"lo": 0, "hi": 10}, "RUN_WORDS": {"lo": 0, "hi": 10}, "SCAN": {"lo": 0, "hi": 10, "phrase": " a "},
        "SCAN_HITS": {"lo": 0, "hi": 10, "phrase": " a "}, "TODO": {"wm": None, "n": 10, "b": 1000, "nb": 10_000},
        "QUERY_WORDS": ["a b"],
        "TODO_COUNT": [None, None], "INDEX_HITS": [0], "NEWEST": None, "BACKLOG": {"wm": 0}, "AFTER_WM": [0], "UP_TO_WM": [0],
        "SCANNED_HITS": {"lo": 0, "hi": 10, "phrase": " a "}, "FILTERED_UP_TO_WM": [0, 10],
        "PAGE_HITS": {"ids": ["a"], "stamps": [1], "wm": 2},
        **{f"PAGE_BEFORE {k} {d}": [0] for k in S.PAGE_KEYS for d in (True, False)},
        "RECORDS": {"kind": None, "file": None, "since": None, "until": None, "n": 10, "limit": 5},
        "COUNTS": {"kind": None, "file": None, "since": None, "until": None},
        "TOTALS": ["s"],
    }
    texts = {**S.ALL_SQL, **Q.ALL_SQL, "TOTALS": SS.TOTALS,
             **{f"PAGE_BEFORE {k} {d}": S.page_before("true", k, d) for k in S.PAGE_KEYS for d in (True, False)},
             "FILTERED_UP_TO_WM": S.FILTERED_UP_TO_WM.format(where="true"), "SCANNED_OF": S.SCANNED_OF.format(where="true"),
             **{k: v.format(where="true") for k, v in C.ALL_SQL.items()}}
    for name, text in texts.items():
        params = named.get(name)
        assert len(con.extract_statements(text)) == 1, name
        con.execute(text, params).fetchall()


# --- the existing commands: empty results, money, years ----------------------------------------------


def test_existing_commands_say_when_there_is_nothing_rather_than_print_an_empty_table(sample_db):
    db = str(sample_db)
    assert run_cli("failures", "--since", "2030-01-01", "--db", db).strip() == \
        "no failures among 0 runs, since 2030-01-01 00:00:00 UTC"
    out = run_cli("failures", "--mode", "timeout", "--since", "2026-11-14T20:00Z", "--db", db)
    assert out.startswith("no failures among 3 runs")
    assert run_cli("costs", "--since", "2030-01-01", "--db", db).strip() == "no runs match"
    from agentlens.core.results import Result
    from agentlens.present import terminal

    assert "empty: none" in terminal.text(Result("t", {}, {"empty": Result("x").table()}))


def test_costs_money_columns_and_the_year(sample_db):
    out = run_cli("costs", "--by", "model", "--db", str(sample_db), columns=200)
    table = out[out.index("cost by model (USD)"):out.index("tokens by model")]
    rows = [line.split() for line in table.splitlines() if line.strip().startswith(("gpt", "o4", "claude"))]
    totals = [r[4] for r in rows]
    assert len({len(t.split(".")[1]) for t in totals}) == 1  # one number of decimals down the column
    assert "started (2026, UTC)" in out  # the runs share a year: it is in the header


@pytest.mark.real_traces
@pytest.mark.slow
def test_real_traces_list_and_draw_in_the_terminal(real_traces, tmp_path):
    """The framework traces (Langfuse exports of 20 frameworks, four instrumentation libraries): every run
    gets a name and a preview a person can scan, and every trace draws within the width."""
    db = tmp_path / "real.duckdb"
    with agentlens.open(db) as lens:
        lens.ingest(real_traces)
        page = explore.find_runs(lens, limit=1000, describe=True)
        assert page.height >= 20
        for r in page.iter_rows(named=True):
            assert r["name"] and not looks_like_id(r["name"]), r
            p = r["preview"]
            if p is not None:
                assert not p.startswith(("{", "[")) and not p.lower().startswith(("you are", "system:")), p
        ids = page["run_id"].to_list()
    previews = set(page["preview"].drop_nulls().to_list())
    assert {"Weather in Paris?", "What is Langfuse?", "Say 'Hello World!'"} <= previews
    for run_id in ids:
        for columns in (80, 140):
            out = run_cli("trace", run_id, "--full", "--db", str(db), columns=columns)
            assert max(len(line) for line in out.splitlines()) <= columns, (run_id, columns)
    out = run_cli("runs", "--db", str(db), "--search", "weather", "-n", "50", columns=120)
    assert "Weather in Paris?" in out
