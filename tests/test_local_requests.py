"""Client input never reaches a 500 on the local backend: typed requests, 400s naming the param,
nesting limits, heavy work off the event loop, a refused request never reaches the engine."""

from __future__ import annotations

import io
import threading

import httpx
import pytest
from backend_openapi import assert_matches
from test_local_backend import BASE, HELLO, raw


def chat(**fields) -> dict:
    return {"model": BASE, "messages": HELLO, **fields}


# Each of these answered 500 with the exception's text before requests were typed.
@pytest.mark.parametrize("path, body, param", [
    ("/chat/completions", chat(seed=2**80), "seed"),
    ("/chat/completions", chat(stream=True, stream_options="x"), "stream_options"),
    ("/chat/completions", chat(response_format={"type": "json_schema", "json_schema": "x"}),
     "response_format.json_schema"),
    ("/chat/completions", chat(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
    ("/chat/completions", chat(n=True), "n"),
    ("/fine_tuning/jobs", {"model": BASE, "training_file": "file-x", "hyperparameters": [1]}, "hyperparameters"),
    ("/fine_tuning/jobs", {"model": BASE, "training_file": "file-x", "method": {"type": "dpo"}}, "method.type"),
    ("/fine_tuning/jobs", {"model": BASE, "training_file": "file-x", "seed": -1}, "seed"),
    ("/fine_tuning/jobs", {"model": BASE, "training_file": 7}, "training_file"),
])
def test_bad_input_is_a_400_naming_the_param_before_any_work(tiny_backend, recorded, path, body, param):
    response = raw(tiny_backend, "POST", path, json=body)
    assert response.status_code == 400, response.text
    assert_matches(response.json(), "ErrorResponse")
    assert response.json()["error"]["param"] == param
    assert "Error:" not in response.json()["error"]["message"]  # no exception text
    assert recorded == []  # nothing reached the engine


def test_a_tiny_temperature_decodes_greedily_and_decoding_goes_on(tiny_backend):
    """temperature 1e-300 overflowed the logits to inf: sampling raised in the decoding thread, which
    died, and every later chat request on the server waited forever."""
    client = tiny_backend.client(timeout=120, max_retries=0)
    tiny = client.chat.completions.create(model=BASE, messages=HELLO, max_tokens=5, temperature=1e-300)
    greedy = client.chat.completions.create(model=BASE, messages=HELLO, max_tokens=5, temperature=0)
    assert tiny.choices[0].message.content == greedy.choices[0].message.content


def test_unsupported_method_says_what_is_supported(tiny_backend):
    body = {"model": BASE, "training_file": "file-x", "method": {"type": "dpo"}}
    message = raw(tiny_backend, "POST", "/fine_tuning/jobs", json=body).json()["error"]["message"]
    assert "supervised" in message


def test_a_refused_streaming_request_never_starts_decoding(tiny_backend, recorded):
    """stream_options 'x' used to fail after the request was queued: it decoded for nobody."""
    response = raw(tiny_backend, "POST", "/chat/completions",
                   json=chat(stream=True, stream_options="x", max_tokens=100_000))
    assert response.status_code == 400
    assert recorded == []


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_json_is_a_400(tiny_backend, depth):
    body = b'{"model": "m", "messages": ' + b"[" * depth + b"]" * depth + b"}"
    response = raw(tiny_backend, "POST", "/chat/completions", content=body,
                   headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "deeper" in response.json()["error"]["message"]


def test_a_deeply_nested_upload_line_is_a_400(tiny_backend):
    line = b"[" * 100_000 + b"]" * 100_000
    response = raw(tiny_backend, "POST", "/files", data={"purpose": "fine-tune"},
                   files={"file": ("deep.jsonl", io.BytesIO(line + b"\n"))})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "file"


@pytest.mark.parametrize("query, param", [("limit=abc", "limit"), ("limit=0", "limit"), ("order=sideways", "order")])
def test_bad_list_parameters_are_400(tiny_backend, query, param):
    response = raw(tiny_backend, "GET", f"/files?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_tokenizing_runs_off_the_event_loop(tiny_backend):
    """A 20 MB prompt took 18 s to tokenize on the event loop, and no other request was answered
    meanwhile. Here tokenizing is held until the health check has answered: on the event loop that
    would never happen, and the health check times out."""
    engine = tiny_backend.app.state.backend.engine
    release, entered = threading.Event(), threading.Event()
    encode = engine.encode_chat

    def held(messages):
        entered.set()
        release.wait(60)
        return encode(messages)

    engine.encode_chat = held
    result: dict = {}
    chat_call = threading.Thread(target=lambda: result.update(
        response=raw(tiny_backend, "POST", "/chat/completions", json=chat(max_tokens=2))))
    try:
        chat_call.start()
        assert entered.wait(60)
        health = httpx.get(tiny_backend.base_url.removesuffix("/v1") + "/health", timeout=20)
        assert health.status_code == 200
    finally:
        release.set()
        chat_call.join(60)
        engine.encode_chat = encode
    assert result["response"].status_code == 200


def test_a_streaming_client_that_leaves_stops_the_decoding(tiny_backend, recorded):
    headers = {"Authorization": f"Bearer {tiny_backend.api_key}"}
    with httpx.stream("POST", tiny_backend.base_url + "/chat/completions", headers=headers, timeout=60,
                      json=chat(stream=True, max_tokens=100_000, temperature=1.0)) as response:
        next(response.iter_lines())
    wait = threading.Event()
    for _ in range(600):  # the server notices the closed socket when it next writes
        if recorded[0].finish_reason is not None:
            break
        wait.wait(0.05)
    assert recorded[0].finish_reason == "cancelled"


def test_the_openapi_document_describes_the_request_models(tiny_backend):
    doc = httpx.get(tiny_backend.base_url.removesuffix("/v1") + "/openapi.json", timeout=30).json()
    schemas = doc["components"]["schemas"]
    chat_op = doc["paths"]["/v1/chat/completions"]["post"]
    assert chat_op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("ChatCompletionRequest")
    seed = schemas["ChatCompletionRequest"]["properties"]["seed"]["anyOf"][0]
    assert seed["maximum"] == 2**63 - 1
    assert schemas["FineTuningJobRequest"]["properties"]["method"]
    ok = chat_op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.endswith("CreateChatCompletionResponse") and "CreateChatCompletionResponse" in schemas
