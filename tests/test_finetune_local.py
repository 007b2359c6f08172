"""The whole fine-tuning flow against the embedded local backend, through the openai SDK over HTTP.

Uses the backend's `tiny_backend` fixture (a tiny random model of SmolLM2's architecture: trains in
seconds) and, for the restart test, a backend of our own on a temporary workspace that is stopped and
started again.
"""

from __future__ import annotations

import secrets
import time

import openai
import pytest

from pipeline.errors import explain
from pipeline.finetune import jobs as ft
from pipeline.finetune.preflight import offered_base_models
from pipeline.finetune.session import start_job
from pipeline.finetune.watch import JobSnapshot, watch_job
from tests.test_finetune_openai import examples

DEADLINE_S = 600  # a generous bound for a loaded 2-core machine; not a timing assertion


def base_model(client) -> str:
    return next(m.id for m in client.models.list() if not m.id.startswith("ft:"))


def follow(client, job_id: str, snap: JobSnapshot | None = None, until=lambda s: s.finished) -> JobSnapshot:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        snap = watch_job(client, job_id, snap)
        if until(snap):
            return snap
        assert time.monotonic() < deadline, f"job stuck: {snap.status} {snap.warning}"
        time.sleep(min(snap.next_poll_s(0.3), 2))


def test_whole_flow_on_the_local_backend(tiny_backend) -> None:
    client = tiny_backend.client(max_retries=0)
    model = base_model(client)
    assert model in offered_base_models(client, openai_hosted=False)
    started = start_job(client, examples(12), model, validation=examples(3, "v"), n_epochs=2,
                        batch_size=4, suffix="e2e", seed=1)
    snap = follow(client, started.job.id)
    assert snap.status == "succeeded", snap.error
    assert snap.fine_tuned_model.startswith(f"ft:{model}:local:e2e:")
    assert snap.total_steps and snap.step == snap.total_steps and snap.trained_tokens
    assert all(r["train_loss"] is not None for r in snap.metrics)
    assert any(r["valid_loss"] is not None for r in snap.metrics)
    assert snap.elapsed_s is not None and snap.remaining_s == 0
    assert any(e["type"] == "metrics" for e in snap.events)
    # The fine-tuned model is served under its id, so the Chat tab can use it at once.
    reply = client.chat.completions.create(model=snap.fine_tuned_model, max_tokens=4,
                                           messages=[{"role": "user", "content": "Riddle q1?"}])
    assert reply.choices[0].message.content is not None
    assert snap.fine_tuned_model in {m.id for m in client.models.list()}


def test_queue_place_and_cancel_on_the_local_backend(tiny_backend) -> None:
    client = tiny_backend.client(max_retries=0)
    model = base_model(client)
    long_job = start_job(client, examples(40), model, n_epochs=30, batch_size=2).job
    follow(client, long_job.id, until=lambda s: s.status == "running" or s.finished)
    # A second job waits behind the first: the visitor sees their place in the queue.
    waiting = start_job(client, examples(10), model, n_epochs=2).job
    snap = watch_job(client, waiting.id)
    # (this backend validates a waiting job's files only when its turn comes)
    assert snap.status in ("validating_files", "queued") and snap.queue_ahead == 0  # next in line
    assert ft.cancel_job(client, waiting.id).status == "cancelled"
    assert ft.cancel_job(client, long_job.id).status in ("cancelled", "running")  # stops within seconds
    snap = follow(client, long_job.id)
    assert snap.status == "cancelled" and snap.fine_tuned_model is None and snap.remaining_s == 0


def test_invalid_training_data_is_refused_or_fails_with_its_line(tiny_backend) -> None:
    client = tiny_backend.client(max_retries=0)
    bad = [*examples(3), {"messages": [{"role": "user", "content": "no answer"}]}, *examples(8)]
    try:
        file_id = ft.upload_examples(client, bad, "bad")
    except openai.BadRequestError as exc:  # refused at upload: the message names the line
        assert "4" in explain(exc)
        return
    job = ft.create_job(client, model=base_model(client), training_file=file_id)
    snap = follow(client, job.id)
    assert snap.status == "failed" and "Line 4" in snap.error and "failed on the provider" in snap.error


def test_a_jobs_last_events_are_written_before_its_final_status(tiny_backend, monkeypatch) -> None:
    """watch_job reads the status, then the events, and its callers stop polling at a final status:
    whatever the job ends with must already be among the events then."""
    store = tiny_backend.app.state.backend.runner.store
    events_at_end: dict[str, list[str]] = {}
    update_job = store.update_job

    def recording(job_id: str, **changes):
        if changes.get("status") in ("succeeded", "failed", "cancelled"):
            events_at_end[changes["status"]] = [e["message"] for e in store.events(job_id)]
        return update_job(job_id, **changes)

    monkeypatch.setattr(store, "update_job", recording)
    client = tiny_backend.client(max_retries=0)
    model = base_model(client)
    assert follow(client, start_job(client, examples(10), model, n_epochs=1).job.id).status == "succeeded"
    too_few = ft.create_job(client, model=model, training_file=ft.upload_examples(client, examples(3), "few"))
    assert follow(client, too_few.id).status == "failed"
    cancelled = start_job(client, examples(10), model, n_epochs=30).job
    assert ft.cancel_job(client, cancelled.id).status == "cancelled"
    created, completed = events_at_end["succeeded"][-2:]
    assert created.startswith("New fine-tuned model created") and completed == "The job has successfully completed"
    assert events_at_end["failed"][-1].startswith("Fine-tuning failed:")
    assert events_at_end["cancelled"][-1] == "Job cancelled by the user."


@pytest.fixture
def restartable(tmp_path):
    from pipeline.local.runtime import start_server

    key = secrets.token_urlsafe(16)
    servers = []

    def start():
        handle = start_server(root=tmp_path / "backend", tiny=True, api_key=key)
        handle.wait_ready(timeout=600)
        servers.append(handle)
        return handle

    yield start
    for handle in servers:
        handle.stop()


def test_watcher_reattaches_after_a_backend_restart(restartable) -> None:
    first = restartable()
    client = first.client(max_retries=0)
    job = start_job(client, examples(12), base_model(client), n_epochs=2, batch_size=4).job
    before = follow(client, job.id, until=lambda s: s.status != "validating_files")
    first.stop()

    # While the backend is down the watcher warns and backs off instead of failing.
    down = watch_job(first.client(max_retries=0, timeout=2), job.id, before)
    assert down.warning and down.failures == 1 and down.status == before.status
    assert down.next_poll_s(1.0) == 2.0

    second = restartable()  # same workspace: the job is still known (finished, failed or resumed)
    again = follow(second.client(max_retries=0), job.id, down)
    assert again.warning is None and again.failures == 0
    assert again.status in ("succeeded", "failed")
    if again.status == "failed":  # interrupted by the restart: the reason is shown, not a hang
        assert again.error
    ids = [e["id"] for e in again.events]
    assert len(ids) == len(set(ids)) and ids[: len(before.events)] == [e["id"] for e in before.events]
