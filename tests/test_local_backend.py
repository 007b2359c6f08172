"""The local backend over real HTTP with the real openai SDK (tiny random model: seconds per test)."""

from __future__ import annotations

import io
import json
import re
import threading
import time

import httpx
import openai
import pytest
from backend_openapi import assert_matches
from openai.types.chat import ChatCompletion, ChatCompletionChunk

BASE = "SmolLM2-135M-Instruct"
HELLO = [{"role": "user", "content": "Say hello."}]


def raw(backend, method: str, path: str, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {backend.api_key}", **kwargs.pop("headers", {})}
    return httpx.request(method, backend.base_url + path, headers=headers, timeout=120, **kwargs)


def chat_file(n: int = 12, bad_line: int | None = None) -> bytes:
    lines = []
    for i in range(n):
        example = {"messages": [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": f"What is fact {i}?"},
                                {"role": "assistant", "content": f"Fact {i} is blue."}]}
        if bad_line == i + 1:
            example = {"prompt_only": "no messages here"}
        lines.append(json.dumps(example))
    return ("\n".join(lines) + "\n").encode()


def upload(client, data: bytes, name: str = "train.jsonl"):
    return client.files.create(file=(name, io.BytesIO(data)), purpose="fine-tune")


def wait_job(client, job_id: str, statuses: tuple[str, ...], timeout: float = 300):
    deadline = time.monotonic() + timeout
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in statuses:
            return job
        assert time.monotonic() < deadline, f"job stuck in {job.status}"
        time.sleep(0.3)


# -- models and auth ---------------------------------------------------------------------------
def test_models_list_and_retrieve(tiny_backend):
    client = tiny_backend.client()
    ids = [m.id for m in client.models.list()]
    assert BASE in ids
    assert client.models.retrieve(BASE).id == BASE
    assert_matches(raw(tiny_backend, "GET", "/models").json(), "ListModelsResponse")
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    assert_matches(info.value.response.json(), "ErrorResponse")


def test_wrong_or_missing_key_is_401(tiny_backend):
    bad = openai.OpenAI(base_url=tiny_backend.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.models.list()
    body = info.value.response.json()
    assert body["error"]["code"] == "invalid_api_key" and "wrong" not in json.dumps(body)
    assert httpx.get(tiny_backend.base_url + "/models").status_code == 401


def test_unknown_model_in_chat_is_404(tiny_backend):
    with pytest.raises(openai.NotFoundError) as info:
        tiny_backend.client().chat.completions.create(model="gpt-17", messages=HELLO)
    assert info.value.body["param"] == "model"


# -- chat ----------------------------------------------------------------------------------------
def test_chat_completion_shape_usage_and_max_tokens(tiny_backend):
    response = raw(tiny_backend, "POST", "/chat/completions",
                   json={"model": BASE, "messages": HELLO, "max_tokens": 7, "temperature": 0})
    body = response.json()
    assert_matches(body, "CreateChatCompletionResponse")
    completion = ChatCompletion.model_validate(body)
    assert completion.object == "chat.completion" and completion.choices[0].message.role == "assistant"
    assert completion.usage.completion_tokens <= 7
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    # The prompt count is the chat template's token count with the model's tokenizer.
    tokenizer = tiny_backend.app.state.backend.engine.tokenizer
    expected = len(tokenizer.apply_chat_template(HELLO, add_generation_prompt=True, tokenize=True, return_dict=False))
    assert completion.usage.prompt_tokens == expected
    if completion.usage.completion_tokens == 7:
        assert completion.choices[0].finish_reason == "length"


def test_greedy_and_seeded_sampling_are_reproducible(tiny_backend):
    client = tiny_backend.client()

    def ask(**kw):
        return client.chat.completions.create(model=BASE, messages=HELLO, max_tokens=12, **kw).choices[0].message.content

    assert ask(temperature=0) == ask(temperature=0)
    assert ask(temperature=1.0, top_p=0.9, seed=3) == ask(temperature=1.0, top_p=0.9, seed=3)


def test_max_completion_tokens_and_stop(tiny_backend):
    client = tiny_backend.client()
    sampled = {"temperature": 1.0, "seed": 5}  # seeded sampling: varied text from the random model
    full = client.chat.completions.create(model=BASE, messages=HELLO, max_completion_tokens=20, **sampled)
    text = full.choices[0].message.content
    assert full.usage.completion_tokens <= 20 and len(text) >= 4
    stop = text[len(text) // 2: len(text) // 2 + 3]
    cut = client.chat.completions.create(model=BASE, messages=HELLO, max_tokens=20, stop=[stop], **sampled)
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == text[: text.find(stop)]


def test_streaming_matches_non_streaming_and_reports_usage(tiny_backend):
    client = tiny_backend.client()
    whole = client.chat.completions.create(model=BASE, messages=HELLO, max_tokens=15, temperature=0)
    chunks = list(client.chat.completions.create(model=BASE, messages=HELLO, max_tokens=15, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    assert all(isinstance(c, ChatCompletionChunk) and c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    lines = raw(tiny_backend, "POST", "/chat/completions", json={
        "model": BASE, "messages": HELLO, "max_tokens": 3, "stream": True}).text.strip().split("\n\n")
    assert lines[-1] == "data: [DONE]"
    for line in lines[:-1]:
        assert_matches(json.loads(line.removeprefix("data: ")), "CreateChatCompletionStreamResponse")


def test_three_concurrent_streams_do_not_mix(tiny_backend):
    client = tiny_backend.client()
    prompts = [[{"role": "user", "content": f"Tell me about topic {i}."}] for i in range(3)]
    alone = [client.chat.completions.create(model=BASE, messages=p, max_tokens=25, temperature=0)
             .choices[0].message.content for p in prompts]
    together: list[str | None] = [None] * 3

    def stream(i: int) -> None:
        parts = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model=BASE, messages=prompts[i], max_tokens=25, temperature=0, stream=True) if c.choices]
        together[i] = "".join(parts)

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert together == alone


SHAPE = {"type": "object", "additionalProperties": False, "required": ["ok", "digit", "color", "word"],
         "properties": {"ok": {"type": "boolean"}, "digit": {"type": "integer", "minimum": 0, "maximum": 9},
                        "color": {"enum": ["red", "green"]}, "word": {"type": "string", "maxLength": 4}}}


@pytest.mark.parametrize("stream", [False, True])
def test_json_schema_output_follows_the_schema_even_from_random_weights(tiny_backend, stream):
    """The tiny model's weights are random: only the grammar can make its output valid JSON."""
    client = tiny_backend.client()
    fmt = {"type": "json_schema", "json_schema": {"name": "shape", "strict": True, "schema": SHAPE}}
    for seed in range(3):
        kwargs = {"model": BASE, "messages": HELLO, "max_tokens": 60, "seed": seed, "response_format": fmt}
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in
                           client.chat.completions.create(stream=True, **kwargs) if c.choices)
        else:
            reply = client.chat.completions.create(**kwargs)
            assert reply.choices[0].finish_reason == "stop"
            assert reply.usage.completion_tokens <= 60
            text = reply.choices[0].message.content
        value = json.loads(text)
        assert set(value) == {"ok", "digit", "color", "word"}
        assert isinstance(value["ok"], bool) and 0 <= value["digit"] <= 9
        assert value["color"] in ("red", "green") and len(value["word"]) <= 4


def test_a_structured_reply_cut_at_max_tokens_comes_back_as_decoded(tiny_backend):
    """Cut off inside its last string, a constrained reply was searched for "the first {...} that parses"
    (meant for unconstrained text) and came back as a nested object, or as "{}" when the string held one:
    the teacher's parser saw '{}' for a schema that requires 'rewrites'. Cut, it is returned as decoded."""
    schema = {"type": "object", "properties": {
        "inner": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
                  "additionalProperties": False},
        "long": {"type": "string", "minLength": 400}}, "required": ["inner", "long"], "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "cut", "strict": True, "schema": schema}}
    reply = tiny_backend.client().chat.completions.create(model=BASE, messages=HELLO, max_tokens=24, seed=0,
                                                          response_format=fmt)
    text = reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "length"
    assert re.match(r'\{"inner": \{"ok": (true|false)\}, "long": "', text), text


def test_json_object_output_is_an_object(tiny_backend):
    client = tiny_backend.client()
    reply = client.chat.completions.create(model=BASE, messages=HELLO, max_tokens=200, seed=1, temperature=0.2,
                                           response_format={"type": "json_object"})
    text = reply.choices[0].message.content
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)
    assert text.startswith("{")


def test_a_schema_the_backend_cannot_follow_is_a_400(tiny_backend):
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "strin"}}}
    response = raw(tiny_backend, "POST", "/chat/completions",
                   json={"model": BASE, "messages": HELLO, "response_format": fmt})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "response_format"
    assert "strin" in response.json()["error"]["message"]


