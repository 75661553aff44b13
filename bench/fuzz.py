"""A seeded mutation fuzzer over every input format (issue 24): one bad record never costs the others.

Seeds: the sample traces, the golden inputs of tests/golden, and ../shared/real_traces when it is beside
the checkout. Each case is a seed file mutated once, by a mutation drawn with a seeded random generator:
byte flips, truncation, a value of another type, huge numbers and strings, invalid UTF-8, nesting
deeper than a decoder follows, a record repeated under the same id with other content, a parent cycle,
a UTF-8 byte-order mark, a .gz cut short.

What each case checks:
- the read (sniffing, the adapter, exactly as `ingest` runs them, without the database) raises nothing;
- conservation, for files of JSON lines: each line read alone gives at least one row or one record kept
  out, and the whole file gives exactly the sum over its lines (no record is lost, or counted twice,
  because of its neighbours);
- every quarantine record carries a reason, its raw text and its line;
- the ingest into a fresh in-memory store raises nothing and meets no DuckDB internal error; it stores
  one span per distinct (run, span) id the read gave and quarantines each record kept out; the stored
  runs, costs and quarantine read back.

    python bench/fuzz.py --cases 2000 --seed 1        # the long run; findings listed, exit 1 if any
    tests/test_fuzz.py runs a short seeded run of the same code.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import agentlens  # noqa: E402
from agentlens.adapters.base import Bad  # noqa: E402
from agentlens.core.config import Config  # noqa: E402
from agentlens.ingest import read  # noqa: E402
from agentlens.metrics import costs  # noqa: E402

REAL_TRACES = ROOT.parent / "shared" / "real_traces"
DEEP = 1500
NOT_TRACES = {"labels.jsonl", "README.md"}
TRACE_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".gz")
# what a check failing means; a case may be a finding of several
ERRORS = ("exception", "conservation", "incomplete_quarantine", "duckdb_internal", "store_mismatch",
          "read_back")


def seeds(real: bool = True) -> list[Path]:
    """The seed files: sample traces, golden inputs, and the real traces when present."""
    out = sorted(p for p in (ROOT / "sample_traces").iterdir() if p.name.endswith(TRACE_SUFFIXES))
    out += sorted(p for p in (ROOT / "tests" / "golden").rglob("*")
                  if p.is_file() and p.name.endswith(TRACE_SUFFIXES) and not p.name.endswith(".expected.json"))
    if real and REAL_TRACES.is_dir():
        out += sorted(p for p in REAL_TRACES.rglob("*") if p.is_file() and p.name.endswith(TRACE_SUFFIXES))
    return [p for p in out if p.name not in NOT_TRACES]


def plain(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


# --- mutations ----------------------------------------------------------------------------------------

PLACEHOLDER_DEEP = "\x00DEEP\x00"
PLACEHOLDER_1E400 = "\x00BIG\x00"
ODD_VALUES: list[Any] = [None, True, 0, -1, "abc", "", [], {}, [1, "a"], {"a": {"b": 1}}, 1.5, "NaN", "Infinity",
                         "0001-01-01T00:00:00", "9999-12-31T23:59:59", "2026-13-45"]
HUGE_VALUES: list[Any] = [2**63, 2**63 - 1, 2**70, -(2**63) - 1, -5, 1e308, -1e308, PLACEHOLDER_1E400, 10**30]


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def _nodes(v: Any, path: tuple = ()) -> list[tuple]:
    """Paths to every value inside a JSON value."""
    out = [path]
    if isinstance(v, dict):
        for k, x in v.items():
            out += _nodes(x, (*path, k))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out += _nodes(x, (*path, i))
    return out


def _set(root: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    cur = root
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return root


def _dump(v: Any) -> bytes:
    text = json.dumps(v, ensure_ascii=False, allow_nan=True)
    text = text.replace(json.dumps(PLACEHOLDER_DEEP), "[" * DEEP + "]" * DEEP)
    text = text.replace(json.dumps(PLACEHOLDER_1E400), "1e400")
    return text.encode("utf-8", "surrogatepass")


def _json_records(data: bytes) -> tuple[str, list[bytes]] | None:
    """('lines', lines) for JSON Lines, ('doc', [data]) for one JSON document, None otherwise."""
    lines = [x for x in _lines(data) if x.strip()]
    try:
        if len(lines) > 1 and all(isinstance(json.loads(x), dict) for x in lines[:3]):
            return "lines", _lines(data)
    except (ValueError, RecursionError):
        pass  # not JSON Lines: one document?
    try:
        json.loads(data)
        return "doc", [data]
    except (ValueError, RecursionError):
        return None


def _mutate_value(data: bytes, rng: random.Random, choose: Callable[[random.Random, Any], Any]) -> bytes | None:
    """Replace one value inside one JSON record (a line, or the document) by `choose(rng, old)`; CSV: one
    field of one row."""
    shape = _json_records(data)
    if shape is None:
        if data.startswith(b"PAR1"):
            return None
        return _mutate_csv(data, rng, choose)
    kind, lines = shape
    idx = [i for i, x in enumerate(lines) if x.strip()]
    if not idx:
        return None
    i = rng.choice(idx)
    rec = json.loads(lines[i])
    path = rng.choice(_nodes(rec)[1:] or [()])
    rec = _set(rec, path, choose(rng, None))
    nl = b"\n" if lines[i].endswith(b"\n") else b""
    lines[i] = _dump(rec) + (nl if kind == "lines" else b"")
    return b"".join(lines)


def _mutate_csv(data: bytes, rng: random.Random, choose: Callable[[random.Random, Any], Any]) -> bytes | None:
    import csv
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error):
        return None
    if len(rows) < 2:
        return None
    r = rng.randrange(1, len(rows))
    if not rows[r]:
        return None
    c = rng.randrange(len(rows[r]))
    v = choose(rng, rows[r][c])
    rows[r][c] = v if isinstance(v, str) else _dump(v).decode("utf-8", "surrogatepass")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


def byte_flip(data: bytes, rng: random.Random) -> bytes | None:
    b = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b)


def truncate(data: bytes, rng: random.Random) -> bytes | None:
    return data[: rng.randrange(1, len(data))] if len(data) > 1 else None


def invalid_utf8(data: bytes, rng: random.Random) -> bytes | None:
    at = rng.randrange(len(data))
    q = data.find(b'"', at)  # inside a string when one follows
    at = q + 1 if q >= 0 else at
    return data[:at] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xfe\xfe"]) + data[at:]


def type_swap(data: bytes, rng: random.Random) -> bytes | None:
    return _mutate_value(data, rng, lambda r, _: r.choice(ODD_VALUES))


def huge_number(data: bytes, rng: random.Random) -> bytes | None:
    return _mutate_value(data, rng, lambda r, _: r.choice(HUGE_VALUES))


def huge_string(data: bytes, rng: random.Random) -> bytes | None:
    return _mutate_value(data, rng, lambda r, _: "x" * r.choice([100_000, 400_000]))


def deep_nesting(data: bytes, rng: random.Random) -> bytes | None:
    return _mutate_value(data, rng, lambda r, _: PLACEHOLDER_DEEP)


def duplicate_id(data: bytes, rng: random.Random) -> bytes | None:
    """A record repeated (same ids) with one other value changed."""
    shape = _json_records(data)
    if shape is None or shape[0] != "lines":
        return None
    lines = shape[1]
    idx = [i for i, x in enumerate(lines) if x.strip()]
    i = rng.choice(idx)
    rec = json.loads(lines[i])
    leaves = [p for p in _nodes(rec)[1:] if isinstance(_get(rec, p), str) and not str(p[-1]).lower().endswith("id")]
    if leaves:
        rec = _set(rec, rng.choice(leaves), "changed")
    copy = _dump(rec) + b"\n"
    lines.insert(rng.randrange(len(lines) + 1), copy)
    return b"".join(x if x.endswith(b"\n") else x + b"\n" for x in lines)


def _get(root: Any, path: tuple) -> Any:
    for p in path:
        root = root[p]
    return root


PARENT_KEYS = (("spanId", "parentSpanId"), ("id", "parent_run_id"), ("id", "parent_observation_id"),
               ("id", "parentObservationId"))


def parent_cycle(data: bytes, rng: random.Random) -> bytes | None:
    """Two records (spans, runs, observations) made each other's parent."""
    shape = _json_records(data)
    if shape is None:
        return None
    kind, lines = shape
    docs = [(i, json.loads(x)) for i, x in enumerate(lines) if x.strip()]
    found: list[tuple[int, tuple, str, str]] = []  # (line, path of the record, id key, parent key)
    for i, d in docs:
        for p in _nodes(d):
            v = _get(d, p)
            if isinstance(v, dict):
                for idk, pk in PARENT_KEYS:
                    if isinstance(v.get(idk), str) and pk in v:
                        found.append((i, p, idk, pk))
    if len(found) < 2:
        return None
    a, b = rng.sample(found, 2)
    recs = dict(docs)
    ra, rb = _get(recs[a[0]], a[1]), _get(recs[b[0]], b[1])
    ra[a[3]], rb[b[3]] = rb[b[2]], ra[a[2]]
    for i, d in recs.items():
        nl = b"\n" if lines[i].endswith(b"\n") else b""
        lines[i] = _dump(d) + (nl if kind == "lines" else b"")
    return b"".join(lines)


