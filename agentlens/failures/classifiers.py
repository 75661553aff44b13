"""Failure-mode classifiers: small deterministic rules over the canonical tables, one per mode.

Each classifier is a function of a `Ctx` returning rows `(run_id, mode, span_id, severity,
explanation, evidence)` for every run of the batch (the run ids in the temp table `_fruns`), marked
with the modes it may emit (`@emits(...)`). The work is SQL run by DuckDB; the values come in as named
parameters (`$loop_threshold`, `$rate_limit_re`, ...), all made once per batch by `parameters()` from
the policy and the patterns, each statement taking the ones it names: no statement depends on the order
of a list.
`PREPARE` first builds `_fs`, a narrow per-span table of the batch with what several rules share:
the span's order in its run, whether it failed and why, its call fingerprint, which policy lists
its tool is on, and its `rid` (rowid in `spans`). Rules read the wide text columns (results, messages)
from `spans` only where needed, joined on `rowid = rid` so that DuckDB reads only the row groups
holding the batch's spans (a join on the ids would scan the whole table). An intermediate result several
rules read (the final answers, `_ffinal`) is made once per batch by the first rule that needs it
(`Ctx.shared`, `SHARED`) and dropped with `_fs` (`CLEANUP`).

A rule's statement costs DuckDB 4-15 ms to plan whatever the batch's size, and a batch is often one run (a
single-trace file, a receiver's flush) that fails nothing. A rule may therefore declare `when` (`@emits(...,
when=...)`): an aggregate over `_fs` that is false only when the batch cannot hold its detection (no failed
tool call, no failed call of the mode's kind, ...); all of them are judged in one statement (`gated`), and a
rule whose `when` is false is not run. `when` is a necessary condition read off the rule's SQL, never a
guess: tests/test_failures.py classifies every run alone, gated, against the rules run ungated.

`CLASSIFIERS` is the ordered tuple of rules (sqlglot's optimizer rules are held the same way): adding
a mode is adding a function to it, and `MODES` is the modes they declare, in their order. A caller
may run any subset (`failures.classify(lens, classifiers=...)`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import duckdb
import pyarrow as pa

from ..core import patterns as P
from ..core.duck import arrow
from .policy import Policy

SEVERITIES = ("critical", "high", "medium", "low")
FEW_RUNS = 50  # a batch of at most this many runs: rules that can, ask first whether they may find anything

ROW_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("mode", pa.string()), ("span_id", pa.string()), ("severity", pa.string()),
    ("explanation", pa.string()), ("evidence", pa.string()),
])


def _globs(names: tuple[str, ...]) -> list[str]:
    return [n.lower() for n in names]


def _by(policy: Policy, key: str) -> str:
    """Whose tool list an explanation cites."""
    return "default policy" if policy.src(key) == "default" else "policy in the config"


ADDRESS = P.EMAIL + r"|https?://[A-Za-z0-9.-]+"


def parameters(policy: Policy) -> dict[str, Any]:
    """Every value the statements bind, by name: the patterns (`*_re`, agentlens.core.patterns), the
    policy's values under their config keys (tool lists as lower-case globs), and the notes that
    explanations quote about where a value came from."""
    p = policy
    allow = list(p.tool_allowlist)
    approvals = " or ".join(p.approval_spans[:4]) + (" ..." if len(p.approval_spans) > 4 else "")
    caps = ("max_cost_usd_per_run", "max_tokens_per_run", "max_llm_calls_per_run", "max_tool_calls_per_run",
            "max_duration_s_per_run")
    return {
        "error_text_re": P.ERROR_TEXT, "rate_limit_re": P.RATE_LIMIT, "timeout_re": P.TIMEOUT,
        "http_status_re": P.HTTP_STATUS, "error_head_re": P.ERROR_HEAD, "error_last_line_re": P.ERROR_LAST_LINE,
        "context_overflow_re": P.CONTEXT_OVERFLOW, "provider_error_re": P.PROVIDER_ERROR, "step_cap_re": P.STEP_CAP,
        "refusal_re": P.REFUSAL, "address_re": ADDRESS, "injection_re": p.injection_regex,
        "failure_acknowledged_re": P.FAILURE_ACKNOWLEDGED, "quoted_mention_re": P.QUOTED_MENTION,
        "outcome_unknown_re": P.OUTCOME_UNKNOWN, "step_cap_answer_re": P.STEP_CAP_ANSWER,
        "incomplete_reason_re": P.INCOMPLETE_REASON,
        "finish_length": list(P.FINISH_LENGTH), "finish_refusal": list(P.FINISH_REFUSAL),
        "side_effect_tools": _globs(p.side_effect_tools), "side_effect_tools_by": _by(p, "side_effect_tools"),
        "irreversible_tools": _globs(p.irreversible_tools), "irreversible_tools_by": _by(p, "irreversible_tools"),
        "approval_spans": _globs(p.approval_spans),
        "approval_spans_shown": approvals + ("" if p.src("approval_spans") == "from config" else " (default)"),
        "tool_allowlist": _globs(p.tool_allowlist), "tool_allowlist_names": allow, "has_tool_allowlist": bool(allow),
        "tool_allowlist_shown": ", ".join(allow[:8]) + (", ..." if len(allow) > 8 else ""),
        "loop_threshold": p.loop_threshold, "loop_threshold_src": p.src("loop_threshold"),
        "retry_threshold": p.retry_threshold, "retry_threshold_src": p.src("retry_threshold"),
        "transient_error_threshold": p.transient_error_threshold,
        "transient_error_threshold_src": p.src("transient_error_threshold"),
        "context_window_ratio": p.context_window_ratio, "context_window_ratio_src": p.src("context_window_ratio"),
        **{key: getattr(p, key) for key in caps}, **{f"{key}_note": p.note(key) for key in caps},
    }


_NAMES: dict[str, frozenset[str]] = {}  # statement -> the parameters it names


def _bind(con: duckdb.DuckDBPyConnection, query: str, values: dict[str, Any]) -> dict[str, Any]:
    """The values of the parameters the statement names (DuckDB rejects values it does not name)."""
    names = _NAMES.get(query)
    if names is None:
        names = _NAMES[query] = frozenset(con.extract_statements(query)[0].named_parameters)
    missing = names - values.keys()
    if missing:
        raise KeyError(f"no value for the statement's parameters {', '.join(sorted(missing))}")
    return {n: values[n] for n in names}


@dataclass
class Ctx:
    con: duckdb.DuckDBPyConnection
    policy: Policy
    params: dict[str, Any] = field(init=False)  # parameters(policy)
    made: set[str] = field(init=False, default_factory=set)  # the SHARED tables made in this batch
    _runs: int | None = field(init=False, default=None)  # runs()

    def __post_init__(self) -> None:
        self.params = parameters(self.policy)

    def run(self, query: str, **values: Any) -> None:
        """Run a statement with its named parameters (`values` add to or override `params`)."""
        self.con.execute(query, _bind(self.con, query, {**self.params, **values}))

    def one(self, query: str, **values: Any) -> Any:
        """The first value of a statement's first row; parameters as in `run`."""
        row = self.con.execute(query, _bind(self.con, query, {**self.params, **values})).fetchone()
        return row[0] if row else None

    def runs(self) -> int:
        """How many runs the batch holds (`_fruns`)."""
        if self._runs is None:
            self._runs = int(self.con.execute("SELECT count(*) FROM _fruns").fetchone()[0])  # type: ignore[index]
        return self._runs

    def rows(self, query: str, **values: Any) -> pa.Table:
        """A rule's result as the six detection columns (named by position); parameters as in `run`."""
        table = arrow(self.con, query, _bind(self.con, query, {**self.params, **values}))  # planned once
        return table.rename_columns(ROW_SCHEMA.names).cast(ROW_SCHEMA)

    def shared(self, name: str) -> None:
        """Make the batch's temp table `name` (a key of SHARED) unless a rule already did: an intermediate
        result several rules read (the final answers), made once per batch and only when a rule needs it."""
        if name not in self.made:
            self.run(SHARED[name])
            self.made.add(name)


class Classifier(Protocol):
    """A rule: a function of the batch's `Ctx` returning detection rows, and the modes they may carry."""

    __name__: str
    modes: tuple[str, ...]
    when: str | None  # see `emits`

    def __call__(self, ctx: Ctx, /) -> pa.Table: ...