@pytest.mark.parametrize("body, param", [
    ({"model": BASE}, "messages"),
    ({"model": BASE, "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"model": BASE, "messages": HELLO, "temperature": 5}, "temperature"),
    ({"model": BASE, "messages": HELLO, "max_tokens": 0}, "max_tokens"),
    ({"model": BASE, "messages": HELLO, "stop": 3}, "stop"),
])
def test_bad_chat_requests_are_400_with_param(tiny_backend, body, param):
    response = raw(tiny_backend, "POST", "/chat/completions", json=body)
    assert response.status_code == 400
    assert_matches(response.json(), "ErrorResponse")
    assert response.json()["error"]["param"] == param


def test_invalid_json_body_is_400(tiny_backend):
    response = raw(tiny_backend, "POST", "/chat/completions", content=b"{not json",
                   headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "JSON" in response.json()["error"]["message"]


def test_oversized_body_is_413(tiny_backend, tmp_path):
    from pipeline.local.runtime import start_server

    small = start_server(root=tmp_path, tiny=True, max_body_bytes=1000)
    try:
        with pytest.raises(openai.APIStatusError) as info:
            upload(small.client(max_retries=0), chat_file(50))
        assert info.value.status_code == 413
        chunked = raw(small, "POST", "/chat/completions", content=iter([b"x" * 600, b"y" * 600]),
                      headers={"Content-Type": "application/json"})  # no Content-Length: counted as it arrives
        assert chunked.status_code == 413
    finally:
        small.stop()


# -- files -----------------------------------------------------------------------------------------
def test_file_lifecycle(tiny_backend):
    client = tiny_backend.client()
    data = chat_file(11)
    created = upload(client, data, "facts.jsonl")
    assert created.purpose == "fine-tune" and created.bytes == len(data) and created.filename == "facts.jsonl"
    assert_matches(raw(tiny_backend, "GET", f"/files/{created.id}").json(), "OpenAIFile")
    assert created.id in [f.id for f in client.files.list()]
    assert_matches(raw(tiny_backend, "GET", "/files").json(), "ListFilesResponse")
    assert client.files.retrieve(created.id).bytes == len(data)
    assert client.files.content(created.id).read() == data
    deleted = client.files.delete(created.id)
    assert deleted.deleted and deleted.id == created.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(created.id)


@pytest.mark.parametrize("file_id", ["..%2F..%2Fetc%2Fpasswd", "file-..", "file-0123456789abcdef01234567%2F..",
                                     "%2Fetc%2Fpasswd"])
def test_file_ids_cannot_leave_the_workspace(tiny_backend, file_id):
    response = raw(tiny_backend, "GET", f"/files/{file_id}/content")
    assert response.status_code == 404
    assert "root:" not in response.text


def test_upload_refuses_non_jsonl_and_other_purposes(tiny_backend):
    client = tiny_backend.client()
    with pytest.raises(openai.BadRequestError) as info:
        upload(client, b'{"messages": []}\nnot json\n')
    assert "Line 2" in info.value.body["message"]
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("a.jsonl", io.BytesIO(chat_file())), purpose="assistants")


# -- fine-tuning -----------------------------------------------------------------------------------
def test_fine_tune_succeeds_and_serves(tiny_backend):
    client = tiny_backend.client()
    train, valid = upload(client, chat_file(12)), upload(client, chat_file(3), "valid.jsonl")
    job = client.fine_tuning.jobs.create(training_file=train.id, validation_file=valid.id, model=BASE,
                                         suffix="facts", seed=1,
                                         method={"type": "supervised", "supervised": {"hyperparameters": {
                                             "n_epochs": 1, "batch_size": 4, "learning_rate_multiplier": "auto"}}})
    assert job.status == "validating_files" and job.object == "fine_tuning.job"
    job = wait_job(client, job.id, ("succeeded", "failed", "cancelled"))
    assert job.status == "succeeded", job.error
    assert_matches(raw(tiny_backend, "GET", f"/fine_tuning/jobs/{job.id}").json(), "FineTuningJob")
    assert job.fine_tuned_model == f"ft:{BASE}:local:facts:{job.id}"
    assert job.trained_tokens > 0 and job.hyperparameters.n_epochs == 1
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    assert_matches(raw(tiny_backend, "GET", f"/fine_tuning/jobs/{job.id}/events").json(),
                   "ListFineTuningJobEventsResponse")
    metrics = [e for e in events if e.type == "metrics"]
    assert len(metrics) == 3  # 12 examples / batch 4 x 1 epoch
    assert all({"step", "total_steps", "train_loss", "train_mean_token_accuracy"} <= set(e.data) for e in metrics)
    assert any("valid_loss" in e.data for e in metrics)
    assert metrics[-1].message.startswith("Step 1/3: training loss=")  # newest first, like OpenAI
    csv = client.files.content(job.result_files[0]).text.splitlines()
    assert csv[0] == "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy" and len(csv) == 4
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id)
    assert_matches(raw(tiny_backend, "GET", f"/fine_tuning/jobs/{job.id}/checkpoints").json(),
                   "ListFineTuningJobCheckpointsResponse")
    assert checkpoints.data[0].fine_tuned_model_checkpoint == job.fine_tuned_model
    assert job.fine_tuned_model in [m.id for m in client.models.list()]
    assert client.models.retrieve(job.fine_tuned_model).owned_by == "user"
    reply = client.chat.completions.create(model=job.fine_tuned_model, messages=HELLO, max_tokens=5)
    assert reply.model == job.fine_tuned_model
    streamed = list(client.chat.completions.create(model=job.fine_tuned_model, messages=HELLO, max_tokens=5,
                                                   stream=True))
    assert streamed[-1].choices[0].finish_reason in ("stop", "length")


def test_bad_training_file_fails_in_validation_naming_the_line(tiny_backend):
    client = tiny_backend.client()
    bad = upload(client, chat_file(12, bad_line=3))
    job = client.fine_tuning.jobs.create(training_file=bad.id, model=BASE)
    job = wait_job(client, job.id, ("failed", "succeeded"))
    assert job.status == "failed" and job.error.code == "invalid_training_file"
    assert "Line 3" in job.error.message and job.error.param == "training_file"
    few = upload(client, chat_file(4))
    job = wait_job(client, client.fine_tuning.jobs.create(training_file=few.id, model=BASE).id, ("failed", "succeeded"))
    assert "at least 10" in job.error.message


def test_create_job_bad_requests(tiny_backend):
    client = tiny_backend.client()
    train = upload(client, chat_file())
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.create(training_file=train.id, model="gpt-4o-mini")
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(training_file="file-" + "0" * 24, model=BASE)
    assert info.value.body["param"] == "training_file"
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.create(training_file=train.id, model=BASE, hyperparameters={"n_epochs": 0})
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.create(training_file=train.id, model=BASE, suffix="no spaces allowed")
    for call in (client.fine_tuning.jobs.retrieve, client.fine_tuning.jobs.cancel,
                 client.fine_tuning.jobs.list_events, client.fine_tuning.jobs.checkpoints.list):
        with pytest.raises(openai.NotFoundError):
            call("ftjob-" + "0" * 24)


def test_server_bounds_refuse_big_jobs(tiny_backend, monkeypatch):
    client = tiny_backend.client()
    train = upload(client, chat_file(12))
    monkeypatch.setenv("DISTILL_MAX_TRAIN_EXAMPLES", "10")
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(training_file=train.id, model=BASE)
    assert "at most 10 examples" in info.value.body["message"]
    monkeypatch.setenv("DISTILL_MAX_TRAIN_EXAMPLES", "100")
    monkeypatch.setenv("DISTILL_MAX_EPOCHS", "2")
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(training_file=train.id, model=BASE, hyperparameters={"n_epochs": 3})
    assert info.value.body["param"] == "hyperparameters.n_epochs"


def test_queue_order_cancel_and_pagination(tiny_backend):
    client = tiny_backend.client()
    train = upload(client, chat_file(40))
    long = {"n_epochs": 50, "batch_size": 1}
    first = client.fine_tuning.jobs.create(training_file=train.id, model=BASE, hyperparameters=long)
    second = client.fine_tuning.jobs.create(training_file=train.id, model=BASE, hyperparameters=long)
    wait_job(client, first.id, ("running",))
    waiting = wait_job(client, second.id, ("queued",))
    assert waiting.model_extra["queue_position"] == 1
    assert any("ahead" in e.message for e in client.fine_tuning.jobs.list_events(second.id))
    page = client.fine_tuning.jobs.list(limit=1)
    assert page.data[0].id == second.id and page.has_more
    assert client.fine_tuning.jobs.list(limit=1, after=second.id).data[0].id == first.id
    assert_matches(raw(tiny_backend, "GET", "/fine_tuning/jobs?limit=2").json(), "ListPaginatedFineTuningJobsResponse")
    started = time.monotonic()
    cancelled = client.fine_tuning.jobs.cancel(first.id)
    assert cancelled.status == "cancelled" and time.monotonic() - started < 5
    assert tiny_backend.app.state.backend.runner._running != first.id
    wait_job(client, second.id, ("running",))  # the next job in line starts
    assert client.fine_tuning.jobs.cancel(second.id).status == "cancelled"
    assert client.fine_tuning.jobs.retrieve(first.id).fine_tuned_model is None


def test_crashed_trainer_fails_the_job(tiny_backend):
    client = tiny_backend.client()
    train = upload(client, chat_file(40))
    job = client.fine_tuning.jobs.create(training_file=train.id, model=BASE, hyperparameters={"n_epochs": 50})
    wait_job(client, job.id, ("running",))
    runner = tiny_backend.app.state.backend.runner
    deadline = time.monotonic() + 30
    while runner._proc is None and time.monotonic() < deadline:
        time.sleep(0.1)
    runner._proc.kill()  # what the OOM killer would do
    job = wait_job(client, job.id, ("failed", "succeeded", "cancelled"), timeout=60)
    assert job.status == "failed" and job.error.code == "trainer_crashed"
    assert "stopped unexpectedly" in job.error.message


def test_restart_keeps_models_fails_interrupted_jobs_and_deletes(tmp_path):
    from pipeline.local.runtime import start_server
    from pipeline.local.store import Store

    first = start_server(root=tmp_path, tiny=True)
    first.wait_ready()
    client = first.client()
    train = upload(client, chat_file(10))
    job = client.fine_tuning.jobs.create(training_file=train.id, model=BASE, hyperparameters={"n_epochs": 1})
    job = wait_job(client, job.id, ("succeeded", "failed"))
    assert job.status == "succeeded", job.error
    first.stop()
    store = Store(tmp_path)  # a job that was running when the server died
    interrupted = dict(store.get_job(job.id), id="ftjob-" + "a" * 24, status="running", fine_tuned_model=None)
    store.create_job(interrupted)
    second = start_server(root=tmp_path, tiny=True)
    try:
        client = second.client()
        assert job.fine_tuned_model in [m.id for m in client.models.list()]
        reply = client.chat.completions.create(model=job.fine_tuned_model, messages=HELLO, max_tokens=3)
        assert reply.choices[0].message.content is not None
        after = client.fine_tuning.jobs.retrieve(interrupted["id"])
        assert after.status == "failed" and "stopped before it finished" in after.error.message
        assert client.files.retrieve(train.id).id == train.id
        assert client.models.delete(job.fine_tuned_model).deleted
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model=job.fine_tuned_model, messages=HELLO)
        with pytest.raises(openai.BadRequestError):
            client.models.delete(BASE)
    finally:
        second.stop()