def bom(data: bytes, rng: random.Random) -> bytes | None:
    return b"\xef\xbb\xbf" + data


def gzip_cut(data: bytes, rng: random.Random) -> bytes | None:
    z = gzip.compress(data)
    return z[: rng.randrange(10, len(z))] if len(z) > 11 else None


MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes | None]] = {
    f.__name__: f for f in (byte_flip, truncate, invalid_utf8, type_swap, huge_number, huge_string, deep_nesting,
                            duplicate_id, parent_cycle, bom, gzip_cut)
}


# --- checks -------------------------------------------------------------------------------------------


@dataclass
class Read:
    rows: int = 0  # span rows
    runs: int = 0
    keys: set[tuple[Any, Any]] = field(default_factory=set)
    bad: list[Bad] = field(default_factory=list)

    @property
    def kept_out(self) -> int:
        return sum(1 for b in self.bad if not b.stored)


def read_file(path: Path, config: Config) -> tuple[str | None, Read]:
    """The read `ingest` does, without the database: (format, what the adapter gave)."""
    out = Read()
    try:
        adapter = read.adapter_for(path, read.head(path), True, None)
    except (OSError, read.NotATrace) as e:
        out.bad.append(Bad("unreadable_file", str(e), "", None))
        return None, out
    assert adapter is not None
    with read.open_input(path) as stream:
        batches = read.batches(adapter, stream, path, config)
        try:
            first = next(batches, None)
        except Exception as e:  # nothing read yet: `ingest` quarantines the file whole, with the reason
            if not _parquet(path):
                raise
            out.bad.append(Bad("unreadable_file", f"{type(e).__name__}: {e}", "", None))
            return adapter.NAME, out
        for b in [first] if first is not None else []:
            out.bad += b.bad
        for b in ([first] if first is not None else []) + list(batches):
            if b.spans is not None:
                out.rows += b.spans.num_rows
                out.keys.update(zip(b.spans.column("run_id").to_pylist(), b.spans.column("span_id").to_pylist(),
                                    strict=True))
            if b.runs is not None:
                out.runs += b.runs.num_rows
            if b is not first:
                out.bad += b.bad
    return adapter.NAME, out


