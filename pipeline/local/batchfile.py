"""The Batch API's file formats: the request file a visitor uploads (purpose `batch`) and the lines of
the output and error files the backend writes (purpose `batch_output`), in OpenAI's exact shapes.

Input, one JSON object per line (what OpenAI, Azure and vLLM `run-batch` read):
    {"custom_id": "q-1", "method": "POST", "url": "/v1/chat/completions", "body": {...chat request...}}
The envelope is checked when the file is uploaded (a 400 naming the line); each `body` is checked
when its request runs, by the same models as the interactive endpoint, so one bad body fails only
its own request (error file), not the batch.

Output and error lines:
    {"id": "batch_req_...", "custom_id": "q-1", "response": {"status_code": 200, "request_id": "req_...",
     "body": {...chat.completion...}}, "error": null}
A request the backend answered with an error has its status and OpenAI's error body in `response`;
one that never ran (the batch expired first) has `response: null` and `error: {code, message}`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from pipeline.local.errors import bad_request

ENDPOINT = "/v1/chat/completions"
MAX_REQUESTS = 50_000  # OpenAI's limit per batch file
MAX_CUSTOM_ID = 512
EXPIRED = {"code": "batch_expired",
           "message": "This request could not be executed before the completion window expired."}


def _refuse(lineno: int, name: str, problem: str, code: str = "invalid_batch_file") -> NoReturn:
    raise bad_request(f"Line {lineno} of {name}: {problem} Each line of a batch file is one request "
                      f'{{"custom_id": "...", "method": "POST", "url": "{ENDPOINT}", "body": {{...}}}}.',
                      "file", code)


def check_request_file(content: bytes, name: str) -> int:
    """Refuse a batch request file that OpenAI would refuse (400 naming the line); its request count.

    Runs in a worker thread: a 64 MB file takes a while."""
    ids: set[str] = set()
    model: str | None = None
    count = 0
    for lineno, line in enumerate(content.decode("utf-8-sig", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except (ValueError, RecursionError):
            _refuse(lineno, name, "this is not valid JSON.", "invalid_file_format")
        if not isinstance(request, dict):
            _refuse(lineno, name, "this is not a JSON object.")
        custom_id = request.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id or len(custom_id) > MAX_CUSTOM_ID:
            _refuse(lineno, name, f"'custom_id' must be a non-empty string of at most {MAX_CUSTOM_ID} characters.")
        if custom_id in ids:
            _refuse(lineno, name, f"the custom_id '{custom_id[:80]}' is used by an earlier line; each request "
                    "needs its own, so its result can be matched to it.", "duplicate_custom_id")
        ids.add(custom_id)
        if request.get("method") != "POST":
            _refuse(lineno, name, "'method' must be \"POST\".")
        if request.get("url") != ENDPOINT:
            _refuse(lineno, name, f"'url' is {json.dumps(request.get('url'))[:80]}; this local backend runs "
                    f"batches of {ENDPOINT} only.", "invalid_url")
        body = request.get("body")
        if not isinstance(body, dict):
            _refuse(lineno, name, "'body' must be the JSON object of a chat completion request.")
        if isinstance(body.get("model"), str):
            if model is not None and body["model"] != model:
                _refuse(lineno, name, f"the model '{body['model'][:80]}' differs from '{model[:80]}' of the lines "
                        "before; a batch file holds requests for one model (split it into one file per model).",
                        "mismatched_model")
            model = body["model"]
        count += 1
        if count > MAX_REQUESTS:
            _refuse(lineno, name, f"a batch file holds at most {MAX_REQUESTS} requests; split it.", "too_many_requests")
    if not count:
        raise bad_request("The batch file has no requests.", "file", "invalid_batch_file")
    return count


def read_requests(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, request) of a checked request file, streamed (a 50,000-line file is not held whole)."""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                yield lineno, json.loads(line)


def model_of(path: Path) -> str | None:
    """The model the file's requests name (check_request_file allows only one)."""
    for _, request in read_requests(path):
        if isinstance(request["body"].get("model"), str):
            return request["body"]["model"]
    return None


def result_line(custom_id: str, status: int | None, body: dict | None, error: dict | None = None) -> str:
    """One line of an output or error file, as OpenAI writes it."""
    response = None if status is None else {"status_code": status, "request_id": f"req_{secrets.token_hex(16)}",
                                            "body": body}
    line = {"id": f"batch_req_{secrets.token_hex(16)}", "custom_id": custom_id, "response": response, "error": error}
    return json.dumps(line, ensure_ascii=False) + "\n"


def read_results(path: Path) -> Iterator[dict]:
    """The complete lines of a results file being appended to. A line cut short by a crash (no newline
    at the end) is dropped and cut off the file, so its request runs again and is written once."""
    if not path.is_file():
        return
    good = 0
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            try:
                item = json.loads(raw)
            except ValueError:
                break
            good += len(raw)
            yield item
    if path.stat().st_size > good:
        with open(path, "r+b") as fh:
            fh.truncate(good)


def usage_of(body: Any) -> tuple[int, int]:
    """(prompt, completion) tokens of a chat completion body; (0, 0) for an error body."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return 0, 0
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
