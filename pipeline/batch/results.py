"""The one reader of batch results lines, whoever ran the batch: OpenAI, Azure OpenAI or vLLM's
`run-batch`.

All three write `{"custom_id", "response": {"status_code", "request_id", "body"}, "error"}` per line
and differ in the details this module absorbs: OpenAI's line ids are `batch_req_...`, Azure's bodies
carry `content_filter_results` / `prompt_filter_results` (and some Azure versions send the body as a
JSON string), vLLM's ids are `vllm-...` with `error` null or a plain string. Errors come as
`error: {code, message}` (expired, cancelled), as a non-200 `status_code` whose body holds
`{"error": {...}}` (OpenAI, Azure) or `{"object": "error", "message"}` (vLLM), or as a string.
A good line's body is validated as the SDK's `ChatCompletion`, the object the interactive path gets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

if TYPE_CHECKING:  # imported where a line is read: the SDK's types cost ~1 s of the app's first page
    from openai.types.chat import ChatCompletion


@dataclass(frozen=True)
class ResultLine:
    custom_id: str | None
    ok: bool
    #: The chat completion (the SDK's object) of a good line; None otherwise.
    completion: ChatCompletion | None
    #: Why a line gave no completion (the provider's message, the status code, or what was wrong).
    reason: str | None
    status_code: int | None = None


def _reason_of(error: Any) -> str | None:
    """A readable reason from the many shapes an error takes; None when there is none."""
    if error is None or error == "" or error == {}:
        return None
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        inner = error.get("error") if isinstance(error.get("error"), dict | str) else None
        if inner is not None:
            return _reason_of(inner)
        message = error.get("message") or error.get("detail")
        code = error.get("code")
        if not isinstance(code, str) or not code:  # vLLM's code is the HTTP status: its type says more
            code = error.get("type") or code
        if message and code and str(code) not in str(message):
            return f"{message} ({code})"
        return str(message or code or json.dumps(error)[:300])
    return str(error)[:300]


def parse_result_line(line: str) -> ResultLine:
    """One results line (output or error file) -> what it says about its request."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return ResultLine(None, False, None, f"not JSON ({exc.msg})")
    if not isinstance(row, dict):
        return ResultLine(None, False, None, "not a JSON object")
    custom_id = row.get("custom_id")
    custom_id = str(custom_id) if custom_id is not None else None
    response = row.get("response") if isinstance(row.get("response"), dict) else {}
    status = response.get("status_code")
    status = int(status) if isinstance(status, int | str) and str(status).isdigit() else None
    body = response.get("body")
    if isinstance(body, str):  # some Azure versions send the body as a JSON string
        try:
            body = json.loads(body)
        except json.JSONDecodeError:
            body = {"error": {"message": body}}
    line_error = _reason_of(row.get("error"))
    if line_error is not None:
        return ResultLine(custom_id, False, None, line_error, status)
    if status is not None and status != 200:
        reason = _reason_of(body) if isinstance(body, dict) else None
        return ResultLine(custom_id, False, None, f"HTTP {status}: {reason or 'no message'}", status)
    if not isinstance(body, dict) or not body:
        return ResultLine(custom_id, False, None, "the line has no response body", status)
    if "error" in body and "choices" not in body:
        return ResultLine(custom_id, False, None, _reason_of(body) or "error without a message", status)
    from openai.types.chat import ChatCompletion

    try:
        completion = ChatCompletion.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        return ResultLine(custom_id, False, None, f"the body is not a chat completion ({where}: {first.get('msg')})",
                          status)
    if not completion.choices:
        return ResultLine(custom_id, False, None, "the completion has no choices", status)
    return ResultLine(custom_id, True, completion, None, status or 200)


def iter_results(path: Path) -> Iterator[tuple[int, ResultLine]]:
    """(line number, parsed line) for every non-empty line of a results file, read streamed."""
    if not path.exists():
        return
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                yield number, parse_result_line(line)