def emits(*modes: str, when: str | None = None) -> Callable[[Callable[[Ctx], pa.Table]], Classifier]:
    """Declare the modes a classifier's rows may carry: `MODES` is made of them, and a row of any other
    mode is an error (see `apply`). `when`: an aggregate over the batch's `_fs` (named parameters as in
    the rules) that is false only when the batch cannot hold a detection of the rule, which is then not
    run (see `gated`): a necessary condition of the rule's SQL, never a heuristic. Most runs fail no call,
    and a batch of one run (a single-trace file, a receiver's flush) is then spared the statements of the
    failure rules."""
    if not modes or len(set(modes)) != len(modes):
        raise ValueError(f"a classifier declares one or more distinct modes, got {modes!r}")

    def mark(fn: Callable[[Ctx], pa.Table]) -> Classifier:
        fn.modes = modes  # type: ignore[attr-defined]
        fn.when = when  # type: ignore[attr-defined]
        return cast(Classifier, fn)
    return mark


def gated(ctx: Ctx, classifiers: Iterable[Classifier]) -> list[Classifier]:
    """The classifiers the batch may trigger: those without `when`, and those whose `when` holds on `_fs`,
    all judged in one statement (needs `_fmodels`, as the rules do)."""
    rules = list(classifiers)
    whens = [(i, w) for i, c in enumerate(rules) if (w := getattr(c, "when", None))]
    if not whens:
        return rules
    query = "SELECT " + ", ".join(f"coalesce({w}, false)" for _, w in whens) + " FROM _fs"  # noqa: S608 - the rules' own SQL
    row = ctx.con.execute(query, _bind(ctx.con, query, ctx.params)).fetchone() or ()
    skip = {i for (i, _), holds in zip(whens, row, strict=True) if not holds}
    return [c for i, c in enumerate(rules) if i not in skip]


def modes_of(classifiers: Iterable[Classifier]) -> tuple[str, ...]:
    """The modes the classifiers declare, in their order, each once."""
    return tuple(dict.fromkeys(m for c in classifiers for m in c.modes))


# UNNEST_NOTE: a JSON list of a span's column is unnested in a SELECT list, not as a lateral join
# (`FROM spans s, unnest(from_json(s.col, ...))`): DuckDB decorrelates the lateral form into the distinct
# values of the column joined back on their text, which costs a hash of every long text (user messages,
# measured on 20,000 bench runs: prompt_injection 0.72 -> 0.45 s, runaway_loop's calls 0.19 -> 0.12 s).
# Where the values repeat (tool definitions, offered alike on every call), the lateral form is as fast.

# --------------------------------------------------------------------------------------------------
# The shared per-span table of the batch
# --------------------------------------------------------------------------------------------------

PREPARE = """
CREATE OR REPLACE TEMP TABLE _fs AS
WITH s AS (  -- by rowid: DuckDB then reads only the row groups holding the batch's spans
  SELECT sp.*, sp.rowid AS rid,
         -- what a person reads of the error (patterns.error_head): the message's first line, cut before a
         -- traceback, else its last line (a message that starts with its traceback); never the frames
         CASE WHEN sp.status = 'error' THEN coalesce(
           nullif(regexp_extract(coalesce(sp.status_message, ''), $error_head_re, 1), ''),
           trim(regexp_extract(coalesce(sp.status_message, ''), $error_last_line_re, 1))) END AS head
  FROM spans sp
  WHERE sp.rowid IN (SELECT x.rowid FROM spans x SEMI JOIN _fruns r ON r.run_id = x.run_id)
),
llm_parents AS (
  SELECT DISTINCT run_id, parent_span_id AS span_id FROM s WHERE kind = 'llm' AND parent_span_id IS NOT NULL
),
work AS (
  SELECT run_id, bool_or(kind IN ('llm', 'tool', 'retriever', 'embedding')) AS has_calls FROM s GROUP BY run_id
),
base AS (
  SELECT s.rid, s.run_id, s.span_id, s.parent_span_id, s.name, s.kind, s.started_at, s.ended_at, s.duration_ms,
         s.status, s.model, s.provider, s.input_tokens, s.output_tokens, s.finish_reason, s.tool_arguments, s.source,
         coalesce(s.tool_name, CASE WHEN s.kind = 'retriever' THEN s.name END) AS tool,
         s.kind = 'llm' AND lp.span_id IS NULL AS leaf_llm,
         w.has_calls,
         coalesce(s.tool_result, CASE WHEN s.kind IN ('tool', 'retriever') THEN s.output END) AS result,
         CASE WHEN s.status = 'error' THEN coalesce(nullif(
                CASE WHEN s.error_type IS NOT NULL AND starts_with(s.head, s.error_type)
                     THEN s.head ELSE concat_ws(': ', s.error_type, nullif(s.head, '')) END, ''),
                'error status')
         END AS status_err
  FROM s
  LEFT JOIN llm_parents lp ON lp.run_id = s.run_id AND lp.span_id = s.span_id
  JOIN work w ON w.run_id = s.run_id
),
parsed AS (  -- a result's JSON parsed three times, not once per field: each JSON function holds its parse of a
            -- whole vector of results, and long tool results (150 KB each) ran out of memory at ~15 parses
  SELECT v.*,
         CASE WHEN v.valid THEN json_type(v.result, ['$', '$.error']) END AS types,  -- the result's, its error's
         CASE WHEN v.valid THEN json_extract_string(v.result, ['$.error', '$.success', '$.ok', '$.isError',
                                                                 '$.is_error', '$.status', '$.status_code', '$.approved'])
         END AS f  -- [error, success, ok, isError, is_error, status, status_code, approved]
  FROM (SELECT b.*, b.result IS NOT NULL AND json_valid(b.result) AS valid FROM base b) v
),
payload AS (
  SELECT b.*,
         CASE WHEN b.kind IN ('tool', 'retriever') AND b.result IS NOT NULL THEN
           CASE WHEN b.valid THEN
             CASE WHEN b.types[1] = 'OBJECT' THEN
               CASE
                 WHEN coalesce(b.types[2], 'NULL') NOT IN ('NULL', 'BOOLEAN')
                      AND coalesce(b.f[1], '') NOT IN ('', '{}', '[]')
                   THEN 'error: ' || left(b.f[1], 300)
                 WHEN b.f[1] = 'true' THEN 'error: true'
                 WHEN b.f[2] = 'false' THEN 'success: false'
                 WHEN b.f[3] = 'false' THEN 'ok: false'
                 WHEN b.f[4] = 'true' OR b.f[5] = 'true' THEN 'isError: true'
                 WHEN lower(b.f[6]) IN ('error', 'failed', 'failure') THEN 'status: ' || b.f[6]
                 WHEN try_cast(b.f[6] AS INTEGER) >= 500 THEN 'HTTP status ' || b.f[6]
                 WHEN try_cast(b.f[7] AS INTEGER) >= 500 THEN 'HTTP status ' || b.f[7]
               END
             END
           WHEN regexp_matches(b.result, $error_text_re) THEN left(b.result, 300)
           END
         END AS payload_err
  FROM parsed b
),
spans_f AS (
SELECT p.* EXCLUDE (result, status_err, payload_err, valid, types, f),
       -- numbered last, once the long text is dropped: the window holds every column it is given
       row_number() OVER (PARTITION BY p.run_id ORDER BY p.started_at NULLS LAST, p.span_id) AS seq,
       coalesce(p.status_err, p.payload_err) AS err,
       coalesce(p.status_err, p.payload_err) IS NOT NULL AS failed,
       p.payload_err IS NOT NULL AND p.status_err IS NULL AS failed_by_payload,
       p.leaf_llm OR p.kind IN ('tool', 'retriever', 'embedding')
         OR (p.parent_span_id IS NULL AND NOT p.has_calls) AS attempt,
       CASE WHEN p.kind IN ('tool', 'retriever') THEN 'tool ' || coalesce(p.tool, p.name)
            WHEN p.leaf_llm OR (p.parent_span_id IS NULL AND NOT p.has_calls)
              THEN 'llm ' || coalesce(p.model, p.provider, p.name)
       END AS target,
       CASE WHEN p.kind IN ('tool', 'retriever') AND p.tool IS NOT NULL
            THEN p.tool || ' ' || coalesce(agentlens_canonical_json(p.tool_arguments), '') END AS fp,
       try_cast(nullif(regexp_extract(coalesce(p.status_err, p.payload_err), $http_status_re, 1), '') AS INTEGER)
         AS http_status,
       coalesce(regexp_matches(coalesce(p.status_err, p.payload_err), $rate_limit_re), false) AS rate_words,
       coalesce(regexp_matches(coalesce(p.status_err, p.payload_err), $timeout_re), false) AS timeout_words,
       coalesce(regexp_matches(coalesce(p.status_err, p.payload_err), $provider_error_re), false) AS provider_words,
       coalesce(regexp_matches(coalesce(p.status_err, p.payload_err), $context_overflow_re), false) AS is_context,
       coalesce(regexp_matches(coalesce(p.status_err, p.payload_err), $step_cap_re), false) AS is_step_cap,
       -- a failed LLM call's finish reason, when its error says why the response is incomplete
       CASE WHEN p.leaf_llm AND p.status_err IS NOT NULL
            THEN lower(nullif(regexp_extract(p.status_err, $incomplete_reason_re, 1), '')) END AS incomplete_reason,
       p.kind = 'tool' AND len(list_filter($side_effect_tools::VARCHAR[], lambda g: lower(p.tool) GLOB g)) > 0
         AS side_effect,
       p.kind = 'tool' AND len(list_filter($irreversible_tools::VARCHAR[], lambda g: lower(p.tool) GLOB g)) > 0
         AS irreversible,
       len(list_filter($approval_spans::VARCHAR[], lambda g: lower(coalesce(p.tool, p.name)) GLOB g)) > 0 AS approval,
       -- coalesce: a result with no `approved` key (a ticket, a wrapped message) is not a denial, and
       -- `NULL OR false` would have made `NOT denied` drop the approval
       CASE WHEN p.valid AND p.types[1] = 'OBJECT'
            THEN coalesce(p.f[8] = 'false', false) OR lower(coalesce(p.f[6], '')) IN ('denied', 'rejected', 'declined')
            ELSE coalesce(regexp_matches(p.result, '(?i)^\\W{0,3}(denied|rejected|declined)\\b'), false)
       END AS denied
FROM payload p
)
-- the kind of a failed call (patterns.error_modes): its HTTP status first (429/529 a rate limit, 408/504 a
-- timeout, other 5xx a provider error), its words only when it carries no status or another 4xx one
SELECT c.* EXCLUDE (rate_words, timeout_words, provider_words, coded),
       CASE WHEN coded THEN http_status IN (429, 529) ELSE rate_words END AS is_rate,
       CASE WHEN coded THEN http_status IN (408, 504) ELSE timeout_words END AS is_timeout,
       CASE WHEN coded THEN http_status NOT IN (408, 429, 504, 529) AND NOT is_context
            ELSE provider_words AND NOT (rate_words OR timeout_words OR is_context) END AS is_provider
FROM (SELECT *, coalesce(http_status >= 500 OR http_status IN (408, 429), false) AS coded FROM spans_f) c
"""


