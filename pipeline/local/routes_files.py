"""/v1/files: upload (purpose fine-tune or batch), list, retrieve, content, delete."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response

from pipeline.local.batchfile import check_request_file
from pipeline.local.errors import bad_request, not_found

router = APIRouter()
UPLOAD_PURPOSES = ("fine-tune", "batch")  # what a client uploads; the backend writes the *-results/_output ones


Limit = Annotated[int, Query(ge=1, le=10000, description="How many items to return")]
After = Annotated[str | None, Query(max_length=128, description="The id of the last item of the previous page")]
Order = Annotated[Literal["asc", "desc"], Query(description="By creation time")]
UPLOAD = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", "purpose"],
    "properties": {"file": {"type": "string", "format": "binary"}, "purpose": {"type": "string", "enum": list(UPLOAD_PURPOSES)}},
}}}}}


def page(items: list[dict], limit: int, after: str | None, order: str = "desc") -> dict:
    """OpenAI cursor pagination (items come newest first): `after` is the last id of the previous page."""
    if order == "asc":
        items = list(reversed(items))
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    chosen = items[:limit]
    return {"object": "list", "data": chosen, "has_more": len(items) > limit,
            "first_id": chosen[0]["id"] if chosen else None, "last_id": chosen[-1]["id"] if chosen else None}


def _check_jsonl(content: bytes, name: str) -> None:
    """Every line parses as JSON (in a worker thread: a 64 MB file takes a while)."""
    for lineno, line in enumerate(content.decode("utf-8-sig", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except RecursionError:
            raise bad_request(f"Line {lineno} of {name} nests JSON too deeply to be a training example.",
                              "file", "invalid_file_format") from None
        except ValueError:
            raise bad_request(f"Line {lineno} of {name} is not valid JSON; fine-tuning files are JSONL, "
                              "one JSON object per line.", "file", "invalid_file_format") from None


@router.post("/v1/files", openapi_extra=UPLOAD)
async def upload_file(request: Request) -> dict:
    store = request.app.state.backend.store
    try:
        form = await request.form(max_part_size=request.app.state.backend.config.max_body_bytes)
    except AssertionError:
        raise bad_request("Send the file as multipart/form-data with fields 'file' and 'purpose'.") from None
    purpose, upload = form.get("purpose"), form.get("file")
    if purpose not in UPLOAD_PURPOSES:
        raise bad_request("The local backend stores files for purpose 'fine-tune' or 'batch' only.", "purpose")
    if upload is None or isinstance(upload, str):
        raise bad_request("Attach the file in the multipart field 'file'.", "file")
    content = await upload.read()
    if not content.strip():
        raise bad_request("The file is empty.", "file")
    name = upload.filename or "the file"
    await asyncio.to_thread(check_request_file if purpose == "batch" else _check_jsonl, content, name)
    return store.add_file(content, upload.filename or "upload.jsonl", purpose)


@router.get("/v1/files")
async def list_files(request: Request, purpose: Annotated[str | None, Query(max_length=64)] = None,
                     after: After = None, limit: Limit = 10000, order: Order = "desc") -> dict:
    files = request.app.state.backend.store.list_files()
    if purpose:
        files = [f for f in files if f["purpose"] == purpose]
    return page(files, limit, after, order)


@router.get("/v1/files/{file_id}")
async def get_file(file_id: str, request: Request) -> dict:
    meta = request.app.state.backend.store.get_file(file_id)
    if meta is None:
        raise not_found("file", file_id, "file_id")
    return meta


@router.get("/v1/files/{file_id}/content")
async def file_content(file_id: str, request: Request) -> Response:
    store = request.app.state.backend.store
    path = store.file_data_path(file_id)
    if path is None:
        raise not_found("file", file_id, "file_id")
    kind = "text/csv" if store.get_file(file_id)["filename"].endswith(".csv") else "application/octet-stream"
    return FileResponse(path, media_type=kind)  # streamed: a 10,000-request batch's output is not read whole


@router.delete("/v1/files/{file_id}")
async def delete_file(file_id: str, request: Request) -> dict:
    if not request.app.state.backend.store.delete_file(file_id):
        raise not_found("file", file_id, "file_id")
    return {"id": file_id, "object": "file", "deleted": True}
