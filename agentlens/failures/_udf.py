"""The two SQL functions the rules need that DuckDB lacks, registered on the connection for the
duration of a classification (and removed after, so the connection closes cleanly):

- `agentlens_canonical_json(text)`: JSON with sorted keys and no whitespace (the call fingerprint:
  `{"b":1,"a":2}` and `{"a": 2, "b": 1}` are the same call); text that is not JSON as it is.
  Vectorised (Arrow), with msgspec's sorted encoder.
- `agentlens_clip(text, n)` (a macro): text cut to n characters with an ellipsis.
- `agentlens_schema_error(schema, instance)`: the first JSON Schema violation of a tool call's
  arguments against the tool's declared parameters (the `jsonschema-rs` library: compiled, it
  imports in milliseconds where `jsonschema` took most of a second per process), else NULL.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import jsonschema_rs
import msgspec
import pyarrow as pa
from duckdb.func import FunctionNullHandling, PythonUDFType

_decode = msgspec.json.Decoder().decode
_encode_sorted = functools.partial(msgspec.json.encode, order="sorted")


def canonical_json(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return _encode_sorted(_decode(text)).decode("utf-8")
    except msgspec.DecodeError:
        return text


def _canonical_json_arrow(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`canonical_json` over a vector (DuckDB calls it once per chunk of rows, not once per row: the
    per-row calls of a scalar Python UDF were most of its cost, ~3 us a value)."""
    return pa.array([canonical_json(t) for t in texts.to_pylist()], pa.string())


@functools.lru_cache(maxsize=1024)
def _validator(schema_text: str) -> Any:
    try:
        schema = json.loads(schema_text)
    except ValueError:
        return None
    if not isinstance(schema, dict):
        return None
    try:  # the schema's own draft; `offline`: trace content never makes us fetch a remote $ref
        return jsonschema_rs.validator_for(schema, offline=True)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError, TypeError):
        return None  # a broken declared schema says nothing about the arguments


def schema_error(schema_text: str | None, instance_text: str | None) -> str | None:
    if schema_text is None or instance_text is None:
        return None
    validator = _validator(schema_text)
    if validator is None:
        return None
    try:
        instance = json.loads(instance_text)
    except ValueError:
        return None
    try:
        err = next(iter(validator.iter_errors(instance)), None)
    except (jsonschema_rs.ReferencingError, ValueError):  # e.g. a $ref that cannot be resolved offline
        return None
    if err is None:
        return None
    where = "/".join(str(p) for p in err.instance_path)
    return f"{where}: {err.message}" if where else err.message


# text cut to n characters, with an ellipsis when it was longer (explanations quote trace text)
CLIP_MACRO = (
    "CREATE OR REPLACE TEMP MACRO agentlens_clip(x, n) AS "
    "CASE WHEN length(x) > n THEN left(x, n - 1) || '…' ELSE x END"
)


def _drop(con: duckdb.DuckDBPyConnection, name: str) -> None:
    try:
        con.remove_function(name)
    except (duckdb.Error, ValueError):
        pass  # not registered, or the transaction is aborted: the caller's error is what matters


@contextmanager
def registered(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    for name in ("agentlens_canonical_json", "agentlens_schema_error"):
        _drop(con, name)  # left over by an aborted classification
    con.execute(CLIP_MACRO)
    con.create_function("agentlens_canonical_json", _canonical_json_arrow, ["VARCHAR"], "VARCHAR",
                        type=PythonUDFType.ARROW, side_effects=False)
    con.create_function("agentlens_schema_error", schema_error, ["VARCHAR", "VARCHAR"], "VARCHAR",
                        null_handling=FunctionNullHandling.SPECIAL, side_effects=False)
    try:
        yield
    finally:
        _drop(con, "agentlens_schema_error")
        _drop(con, "agentlens_canonical_json")