def test_a_client_that_hangs_up_stops_its_decoding(tiny_backend, recorded):
    """A timed-out non-streaming call must not keep the shared CPU busy until max_tokens."""
    client = tiny_backend.client(timeout=1.0, max_retries=0)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model=BASE, messages=HELLO, n=4, max_tokens=100_000, temperature=1.0)
    deadline = time.monotonic() + 10
    while any(r.finish_reason is None and not r.cancelled for r in recorded) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(recorded) == 4
    assert all(r.cancelled for r in recorded)
    assert all(len(r.generated) < r.max_tokens for r in recorded)


def test_the_listening_socket_makes_asyncio_turn_nagle_off():
    """With Nagle on, each kept-alive response waited ~40 ms for the client's delayed ACK."""
    import asyncio
    import socket

    from pipeline.local.runtime import tcp_listener

    async def accepted_nodelay() -> int:
        seen: list[int] = []

        def on_client(reader, writer) -> None:
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        sock = tcp_listener("127.0.0.1", 0)
        server = await asyncio.start_server(on_client, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname())
        while not seen:
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        return seen[0]

    assert asyncio.run(accepted_nodelay()) != 0


@pytest.mark.slow
def test_a_job_started_while_a_fresh_machine_converts_the_model_succeeds(tmp_path, monkeypatch):
    """First visit on a fresh Space: the engine loads (and converts) the model while the first job
    starts; both reach transformers at once, which used to kill the job with an ImportError."""
    from pipeline.local.runtime import start_server

    monkeypatch.setenv("DISTILL_MODEL_DIR", str(tmp_path / "models"))  # nothing converted yet
    handle = start_server(root=tmp_path / "home", tiny=True)
    try:
        client = handle.client()
        job = client.fine_tuning.jobs.create(model=BASE, training_file=upload(client, chat_file()).id,
                                             hyperparameters={"n_epochs": 2})
        deadline = time.monotonic() + 300
        while job.status not in ("succeeded", "failed", "cancelled") and time.monotonic() < deadline:
            time.sleep(0.5)
            job = client.fine_tuning.jobs.retrieve(job.id)
        assert job.status == "succeeded", job.error
    finally:
        handle.stop()
