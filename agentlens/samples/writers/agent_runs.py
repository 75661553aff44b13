"""agent_runs.csv: the rows of an application's own `agent_runs` table (`CSV_COLUMNS`): the request
(model, messages, metadata), the response or `{"error": ...}`, token counts, cost and creation time of
each run, simulated here with the same scenarios and simulator as the OTLP runs."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Any

from ..content import FEATURE_TOOLS, INJECTION_TEXT, SYSTEM_PROMPT
from ..errors import llm_error
from ..helpers import NS, cjson, iso_z
from ..payloads import make_ticket
from ..run import Run, usage_totals
from ..scenarios import FAILURE_MODES, SCENARIOS, Ctx, ticket_for
from ..simulator import Sim
from . import FILE_CSV
from .labels import run_label

CSV_COLUMNS = ("id", "user_id", "request", "response", "tokens_in", "tokens_out", "cost_usd", "created_at")


def _csv_row(run: Run, seed: int, row_id: int) -> tuple[dict[str, Any], str]:
    rng = random.Random(f"{seed}/{run.file}/{run.index}/{run.scenario}")
    mode = run.scenario
    scen_map = {"prompt_injection": "healthy", "xss": "xss", "refusal": "refusal"}
    sim_scenario = scen_map.get(mode, "healthy")
    if mode == "prompt_injection":
        run.user_text = make_ticket(rng, run, extra=INJECTION_TEXT)
    else:
        run.scenario = sim_scenario
        run.user_text = ticket_for(run, rng)
        run.scenario = mode
    sim = Sim(run, rng, run.start)
    status = "ok"
    error: str | None = None
    answer: str | None = SCENARIOS[sim_scenario].fn(Ctx(sim, run, rng)) if mode not in (
        "provider_error", "rate_limited", "timeout", "context_overflow") else None
    m = run.model
    if mode == "provider_error":
        error = "InternalServerError: " + llm_error("server", m, rng).message
    elif mode == "rate_limited":
        error = "RateLimitError: " + llm_error("rate_limit", m, rng).message
    elif mode == "timeout":
        error = "APITimeoutError: Request timed out."
    elif mode == "context_overflow":
        toks = m.context_window + rng.randint(800, 9000)
        error = ("BadRequestError: Error code: 400 - {'error': {'message': \"This model's maximum context length "
                 f"is {m.context_window} tokens. However, your messages resulted in {toks} tokens. Please reduce "
                 "the length of the messages.\", 'type': 'invalid_request_error', 'param': 'messages', "
                 "'code': 'context_length_exceeded'}}")
    if error is not None:
        status = "error"
        # a failed request returns no usage; tokens are those of the calls that succeeded before it
        tin = tout = 0
        if mode != "context_overflow" and rng.random() < 0.5:
            tin = sim.input_tokens(SYSTEM_PROMPT, sim.messages, FEATURE_TOOLS[run.feature])
            tout = rng.randint(14, 30)
        response = cjson({"error": error})
    else:
        tin, tout = usage_totals(run)
        response = answer or ""
    if mode == "budget_exceeded":
        tin = rng.randint(290_000, 520_000)
        tout = rng.randint(12_000, 26_000)
    run.end = max(sim.t, run.start + NS) + int(rng.uniform(0.005, 0.05) * NS)
    cost = tin * m.usd_in / 1e6 + tout * m.usd_out / 1e6
    request = {
        "model": m.name,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": run.user_text}],
        "temperature": 0.2,
        "metadata": {"feature": run.feature, "customer_id": run.customer.id, "session_id": run.session_id},
    }
    row = {
        "id": row_id, "user_id": run.customer.user_id, "request": cjson(request), "response": response,
        "tokens_in": tin, "tokens_out": tout, "cost_usd": f"{cost:.6f}", "created_at": iso_z(run.end),
    }
    run.answer = answer
    run.modes = (mode,) if mode in FAILURE_MODES else ()
    return row, status


def write_agent_runs(out_dir: Path, seed: int, runs: list[Run]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Write agent_runs.csv: a row per run, in order of creation (`created_at`), ids from 1001. Returns the
    file's counts and the runs' labels."""
    rows: list[tuple[int, dict[str, Any], tuple[str, ...], str]] = []
    for r in runs:
        row, status = _csv_row(r, seed, 0)
        rows.append((r.end, row, r.modes, status))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    labels: list[dict[str, Any]] = []
    for n, (_, row, modes, status) in enumerate(sorted(rows, key=lambda x: x[0])):
        row["id"] = 1001 + n
        w.writerow(row)
        labels.append(run_label(str(row["id"]), FILE_CSV, modes, status))
    data = buf.getvalue().encode("utf-8")
    (out_dir / FILE_CSV).write_bytes(data)
    return {"bytes": len(data), "lines": len(rows) + 1, "runs": len(rows)}, labels
