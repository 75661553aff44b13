"""Publish: a staged file into the database, in one transaction. Spans, given runs and quarantine records
from the stage, then runs built and the pipeline steps run, chunk by chunk (see sql.py for the statements
and tables.py for the temp tables they share)."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..adapters.base import Bad, Batch
from ..core.duck import transaction
from ..explore import search
from ..store import Store
from ..store import chunks as C
from ..store import tables as T
from ..store.ops import write_op
from ..store.runsql import BUILD_RUNS
from . import sql as Q
from .flags import flag_cycles
from .stage import Stage, stage_parent, stage_prefix
from .steps import Pipeline, Step
from .summary import FileResult

ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class Field:
    """A value of the file's FileResult in an OnCommit statement's parameters (`runs`, `spans`, `format`,
    `seconds`; `quarantined`: the records quarantined)."""

    name: str

    def value(self, res: FileResult) -> Any:
        return sum(res.quarantined.values()) if self.name == "quarantined" else getattr(res, self.name)


@dataclass(frozen=True)
class OnCommit:
    """A statement run last inside the file's transaction, so that it commits with it (recording the file
    as ingested, or how far a live source was read). Data, not a callback: a publish may run in the process
    that holds the database (store.ops)."""

    sql: str
    params: tuple[Any, ...] = ()

    def bind(self, res: FileResult) -> list[Any]:
        return [p.value(res) if isinstance(p, Field) else p for p in self.params]


def record_prefix(source: str | None, format: str) -> str | None:
    """What the run ids of a source start with. A record is identified by its source and its key: the
    formats' own ids (OTel and Langfuse trace ids, agent_runs row ids) are one namespace per format, and a
    named source (`agentlens ingest --source NAME`, a live table's name) is a namespace of its own, its run
    ids `NAME:id`, so that two tables both with ids 1..60 give 120 runs. A source named as its format
    (`agent_runs`, the default table's name) is the format's namespace."""
    return None if not source or source == format else f"{source}:"


def namespaced(batches: Iterable[Batch], prefix: str | None) -> Iterator[Batch]:
    """The batches with their run ids (runs, spans, quarantine records) in the namespace of `prefix`."""
    def ids(table: pa.Table | None) -> pa.Table | None:
        if table is None or prefix is None:
            return table
        i = table.schema.get_field_index("run_id")
        return table.set_column(i, "run_id", pc.binary_join_element_wise(prefix, table["run_id"], ""))

    for b in batches:
        if prefix is None:
            yield b
            continue
        bad = [dataclasses.replace(x, run_id=prefix + x.run_id if x.run_id is not None else None) for x in b.bad]
        yield dataclasses.replace(b, spans=ids(b.spans), runs=ids(b.runs), bad=bad)


def ingest_batches(
    store: Store,
    name: str,
    format: str,
    batches: Iterable[Batch],
    pipeline: Pipeline,
    on_commit: tuple[OnCommit, ...] = (),
    advance: ProgressFn | None = None,
    digest: str | None = None,
    source: str | None = None,
) -> FileResult:
    """Store adapter batches in one transaction, exactly as a file's are: spans deduplicated, runs
    rebuilt, the pipeline steps run, what could not be read quarantined under `name`. Sources that
    are not files (a live table, the OTLP receiver) write through this. `on_commit` statements run last
    inside the transaction. `digest`: the file's SHA-256, to skip it if another process ingested the same
    bytes meanwhile. `source`: the source's name (see `record_prefix`). Any error rolls back and propagates.

    Bounded memory whatever the input size: the batches are first staged as Parquet files in a
    temporary folder beside the database (nothing touches the database while the input is read, here or in
    the process that holds it), then published in a few set-based statements that DuckDB streams to disk,
    and runs are built and the steps run in chunks of `BUILD_CHUNK_RUNS` runs, fewer when their long text
    passes `BUILD_CHUNK_BYTES`."""
    started = time.time()
    with tempfile.TemporaryDirectory(prefix=stage_prefix(store.path), dir=stage_parent(store.path)) as tmp:
        stage = Stage(Path(tmp))
        for batch in namespaced(batches, record_prefix(source, format)):
            stage.add(batch)
            if batch.bytes_read and advance is not None:
                advance(batch.bytes_read)
        return publish(store, stage, name, format, pipeline, on_commit, started, digest)


@write_op("publish")
def publish(store: Store, stage: Stage, name: str, format: str, pipeline: Pipeline,
            on_commit: tuple[OnCommit, ...] = (), started: float | None = None,
            digest: str | None = None) -> FileResult:
    """A staged file into the database in one transaction (runs where the database is: store.ops)."""
    res = FileResult(name, format)
    if digest is not None and (seen := store.one(Q.FILE_SEEN, [digest])) is not None:
        res.status = "skipped_duplicate"  # another process ingested the same bytes while we staged them
        res.message = f"same bytes as {seen[0]}, ingested {seen[1]:%Y-%m-%d %H:%M:%S}"
        return res
    res.quarantined.update(stage.bad_kinds)
    res.first_bad = list(stage.first_bad)
    con = store.con
    try:
        with transaction(con):
            _publish(store, stage, name, pipeline, res)
            res.quarantined.update(stage.flagged)
            res.seconds = time.time() - (started if started is not None else time.time())
            for statement in on_commit:
                con.execute(statement.sql, statement.bind(res))
    finally:
        # The settings the publish changed, put back once the transaction is over: inside a failed one,
        # DuckDB refuses every statement, and the refusal would hide the error that failed it.
        con.execute("RESET VARIABLE agentlens_span_floor")
        con.execute("RESET preserve_insertion_order")
    # The search index follows the runs just committed (explore/search.py): here, where the database is
    # and under its write lock; a few fresh runs wait for the next publish (`lazy`). An index left behind
    # (that, or an error here) makes searches scan those runs, never miss them.
    try:
        search.sync(store, lazy=True)
    except Exception as e:  # the file is ingested; the index catches up at the next sync
        res.message = (res.message + "; " if res.message else "") + f"search index not updated: {e}"
    return res


def _publish(store: Store, stage: Stage, name: str, pipeline: Pipeline, res: FileResult) -> None:
    """Inside the file's transaction: spans, given runs and quarantine from the stage, then runs
    built and the pipeline steps run, chunk by chunk. Counts what it did in `res`."""
    con = store.con
    con.execute(T.AFFECTED.create())
    con.execute(Q.STAGE_KEYS, [stage.glob("spans")]) if stage.spans else con.execute(Q.STAGED_TABLE)
    con.execute(Q.STAGE_STORED_RUNS)
    # runsql.SPAN_FLOOR_EXPR: a file of new runs only (no run given whole, none stored before) needs none of
    # the stored spans, which then sit below the first rowid it adds
    floor = 0
    none_stored = store.one("SELECT count(*) FROM _stored_runs") == (0,)
    new_runs_only = not stage.runs and none_stored
    if new_runs_only:
        floor = con.execute(Q.NEXT_SPAN_ROWID).fetchall()[0][0]
    con.execute("SET VARIABLE agentlens_span_floor = ?", [floor])  # reset by ingest_batches, after the transaction
    _publish_staged(store, stage, name, pipeline, res, new_runs_only, none_stored)


def _publish_staged(store: Store, stage: Stage, name: str, pipeline: Pipeline, res: FileResult,
                    new_runs_only: bool = False, none_stored: bool = False) -> None:
    con = store.con
    if stage.runs:
        con.execute(Q.STAGE_GIVEN_ROWS, [stage.glob("runs"), stage.glob("spans")]) if stage.spans else \
            con.execute(Q.STAGE_GIVEN_NO_SPANS, [stage.glob("runs")])
    else:
        con.execute(Q.GIVEN_ROWS_TABLE)
    con.execute(Q.REPLACED_TABLE)
    con.execute(Q.SKIP_TABLE)
    if stage.spans:
        con.execute(Q.STAGE_DUPLICATES)
        # the stored spans with the file's keys are those of its stored runs: none, none to look for (the
        # look-up reads every stored span's run id: 19 ms at 10M spans)
        con.execute(Q.STAGE_EXISTING) if not none_stored else con.execute(Q.EXISTING_TABLE)
        if store.one(Q.COLLISIONS) != (0,):
            con.execute(Q.STAGE_VERSIONS, [stage.glob("spans")])
            con.execute(Q.STAGE_SKIP)
            con.execute(Q.STAGE_REPLACED)
            row = store.one(Q.VERSION_COUNTS)
            res.spans_changed, res.spans_unchanged, res.spans_outdated = (int(x) for x in row) if row else (0, 0, 0)
            con.execute("DROP TABLE _versions")
    # STAGE_GIVEN_PICK asks which given runs are not stored: a file that gives no run skips the question, whose
    # anti-join reads every stored run id (98 ms at 1M runs)
    con.execute(Q.STAGE_GIVEN_PICK) if stage.runs else con.execute(Q.GIVEN_PICK_TABLE)
    con.execute(Q.STAGE_GIVEN)
    con.execute(T.STAGED_SPAN_COSTS.create())
    con.execute(T.STAGED_RUN_COSTS.create())
    chunk_bytes = store.chunk_bytes()
    chunking = {"n": C.BUILD_CHUNK_RUNS, "b": chunk_bytes, "nb": C.BUILD_CHUNK_RUNS * chunk_bytes}
    con.execute(Q.STAGE_REBUILD, chunking)
    row = store.one(Q.RUN_COUNTS)
    res.runs_added, res.runs_changed, res.runs_unchanged = (int(x) for x in row) if row else (0, 0, 0)
    if stage.spans:
        if new_runs_only and pipeline.staged:
            _staged_steps(store, stage, pipeline.staged)
        con.execute(Q.PUBLISH_REPLACED)
        # Without insertion order each DuckDB thread compresses and writes its row groups as they fill;
        # with it, the uncompressed rows were held (spilling past memory_limit) until they could be
        # appended in order. With the skip by `_row` (sql.STAGE_SKIP), the insert of 1M spans went from
        # 28 s to 17 s. Locality stays: a staged batch is appended by one thread, so spans near each
        # other in the file stay near in storage; duplicates are decided by `_row`, not storage order.
        con.execute("SET preserve_insertion_order = false")
        row = store.one(Q.PUBLISH_SPANS, [stage.glob("spans")])
        con.execute("RESET preserve_insertion_order")  # on an error, by ingest_batches
        stage.drop("spans")  # read no more: the spans are in `spans`
        # nor are the file-sized key tables: at 1M runs `_staged` alone holds 10M keys, most of DuckDB's 1 GB
        # while the runs are built, priced and classified (_rebuild keeps what those need: runs and weights)
        for table in ("_staged", "_dups", "_existing", "_skip", "_staged_span_costs", "_replaced"):
            con.execute(f"DROP TABLE {table}")
        res.spans = (int(row[0]) if row else 0) - res.spans_changed
    con.execute(T.PRIOR.create())
    con.execute(Q.STAGE_PRIOR, [res.spans_changed])
    if stage.runs:
        con.execute(Q.DELETE_GIVEN_RUNS)
        con.execute(Q.PUBLISH_GIVEN_RUNS, [stage.glob("runs")])
    if stage.bad:
        con.execute(Q.PUBLISH_QUARANTINE, {"name": name, "glob": stage.glob("bad")})

    con.execute(Q.STAGE_REBUILD_RIDS if new_runs_only else Q.STAGE_REBUILD_RIDS_STORED)
    con.execute(T.BUILD.create())
    con.execute(T.BUILD_RIDS.create())
    for (chunk,) in con.execute("SELECT DISTINCT chunk FROM _rebuild ORDER BY chunk").fetchall():
        con.execute("DELETE FROM _build")
        con.execute("DELETE FROM _build_rids")
        con.execute(Q.CHUNK_BUILD, [chunk])
        con.execute(Q.CHUNK_BUILD_RIDS, [chunk])
        con.execute(Q.DELETE_BUILT_RUNS)
        con.execute(BUILD_RUNS)
    orphans = store.one(Q.ORPHANS_QUARANTINED)
    if orphans and orphans[0]:
        con.execute(Q.RESOLVE_ORPHANS)
    # counted in the file's summary, as `show` counts them
    flagged = con.execute(Q.FLAG_ORPHANS if new_runs_only else Q.FLAG_ORPHANS_STORED).fetchone()
    if flagged and flagged[0]:
        stage.flagged["orphan_span"] += int(flagged[0])
    flag_cycles(con, stage, new_runs_only)  # ingest/flags.py
    for table in ("_build", "_build_rids", "_rebuild_rids", "_given_rows", "_given_pick"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    if pipeline.chunk or pipeline.file:
        con.execute(T.TOUCHED.create())
        con.execute(Q.STAGE_TOUCHED, chunking)
        _run_steps(store, "_touched", pipeline.chunk)
        for file_step in pipeline.file:
            file_step(store)
    res.runs = res.runs_added + res.runs_changed


def _staged_steps(store: Store, stage: Stage, steps: tuple[Step, ...]) -> None:
    """The staged steps, per chunk of the file's runs (`_rebuild`), on their staged spans' narrow columns."""
    con = store.con
    con.execute(Q.STAGE_NARROW, [stage.glob("spans")])
    con.execute(T.NARROW.create())

    def narrow(chunk: int) -> None:
        con.execute("DELETE FROM _narrow")
        con.execute(Q.CHUNK_NARROW, [chunk])

    _run_steps(store, "_rebuild", steps, narrow)
    con.execute("DROP TABLE _narrow_file")
    con.execute("DROP TABLE _narrow")


def _run_steps(store: Store, chunks: str, steps: tuple[Step, ...],
               prepare: Callable[[int], Any] | None = None) -> None:
    """Each chunk of the temp table `chunks` (_rebuild or _touched) in order: its run ids into `_affected`,
    `prepare(chunk)` if given, then the steps."""
    con = store.con
    for (chunk,) in con.execute(f"SELECT DISTINCT chunk FROM {chunks} ORDER BY chunk").fetchall():  # noqa: S608 - a fixed temp table's name
        con.execute("DELETE FROM _affected")
        con.execute(f"INSERT INTO _affected SELECT run_id FROM {chunks} WHERE chunk = ?", [chunk])  # noqa: S608
        if prepare is not None:
            prepare(chunk)
        for step in steps:
            step(store)


def quarantine(store: Store, bad: list[Bad], source_file: str, res: FileResult | None = None) -> None:
    """Quarantine records outside a publish (a file that could not be read at all, a receiver's body)."""
    if not bad:
        return
    store.con.executemany(
        Q.INSERT_QUARANTINE,
        [[source_file, b.line, b.kind, b.reason, b.raw, b.run_id, b.span_id, b.stored] for b in bad],
    )
    if res is not None:
        res.quarantined.update(b.kind for b in bad)
        res.first_bad += [(b.line, b.kind, b.reason) for b in bad[:5]]


