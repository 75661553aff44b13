"""The message patterns agentlens reads failures from, in one place.

Regular expressions in RE2 syntax (what DuckDB's `regexp_matches` takes; Python's `re` reads them
too). The error patterns are matched against what a person reads of a span's error: `error_type: the
first line of status_message` (`error_head`), the HTTP status it carries first (`error_modes`). Other
modules reuse them (the golden signals' `rate_limited_share` counts calls matching `RATE_LIMIT`, the same
pattern as the `rate_limited` failure mode). Besides errors: the final answers that refuse (REFUSAL),
that tell the user something failed (FAILURE_ACKNOWLEDGED) or that are a step cap's message
(STEP_CAP_ANSWER); the injection patterns and the quotations that only mention them (QUOTED_MENTION).
"""

from __future__ import annotations

import re

# The error patterns below read what a person reads of an error: its type and the FIRST line of its
# message. Each is anchored to the first line of the text it is matched against (`^[^\r\n]*?`), so a stack
# trace below it (OpenInference's LangChain tracer puts the whole traceback in the status message) cannot
# match through a frame's `line 429` or `timeout=timeout`; the classifiers match them against
# `error_head(...)` (ERROR_HEAD), which also cuts a traceback that starts on the first line.
_FIRST_LINE = r"^[^\r\n]*?"

# A call rejected for rate limits or provider overload: HTTP 429 and 529 (Anthropic's `overloaded_error`),
# RateLimitError / rate_limit_exceeded / "rate limit", Too Many Requests (too_many_requests,
# TooManyRequests), Gemini RESOURCE_EXHAUSTED, Bedrock ThrottlingException. The one definition of "rate
# limited": the golden signals (rate_limited_calls, rate_limited_runs), their rollups, the alerts' SLI and
# the `rate_limited` failure mode all match it (`tests/test_patterns.py` lists texts that must and must not
# match). A status code counts only as a number of its own: not inside "Used 196429", "1,429 tokens" or
# "1.429 s". "Overloaded" alone is not a rate limit: OpenAI's 503 says "The server is overloaded or not ready
# yet.", a provider error. The classifier takes an HTTP status first (`error_modes`): a text that carries
# a 5xx status other than 529 is a provider error whatever its words.
RATE_LIMIT = (
    r"(?i)" + _FIRST_LINE + r"((^|[^0-9.,])(429|529)\b|rate[ _.-]?limit|too[ _-]?many[ _-]?requests|"
    r"resource[ _-]?exhausted|overloaded_error|throttl)"
)

# A call that ran out of time (openai APITimeoutError "Request timed out.", TimeoutError, httpx
# ReadTimeout, gRPC DEADLINE_EXCEEDED, HTTP 504 / 408).
TIMEOUT = r"(?i)" + _FIRST_LINE + r"(timed? ?out|timeout|deadline[ _-]?exceeded|\b504\b|\b408\b)"

# The model provider failed: HTTP 5xx, the SDKs' InternalServerError / APIConnectionError, "Connection
# error.". Calls that also match RATE_LIMIT, TIMEOUT or CONTEXT_OVERFLOW are counted under those modes.
PROVIDER_ERROR = (
    r"(?i)" + _FIRST_LINE + r"(\b5\d\d\b|internal[ _-]?server[ _-]?error|apiconnectionerror|api[ _-]?connection|"
    r"connection error|connection (reset|refused|aborted)|service[ _-]?unavailable|bad[ _-]?gateway|"
    r"server_error|api_error|apistatuserror)"
)

# A failed call whose outcome is unknown besides a timeout (TIMEOUT): the request went out and the connection
# was lost before the answer (reset, aborted, closed, remote end disconnected, broken pipe; a bare
# `ConnectionError`), or the trace does not say why it failed (the OpenAI Agents SDK's default tool
# failure function records "Tool execution failed. Error details are redacted."). A side effect retried
# after such a failure may have happened twice (duplicate_side_effect). "Connection refused" is not here:
# nothing was sent.
OUTCOME_UNKNOWN = (
    r"(?i)" + _FIRST_LINE + r"(connection (reset|aborted|closed|dropped|lost|error)|\bconnection(reset|aborted)?error\b|"
    r"remote ?(end )?(closed|disconnected)|server disconnected|broken ?pipe|incomplete ?read|details are redacted)"
)

# The HTTP status an error text carries as such (`Error code: 503` of the openai and anthropic SDKs,
# pydantic-ai's `status_code: 503`, `HTTP 503`, `HTTP/1.1 503`, `status 503`): group 1. It decides before
# the words (`error_modes`): 429 and 529 are rate limits, 408 and 504 timeouts, other 5xx provider errors;
# only a text with no such status (or another 4xx) is read by its words.
HTTP_STATUS = (
    r"(?i)" + _FIRST_LINE + r"\b(?:error code|status[ _-]?code|http(?:/[0-9.]+)?(?: status)?|status)\W{0,4}"
    r"([1-5][0-9][0-9])\b"
)