def prepare(ctx: Ctx) -> None:
    ctx.run(PREPARE)


# --------------------------------------------------------------------------------------------------
# Tool failures: silent_tool_failure and tool_error
# --------------------------------------------------------------------------------------------------

# The answer a text gives: its own text, a JSON string's value, or a message list's last assistant message.
# An object with a `messages` list (a LangGraph agent's state: LangChain messages serialized as
# `{"type": "ai", "data": {"content": ...}}` or `{"lc": 1, "id": [..., "AIMessage"], "kwargs": {...}}`) gives
# its last AI message's text.
_ANSWER = """CASE WHEN json_valid({x}) THEN
    CASE json_type({x})
      WHEN 'ARRAY' THEN list_filter(try(json_transform({x}, '[{{"role":"VARCHAR","content":"VARCHAR"}}]')),
                                    lambda m: m.content IS NOT NULL AND coalesce(m.role, 'assistant') = 'assistant')[-1].content
      WHEN 'VARCHAR' THEN {x}->>'$'
      WHEN 'OBJECT' THEN list_transform(list_filter(
          try(json_transform({x}->'$.messages', '[{{"role":"VARCHAR","type":"VARCHAR","id":["VARCHAR"],"content":"VARCHAR",'
                                                   '"data":{{"content":"VARCHAR"}},"kwargs":{{"content":"VARCHAR"}}}}]')),
          lambda m: (m.role = 'assistant' OR m.type IN ('ai', 'AIMessage', 'AIMessageChunk')
                     OR m.id[-1] IN ('AIMessage', 'AIMessageChunk'))
                    AND coalesce(m.content, m.data.content, m.kwargs.content) IS NOT NULL),
          lambda m: coalesce(m.content, m.data.content, m.kwargs.content))[-1]
    END
  ELSE {x} END"""

# `_ffinal` (run_id, answer, span_id): the final answer of each run of the batch that has one, its first
# 2,000 characters: the run's output, else the last successful LLM call's output (the last assistant
# message's text). Read by refusal and the tool-failure rules (Ctx.shared).
FINAL_ANSWERS = """
CREATE OR REPLACE TEMP TABLE _ffinal AS
WITH fin AS (
  SELECT f.run_id, arg_max(s.output, f.seq) AS out, arg_max(f.span_id, f.seq) AS span_id
  FROM _fs f JOIN spans s ON s.rowid = f.rid
  WHERE f.leaf_llm AND NOT f.failed AND s.output IS NOT NULL
  GROUP BY f.run_id
),
rr AS (
  SELECT r.run_id, r.root_span_id, fin.span_id AS llm_span_id, fin.out, {answer_own} AS own
  FROM runs r LEFT JOIN fin USING (run_id)
  -- by rowid, as in PREPARE: a semi-join on the ids read the wide `output` of every stored run
  WHERE r.rowid IN (SELECT x.rowid FROM runs x SEMI JOIN _fruns USING (run_id))
)
-- the run's own answer, else the last LLM call's: parsed only then (CASE evaluates it lazily)
SELECT run_id, left(answer, 2000) AS answer,
       CASE WHEN has_own THEN coalesce(root_span_id, llm_span_id) ELSE llm_span_id END AS span_id
FROM (SELECT *, coalesce(trim(own) <> '', false) AS has_own,
             CASE WHEN trim(own) <> '' THEN own ELSE {answer_llm} END AS answer
      FROM rr)
WHERE trim(answer) <> ''
""".replace("{answer_own}", _ANSWER.format(x="r.output")).replace("{answer_llm}", _ANSWER.format(x="out"))

SHARED = {"_ffinal": FINAL_ANSWERS}
# run after a batch's rules: its temp tables
CLEANUP = ("DROP TABLE IF EXISTS _fs", "DROP TABLE IF EXISTS _ffinal")


# A tool (or retriever) call failed: error status, or a result that reports failure. Noticed (tool_error)
# when a later call of the same tool, after its last failure, succeeded, when the run ended in error, or when
# the final answer tells the user something failed (patterns.FAILURE_ACKNOWLEDGED); else silent.
# `$mode`: the mode to return.
TOOL_FAILED = "bool_or(kind IN ('tool', 'retriever') AND failed)"  # the rule's `f`: the batch's failed tool calls
TOOL_FAILURES = """
WITH f AS (SELECT * FROM _fs WHERE kind IN ('tool', 'retriever') AND failed),
g AS (
  SELECT run_id, tool, count(*) AS failures, arg_min(span_id, seq) AS span_id, arg_min(err, seq) AS first_err,
         max(seq) AS last_seq, bool_and(failed_by_payload) AS by_payload,
         list({span_id: span_id, error: left(err, 300)} ORDER BY seq) AS spans
  FROM f GROUP BY run_id, tool
),
retry AS (
  SELECT g.run_id, g.tool, arg_min(o.span_id, o.seq) AS retry_span_id
  FROM g JOIN _fs o ON o.run_id = g.run_id AND o.tool = g.tool AND o.seq > g.last_seq
                   AND o.kind IN ('tool', 'retriever') AND NOT o.failed
  GROUP BY ALL
),
noticed AS (
  SELECT g.*, r.retry_span_id, coalesce(run.status, 'ok') AS run_status,
         -- whether the final answer tells the user something failed (_ffinal: Ctx.shared), read only when
         -- neither a retry nor the run's end noticed (CASE evaluates it lazily)
         CASE WHEN r.retry_span_id IS NULL AND coalesce(run.status, 'ok') <> 'error'
              THEN CASE WHEN regexp_matches(a.answer, $failure_acknowledged_re) THEN a.answer END END AS ack_answer
  FROM g LEFT JOIN retry r USING (run_id, tool) LEFT JOIN runs run USING (run_id) LEFT JOIN _ffinal a USING (run_id)
),
j AS (
  SELECT *, CASE WHEN retry_span_id IS NOT NULL OR run_status = 'error' OR ack_answer IS NOT NULL THEN 'tool_error'
                 ELSE 'silent_tool_failure' END AS mode
  FROM noticed
)
SELECT run_id, mode, span_id,
       CASE WHEN mode = 'silent_tool_failure' THEN 'high' WHEN run_status = 'error' THEN 'medium' ELSE 'low' END,
       printf('%s failed%s (%s)', tool,
              CASE WHEN failures > 1 THEN printf(' %d times', failures) ELSE '' END, agentlens_clip(first_err, 160))
       || CASE WHEN mode = 'silent_tool_failure'
               THEN printf(' and the run still ended ok, with no successful retry of %s', tool)
               WHEN retry_span_id IS NOT NULL THEN printf('; a retry succeeded (span %s)', retry_span_id)
               WHEN run_status = 'error' THEN '; the run ended in error'
               ELSE printf('; the final answer tells the user: "%s"',
                           agentlens_clip(regexp_replace(ack_answer, '\\s+', ' ', 'g'), 120)) END,
       to_json({tool: tool, failures: failures, failed_spans: spans, reported_in_result: by_payload,
                retry_span_id: retry_span_id, run_status: run_status,
                acknowledged_in_answer: left(ack_answer, 500)})::VARCHAR
FROM j WHERE mode = $mode
"""


