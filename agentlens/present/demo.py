"""The main job (`agentlens demo`, run by `make demo`): ingest, then print each section in order.

A section is a function of the Lens returning something printable (a Result). Adding a report to
the main job is adding it to `SECTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..store import Store as Lens


def overview(lens: Lens) -> Any:
    return lens.overview()


def costs(lens: Lens) -> Any:
    from ..metrics.costs import demo_section

    return demo_section(lens)


def failure_modes(lens: Lens) -> Any:
    from ..failures.report import summary_section

    return summary_section(lens)


def golden_signals(lens: Lens) -> Any:
    from ..metrics.signals import demo_section

    return demo_section(lens)


def html_report(lens: Lens) -> Any:
    from ..present.report import demo_section

    return demo_section(lens)


SECTIONS: tuple[Callable[[Lens], Any], ...] = (
    overview,
    costs,
    failure_modes,
    golden_signals,
    html_report,  # keep last: writes report.html and says where it is
)
