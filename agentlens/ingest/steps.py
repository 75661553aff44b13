"""What runs inside each file's ingest transaction once its runs are built, in order.

Each step is a function of the Store that works on the run ids in the temp table `_affected` (the
runs the file touched, a chunk at a time so that memory stays bounded) with SQL, so a step's work
commits or rolls back with the file. File steps run once per file, after the chunks. Adding a
step (pricing, failure classification, ...) is adding it to `Pipeline.default()`.

Staged steps run before all that, in a file of new runs only (the bulk of ingests), per chunk of its
runs, on their spans' narrow columns before any is stored: pricing there lets the insert write the costs,
where an UPDATE of the rows the file just added makes DuckDB copy all of them through its WAL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import pricing
from ..failures import classify_step, fleet_step
from ..store import Store

Step = Callable[[Store], None]


@dataclass(frozen=True)
class Pipeline:
    """The steps of an ingest (see the module's docstring)."""

    staged: tuple[Step, ...] = ()  # a file of new runs only, per chunk of its runs, before they are stored
    chunk: tuple[Step, ...] = ()  # per chunk of the runs the file touched (their ids in `_affected`)
    file: tuple[Step, ...] = ()  # once per file, after every chunk's steps: whole-database checks

    @classmethod
    def default(cls) -> Pipeline:
        return cls(
            staged=(pricing.price_staged_step,),  # price_step then finds them priced
            chunk=(
                pricing.price_step,  # first: later steps (budgets, failure modes) read runs.cost_usd
                classify_step,  # last: failure modes (budget checks read the priced costs)
            ),
            file=(fleet_step,),
        )