@emits("silent_tool_failure", when=TOOL_FAILED)
def silent_tool_failure(ctx: Ctx) -> pa.Table:
    ctx.shared("_ffinal")
    return ctx.rows(TOOL_FAILURES, mode="silent_tool_failure")


@emits("tool_error", when=TOOL_FAILED)
def tool_error(ctx: Ctx) -> pa.Table:
    ctx.shared("_ffinal")
    return ctx.rows(TOOL_FAILURES, mode="tool_error")


# --------------------------------------------------------------------------------------------------
# hallucinated_tool
# --------------------------------------------------------------------------------------------------

# Tool calls an LLM asked for, checked against the tools that call was offered (its own definitions,
# else every definition offered in the run) plus the allowlist; arguments that do not parse or do
# not fit the declared JSON schema; tool spans named after a tool never offered in the run (not the
# `handoff to X` span the OpenAI Agents SDK records when the model called the offered `transfer_to_X`).
HALLUCINATED_TOOL = """
WITH defs AS (
  SELECT s.run_id, s.span_id, d.name, d.parameters
  FROM (SELECT * FROM spans WHERE rowid IN (SELECT rid FROM _fs WHERE kind = 'llm')) s,
       unnest(from_json(s.tool_definitions, '[{"name":"VARCHAR","parameters":"JSON"}]')) AS u(d)
  WHERE s.kind = 'llm' AND s.tool_definitions IS NOT NULL AND d.name IS NOT NULL
),
run_defs AS (SELECT run_id, name, any_value(parameters) AS parameters FROM defs GROUP BY run_id, name),
-- (list_sort(list_distinct(...)), not list(DISTINCT ... ORDER BY): DuckDB splits that into two aggregates)
run_names AS (SELECT run_id, list_sort(list(name)) AS names FROM run_defs GROUP BY run_id),  -- one row per name
span_names AS (SELECT run_id, span_id, list_sort(list_distinct(list(name))) AS names FROM defs GROUP BY ALL),
asked AS (  -- unnest in the select list: see UNNEST_NOTE
  SELECT f.run_id, f.span_id, f.seq, unnest(from_json(s.tool_calls, '[{"name":"VARCHAR","arguments":"JSON"}]')) AS c
  FROM _fs f JOIN spans s ON s.rowid = f.rid WHERE f.leaf_llm AND s.tool_calls IS NOT NULL
),
calls AS (
  SELECT a.run_id, a.span_id, a.seq, a.c.name, a.c.arguments,
         coalesce(sn.names, rn.names, []) AS offered
  FROM asked a
  LEFT JOIN span_names sn ON sn.run_id = a.run_id AND sn.span_id = a.span_id
  LEFT JOIN run_names rn ON rn.run_id = a.run_id
),
checked AS (
  SELECT c.*,
         len(list_filter($tool_allowlist::VARCHAR[], lambda g: lower(c.name) GLOB g)) > 0 AS allowed,
         CASE WHEN c.arguments IS NOT NULL AND json_type(c.arguments) = 'VARCHAR'
                   AND trim(c.arguments->>'$') <> '' AND NOT json_valid(c.arguments->>'$')
              THEN c.arguments->>'$' END AS unparsed,
         CASE WHEN c.arguments IS NOT NULL AND json_type(c.arguments) = 'OBJECT' AND d.parameters IS NOT NULL
              THEN agentlens_schema_error(d.parameters::VARCHAR, c.arguments::VARCHAR) END AS schema_error
  FROM calls c LEFT JOIN run_defs d ON d.run_id = c.run_id AND d.name = c.name
),
problems AS (
  SELECT run_id, span_id, seq, name, 'unknown_tool' AS problem,
         CASE WHEN len(offered) > 0
              THEN printf('the model called %s, which it was not offered (offered: %s)', name,
                          array_to_string(offered[:8], ', ') || CASE WHEN len(offered) > 8 THEN ', ...' ELSE '' END)
              ELSE printf('the model called %s, which is not in [policy].tool_allowlist (%s; the trace does not '
                          'record the tools offered)', name, $tool_allowlist_shown) END AS text,
         to_json({tool: name, offered: offered}) AS detail
  FROM checked WHERE name IS NOT NULL AND NOT allowed AND (len(offered) > 0 OR $has_tool_allowlist)
    AND NOT list_contains(offered, name)
  UNION ALL
  SELECT run_id, span_id, seq, name, 'arguments_do_not_parse',
         printf('the model called %s with arguments that do not parse as JSON: %s', name, agentlens_clip(unparsed, 120)),
         to_json({tool: name, arguments: left(unparsed, 1000)})
  FROM checked WHERE unparsed IS NOT NULL
  UNION ALL
  SELECT run_id, span_id, seq, name, 'arguments_do_not_fit_schema',
         printf('the model called %s with arguments that do not fit its schema: %s', name, agentlens_clip(schema_error, 160)),
         to_json({tool: name, arguments: left(arguments::VARCHAR, 1000), schema_error: schema_error})
  FROM checked WHERE schema_error IS NOT NULL
  UNION ALL
  SELECT f.run_id, f.span_id, f.seq, f.tool, 'unknown_tool_span',
         printf('a tool span ran %s, a tool never offered to the model in this run (offered: %s)', f.tool,
                array_to_string(rn.names[:8], ', ') || CASE WHEN len(rn.names) > 8 THEN ', ...' ELSE '' END),
         to_json({tool: f.tool, offered: rn.names})
  FROM _fs f JOIN run_names rn ON rn.run_id = f.run_id
  WHERE f.kind = 'tool' AND f.tool IS NOT NULL AND NOT list_contains(rn.names, f.tool) AND NOT f.approval
    AND NOT starts_with(lower(f.tool), 'handoff to ')  -- the OpenAI Agents SDK's span of a handoff it made
    AND len(list_filter($tool_allowlist::VARCHAR[], lambda g: lower(f.tool) GLOB g)) = 0
    AND NOT EXISTS (SELECT 1 FROM checked c WHERE c.run_id = f.run_id AND c.name = f.tool)
),
g AS (
  SELECT run_id, name, problem, count(*) AS n, arg_min(span_id, seq) AS span_id, arg_min(text, seq) AS text,
         list({span_id: span_id, detail: detail} ORDER BY seq) AS spans
  FROM problems GROUP BY run_id, name, problem
)
SELECT run_id, 'hallucinated_tool', span_id, 'medium',
       text || CASE WHEN n > 1 THEN printf(' (%d times)', n) ELSE '' END,
       to_json({problem: problem, tool: name, count: n, spans: spans, allowlist: $tool_allowlist_names::VARCHAR[]})::VARCHAR
FROM g
"""


@emits("hallucinated_tool")
def hallucinated_tool(ctx: Ctx) -> pa.Table:
    return ctx.rows(HALLUCINATED_TOOL)


# --------------------------------------------------------------------------------------------------
# runaway_loop
# --------------------------------------------------------------------------------------------------

