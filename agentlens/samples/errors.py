"""Errors of LLM calls and tool calls, worded as the openai / anthropic SDKs and common libraries word
them (rate limits, server and connection errors, timeouts, context length; connection resets, tool
timeouts, a payment gateway, max turns), with the stack traces an instrumentation records."""

from __future__ import annotations

import random

from .content import Model
from .run import Err

_SITE = "/app/.venv/lib/python3.12/site-packages"


def _llm_trace(model: Model, exc_type: str, message: str) -> str:
    pkg = "anthropic" if model.provider == "anthropic" else "openai"
    call = "self.client.messages.create(**params)" if pkg == "anthropic" else \
        "self.client.chat.completions.create(**params)"
    return (
        "Traceback (most recent call last):\n"
        '  File "/app/support_agent/llm.py", line 88, in complete\n'
        f"    response = {call}\n"
        f'  File "{_SITE}/{pkg}/_base_client.py", line 1047, in request\n'
        "    raise self._make_status_error_from_response(err.response) from None\n"
        f"{pkg}.{exc_type}: {message}\n"
    )


def llm_error(kind: str, model: Model, rng: random.Random, *, tokens: int = 0) -> Err:
    anth = model.provider == "anthropic"
    if kind == "rate_limit":
        if anth:
            msg = ("Error code: 429 - {'type': 'error', 'error': {'type': 'rate_limit_error', 'message': "
                   "'Number of request tokens has exceeded your per-minute rate limit'}}")
        else:
            used = rng.randint(196_000, 199_800)
            msg = (f"Error code: 429 - {{'error': {{'message': 'Rate limit reached for {model.name} in "
                   f"organization org-acme on tokens per min (TPM): Limit 200000, Used {used}, Requested "
                   f"{rng.randint(1500, 4200)}. Please try again in {rng.randint(200, 900)}ms.', 'type': "
                   "'tokens', 'param': None, 'code': 'rate_limit_exceeded'}}")
        return Err("RateLimitError", msg, _llm_trace(model, "RateLimitError", msg))
    if kind == "server":
        if anth:
            msg = ("Error code: 500 - {'type': 'error', 'error': {'type': 'api_error', 'message': "
                   "'Internal server error'}}")
        else:
            msg = ("Error code: 500 - {'error': {'message': 'The server had an error while processing your "
                   "request. Sorry about that!', 'type': 'server_error', 'param': None, 'code': None}}")
        return Err("InternalServerError", msg, _llm_trace(model, "InternalServerError", msg))
    if kind == "connection":
        msg = "Connection error."
        return Err("APIConnectionError", msg, _llm_trace(model, "APIConnectionError", msg))
    if kind == "timeout":
        msg = "Request timed out."
        return Err("APITimeoutError", msg, _llm_trace(model, "APITimeoutError", msg))
    if kind == "context":
        msg = (f"Error code: 400 - {{'object': 'error', 'message': \"This model's maximum context length is "
               f"{model.context_window} tokens. However, you requested {tokens} tokens "
               f"({tokens - 16000} in the messages, 16000 in the completion). Please reduce the length of "
               "the messages or completion.\", 'type': 'BadRequestError', 'param': None, 'code': "
               "'context_length_exceeded'}")
        return Err("BadRequestError", msg, _llm_trace(model, "BadRequestError", msg))
    raise ValueError(kind)


def tool_error(kind: str, tool: str, rng: random.Random) -> Err:
    frame = (
        "Traceback (most recent call last):\n"
        f'  File "/app/support_agent/tools/{tool}.py", line {rng.randint(30, 90)}, in {tool}\n'
        "    resp = self.http.request(method, url, json=payload, timeout=self.timeout)\n"
    )
    if kind == "reset":
        msg = "[Errno 104] Connection reset by peer"
        return Err("ConnectionResetError", msg, frame + f"ConnectionResetError: {msg}\n")
    if kind == "timeout":
        msg = f"{tool} timed out after 10.0s"
        return Err("TimeoutError", msg, frame + f"TimeoutError: {msg}\n")
    if kind == "gateway":
        msg = "refund rejected by payment gateway: insufficient merchant balance"
        return Err("PaymentGatewayError", msg, frame + f"support_agent.tools.errors.PaymentGatewayError: {msg}\n")
    if kind == "max_turns":
        msg = "Max turns (6) exceeded"
        return Err("MaxTurnsExceeded", msg,
                   "Traceback (most recent call last):\n"
                   '  File "/app/support_agent/runner.py", line 212, in run\n'
                   "    raise MaxTurnsExceeded(f\"Max turns ({self.max_turns}) exceeded\")\n"
                   f"support_agent.runner.MaxTurnsExceeded: {msg}\n")
    raise ValueError(kind)
