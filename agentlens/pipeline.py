"""What runs inside each file's ingest transaction once its runs are built, in order.

Each step is a function of the Lens that works on the run ids in the temp table `_affected` (every
run the file touched) with SQL, so a step's work commits or rolls back with the file. Adding a
step (pricing, failure classification, ...) is adding it to `steps()`.
"""

from __future__ import annotations

from . import pricing
from .failures import classify_step
from .store import Step


def steps() -> tuple[Step, ...]:
    return (
        pricing.price_step,  # first: later steps (budgets, failure modes) read runs.cost_usd
        classify_step,  # last: failure modes (budget checks read the priced costs)
    )