# The same tool with the same (canonical) arguments `loop_threshold` times or more, counted on tool
# spans and on the tool calls the LLM asked for (the larger count wins: a run may record only one of
# them, or record some calls as retriever spans), or the run stopped at a step cap: a failure whose error
# says so (STEP_CAP), or a final answer that is the framework's cap message (STEP_CAP_ANSWER).
RUNAWAY_LOOP = """
WITH t AS (
  SELECT run_id, span_id, seq, tool, fp, tool_arguments AS args, 'span' AS src FROM _fs WHERE fp IS NOT NULL
),
asked AS (
  SELECT run_id, span_id, seq, c.name AS tool,
         c.name || ' ' || coalesce(agentlens_canonical_json(c.arguments::VARCHAR), '') AS fp,
         c.arguments::VARCHAR AS args, 'llm' AS src
  FROM (SELECT f.run_id, f.span_id, f.seq,  -- unnest in the select list: see UNNEST_NOTE
               unnest(from_json(s.tool_calls, '[{"name":"VARCHAR","arguments":"JSON"}]')) AS c
        FROM _fs f JOIN spans s ON s.rowid = f.rid WHERE f.leaf_llm AND s.tool_calls IS NOT NULL)
  WHERE c.name IS NOT NULL
),
calls AS (SELECT * FROM t UNION ALL SELECT * FROM asked),
counts AS (SELECT run_id, tool, fp, src, count(*) AS n FROM calls GROUP BY ALL),
per_src AS (  -- lists of the repeats only (most calls are made once); a source below the threshold never wins in `rep`
  SELECT c.run_id, c.tool, c.fp, c.src, k.n, arg_min(c.span_id, c.seq) AS span_id, arg_min(c.args, c.seq) AS args,
         min(c.seq) AS first_seq, list(c.span_id ORDER BY c.seq) AS spans
  FROM calls c JOIN counts k ON k.run_id = c.run_id AND k.tool = c.tool AND k.fp = c.fp AND k.src = c.src
  WHERE k.n >= $loop_threshold
  GROUP BY c.run_id, c.tool, c.fp, c.src, k.n
),
rep AS (
  SELECT run_id, tool, fp, max(n) AS n, arg_max(span_id, (n, src = 'span')) AS span_id,
         arg_max(args, (n, src = 'span')) AS args, arg_max(spans, (n, src = 'span')) AS spans,
         arg_max(first_seq, (n, src = 'span')) AS first_seq
  FROM per_src GROUP BY run_id, tool, fp HAVING max(n) >= $loop_threshold
),
top AS (  -- the most repeated call; of two as repeated, the one that began first (never the hash table's pick)
  SELECT run_id, arg_max(tool, (n, -first_seq)) AS tool, max(n) AS n, arg_max(span_id, (n, -first_seq)) AS span_id,
         arg_max(args, (n, -first_seq)) AS args,
         list({tool: tool, arguments: left(args, 500), count: n, spans: spans} ORDER BY n DESC, first_seq) AS repeats
  FROM rep GROUP BY run_id
),
cap AS (  -- a failure at the cap (the first), else a final answer that is the framework's cap message
  SELECT run_id, arg_min(span_id, k) AS span_id, arg_min(err, k) AS err FROM (
    SELECT run_id, span_id, err, (0, seq) AS k FROM _fs WHERE failed AND is_step_cap
    UNION ALL
    SELECT run_id, span_id, 'the final answer: ' || answer, (1, 0) FROM _ffinal  -- Ctx.shared
    WHERE regexp_matches(answer, $step_cap_answer_re))
  GROUP BY run_id
)
SELECT coalesce(t.run_id, c.run_id), 'runaway_loop', coalesce(t.span_id, c.span_id),
       CASE WHEN c.run_id IS NOT NULL THEN 'high' ELSE 'medium' END,
       concat_ws('; ',
         CASE WHEN t.run_id IS NOT NULL THEN printf('%s ran %d times with the same arguments %s (loop threshold %d, %s)',
                                                    t.tool, t.n, agentlens_clip(coalesce(t.args, '{}'), 100),
                                                    $loop_threshold, $loop_threshold_src) END,
         CASE WHEN c.run_id IS NOT NULL THEN printf('the run stopped at its step cap (%s)', agentlens_clip(c.err, 120)) END),
       to_json({repeats: t.repeats, step_cap_span_id: c.span_id, step_cap_error: left(c.err, 300),
                loop_threshold: $loop_threshold})::VARCHAR
FROM top t FULL JOIN cap c ON c.run_id = t.run_id
"""


@emits("runaway_loop")
def runaway_loop(ctx: Ctx) -> pa.Table:
    ctx.shared("_ffinal")
    return ctx.rows(RUNAWAY_LOOP)


# --------------------------------------------------------------------------------------------------
# rate_limited, timeout, provider_error: failed calls by the kind of error
# --------------------------------------------------------------------------------------------------

# Failed calls (leaf LLM calls, tool calls; the root when a run records no calls) whose error is of the
# mode's kind (PREPARE's is_rate / is_timeout / is_provider: patterns.error_modes, the HTTP status first).
# A provider error is an LLM call's failure (or a call-less root's). `$mode`: the mode to find.
# Reported when the failure hurt the run: an LLM call that no later LLM call answered (the run ended on
# it, or went on without a model), a tool call (its failure is a detection of its own, tool_error or
# silent_tool_failure: this names its cause), a call-less run's failure, or `transient_error_threshold`
# failures of the kind in the run. One rate limit, 5xx or timeout of an LLM call that a retry answered is
# a healthy run (the golden signals still count the call).
CALL_ERRORS = """
WITH e AS (
  SELECT * FROM _fs
  WHERE attempt AND failed AND CASE $mode
    WHEN 'rate_limited' THEN is_rate
    WHEN 'timeout' THEN is_timeout
    WHEN 'provider_error' THEN is_provider AND (leaf_llm OR kind NOT IN ('tool', 'retriever'))
  END
),
answered AS (SELECT run_id, max(seq) AS last_ok FROM _fs WHERE leaf_llm AND NOT failed GROUP BY run_id),
g AS (
  SELECT e.run_id, count(*) AS n, arg_min(e.span_id, e.seq) AS span_id, arg_min(e.err, e.seq) AS first_err,
         string_agg(DISTINCT e.target, ', ' ORDER BY e.target) AS targets, max(e.duration_ms) AS max_ms,
         bool_or(e.leaf_llm AND coalesce(a.last_ok < e.seq, true)) AS unanswered,
         bool_or(NOT e.leaf_llm) AS not_llm,
         list({span_id: e.span_id, target: e.target, error: left(e.err, 300), duration_ms: e.duration_ms}
              ORDER BY e.seq) AS spans
  FROM e LEFT JOIN answered a USING (run_id) GROUP BY e.run_id
)
SELECT g.run_id, $mode, g.span_id, CASE WHEN r.status = 'error' OR g.unanswered THEN 'high' ELSE 'low' END,
       printf('%s %s %s (%s)%s; %s',
              CASE WHEN g.n = 1 THEN 'a call to' ELSE printf('%d calls to', g.n) END,
              coalesce(g.targets, '?'),
              CASE $mode WHEN 'rate_limited' THEN CASE WHEN g.n = 1 THEN 'was' ELSE 'were' END || ' rejected for rate limits'
                     WHEN 'timeout' THEN 'timed out'
                     ELSE 'failed at the provider' END,
              agentlens_clip(g.first_err, 160),
              CASE WHEN $mode = 'timeout' AND g.max_ms IS NOT NULL THEN printf(' after %.1f s', g.max_ms / 1000.0)
                   ELSE '' END,
              CASE WHEN r.status = 'error' THEN 'the run ended in error'
                   WHEN g.unanswered THEN 'no later LLM call was answered'
                   WHEN g.not_llm THEN 'the run recovered'
                   ELSE printf('a later call answered, but it happened %s in the run (transient_error_threshold %d, %s)',
                               CASE WHEN g.n = 1 THEN 'once' ELSE printf('%d times', g.n) END,
                               $transient_error_threshold, $transient_error_threshold_src) END),
       to_json({calls: g.n, failed_spans: g.spans, run_status: r.status, unanswered: g.unanswered,
                transient_error_threshold: $transient_error_threshold})::VARCHAR
FROM g LEFT JOIN runs r USING (run_id)
WHERE g.unanswered OR g.not_llm OR g.n >= $transient_error_threshold
"""


@emits("rate_limited", when="bool_or(attempt AND failed AND is_rate)")
def rate_limited(ctx: Ctx) -> pa.Table:
    return ctx.rows(CALL_ERRORS, mode="rate_limited")


@emits("timeout", when="bool_or(attempt AND failed AND is_timeout)")
def timeout(ctx: Ctx) -> pa.Table:
    return ctx.rows(CALL_ERRORS, mode="timeout")


@emits("provider_error", when="bool_or(attempt AND failed AND is_provider)")
def provider_error(ctx: Ctx) -> pa.Table:
    return ctx.rows(CALL_ERRORS, mode="provider_error")


# --------------------------------------------------------------------------------------------------
# cascading_retries
# --------------------------------------------------------------------------------------------------

