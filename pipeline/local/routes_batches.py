"""/v1/batches: create, list, retrieve, cancel (OpenAI's Batch API; the runner is batches.py)."""

from __future__ import annotations

import secrets
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request

from pipeline.local import batchfile
from pipeline.local.batches import ACTIVE, FINAL, usage
from pipeline.local.errors import APIError, bad_request, not_found
from pipeline.local.openapi import request_body
from pipeline.local.routes_files import After, page
from pipeline.local.schemas import CreateBatchRequest, parse

router = APIRouter()
WINDOW_S = {"24h": 24 * 3600}  # OpenAI's only completion window
BatchLimit = Annotated[int, Query(ge=1, le=100, description="How many batches to return (1-100)")]
_TIMES = ("in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at")


def public(batch: dict) -> dict:
    """The batch as the API shows it: without the runner's private keys."""
    return {k: v for k, v in batch.items() if not k.startswith("_")}


@router.post("/v1/batches", openapi_extra=request_body(CreateBatchRequest))
async def create_batch(request: Request) -> dict:
    backend = request.app.state.backend
    body = await parse(request, CreateBatchRequest)
    if body.endpoint != batchfile.ENDPOINT:
        raise bad_request(f"The local backend runs batches of {batchfile.ENDPOINT} only, not '{body.endpoint[:80]}'. "
                          "Send those requests to OpenAI, or write them as chat completions.", "endpoint",
                          "invalid_endpoint")
    if body.completion_window not in WINDOW_S:
        raise bad_request(f"completion_window must be '24h' (OpenAI's only window), not '{body.completion_window}'.",
                          "completion_window")
    meta = backend.store.get_file(body.input_file_id)
    if meta is None:
        raise APIError(400, f"input_file_id '{body.input_file_id}' does not exist; upload the request file with "
                       "files.create(purpose='batch').", param="input_file_id", code="invalid_file")
    if meta["purpose"] != "batch":
        raise bad_request(f"The file '{body.input_file_id}' was uploaded with purpose '{meta['purpose']}'; a batch "
                          "runs a file uploaded with purpose 'batch'.", "input_file_id", "invalid_file")
    runner = backend.require_batches()
    created = int(time.time())
    batch = {"id": f"batch_{secrets.token_hex(12)}", "object": "batch", "endpoint": body.endpoint,
             "model": batchfile.model_of(backend.store.file_data_path(body.input_file_id)),
             "errors": None, "input_file_id": body.input_file_id, "completion_window": body.completion_window,
             "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": created,
             "expires_at": created + WINDOW_S[body.completion_window], **dict.fromkeys(_TIMES),
             "request_counts": {"total": 0, "completed": 0, "failed": 0}, "usage": usage(0, 0),
             "metadata": body.metadata, "_seq": time.time_ns()}
    backend.store.create_batch(batch)
    runner.wake()
    return public(batch)


def _batch(request: Request, batch_id: str) -> dict:
    batch = request.app.state.backend.store.get_batch(batch_id)
    if batch is None:
        raise not_found("batch", batch_id, "batch_id")
    return batch


@router.get("/v1/batches")
async def list_batches(request: Request, after: After = None, limit: BatchLimit = 20) -> dict:
    batches = [public(b) for b in request.app.state.backend.store.list_batches()]
    return page(batches, limit, after)


@router.get("/v1/batches/{batch_id}")
async def get_batch(batch_id: str, request: Request) -> dict:
    return public(_batch(request, batch_id))


@router.post("/v1/batches/{batch_id}/cancel")
async def cancel_batch(batch_id: str, request: Request) -> dict:
    backend = request.app.state.backend
    batch = _batch(request, batch_id)
    runner = backend.require_batches()
    with backend.store.lock:  # against the runner moving it on meanwhile
        batch = _batch(request, batch_id)
        if batch["status"] in FINAL or batch["status"] == "finalizing":
            raise bad_request(f"The batch {batch_id} is {batch['status']} and can no longer be cancelled.",
                              "batch_id", "batch_not_cancellable")
        if batch["status"] in ACTIVE and batch["status"] != "cancelling":
            batch = backend.store.update_batch(batch_id, status="cancelling", cancelling_at=int(time.time()))
    runner.wake()
    return public(batch)
