"""Which statements run on another engine than DuckDB: those the conformance suite ran on DuckDB and on that
engine over the same data with equal results. One record per engine (`RECORDS`), beside this module:
`conformance.txt` for ClickHouse (tests/test_scale_conformance.py), `conformance_spark.txt` for Spark
(tests/test_spark_conformance.py); `AGENTLENS_CONFORMANCE_WRITE=1 pytest TEST_FILE` rewrites one. The engine's
connection refuses any statement not in its record.

A fingerprint is the statement's shape: its parsed form with the run dimensions it is grouped or filtered
by made one (`by=feature` and `by=model` are one statement), repeats of them collapsed (`by=feature,model`
too), a run column it sorts by or compares with a value made one too (`lens.runs(order_by=...)`, the run
explorer's sort), and parameters unnamed. Values never enter it.

A filter of runs is a conjunction: `SELECT ... FROM runs WHERE a AND b AND c`, where a person combines the
filters of `agentlens runs` freely (time, status, dimensions, cost, duration, failure mode, search: hundreds
of combinations). Each such WHERE is taken apart: the statement's fingerprint has the WHERE as one marker,
and each of its conditions has a fingerprint of its own (`SELECT 1 FROM runs WHERE a`). A statement passes
when its own fingerprint and every condition's are in the record: conditions joined by AND mean the same on
both engines when each does (the translation rewrites each condition on its own), so the suite need not run
every combination, only every shape of statement and every condition.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from pathlib import Path

from sqlglot import exp

from .. import schema
from ..core.dimensions import RUN_DIMENSIONS
from .translate import NotSupported, parse

RECORDS: dict[str, tuple[Path, str]] = {  # engine -> (its record, the suite that writes it)
    "clickhouse": (Path(__file__).with_name("conformance.txt"), "tests/test_scale_conformance.py"),
    "spark": (Path(__file__).with_name("conformance_spark.txt"), "tests/test_spark_conformance.py"),
}
RECORD = RECORDS["clickhouse"][0]
_DIM = "__dim__"
_DIMS = frozenset(RUN_DIMENSIONS) | {"status"}
_RUN_COLUMNS = frozenset(c.name for c in schema.RUN_COLUMNS) - {"run_id"}


def _plain_column_use(node: exp.Column) -> bool:
    """A run column sorted by (`ORDER BY r."cost_usd"`, find_runs' `... AS _sort`) or compared with a bound
    value (`"model" = ?`): any run column of the same use is the same statement."""
    parent = node.parent
    if isinstance(parent, exp.Ordered):
        return True
    if isinstance(parent, exp.Alias) and parent.alias == "_sort":
        return True
    return isinstance(parent, exp.EQ) and isinstance(parent.expression, exp.Placeholder) and parent.this is node


def _normalize(tree: exp.Expr) -> exp.Expr:
    def dims(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and (node.name in _DIMS or (node.name in _RUN_COLUMNS and _plain_column_use(node))):
            node.set("this", exp.to_identifier(_DIM))
        elif isinstance(node, exp.Identifier) and node.this in _DIMS and isinstance(node.parent, exp.PivotAny | exp.In):
            node.set("this", _DIM)
        elif isinstance(node, exp.Placeholder) and node.name:
            node.set("this", "".join(ch for ch in node.name if not ch.isdigit()))
        return node

    tree = tree.transform(dims, copy=False)
    changed = True
    while changed:
        changed = False
        for node in list(tree.walk()):
            if isinstance(node, exp.And) and node.left.sql() == node.right.sql():
                node.replace(node.left)
                changed = True
                break
            for key, value in node.args.items():
                if isinstance(value, list) and len(value) > 1:
                    kept: list[exp.Expr] = []
                    for item in value:
                        if kept and isinstance(item, exp.Expr) and isinstance(kept[-1], exp.Expr) \
                                and item.sql() == kept[-1].sql() and _DIM in item.sql():
                            changed = True
                            continue
                        kept.append(item)
                    if len(kept) != len(value):
                        node.set(key, kept)
            if changed:
                break
    return tree


_WHERE = "__where__"


def _conditions(tree: exp.Expr) -> list[exp.Expr]:
    """Take each WHERE over `runs` alone (no join) apart: its condition replaced by a marker, the conditions
    of its AND returned (see the module's docstring)."""
    out: list[exp.Expr] = []
    for sel in list(tree.find_all(exp.Select)):
        where = sel.args.get("where")
        src = sel.args.get("from_") or sel.args.get("from")
        if where is None or src is None or sel.args.get("joins") or not isinstance(src.this, exp.Table) \
                or src.this.name != "runs":
            continue
        cond = where.this
        parts = list(cond.flatten()) if isinstance(cond, exp.And) else [cond]
        out += [p.copy() for p in parts]
        where.set("this", exp.column(_WHERE))
    return out


def _hash(shape: str) -> str:
    return hashlib.sha256(shape.encode()).hexdigest()[:16]


def fingerprints(sql: str) -> tuple[str, list[str], str]:
    """(the statement's fingerprint, its filter conditions' fingerprints, who runs it): see the module's
    docstring; who: the agentlens function that ran it (for messages)."""
    try:
        tree, _ = parse(sql)
        tree = _normalize(tree)
        conds = _conditions(tree)
        shape = tree.sql("duckdb")
        atoms = sorted({_hash("SELECT 1 FROM runs WHERE " + c.sql("duckdb")) for c in conds})  # noqa: S608 - hashed, never run
    except NotSupported:
        shape, atoms = " ".join(sql.split()), []
    return _hash(shape), atoms, caller()


def fingerprint(sql: str) -> tuple[str, str]:
    """(fingerprint, who runs it) of a statement (its conditions aside: `fingerprints`)."""
    fp, _, who = fingerprints(sql)
    return fp, who


def caller() -> str:
    """Who runs the statement: the first agentlens function up the stack outside this package
    (`agentlens.metrics.signals.signals`), the Store method a user called (`agentlens.store.db.runs`), else
    "a statement of your own"."""
    frame = sys._getframe(1)
    last_store = ""
    while frame is not None:
        mod = frame.f_globals.get("__name__", "")
        if mod.startswith("agentlens.store"):
            last_store = f"{mod}.{frame.f_code.co_name}"
        elif mod.startswith("agentlens.") and not mod.startswith("agentlens.scale"):
            return f"{mod}.{frame.f_code.co_name}"
        elif not mod.startswith("agentlens"):
            return last_store or "a statement of your own"
        frame = frame.f_back  # type: ignore[assignment]
    return last_store or "a statement"


@functools.cache
def passed(engine: str = "clickhouse") -> frozenset[str]:
    """The fingerprints in the engine's record."""
    record = RECORDS[engine][0]
    if not record.exists():
        return frozenset()
    return frozenset(line.split()[0] for line in record.read_text().splitlines()
                     if line.strip() and not line.startswith("#"))


def write(entries: dict[str, str], engine: str = "clickhouse") -> None:
    """The engine's record: one line per fingerprint, with the function that ran it."""
    record, suite = RECORDS[engine]
    name = {"clickhouse": "ClickHouse", "spark": "Spark"}.get(engine, engine)
    lines = [f"# Statements that passed the conformance suite ({suite}): fingerprint, who runs it.",
             f"# Rewritten by `AGENTLENS_CONFORMANCE_WRITE=1 pytest {suite}`; "
             f"{'the ClickHouse store' if engine == 'clickhouse' else name} refuses any other statement."]
    lines += [f"{fp} {who}" for fp, who in sorted(entries.items(), key=lambda kv: (kv[1], kv[0]))]
    record.write_text("\n".join(lines) + "\n")
    passed.cache_clear()
