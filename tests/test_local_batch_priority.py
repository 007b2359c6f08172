"""The engine serves interactive requests before batch work (pipeline/local/engine.py, low_priority):
admitted first, and batch requests do not decode while a chat does."""

from __future__ import annotations

import threading

from pipeline.local.engine import Engine, GenRequest


def _idle_engine() -> Engine:
    engine = Engine.__new__(Engine)  # no model, no threads: only the admission queue
    engine._pending, engine._active, engine._admitting, engine._cv = [], [], [], threading.Condition()
    return engine


def test_an_interactive_request_is_admitted_before_batch_requests_that_came_first():
    engine = _idle_engine()
    batch = [GenRequest("m", [1], 4, low_priority=True) for _ in range(3)]
    chat = GenRequest("m", [1], 4)
    for request in [*batch, chat]:
        engine._pending.append(request)
    assert engine.interactive_busy()
    order = [engine._next_pending() for _ in range(4)]
    assert order[0] is chat
    assert order[1:] == batch  # batch work keeps its own order
    assert engine._next_pending() is None and not engine.interactive_busy()


def test_batch_requests_pause_while_a_chat_decodes():
    engine = _idle_engine()
    batch = [GenRequest("m", [1], 4, low_priority=True) for _ in range(2)]
    chat = GenRequest("m", [1], 4)
    engine._active = [*batch, chat]
    assert engine._stepping() == [chat]  # the batch requests keep their place and caches
    assert engine.interactive_busy()
    chat.finish_reason = "stop"
    assert engine._stepping() == batch  # the chat is done: batch work decodes again
    assert not engine.interactive_busy()


def test_batch_requests_wait_to_be_admitted_while_a_chat_decodes():
    engine = _idle_engine()
    queued, chat = GenRequest("m", [1], 4, low_priority=True), GenRequest("m", [1], 4)
    engine._pending, engine._active = [queued], [chat]
    assert engine._next_pending() is None  # its prefill would hold the chat's next step
    chat.finish_reason = "stop"
    assert engine._next_pending() is queued


def test_a_request_cancelled_between_steps_ends_as_cancelled():
    engine = _idle_engine()
    left, chat = GenRequest("m", [1], 4), GenRequest("m", [1], 4)
    engine._active = [left, chat]
    left.cancelled = True
    assert engine._stepping() == [chat]
    assert left.finish_reason == "cancelled" and left.cache is None  # its memory is freed, its state readable
