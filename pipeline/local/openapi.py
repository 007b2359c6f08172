"""The local backend's own OpenAPI document (GET /openapi.json): what it takes and what it answers.

Request bodies are the pydantic models of schemas.py (the routes parse them themselves, so the
document names them through `request_body`). Responses are OpenAI's own schemas for the same
endpoints (openai_responses.json, extracted from OpenAI's OpenAPI spec), so a fuzzer checking our
answers against this document checks them against OpenAI's shapes. Every error is OpenAI's
ErrorResponse.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

_REF = "#/components/schemas/{model}"
_OPENAI = Path(__file__).with_name("openai_responses.json")

# (method, path) -> the OpenAI schema of a 200 answer; None: a body that is not JSON.
RESPONSES: dict[tuple[str, str], str | None] = {
    ("get", "/v1/models"): "ListModelsResponse",
    ("get", "/v1/models/{model_id}"): "Model",
    ("delete", "/v1/models/{model_id}"): "DeleteModelResponse",
    ("post", "/v1/chat/completions"): "CreateChatCompletionResponse",
    ("post", "/v1/files"): "OpenAIFile",
    ("get", "/v1/files"): "ListFilesResponse",
    ("get", "/v1/files/{file_id}"): "OpenAIFile",
    ("get", "/v1/files/{file_id}/content"): None,
    ("delete", "/v1/files/{file_id}"): "DeleteFileResponse",
    ("post", "/v1/fine_tuning/jobs"): "FineTuningJob",
    ("get", "/v1/fine_tuning/jobs"): "ListPaginatedFineTuningJobsResponse",
    ("get", "/v1/fine_tuning/jobs/{job_id}"): "FineTuningJob",
    ("post", "/v1/fine_tuning/jobs/{job_id}/cancel"): "FineTuningJob",
    ("get", "/v1/fine_tuning/jobs/{job_id}/events"): "ListFineTuningJobEventsResponse",
    ("get", "/v1/fine_tuning/jobs/{job_id}/checkpoints"): "ListFineTuningJobCheckpointsResponse",
    ("post", "/v1/batches"): "Batch",
    ("get", "/v1/batches"): "ListBatchesResponse",
    ("get", "/v1/batches/{batch_id}"): "Batch",
    ("post", "/v1/batches/{batch_id}/cancel"): "Batch",
}


def request_body(model: type[BaseModel]) -> dict:
    """`openapi_extra` for a route that parses `model` itself (schemas.parse)."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}}}


def _nullable_to_31(schema: Any) -> Any:
    """OpenAI's spec is OpenAPI 3.0 (`nullable: true`); this document is 3.1, where null is a type."""
    if isinstance(schema, list):
        return [_nullable_to_31(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _nullable_to_31(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


# A Batch's fields that OpenAI itself answers as null until they apply (its own examples: a new batch
# has `"in_progress_at": null`, `"output_file_id": null`, `"errors": null`), which its schema types as
# non-null; the SDK reads them as Optional. The tests check batches with the same allowance.
BATCH_NULLABLE = ("errors", "output_file_id", "error_file_id", "in_progress_at", "expires_at", "finalizing_at",
                  "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at", "model", "usage")


def allow_batch_nulls(schemas: dict) -> None:
    props = schemas["Batch"]["properties"]
    for name in BATCH_NULLABLE:
        props[name] = {"anyOf": [props[name], {"type": "null"}]}


def _json(name: str) -> dict:
    return {"application/json": {"schema": {"$ref": _REF.format(model=name)}}}


def build(app: Any, request_models: tuple[type[BaseModel], ...]) -> dict:
    from fastapi.openapi.utils import get_openapi

    doc = get_openapi(title=app.title, version="1", description=app.description, routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(_nullable_to_31(json.loads(_OPENAI.read_text())["schemas"]))
    # Where the spec cannot be met: an empty page has no first or last id (null, as OpenAI answers).
    for name in ("first_id", "last_id"):
        for listing in ("ListFilesResponse", "ListBatchesResponse"):
            schemas[listing]["properties"][name] = {"type": ["string", "null"]}
    allow_batch_nulls(schemas)
    _, defs = models_json_schema([(m, "validation") for m in request_models], ref_template=_REF)
    schemas.update(defs.get("$defs", {}))
    doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            responses.pop("422", None)  # FastAPI's own; validation errors are 400 here
            if path.startswith("/v1"):
                operation["security"] = [{"bearer": []}]
                responses["4XX"] = {"description": "OpenAI's error object", "content": _json("ErrorResponse")}
                responses["503"] = {"description": "The model could not load", "content": _json("ErrorResponse")}
            if (method, path) in RESPONSES:
                name = RESPONSES[method, path]
                content = _json(name) if name else {"application/octet-stream": {"schema": {"type": "string"}},
                                                     "text/csv": {"schema": {"type": "string"}}}
                if path == "/v1/chat/completions":
                    content["text/event-stream"] = {"schema": {"type": "string"}}
                responses["200"] = {"description": "OK", "content": content}
    return doc


def install(app: Any, request_models: tuple[type[BaseModel], ...]) -> None:
    cache: dict = {}

    def openapi() -> dict:
        if "doc" not in cache:
            cache["doc"] = build(app, request_models)
        return cache["doc"]

    app.openapi = openapi
