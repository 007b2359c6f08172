"""The local backend's batch runner: cancel, expiry, resume after a restart, interactive chat first,
and who may see a batch on a shared app. Real openai SDK over real HTTP, tiny random model."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from test_local_batches import BASE, request_line, results, start, wait

from pipeline import ownership
from pipeline.errors import InputError
from pipeline.local.batches import IN_FLIGHT


def _lines(n: int, max_tokens: int = 32) -> list[dict]:
    return [request_line(f"r-{i}", max_tokens=max_tokens, seed=i) for i in range(n)]


def _accounted(client, batch) -> list[str]:
    """custom_ids in the output and error files (with repeats, if any)."""
    return [line["custom_id"] for key in ("output_file_id", "error_file_id")
            for line in results(client, getattr(batch, key))]


def test_cancel_mid_way_keeps_the_requests_done_so_far(tiny_backend):
    client = tiny_backend.client()
    batch = start(client, _lines(200))
    wait(client, batch.id, lambda b: b.request_counts.completed >= 2)
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    done = wait(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at >= done.cancelling_at
    assert 2 <= done.request_counts.completed < 200 and done.request_counts.total == 200
    kept = _accounted(client, done)
    assert len(kept) == len(set(kept)) == done.request_counts.completed + done.request_counts.failed
    with pytest.raises(openai.BadRequestError):  # cancelled is final
        client.batches.cancel(batch.id)


def test_a_finished_batch_cannot_be_cancelled(tiny_backend):
    client = tiny_backend.client()
    batch = wait(client, start(client, _lines(1, 2)).id)
    with pytest.raises(openai.BadRequestError) as caught:
        client.batches.cancel(batch.id)
    assert caught.value.body["code"] == "batch_not_cancellable"


def test_a_batch_past_its_window_expires_and_lists_what_did_not_run(tiny_backend):
    client = tiny_backend.client()
    batch = start(client, _lines(200))
    wait(client, batch.id, lambda b: b.request_counts.completed >= 1)
    # The 24 h window ending (a test cannot wait a day): the runner checks it as it goes.
    tiny_backend.app.state.backend.store.update_batch(batch.id, expires_at=int(time.time()) - 1)
    done = wait(client, batch.id)
    assert done.status == "expired" and done.expired_at is not None
    ids = _accounted(client, done)
    assert sorted(ids) == sorted(f"r-{i}" for i in range(200))  # each request once: answered or expired
    expired = [line for line in results(client, done.error_file_id) if line["error"]]
    assert expired and all(line["error"]["code"] == "batch_expired" and line["response"] is None for line in expired)
    assert done.request_counts.completed + done.request_counts.failed == 200


def test_a_backend_restarted_mid_batch_resumes_without_redoing_or_losing_requests(tmp_path):
    from pipeline.local.runtime import start_server

    first = start_server(root=tmp_path, tiny=True)
    client = first.client()  # the batch waits for the model to load (no health polling with short timeouts)
    batch = start(client, _lines(30, 16))
    wait(client, batch.id, lambda b: b.request_counts.completed >= 3)
    first.stop()
    partial = (tmp_path / "batches" / batch.id / "output.jsonl").read_text()
    before = partial.count("\n")
    assert 3 <= before < 30, "the batch should have been stopped mid-way"

    second = start_server(root=tmp_path, tiny=True)
    try:
        client = second.client()
        done = wait(client, batch.id)
        assert done.status == "completed"
        assert (done.request_counts.total, done.request_counts.completed) == (30, 30)
        out = client.files.content(done.output_file_id).text
        assert out.startswith(partial)  # the lines written before the stop are kept as they were
        ids = _accounted(client, done)
        assert sorted(ids) == sorted(f"r-{i}" for i in range(30))
    finally:
        second.stop()


def _until(condition, what: str, engine=None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        state = "" if engine is None else (f" (engine: pending {[r.low_priority for r in engine._pending]}, "
                                           f"active {[(r.low_priority, r.finish_reason) for r in engine._active]})")
        assert time.monotonic() < deadline, f"never saw: {what}{state}"
        time.sleep(0.01)


def _queued(engine, low: bool) -> bool:
    """Is a batch (low) or interactive request waiting to be admitted?"""
    with engine._cv:
        return any(r.low_priority == low for r in engine._pending)


def test_interactive_chat_is_admitted_before_batch_work(tiny_backend):
    """Structural, not timed. The decode thread is held right after a batch request ends, so the runner
    queues its next request; a chat is queued behind it; released, the engine admits the chat first.
    Throughout: no batch request is admitted while a chat waits, and at most IN_FLIGHT decode at once."""
    client = tiny_backend.client()
    engine = tiny_backend.app.state.backend.engine
    picks: list[tuple[object, bool, int]] = []  # (request, interactive waiting, batch requests decoding)
    hold, armed, reached = threading.Event(), threading.Event(), threading.Event()
    next_pending, finish = engine._next_pending, engine._finish

    def recording():
        with engine._cv:  # the lock submit takes: the snapshot and the pick are one moment
            pick = next_pending()
            if pick is not None:
                decoding = sum(1 for r in engine._active if r.low_priority and r.finish_reason is None
                               and not r.cancelled)
                picks.append((pick, any(not r.low_priority for r in engine._pending), decoding))
            return pick

    def holding(request, reason):
        finish(request, reason)
        if request.low_priority and armed.is_set():
            armed.clear()
            reached.set()
            hold.wait(timeout=120)  # the decode thread waits here: nothing is admitted meanwhile

    engine._next_pending, engine._finish = recording, holding
    pool = ThreadPoolExecutor(1)
    try:
        batch = start(client, _lines(200, 48))
        wait(client, batch.id, lambda b: b.request_counts.completed >= 1)
        armed.set()
        _until(reached.is_set, "decoding held right after a batch request ended", engine)
        _until(lambda: _queued(engine, low=True), "the runner queue its next batch request while decoding is held", engine)
        chat = pool.submit(client.chat.completions.create, model=BASE, max_tokens=8,
                           messages=[{"role": "user", "content": "Hello?"}])
        _until(lambda: _queued(engine, low=False), "the chat queued behind the batch request", engine)
        queued_batch = next(r for r in engine._pending if r.low_priority)
        hold.set()
        answer = chat.result(timeout=300)
        running = client.batches.retrieve(batch.id)
        client.batches.cancel(batch.id)
        wait(client, batch.id)
    finally:
        hold.set()
        engine._next_pending, engine._finish = next_pending, finish
        pool.shutdown()
    assert answer.choices[0].message.content is not None
    assert running.status == "in_progress"  # the chat was answered while the batch ran
    order = [request for request, _, _ in picks]
    chat_pick = next(i for i, request in enumerate(order) if not request.low_priority)
    assert chat_pick < order.index(queued_batch)  # queued after the batch request, admitted before it
    low = [(waiting, decoding) for request, waiting, decoding in picks if request.low_priority]
    assert not any(waiting for waiting, _ in low)  # no batch request ever went ahead of a waiting chat
    assert max(decoding for _, decoding in low) < IN_FLIGHT  # with the one admitted: at most IN_FLIGHT


def test_the_runner_holds_back_while_a_chat_waits(tiny_backend):
    """Structural: a batch request ends while a chat waits to be admitted (decoding held on both sides
    of that end); the runner, with a free slot, asks the engine, sees the chat and adds nothing."""
    client = tiny_backend.client()
    engine = tiny_backend.app.state.backend.engine
    armed, reached, before, after = (threading.Event() for _ in range(4))
    answers: list[bool] = []
    added: list[object] = []
    finish, asked, submit = engine._finish, engine.interactive_busy, engine.submit

    def holding(request, reason):
        if request.low_priority and armed.is_set():
            armed.clear()
            reached.set()
            before.wait(timeout=120)  # the chat is queued while this batch request is about to end
            finish(request, reason)
            after.wait(timeout=120)  # it ended; the chat still waits: what does the runner do?
        else:
            finish(request, reason)

    def asking() -> bool:
        answers.append(asked())
        return answers[-1]

    def submitting(request) -> None:
        if request.low_priority:
            added.append(request)
        submit(request)

    engine._finish = holding
    pool = ThreadPoolExecutor(1)
    try:
        batch = start(client, _lines(200, 48))
        wait(client, batch.id, lambda b: b.request_counts.completed >= 1)
        armed.set()
        _until(reached.is_set, "decoding held just before a batch request ends", engine)
        chat = pool.submit(client.chat.completions.create, model=BASE, max_tokens=8,
                           messages=[{"role": "user", "content": "Hello?"}])
        _until(lambda: _queued(engine, low=False), "the chat waiting", engine)
        engine.interactive_busy, engine.submit = asking, submitting
        before.set()
        _until(lambda: True in answers, "the runner asking whether a chat waits", engine)
        assert not added  # it held back: nothing added while the chat waited
        after.set()
        assert chat.result(timeout=300).choices
        _until(lambda: added, "the runner going on once the chat was admitted")
        client.batches.cancel(batch.id)
        wait(client, batch.id)
    finally:
        before.set()
        after.set()
        engine._finish, engine.interactive_busy, engine.submit = finish, asked, submit
        pool.shutdown()


def test_on_a_shared_app_a_batch_is_its_makers_only(tiny_backend, monkeypatch):
    """The app records who made a batch (pipeline.ownership, kind 'batch'), as for jobs and files."""
    monkeypatch.setenv("DISTILL_MULTI_USER", "1")
    client = tiny_backend.client()
    me, other = (ownership.verify_visitor(ownership.mint_visitor()) for _ in range(2))
    batch = start(client, _lines(1, 2))
    ownership.claim(me, "batch", batch.id)
    ownership.claim(other, "batch", batch.id)  # a later claim does not take it over
    ownership.require(me, "batch", batch.id)
    with pytest.raises(InputError, match="No batch"):
        ownership.require(other, "batch", batch.id)
    listed = [b.id for b in client.batches.list(limit=100)]
    assert batch.id not in ownership.visible(other, "batch", listed)
    assert batch.id in ownership.visible(me, "batch", listed)
    wait(client, batch.id)

