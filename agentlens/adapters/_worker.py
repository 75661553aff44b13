"""Entry point of an ingest worker process: see agentlens.adapters.parallel. Its `_Worker` runs
`python -c WORKER_BOOT`, which ignores SIGINT before importing this module (and with it agentlens);
`python -m agentlens.adapters._worker` works too, ignoring SIGINT only once those imports are done."""

from agentlens.adapters.parallel import serve
from agentlens.core import nopandas


def main() -> None:
    nopandas.install()  # pyarrow would import pandas on its first conversion: ~0.8 s per worker
    serve()


if __name__ == "__main__":
    main()
