"""The local backend's Batch API over real HTTP with the real openai SDK (tiny random model).

Upload with purpose `batch`, create / retrieve / list / cancel, the output and error files in
OpenAI's line format, every answer checked against OpenAI's published schemas.
"""

from __future__ import annotations

import io
import json
import time

import openai
import pytest
from backend_openapi import assert_matches

BASE = "SmolLM2-135M-Instruct"
ENDPOINT = "/v1/chat/completions"
FINAL = ("completed", "failed", "expired", "cancelled")


def request_line(custom_id: str, **body) -> dict:
    body = {"model": BASE, "messages": [{"role": "user", "content": f"Say {custom_id}."}], "max_tokens": 6, **body}
    return {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}


def jsonl(lines: list[dict]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def upload(client, lines: list[dict] | bytes, name: str = "requests.jsonl"):
    data = lines if isinstance(lines, bytes) else jsonl(lines)
    return client.files.create(file=(name, io.BytesIO(data)), purpose="batch")


def start(client, lines: list[dict], **opts):
    batch = client.batches.create(input_file_id=upload(client, lines).id, endpoint=ENDPOINT,
                                  completion_window="24h", **opts)
    assert_matches(batch.model_dump(mode="json"), "Batch")
    return batch


def wait(client, batch_id: str, done=lambda b: b.status in FINAL, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        assert_matches(batch.model_dump(mode="json"), "Batch")
        if done(batch):
            return batch
        assert time.monotonic() < deadline, f"batch stuck in {batch.status} {batch.request_counts}"
        time.sleep(0.1)


def results(client, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    assert client.files.retrieve(file_id).purpose == "batch_output"
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def check_line(line: dict) -> None:
    """OpenAI's output/error line: {id, custom_id, response: {status_code, request_id, body}, error}."""
    assert set(line) == {"id", "custom_id", "response", "error"}
    assert line["id"].startswith("batch_req_")
    if line["response"] is not None:
        assert set(line["response"]) == {"status_code", "request_id", "body"}
        if line["response"]["status_code"] == 200:
            assert_matches(line["response"]["body"], "CreateChatCompletionResponse")
        else:
            assert_matches(line["response"]["body"], "ErrorResponse")


def test_a_batch_runs_to_completed_with_openai_shaped_output(tiny_backend):
    client = tiny_backend.client()
    lines = [request_line(f"q-{i}", seed=i) for i in range(5)]
    created = start(client, lines, metadata={"purpose": "test"})
    assert created.status == "validating" and created.object == "batch" and created.metadata == {"purpose": "test"}
    assert created.expires_at == created.created_at + 24 * 3600
    batch = wait(client, created.id)
    assert batch.status == "completed" and batch.error_file_id is None and batch.model == BASE
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (5, 5, 0)
    assert batch.created_at <= batch.in_progress_at <= batch.finalizing_at <= batch.completed_at
    out = results(client, batch.output_file_id)
    for line in out:
        check_line(line)
        assert line["error"] is None and line["response"]["body"]["model"] == BASE
    assert sorted(line["custom_id"] for line in out) == sorted(r["custom_id"] for r in lines)
    assert batch.usage.output_tokens == sum(line["response"]["body"]["usage"]["completion_tokens"] for line in out)
    assert client.batches.retrieve(batch.id) == batch


def test_a_batch_answer_is_what_the_interactive_endpoint_answers(tiny_backend):
    """The same body (greedy, with response_format) gets the same completion either way."""
    client = tiny_backend.client()
    body = {"max_tokens": 24, "temperature": 0,
            "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {
                "type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}}}
    batch = wait(client, start(client, [request_line("same", **body)]).id)
    [line] = results(client, batch.output_file_id)
    raw = client.chat.completions.with_raw_response.create(**request_line("same", **body)["body"])
    interactive = json.loads(raw.text)
    answer = line["response"]["body"]
    assert set(answer) == set(interactive)
    assert answer["choices"] == interactive["choices"] and answer["usage"] == interactive["usage"]


def test_bad_requests_fail_alone_into_the_error_file(tiny_backend):
    client = tiny_backend.client()
    lines = [request_line("good-1"), request_line("hot", temperature=9), request_line("nomodel-file", model=BASE),
             request_line("ghost", model=BASE, messages=[]), request_line("streams", stream=True),
             request_line("good-2")]
    batch = wait(client, start(client, lines).id)
    assert batch.status == "completed"
    assert (batch.request_counts.completed, batch.request_counts.failed) == (3, 3)
    good, bad = results(client, batch.output_file_id), results(client, batch.error_file_id)
    assert {line["custom_id"] for line in good} == {"good-1", "good-2", "nomodel-file"}
    errors = {line["custom_id"]: line["response"] for line in bad}
    for line in bad:
        check_line(line)
    assert errors["hot"]["status_code"] == 400 and errors["hot"]["body"]["error"]["param"] == "temperature"
    assert errors["ghost"]["body"]["error"]["param"] == "messages"
    assert errors["streams"]["body"]["error"]["param"] == "stream"


def test_a_model_the_backend_does_not_have_fails_its_requests_with_404(tiny_backend):
    client = tiny_backend.client()
    batch = wait(client, start(client, [request_line("a", model="gpt-nope")]).id)
    [line] = results(client, batch.error_file_id)
    assert line["response"]["status_code"] == 404
    assert line["response"]["body"]["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(("content", "words"), [
    (b'{"custom_id": "a", "method": "POST"', "Line 1 of requests.jsonl: this is not valid JSON"),
    (jsonl([request_line("a"), {**request_line("b"), "method": "GET"}]), "Line 2 of requests.jsonl: 'method'"),
    (jsonl([{**request_line("a"), "url": "/v1/embeddings"}]), "runs batches of /v1/chat/completions only"),
    (jsonl([request_line("a"), request_line("a")]), "custom_id 'a' is used by an earlier line"),
    (jsonl([request_line("a"), request_line("b", model="other")]), "holds requests for one model"),
    (jsonl([{"custom_id": "a", "method": "POST", "url": ENDPOINT}]), "'body' must be"),
    (jsonl([{**request_line("a"), "custom_id": 7}]), "'custom_id' must be"),
    (b"\n\n", "The file is empty"),
])
def test_a_bad_request_file_is_refused_at_upload_naming_the_line(tiny_backend, content, words):
    with pytest.raises(openai.BadRequestError) as caught:
        upload(tiny_backend.client(), content)
    assert words in caught.value.message
    assert caught.value.body["param"] == "file"


def test_a_file_over_the_request_limit_is_refused(tiny_backend, monkeypatch):
    from pipeline.local import batchfile

    monkeypatch.setattr(batchfile, "MAX_REQUESTS", 2)
    with pytest.raises(openai.BadRequestError, match="at most 2 requests"):
        upload(tiny_backend.client(), [request_line(str(i)) for i in range(3)])


def test_create_refuses_what_it_cannot_run_naming_the_param(tiny_backend):
    client = tiny_backend.client()
    good = upload(client, [request_line("a")]).id
    tuning = client.files.create(file=("t.jsonl", io.BytesIO(b'{"messages": []}\n')), purpose="fine-tune").id
    cases = [({"endpoint": "/v1/embeddings"}, "endpoint"), ({"completion_window": "48h"}, "completion_window"),
             ({"input_file_id": "file-" + "0" * 24}, "input_file_id"), ({"input_file_id": tuning}, "input_file_id"),
             ({"metadata": {str(i): "v" for i in range(17)}}, "metadata")]
    for change, param in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            client.batches.create(**{"input_file_id": good, "endpoint": ENDPOINT, "completion_window": "24h", **change})
        assert caught.value.body["param"] == param, change
        assert_matches(caught.value.response.json(), "ErrorResponse")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_" + "0" * 24)
    with pytest.raises(openai.NotFoundError):
        client.batches.cancel("batch_" + "0" * 24)


def test_batches_list_newest_first_with_cursor_pagination(tiny_backend):
    client = tiny_backend.client()
    made = [start(client, [request_line("p")]).id for _ in range(3)]
    first = client.batches.list(limit=2)
    assert_matches(first.model_dump(mode="json"), "ListBatchesResponse")
    newest = [b.id for b in client.batches.list(limit=100).data]
    assert newest[:3] == made[::-1]
    assert [b.id for b in first.data] == newest[:2] and first.has_more and first.last_id == newest[1]
    second = client.batches.list(limit=2, after=first.last_id)
    assert [b.id for b in second.data] == newest[2:4]
    assert [b.id for b in client.batches.list(limit=1)] == newest  # the SDK follows the cursor to the end
    for batch_id in made:
        wait(client, batch_id)