# `retry_threshold` or more failed attempts of the same call (same tool, or LLM calls to the same
# model) in a row, with no success between them.
CASCADING_RETRIES = """
WITH a AS (SELECT run_id, span_id, seq, target, failed, err FROM _fs WHERE attempt AND target IS NOT NULL),
b AS (
  SELECT *, row_number() OVER (PARTITION BY run_id, target ORDER BY seq)
            - row_number() OVER (PARTITION BY run_id, target, failed ORDER BY seq) AS island
  FROM a
),
streaks AS (
  SELECT run_id, target, island, count(*) AS n, arg_min(span_id, seq) AS span_id, arg_min(err, seq) AS first_err,
         min(seq) AS first_seq, max(seq) AS last_seq, list(span_id ORDER BY seq) AS spans
  FROM b WHERE failed GROUP BY run_id, target, island HAVING count(*) >= $retry_threshold
),
worst AS (  -- the longest streak; of two as long, the one that began first (never the hash table's pick)
  SELECT run_id, arg_max(target, (n, -first_seq)) AS target, max(n) AS n, arg_max(span_id, (n, -first_seq)) AS span_id,
         arg_max(first_err, (n, -first_seq)) AS first_err, arg_max(last_seq, (n, -first_seq)) AS last_seq,
         list({target: target, attempts: n, spans: spans} ORDER BY n DESC, first_seq) AS streaks
  FROM streaks GROUP BY run_id
),
after AS (
  SELECT w.run_id, arg_min(a.span_id, a.seq) AS next_ok
  FROM worst w JOIN a ON a.run_id = w.run_id AND a.target = w.target AND a.seq > w.last_seq AND NOT a.failed
  GROUP BY w.run_id
)
SELECT w.run_id, 'cascading_retries', w.span_id, CASE WHEN r.status = 'error' THEN 'high' ELSE 'medium' END,
       printf('%s failed %d times in a row (%s)%s (retry threshold %d, %s)', w.target, w.n, agentlens_clip(w.first_err, 120),
              CASE WHEN x.next_ok IS NOT NULL THEN ' before a retry succeeded'
                   WHEN r.status = 'error' THEN ' and the run ended in error' ELSE '' END,
              $retry_threshold, $retry_threshold_src),
       to_json({streaks: w.streaks, next_success_span_id: x.next_ok, run_status: r.status})::VARCHAR
FROM worst w LEFT JOIN after x USING (run_id) LEFT JOIN runs r USING (run_id)
"""


@emits("cascading_retries",
       when="count(*) FILTER (WHERE attempt AND failed AND target IS NOT NULL) >= $retry_threshold")
def cascading_retries(ctx: Ctx) -> pa.Table:
    return ctx.rows(CASCADING_RETRIES)


# --------------------------------------------------------------------------------------------------
# context_overflow
# --------------------------------------------------------------------------------------------------

# A call failed because the prompt did not fit; an LLM call stopped at its token limit; or an LLM
# call's input came within `context_window_ratio` of its model's window (`_fmodels`: genai-prices
# and [models] overrides).
CONTEXT_OVERFLOW = """
WITH hits AS (
  SELECT run_id, span_id, seq, 1 AS rank, 'high' AS severity,
         printf('the prompt did not fit the model''s window: %s', agentlens_clip(err, 200)) AS text,
         to_json({span_id: span_id, reason: 'error', error: left(err, 300)}) AS detail
  FROM _fs WHERE attempt AND failed AND is_context
  UNION ALL
  SELECT run_id, span_id, seq, 2, 'medium',
         CASE WHEN finish_reason IS NOT NULL
              THEN printf('%s stopped at finish_reason=%s%s: the answer was cut off', coalesce(model, 'an LLM call'),
                          finish_reason, CASE WHEN output_tokens IS NOT NULL
                                              THEN printf(' after %d output tokens', output_tokens) ELSE '' END)
              ELSE printf('%s failed: its response came back incomplete (reason %s): the answer was cut off',
                          coalesce(model, 'an LLM call'), incomplete_reason) END,
         to_json({span_id: span_id, reason: 'finish_reason', finish_reason: coalesce(finish_reason, incomplete_reason),
                  output_tokens: output_tokens})
  FROM _fs
  WHERE leaf_llm AND lower(coalesce(finish_reason, incomplete_reason)) IN (SELECT unnest($finish_length::VARCHAR[]))
  UNION ALL
  SELECT f.run_id, f.span_id, f.seq, 3, 'medium',
         printf('input of %,d tokens is %.0f%% of %s''s %,d-token window (from %s; threshold %.0f%%, %s)',
                f.input_tokens, 100.0 * f.input_tokens / m.context_window, f.model, m.context_window,
                m.context_window_source, 100 * $context_window_ratio, $context_window_ratio_src),
         to_json({span_id: f.span_id, reason: 'near_window', input_tokens: f.input_tokens, model: f.model,
                  context_window: m.context_window, context_window_source: m.context_window_source})
  FROM _fs f JOIN _fmodels m ON m.model = f.model AND m.provider IS NOT DISTINCT FROM f.provider
  -- an agent_runs row's input tokens total its run's prompts: not one prompt against the window
  WHERE f.leaf_llm AND m.context_window IS NOT NULL AND f.input_tokens >= $context_window_ratio * m.context_window
    AND f.source IS DISTINCT FROM 'agent_runs'
)
SELECT run_id, 'context_overflow', arg_min(span_id, (rank, seq)), arg_min(severity, (rank, seq)),
       arg_min(text, (rank, seq)) || CASE WHEN count(*) > 1 THEN printf(' (+%d more)', count(*) - 1) ELSE '' END,
       to_json({hits: list(detail ORDER BY rank, seq)})::VARCHAR
FROM hits GROUP BY run_id
"""


# each of the hits' three parts needs a row of _fs: its window, the smallest of the batch's models'
CONTEXT_OVERFLOW_WHEN = """
bool_or(attempt AND failed AND is_context)
OR bool_or(leaf_llm AND list_contains($finish_length::VARCHAR[], lower(coalesce(finish_reason, incomplete_reason))))
OR bool_or(leaf_llm AND source IS DISTINCT FROM 'agent_runs'
           AND input_tokens >= $context_window_ratio * (SELECT min(context_window) FROM _fmodels))
"""


@emits("context_overflow", when=CONTEXT_OVERFLOW_WHEN)
def context_overflow(ctx: Ctx) -> pa.Table:
    return ctx.rows(CONTEXT_OVERFLOW)


# --------------------------------------------------------------------------------------------------
# prompt_injection
# --------------------------------------------------------------------------------------------------

