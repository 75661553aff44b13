"""pandas kept out of a process that never needs it: pyarrow imports pandas, when it is installed (most
notebook environments), on its first conversion of Python objects (~0.8 s, +19% of the CPU of a 10k-run
ingest over its worker processes). An ingest worker (agentlens.adapters.parallel) installs this first, and so
does the `agentlens ingest` command (a small file is read in the command's own process: ~0.2 s of the 1.4 s
command), unless its database is a ClickHouse store (chdb needs pandas): `import pandas` then fails there as
if pandas were not installed, and pyarrow goes on without it. Never installed by the library itself: a
notebook may import pandas after an ingest."""

from __future__ import annotations

import sys
from typing import Any


class NoPandas:
    """A meta path finder that refuses pandas."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r} (kept out of this ingest process)",
                                      name=name)
        return None


def install() -> None:
    """Refuse pandas in this process from now on (a no-op if it is imported already)."""
    if "pandas" not in sys.modules and not any(isinstance(f, NoPandas) for f in sys.meta_path):
        sys.meta_path.insert(0, NoPandas())