# The first line of an error message (group 1), cut before a Python traceback that follows it on the same
# line (LangChain: `OpenAIAPIError('Error code: 503 ...')Traceback (most recent call last): ...`). A message
# that starts with its traceback is read from its last line (`module.Type: message`): ERROR_LAST_LINE.
ERROR_HEAD = r"^\s*([^\r\n]*?)\s*(?:Traceback \(most recent call last\)|[\r\n]|$)"
ERROR_LAST_LINE = r"([^\r\n]*?)\s*$"

# The prompt did not fit the model's window (OpenAI context_length_exceeded, Anthropic "prompt is too
# long", vLLM "maximum context length", Gemini "input token count ... exceeds").
CONTEXT_OVERFLOW = (
    r"(?i)" + _FIRST_LINE + r"(context[ _-]?length[ _-]?exceeded|maximum context length|context window|prompt is too long|"
    r"input is too long|too many (input )?tokens|exceeds? the (maximum|max)( number of)? tokens|"
    r"input token count.{0,40}exceeds|reduce the length of the messages)"
)

# The agent framework stopped the run at its step cap (OpenAI Agents MaxTurnsExceeded, LangGraph
# GraphRecursionError, LangChain "Agent stopped due to iteration limit", smolagents max_steps, pydantic-ai
# UsageLimitExceeded on its request_limit / tool_calls_limit, LangChain's Model/ToolCallLimitMiddleware
# "Model call limits exceeded"). Read from error text. pydantic-ai's token and cost limits are budgets, not
# step caps.
STEP_CAP = (
    r"(?i)" + _FIRST_LINE + r"(max(imum)?[ _-]?(turns|iterations|steps)|recursion[ _-]?limit|iteration limit|"
    r"step[ _-]?limit|too many (steps|iterations|turns)|request_limit|tool_calls_limit|"
    r"(model|tool)[ _-]?call[ _-]?limits?[ _-]?(exceeded|reached)|agent stopped due to)"
)

