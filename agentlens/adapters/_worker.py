"""Entry point of an ingest worker process (`python -m agentlens.adapters._worker`): see
agentlens.adapters.parallel."""

from agentlens.adapters.parallel import serve

if __name__ == "__main__":
    serve()
