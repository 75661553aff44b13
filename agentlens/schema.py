"""The canonical schema: a public contract.

Users query these tables from notebooks, so the column names, types and order are pinned by
``tests/test_schema.py`` and documented in the README (generated from ``COLUMNS`` below, checked by
``tests/test_docs.py``).

Migrations are small named functions applied in order; the applied names are kept in
``schema_migrations``. A migration, once released, is never edited: change the schema by adding one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str


RUN_COLUMNS: tuple[Column, ...] = (
    Column("run_id", "VARCHAR", "One agent run: the OTel trace id (32 lowercase hex), or the source row id (agent_runs)."),
    Column("source", "VARCHAR", "Where the run came from: `otlp`, `agent_runs`."),
    Column("agent_name", "VARCHAR", "Agent name (`gen_ai.agent.name`, `agent.name`, agent span name), else `service.name`."),
    Column("started_at", "TIMESTAMPTZ", "Start of the run (UTC)."),
    Column("ended_at", "TIMESTAMPTZ", "End of the run (UTC); NULL when unknown."),
    Column("duration_ms", "DOUBLE", "Wall-clock duration in milliseconds; NULL when unknown."),
    Column("status", "VARCHAR", "`error` when the run's root step failed, else `ok` (a run that survived a failed tool call is `ok`)."),
    Column("user_id", "VARCHAR", "End user (configurable lookup, see Dimensions)."),
    Column("session_id", "VARCHAR", "Session / conversation / thread (configurable lookup)."),
    Column("customer_id", "VARCHAR", "Customer or tenant (configurable lookup)."),
    Column("feature", "VARCHAR", "Product feature the run served (configurable lookup)."),
    Column("environment", "VARCHAR", "Deployment environment (`deployment.environment.name`, ...)."),
    Column("model", "VARCHAR", "The model of most of the run's LLM calls (ties: most input tokens)."),
    Column("input_tokens", "BIGINT", "Input tokens over the run's LLM calls, each call counted once; includes cached tokens."),
    Column("output_tokens", "BIGINT", "Output tokens (includes reasoning tokens)."),
    Column("cached_input_tokens", "BIGINT", "Input tokens read from the provider's prompt cache (a subset of input_tokens)."),
    Column("cache_write_input_tokens", "BIGINT", "Input tokens written to the prompt cache (a subset of input_tokens)."),
    Column("reasoning_tokens", "BIGINT", "Reasoning tokens (a subset of output_tokens)."),
    Column("cost_usd", "DOUBLE", "Cost in USD: reported by the source where it reports one (agent_runs, `llm.cost.total`), else NULL until priced."),
    Column("llm_calls", "INTEGER", "LLM calls (LLM spans with no LLM span below them, so wrapper spans are not counted twice)."),
    Column("tool_calls", "INTEGER", "Tool spans."),
    Column("span_count", "INTEGER", "Spans in the run."),
    Column("error_count", "INTEGER", "Spans with error status."),
    Column("input", "VARCHAR", "The run's input: the root span's input, else the first LLM call's input messages (untrusted text)."),
    Column("output", "VARCHAR", "The run's output: the root span's output, else the last LLM call's output (untrusted text)."),
    Column("attributes", "JSON", "Root span attributes merged over resource attributes (agent_runs: the row's request JSON)."),
    Column("root_span_id", "VARCHAR", "The root span (NULL when the root never arrived)."),
    Column("service_name", "VARCHAR", "OTel resource `service.name`."),
    Column("ingested_at", "TIMESTAMPTZ", "When this row was last (re)built."),
)

SPAN_COLUMNS: tuple[Column, ...] = (
    Column("run_id", "VARCHAR", "The run (trace) this span belongs to."),
    Column("span_id", "VARCHAR", "Span id (16 lowercase hex for OTel)."),
    Column("parent_span_id", "VARCHAR", "Parent span id; NULL for the root."),
    Column("name", "VARCHAR", "Span name as recorded."),
    Column("kind", "VARCHAR", "`agent`, `llm`, `tool`, `retriever`, `embedding`, `chain`, `guardrail` or `other`."),
    Column("started_at", "TIMESTAMPTZ", "Start (UTC)."),
    Column("ended_at", "TIMESTAMPTZ", "End (UTC); NULL when unknown or recorded before the start (quarantine says so)."),
    Column("duration_ms", "DOUBLE", "Duration in milliseconds."),
    Column("status", "VARCHAR", "`ok` or `error` (OTel status code 2)."),
    Column("status_message", "VARCHAR", "Status description, else the exception message."),
    Column("error_type", "VARCHAR", "`error.type` attribute, else the exception event's `exception.type`."),
    Column("model", "VARCHAR", "Response model, else request model."),
    Column("provider", "VARCHAR", "`gen_ai.provider.name` / `gen_ai.system` / `llm.provider` / `llm.system`, lowercased."),
    Column("input_tokens", "BIGINT", "Input tokens as reported on this span, cached included (agent spans may carry totals of their children; runs do not add those again)."),
    Column("output_tokens", "BIGINT", "Output tokens as reported on this span."),
    Column("cached_input_tokens", "BIGINT", "Cache-read input tokens."),
    Column("cache_write_input_tokens", "BIGINT", "Cache-write (creation) input tokens."),
    Column("reasoning_tokens", "BIGINT", "Reasoning output tokens."),
    Column("cost_usd", "DOUBLE", "Cost reported on the span (`llm.cost.total`, `gen_ai.usage.cost`), else NULL."),
    Column("tool_name", "VARCHAR", "Tool name for tool spans."),
    Column("tool_call_id", "VARCHAR", "Tool call id linking a tool span to the LLM call that asked for it."),
    Column("tool_arguments", "VARCHAR", "Tool call arguments (JSON text when the source gave JSON; untrusted)."),
    Column("tool_result", "VARCHAR", "Tool result (untrusted)."),
    Column("tool_calls", "JSON", "Tool calls an LLM span asked for: `[{id, name, arguments}]`."),
    Column("tool_definitions", "JSON", "Tools offered to an LLM span: `[{name, description, parameters}]`."),
    Column("finish_reason", "VARCHAR", "First finish reason of an LLM span."),
    Column("time_to_first_token_ms", "DOUBLE", "Time to first token / chunk, where recorded."),
    Column("input", "VARCHAR", "LLM spans: JSON list of messages `{role, content, tool_calls?, tool_call_id?}`; other spans: the recorded input (untrusted)."),
    Column("output", "VARCHAR", "LLM spans: JSON list of output messages; other spans: the recorded output (untrusted)."),
    Column("attributes", "JSON", "All span attributes, flattened to `key: value`."),
    Column("events", "JSON", "Span events: `[{name, time, attributes}]` (exceptions included)."),
    Column("resource_attributes", "JSON", "OTel resource attributes."),
    Column("scope_name", "VARCHAR", "Instrumentation scope name."),
    Column("service_name", "VARCHAR", "Resource `service.name`."),
    Column("user_id", "VARCHAR", "Dimension found on this span (runs take the root's, else the first span's)."),
    Column("session_id", "VARCHAR", "Dimension found on this span."),
    Column("customer_id", "VARCHAR", "Dimension found on this span."),
    Column("feature", "VARCHAR", "Dimension found on this span."),
    Column("environment", "VARCHAR", "Dimension found on this span."),
    Column("source", "VARCHAR", "Format the span came from."),
    Column("source_file", "VARCHAR", "File the span was read from (as given to ingest)."),
)

QUARANTINE_COLUMNS: tuple[Column, ...] = (
    Column("id", "BIGINT", "Row id."),
    Column("ingested_at", "TIMESTAMPTZ", "When it was quarantined."),
    Column("source_file", "VARCHAR", "File (or table) the record came from."),
    Column("line", "BIGINT", "1-based line number (JSON Lines, CSV) or record number (Parquet); NULL for a whole file."),
    Column("kind", "VARCHAR", "`invalid_utf8`, `malformed_json`, `truncated`, `not_otlp`, `wrong_type`, `missing_field`, `end_before_start`, `orphan_span`, `bad_row`, `unreadable_file`."),
    Column("reason", "VARCHAR", "What is wrong, in words, naming the field."),
    Column("raw", "VARCHAR", "The raw text of the record (invalid bytes shown as \\xNN escapes)."),
    Column("run_id", "VARCHAR", "Run concerned, when known."),
    Column("span_id", "VARCHAR", "Span concerned, when known."),
    Column("stored", "BOOLEAN", "True when the record was still stored (repaired or flagged), false when it was kept out."),
)

INGESTED_FILE_COLUMNS: tuple[Column, ...] = (
    Column("content_hash", "VARCHAR", "SHA-256 of the file's bytes (as stored, before gunzip)."),
    Column("path", "VARCHAR", "Path as given to ingest."),
    Column("size_bytes", "BIGINT", "File size."),
    Column("mtime", "TIMESTAMPTZ", "File modification time."),
    Column("format", "VARCHAR", "Adapter that read it."),
    Column("ingested_at", "TIMESTAMPTZ", "When."),
    Column("runs", "BIGINT", "Runs touched."),
    Column("spans", "BIGINT", "Spans added."),
    Column("quarantined", "BIGINT", "Records quarantined."),
    Column("seconds", "DOUBLE", "Time taken."),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "runs": RUN_COLUMNS,
    "spans": SPAN_COLUMNS,
    "quarantine": QUARANTINE_COLUMNS,
    "ingested_files": INGESTED_FILE_COLUMNS,
}

SPAN_KINDS = ("agent", "llm", "tool", "retriever", "embedding", "chain", "guardrail", "other")


def _ddl(table: str, columns: tuple[Column, ...]) -> str:
    body = ",\n  ".join(f"{c.name} {c.type}" for c in columns)
    return f"CREATE TABLE {table} (\n  {body}\n)"


# --- migrations --------------------------------------------------------------------------------
# Each migration is a frozen piece of DDL. 0001 spells its DDL out (rather than reading the live
# contract above) so that editing the contract can never rewrite history: a change is a new migration.

_M0001 = """
CREATE TABLE runs (
  run_id VARCHAR, source VARCHAR, agent_name VARCHAR, started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ,
  duration_ms DOUBLE, status VARCHAR, user_id VARCHAR, session_id VARCHAR, customer_id VARCHAR,
  feature VARCHAR, environment VARCHAR, model VARCHAR, input_tokens BIGINT, output_tokens BIGINT,
  cached_input_tokens BIGINT, cache_write_input_tokens BIGINT, reasoning_tokens BIGINT,
  cost_usd DOUBLE, llm_calls INTEGER, tool_calls INTEGER, span_count INTEGER, error_count INTEGER,
  input VARCHAR, output VARCHAR, attributes JSON, root_span_id VARCHAR, service_name VARCHAR,
  ingested_at TIMESTAMPTZ
);
CREATE TABLE spans (
  run_id VARCHAR, span_id VARCHAR, parent_span_id VARCHAR, name VARCHAR, kind VARCHAR,
  started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ, duration_ms DOUBLE, status VARCHAR,
  status_message VARCHAR, error_type VARCHAR, model VARCHAR, provider VARCHAR,
  input_tokens BIGINT, output_tokens BIGINT, cached_input_tokens BIGINT,
  cache_write_input_tokens BIGINT, reasoning_tokens BIGINT, cost_usd DOUBLE,
  tool_name VARCHAR, tool_call_id VARCHAR, tool_arguments VARCHAR, tool_result VARCHAR,
  tool_calls JSON, tool_definitions JSON, finish_reason VARCHAR, time_to_first_token_ms DOUBLE,
  input VARCHAR, output VARCHAR, attributes JSON, events JSON, resource_attributes JSON,
  scope_name VARCHAR, service_name VARCHAR, user_id VARCHAR, session_id VARCHAR,
  customer_id VARCHAR, feature VARCHAR, environment VARCHAR, source VARCHAR, source_file VARCHAR
);
CREATE SEQUENCE quarantine_id_seq;
CREATE TABLE quarantine (
  id BIGINT DEFAULT nextval('quarantine_id_seq'), ingested_at TIMESTAMPTZ, source_file VARCHAR,
  line BIGINT, kind VARCHAR, reason VARCHAR, raw VARCHAR, run_id VARCHAR, span_id VARCHAR,
  stored BOOLEAN
);
CREATE TABLE ingested_files (
  content_hash VARCHAR PRIMARY KEY, path VARCHAR, size_bytes BIGINT, mtime TIMESTAMPTZ,
  format VARCHAR, ingested_at TIMESTAMPTZ, runs BIGINT, spans BIGINT, quarantined BIGINT,
  seconds DOUBLE
);
"""


def m0001_initial(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_M0001)


MIGRATIONS: tuple[tuple[str, Callable[[duckdb.DuckDBPyConnection], None]], ...] = (
    ("0001_initial", m0001_initial),
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction. Returns their names."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ)"
    )
    done = {r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()}
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            fn(con)
            con.execute("INSERT INTO schema_migrations VALUES (?, now())", [name])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def contract_ddl() -> str:
    """The DDL the contract describes (used by tests to compare with the migrated database)."""
    return ";\n".join(_ddl(t, cols) for t, cols in TABLES.items())


def markdown_tables() -> str:
    """README section documenting every column (regenerated by `agentlens schema --markdown`)."""
    out = []
    for table, cols in TABLES.items():
        out.append(f"#### `{table}`\n")
        out.append("| column | type | meaning |")
        out.append("|---|---|---|")
        for c in cols:
            out.append(f"| `{c.name}` | {c.type} | {c.doc} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
