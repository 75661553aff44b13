"""Where the corpus's tools raise: a module of its own, so that the line numbers in the tracebacks some
instrumentations record (OpenInference's LangChain tracer puts the whole traceback in the span's status
message) stay small and fixed, and a classifier's match on, say, `429` in `line 429` cannot come and
go as corpus.py is edited."""

from __future__ import annotations

EXCEPTIONS: dict[str, type[Exception]] = {
    "ConnectionError": ConnectionError, "ConnectionResetError": ConnectionResetError,
    "TimeoutError": TimeoutError, "KeyError": KeyError,
}


def fail(spec: str) -> None:
    """Raise what `Type: message` says."""
    exc_type, _, message = spec.partition(": ")
    raise EXCEPTIONS[exc_type](message)
