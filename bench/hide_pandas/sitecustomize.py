"""Put on PYTHONPATH by bench/run.py for agentlens's ingest worker processes: `import pandas` fails as
if it were not installed, as in the measured process itself (see `_HidePandas` in run.py)."""

import sys


class _HidePandas:
    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by bench/run.py)", name=name)
        return None


sys.meta_path.insert(0, _HidePandas())