# A step cap that ended the run with an answer instead of an error: the final answer starts with the
# framework's message (LangChain's ModelCallLimitMiddleware with exit_behavior='end': "Model call limits
# exceeded: run limit (4/4)"; AgentExecutor: "Agent stopped due to iteration limit or time limit.").
# Anchored at the start, so an answer that talks about limits is not one.
STEP_CAP_ANSWER = (
    r"(?i)^\W{0,3}((model|tool) call limits? (exceeded|reached)|"
    r"agent stopped due to (iteration limit|max iterations|time limit))"
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

# The final answer tells the user that something failed: "I couldn't reach our customer system", "I can't
# confirm ...", "the system returned an error", "the service is unavailable", "please try again later".
# A tool failure the answer acknowledges was noticed (tool_error), not silent. Needs an inability verb
# about getting or doing something, an error the system returned, a system that is down, or a retry later:
# "I can't find that order" (the tool may have answered "not found") and "I'm sorry to hear about the
# error at checkout" are not acknowledgements.
FAILURE_ACKNOWLEDGED = (
    r"(?i)\b(i|we)(\s+(could(n['’]?t| not)|can(not|['’]?t)|(was|were)(n['’]?t| not) able to|"
    r"(am|are|was|were) (unable|not able) to|had (trouble|a problem|an issue|problems|issues))|"
    r"['’](m|re) (unable|not able) to)\s+"
    r"(reach|reaching|access|accessing|connect|connecting|contact|load|loading|retrieve|retrieving|get|getting|"
    r"fetch|fetching|check|checking|confirm|verify|look up|looking up|complete|process|send|sending|open|create|"
    r"update|pull|pulling)\b"
    r"|\b(returned|gave|got|hit|ran into|encountered|responded with|came back with|failed with)\s+(an?\s+)?"
    r"(error|failure|exception|timeout)\b"
    r"|\b(service|system|server|tool|api|database|backend|website|site|connection)s?\b[^.!?\n]{0,40}?"
    r"\b(is|was|are|were|seems|seemed|appears|appeared)\s+(to be\s+)?(currently\s+|temporarily\s+)?"
    r"(unavailable|down|not responding|unreachable|offline|failing)\b"
    r"|\btry again (later|shortly|in a (few|little|bit|moment|minute))"
    r"|\b(something went wrong|an error occurred|a technical (issue|problem|error))"
)

# Finish reasons that mean the output stopped at its token limit (OpenAI `length`, Anthropic
# `max_tokens`, Gemini `MAX_TOKENS`), and those that mean a content filter or refusal.
FINISH_LENGTH = ("length", "max_tokens", "max_output_tokens", "model_length")
FINISH_REFUSAL = ("content_filter", "refusal", "safety", "prohibited_content", "blocklist", "spii")

# Why a response came back incomplete, when a failed call's error says so instead of a finish reason
# (group 1): the OpenAI Agents SDK raises on the Responses API's `status: incomplete` and records only
# "... `response.incomplete`. status=incomplete; incomplete_details=IncompleteDetails(reason='max_output_tokens')".
# Read as a finish reason: FINISH_LENGTH (context_overflow) or FINISH_REFUSAL (refusal).
INCOMPLETE_REASON = r"(?i)" + _FIRST_LINE + r"\bincomplete\b.{0,200}?\breason\W{1,4}([a-z_]+)"

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

# A phrase being discussed, not given: a quotation of up to 300 characters in quotation marks right after
# "such as", "e.g.", "for example", "like", "wrote", "says", "the phrase", "reads" ("attackers hide text
# such as 'Ignore all previous instructions ...'", "a customer wrote 'Ignore ...' in a ticket"). The
# prompt_injection rule takes these out before deciding that content carries an instruction.
QUOTED_MENTION = (
    r"(?i)\b(such as|e\.g\.|for example|for instance|like|wrote|writes|says|said|saying|phrases?|quoted?|"
    r"reads|reading)\s*[:,]?\s*"
    r"('[^'\n]{1,300}'|\"[^\"\n]{1,300}\"|“[^”\n]{1,300}”|‘[^’\n]{1,300}’|«[^»\n]{1,300}»)"
)

# The error's type for grouping: `error_type` (the `error.type` attribute or the exception event's
# `exception.type`), else a leading `ExceptionName:` of the status message (agent_runs rows and
# re-raised errors carry only a message), else `(unknown)`.
ERROR_TYPE_SQL = (
    "coalesce(nullif(error_type, ''), "
    "nullif(regexp_extract(status_message, '^\\s*([A-Za-z_][A-Za-z0-9_.]*)\\s*:', 1), ''), '(unknown)')"
)


def error_head(error_type: str | None, message: str | None) -> str:
    """What a person reads of an error: `Type: first line of the message` (ERROR_HEAD, else the message's
    last line when it starts with a traceback; the type once, when the message already starts with it).
    The classifiers build the same text in SQL (`failures.classifiers.PREPARE`, its `err`)."""
    text = message or ""
    head = _HEAD_RE.match(text).group(1)  # type: ignore[union-attr]  # always matches
    if not head and text.strip():
        head = _LAST_RE.search(text).group(1).strip()  # type: ignore[union-attr]
    if error_type and not head.startswith(error_type):
        return f"{error_type}: {head}" if head else error_type
    return head


def http_status(text: str) -> int | None:
    """The HTTP status the text carries as such (HTTP_STATUS), else None."""
    m = _STATUS_RE.search(text)
    return int(m.group(1)) if m else None


def error_modes(text: str) -> frozenset[str]:
    """The modes a failed call's error text shows, of rate_limited, timeout, provider_error and
    context_overflow: the HTTP status first (429/529 rate limit, 408/504 timeout, other 5xx provider
    error), the words only when the text carries no status or another 4xx one (a provider error is then a
    text that is none of the other three); a context overflow by its words always. The rules apply the same
    decision in SQL (`failures.classifiers.PREPARE`: `is_rate`, `is_timeout`, `is_provider`, `is_context`);
    `tests/test_patterns.py` checks the two agree."""
    code = http_status(text)
    context = bool(_CONTEXT_RE.search(text))
    if code is not None and (code >= 500 or code in (408, 429)):
        rate, timeout = code in (429, 529), code in (408, 504)
        provider = not rate and not timeout and not context
    else:
        rate, timeout = bool(_RATE_LIMIT_RE.search(text)), bool(_TIMEOUT_RE.search(text))
        provider = bool(_PROVIDER_RE.search(text)) and not (rate or timeout or context)
    return frozenset(m for m, on in (("rate_limited", rate), ("timeout", timeout), ("provider_error", provider),
                                     ("context_overflow", context)) if on)


def is_rate_limited(error_type: str | None, status_message: str | None) -> bool:
    """True when an error's type or message says the call was rejected for a rate limit: what the
    `rate_limited` rule reads (`error_modes` of `error_head`)."""
    return "rate_limited" in error_modes(error_head(error_type, status_message))


_RATE_LIMIT_RE = re.compile(RATE_LIMIT)
_TIMEOUT_RE = re.compile(TIMEOUT)
_PROVIDER_RE = re.compile(PROVIDER_ERROR)
_CONTEXT_RE = re.compile(CONTEXT_OVERFLOW)
_STATUS_RE = re.compile(HTTP_STATUS)
_HEAD_RE = re.compile(ERROR_HEAD)
_LAST_RE = re.compile(ERROR_LAST_LINE)