def _parquet(path: Path) -> bool:
    try:
        return read.head(path).startswith(b"PAR1")
    except OSError:
        return False


@dataclass
class Finding:
    kind: str
    case: str
    detail: str


def check_case(name: str, data: bytes, filename: str, workdir: Path, config: Config,
               store: bool = True, quarantined: Counter[str] | None = None) -> list[Finding]:
    """The findings of one mutated file; `quarantined` counts the kinds its read quarantined."""
    findings: list[Finding] = []
    path = workdir / filename
    path.write_bytes(data)
    try:
        fmt, whole = read_file(path, config)
    except Exception:
        return [Finding("exception", name, "read: " + traceback.format_exc(limit=-3))]
    if quarantined is not None:
        quarantined.update(b.kind for b in whole.bad)
    for b in whole.bad:
        if not b.reason or b.raw is None or (b.line is None and b.kind != "unreadable_file" and fmt is not None
                                             and not _one_document(data)):
            findings.append(Finding("incomplete_quarantine", name, f"{b.kind} line={b.line} reason={b.reason!r:.100}"))
    if fmt is not None and fmt != "agent_runs" and data[:2] != b"\x1f\x8b" and _is_lines(data):
        findings += _conservation(name, data, path, fmt, whole, config)
    if store:
        findings += _store(name, path, fmt, whole)
    return findings


def _one_document(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"[", b"{") and not _is_lines(data)


def _is_lines(data: bytes) -> bool:
    lines = [x for x in data.splitlines() if x.strip()]
    return len(lines) > 1 and sum(x.lstrip().startswith(b"{") and x.rstrip().endswith(b"}") for x in lines) >= len(lines) - 1


