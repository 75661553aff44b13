"""`python -m agentlens.samples OUT_DIR [--seed N] [--runs N] [--days N]`: writes the sample traces
(see `agentlens.samples.main`)."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
