"""Eval cases from bad runs: the inputs, outputs and failure evidence of real production runs, one
JSON object per line, so an eval set is drawn from real traffic.

A case (keys in this order; every value comes from the trace, untrusted):

    {"id": "agentlens:<run_id>",          stable: re-exporting gives the same ids and bytes
     "run_id", "source", "agent_name", "started_at", "feature", "customer_id", "model",
     "input":      the first LLM call's input messages [{role, content, tool_calls?, tool_call_id?}]
                   (what to replay), else the run's input (JSON when it is JSON, else text),
     "output":     the run's final output (JSON when it is JSON, else text),
     "tools":      the tool definitions the run's LLM calls were offered [{name, description, parameters}],
     "trajectory": the run's LLM, tool and retriever calls in order: [{span_id, kind, name, tool,
                   arguments, result, status, error, model, finish_reason, tool_calls}],
     "failures":   what was found: [{mode, severity, span_id, explanation, evidence}], most severe first,
     "expected":   {"absent_modes": [...]}: a fixed agent must not show these modes on this input,
     "metadata":   {status, cost_usd, input_tokens, output_tokens, llm_calls, tool_calls, duration_ms,
                    policy_hash}}
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ..core.timeparse import parse_time
from .report import _modes

if TYPE_CHECKING:
    from ..store import Store

CASES = """
WITH bad AS (
  SELECT f.run_id FROM failures f JOIN runs r USING (run_id)
  WHERE (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], f.mode))
    AND (?::TIMESTAMPTZ IS NULL OR r.started_at >= ?::TIMESTAMPTZ)
    AND (?::VARCHAR IS NULL OR list_position(['critical', 'high', 'medium', 'low'], f.severity)
                                <= list_position(['critical', 'high', 'medium', 'low'], ?::VARCHAR))
  GROUP BY f.run_id
),
s AS (SELECT sp.* FROM spans sp SEMI JOIN bad USING (run_id)),
first_llm AS (
  SELECT run_id, arg_min(input, started_at) AS messages FROM s WHERE kind = 'llm' AND input IS NOT NULL GROUP BY run_id
),
defs AS (
  SELECT run_id, list(DISTINCT d ORDER BY d.name) AS tools
  FROM s, unnest(from_json(tool_definitions, '[{"name":"VARCHAR","description":"VARCHAR","parameters":"JSON"}]')) AS u(d)
  WHERE kind = 'llm' AND tool_definitions IS NOT NULL GROUP BY run_id
),
traj AS (
  SELECT run_id, list({
           span_id: span_id, kind: kind, name: name, tool: tool_name,
           arguments: CASE WHEN tool_arguments IS NOT NULL THEN CASE WHEN json_valid(tool_arguments) THEN tool_arguments::JSON ELSE to_json(tool_arguments) END END,
           result: CASE WHEN tool_result IS NOT NULL THEN CASE WHEN json_valid(tool_result) THEN tool_result::JSON ELSE to_json(tool_result) END END,
           status: status, error: nullif(concat_ws(': ', error_type, status_message), ''),
           model: model, finish_reason: finish_reason, tool_calls: tool_calls
         } ORDER BY started_at NULLS LAST, span_id) AS steps
  FROM s WHERE kind IN ('llm', 'tool', 'retriever') GROUP BY run_id
),
fl AS (
  SELECT run_id, list({mode: mode, severity: severity, span_id: span_id, explanation: explanation, evidence: evidence}
                      ORDER BY list_position(['critical', 'high', 'medium', 'low'], severity), mode, span_id) AS failures,
         list(DISTINCT mode ORDER BY mode) AS modes, any_value(policy_hash) AS policy_hash
  FROM failures SEMI JOIN bad USING (run_id) GROUP BY run_id
)
SELECT to_json({
  id: 'agentlens:' || r.run_id, run_id: r.run_id, source: r.source, agent_name: r.agent_name,
  started_at: strftime(r.started_at, '%Y-%m-%dT%H:%M:%S.%fZ'), feature: r.feature, customer_id: r.customer_id,
  model: r.model,
  input: coalesce(fi.messages::JSON, CASE WHEN r.input IS NOT NULL THEN CASE WHEN json_valid(r.input) THEN r.input::JSON ELSE to_json(r.input) END END),
  output: CASE WHEN r.output IS NOT NULL THEN CASE WHEN json_valid(r.output) THEN r.output::JSON ELSE to_json(r.output) END END,
  tools: coalesce(d.tools, []),
  trajectory: coalesce(t.steps, []),
  failures: fl.failures,
  expected: {absent_modes: fl.modes},
  metadata: {status: r.status, cost_usd: r.cost_usd, input_tokens: r.input_tokens, output_tokens: r.output_tokens,
             llm_calls: r.llm_calls, tool_calls: r.tool_calls, duration_ms: r.duration_ms,
             policy_hash: fl.policy_hash}
})::VARCHAR AS line
FROM bad JOIN runs r USING (run_id) JOIN fl USING (run_id)
LEFT JOIN first_llm fi USING (run_id) LEFT JOIN defs d USING (run_id) LEFT JOIN traj t USING (run_id)
ORDER BY r.started_at NULLS LAST, r.run_id
LIMIT ?
"""

ALL_SQL = {"CASES": CASES}
SEVERITIES = ("critical", "high", "medium", "low")


def export_evals(lens: Store, out: str | Path | IO[str], mode: str | list[str] | None = None,
                 since: dt.datetime | dt.date | str | None = None, min_severity: str | None = None,
                 limit: int | None = None) -> int:
    """Write one eval case per failing run (JSON Lines) to `out` (a path, `-` for stdout, or a text
    stream). Returns the number of cases."""
    modes = _modes(mode)
    since = parse_time(since, what="since")
    if min_severity is not None and min_severity not in SEVERITIES:
        raise ValueError(f"unknown severity {min_severity!r}; use one of {', '.join(SEVERITIES)}")
    cur = lens.con.execute(CASES, [modes, modes, since, since, min_severity, min_severity,
                                   limit if limit is not None else 2**62])
    n = 0

    def write(f: IO[str]) -> int:
        count = 0
        while rows := cur.fetchmany(1000):
            for (line,) in rows:
                f.write(line + "\n")
                count += 1
        return count

    if isinstance(out, str | Path):
        if str(out) == "-":
            n = write(sys.stdout)
        else:
            with Path(out).open("w", encoding="utf-8", newline="\n") as f:
                n = write(f)
    else:
        n = write(out)
    return n
