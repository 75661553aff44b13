"""The main job (`agentlens demo`, run by `make demo`): ingest, then print each section in order.

A section is a function of the Lens returning something printable (a Result). Adding a report to
the main job is adding it to `SECTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .store import Lens


def overview(lens: Lens) -> Any:
    return lens.overview()


SECTIONS: tuple[Callable[[Lens], Any], ...] = (
    overview,
)
