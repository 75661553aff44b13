"""The distributed ingest as a spark-submit application (agentlens.sources.spark_ingest):

    spark-submit --master spark://HOST:7077 "$(python -c 'import agentlens.sources.spark_submit as m; print(m.__file__)')" \\
        --lake DIR [--config FILE] [--format F] [--tasks N] [--replace] TRACE_FILES...

spark-submit runs this file as a script (no package around it), so it imports agentlens absolutely.
"""

import sys

from agentlens.sources.spark_ingest import main

if __name__ == "__main__":
    sys.exit(main())