def _conservation(name: str, data: bytes, path: Path, fmt: str, whole: Read, config: Config) -> list[Finding]:
    from agentlens import adapters
    adapter = adapters.by_name(fmt)
    rows = kept_out = 0
    lines = _lines(data)
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        one = Read()
        part = path.with_name(path.name + f".line{n}")
        part.write_bytes(line)
        try:
            with read.open_input(part) as stream:
                for b in read.batches(adapter, stream, part, config):
                    one.rows += b.spans.num_rows if b.spans is not None else 0
                    one.bad += b.bad
        except Exception:
            return [Finding("exception", name, f"line {n} alone: " + traceback.format_exc(limit=-3))]
        finally:
            part.unlink()
        if one.rows + one.kept_out == 0:
            return [Finding("conservation", name, f"line {n} gives neither a row nor a quarantine record: {line[:120]!r}")]
        rows += one.rows
        kept_out += one.kept_out
    if (rows, kept_out) != (whole.rows, whole.kept_out):
        return [Finding("conservation", name, f"lines alone give {rows} rows and {kept_out} records kept out; the "
                        f"whole file {whole.rows} and {whole.kept_out}")]
    return []


def _store(name: str, path: Path, fmt: str | None, whole: Read) -> list[Finding]:
    findings: list[Finding] = []
    lens = agentlens.open(":memory:")
    try:
        try:
            s = lens.ingest(path)
        except Exception:
            return [Finding("exception", name, "ingest: " + traceback.format_exc(limit=-3))]
        res = s.files[0]
        text = f"{res.message or ''} " + " ".join(lens.quarantine()["reason"].to_list())
        if "INTERNAL" in text.upper() and "internal error" in text.lower():
            findings.append(Finding("duckdb_internal", name, text[:300]))
        if res.status == "ingested" and fmt is not None:
            spans = lens.sql("SELECT count(*) FROM spans").row(0)[0]
            q = lens.sql("SELECT count(*) FROM quarantine WHERE kind NOT IN ('orphan_span', 'parent_cycle', "
                         "'duplicate_span')").row(0)[0]
            if spans != len(whole.keys) or q != len(whole.bad):
                findings.append(Finding("store_mismatch", name, f"read: {len(whole.keys)} distinct spans, {len(whole.bad)} "
                                        f"quarantined; stored: {spans} spans, {q} quarantined ({res.message})"))
        elif (res.status == "failed" and fmt is not None and "out of memory" not in (res.message or "")
              and not _parquet(path)):  # a Parquet file whose footer is broken fails whole
            findings.append(Finding("exception", name, f"the file failed whole: {res.message}"))
        try:
            lens.runs()
            costs.by(lens, by=None)
            lens.quarantine()
        except Exception:
            findings.append(Finding("read_back", name, traceback.format_exc(limit=-3)))
    finally:
        lens.close()
    return findings


def cases(n: int, seed: int, real: bool = True) -> list[tuple[str, bytes, str]]:
    """n mutated files: (case name, bytes, file name)."""
    rng = random.Random(seed)
    files = seeds(real)
    datas = {p: plain(p) for p in files}
    out: list[tuple[str, bytes, str]] = []
    tries = 0
    while len(out) < n and tries < n * 20:
        tries += 1
        p = rng.choice(files)
        mname = rng.choice(list(MUTATIONS))
        case_seed = rng.randrange(1 << 30)
        data = MUTATIONS[mname](datas[p], random.Random(case_seed))
        if data is None or data == datas[p]:
            continue
        name = p.name.removesuffix(".gz")
        filename = name + ".gz" if mname == "gzip_cut" else name
        out.append((f"{p.relative_to(p.parents[1]) if REAL_TRACES not in p.parents else p.name}:{mname}:{case_seed}",
                    data, filename))
    return out


def run(n: int, seed: int, real: bool = True, store_every: int = 1,
        quarantined: Counter[str] | None = None) -> tuple[list[Finding], Counter[str], float]:
    """(findings, their kinds, seconds) of n cases; `quarantined` counts the quarantine kinds read."""
    config = Config()
    findings: list[Finding] = []
    kinds: Counter[str] = Counter()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, data, filename) in enumerate(cases(n, seed, real)):
            work = Path(tmp) / str(i)
            work.mkdir()
            found = check_case(name, data, filename, work, config, store=i % store_every == 0,
                               quarantined=quarantined)
            findings += found
            kinds.update(f.kind for f in found)
    return findings, kinds, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--store-every", type=int, default=1, help="ingest every Nth case into a store (1: all)")
    ap.add_argument("--no-real", action="store_true", help="leave out ../shared/real_traces")
    args = ap.parse_args()
    quarantined: Counter[str] = Counter()
    findings, kinds, seconds = run(args.cases, args.seed, not args.no_real, args.store_every, quarantined)
    print(f"{args.cases} cases from {len(seeds(not args.no_real))} seeds, seed {args.seed}: "
          f"{len(findings)} findings in {seconds:.0f} s {dict(kinds)}")
    print(f"quarantine records read, by kind: {dict(quarantined.most_common())}")
    for f in findings[:50]:
        print(f"- [{f.kind}] {f.case}: {f.detail}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
