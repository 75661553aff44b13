"""A local fake of the OpenAI Chat Completions API that plays the scenarios' scripts.

`POST /v1/chat/completions` answers the n-th request carrying header `x-scenario: NAME` with step n
of that scenario's script: a completion (text or tool calls, with usage), an HTTP error with the
body OpenAI sends (429 rate_limit_exceeded, 500 server_error, 400 context_length_exceeded), or a
response held longer than the client's timeout. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from scenarios import BY_NAME

ERRORS: dict[int, dict[str, Any]] = {
    429: {"message": "Rate limit reached for gpt-4o-mini in organization org-fake on tokens per min (TPM): "
                     "Limit 30000, Used 29950, Requested 1200. Please try again in 2.4s.",
          "type": "tokens", "param": None, "code": "rate_limit_exceeded"},
    500: {"message": "The server had an error while processing your request. Sorry about that!",
          "type": "server_error", "param": None, "code": None},
    400: {"message": "This model's maximum context length is 128000 tokens. However, your messages resulted in "
                     "131072 tokens. Please reduce the length of the messages.",
          "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"},
}
RESPONSE_MODELS = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4.1": "gpt-4.1-2025-04-14"}


class FakeOpenAI:
    def __init__(self) -> None:
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
        script = BY_NAME[scenario].llm
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
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and went away: that was the point

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        req = json.loads(self.rfile.read(length) or b"{}")
        scenario = self.headers.get("x-scenario", "")
        if not self.path.rstrip("/").endswith("/chat/completions") or scenario not in BY_NAME:
            self._send(404, {"error": {"message": f"unknown path {self.path} or scenario {scenario!r}"}})
            return
        n, step = self.fake.step(scenario)
        if "sleep" in step:
            time.sleep(step["sleep"])
            self._send(500, {"error": {"message": "too late", "type": "server_error"}})
            return
        if "error" in step:
            self._send(step["error"], {"error": ERRORS[step["error"]]})
            return
        self._send(200, completion(req, scenario, n, step))


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
    return {
        "id": f"chatcmpl-{scenario}-{n}", "object": "chat.completion", "created": 1_767_225_600 + n,
        "model": RESPONSE_MODELS.get(model, model), "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": msg, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out},
    }
