"""The main job (`agentlens demo`, run by `make demo`): ingest, then print each section in order.

A section is a function of the Lens returning something printable (a result object, or a line of text).
Adding a report to the main job is adding it to `SECTIONS`. The sections are presentation: they pick
what the library computes (signals, costs, failures) and add the words and the next commands to try.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from ..core.results import Result
from ..store import Store as Lens


def overview(lens: Lens) -> Any:
    return lens.overview()


def costs(lens: Lens) -> Any:
    """The cost report by feature, as `agentlens costs` prints it."""
    from ..metrics.costs import report
    from .costs import cost_result

    return cost_result(report(lens, by=("feature",)))


def failure_modes(lens: Lens) -> Any:
    """The failure report: counts per mode and the ten worst runs."""
    from ..failures.report import report

    return report(lens, limit=10)


SIGNALS_MORE = "agentlens signals --by feature --every 1h  (--format json|csv, --table llm|tools|errors)"


def golden_signals(lens: Lens) -> Result:
    """The golden signals of every run by UTC day, the worst features, and the four signals per feature."""
    from ..metrics.signals import display, latency_text, share_text, signals, split_sections

    daily = signals(lens, every="1d")
    by_feature = signals(lens, by="feature")
    facts: dict[str, Any] = {}
    if daily.height:
        total = signals(lens).row(0, named=True)
        facts = {
            "runs": total["runs"], "error rate": share_text(total["error_rate"], total["errors"], "runs"),
            "run latency p50 / p95 / p99 (ms)": latency_text(total),
            "rate-limited LLM calls": share_text(total["rate_limited_share"], total["rate_limited_calls"], "calls"),
            "runs hit by a rate limit": total["rate_limited_runs"],
        }
        if total["implicit_errors"] is not None:
            facts["implicit errors (runs with a failure mode)"] = share_text(
                total["implicit_error_rate"], total["implicit_errors"], "runs")
    named = by_feature.filter(pl.col("feature").is_not_null())
    if named.height:
        worst = named.sort(["error_rate", "runs"], descending=True).row(0, named=True)
        facts["worst feature by error rate"] = f"{worst['feature']} ({worst['error_rate']:.1%} of {worst['runs']} runs)"
        timed = named.filter(pl.col("latency_p95_ms").is_not_null())
        if timed.height:
            slow = timed.sort("latency_p95_ms", descending=True).row(0, named=True)
            facts["slowest feature (run p95)"] = f"{slow['feature']} ({slow['latency_p95_ms']:,.0f} ms)"
    facts["more"] = SIGNALS_MORE
    tables = {f"{name} per day": df for name, df in split_sections(daily, ("bucket",)).items()}
    tables["the four signals per feature"] = display(by_feature.select(
        "feature", "runs", "llm_calls", "cost_usd", "error_rate", "latency_p95_ms", "rate_limited_runs",
        "max_concurrency"))
    return Result("golden signals", facts, tables)


def html_report(lens: Lens) -> Any:
    from .report import demo_section

    return demo_section(lens)


SECTIONS: tuple[Callable[[Lens], Any], ...] = (
    overview,
    costs,
    failure_modes,
    golden_signals,
    html_report,  # keep last: writes report.html and says where it is
)
