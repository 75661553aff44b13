"""The message patterns agentlens reads failures from, in one place.

Regular expressions in RE2 syntax (what DuckDB's `regexp_matches` takes; Python's `re` reads them
too). They are matched against a span's error text: `error_type: status_message` (the exception
type and message when the span recorded an exception). Other modules reuse them (the golden
signals' `rate_limited_share` counts calls matching `RATE_LIMIT`, the same pattern as the
`rate_limited` failure mode).
"""

from __future__ import annotations

import re

# A call rejected for rate limits or provider overload: HTTP 429 and 529 (Anthropic's "overloaded"),
# RateLimitError / rate_limit_exceeded / "rate limit", Too Many Requests (too_many_requests,
# TooManyRequests), Gemini RESOURCE_EXHAUSTED, Bedrock ThrottlingException. The one definition of "rate
# limited": the golden signals (rate_limited_calls, rate_limited_runs), their rollups, the alerts' SLI and
# the `rate_limited` failure mode all match it (`tests/test_patterns.py` lists texts that must and must not
# match). A status code counts only as a number of its own: not inside "Used 196429", "1,429 tokens" or
# "1.429 s". A 503 Service Unavailable is a provider error, not a rate limit.
RATE_LIMIT = (
    r"(?i)((^|[^0-9.,])(429|529)\b|rate[ _.-]?limit|too[ _-]?many[ _-]?requests|resource[ _-]?exhausted|"
    r"overloaded|throttl)"
)

# A call that ran out of time (openai APITimeoutError "Request timed out.", TimeoutError, httpx
# ReadTimeout, gRPC DEADLINE_EXCEEDED, HTTP 504 / 408).
TIMEOUT = r"(?i)(timed? ?out|timeout|deadline[ _-]?exceeded|\b504\b|\b408\b)"

# The model provider failed: HTTP 5xx, the SDKs' InternalServerError / APIConnectionError, "Connection
# error.". Calls that also match RATE_LIMIT, TIMEOUT or CONTEXT_OVERFLOW are counted under those modes.
PROVIDER_ERROR = (
    r"(?i)(\b5\d\d\b|internal[ _-]?server[ _-]?error|apiconnectionerror|api[ _-]?connection|"
    r"connection error|connection (reset|refused|aborted)|service[ _-]?unavailable|bad[ _-]?gateway|"
    r"server_error|api_error|apistatuserror)"
)

# The prompt did not fit the model's window (OpenAI context_length_exceeded, Anthropic "prompt is too
# long", vLLM "maximum context length", Gemini "input token count ... exceeds").
CONTEXT_OVERFLOW = (
    r"(?i)(context[ _-]?length[ _-]?exceeded|maximum context length|context window|prompt is too long|"
    r"input is too long|too many (input )?tokens|exceeds? the (maximum|max)( number of)? tokens|"
    r"input token count.{0,40}exceeds|reduce the length of the messages)"
)

# The agent framework stopped the run at its step cap (OpenAI Agents MaxTurnsExceeded, LangGraph
# GraphRecursionError, LangChain "Agent stopped due to iteration limit", smolagents max_steps).
STEP_CAP = (
    r"(?i)(max(imum)?[ _-]?(turns|iterations|steps)|recursion[ _-]?limit|iteration limit|step[ _-]?limit|"
    r"too many (steps|iterations|turns))"
)

# A tool result that reports failure in its text, when it is not JSON (JSON results are read by key:
# `error`, `success: false`, `ok: false`, `isError: true`, `status: error|failed`, `status >= 500`).
ERROR_TEXT = (
    r"(?i)^\W{0,3}(error|exception|traceback|fatal)\b|\bHTTP/?[0-9.]*\s+5\d\d\b|"
    r"\bstatus( code)?:?\s*5\d\d\b|^\s*5\d\d (internal|bad gateway|service unavailable|gateway)"
)

# The final answer declines the task. Anchored at the start of the answer and needing a declining
# verb in the first sentence, so an apology ("I'm sorry to hear about the delay. Your order ...") or
# "I can't find that order" is not a refusal.
REFUSAL = (
    r"(?i)^\W{0,3}((i['’]?m|i am) sorry|sorry|i apologi[sz]e|unfortunately|as an ai[^.!?\n]{0,40})?"
    r"[^.!?\n]{0,60}?\b(i|we)\s+(can(not|['’]?t)|am unable to|are unable to|won['’]?t|will not|"
    r"am not able to|are not able to|must decline to|am not allowed to|am not permitted to)\s+"
    r"(help|assist|do|comply|provide|share|fulfil|fulfill|complete|answer|disclose|give|reveal|"
    r"change|access|support|engage|continue|discuss)\b"
)

# Finish reasons that mean the output stopped at its token limit (OpenAI `length`, Anthropic
# `max_tokens`, Gemini `MAX_TOKENS`), and those that mean a content filter or refusal.
FINISH_LENGTH = ("length", "max_tokens", "max_output_tokens", "model_length")
FINISH_REFUSAL = ("content_filter", "refusal", "safety", "prohibited_content", "blocklist", "spii")

# Addresses an injected instruction may try to send data to.
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"

# The default `[policy] injection_patterns`: instructions aimed at the agent inside content it read.
INJECTION: tuple[str, ...] = (
    r"(?i)\b(ignore|disregard|forget|override)\s+(all\s+|any\s+|the\s+|your\s+)*(previous|prior|above|"
    r"earlier|preceding|system|original)\s+(instructions|prompts?|messages|rules|directions|guidelines)",
    r"(?i)\byou are now (in )?[a-z ]{0,30}\b(mode|dan|jailbroken|unrestricted)\b",
    r"(?i)\bnew (system )?instructions\s*:",
    r"(^|[\n>\]\"'])\s*(SYSTEM|ADMIN|DEVELOPER)( MESSAGE| PROMPT| OVERRIDE| NOTE)?\s*:",
    r"(?i)<[^>]{0,80}display\s*:\s*none[^>]{0,80}>[^<]{0,40}(system|instruction|assistant|ignore)",
    r"(?i)\b(send|forward|email|upload|post|exfiltrate|export)\s+(the |all |every |our )*(customer|user|"
    r"client|account|contact)s?\s*(list|data|records|database|emails|details|export)",
    r"(?i)\bdo not (mention|tell|reveal|inform|disclose) (this|the user|anyone|them)",
    r"(?i)\breveal (your|the) (system )?(prompt|instructions)",
)

_RATE_LIMIT_RE = re.compile(RATE_LIMIT)

# The error's type for grouping: `error_type` (the `error.type` attribute or the exception event's
# `exception.type`), else a leading `ExceptionName:` of the status message (agent_runs rows and
# re-raised errors carry only a message), else `(unknown)`.
ERROR_TYPE_SQL = (
    "coalesce(nullif(error_type, ''), "
    "nullif(regexp_extract(status_message, '^\\s*([A-Za-z_][A-Za-z0-9_.]*)\\s*:', 1), ''), '(unknown)')"
)


def is_rate_limited(error_type: str | None, status_message: str | None) -> bool:
    """True when an error's type or message says the call was rejected for a rate limit (`RATE_LIMIT`;
    the SQL matches `error_type || ' ' || status_message` the same way)."""
    return bool(_RATE_LIMIT_RE.search(f"{error_type or ''} {status_message or ''}"))