# Content the agent read (tool and retriever results, user-role messages an LLM call was sent that are not
# the user's own request, the request of a run without call spans) matching `injection_patterns`. The
# user's request (the user messages of the run's first LLM call, wherever they are sent again) is the
# principal's, not content the agent read: a user quoting "ignore previous instructions" is not an attack.
# A match inside quotation marks that is being discussed (`such as '...'`, `wrote "..."`:
# patterns.QUOTED_MENTION) is not an instruction either. Acted on: a later side-effecting tool call whose
# arguments carry an address (email, URL host) found in that content and not in the user's own messages
# (`$address_re`): critical, even for a quoted match. Not acted on: low (the agent read it and did nothing);
# medium for a call-less run's request or an agent_runs row's (whether anything acted on it is not recorded).
# What the agent read, as PROMPT_INJECTION reads it (`src`), and the user's own request.
INJECTION_SOURCES = """
WITH msgs AS (  -- the messages LLM calls were sent; pos: a message's place in its call's input
  SELECT run_id, span_id, seq, unnest(msgs) AS m, generate_subscripts(msgs, 1) AS pos
  FROM (SELECT f.run_id, f.span_id, f.seq,  -- unnest in the select list: see UNNEST_NOTE
               try(json_transform(s.input, '[{"role":"VARCHAR","content":"VARCHAR"}]')) AS msgs
        FROM _fs f JOIN spans s ON s.rowid = f.rid WHERE f.leaf_llm)
),
first_call AS (SELECT run_id, min(seq) AS seq FROM _fs WHERE leaf_llm GROUP BY run_id),
request AS (  -- the user's own messages: those of the run's first LLM call
  SELECT m.run_id, list(m.m.content) AS contents
  FROM msgs m JOIN first_call fc ON fc.run_id = m.run_id AND fc.seq = m.seq
  WHERE m.m.role = 'user' AND m.m.content IS NOT NULL GROUP BY m.run_id
),
src AS (
  SELECT f.run_id, f.span_id, f.seq, 'the result of ' || coalesce(f.tool, f.name) AS place,
         coalesce(s.tool_result, s.output) AS text, 0 AS pos
  FROM _fs f JOIN spans s ON s.rowid = f.rid
  WHERE f.kind IN ('tool', 'retriever')
  UNION ALL
  SELECT m.run_id, m.span_id, m.seq, 'a user message', m.m.content, m.pos
  FROM msgs m LEFT JOIN request r USING (run_id)
  WHERE m.m.role = 'user' AND NOT list_contains(coalesce(r.contents, []), m.m.content)
  UNION ALL
  SELECT f.run_id, f.span_id, f.seq, 'the request', s.input, 0
  FROM _fs f JOIN spans s ON s.rowid = f.rid
  -- a call-less run's root, or an agent_runs row (its one LLM call holds the whole request it was sent)
  WHERE f.parent_span_id IS NULL AND (NOT f.has_calls OR s.source = 'agent_runs')
)
"""
# Whether anything the batch's agents read matches at all: one regex, where PROMPT_INJECTION compiles seven
# (~20 ms a statement, the quoted-mention pattern alone ~7 ms, whatever the batch's size). A batch of a few
# runs asks this first (`FEW_RUNS`): most have no match, and are spared the rest.
INJECTION_ANY = INJECTION_SOURCES + """
SELECT coalesce(bool_or(regexp_matches(text, $injection_re)), false) FROM src WHERE text IS NOT NULL
"""  # (the regex in an aggregate: in a WHERE, DuckDB pushed it into the three parts of `src`, three compiles)
PROMPT_INJECTION = INJECTION_SOURCES + """,
hits AS MATERIALIZED (  -- the regex over every text once: inlined, DuckDB ran it for each use of `hits`
  SELECT src.*, regexp_extract(text, $injection_re, 0) AS matched,
         -- still a match once the quoted mentions are taken out: an instruction, not a quotation
         regexp_matches(regexp_replace(text, $quoted_mention_re, ' ', 'g'), $injection_re) AS instruction
  FROM src WHERE text IS NOT NULL AND regexp_matches(text, $injection_re)
),
first AS (  -- the earliest instruction, else the earliest quotation; of two in one call, the earlier message
  SELECT run_id, arg_min(seq, (NOT instruction, seq, pos)) AS seq, arg_min(span_id, (NOT instruction, seq, pos)) AS span_id,
         arg_min(place, (NOT instruction, seq, pos)) AS place, arg_min(matched, (NOT instruction, seq, pos)) AS matched,
         arg_min(text, (NOT instruction, seq, pos)) AS text, bool_or(instruction) AS instruction,
         -- a set, one order whatever the batch (`list(DISTINCT ... ORDER BY)` split the aggregate in two)
         list_sort(list_distinct(list(span_id))) AS spans
  FROM hits GROUP BY run_id
),
user_addr AS (  -- addresses the user gave: the request's messages, or a call-less run's request
  SELECT run_id, flatten(list(regexp_extract_all(coalesce(text, ''), $address_re))) AS addrs
  FROM (SELECT run_id, unnest(contents) AS text FROM request
        UNION ALL SELECT run_id, text FROM src WHERE place = 'the request')
  GROUP BY run_id
),
acted AS (
  SELECT h.run_id, arg_min(t.span_id, t.seq) AS span_id, arg_min(t.tool, t.seq) AS tool,
         arg_min(list_filter(regexp_extract_all(s.tool_arguments, $address_re),
                             lambda a: list_contains(regexp_extract_all(h.text, $address_re), a)
                                       AND NOT list_contains(coalesce(ua.addrs, []), a)), t.seq) AS addrs
  FROM first h
  JOIN _fs t ON t.run_id = h.run_id AND t.seq > h.seq AND t.side_effect
  JOIN spans s ON s.rowid = t.rid
  LEFT JOIN user_addr ua ON ua.run_id = h.run_id
  WHERE len(list_filter(regexp_extract_all(coalesce(s.tool_arguments, ''), $address_re),
                        lambda a: list_contains(regexp_extract_all(h.text, $address_re), a)
                                  AND NOT list_contains(coalesce(ua.addrs, []), a))) > 0
  GROUP BY h.run_id
)
SELECT h.run_id, 'prompt_injection', h.span_id,
       CASE WHEN a.run_id IS NOT NULL THEN 'critical' WHEN h.place = 'the request' THEN 'medium' ELSE 'low' END,
       printf('%s %s an instruction aimed at the agent ("%s")', h.place,
              CASE WHEN h.instruction THEN 'carries' ELSE 'quotes' END,
              agentlens_clip(regexp_replace(h.matched, '\\s+', ' ', 'g'), 100))
       || CASE WHEN a.run_id IS NOT NULL
               THEN printf(', and the agent then called %s with %s, found only in that content', a.tool,
                           array_to_string(a.addrs, ', '))
               ELSE '; no action on it followed' END,
       to_json({span_id: h.span_id, place: h.place, matched: left(h.matched, 300), quoted: NOT h.instruction,
                excerpt: left(h.text, 500), spans_with_injection: h.spans,
                acted_span_id: a.span_id, acted_tool: a.tool, addresses: a.addrs})::VARCHAR
FROM first h LEFT JOIN acted a USING (run_id)
WHERE h.instruction OR a.run_id IS NOT NULL
"""  # noqa: S608 - fixed SQL texts

@emits("prompt_injection")
def prompt_injection(ctx: Ctx) -> pa.Table:
    if ctx.runs() <= FEW_RUNS and not ctx.one(INJECTION_ANY):
        return ROW_SCHEMA.empty_table()
    return ctx.rows(PROMPT_INJECTION)


# --------------------------------------------------------------------------------------------------
# duplicate_side_effect
# --------------------------------------------------------------------------------------------------

# A side-effecting tool (policy list) that ran successfully two or more times with the same canonical
# arguments in one run, or that succeeded after an attempt with the same arguments whose outcome is unknown:
# a timeout, a lost connection or an unrecorded reason (is_timeout, patterns.OUTCOME_UNKNOWN; not an error
# the tool itself returned). The request of that attempt went out: the retry may have done it twice.
DUPLICATE_SIDE_EFFECT = """
WITH c AS (
  SELECT run_id, tool, fp, seq, span_id, tool_arguments, irreversible, failed, err,
         failed AND NOT failed_by_payload AND (is_timeout OR regexp_matches(err, $outcome_unknown_re)) AS uncertain
  FROM _fs WHERE kind = 'tool' AND side_effect AND fp IS NOT NULL
),
g AS (
  SELECT run_id, tool, fp, count(*) FILTER (WHERE NOT failed) AS ok, max(seq) FILTER (WHERE NOT failed) AS last_ok
  FROM c WHERE NOT failed OR uncertain GROUP BY run_id, tool, fp HAVING count(*) FILTER (WHERE NOT failed) >= 1
),
d AS (  -- the successes, and the uncertain attempts before the last success
  SELECT g.run_id, g.tool, g.fp, any_value(g.ok) AS ok, count(*) FILTER (WHERE c.uncertain) AS uncertain,
         arg_min(c.span_id, c.seq) AS span_id, arg_min(c.tool_arguments, c.seq) AS args,
         bool_or(c.irreversible) AS irreversible, list(c.span_id ORDER BY c.seq) AS spans,
         arg_min(c.err, c.seq) FILTER (WHERE c.uncertain) AS uncertain_err,
         list({span_id: c.span_id, error: left(c.err, 300)} ORDER BY c.seq) FILTER (WHERE c.uncertain) AS uncertain_spans
  FROM g JOIN c ON c.run_id = g.run_id AND c.tool = g.tool AND c.fp = g.fp
                AND (NOT c.failed OR (c.uncertain AND c.seq < g.last_ok))
  GROUP BY g.run_id, g.tool, g.fp
  HAVING any_value(g.ok) >= 2 OR count(*) FILTER (WHERE c.uncertain) >= 1
)
SELECT run_id, 'duplicate_side_effect', span_id, CASE WHEN irreversible THEN 'critical' ELSE 'high' END,
       CASE WHEN ok >= 2
            THEN printf('%s ran %d times with the same arguments %s', tool, ok, agentlens_clip(coalesce(args, '{}'), 120))
            ELSE printf('%s was retried with the same arguments %s after an attempt whose outcome is unknown (%s): '
                        'the first attempt may have completed', tool, agentlens_clip(coalesce(args, '{}'), 120),
                        agentlens_clip(uncertain_err, 100)) END
       || printf(' (a side-effect tool by the %s)', $side_effect_tools_by),
       to_json({tool: tool, count: ok + uncertain, succeeded: ok, spans: spans, arguments: left(args, 1000),
                irreversible: irreversible, uncertain_attempts: uncertain_spans})::VARCHAR
FROM d
"""


@emits("duplicate_side_effect",
       when="count(*) FILTER (WHERE kind = 'tool' AND side_effect AND fp IS NOT NULL) >= 2")
def duplicate_side_effect(ctx: Ctx) -> pa.Table:
    return ctx.rows(DUPLICATE_SIDE_EFFECT)


# --------------------------------------------------------------------------------------------------
# budget_exceeded
# --------------------------------------------------------------------------------------------------

