"""`import pandas` fails as if pandas were not installed (bench/run.py measures agentlens as installed
with its own dependencies; pyarrow would otherwise import pandas, ~0.8 s, on its first conversion)."""

import sys
from typing import Any


class HidePandas:
    """A meta path finder that refuses pandas."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by bench/run.py)", name=name)
        return None


def install() -> None:
    if not any(isinstance(f, HidePandas) for f in sys.meta_path):
        sys.meta_path.insert(0, HidePandas())
