"""Seeded generator of realistic sample traces for a customer-support agent.

``generate(out_dir)`` writes, for the agent "support-agent" (answers tickets with an LLM and tools):

- ``support-agent.openinference.otlp.jsonl``: OTLP JSON lines (one ExportTraceServiceRequest per line),
  spans in the OpenInference dialect (openinference-instrumentation-openai / -anthropic).
- ``support-agent.genai.otlp.jsonl``: OTLP JSON lines in the OpenTelemetry GenAI conventions
  (``invoke_agent`` / ``chat`` / ``execute_tool``); about a fifth of its runs come from an older
  deployment instrumented with OpenLLMetry 0.47 (legacy ``gen_ai.system``, ``gen_ai.prompt.N.*``,
  ``gen_ai.usage.prompt_tokens`` names), and a few from a batch worker that does not capture content.
- ``agent_runs.csv``: rows of an application's own ``agent_runs`` table.
- ``labels.jsonl``: the failure modes deliberately injected into each run (names from
  ``FAILURE_MODES``) and the expected run status: ground truth for the classifiers.
- ``README.md``: what the files are and how they were made.

Everything is derived from ``random.Random`` seeded with ``seed`` and from ``start``; the wall clock is
never read, so the same arguments always produce byte-identical files. Standard library only.

The parts, each module importing only from those above it:

    content.py     the agent's world as data: models, tools, prompts, ticket texts, products, KB articles
    helpers.py     seeded ids, JSON as SDKs dump it, time and money formats
    run.py         a run, independent of any trace format (the dataclasses the simulator fills)
    errors.py      errors of LLM and tool calls, worded as the SDKs word them
    payloads.py    tickets and tool results built from a run
    simulator.py   `Sim`: the conversation, timings and token counts of one run
    scenarios.py   healthy flows and failure injections (`SCENARIOS`, `FAILURE_MODES`), `execute()`
    planner.py     who, when, which model, order and scenario, for each run
    writers/       one module per file written (see writers/__init__.py)
    __init__.py    `generate()`: plan, execute, assign pods, write; `main()`: the command line
                   (`python -m agentlens.samples OUT_DIR`, see __main__.py)

Conventions the data follows (so that consumers can be tested against them):
- Input token counts INCLUDE cached tokens; cached tokens are also given separately on some calls.
  Output token counts include reasoning tokens. Counts are consistent with the text (about chars/4).
- The GenAI root span (``invoke_agent support-agent``) carries the run's usage totals, equal to the
  sum over its LLM child spans: a consumer must not count them twice.
- Irreversible tools are ``refund_order`` and ``delete_account``; a healthy run always has a
  ``request_approval`` tool span before them. ``send_email`` / ``refund_order`` / ``create_ticket`` /
  ``delete_account`` are side-effecting.
- Framework-recorded tool results longer than ``writers.otlp.TOOL_RESULT_RECORD_LIMIT`` characters
  are truncated with a visible marker; LLM message content is recorded in full (except on the batch
  worker, which records no message content at all).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .content import (
    APPROVAL_TOOL,
    ATTACKER_EMAIL,
    FEATURES,
    IRREVERSIBLE_TOOLS,
    MODELS,
    REFUSAL_TEXT,
    SIDE_EFFECT_TOOLS,
)
from .planner import Planner, scaled_failures, split_runs
from .run import Run
from .scenarios import CSV_FAILURES, DEFAULT_SPLIT, FAILURE_MODES, GENAI_FAILURES, OI_FAILURES, execute
from .writers import (
    FILE_CSV,
    FILE_GENAI,
    FILE_LABELS,
    FILE_OPENINFERENCE,
    FILE_README,
    OUTPUT_FILES,
    openinference,
    otlp_genai,
)
from .writers.agent_runs import CSV_COLUMNS, write_agent_runs
from .writers.labels import write_labels
from .writers.otlp import write_otlp
from .writers.readme import write_readme

__all__ = [
    "APPROVAL_TOOL",
    "ATTACKER_EMAIL",
    "CSV_COLUMNS",
    "DEFAULT_START",
    "FAILURE_MODES",
    "FEATURES",
    "FILE_CSV",
    "FILE_GENAI",
    "FILE_LABELS",
    "FILE_OPENINFERENCE",
    "FILE_README",
    "IRREVERSIBLE_TOOLS",
    "OUTPUT_FILES",
    "REFUSAL_TEXT",
    "SIDE_EFFECT_TOOLS",
    "generate",
    "main",
]

DEFAULT_START = datetime(2026, 11, 10, tzinfo=UTC)


def _plan_all(seed: int, runs: int, days: int, start: datetime) -> tuple[Planner, list[Run], list[Run], list[Run]]:
    """The runs of each file (OpenInference, GenAI, agent_runs), with their scenarios and sessions."""
    n_oi, n_genai, n_csv = split_runs(runs)
    planner = Planner(seed, start, days)
    oi = planner.plan(FILE_OPENINFERENCE, n_oi,
                      scaled_failures(OI_FAILURES, n_oi, DEFAULT_SPLIT[0]) + (["xss"] if n_oi >= 10 else []))
    genai = planner.plan(FILE_GENAI, n_genai, scaled_failures(GENAI_FAILURES, n_genai, DEFAULT_SPLIT[1]))
    csv_runs = planner.plan(FILE_CSV, n_csv, scaled_failures(CSV_FAILURES, n_csv, DEFAULT_SPLIT[2])
                            + (["xss"] if n_csv >= 10 else []))
    for r in csv_runs:
        if r.scenario == "budget_exceeded":
            r.model = MODELS["gpt-4o"]
    # sessions: a customer's follow-up within a few hours (same system) continues the session
    for r in sorted(oi + genai + csv_runs, key=lambda r: (r.start, r.file, r.index)):
        r.session_id = planner.session_for(r.file, r.customer, r.start)
    return planner, oi, genai, csv_runs


def generate(
    out_dir: str | Path,
    *,
    seed: int = 42,
    runs: int = 120,
    days: int = 5,
    start: datetime | None = None,
) -> dict[str, Any]:
    """Write the sample files into ``out_dir`` and return a manifest (files written and counts)."""
    if runs < 0 or days < 1:
        raise ValueError("runs must be >= 0 and days >= 1")
    start = start or DEFAULT_START
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    planner, oi, genai, csv_runs = _plan_all(seed, runs, days, start)
    for r in oi + genai:
        execute(r, seed)
    oi_pods = openinference.assign_pods(planner.rng, oi)
    genai_pods = otlp_genai.assign_pods(planner.rng, genai)

    files: dict[str, dict[str, Any]] = {}
    files[FILE_OPENINFERENCE], oi_labels = write_otlp(out, FILE_OPENINFERENCE, seed, oi, oi_pods,
                                                      openinference.render)
    files[FILE_GENAI], genai_labels = write_otlp(out, FILE_GENAI, seed, genai, genai_pods, otlp_genai.render)
    files[FILE_GENAI]["legacy_runs"] = sum(r.legacy for r in genai)
    files[FILE_GENAI]["no_content_runs"] = sum(not r.capture_content for r in genai)
    files[FILE_CSV], csv_labels = write_agent_runs(out, seed, csv_runs)
    labels = oi_labels + genai_labels + csv_labels
    files[FILE_LABELS] = write_labels(out, labels)

    modes = {m: sum(m in lab["modes"] for lab in labels) for m in FAILURE_MODES}
    manifest: dict[str, Any] = {
        "seed": seed, "runs": runs, "days": days, "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": files, "modes": modes,
        "healthy_runs": sum(not lab["modes"] for lab in labels),
        "error_runs": sum(lab["status"] == "error" for lab in labels),
    }
    files[FILE_README] = write_readme(out, manifest)
    manifest["total_bytes"] = sum(f["bytes"] for f in files.values())
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: `python -m agentlens.samples OUT_DIR [--seed N] [--runs N] [--days N]`."""
    p = argparse.ArgumentParser(prog="python -m agentlens.samples",
                                description="Write seeded sample traces of a support agent.")
    p.add_argument("out_dir", help="directory to write into (created if missing)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--runs", type=int, default=120, help="total runs over the three trace files")
    p.add_argument("--days", type=int, default=5)
    args = p.parse_args(argv)
    manifest = generate(args.out_dir, seed=args.seed, runs=args.runs, days=args.days)
    for name, info in manifest["files"].items():
        extra = f", {info['runs']} runs" if "runs" in info else ""
        extra += f", {info['spans']} spans" if "spans" in info else ""
        print(f"{Path(args.out_dir) / name}: {info['bytes']} bytes{extra}")
    modes = ", ".join(f"{m}={n}" for m, n in manifest["modes"].items())
    print(f"healthy runs: {manifest['healthy_runs']}/{manifest['runs']}; modes: {modes}")
    return 0
