"""A small OpenAI-compatible chat server on loopback whose models misbehave on purpose.

The model id says how it behaves, so a test or benchmark picks behaviour by choosing a model:
- `delay-<seconds>-<name>`: waits that long before the first token, then streams its reply;
- `error-<name>`: answers HTTP 500 with an OpenAI error body;
- `midfail-<name>`: streams a few tokens then drops the connection;
- anything else: answers at once.
The reply text comes from `answers` (last user message -> reply) when given, else it echoes the
last user message as "<model> says: <text>". A callable answer may return a dict {"content",
"tool_calls"} for a tool-calling reply; streamed, each call comes as OpenAI sends it: id and name
first, then the arguments in pieces of ARG_PIECE characters. It speaks real SSE over HTTP, so the
openai SDK runs its own code against it; `stream_options.include_usage` is honoured.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.serving import Served, serve_in_thread

TOKEN_GAP_S = 0.01  # between streamed tokens: fast enough for tests, slow enough to interleave
ARG_PIECE = 4  # characters of a tool call's arguments per streamed chunk (OpenAI's are a token or so)


class FakeChatServer:
    def __init__(self, answers: dict[str, str] | Callable[[str, list[dict]], str] | None = None,
                 models: list[str] | None = None) -> None:
        self.answers = answers
        self.models = models or ["fast-a", "fast-b", "delay-1-slow"]
        self.requests: list[dict] = []  # bodies received, for assertions
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # close-delimited bodies: simplest correct streaming

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                return

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                            for m in server.models]
                    self._json(200, {"object": "list", "data": data})
                else:
                    self._json(404, {"error": {"message": "no such route", "type": "invalid_request_error"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(body)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": "no such route", "type": "invalid_request_error"}})
                    return
                server._complete(self, body)

            def _json(self, status: int, obj: dict) -> None:
                raw = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._handler = Handler
        self._served: Served | None = None

    @property
    def base_url(self) -> str:
        assert self._served is not None, "start the fake first (`with FakeChatServer() as srv:`)"
        return f"{self._served.url}/v1"

    def start(self) -> FakeChatServer:
        self._served = serve_in_thread(self._handler, name="fake chat server")
        return self

    def close(self) -> None:
        if self._served is not None:
            self._served.stop()

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def client(self, **opts: Any) -> Any:
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key="fake-key", max_retries=0, **opts)

    def reply_text(self, model: str, messages: list[dict]) -> str:
        last_user = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
        if callable(self.answers):
            return self.answers(model, messages)
        if isinstance(self.answers, dict) and last_user in self.answers:
            return self.answers[last_user]
        return f"{model} says: {last_user}"

    def _complete(self, handler: BaseHTTPRequestHandler, body: dict) -> None:
        model = str(body.get("model", ""))
        if model.startswith("error-"):
            handler._json(500, {"error": {"message": "The fake model failed on purpose.",  # type: ignore[attr-defined]
                                          "type": "server_error", "code": None}})
            return
        delay = re.match(r"delay-([0-9.]+)-", model)
        if delay:
            time.sleep(float(delay.group(1)))
        text = self.reply_text(model, body.get("messages") or [])
        if isinstance(text, dict) and body.get("stream"):
            self._stream_calls(handler, body, model, text)
            return
        if isinstance(text, dict):  # a reply with tool calls: {"content": ..., "tool_calls": [...]}
            message = {"role": "assistant", "content": text.get("content"), "tool_calls": text.get("tool_calls")}
            handler._json(200, {"id": "chatcmpl-fake", "created": int(time.time()), "model": model,  # type: ignore[attr-defined]
                                "object": "chat.completion", "choices": [{
                                    "index": 0, "logprobs": None, "message": message,
                                    "finish_reason": "tool_calls" if text.get("tool_calls") else "stop"}]})
            return
        pieces = re.findall(r"\S+\s*|\s+", text) or [""]
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
                 "total_tokens": prompt_tokens + len(pieces)}
        base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": model}
        if not body.get("stream"):
            handler._json(200, {**base, "object": "chat.completion", "usage": usage,  # type: ignore[attr-defined]
                                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                             "message": {"role": "assistant", "content": text}}]})
            return
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.end_headers()

        def send(obj: dict | str) -> None:
            data = obj if isinstance(obj, str) else json.dumps(obj)
            handler.wfile.write(f"data: {data}\n\n".encode())
            handler.wfile.flush()

        chunk = {**base, "object": "chat.completion.chunk"}
        try:
            for i, piece in enumerate(pieces):
                if model.startswith("midfail-") and i == 2:
                    handler.wfile.write(b"data: {broken")  # then hang up mid-event
                    handler.wfile.flush()
                    return
                send({**chunk, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
                time.sleep(TOKEN_GAP_S)
            send({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                send({**chunk, "choices": [], "usage": usage})
            send("[DONE]")
        except (BrokenPipeError, ConnectionResetError):
            return  # the client stopped reading (a pane was stopped): nothing to clean up

    def _stream_calls(self, handler: BaseHTTPRequestHandler, body: dict, model: str, reply: dict) -> None:
        """A tool-calling reply as OpenAI streams it: content pieces, then per call a chunk with its index,
        id and name, then its arguments a few characters a chunk, then finish_reason "tool_calls"."""
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.end_headers()
        chunk = {"id": "chatcmpl-fake", "created": int(time.time()), "model": model, "object": "chat.completion.chunk"}

        def send(delta: dict | None, finish: str | None = None, **extra: Any) -> None:
            choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
            handler.wfile.write(f"data: {json.dumps({**chunk, 'choices': choices, **extra})}\n\n".encode())
            handler.wfile.flush()

        calls = reply.get("tool_calls") or []
        for piece in re.findall(r"\S+\s*|\s+", reply.get("content") or ""):
            send({"content": piece})
        for i, call in enumerate(calls):
            fn = call["function"]
            send({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                  "function": {"name": fn["name"], "arguments": ""}}]})
            args = fn["arguments"]
            for at in range(0, len(args), ARG_PIECE):
                send({"tool_calls": [{"index": i, "function": {"arguments": args[at:at + ARG_PIECE]}}]})
                time.sleep(TOKEN_GAP_S / 4)
        send({}, "tool_calls" if calls else "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            send(None, usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
        handler.wfile.write(b"data: [DONE]\n\n")
        handler.wfile.flush()
