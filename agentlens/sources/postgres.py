"""A live PostgreSQL `agent_runs` table, read incrementally.

`agentlens ingest "postgresql://user@host:5432/db?table=agent_runs"` reads the rows added since the
last ingest of the same source, through ADBC (`adbc-driver-postgresql`: the server streams binary
COPY data into Arrow record batches; no per-row fetching), in bounded memory: rows are handled in
batches of `batch_rows`, each stored in its own DuckDB transaction together with the watermark that
covers it, so an interrupted ingest resumes where the last committed batch ended.

Rows become the same canonical rows as an agent_runs export of the same table (the row logic is
`adapters.agent_runs.rows_for`; `runs.source` stays `agent_runs`; `spans.source_file` is the URL
without its password).

Incremental guarantee. The watermark is the (`created_at`, `id`) of the last row read; the next
ingest reads rows ordered by (`created_at`, `id` as text) from `lookback_seconds` before it, and
skips rows already stored (same id). So re-running adds nothing, and a row committed late with an
older `created_at` (PostgreSQL's `DEFAULT now()` is its transaction's start time) is picked up when
its `created_at` is within `lookback_seconds` (default 60) of the newest row read before it
committed. Older late rows are missed: set `lookback_seconds` above your longest writing
transaction. Rows updated after they were read are not re-read (the table is treated as a log).
"""

from __future__ import annotations

import datetime as dt
import re
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pyarrow as pa

from ..adapters import agent_runs
from ..adapters.base import RUN_SCHEMA, SPAN_SCHEMA, Bad, Batch, Columns
from ..core.config import Config, Section, integer
from ..core.duck import registered
from ..ingest import COUNTS, Field, FileResult, OnCommit, Pipeline, ingest_batches, record_prefix
from ..store import Store

KIND = "postgres"
DEFAULT_LOOKBACK_SECONDS = 60
DEFAULT_BATCH_ROWS = 10_000
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_OPTIONAL = ("user_id", "request", "response", "cost_usd")


@dataclass(frozen=True)
class Settings:
    lookback_seconds: int = DEFAULT_LOOKBACK_SECONDS
    batch_rows: int = DEFAULT_BATCH_ROWS


@dataclass(frozen=True)
class Table:
    uri: str  # what libpq gets: the URL without agentlens' own parameters
    schema: str | None
    name: str
    display: str  # the URL without password: the source's name everywhere it is stored
    settings: Settings

    def sql_name(self) -> str:
        """The quoted, validated identifier (never a bound value: identifiers cannot be parameters)."""
        return (f'"{self.schema}".' if self.schema else "") + f'"{self.name}"'


POSTGRES_KEYS = ("lookback_seconds", "batch_rows")


def settings(config: Config) -> Settings:
    """`[sources.postgres]` of the config: `lookback_seconds` (>= 0), `batch_rows` (> 0)."""
    Section.of(config, "sources").only(("postgres", "files"), "a source")
    pg = Section.of(config, "sources.postgres").only(POSTGRES_KEYS, "a setting")
    out = {}
    for key, minimum in (("lookback_seconds", 0), ("batch_rows", 1)):
        if key in pg:
            out[key] = pg.value(key, integer(minimum, f"must be an integer >= {minimum}"))
    return Settings(**out)


def parse_url(url: str, config: Config) -> Table:
    """`postgresql://user[:password]@host[:port]/db?table=[schema.]name[&lookback_seconds=N][&libpq params]`."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"{url}: not a postgresql:// URL")
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in query if k in ("table", "lookback_seconds", "batch_rows")}
    rest = [(k, v) for k, v in query if k not in own]
    table = own.get("table")
    if not table:
        raise ValueError(f"{_redact(parts)}: say which table to read: add ?table=agent_runs (or ?table=schema.name)")
    pieces = table.split(".")
    if len(pieces) > 2 or not all(_IDENT.match(p) for p in pieces):
        raise ValueError(f"{_redact(parts)}: table={table!r} is not a table name ([schema.]name of letters, digits, _)")
    base = settings(config)
    over: dict[str, int] = {}
    for key in ("lookback_seconds", "batch_rows"):
        if key in own:
            try:
                over[key] = int(own[key])
            except ValueError:
                raise ValueError(f"{_redact(parts)}: {key}={own[key]!r} must be an integer") from None
            if over[key] < (0 if key == "lookback_seconds" else 1):
                raise ValueError(f"{_redact(parts)}: {key}={own[key]!r} is out of range")
    uri = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(rest)))
    display_query = urllib.parse.urlencode([*rest, ("table", table)])
    return Table(
        uri=uri, schema=pieces[0] if len(pieces) == 2 else None, name=pieces[-1],
        display=urllib.parse.urlunsplit(_redacted(parts)._replace(query=display_query)),
        settings=Settings(over.get("lookback_seconds", base.lookback_seconds), over.get("batch_rows", base.batch_rows)),
    )


def _redacted(parts: urllib.parse.SplitResult) -> urllib.parse.SplitResult:
    if parts.password is None:
        return parts
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc)


def _redact(parts: urllib.parse.SplitResult) -> str:
    return urllib.parse.urlunsplit(_redacted(parts)._replace(query=""))


# --- reading ----------------------------------------------------------------------------------------


def _columns(cur: Any, table: Table) -> set[str]:
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1 "
        "AND table_schema = coalesce($2, current_schema())",
        parameters=(table.name, table.schema),
    )
    return {str(r[0]) for r in cur.fetchall()}


def _select(table: Table, cols: set[str], after: tuple[dt.datetime, str] | None) -> tuple[str, tuple[Any, ...]]:
    picked = ", ".join(f'"{c}"' if c in cols else f'NULL AS "{c}"' for c in agent_runs.COLUMNS)
    sql = f'SELECT {picked}, "id"::text AS "_key" FROM {table.sql_name()}'  # noqa: S608 - validated identifiers
    params: tuple[Any, ...] = ()
    if after is not None:
        since, key = after
        if table.settings.lookback_seconds:
            sql += " WHERE created_at >= $1::timestamptz - make_interval(secs => $2)"
            params = (since, float(table.settings.lookback_seconds))
        else:
            sql += " WHERE (created_at, \"id\"::text) > ($1::timestamptz, $2)"
            params = (since, key)
    return sql + ' ORDER BY created_at, "id"::text', params


def _rows(reader: pa.RecordBatchReader, size: int) -> Iterator[list[dict[str, Any]]]:
    """Rows in lists of `size`, from the driver's record batches (memory: one batch and one list)."""
    pending: list[dict[str, Any]] = []
    for rb in reader:
        pending.extend(rb.to_pylist())
        while len(pending) >= size:
            yield pending[:size]
            pending = pending[size:]
    if pending:
        yield pending


