"""A local fake of the OpenAI API that plays the scenarios' scripts.

`POST /v1/chat/completions` (Chat Completions) and `POST /v1/responses` (the Responses API, the
OpenAI Agents SDK's default) answer the n-th request carrying header `x-scenario: NAME` with step n
of that scenario's script, whichever API asked: a completion (text or tool calls, with usage; as
server-sent `chat.completion.chunk` events when the request says `stream: true`, the first after
`STREAM_FIRST_CHUNK_S`, with the usage chunk when `stream_options.include_usage` asks for it), an
HTTP error with the body OpenAI sends (429 rate_limit_exceeded, 500 server_error, 503 overloaded,
400 context_length_exceeded), a response held longer than the client's timeout, or a connection
closed with no response (`{"drop": True}`). The scripts are tests/recorder/scenarios.py's unless
others are given (tests/frameworks). Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ERRORS: dict[int, dict[str, Any]] = {
    429: {"message": "Rate limit reached for gpt-4o-mini in organization org-fake on tokens per min (TPM): "
                     "Limit 30000, Used 29950, Requested 1200. Please try again in 2.4s.",
          "type": "tokens", "param": None, "code": "rate_limit_exceeded"},
    500: {"message": "The server had an error while processing your request. Sorry about that!",
          "type": "server_error", "param": None, "code": None},
    503: {"message": "The server is overloaded or not ready yet.", "type": "server_error", "param": None,
          "code": None},
    400: {"message": "This model's maximum context length is 128000 tokens. However, your messages resulted in "
                     "131072 tokens. Please reduce the length of the messages.",
          "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"},
}
RESPONSE_MODELS = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4.1": "gpt-4.1-2025-04-14"}
STREAM_FIRST_CHUNK_S = 0.05  # the model "thinks" this long before its first streamed chunk (the time to first token)
STREAM_CHUNK_GAP_S = 0.002   # then a chunk every so often


class FakeOpenAI:
    def __init__(self, scripts: Mapping[str, list[dict[str, Any]]] | None = None,
                 retry_after_ms: int | None = None) -> None:
        if scripts is None:
            from scenarios import SCENARIOS

            scripts = {s.name: s.llm for s in SCENARIOS}
        self.scripts = scripts
        # sent with errors when set: the openai SDK's own retries then wait that long, not ~0.5-8 s
        self.retry_after_ms = retry_after_ms
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def step(self, scenario: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            n = self.counts[scenario]
            self.counts[scenario] += 1
        script = self.scripts[scenario]
        if n >= len(script):  # the agent asked more than the script says: a 500 shows it in the trace
            return n, {"error": 500}
        return n, script[n]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("x-request-id", f"req_{abs(hash(data)) % 10**12}")
            if status >= 400 and self.fake.retry_after_ms is not None:
                self.send_header("retry-after-ms", str(self.fake.retry_after_ms))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and went away: that was the point

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        req = json.loads(self.rfile.read(length) or b"{}")
        scenario = self.headers.get("x-scenario", "")
        path = self.path.rstrip("/")
        api = "chat" if path.endswith("/chat/completions") else "responses" if path.endswith("/responses") else None
        if api is None or scenario not in self.fake.scripts:
            self._send(404, {"error": {"message": f"unknown path {self.path} or scenario {scenario!r}"}})
            return
        n, step = self.fake.step(scenario)
        if step.get("drop"):  # no status line at all: the client sees the server disconnect
            self.close_connection = True
            return
        if "sleep" in step:
            time.sleep(step["sleep"])
            self._send(500, {"error": {"message": "too late", "type": "server_error"}})
            return
        if "error" in step:
            self._send(step["error"], {"error": ERRORS[step["error"]]})
            return
        if api == "chat" and req.get("stream"):
            self._stream(completion(req, scenario, n, step), bool((req.get("stream_options") or {}).get("include_usage")))
            return
        self._send(200, completion(req, scenario, n, step) if api == "chat" else response(req, scenario, n, step))

    def _stream(self, body: dict[str, Any], include_usage: bool) -> None:
        """A completion as the API streams it: server-sent `chat.completion.chunk` events, then `[DONE]`."""
        try:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("x-request-id", f"req_{abs(hash(body['id'])) % 10**12}")
            self.end_headers()
            time.sleep(STREAM_FIRST_CHUNK_S)
            for i, chunk in enumerate(chunks(body, include_usage)):
                if i:
                    time.sleep(STREAM_CHUNK_GAP_S)
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


def completion(req: dict[str, Any], scenario: str, n: int, step: dict[str, Any]) -> dict[str, Any]:
    model = req.get("model", "gpt-4o-mini")
    prompt = step.get("prompt_tokens") or max(1, len(json.dumps(req.get("messages", []))) // 4
                                            + 40 * len(req.get("tools") or []))
    msg: dict[str, Any] = {"role": "assistant", "content": step.get("content"), "refusal": None}
    finish = step.get("finish_reason", "stop")
    if "tool_calls" in step:
        msg["tool_calls"] = [
            {"id": f"call_{scenario[:12]}_{n}_{i}", "type": "function",
             "function": {"name": c["name"], "arguments": c["arguments"]}}
            for i, c in enumerate(step["tool_calls"])
        ]
        finish = "tool_calls"
    out = step.get("completion_tokens") or max(1, len(json.dumps(msg)) // 4)
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out}
    if "cached_tokens" in step:
        usage["prompt_tokens_details"] = {"cached_tokens": step["cached_tokens"]}
    if "reasoning_tokens" in step:
        usage["completion_tokens_details"] = {"reasoning_tokens": step["reasoning_tokens"]}
    return {
        "id": f"chatcmpl-{scenario}-{n}", "object": "chat.completion", "created": 1_767_225_600 + n,
        "model": RESPONSE_MODELS.get(model, model), "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": msg, "finish_reason": finish, "logprobs": None}],
        "usage": usage,
    }


def chunks(body: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """A chat completion cut into the chunks the API streams: the role, the content a few words at a time,
    each tool call (its id and name, then its arguments in pieces), the finish reason, and the usage alone
    in a last chunk with no choices when asked for."""
    head = {k: body[k] for k in ("id", "created", "model", "system_fingerprint")}
    choice, msg = body["choices"][0], body["choices"][0]["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": "", "refusal": None})]
    words = (msg.get("content") or "").split(" ")
    out += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words) if msg.get("content")]
    for i, tc in enumerate(msg.get("tool_calls") or []):
        out.append(chunk({"tool_calls": [{"index": i, "id": tc["id"], "type": "function",
                                          "function": {"name": tc["function"]["name"], "arguments": ""}}]}))
        args = tc["function"]["arguments"]
        for j in range(0, len(args), 8):
            out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": args[j:j + 8]}}]}))
    out.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        out.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": body["usage"]})
    return out


def response(req: dict[str, Any], scenario: str, n: int, step: dict[str, Any]) -> dict[str, Any]:
    """The same step as a Responses API `response` object: output items (a message, function calls),
    `status: incomplete` with its reason where a completion would say finish_reason length or
    content_filter, usage with its input and output details."""
    model = req.get("model", "gpt-4o-mini")
    prompt = step.get("prompt_tokens") or max(1, len(json.dumps([req.get("instructions"), req.get("input")])) // 4
                                            + 40 * len(req.get("tools") or []))
    output: list[dict[str, Any]] = []
    if step.get("content") is not None:
        output.append({"type": "message", "id": f"msg_{scenario[:12]}_{n}", "status": "completed",
                       "role": "assistant",
                       "content": [{"type": "output_text", "text": step["content"], "annotations": []}]})
    for i, c in enumerate(step.get("tool_calls", [])):
        output.append({"type": "function_call", "id": f"fc_{scenario[:12]}_{n}_{i}",
                       "call_id": f"call_{scenario[:12]}_{n}_{i}", "name": c["name"], "arguments": c["arguments"],
                       "status": "completed"})
    finish = step.get("finish_reason", "stop")
    incomplete = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(finish)
    out = step.get("completion_tokens") or max(1, len(json.dumps(output)) // 4)
    return {
        "id": f"resp_{scenario}_{n}", "object": "response", "created_at": 1_767_225_600 + n,
        "model": RESPONSE_MODELS.get(model, model), "status": "incomplete" if incomplete else "completed",
        "incomplete_details": {"reason": incomplete} if incomplete else None, "error": None,
        "instructions": req.get("instructions"), "output": output, "parallel_tool_calls": True,
        "tool_choice": req.get("tool_choice") or "auto", "tools": req.get("tools") or [],
        "temperature": req.get("temperature"), "top_p": req.get("top_p"), "metadata": {},
        "text": {"format": {"type": "text"}}, "truncation": "disabled",
        "usage": {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": step.get("cached_tokens", 0)},
                  "output_tokens": out,
                  "output_tokens_details": {"reasoning_tokens": step.get("reasoning_tokens", 0)},
                  "total_tokens": prompt + out},
    }
