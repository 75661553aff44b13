"""What runs inside each file's ingest transaction once its runs are built, in order.

Each step is a function of the Lens that works on the run ids in the temp table `_affected` (every
run the file touched) with SQL, so a step's work commits or rolls back with the file. Adding a
step (pricing, failure classification, ...) is adding it to `steps()`.
"""

from __future__ import annotations

from .store import Step


def steps() -> tuple[Step, ...]:
    return ()
