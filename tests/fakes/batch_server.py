"""A stand-in for OpenAI's Files + Batches API on a free loopback port: the real openai SDK talks to
it over real HTTP.

Batches are created "validating", are "in_progress" at the next retrieve, and finish when the test
says so (`finish(...)`) or at once on retrieve with `auto_finish=True`. A finish can complete, expire
(part of the requests done, the rest in the error file as `batch_expired`) or fail validation; some
requests can fail (a 500 line in the error file) or come back unparsable; a cancel leaves it
"cancelling" until the next retrieve, then "cancelled". Answers fit the request's JSON schema (the
fake teacher's), or say "Final answer: 42" for a plain question; `/v1/chat/completions` answers one
call the same way (a custom template's setup call).

    with FakeBatches() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="test")
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from tests.fakes.fake_openai import _fill, _schema_of
from tests.fakes.serving import Served, ServedApp


@dataclass
class FakeBatches(ServedApp):
    SERVER_NAME = "fake batch server"
    auto_finish: bool = False
    #: Requests (by position in the file, 0-based) answered with a 500 in the error file.
    fail_lines: tuple[int, ...] = ()
    #: Requests whose answer is not JSON (parsed as a failure by the app, not by the server).
    garbage_lines: tuple[int, ...] = ()
    #: "openai", "azure" or "vllm": how output lines look.
    style: str = "openai"
    seed: int = 0
    files: dict[str, dict] = field(default_factory=dict)
    batches: dict[str, dict] = field(default_factory=dict)
    #: Observations for assertions.
    created: int = 0
    uploads: int = 0
    chats: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.app = self._build_app()
        self._served: Served | None = None
        self.port = 0

    # -- what a test drives ------------------------------------------------------------------------
    def finish(self, batch_id: str | None = None, *, outcome: str = "completed", done: int | None = None) -> None:
        """Finish one batch (or every open one): "completed", "expired" (only `done` requests ran) or
        "failed" (validation failed, nothing ran)."""
        with self._lock:
            ids = [batch_id] if batch_id else [b for b, v in self.batches.items() if v["status"] not in
                                               ("completed", "failed", "expired", "cancelled")]
            for bid in ids:
                self._finish(self.batches[bid], outcome, done)

    # -- the server ---------------------------------------------------------------------------------
    def _new_file(self, content: bytes, purpose: str, name: str) -> dict:
        fid = f"file-{len(self.files) + 1:06d}"
        self.files[fid] = {"id": fid, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                           "filename": name, "purpose": purpose, "status": "processed", "_content": content}
        return self.files[fid]

    @staticmethod
    def _public(obj: dict) -> dict:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def _answer(self, body: dict, number: int, garbage: bool, salt: str) -> str:
        if garbage:
            return "Sorry, I cannot produce JSON {oops"
        schema = _schema_of(body)
        if (verdict := _judge_verdict(body)) is not None:
            return verdict
        if schema is None:
            return "Let me think.\nFinal answer: 42"
        return json.dumps(_fill(schema, random.Random(f"{self.seed}:{salt}:{number}"), "answer"))

    def _line(self, req: dict, number: int, status: int, content: str | None) -> dict:
        rid = f"req_{number:06x}"
        if status != 200:
            body = ({"object": "error", "message": "injected failure", "type": "InternalServerError", "code": 500}
                    if self.style == "vllm" else
                    {"error": {"message": "injected failure", "type": "server_error", "param": None, "code": None}})
            return {"id": f"batch_req_{number:06x}", "custom_id": req["custom_id"],
                    "response": {"status_code": status, "request_id": rid, "body": body}, "error": None}
        body = req["body"]
        prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages", [])) // 4 + 1
        completion = {"id": f"chatcmpl-{number:06x}", "object": "chat.completion", "created": int(time.time()),
                      "model": body.get("model", "fake"),
                      "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                   "message": {"role": "assistant", "content": content, "refusal": None}}],
                      "usage": {"prompt_tokens": prompt, "completion_tokens": len(content or "") // 4 + 1,
                                "total_tokens": prompt + len(content or "") // 4 + 1}}
        if self.style == "azure":
            completion["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": {
                "hate": {"filtered": False, "severity": "safe"}}}]
            completion["choices"][0]["content_filter_results"] = {"hate": {"filtered": False, "severity": "safe"}}
            return {"custom_id": req["custom_id"], "response": {"body": completion, "request_id": rid,
                                                                "status_code": 200}, "error": None}
        if self.style == "vllm":
            return {"id": f"vllm-{number:032x}", "custom_id": req["custom_id"],
                    "response": {"status_code": 200, "request_id": f"vllm-batch-{number:032x}", "body": completion},
                    "error": None}
        return {"id": f"batch_req_{number:06x}", "custom_id": req["custom_id"],
                "response": {"status_code": 200, "request_id": rid, "body": completion}, "error": None}

    def _finish(self, b: dict, outcome: str, done: int | None) -> None:
        now = int(time.time())
        if outcome == "failed":
            b.update(status="failed", failed_at=now,
                     errors={"object": "list", "data": [{"code": "invalid_request", "line": 1,
                                                         "message": "injected validation failure", "param": None}]})
            return
        lines = [json.loads(x) for x in self.files[b["input_file_id"]]["_content"].decode().splitlines() if x.strip()]
        ran = len(lines) if done is None else done
        out, err = [], []
        for number, req in enumerate(lines):
            if number >= ran:
                code = "batch_cancelled" if outcome == "cancelled" else "batch_expired"
                err.append({"id": f"batch_req_{number:06x}", "custom_id": req["custom_id"], "response": None,
                            "error": {"code": code, "message": "This request could not be executed before the "
                                      "completion window expired." if code == "batch_expired" else "cancelled"}})
            elif number in self.fail_lines:
                err.append(self._line(req, number, 500, None))
            else:
                out.append(self._line(req, number, 200, self._answer(req["body"], number, number in self.garbage_lines, b["id"])))
        dump = lambda rows: "".join(json.dumps(r) + "\n" for r in rows).encode()  # noqa: E731
        b["output_file_id"] = self._new_file(dump(out), "batch_output", "output.jsonl")["id"] if out else None
        b["error_file_id"] = self._new_file(dump(err), "batch_output", "errors.jsonl")["id"] if err else None
        b["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(err)}
        b["status"] = outcome
        b[{"completed": "completed_at", "expired": "expired_at", "cancelled": "cancelled_at"}[outcome]] = now

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> dict:  # one interactive call (a custom template's setup)
            body = await request.json()
            with self._lock:
                self.chats += 1
                number = self.chats
            line = self._line({"custom_id": "chat", "body": body}, number, 200,
                              self._answer(body, number, False, "chat"))
            return line["response"]["body"]

        @app.post("/v1/files")
        async def upload(file: UploadFile, purpose: str = Form(...)) -> dict:
            content = await file.read()
            with self._lock:
                self.uploads += 1
                return self._public(self._new_file(content, purpose, file.filename or "upload.jsonl"))

        @app.get("/v1/files/{fid}/content")
        async def content(fid: str) -> Response:
            f = self.files.get(fid)
            if f is None:
                return _not_found(fid)
            return Response(f["_content"], media_type="application/octet-stream")

        @app.post("/v1/batches")
        async def create(request: Request) -> Any:
            body = await request.json()
            with self._lock:
                if body.get("input_file_id") not in self.files:
                    return _not_found(body.get("input_file_id"))
                self.created += 1
                bid = f"batch_{self.created:06d}"
                now = int(time.time())
                total = len([x for x in self.files[body["input_file_id"]]["_content"].splitlines() if x.strip()])
                self.batches[bid] = {
                    "id": bid, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                    "input_file_id": body["input_file_id"], "completion_window": body["completion_window"],
                    "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": now,
                    "in_progress_at": None, "expires_at": now + 24 * 3600, "finalizing_at": None,
                    "completed_at": None, "failed_at": None, "expired_at": None, "cancelling_at": None,
                    "cancelled_at": None, "request_counts": {"total": total, "completed": 0, "failed": 0},
                    "metadata": body.get("metadata")}
                return self.batches[bid]

        @app.get("/v1/batches/{bid}")
        async def retrieve(bid: str) -> Any:
            with self._lock:
                b = self.batches.get(bid)
                if b is None:
                    return _not_found(bid)
                if b["status"] == "validating":
                    b.update(status="in_progress", in_progress_at=int(time.time()))
                elif b["status"] == "cancelling":
                    self._finish(b, "cancelled", 0)
                if self.auto_finish and b["status"] == "in_progress":
                    self._finish(b, "completed", None)
                return b

        @app.post("/v1/batches/{bid}/cancel")
        async def cancel(bid: str) -> Any:
            with self._lock:
                b = self.batches.get(bid)
                if b is None:
                    return _not_found(bid)
                if b["status"] in ("validating", "in_progress"):
                    b.update(status="cancelling", cancelling_at=int(time.time()))
                return b

        @app.get("/v1/batches")
        async def listing() -> dict:
            with self._lock:
                data = list(reversed(self.batches.values()))
            return {"object": "list", "data": data, "first_id": None, "last_id": None, "has_more": False}

        return app


def _judge_verdict(body: dict) -> str | None:
    """A judge's request (scoring.judge_messages): CORRECT when the reference answer appears in the
    answer to grade, else INCORRECT; deterministic, so the interactive and batch judges agree."""
    messages = body.get("messages") or [{}]
    if "CORRECT or INCORRECT" not in str(messages[0].get("content") or ""):
        return None
    text = str(messages[-1].get("content") or "")
    reference = text.split("Reference answer:\n", 1)[-1].split("\n\nAnswer to grade:", 1)[0].strip()
    graded = text.split("Answer to grade:\n", 1)[-1].split("\n\nIs the answer correct", 1)[0]
    return "CORRECT" if reference and reference in graded else "INCORRECT"


def _not_found(what: Any) -> JSONResponse:
    return JSONResponse({"error": {"message": f"No such object: {what}", "type": "invalid_request_error",
                                   "param": None, "code": None}}, status_code=404)
