"""A real OpenAI-compatible HTTP server on a free loopback port, for tests and benchmarks.

It answers `POST /v1/chat/completions` after a configurable latency with a JSON object that fits the
schema it was sent (from `response_format`, or the schema the prompt spells out), and can inject 429s
with Retry-After, 500s, garbage replies, a refusal of `json_schema` response formats, replies without
`usage`, and wrong final answers for answer checks. The real openai SDK talks to it over real HTTP.

    with FakeOpenAI(latency=0.5, failure_rate=0.2) as fake:
        client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="test")
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fakes.serving import Served, ServedApp

_WORD_TEXT = ("apple river stone cloud seven lantern violet engine harbor meadow puzzle copper falcon winter "
         "orchard signal marble candle thunder garden silver bridge pepper island rocket velvet canyon "
         "compass forest needle pillow tiger window basket comet ladder mirror nickel oyster planet quartz "
         "saddle tunnel umbrella walnut yellow zebra anchor barrel castle dragon ember feather glacier "
         "hammer ivory jacket kettle lemon magnet nectar olive parrot quiver ribbon spider tulip unicorn "
         "valley wagon yogurt acorn bamboo cactus dolphin eagle fossil goblet hazel iguana jungle koala")
WORDS = _WORD_TEXT.split()
SCHEMA_MARKER = "matching this JSON schema:"


@dataclass
class FakeOpenAI(ServedApp):
    SERVER_NAME = "fake OpenAI server"
    latency: float = 0.0
    #: Share of requests answered with an error, picked from `failure_statuses`.
    failure_rate: float = 0.0
    failure_statuses: tuple[int, ...] = (429, 500)
    retry_after: float | None = 0.05
    #: The first `fail_first` requests fail whatever the rate (deterministic tests).
    fail_first: int = 0
    garbage_rate: float = 0.0
    reject_json_schema: bool = False
    omit_usage: bool = False
    #: Share of answer-check replies whose final answer disagrees with the generated one.
    disagree_rate: float = 0.0
    seed: int = 0
    model: str = "fake-teacher"
    #: (content, finish_reason) answers given, in order, to the first structured requests.
    scripted: list = field(default_factory=list)
    # Observations, for assertions.
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    response_formats: Counter = field(default_factory=Counter)
    schemas: list = field(default_factory=list)  # the json_schema of each request that sent one
    active: int = 0
    max_active: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._counter = 0
        self.app = self._build_app()
        self._served: Served | None = None
        self.port = 0

    # -- behaviour ----------------------------------------------------------------------------------
    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> dict:
            return {"object": "list", "data": [{"id": self.model, "object": "model", "created": 0,
                                                "owned_by": "fake"}]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            body = await request.json()
            with self._lock:
                self.requests += 1
                number = self.requests
                self.active += 1
                self.max_active = max(self.max_active, self.active)
                fail = number <= self.fail_first or self._rng.random() < self.failure_rate
                status = self._rng.choice(self.failure_statuses) if fail else 200
                garbage = not fail and self._rng.random() < self.garbage_rate
                disagree = self._rng.random() < self.disagree_rate
                fmt = (body.get("response_format") or {}).get("type", "none")
                self.response_formats[fmt] += 1
                if fmt == "json_schema":
                    self.schemas.append(body["response_format"]["json_schema"]["schema"])
                script = self.scripted.pop(0) if self.scripted and fmt == "json_schema" else None
            try:
                await asyncio.sleep(self.latency)
                if self.reject_json_schema and fmt == "json_schema":
                    return self._error(400, "response_format json_schema is not supported", "invalid_request_error")
                if status != 200:
                    return self._error(status, "injected failure", "rate_limit_exceeded" if status == 429 else None)
                if script is not None:
                    content, finish_reason = script
                else:
                    content = "I cannot help with that {oops" if garbage else self._content(body, disagree)
                    finish_reason = "stop"
                with self._lock:
                    self.statuses[200] += 1
                return self._completion(body, content, finish_reason)
            finally:
                with self._lock:
                    self.active -= 1

        return app

    def _error(self, status: int, message: str, code: str | None) -> JSONResponse:
        with self._lock:
            self.statuses[status] += 1
        headers = {"retry-after": str(self.retry_after)} if status == 429 and self.retry_after is not None else {}
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error" if status < 500 else
                                       "server_error", "param": None, "code": code}},
                            status_code=status, headers=headers)

    def _content(self, body: dict, disagree: bool) -> str:
        schema = _schema_of(body)
        if schema is None:  # a plain request, e.g. an answer check
            return "Let me work it out step by step.\nFinal answer: " + ("7" if disagree else "42")
        with self._lock:
            self._counter += 1
            rng = random.Random(f"{self.seed}:{self._counter}")
        return json.dumps(_fill(schema, rng, "answer"))

    def _completion(self, body: dict, content: str, finish_reason: str = "stop") -> dict:
        prompt_chars = sum(len(str(m.get("content") or "")) for m in body.get("messages", []))
        out: dict[str, Any] = {
            "id": f"chatcmpl-fake{self.requests}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "finish_reason": finish_reason, "logprobs": None,
                         "message": {"role": "assistant", "content": content, "refusal": None}}],
        }
        if not self.omit_usage:
            p, c = max(1, prompt_chars // 4), max(1, len(content) // 4)
            out["usage"] = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        return out


def _schema_of(body: dict) -> dict | None:
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return fmt["json_schema"]["schema"]
    for message in body.get("messages", []):
        text = str(message.get("content") or "")
        if SCHEMA_MARKER in text:
            found = re.search(r"\{.*\}", text.split(SCHEMA_MARKER, 1)[1], re.DOTALL)
            if found:
                return json.loads(found.group(0))
    return None


def _fill(schema: dict, rng: random.Random, name: str) -> Any:
    kind = schema.get("type")
    if isinstance(schema.get("enum"), list) and schema["enum"]:  # as constrained decoding would
        return rng.choice(schema["enum"])
    if kind == "object":
        return {k: _fill(v, rng, k) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        count = min(3, schema.get("maxItems", 3))  # as a teacher constrained to the schema would
        return [_fill(schema.get("items", {"type": "string"}), rng, name) for _ in range(count)]
    if kind in ("number", "integer"):
        return rng.randint(int(schema.get("minimum", 1)), int(schema.get("maximum", 100)))
    if kind == "boolean":
        return True
    if name == "final_answer":
        return "42"
    return " ".join(rng.sample(WORDS, 12)).capitalize() + "?"


def main() -> None:
    """`python -m tests.fakes.fake_openai --latency 0.5`: serve in its own process (benchmarks)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--retry-after", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    fake = FakeOpenAI(latency=args.latency, failure_rate=args.failure_rate, retry_after=args.retry_after,
                      seed=args.seed).start()
    print(fake.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
