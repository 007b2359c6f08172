"""/v1/files: upload (purpose fine-tune), list, retrieve, content, delete."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pipeline.local.errors import bad_request, not_found

router = APIRouter()
PURPOSES = ("fine-tune", "fine-tune-results")


def page(items: list[dict], request: Request, default_limit: int = 10000) -> dict:
    """OpenAI cursor pagination: `after` is the id of the last item of the previous page."""
    params = request.query_params
    try:
        limit = int(params.get("limit", default_limit))
    except ValueError:
        raise bad_request("'limit' must be an integer.", "limit") from None
    if not 1 <= limit <= 10000:
        raise bad_request("'limit' must be between 1 and 10000.", "limit")
    if params.get("order") == "asc":
        items = list(reversed(items))
    after = params.get("after")
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    chosen = items[:limit]
    return {"object": "list", "data": chosen, "has_more": len(items) > limit,
            "first_id": chosen[0]["id"] if chosen else None, "last_id": chosen[-1]["id"] if chosen else None}


@router.post("/v1/files")
async def upload_file(request: Request) -> dict:
    store = request.app.state.backend.store
    try:
        form = await request.form(max_part_size=request.app.state.backend.config.max_body_bytes)
    except AssertionError:
        raise bad_request("Send the file as multipart/form-data with fields 'file' and 'purpose'.") from None
    purpose, upload = form.get("purpose"), form.get("file")
    if purpose not in PURPOSES[:1]:
        raise bad_request("The local backend stores files for purpose 'fine-tune' only.", "purpose")
    if upload is None or isinstance(upload, str):
        raise bad_request("Attach the file in the multipart field 'file'.", "file")
    content = await upload.read()
    if not content.strip():
        raise bad_request("The file is empty.", "file")
    for lineno, line in enumerate(content.decode("utf-8-sig", errors="replace").splitlines(), 1):
        if line.strip():
            try:
                json.loads(line)
            except ValueError:
                raise bad_request(f"Line {lineno} of {upload.filename or 'the file'} is not valid JSON; "
                                  "fine-tuning files are JSONL, one JSON object per line.", "file",
                                  "invalid_file_format") from None
    return store.add_file(content, upload.filename or "upload.jsonl", purpose)


@router.get("/v1/files")
async def list_files(request: Request) -> dict:
    files = request.app.state.backend.store.list_files()
    purpose = request.query_params.get("purpose")
    if purpose:
        files = [f for f in files if f["purpose"] == purpose]
    return page(files, request)


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
    return Response(path.read_bytes(), media_type=kind)


@router.delete("/v1/files/{file_id}")
async def delete_file(file_id: str, request: Request) -> dict:
    if not request.app.state.backend.store.delete_file(file_id):
        raise not_found("file", file_id, "file_id")
    return {"id": file_id, "object": "file", "deleted": True}
