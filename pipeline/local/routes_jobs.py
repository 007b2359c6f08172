"""/v1/fine_tuning/jobs: create, list, retrieve, cancel, events, checkpoints."""

from __future__ import annotations

import asyncio
import json
import time

from fastapi import APIRouter, Request

from pipeline import config
from pipeline.local.dataset import count_lines
from pipeline.local.errors import APIError, bad_request, not_found
from pipeline.local.jobs import queue_position
from pipeline.local.openapi import request_body
from pipeline.local.routes_files import After, Limit, page
from pipeline.local.schemas import FineTuningJobRequest, parse
from pipeline.local.store import new_id

router = APIRouter()


def public(job: dict, store) -> dict:
    """The job as the API shows it: no private keys; a queue position while it waits (our extension)."""
    out = {k: v for k, v in job.items() if not k.startswith("_")}
    out["queue_position"] = queue_position(store, job["id"]) if job["status"] in ("validating_files", "queued") else None
    return out


def _check_file(store, file_id: str, param: str) -> bytes:
    if store.file_data_path(file_id) is None:
        raise APIError(400, f"{param} '{file_id}' does not exist; upload it with files.create(purpose='fine-tune').",
                       param=param, code="invalid_file")
    return store.file_data_path(file_id).read_bytes()


@router.post("/v1/fine_tuning/jobs", openapi_extra=request_body(FineTuningJobRequest))
async def create_job(request: Request) -> dict:
    backend = request.app.state.backend
    body = await parse(request, FineTuningJobRequest)
    model = body.model
    if model != backend.base_id:
        raise APIError(404, f"The local backend fine-tunes '{backend.base_id}' only, not '{model}'.",
                       param="model", code="model_not_found")
    seed, suffix = body.seed, body.suffix
    hp = body.resolved_hyperparameters()
    data = _check_file(backend.store, body.training_file, "training_file")
    if body.validation_file is not None:
        _check_file(backend.store, body.validation_file, "validation_file")
    max_examples, max_epochs = config.MAX_TRAIN_EXAMPLES.get(), config.MAX_EPOCHS.get()
    if max_examples and count_lines(data) > max_examples:
        raise bad_request(f"This server trains at most {max_examples} examples per job "
                          f"(DISTILL_MAX_TRAIN_EXAMPLES); the file has {count_lines(data)}. "
                          "Use a smaller file or fine-tune with OpenAI.", "training_file", "too_many_examples")
    if max_epochs and hp["n_epochs"] != "auto" and hp["n_epochs"] > max_epochs:
        raise bad_request(f"This server trains at most {max_epochs} epochs (DISTILL_MAX_EPOCHS).",
                          "hyperparameters.n_epochs", "too_many_epochs")
    job = {"id": new_id("ftjob"), "object": "fine_tuning.job", "created_at": int(time.time()), "_seq": time.time_ns(),
           "error": None, "fine_tuned_model": None, "finished_at": None, "hyperparameters": hp,
           "model": model, "organization_id": "org-local", "result_files": [],
           "seed": seed if seed is not None else int(time.time()) % 2**31, "status": "validating_files",
           "trained_tokens": None, "training_file": body.training_file,
           "validation_file": body.validation_file, "estimated_finish": None, "integrations": [],
           "metadata": body.metadata, "user_provided_suffix": suffix,
           "method": {"type": "supervised", "supervised": {"hyperparameters": hp}}}
    runner = backend.require_runner()
    backend.store.create_job(job)
    backend.store.add_event(job["id"], f"Created fine-tuning job: {job['id']}")
    runner.wake()
    return public(job, backend.store)


def _job(request: Request, job_id: str) -> dict:
    job = request.app.state.backend.store.get_job(job_id)
    if job is None:
        raise not_found("fine-tuning job", job_id, "fine_tuning_job_id")
    return job


@router.get("/v1/fine_tuning/jobs")
async def list_jobs(request: Request, after: After = None, limit: Limit = 20) -> dict:
    backend = request.app.state.backend
    jobs = [public(j, backend.store) for j in backend.store.list_jobs()]
    result = page(jobs, limit, after)
    return {"object": "list", "data": result["data"], "has_more": result["has_more"]}


@router.get("/v1/fine_tuning/jobs/{job_id}")
async def get_job(job_id: str, request: Request) -> dict:
    return public(_job(request, job_id), request.app.state.backend.store)


@router.post("/v1/fine_tuning/jobs/{job_id}/cancel")
async def cancel_job(job_id: str, request: Request) -> dict:
    job = _job(request, job_id)
    backend = request.app.state.backend
    if job["status"] in ("succeeded", "failed"):
        raise bad_request(f"Job {job_id} has already {job['status']} and cannot be cancelled.", "fine_tuning_job_id")
    job = await asyncio.to_thread(backend.require_runner().cancel, job_id)
    return public(job, backend.store)


@router.get("/v1/fine_tuning/jobs/{job_id}/events")
async def job_events(job_id: str, request: Request, after: After = None, limit: Limit = 20) -> dict:
    _job(request, job_id)
    events = list(reversed(request.app.state.backend.store.events(job_id)))  # newest first, like OpenAI
    result = page(events, limit, after)
    return {"object": "list", "data": result["data"], "has_more": result["has_more"]}


@router.get("/v1/fine_tuning/jobs/{job_id}/checkpoints")
async def job_checkpoints(job_id: str, request: Request, after: After = None, limit: Limit = 10) -> dict:
    _job(request, job_id)
    path = request.app.state.backend.store.jobs_dir / job_id / "checkpoints.json"
    items = json.loads(path.read_text()) if path.is_file() else []
    result = page(items, limit, after)
    return {"object": "list", "data": result["data"], "has_more": result["has_more"],
            "first_id": result["first_id"], "last_id": result["last_id"]}
