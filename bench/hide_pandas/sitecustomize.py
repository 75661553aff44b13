"""Put on PYTHONPATH by bench/run.py (`hide_pandas()`) for agentlens's ingest worker processes: pandas
is hidden from them as from the measured process itself."""

import _hide_pandas

_hide_pandas.install()
