"""Record LangSmith runs with the real `langsmith` SDK.

A small agent (`@traceable` functions, `wrap_openai` around the real `openai` client) talks to a
fake OpenAI server on 127.0.0.1, and the SDK is pointed at a fake LangSmith endpoint on 127.0.0.1
that captures what the SDK posts (the multipart `/runs/multipart` stream, zstd or not, or the JSON
`/runs/batch` payload). `runs()` merges each run's `post` and `patch` operations into one run
record, the shape `Client.list_runs` returns (less what the LangSmith server computes itself), so
the adapter reads what a user's export holds.

`python tests/langsmith_recorder.py tests/golden/langsmith/sdk-recorded.jsonl` rewrites the
committed recording.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import os
import re
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

# --- fake OpenAI ------------------------------------------------------------------------------------

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def _completion(n: int, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Scripted answers: ask for get_weather first, then answer from the tool result."""
    asked_tool = any(m.get("role") == "tool" for m in messages)
    if not asked_tool:
        message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [{
            "id": f"call_{n}", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}]}
        finish, usage = "tool_calls", (57, 17, 32)
    else:
        tool_text = next(m["content"] for m in messages if m.get("role") == "tool")
        message = {"role": "assistant", "content": f"It is {tool_text} in Paris."}
        finish, usage = "stop", (80, 7, 0)
    prompt, completion, cached = usage
    return {
        "id": f"chatcmpl-{n}", "object": "chat.completion", "created": 1_767_225_600 + n,
        "model": f"{model}-2024-07-18", "system_fingerprint": "fp_test",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                  "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}},
    }


class _OpenAIHandler(BaseHTTPRequestHandler):
    calls = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        type(self).calls += 1
        out = json.dumps(_completion(type(self).calls, body.get("model", "gpt-4o-mini"), body["messages"])).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: Any) -> None:
        pass


# --- fake LangSmith ---------------------------------------------------------------------------------


class _LangSmithHandler(BaseHTTPRequestHandler):
    ops: ClassVar[list[tuple[str, str, dict[str, Any]]]] = []  # (operation, run id, fields), in order
    lock = threading.Lock()

    def _reply(self, status: int, body: Any) -> None:
        out = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self) -> None:
        if self.path.startswith("/info"):
            self._reply(200, {"version": "0.10.0", "instance_flags": {}, "batch_ingest_config": {
                "use_multipart_endpoint": True, "scale_up_qsize_trigger": 1000, "scale_up_nthreads_limit": 16,
                "scale_down_nempty_trigger": 4, "size_limit": 100, "size_limit_bytes": 20_971_520}})
        else:
            self._reply(404, {"detail": "not found"})

    def _body(self) -> bytes:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "zstd":
            import zstandard

            raw = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
        return raw

    def do_POST(self) -> None:
        body = self._body()
        with self.lock:
            if self.path.startswith("/runs/multipart"):
                self._multipart(body)
            elif self.path.startswith("/runs/batch"):
                payload = json.loads(body)
                for op in ("post", "patch"):
                    for run in payload.get(op) or []:
                        self.ops.append((op, run["id"], run))
            elif self.path.rstrip("/") == "/runs":
                run = json.loads(body)
                self.ops.append(("post", run["id"], run))
        self._reply(202, {})

    def do_PATCH(self) -> None:
        body = self._body()
        run_id = self.path.rstrip("/").rsplit("/", 1)[-1]
        with self.lock:
            self.ops.append(("patch", run_id, json.loads(body)))
        self._reply(202, {})

    def _multipart(self, body: bytes) -> None:
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            op, run_id, *field = name.split(".")
            if op not in ("post", "patch"):
                continue  # feedback, attachments
            value = json.loads(part.get_payload(decode=True))
            if field:
                self.ops.append((op, run_id, {field[0]: value}))
            else:
                self.ops.append((op, run_id, value))

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


# --- the agent --------------------------------------------------------------------------------------


def _agent_runs(openai_url: str) -> None:
    from langsmith import traceable
    from langsmith.wrappers import wrap_openai
    from openai import OpenAI

    client = wrap_openai(OpenAI(base_url=f"{openai_url}/v1", api_key="sk-test", max_retries=0))

    @traceable(run_type="tool", name="get_weather")
    def get_weather(city: str) -> str:
        if city == "Atlantis":
            raise ValueError(f"no weather station in {city}")
        return "rainy"

    @traceable(run_type="chain", name="weather-agent")
    def agent(question: str, city: str = "Paris") -> str:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": "You answer weather questions with the get_weather tool."},
            {"role": "user", "content": question}]
        first = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS,
                                               temperature=0)
        call = first.choices[0].message.tool_calls[0]
        messages.append(first.choices[0].message.model_dump(exclude_none=True))
        result = get_weather(city)
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        final = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS, temperature=0)
        return final.choices[0].message.content or ""

    meta = {"thread_id": "thread-7", "user_id": "u-42", "customer_id": "acme", "feature": "weather"}
    agent("Weather in Paris?", langsmith_extra={"metadata": meta, "tags": ["prod"]})
    with contextlib.suppress(ValueError):
        agent("Weather in Atlantis?", city="Atlantis",
              langsmith_extra={"metadata": {**meta, "thread_id": "thread-8"}})


def record() -> list[dict[str, Any]]:
    """Run the agent twice (once failing in its tool) and return the runs the SDK sent."""
    from langsmith import Client
    from langsmith.run_helpers import tracing_context

    _LangSmithHandler.ops = []
    _OpenAIHandler.calls = 0
    with _server(_OpenAIHandler) as openai_url, _server(_LangSmithHandler) as ls_url:
        env = {"LANGSMITH_TRACING": "true", "LANGSMITH_ENDPOINT": ls_url, "LANGSMITH_API_KEY": "lsv2_test",
               "LANGSMITH_PROJECT": "weather-demo", "OPENAI_API_KEY": "sk-test"}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            client = Client(api_url=ls_url, api_key="lsv2_test")
            with tracing_context(client=client, project_name="weather-demo", enabled=True):
                _agent_runs(openai_url)
            client.flush()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            _forget_cached_env()
        return runs(list(_LangSmithHandler.ops))


def _forget_cached_env() -> None:
    """The SDK caches environment lookups: drop them so tracing stays off for the rest of the process."""
    from langsmith import utils

    for name in ("get_env_var", "get_tracer_project"):
        fn = getattr(utils, name, None)
        if hasattr(fn, "cache_clear"):
            fn.cache_clear()


def runs(ops: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Merge each run's `post` and `patch` fields (in arrival order) into one run record."""
    merged: dict[str, dict[str, Any]] = {}
    for _op, run_id, fields in ops:
        run = merged.setdefault(run_id, {"id": run_id})
        for k, v in fields.items():
            if k == "extra" and isinstance(run.get("extra"), dict) and isinstance(v, dict):
                run["extra"] = {**run["extra"], **v}
            elif v is not None or k not in run:
                run[k] = v
    for run in merged.values():
        run.setdefault("status", "error" if run.get("error") else "success")
    return sorted(merged.values(), key=lambda r: r.get("dotted_order") or "")


def write_jsonl(records: list[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    return path


def scrub(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For the committed recording: no paths of the recording machine, no random ports."""
    root = str(Path(__file__).resolve().parents[1]) + "/"
    text = json.dumps(records).replace(root, "")
    text = re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:1984", text)
    return list(json.loads(text))


if __name__ == "__main__":
    write_jsonl(scrub(record()), Path(sys.argv[1]))
