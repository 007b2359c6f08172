"""A small OpenAI-shaped HTTP server on loopback for endpoint tests (model lists, keys, failures).

The first path part picks a behaviour, so one server covers every failure path:
  /ok/v1/...          models per key (`keys` maps a bearer key to its model ids; unknown key: 401)
  /unauthorized/v1/.. 401 with OpenAI's error body, echoing part of the key as OpenAI does
  /garbage/v1/...     200 with an HTML page
  /badshape/v1/...    200 JSON that is not a model list
  /ratelimit/v1/...   429 rate_limit_exceeded
  /switch/v1/...      like /ok while `healthy` is True, 500 after (to test "keep the last good list")
  /azure/openai/deployments/<model>/chat/completions?api-version=...  Azure's shape: `api-key`
                      header, the deployment in the path; 404 DeploymentNotFound for an unknown one
Every request's Authorization header is recorded in `seen_keys` (the tests check which key was sent).
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.serving import Served, serve_in_thread


class OpenAIStub:
    def __init__(self, keys: dict[str, list[str]] | None = None) -> None:
        self.keys: dict[str, list[str]] = dict(keys or {})
        self.jobs: dict[str, list[dict[str, Any]]] = {}  # key -> fine-tuning job objects
        self.healthy = True
        self.api_versions: list[str] = []  # Azure's api-version query parameter, per request
        self.seen_keys: list[str] = []
        self.seen_headers: list[dict[str, str]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                return

            def do_GET(self) -> None:
                stub._handle(self)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                stub._handle(self)

        self._handler = Handler
        self._served: Served | None = None

    @property
    def port(self) -> int:
        assert self._served is not None, "start the stub first (`with OpenAIStub(...) as stub:`)"
        return self._served.port

    def url(self, behaviour: str = "ok") -> str:
        return f"http://127.0.0.1:{self.port}/{behaviour}/v1"

    def __enter__(self) -> OpenAIStub:
        self._served = serve_in_thread(self._handler, name="OpenAI stub")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._served is not None:
            self._served.stop()

    # ---- behaviours ------------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        auth = req.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ").strip() or req.headers.get("api-key", "")
        self.seen_keys.append(key)
        self.seen_headers.append({k.lower(): v for k, v in req.headers.items()})
        parts = req.path.split("?")[0].strip("/").split("/")
        behaviour, rest = parts[0], parts[2:] if len(parts) > 2 else []
        if behaviour == "azure" and key in self.keys:
            return self._azure(req, key, parts[1:])
        if behaviour == "switch":
            behaviour = "ok" if self.healthy else "down"
        if behaviour == "down":
            return self._json(req, 500, _error("The server had an error.", "server_error"))
        if behaviour == "garbage":
            return self._raw(req, 200, b"<html><body>Welcome to nginx!</body></html>", "text/html")
        if behaviour == "badshape":
            return self._json(req, 200, {"hello": "world", "data": "nope"})
        if behaviour == "ratelimit":
            return self._json(req, 429, _error("Rate limit reached for requests", "rate_limit_exceeded"))
        if behaviour == "unauthorized" or key not in self.keys:
            shown = f"{key[:3]}***{key[-4:]}" if len(key) > 8 else key
            return self._json(req, 401, _error(f"Incorrect API key provided: {shown}.", "invalid_api_key"))
        return self._ok(req, key, rest)

    def _ok(self, req: BaseHTTPRequestHandler, key: str, rest: list[str]) -> None:
        models = self.keys[key]
        if rest == ["models"]:
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "stub"} for m in models]
            return self._json(req, 200, {"object": "list", "data": data})
        if len(rest) == 2 and rest[0] == "models":
            if rest[1] in models:
                return self._json(req, 200, {"id": rest[1], "object": "model", "created": 0, "owned_by": "stub"})
            return self._json(req, 404, _error(f"The model `{rest[1]}` does not exist", "model_not_found"))
        if rest == ["fine_tuning", "jobs"]:
            return self._json(req, 200, {"object": "list", "data": self.jobs.get(key, []), "has_more": False})
        return self._json(req, 404, _error("Unknown path", None))

    def _azure(self, req: BaseHTTPRequestHandler, key: str, rest: list[str]) -> None:
        self.api_versions.append(req.path.partition("api-version=")[2])
        if len(rest) == 5 and rest[:2] == ["openai", "deployments"] and rest[3:] == ["chat", "completions"]:
            if rest[2] not in self.keys[key]:
                return self._json(req, 404, _error("The API deployment for this resource does not exist.",
                                                   "DeploymentNotFound"))
            return self._json(req, 200, {
                "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": rest[2],
                "choices": [{"index": 0, "finish_reason": "length",
                             "message": {"role": "assistant", "content": "p"}}]})
        return self._json(req, 404, _error("Unknown path", None))

    @staticmethod
    def _json(req: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        OpenAIStub._raw(req, status, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _raw(req: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str) -> None:
        req.send_response(status)
        req.send_header("content-type", ctype)
        req.send_header("content-length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)


def _error(message: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


def job(job_id: str, model: str | None, status: str = "succeeded", finished_at: int = 1) -> dict[str, Any]:
    """A fine-tuning job object as OpenAI returns it (only the fields the app reads matter)."""
    return {"id": job_id, "object": "fine_tuning.job", "model": "gpt-4.1-mini-2025-04-14",
            "created_at": finished_at - 1, "finished_at": finished_at if status == "succeeded" else None,
            "fine_tuned_model": model, "status": status, "organization_id": "org-stub",
            "hyperparameters": {"n_epochs": 3}, "result_files": [], "seed": 0, "trained_tokens": 1,
            "training_file": "file-1", "validation_file": None, "error": None}