def _batch(rows: list[dict[str, Any]], config: Config, name: str) -> Batch:
    runs, spans, bad = Columns(RUN_SCHEMA), Columns(SPAN_SCHEMA), []
    for rec in rows:
        rec = dict(rec)
        key = rec.pop("_key")
        raw = msgspec.json.encode(rec, enc_hook=str).decode()
        try:
            run, span, note = agent_runs.rows_for(rec, config, name)
        except agent_runs.RowError as e:
            bad.append(Bad(e.kind, f"row id={key}: {e}", raw, None, run_id=key))
            continue
        runs.append(run)
        spans.append(span)
        if note is not None:
            note.raw, note.reason = raw, f"row id={key}: {note.reason}"
            bad.append(note)
    return Batch(spans=spans.table() if spans.rows else None, runs=runs.table() if runs.rows else None, bad=bad)


def _watermark(lens: Store, source: str) -> tuple[dt.datetime, str] | None:
    row = lens.con.execute(
        "SELECT watermark_created_at, watermark_id FROM source_watermarks WHERE source = ?", [source]
    ).fetchall()
    if not row or row[0][0] is None:
        return None
    return row[0][0], row[0][1]


def _new_rows(lens: Store, rows: list[dict[str, Any]], source: str, prefix: str) -> list[dict[str, Any]]:
    """Rows not quarantined from this source before (the lookback window re-reads some). A row re-read
    that is stored already goes in again: unchanged, it changes nothing (and is counted unchanged); changed
    since (a response filled in later), it replaces the stored run (ingest/sql.py)."""
    ids = pa.table({"run_id": [prefix + str(r["_key"]) for r in rows]})
    with registered(lens.con, "_pg_ids", ids):
        seen = {r[0] for r in lens.con.execute(
            "SELECT run_id FROM quarantine SEMI JOIN _pg_ids USING (run_id) WHERE source_file = ? AND NOT stored",
            [source],
        ).fetchall()}
    return [r for r in rows if prefix + str(r["_key"]) not in seen]


def ingest(lens: Store, url: str, pipeline: Pipeline, source: str | None = None) -> FileResult:
    """Read the rows added since the last ingest of this source; one transaction per batch. `source`: the
    source's name, its records a namespace of their own (ingest.record_prefix); by default the table's name
    (the default table, `agent_runs`, is the agent_runs format's own namespace: run ids as in the table)."""
    import adbc_driver_postgresql.dbapi as pg

    t0 = time.perf_counter()
    table = parse_url(url, lens.config)
    name = source or table.name
    prefix = record_prefix(name, agent_runs.NAME) or ""
    total = FileResult(table.display, agent_runs.NAME)
    after = _watermark(lens, table.display)
    try:
        conn = pg.connect(table.uri)
    except Exception as e:  # the driver's errors name the host and the reason
        total.status, total.message = "failed", f"{table.display}: cannot connect: {_first_line(e)}"
        return total
    try:
        with conn.cursor() as cur:
            cols = _columns(cur, table)
            missing = [c for c in agent_runs.COLUMNS if c not in _OPTIONAL and c not in cols]
            if not cols:
                total.status, total.message = "failed", f"{table.display}: no table {table.sql_name()}"
                return total
            if missing:
                total.status = "failed"
                total.message = (f"{table.display}: not an agent_runs table: missing column(s) "
                                 f"{', '.join(missing)} (has: {', '.join(sorted(cols))})")
                return total
            sql, params = _select(table, cols, after)
            cur.execute(sql, parameters=params or None)
            for rows in _rows(cur.fetch_record_batch(), table.settings.batch_rows):
                last = rows[-1]
                fresh = _new_rows(lens, rows, table.display, prefix) if after is not None else rows
                mark = (last["created_at"], last["_key"])

                watermark = OnCommit(  # commits with the batch: an interrupted ingest resumes after it
                    "INSERT OR REPLACE INTO source_watermarks VALUES (?, ?, ?, ?, "
                    "coalesce((SELECT rows_read FROM source_watermarks WHERE source = ?), 0) + ?, now())",
                    (table.display, KIND, mark[0], mark[1], table.display, Field("runs_added")))
                res = ingest_batches(lens, table.display, agent_runs.NAME, [_batch(fresh, lens.config, table.display)],
                                     pipeline, on_commit=(watermark,), source=name)
                for count in COUNTS:
                    setattr(total, count, getattr(total, count) + getattr(res, count))
                total.quarantined.update(res.quarantined)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:
        total.status, total.message = "failed", f"{table.display}: {type(e).__name__}: {_first_line(e)}"
    finally:
        conn.close()
    total.seconds = time.perf_counter() - t0
    return total


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
