"""The built-in local endpoint against the real embedded backend (tiny model): listing, connection
test, role clients, and the fine-tuned role following a real succeeded job."""

from __future__ import annotations

import json
import time

import pytest

from pipeline import model_lists
from pipeline.endpoints import SessionSettings, role
from pipeline.local import runtime
from pipeline.model_lists import client_for_role, list_models


@pytest.fixture
def local(tiny_backend, monkeypatch):
    # ensure_local_backend() hands out the process's one server: make it the test fixture's.
    monkeypatch.setattr(runtime, "_handle", tiny_backend)
    return tiny_backend


def test_local_endpoint_lists_and_tests_without_a_key(local) -> None:
    served = [m.id for m in local.client().models.list().data]
    settings = SessionSettings()
    listed = list_models(settings, "local")
    assert listed.error is None and listed.models == sorted(served)
    ok = model_lists.test_connection(settings, "local", served[0])
    assert ok.ok and "built-in local backend" in ok.message
    missing = model_lists.test_connection(settings, "local", "no-such-model")
    assert not missing.ok and missing.message.startswith("No access to model 'no-such-model'")


def test_role_clients_reach_the_local_backend(local) -> None:
    settings = SessionSettings()
    client, model = client_for_role(settings, "teacher")
    reply = client.chat.completions.create(model=model, max_tokens=4,
                                           messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].message.content is not None
    assert str(client.base_url).rstrip("/") == local.base_url.rstrip("/")


def test_fine_tuned_role_follows_the_newest_succeeded_local_job(local) -> None:
    client = local.client()
    settings = SessionSettings()
    before = model_lists.newest_fine_tuned_model(settings, refresh=True)
    examples = [{"messages": [{"role": "user", "content": f"Who is number {i}?"},
                              {"role": "assistant", "content": f"Number {i} is Ottoline."}]} for i in range(10)]
    upload = client.files.create(file=("train.jsonl", "\n".join(json.dumps(e) for e in examples).encode()),
                                 purpose="fine-tune")
    job = client.fine_tuning.jobs.create(training_file=upload.id, model=role(settings, "base").model,
                                         hyperparameters={"n_epochs": 2}, suffix="settings")
    deadline = time.monotonic() + 600
    while job.status not in ("succeeded", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(1)
        job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded", job.error
    assert model_lists.newest_fine_tuned_model(settings) == before, "cached until refreshed"
    assert model_lists.newest_fine_tuned_model(settings, refresh=True) == job.fine_tuned_model
    fresh = SessionSettings()
    _, model = client_for_role(fresh, "fine_tuned")  # looks the job up on first use
    assert model == job.fine_tuned_model
