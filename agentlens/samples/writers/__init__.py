"""The writers: one module per file a generation writes, each rendering the planned, simulated runs.

    openinference.py  support-agent.openinference.otlp.jsonl: spans in the OpenInference dialect
    otlp_genai.py     support-agent.genai.otlp.jsonl: spans in the OTel GenAI conventions; the runs of
                      an older deployment have their LLM spans from openllmetry.py
    openllmetry.py    LLM spans with OpenLLMetry 0.47's legacy names
    agent_runs.py     agent_runs.csv: rows of an application's own `agent_runs` table
    labels.py         labels.jsonl: the failure modes injected into each run, its status (ground truth)
    readme.py         README.md: what the files are and how they were made
    otlp.py           what the two OTLP files share: OTLP JSON encoding, the processes (resources) that
                      export spans in batches, the file writer
    providers.py      requests as the OpenAI and Anthropic SDKs send them (messages, tool schemas)
"""

FILE_OPENINFERENCE = "support-agent.openinference.otlp.jsonl"
FILE_GENAI = "support-agent.genai.otlp.jsonl"
FILE_CSV = "agent_runs.csv"
FILE_LABELS = "labels.jsonl"
FILE_README = "README.md"
OUTPUT_FILES = (FILE_OPENINFERENCE, FILE_GENAI, FILE_CSV, FILE_LABELS, FILE_README)
