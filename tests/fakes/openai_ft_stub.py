"""A loopback stand-in for OpenAI's files and fine-tuning API, for tests of the OpenAI path.

It answers with the object shapes and error bodies of OpenAI's OpenAPI spec
(openai/openai-openapi's openapi.yaml: FineTuningJob, FineTuningJobEvent, FineTuningJobCheckpoint,
OpenAIFile, ErrorResponse), and records every request body the SDK sends, so tests check exactly
what goes over the wire. Time is not simulated: each GET of a job moves it one tick forward
(validating_files -> queued -> running, a quarter of the steps per tick -> succeeded), so tests are
deterministic and never sleep. Scripted answers (`script`) make any route return an error, e.g. a
429 with Retry-After, or `insufficient_quota`.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fakes.serving import serve_in_thread

FINE_TUNABLE = {"gpt-4o-mini-2024-07-18", "gpt-4o-mini", "gpt-4.1-mini-2025-04-14", "gpt-3.5-turbo-0125",
                "gpt-3.5-turbo", "gpt-4.1-nano-2025-04-14"}
LISTED_MODELS = sorted(FINE_TUNABLE | {"gpt-4", "gpt-4o", "gpt-5-mini"})


def _error(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@dataclass
class Scripted:
    method: str
    path_prefix: str
    status: int
    body: dict
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


@dataclass
class StubJob:
    obj: dict[str, Any]
    total_steps: int
    step: int = 0
    ticks: int = 0
    fail_with: tuple[str, str, str | None] | None = None  # (code, message, param) once running
    events: list[dict] = field(default_factory=list)  # oldest first
    checkpoints: list[dict] = field(default_factory=list)


class OpenAIFineTuneStub:
    """Start with `OpenAIFineTuneStub()`; `.base_url`, `.api_key`, `.client()`, `.requests`; `.close()`."""

    def __init__(self, api_key: str = "sk-test-stub-1234") -> None:
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, StubJob] = {}
        self.scripted: list[Scripted] = []
        #: Set before creating a job to make that job fail once it runs: (code, message, param).
        self.fail_next_job: tuple[str, str, str | None] | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                return

            def do_GET(self) -> None:
                stub._handle(self, "GET")

            def do_POST(self) -> None:
                stub._handle(self, "POST")

            def do_DELETE(self) -> None:
                stub._handle(self, "DELETE")

        self._served = serve_in_thread(Handler, name="fake fine-tuning API")

    # ----------------------------------------------------------------- public helpers
    @property
    def base_url(self) -> str:
        return f"{self._served.url}/v1"

    def client(self, **opts: Any) -> Any:
        import openai

        opts.setdefault("api_key", self.api_key)
        return openai.OpenAI(base_url=self.base_url, **opts)

    def script(self, method: str, path_prefix: str, status: int, body: dict,
               headers: dict[str, str] | None = None, times: int = 1) -> None:
        self.scripted.append(Scripted(method, path_prefix, status, body, headers or {}, times))

    def rate_limit(self, method: str, path_prefix: str, retry_after: str, times: int = 1) -> None:
        self.script(method, path_prefix, 429, _error(
            "Rate limit reached for requests. Please try again later.", "requests", None,
            "rate_limit_exceeded"), {"retry-after": retry_after}, times)

    def insufficient_quota(self, method: str, path_prefix: str, times: int = 10) -> None:
        self.script(method, path_prefix, 429, _error(
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota", None, "insufficient_quota"), {"x-should-retry": "false"}, times)

    def bodies(self, method: str, path: str) -> list[Any]:
        return [r["body"] for r in self.requests if r["method"] == method and r["path"] == path]

    def close(self) -> None:
        self._served.stop()

    # ----------------------------------------------------------------- plumbing
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}stub"

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(h.path)
        raw = h.rfile.read(int(h.headers.get("content-length") or 0))
        body: Any = None
        ctype = h.headers.get("content-type", "")
        if raw and ctype.startswith("application/json"):
            body = json.loads(raw)
        elif raw and ctype.startswith("multipart/form-data"):
            body = _parse_multipart(ctype, raw)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with self._lock:
            self.requests.append({"method": method, "path": url.path, "query": query, "body": body})
            status, payload, headers = self._route(method, url.path, query, body, h.headers)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("content-type", headers.pop("content-type", None) or (
            "application/octet-stream" if isinstance(payload, bytes) else "application/json"))
        h.send_header("content-length", str(len(data)))
        h.send_header("x-request-id", f"req_{next(self._ids)}")
        for key, value in headers.items():
            h.send_header(key, value)
        h.end_headers()
        h.wfile.write(data)

    def _route(self, method: str, path: str, query: dict, body: Any,
               headers: Any) -> tuple[int, Any, dict[str, str]]:
        if headers.get("authorization") != f"Bearer {self.api_key}":
            given = (headers.get("authorization") or "").removeprefix("Bearer ")
            masked = given[:3] + "*" * 10 + given[-4:] if len(given) > 8 else "****"
            return 401, _error(f"Incorrect API key provided: {masked}. You can find your API key at "
                               "https://platform.openai.com/account/api-keys.",
                               "invalid_request_error", None, "invalid_api_key"), {}
        for s in self.scripted:
            if s.times > 0 and s.method == method and path.startswith(s.path_prefix):
                s.times -= 1
                return s.status, s.body, s.headers
        parts = path.strip("/").split("/")[1:]  # drop "v1"
        routes = {
            ("GET", "models"): lambda: self._models(),
            ("POST", "files"): lambda: self._upload(body),
            ("GET", "files", "*", "content"): lambda: self._file_content(parts[1]),
            ("POST", "fine_tuning", "jobs"): lambda: self._create(body),
            ("GET", "fine_tuning", "jobs"): lambda: self._list(query),
            ("GET", "fine_tuning", "jobs", "*"): lambda: self._retrieve(parts[2]),
            ("POST", "fine_tuning", "jobs", "*", "cancel"): lambda: self._cancel(parts[2]),
            ("GET", "fine_tuning", "jobs", "*", "events"): lambda: self._events(parts[2], query),
            ("GET", "fine_tuning", "jobs", "*", "checkpoints"): lambda: self._checkpoints(parts[2], query),
        }
        if (method, *parts) == ("POST", "chat", "completions"):
            return self._chat(body or {})
        for key, action in routes.items():
            if key[0] == method and len(key) - 1 == len(parts) and all(
                    k in ("*", p) for k, p in zip(key[1:], parts, strict=True)):
                status, payload = action()
                return status, payload, {}
        return 404, _error(f"Invalid URL ({method} {path})", "invalid_request_error"), {}

    # ----------------------------------------------------------------- chat
    def _chat(self, body: dict) -> tuple[int, Any, dict[str, str]]:
        """Chat completions, so one stand-in serves a whole story: a reply that fits the JSON schema sent
        (structured output, for generation), else "<model> says: <last user message>"; streamed as SSE
        when asked. Models the account cannot use (not listed) get OpenAI's 404."""
        import random

        from tests.fakes.fake_openai import _fill, _schema_of

        model = str(body.get("model") or "")
        if model not in {m["id"] for m in self._models()[1]["data"]}:
            return 404, _error(f"The model `{model}` does not exist or you do not have access to it.",
                               "invalid_request_error", None, "model_not_found"), {}
        schema = _schema_of(body)
        last = next((str(m.get("content") or "") for m in reversed(body.get("messages") or [])
                     if m.get("role") == "user"), "")
        text = (json.dumps(_fill(schema, random.Random(len(self.requests)), "answer")) if schema
                else f"{model} says: {last}")
        usage = {"prompt_tokens": max(1, len(json.dumps(body.get("messages"))) // 4),
                 "completion_tokens": max(1, len(text) // 4)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        base = {"id": self._new_id("chatcmpl-"), "created": int(time.time()), "model": model}
        if not body.get("stream"):
            return 200, {**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "finish_reason": "stop", "logprobs": None,
                 "message": {"role": "assistant", "content": text, "refusal": None}}]}, {}
        chunk = {**base, "object": "chat.completion.chunk"}
        words = text.split(" ")
        pieces = [w + " " for w in words[:-1]] + words[-1:]
        events = [{**chunk, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                  for piece in pieces]
        events.append({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**chunk, "choices": [], "usage": usage})
        sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return 200, sse.encode(), {"content-type": "text/event-stream"}

    # ----------------------------------------------------------------- files
    def _models(self) -> tuple[int, dict]:
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "system"}
                for m in LISTED_MODELS]
        # Like OpenAI: the organisation's fine-tuned models are listed too.
        data += [{"id": j.obj["fine_tuned_model"], "object": "model", "created": j.obj["finished_at"],
                  "owned_by": "org-stub"} for j in self.jobs.values() if j.obj.get("fine_tuned_model")]
        return 200, {"object": "list", "data": data}

    def _upload(self, form: dict | None) -> tuple[int, dict]:
        form = form or {}
        if form.get("purpose") != "fine-tune":
            return 400, _error("'purpose' must be 'fine-tune' here.", "invalid_request_error", "purpose")
        filename, content = form.get("filename") or "", form.get("file") or b""
        if not filename.endswith(".jsonl"):
            return 400, _error("Invalid file format for Fine-Tuning API. Must be .jsonl",
                               "invalid_request_error", None)
        file_id = self._new_id("file-")
        obj = {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
               "expires_at": None, "filename": filename, "purpose": "fine-tune", "status": "processed",
               "status_details": None}
        self.files[file_id] = {"obj": obj, "content": content}
        return 200, obj

    def _file_content(self, file_id: str) -> tuple[int, Any]:
        if file_id not in self.files:
            return 404, _error(f"No such File object: {file_id}", "invalid_request_error", "id")
        return 200, self.files[file_id]["content"]

    # ----------------------------------------------------------------- jobs
    def _create(self, body: dict) -> tuple[int, dict]:
        model = body.get("model")
        if model not in FINE_TUNABLE and not str(model).startswith("ft:"):
            return 400, _error(f"Model {model} is not available for fine-tuning or does not exist.",
                               "invalid_request_error", "model", "model_not_available")
        for param in ("training_file", "validation_file"):
            if body.get(param) and body[param] not in self.files:
                return 400, _error(f"invalid {param}: {body[param]}", "invalid_request_error", param)
        if not body.get("training_file"):
            return 400, _error("Missing required parameter: 'training_file'.",
                               "invalid_request_error", "training_file", "missing_required_parameter")
        hyper = dict(((body.get("method") or {}).get("supervised") or {}).get("hyperparameters")
                     or body.get("hyperparameters") or {})
        lines = [ln for ln in self.files[body["training_file"]]["content"].decode().splitlines() if ln.strip()]
        epochs = hyper.get("n_epochs") if isinstance(hyper.get("n_epochs"), int) else 3
        batch = hyper.get("batch_size") if isinstance(hyper.get("batch_size"), int) else 1
        lr = hyper.get("learning_rate_multiplier")
        resolved = {"n_epochs": epochs, "batch_size": batch,
                    "learning_rate_multiplier": lr if isinstance(lr, int | float) else 1.8}
        job_id = self._new_id("ftjob-")
        obj = {"object": "fine_tuning.job", "id": job_id, "model": model, "created_at": int(time.time()),
               "finished_at": None, "fine_tuned_model": None, "organization_id": "org-stub",
               "result_files": [], "status": "validating_files", "validation_file": body.get("validation_file"),
               "training_file": body["training_file"], "hyperparameters": resolved, "trained_tokens": None,
               "error": None, "integrations": [], "seed": body.get("seed", 42), "estimated_finish": None,
               "method": {"type": "supervised", "supervised": {"hyperparameters": resolved}},
               "metadata": body.get("metadata"), "suffix": body.get("suffix")}
        job = StubJob(obj, total_steps=max(1, -(-len(lines) * epochs // batch)),
                      fail_with=self.fail_next_job)
        self.fail_next_job = None
        self._event(job, "Created fine-tuning job")
        self._event(job, "Validating training file: " + body["training_file"])
        self.jobs[job_id] = job
        return 200, obj

    def _event(self, job: StubJob, message: str, level: str = "info", data: dict | None = None) -> None:
        job.events.append({"object": "fine_tuning.job.event", "id": self._new_id("ftevent-"),
                           "created_at": int(time.time()), "level": level, "message": message,
                           "data": data or {}, "type": "metrics" if data else "message"})

    def _tick(self, job: StubJob) -> None:
        """Move a job one step along OpenAI's life cycle (called on each retrieve)."""
        obj = job.obj
        if obj["status"] == "validating_files":
            bad = _first_invalid_line(self.files[obj["training_file"]]["content"])
            if bad is not None:
                return self._finish(job, "failed", ("invalid_training_file", "The job failed due to an "
                                    f"invalid training file. Invalid file format. Line {bad}, key "
                                    '"messages": every example needs a list of messages.', "training_file"))
            obj["status"] = "queued"
            self._event(job, "Files validated, moving job to queued state")
        elif obj["status"] == "queued":
            obj["status"] = "running"
            self._event(job, "Fine-tuning job started")
        elif obj["status"] == "running":
            if job.fail_with and job.step >= job.total_steps // 2:
                return self._finish(job, "failed", job.fail_with)
            for _ in range(max(1, job.total_steps // 4)):
                if job.step >= job.total_steps:
                    break
                job.step += 1
                self._metrics(job)
            if job.step >= job.total_steps:
                self._finish(job, "succeeded")

    def _metrics(self, job: StubJob) -> None:
        # The article's curve: training loss from about 1.2 to 0.6.
        loss = round(1.2 * 0.5 ** (job.step / job.total_steps), 4)
        data = {"step": job.step, "train_loss": loss, "total_steps": job.total_steps,
                "train_mean_token_accuracy": round(0.6 + 0.3 * job.step / job.total_steps, 4)}
        if job.obj["validation_file"]:
            data |= {"valid_loss": round(loss * 1.1, 4), "valid_mean_token_accuracy": 0.7}
        self._event(job, f"Step {job.step}/{job.total_steps}: training loss={loss:.2f}", data=data)

    def _finish(self, job: StubJob, status: str, error: tuple[str, str, str | None] | None = None) -> None:
        obj = job.obj
        obj["status"], obj["finished_at"] = status, int(time.time())
        if status == "failed" and error:
            code, message, param = error
            obj["error"] = {"code": code, "message": message, "param": param}
            self._event(job, message, level="error")
        if status == "succeeded":
            suffix = obj.get("suffix") or ""
            obj["fine_tuned_model"] = f"ft:{obj['model']}:stub-org:{suffix}:{obj['id'][-8:]}"
            obj["trained_tokens"] = 1234 * job.total_steps
            rows = ["step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"]
            for e in job.events:
                if e["type"] == "metrics":
                    d = e["data"]
                    rows.append(f"{d['step']},{d['train_loss']},{d['train_mean_token_accuracy']},"
                                f"{d.get('valid_loss', '')},{d.get('valid_mean_token_accuracy', '')}")
            result_id = self._new_id("file-")
            content = ("\n".join(rows) + "\n").encode()
            self.files[result_id] = {"content": content, "obj": {
                "id": result_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                "filename": "step_metrics.csv", "purpose": "fine-tune-results", "status": "processed"}}
            obj["result_files"] = [result_id]
            ckpt_steps = sorted({max(1, job.total_steps * k // 3) for k in (1, 2, 3)})
            for step in ckpt_steps:
                job.checkpoints.append({
                    "object": "fine_tuning.job.checkpoint", "id": self._new_id("ftckpt_"),
                    "created_at": int(time.time()), "fine_tuning_job_id": obj["id"], "step_number": step,
                    "fine_tuned_model_checkpoint": f"{obj['fine_tuned_model']}:ckpt-step-{step}",
                    "metrics": {"step": step, "train_loss": round(1.2 * 0.5 ** (step / job.total_steps), 4),
                                "train_mean_token_accuracy": 0.8}})
            self._event(job, "The job has successfully completed")
        if status == "cancelled":
            self._event(job, "Fine-tuning job cancelled")

    def _job(self, job_id: str) -> StubJob | None:
        return self.jobs.get(job_id)

    def _not_found(self, job_id: str) -> tuple[int, dict]:
        return 404, _error(f"Could not find fine tune: {job_id}", "invalid_request_error",
                           "fine_tune_id", "fine_tune_not_found")

    def _retrieve(self, job_id: str) -> tuple[int, dict]:
        job = self._job(job_id)
        if job is None:
            return self._not_found(job_id)
        self._tick(job)
        return 200, job.obj

    def _list(self, query: dict) -> tuple[int, dict]:
        jobs = sorted(self.jobs.values(), key=lambda j: j.obj["id"], reverse=True)
        objs = [j.obj for j in jobs]
        filters = {k[len("metadata["):-1]: v for k, v in query.items() if k.startswith("metadata[")}
        objs = [o for o in objs if all((o.get("metadata") or {}).get(k) == v for k, v in filters.items())]
        return 200, _page(objs, query)

    def _cancel(self, job_id: str) -> tuple[int, dict]:
        job = self._job(job_id)
        if job is None:
            return self._not_found(job_id)
        if job.obj["status"] in ("succeeded", "failed", "cancelled"):
            return 400, _error(f"Job {job_id} has already completed: cannot cancel.",
                               "invalid_request_error", None)
        self._finish(job, "cancelled")
        return 200, job.obj

    def _events(self, job_id: str, query: dict) -> tuple[int, dict]:
        job = self._job(job_id)
        if job is None:
            return self._not_found(job_id)
        return 200, _page(list(reversed(job.events)), query)  # newest first, like OpenAI

    def _checkpoints(self, job_id: str, query: dict) -> tuple[int, dict]:
        job = self._job(job_id)
        if job is None:
            return self._not_found(job_id)
        page = _page(list(reversed(job.checkpoints)), query)
        page["first_id"] = page["data"][0]["id"] if page["data"] else None
        page["last_id"] = page["data"][-1]["id"] if page["data"] else None
        return 200, page


def _page(items: list[dict], query: dict) -> dict:
    limit = int(query.get("limit") or 20)
    after = query.get("after")
    if after:
        ids = [i["id"] for i in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit}


def _first_invalid_line(content: bytes) -> int | None:
    for number, line in enumerate(content.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            return number
        if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
            return number
    return None


def _parse_multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    form: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if part.get_filename():
            form["filename"] = part.get_filename()
            form[name] = payload
        else:
            form[name] = payload.decode()
    return form
