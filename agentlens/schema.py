"""The canonical schema: a public contract.

Users query these tables from notebooks, so the column names, types and order are pinned by
``tests/test_schema.py`` and documented in ``docs/reference/schema.md`` (generated from the columns below
by ``python -m agentlens.docs``, checked by ``tests/test_docs.py``).

Migrations are small named functions applied in order; the applied names are kept in
``schema_migrations``. A migration, once released, is never edited: change the schema by adding one.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import duckdb

from .core.dimensions import BUDGET_DIMENSIONS as BUDGET_DIMENSIONS
from .core.dimensions import DIMENSIONS as DIMENSIONS
from .core.dimensions import GROUP_DIMENSIONS as GROUP_DIMENSIONS
from .core.dimensions import LOOKUP_DIMENSIONS as LOOKUP_DIMENSIONS
from .core.dimensions import ROLLUP_DIMENSIONS as ROLLUP_DIMENSIONS
from .core.dimensions import RUN_DIMENSIONS as RUN_DIMENSIONS
from .core.dimensions import Dimension as Dimension
from .core.duck import transaction

# The run dimensions (the `runs` columns runs are grouped, filtered and capped by) are defined in
# core/dimensions.py, which the config imports too, and re-exported here beside the column contract.


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str


RUN_COLUMNS: tuple[Column, ...] = (
    Column("run_id", "VARCHAR", "One agent run: the OTel trace id (32 lowercase hex), the Langfuse or LangSmith trace id, or the source row id (agent_runs); `NAME:id` for a named source (`--source NAME`, `[sources.files]`, a live table other than `agent_runs`: see Record identity)."),
    Column("source", "VARCHAR", "Where the run came from: `otlp`, `langfuse`, `langsmith`, `agent_runs` (exports and live tables alike)."),
    Column("agent_name", "VARCHAR", "Agent name (`gen_ai.agent.name`, `agent.name`, agent span name), else `service.name`, else the Langfuse trace's name."),
    Column("started_at", "TIMESTAMPTZ", "Start of the run (UTC)."),
    Column("ended_at", "TIMESTAMPTZ", "End of the run (UTC); NULL when unknown."),
    Column("duration_ms", "DOUBLE", "Wall-clock duration in milliseconds; NULL when unknown."),
    Column("status", "VARCHAR", "`error` when the run ended by an exception on its main path (the root, or an agent, chain or LLM span that ended last below it: see Run status), else `ok` (a run that survived a failed tool call or a retried call is `ok`)."),
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
    Column("cost_usd", "DOUBLE", "Cost in USD: per priced call the cost the source reported (agent_runs `cost_usd`, `llm.cost.total`), else the computed one; NULL when a call has neither (see Costs)."),
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
    Column("reported_cost_usd", "DOUBLE", "Cost the source reported for the run (every priced call reports one), else NULL."),
    Column("computed_cost_usd", "DOUBLE", "Cost computed from the tokens and prices of the day (sum of its calls' `computed_cost_usd`); NULL when a call is unpriced."),
    Column("unpriced_llm_calls", "INTEGER", "Calls counted in the run's cost that have no known price (unknown model and no override): why `computed_cost_usd` is NULL."),
)

SPAN_COLUMNS: tuple[Column, ...] = (
    Column("run_id", "VARCHAR", "The run (trace) this span belongs to."),
    Column("span_id", "VARCHAR", "Span id (16 lowercase hex for OTel)."),
    Column("parent_span_id", "VARCHAR", "Parent span id; NULL for the root."),
    Column("name", "VARCHAR", "Span name as recorded."),
    Column("kind", "VARCHAR", "`agent`, `llm`, `tool`, `retriever`, `embedding`, `chain`, `guardrail`, `handoff` (control passed from one agent to another: not a tool call) or `other`."),
    Column("started_at", "TIMESTAMPTZ", "Start (UTC)."),
    Column("ended_at", "TIMESTAMPTZ", "End (UTC); NULL when unknown or recorded before the start (quarantine says so)."),
    Column("duration_ms", "DOUBLE", "Duration in milliseconds."),
    Column("status", "VARCHAR", "`ok` or `error` (OTel status code 2)."),
    Column("status_message", "VARCHAR", "Status description (without a traceback a tracer appended to it, when an exception event keeps the stack trace), else the exception message."),
    Column("error_type", "VARCHAR", "`error.type` attribute, else the exception event's `exception.type`, else the type a failed span's status message names (`RateLimitError: ...`; the openai / anthropic SDKs' `Error code: 429 - ...` is `RateLimitError`). Never a traceback."),
    Column("model", "VARCHAR", "Response model, else request model."),
    Column("provider", "VARCHAR", "`gen_ai.provider.name` / `gen_ai.system` / `llm.provider` / `llm.system`, lowercased."),
    Column("input_tokens", "BIGINT", "Input tokens as reported on this span, cached included (agent spans may carry totals of their children; runs do not add those again)."),
    Column("output_tokens", "BIGINT", "Output tokens as reported on this span."),
    Column("cached_input_tokens", "BIGINT", "Cache-read input tokens."),
    Column("cache_write_input_tokens", "BIGINT", "Cache-write (creation) input tokens."),
    Column("reasoning_tokens", "BIGINT", "Reasoning output tokens (a subset of output_tokens; when only a total counts them, the total less input and output: see Counting tokens once)."),
    Column("cost_usd", "DOUBLE", "Cost reported on the span (`llm.cost.total`, `gen_ai.usage.cost`), else NULL."),
    Column("tool_name", "VARCHAR", "Tool name for tool spans."),
    Column("tool_call_id", "VARCHAR", "Tool call id linking a tool span to the LLM call that asked for it."),
    Column("tool_arguments", "VARCHAR", "Tool call arguments (JSON text when the source gave JSON; untrusted)."),
    Column("tool_result", "VARCHAR", "Tool result (untrusted)."),
    Column("tool_calls", "JSON", "Tool calls an LLM span asked for: `[{id, name, arguments}]`."),
    Column("tool_definitions", "JSON", "Tools offered to an LLM span: `[{name, description, parameters}]`."),
    Column("finish_reason", "VARCHAR", "First finish reason of an LLM span."),
    Column("time_to_first_token_ms", "DOUBLE", "Time to first token / chunk of a streamed call, where recorded (an attribute, the instrumentation's first-chunk span event, Langfuse `completionStartTime`, LangSmith `first_token_time`)."),
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
    Column("computed_cost_usd", "DOUBLE", "Cost computed from this call's tokens at the price of its day; set on the calls a run's cost counts (NULL elsewhere)."),
    Column("price_source", "VARCHAR", "Where that price came from (`genai-prices:openai/gpt-4o-mini`, `override:...`), `unpriced: ...` with the reason, NULL on spans not priced."),
)

QUARANTINE_COLUMNS: tuple[Column, ...] = (
    Column("id", "BIGINT", "Row id."),
    Column("ingested_at", "TIMESTAMPTZ", "When it was quarantined."),
    Column("source_file", "VARCHAR", "File (or table) the record came from."),
    Column("line", "BIGINT", "1-based line number (JSON Lines, CSV) or record number (Parquet); NULL for a whole file."),
    Column("kind", "VARCHAR", "`invalid_utf8`, `malformed_json`, `truncated`, `too_deep`, `not_otlp`, `wrong_type`, `missing_field`, `impossible_value`, `end_before_start`, `orphan_span`, `parent_cycle`, `bad_row`, `unreadable_record`, `unstorable`, `unreadable_file`, `out_of_memory` (see Bad input)."),
    Column("reason", "VARCHAR", "What is wrong, in words, naming the field."),
    Column("raw", "VARCHAR", "The raw text of the record (invalid bytes shown as \\xNN escapes)."),
    Column("run_id", "VARCHAR", "Run concerned, when known."),
    Column("span_id", "VARCHAR", "Span concerned, when known."),
    Column("stored", "BOOLEAN", "True when the record was still stored (repaired or flagged), false when it was kept out."),
)

INGESTED_FILE_COLUMNS: tuple[Column, ...] = (
    Column("content_hash", "VARCHAR", "SHA-256 of the file's bytes (as stored, before gunzip); `SHA-256@NAME` for a file ingested into a named source (`--source`)."),
    Column("path", "VARCHAR", "Path as given to ingest."),
    Column("size_bytes", "BIGINT", "File size."),
    Column("mtime", "TIMESTAMPTZ", "File modification time."),
    Column("format", "VARCHAR", "Adapter that read it."),
    Column("ingested_at", "TIMESTAMPTZ", "When."),
    Column("runs", "BIGINT", "Runs added or changed (NULL for a small file published in a batch with others)."),
    Column("spans", "BIGINT", "Spans added (NULL for a small file published in a batch with others)."),
    Column("quarantined", "BIGINT", "Records quarantined."),
    Column("seconds", "DOUBLE", "Time taken (NULL for a small file published in a batch with others)."),
)

FAILURE_COLUMNS: tuple[Column, ...] = (  # 0004_failures
    Column("run_id", "VARCHAR", "The run the failure was found in."),
    Column("mode", "VARCHAR", "Failure mode (`silent_tool_failure`, `hallucinated_tool`, ... see Failure modes)."),
    Column("span_id", "VARCHAR", "The span that shows it best (the first failing call, the tool span, the root for run totals)."),
    Column("severity", "VARCHAR", "`critical`, `high`, `medium` or `low` (see Failure modes)."),
    Column("explanation", "VARCHAR", "One line a person reads at 3am: the tool, the count, the values (quotes trace text: untrusted)."),
    Column("evidence", "JSON", "The span ids and values that prove it, and the policy values used (untrusted text inside)."),
    Column("classified_at", "TIMESTAMPTZ", "When the run was classified (at ingest, or by `agentlens classify`)."),
    Column("policy_hash", "VARCHAR", "SHA-256 (first 16 hex) of the effective `[policy]` the row was found under."),
)

FLEET_INCIDENT_COLUMNS: tuple[Column, ...] = (  # 0004_failures
    Column("incident_id", "VARCHAR", "Stable id of the incident (kind, dimension, value, window start)."),
    Column("kind", "VARCHAR", "`spend_spike` or `retry_storm`."),
    Column("dimension", "VARCHAR", "`feature`, `customer_id` or `tool` (spend); `dependency` (storms)."),
    Column("value", "VARCHAR", "The feature, customer, tool or failing dependency (`llm:openai/gpt-4o`, `tool:get_order`)."),
    Column("window_start", "TIMESTAMPTZ", "Start of the day (spend) or of the first failure (storm)."),
    Column("window_end", "TIMESTAMPTZ", "End of the day (spend) or the last failure (storm)."),
    Column("severity", "VARCHAR", "`critical`, `high`, `medium` or `low`."),
    Column("runs", "BIGINT", "Runs involved."),
    Column("explanation", "VARCHAR", "One line: the amount against its baseline, or the failures per run in the window."),
    Column("evidence", "JSON", "The numbers (baseline days, totals, run ids, span ids) and the policy values used."),
    Column("classified_at", "TIMESTAMPTZ", "When it was computed."),
    Column("policy_hash", "VARCHAR", "SHA-256 (first 16 hex) of the effective `[policy]`."),
)

# 0003_rollups (agentlens.metrics.rollups): rollup rows per bucket of `bucket_seconds`. Latency and
# token distributions are log-spaced histograms `MAP(bin, count)` that merge by adding counts: bin b
# holds values in (γ^(b-1), γ^b] with γ = 1.01/0.99 (bin -2147483647 holds zeros), read back as
# 2γ^b/(γ+1), so a percentile of merged rows is within 1% of the exact one (see Rollups).
_HIST = "Log-spaced histogram `{bin: count}` of "
ROLLUP_RUN_COLUMNS: tuple[Column, ...] = (
    Column("bucket_seconds", "INTEGER", "Width of the bucket in seconds (3600 for `--every 1h`)."),
    Column("bucket_start", "TIMESTAMPTZ", "Start of the bucket (UTC); a run belongs to the bucket of its `started_at`."),
    Column("source", "VARCHAR", "Run dimension (rows are per bucket and combination of the five dimensions; high-cardinality `customer_id`, `user_id`, `session_id` are left out)."),
    Column("agent_name", "VARCHAR", "Run dimension."),
    Column("environment", "VARCHAR", "Run dimension."),
    Column("feature", "VARCHAR", "Run dimension."),
    Column("model", "VARCHAR", "Run dimension (the run's main model)."),
    Column("runs", "BIGINT", "Runs."),
    Column("errors", "BIGINT", "Runs with status `error`."),
    Column("implicit_errors", "BIGINT", "Runs with at least one row in `failures` when rolled; NULL when the database had no `failures` table."),
    Column("rate_limited_runs", "BIGINT", "Runs with an error span rejected for a rate limit."),
    Column("timed_runs", "BIGINT", "Runs with a known duration."),
    Column("duration_sum_ms", "DOUBLE", "Sum of their durations."),
    Column("duration_max_ms", "DOUBLE", "Longest duration."),
    Column("latency_ok_hist", "MAP(INTEGER, UBIGINT)", _HIST + "the durations (ms) of successful runs."),
    Column("latency_error_hist", "MAP(INTEGER, UBIGINT)", _HIST + "the durations (ms) of failed runs."),
    Column("llm_calls", "BIGINT", "LLM calls (LLM spans with no LLM span as a direct child)."),
    Column("rate_limited_calls", "BIGINT", "LLM calls rejected for a rate limit."),
    Column("tool_calls", "BIGINT", "Tool calls."),
    Column("input_tokens", "BIGINT", "Input tokens (sum of `runs.input_tokens`)."),
    Column("output_tokens", "BIGINT", "Output tokens."),
    Column("cached_input_tokens", "BIGINT", "Cached input tokens."),
    Column("cost_usd", "DOUBLE", "Sum of `runs.cost_usd`."),
    Column("runs_with_cost", "BIGINT", "Runs whose `cost_usd` is known."),
    Column("rolled_at", "TIMESTAMPTZ", "When the row was (re)computed."),
)

ROLLUP_CALL_COLUMNS: tuple[Column, ...] = (
    Column("bucket_seconds", "INTEGER", "Width of the bucket in seconds."),
    Column("bucket_start", "TIMESTAMPTZ", "Start of the bucket of the call's run (`runs.started_at`)."),
    Column("kind", "VARCHAR", "`llm` or `tool`."),
    Column("name", "VARCHAR", "The model (LLM calls) or the tool name."),
    Column("provider", "VARCHAR", "The provider of LLM calls; NULL for tools."),
    Column("calls", "BIGINT", "Calls."),
    Column("errors", "BIGINT", "Calls with error status."),
    Column("rate_limited_calls", "BIGINT", "Calls rejected for a rate limit."),
    Column("input_tokens", "BIGINT", "Input tokens of the calls."),
    Column("output_tokens", "BIGINT", "Output tokens of the calls."),
    Column("max_input_tokens", "BIGINT", "Largest input of one call (context-window utilisation: divide by the window)."),
    Column("latency_ok_hist", "MAP(INTEGER, UBIGINT)", _HIST + "the durations (ms) of successful calls."),
    Column("latency_error_hist", "MAP(INTEGER, UBIGINT)", _HIST + "the durations (ms) of failed calls."),
    Column("ttft_hist", "MAP(INTEGER, UBIGINT)", _HIST + "time to first token (ms), where recorded."),
    Column("input_tokens_hist", "MAP(INTEGER, UBIGINT)", _HIST + "input tokens per call."),
    Column("rolled_at", "TIMESTAMPTZ", "When the row was (re)computed."),
)

ROLLUP_BUCKET_COLUMNS: tuple[Column, ...] = (
    Column("bucket_seconds", "INTEGER", "Width of the bucket in seconds."),
    Column("bucket_start", "TIMESTAMPTZ", "Start of the bucket."),
    Column("runs", "BIGINT", "Runs started in the bucket."),
    Column("max_concurrency", "BIGINT", "Most runs in flight at once during the bucket (runs with a known end)."),
    Column("rolled_at", "TIMESTAMPTZ", "When the row was (re)computed."),
)

ROLLUP_LEDGER_COLUMNS: tuple[Column, ...] = (
    Column("bucket_seconds", "INTEGER", "The rollup width this entry belongs to."),
    Column("run_id", "VARCHAR", "A run already counted in the rollups of that width."),
    Column("started_at", "TIMESTAMPTZ", "Its start when rolled (a changed start re-rolls the old bucket too)."),
    Column("ended_at", "TIMESTAMPTZ", "Its end when rolled."),
    Column("ingested_at", "TIMESTAMPTZ", "Its `runs.ingested_at` when rolled: a rebuilt run has a newer one."),
    Column("cost_usd", "DOUBLE", "Its cost when rolled: `agentlens reprice` changes costs without rebuilding runs."),
)

SOURCE_WATERMARK_COLUMNS: tuple[Column, ...] = (  # 0005_sources
    Column("source", "VARCHAR", "A live source read incrementally: its URL without password, with `?table=` (`agentlens ingest postgresql://...`)."),
    Column("kind", "VARCHAR", "`postgres`."),
    Column("watermark_created_at", "TIMESTAMPTZ", "`created_at` of the last row read: the next ingest reads rows after (`created_at`, `id`), see Postgres."),
    Column("watermark_id", "VARCHAR", "`id` (as text) of the last row read, the tie-break among rows of the same `created_at`."),
    Column("rows_read", "BIGINT", "Rows read from the source so far (rows already stored, re-read in the lookback window, not counted)."),
    Column("updated_at", "TIMESTAMPTZ", "When the watermark last moved (it commits with the rows it covers)."),
)

FILE_READ_COLUMNS: tuple[Column, ...] = (  # 0008_file_reads
    Column("path", "VARCHAR", "A file ingested (its resolved path)."),
    Column("source", "VARCHAR", "The source it was ingested as (`--source`), '' for its format's own."),
    Column("format", "VARCHAR", "Adapter that read it."),
    Column("bytes_read", "BIGINT", "How far it was read: the next ingest reads only what was appended after, when the file only grew."),
    Column("fingerprint", "VARCHAR", "SHA-256 of those bytes: another one at the next ingest means the file was rewritten, and it is read whole."),
    Column("lines_read", "BIGINT", "Lines in those bytes (an appended part's quarantine records name their line in the whole file)."),
    Column("appendable", "BOOLEAN", "Whether it can be read from where it stopped (JSON Lines that ended on a line's end, not gzip)."),
    Column("read_at", "TIMESTAMPTZ", "When it was last read (commits with what it read)."),
)

ALERT_STATE_COLUMNS: tuple[Column, ...] = (  # 0009_alert_state
    Column("alert_key", "VARCHAR", "One alert: `[rule, labels]` as JSON (a rule, one group of a rule with `by`, one burn-rate window pair of an SLO)."),
    Column("rule", "VARCHAR", "The rule's `name` in the rules file (names identify alerts from one run to the next)."),
    Column("kind", "VARCHAR", "`threshold` or `slo`."),
    Column("severity", "VARCHAR", "`page` or `ticket`."),
    Column("labels", "JSON", "The group's run dimensions (`{\"feature\": \"refund\"}`), or the SLO's windows (`{\"long_window\": \"1h\", \"short_window\": \"5m\"}`); `{}` for a rule of one result."),
    Column("firing", "BOOLEAN", "Whether it is firing, as of the last evaluation (no data resolves it, unless its rule says `no_data = \"hold\"`)."),
    Column("firing_since", "TIMESTAMPTZ", "When it started firing (the evaluation time, `--at` or now); kept after it resolves."),
    Column("last_notified_at", "TIMESTAMPTZ", "When it was last announced (new, or again after the rule's `renotify`)."),
    Column("notifications", "BIGINT", "How many times it was announced since it started firing."),
    Column("last_value", "DOUBLE", "The last value evaluated: the threshold's metric, the SLO pair's long-window burn rate."),
    Column("summary", "VARCHAR", "The last evaluation's one line (with the numbers)."),
    Column("resolved_at", "TIMESTAMPTZ", "When it stopped firing (NULL while it fires)."),
    Column("evaluated_at", "TIMESTAMPTZ", "The evaluation time of the last `agentlens alerts` that saw it."),
    Column("updated_at", "TIMESTAMPTZ", "When this row was written (wall clock)."),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "runs": RUN_COLUMNS,
    "spans": SPAN_COLUMNS,
    "quarantine": QUARANTINE_COLUMNS,
    "ingested_files": INGESTED_FILE_COLUMNS,
    "failures": FAILURE_COLUMNS,
    "fleet_incidents": FLEET_INCIDENT_COLUMNS,
    "rollup_runs": ROLLUP_RUN_COLUMNS,  # 0003_rollups
    "rollup_calls": ROLLUP_CALL_COLUMNS,
    "rollup_buckets": ROLLUP_BUCKET_COLUMNS,
    "rollup_ledger": ROLLUP_LEDGER_COLUMNS,
    "source_watermarks": SOURCE_WATERMARK_COLUMNS,  # 0005_sources
    "file_reads": FILE_READ_COLUMNS,  # 0008_file_reads
    "alert_state": ALERT_STATE_COLUMNS,  # 0009_alert_state
}

SPAN_KINDS = ("agent", "llm", "tool", "retriever", "embedding", "chain", "guardrail", "handoff", "other")


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


# Computed costs beside the reported ones. Until 0002, runs.cost_usd held the reported cost only:
# it is copied to reported_cost_usd; `agentlens reprice` then fills the computed costs.
_M0002 = """
ALTER TABLE runs ADD COLUMN reported_cost_usd DOUBLE;
ALTER TABLE runs ADD COLUMN computed_cost_usd DOUBLE;
ALTER TABLE runs ADD COLUMN unpriced_llm_calls INTEGER;
ALTER TABLE spans ADD COLUMN computed_cost_usd DOUBLE;
ALTER TABLE spans ADD COLUMN price_source VARCHAR;
UPDATE runs SET reported_cost_usd = cost_usd;
"""


def m0002_costs(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_M0002)


# Rollups (agentlens.metrics.rollups): merged per bucket, re-rolled when their runs change.
_M0003 = """
CREATE TABLE rollup_runs (
  bucket_seconds INTEGER, bucket_start TIMESTAMPTZ, source VARCHAR, agent_name VARCHAR,
  environment VARCHAR, feature VARCHAR, model VARCHAR, runs BIGINT, errors BIGINT,
  implicit_errors BIGINT, rate_limited_runs BIGINT, timed_runs BIGINT, duration_sum_ms DOUBLE,
  duration_max_ms DOUBLE, latency_ok_hist MAP(INTEGER, UBIGINT), latency_error_hist MAP(INTEGER, UBIGINT),
  llm_calls BIGINT, rate_limited_calls BIGINT, tool_calls BIGINT, input_tokens BIGINT,
  output_tokens BIGINT, cached_input_tokens BIGINT, cost_usd DOUBLE, runs_with_cost BIGINT,
  rolled_at TIMESTAMPTZ
);
CREATE TABLE rollup_calls (
  bucket_seconds INTEGER, bucket_start TIMESTAMPTZ, kind VARCHAR, name VARCHAR, provider VARCHAR,
  calls BIGINT, errors BIGINT, rate_limited_calls BIGINT, input_tokens BIGINT, output_tokens BIGINT,
  max_input_tokens BIGINT, latency_ok_hist MAP(INTEGER, UBIGINT), latency_error_hist MAP(INTEGER, UBIGINT),
  ttft_hist MAP(INTEGER, UBIGINT), input_tokens_hist MAP(INTEGER, UBIGINT), rolled_at TIMESTAMPTZ
);
CREATE TABLE rollup_buckets (
  bucket_seconds INTEGER, bucket_start TIMESTAMPTZ, runs BIGINT, max_concurrency BIGINT,
  rolled_at TIMESTAMPTZ
);
CREATE TABLE rollup_ledger (
  bucket_seconds INTEGER, run_id VARCHAR, started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ,
  ingested_at TIMESTAMPTZ, cost_usd DOUBLE
);
"""


def m0003_rollups(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_M0003)


# Failure-mode classification (agentlens.failures): one row per detection, and fleet-level incidents.
_M0004 = """
CREATE TABLE failures (
  run_id VARCHAR, mode VARCHAR, span_id VARCHAR, severity VARCHAR, explanation VARCHAR, evidence JSON,
  classified_at TIMESTAMPTZ, policy_hash VARCHAR
);
CREATE TABLE fleet_incidents (
  incident_id VARCHAR, kind VARCHAR, dimension VARCHAR, value VARCHAR, window_start TIMESTAMPTZ,
  window_end TIMESTAMPTZ, severity VARCHAR, runs BIGINT, explanation VARCHAR, evidence JSON,
  classified_at TIMESTAMPTZ, policy_hash VARCHAR
);
"""


def m0004_failures(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_M0004)


# Live sources read incrementally (agentlens.sources): how far each has been read.
_M0005 = """
CREATE TABLE source_watermarks (
  source VARCHAR PRIMARY KEY, kind VARCHAR, watermark_created_at TIMESTAMPTZ, watermark_id VARCHAR,
  rows_read BIGINT, updated_at TIMESTAMPTZ
);
"""


def m0005_sources(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_M0005)


# The long text columns (prompts, outputs, attributes, tool payloads) stored with ZSTD. DuckDB's default
# for them (FSST, analysed per segment) compressed 2.7 GB of OTLP into a 2 GB database and was a third
# of an ingest's CPU; with ZSTD the same data takes 0.58 GB and writes in half the time. A trace view or
# a page of runs still reads in ~10-15 ms. DuckDB cannot change a column's compression in place, so
# both tables are rebuilt (same columns, same order; a one-off rewrite when a database migrates).
_M0006_SPANS = """
CREATE TABLE spans_0006 (
  run_id VARCHAR, span_id VARCHAR, parent_span_id VARCHAR, name VARCHAR, kind VARCHAR,
  started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ, duration_ms DOUBLE, status VARCHAR,
  status_message VARCHAR USING COMPRESSION zstd,
  error_type VARCHAR, model VARCHAR, provider VARCHAR,
  input_tokens BIGINT, output_tokens BIGINT, cached_input_tokens BIGINT,
  cache_write_input_tokens BIGINT, reasoning_tokens BIGINT, cost_usd DOUBLE,
  tool_name VARCHAR, tool_call_id VARCHAR,
  tool_arguments VARCHAR USING COMPRESSION zstd,
  tool_result VARCHAR USING COMPRESSION zstd,
  tool_calls JSON USING COMPRESSION zstd,
  tool_definitions JSON USING COMPRESSION zstd,
  finish_reason VARCHAR, time_to_first_token_ms DOUBLE,
  input VARCHAR USING COMPRESSION zstd,
  output VARCHAR USING COMPRESSION zstd,
  attributes JSON USING COMPRESSION zstd,
  events JSON USING COMPRESSION zstd,
  resource_attributes JSON USING COMPRESSION zstd,
  scope_name VARCHAR, service_name VARCHAR, user_id VARCHAR,
  session_id VARCHAR, customer_id VARCHAR, feature VARCHAR, environment VARCHAR, source VARCHAR,
  source_file VARCHAR, computed_cost_usd DOUBLE, price_source VARCHAR
);
INSERT INTO spans_0006 SELECT * FROM spans;
DROP TABLE spans;
ALTER TABLE spans_0006 RENAME TO spans;
"""
_M0006_RUNS = """
CREATE TABLE runs_0006 (
  run_id VARCHAR, source VARCHAR, agent_name VARCHAR, started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ,
  duration_ms DOUBLE, status VARCHAR, user_id VARCHAR, session_id VARCHAR, customer_id VARCHAR,
  feature VARCHAR, environment VARCHAR, model VARCHAR, input_tokens BIGINT, output_tokens BIGINT,
  cached_input_tokens BIGINT, cache_write_input_tokens BIGINT, reasoning_tokens BIGINT,
  cost_usd DOUBLE, llm_calls INTEGER, tool_calls INTEGER, span_count INTEGER, error_count INTEGER,
  input VARCHAR USING COMPRESSION zstd,
  output VARCHAR USING COMPRESSION zstd,
  attributes JSON USING COMPRESSION zstd,
  root_span_id VARCHAR, service_name VARCHAR, ingested_at TIMESTAMPTZ, reported_cost_usd DOUBLE,
  computed_cost_usd DOUBLE, unpriced_llm_calls INTEGER
);
INSERT INTO runs_0006 SELECT * FROM runs;
DROP TABLE runs;
ALTER TABLE runs_0006 RENAME TO runs;
"""


def m0006_zstd_text(con: duckdb.DuckDBPyConnection, on_table: Callable[[str], None] = lambda table: None) -> None:
    for table, ddl in (("spans", _M0006_SPANS), ("runs", _M0006_RUNS)):
        on_table(table)
        con.execute(ddl)


# An agent_runs row is one LLM call of its model (adapters/agent_runs.py): its one span is of kind `llm` and
# its run counts one call. Rows stored before said `agent` and NULL; `ingested_at` moves so that the next
# rollup re-rolls their buckets. A data migration: no column changes (ClickHouse records it as applied).
_M0007 = """
UPDATE spans SET kind = 'llm' WHERE source = 'agent_runs' AND span_id = 'run' AND kind = 'agent';
UPDATE runs SET llm_calls = 1, ingested_at = now() WHERE source = 'agent_runs' AND llm_calls IS NULL;
"""


def m0007_agent_runs_calls(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_M0007)


# Files read before, and how far (agentlens.ingest.files): a file that grew is read from where it stopped.
_M0008 = """
CREATE TABLE file_reads (
  path VARCHAR, source VARCHAR, format VARCHAR, bytes_read BIGINT, fingerprint VARCHAR, lines_read BIGINT,
  appendable BOOLEAN, read_at TIMESTAMPTZ, PRIMARY KEY (path, source)
);
"""


def m0008_file_reads(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_M0008)


# What `agentlens alerts` announced (agentlens.metrics.alert_state): a firing alert is announced once (again
# after its rule's `renotify`), and its end once.
_M0009 = """
CREATE TABLE alert_state (
  alert_key VARCHAR PRIMARY KEY, rule VARCHAR, kind VARCHAR, severity VARCHAR, labels JSON, firing BOOLEAN,
  firing_since TIMESTAMPTZ, last_notified_at TIMESTAMPTZ, notifications BIGINT, last_value DOUBLE,
  summary VARCHAR, resolved_at TIMESTAMPTZ, evaluated_at TIMESTAMPTZ, updated_at TIMESTAMPTZ
);
"""


def m0009_alert_state(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_M0009)


# Indexes on the run id of runs and spans (DuckDB's ART): what an ingest, a classification and `agentlens
# trace` do is look a few runs up by id, and each lookup scanned the whole run_id column (at 1M runs and 10M
# spans, 13 ms per statement on runs and 20-40 ms on spans; with the indexes ~1 ms and ~2-3 ms). Measured:
# no slower bulk ingest (10k runs into an empty database: 12.3 s against 12.8 s; into 1M runs: 17.0 s against
# 16.7 s, the same peak RSS), 3.0-3.4 s to build on 10M spans; DuckDB loads an index lazily (4 MB resident
# after a lookup at 10M spans). Not unique: a run has many spans. DuckDB only (a ClickHouse store's tables are ordered by run id: it records this as applied).
RUN_ID_INDEXES = (("runs", "CREATE INDEX IF NOT EXISTS runs_run_id ON runs (run_id)"),
                  ("spans", "CREATE INDEX IF NOT EXISTS spans_run_id ON spans (run_id)"))


def m0010_run_id_indexes(con: duckdb.DuckDBPyConnection,
                         on_table: Callable[[str], None] = lambda table: None) -> None:
    for table, ddl in RUN_ID_INDEXES:
        on_table(table)
        con.execute(ddl)


MIGRATIONS: tuple[tuple[str, Callable[[duckdb.DuckDBPyConnection], None]], ...] = (
    ("0001_initial", m0001_initial),
    ("0002_costs", m0002_costs),
    ("0003_rollups", m0003_rollups),
    ("0004_failures", m0004_failures),
    ("0005_sources", m0005_sources),
    ("0006_zstd_text", m0006_zstd_text),
    ("0007_agent_runs_calls", m0007_agent_runs_calls),
    ("0008_file_reads", m0008_file_reads),
    ("0009_alert_state", m0009_alert_state),
    ("0010_run_id_indexes", m0010_run_id_indexes),
)

SCHEMA_VERSION = len(MIGRATIONS)

# Migrations that rewrite or index whole tables, slow on a large database, with the tables they go through
# in order. Their functions take a second argument, called with each table as they start on it.
REWRITES: dict[str, tuple[str, ...]] = {"0006_zstd_text": ("spans", "runs"), "0010_run_id_indexes": ("runs", "spans")}
# What a person is told such a migration does (`{what}`: the tables' rows), and how long it takes.
REWRITE_NOTES = {
    "0006_zstd_text": "rewriting {what} (once; about 12 s per million spans)",
    "0010_run_id_indexes": "indexing the run ids of {what} (once; about 0.4 s per million spans)",
}

# `announce(migration, {table: rows})`: a context around a rewrite; it gives the callback for each table
Announce = Callable[[str, dict[str, int]], AbstractContextManager[Callable[[str], None]]]


def migrate(con: duckdb.DuckDBPyConnection, announce: Announce | None = None) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction. Returns their names.
    `announce`: called before a migration in `REWRITES` (e.g. to show its progress), with the rows of
    the tables it rewrites."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ)"
    )
    done = {r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()}
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        with transaction(con):
            tables = REWRITES.get(name)
            if tables and announce is not None:
                rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables}  # noqa: S608 - names from REWRITES
                with announce(name, rows) as on_table:
                    fn(con, on_table)  # type: ignore[call-arg]
            else:
                fn(con)
            con.execute("INSERT INTO schema_migrations VALUES (?, now())", [name])
        applied.append(name)
    return applied


def contract_ddl() -> str:
    """The DDL the contract describes (used by tests to compare with the migrated database)."""
    return ";\n".join(_ddl(t, cols) for t, cols in TABLES.items())


def markdown_tables() -> str:
    """The column tables of docs/reference/schema.md (`python -m agentlens.docs`; `agentlens schema --markdown`)."""
    out = []
    for table, cols in TABLES.items():
        out.append(f"#### `{table}`\n")
        out.append("| column | type | meaning |")
        out.append("|---|---|---|")
        for c in cols:
            out.append(f"| `{c.name}` | {c.type} | {c.doc} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
