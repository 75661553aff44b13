"""Definitions shared by signals, rollups, alerts and the failure-mode classifiers.

One place for "what counts as a rate-limited call", so the saturation signal and the
`rate_limited` failure mode always agree:

    from agentlens.metrics.patterns import RATE_LIMIT_PATTERN, is_rate_limited

The pattern is matched (case-insensitively) against an error span's `error_type` and
`status_message` joined by a space. It recognises HTTP 429 and Anthropic's 529, the SDK exception
names (`RateLimitError`, `ThrottlingException`, `ResourceExhausted`, `OverloadedError`), the API
error codes (`rate_limit_exceeded`, `rate_limit_error`, `overloaded_error`, `RESOURCE_EXHAUSTED`)
and the plain-English forms ("Too Many Requests", "rate limit reached", "throttled").
"""

from __future__ import annotations

import re

# RE2 syntax (DuckDB's regexp engine) that Python's `re` reads the same way.
RATE_LIMIT_PATTERN = (
    r"(?i)(\b(429|529)\b|rate[ _.-]?limit|too[ _]many[ _]requests|throttl|"
    r"resource[ _]?exhausted|overloaded)"
)

_RATE_LIMIT_RE = re.compile(RATE_LIMIT_PATTERN)

# The error's type for grouping: `error_type` (the `error.type` attribute or the exception event's
# `exception.type`), else a leading `ExceptionName:` of the status message (agent_runs rows and
# re-raised errors carry only a message), else `(unknown)`.
ERROR_TYPE_SQL = (
    "coalesce(nullif(error_type, ''), "
    "nullif(regexp_extract(status_message, '^\\s*([A-Za-z_][A-Za-z0-9_.]*)\\s*:', 1), ''), '(unknown)')"
)


def is_rate_limited(error_type: str | None, status_message: str | None) -> bool:
    """True when an error span's type or message says the call was rejected for a rate limit."""
    return bool(_RATE_LIMIT_RE.search(f"{error_type or ''} {status_message or ''}"))