# A run's totals over a `[policy]` cap (each cap's parameter is its config key; `_note`: where it came from).
BUDGET_EXCEEDED = """
WITH r AS (
  SELECT run_id, root_span_id, cost_usd,
         CASE WHEN input_tokens IS NOT NULL OR output_tokens IS NOT NULL
              THEN coalesce(input_tokens, 0) + coalesce(output_tokens, 0) END AS tokens,
         llm_calls, tool_calls, duration_ms / 1000.0 AS seconds
  FROM runs SEMI JOIN _fruns USING (run_id)
),
o AS (
  SELECT r.*,
    CASE WHEN cost_usd > $max_cost_usd_per_run
         THEN printf('cost $%.2f > $%.2f cap%s', cost_usd, $max_cost_usd_per_run, $max_cost_usd_per_run_note) END AS c1,
    CASE WHEN tokens > $max_tokens_per_run
         THEN printf('%,d tokens > %,d cap%s', tokens, $max_tokens_per_run, $max_tokens_per_run_note) END AS c2,
    CASE WHEN llm_calls > $max_llm_calls_per_run
         THEN printf('%d LLM calls > %d cap%s', llm_calls, $max_llm_calls_per_run, $max_llm_calls_per_run_note)
    END AS c3,
    CASE WHEN tool_calls > $max_tool_calls_per_run
         THEN printf('%d tool calls > %d cap%s', tool_calls, $max_tool_calls_per_run, $max_tool_calls_per_run_note)
    END AS c4,
    CASE WHEN seconds > $max_duration_s_per_run
         THEN printf('%.0f s > %.0f s cap%s', seconds, $max_duration_s_per_run, $max_duration_s_per_run_note) END AS c5,
    greatest(cost_usd / $max_cost_usd_per_run::DOUBLE, tokens / $max_tokens_per_run::DOUBLE,
             llm_calls / $max_llm_calls_per_run::DOUBLE, tool_calls / $max_tool_calls_per_run::DOUBLE,
             seconds / $max_duration_s_per_run::DOUBLE) AS worst_ratio
  FROM r
)
SELECT run_id, 'budget_exceeded', root_span_id, CASE WHEN worst_ratio >= 2 THEN 'high' ELSE 'medium' END,
       'over budget: ' || concat_ws('; ', c1, c2, c3, c4, c5),
       to_json({cost_usd: cost_usd, tokens: tokens, llm_calls: llm_calls, tool_calls: tool_calls,
                duration_s: seconds, over: list_filter([c1, c2, c3, c4, c5], lambda x: x IS NOT NULL),
                worst_ratio: worst_ratio})::VARCHAR
FROM o WHERE coalesce(c1, c2, c3, c4, c5) IS NOT NULL
"""


@emits("budget_exceeded")
def budget_exceeded(ctx: Ctx) -> pa.Table:
    return ctx.rows(BUDGET_EXCEEDED)


# --------------------------------------------------------------------------------------------------
# refusal
# --------------------------------------------------------------------------------------------------

# The final answer (the run's output, else the last successful LLM call's output: the last
# assistant message's text) matches REFUSAL, or an LLM call finished for a content filter.
REFUSAL = """
WITH final AS (SELECT * FROM _ffinal),  -- Ctx.shared
filtered AS (
  SELECT run_id, arg_min(span_id, seq) AS span_id, arg_min(coalesce(finish_reason, incomplete_reason), seq) AS finish_reason,
         arg_min(finish_reason IS NULL, seq) AS incomplete
  FROM _fs WHERE leaf_llm AND lower(coalesce(finish_reason, incomplete_reason)) IN (SELECT unnest($finish_refusal::VARCHAR[]))
  GROUP BY run_id
),
hits AS (
  SELECT coalesce(a.run_id, f.run_id) AS run_id, coalesce(f.span_id, a.span_id) AS span_id,
         a.answer, f.finish_reason, f.incomplete,
         coalesce(regexp_matches(left(a.answer, 400), $refusal_re), false) AS declined
  FROM final a FULL JOIN filtered f USING (run_id)
)
SELECT run_id, 'refusal', span_id, 'medium',
       CASE WHEN finish_reason IS NOT NULL AND NOT declined
            THEN CASE WHEN incomplete
                      THEN printf('an LLM call failed: its response came back incomplete (reason %s, content filter)',
                                  finish_reason)
                      ELSE printf('an LLM call finished with finish_reason=%s (content filter)', finish_reason) END
            ELSE printf('the final answer declines the task: "%s"', agentlens_clip(regexp_replace(answer, '\\s+', ' ', 'g'), 120)) END,
       to_json({span_id: span_id, answer: left(answer, 500), finish_reason: finish_reason})::VARCHAR
FROM hits WHERE declined OR finish_reason IS NOT NULL
"""


@emits("refusal")
def refusal(ctx: Ctx) -> pa.Table:
    ctx.shared("_ffinal")
    return ctx.rows(REFUSAL)


# --------------------------------------------------------------------------------------------------
# unapproved_action
# --------------------------------------------------------------------------------------------------

# An irreversible tool (policy list) ran with no approval before it: no span named like an approval
# (`approval_spans`) that ended before it started without failing or being denied, and no span event
# named like one.
UNAPPROVED_ACTION = """
WITH irr AS (SELECT run_id, span_id, seq, tool, started_at FROM _fs WHERE kind = 'tool' AND irreversible),
ok AS (SELECT run_id, seq, coalesce(ended_at, started_at) AS at FROM _fs WHERE approval AND NOT failed AND NOT denied),
ev AS (
  SELECT s.run_id, try_cast(e.time AS TIMESTAMPTZ) AS at
  FROM (SELECT run_id, events FROM spans WHERE rowid IN (SELECT rid FROM _fs)) s,
       unnest(from_json(s.events, '[{"name":"VARCHAR","time":"VARCHAR"}]')) AS u(e)
  WHERE s.events IS NOT NULL AND len(list_filter($approval_spans::VARCHAR[], lambda g: lower(e.name) GLOB g)) > 0
)
SELECT i.run_id, 'unapproved_action', i.span_id, 'critical',
       printf('%s ran with no approval step before it (irreversible by the %s; no step named %s ran before it)',
              i.tool, $irreversible_tools_by, $approval_spans_shown),
       to_json({tool: i.tool, span_id: i.span_id, approvals_seen_before: 0})::VARCHAR
FROM irr i
WHERE NOT EXISTS (SELECT 1 FROM ok a WHERE a.run_id = i.run_id AND a.seq < i.seq
                  AND (a.at IS NULL OR i.started_at IS NULL OR a.at <= i.started_at))
  AND NOT EXISTS (SELECT 1 FROM ev WHERE ev.run_id = i.run_id AND ev.at <= i.started_at)
"""


@emits("unapproved_action", when="bool_or(kind = 'tool' AND irreversible)")
def unapproved_action(ctx: Ctx) -> pa.Table:
    return ctx.rows(UNAPPROVED_ACTION)


# The rules, in the catalogue's order (../shared/reference/failure-modes.md).
CLASSIFIERS: tuple[Classifier, ...] = (
    silent_tool_failure,
    hallucinated_tool,
    runaway_loop,
    rate_limited,
    cascading_retries,
    timeout,
    provider_error,
    context_overflow,
    prompt_injection,
    duplicate_side_effect,
    budget_exceeded,
    refusal,
    unapproved_action,
    tool_error,
)

# every mode the rules emit (public names: never rename), catalogue order
MODES = modes_of(CLASSIFIERS)


def apply(classifier: Classifier, ctx: Ctx) -> pa.Table:
    """The classifier's rows, checked against the modes it declares (`@emits`)."""
    declared = getattr(classifier, "modes", None)
    if not declared:
        raise TypeError(f"classifier {getattr(classifier, '__name__', classifier)!s} declares no modes: "
                        "mark it with @emits(mode, ...) (agentlens.failures.classifiers)")
    table = classifier(ctx)
    emitted = set(table.column("mode").unique().to_pylist()) if table.num_rows else set()
    undeclared = emitted - set(declared)
    if undeclared:
        raise ValueError(f"classifier {classifier.__name__} emitted {', '.join(sorted(map(str, undeclared)))}, "
                         f"which it does not declare (it declares {', '.join(classifier.modes)})")
    return table


ALL_SQL = {
    "PREPARE": PREPARE, "FINAL_ANSWERS": FINAL_ANSWERS, "TOOL_FAILURES": TOOL_FAILURES, "HALLUCINATED_TOOL": HALLUCINATED_TOOL,
    "RUNAWAY_LOOP": RUNAWAY_LOOP, "CALL_ERRORS": CALL_ERRORS, "CASCADING_RETRIES": CASCADING_RETRIES,
    "CONTEXT_OVERFLOW": CONTEXT_OVERFLOW, "PROMPT_INJECTION": PROMPT_INJECTION, "INJECTION_ANY": INJECTION_ANY,
    "DUPLICATE_SIDE_EFFECT": DUPLICATE_SIDE_EFFECT, "BUDGET_EXCEEDED": BUDGET_EXCEEDED, "REFUSAL": REFUSAL,
    "UNAPPROVED_ACTION": UNAPPROVED_ACTION,
}
