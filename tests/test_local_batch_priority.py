"""The engine admits interactive requests before batch work (pipeline/local/engine.py, low_priority)."""

from __future__ import annotations

import threading

from pipeline.local.engine import Engine, GenRequest


def _idle_engine() -> Engine:
    engine = Engine.__new__(Engine)  # no model, no threads: only the admission queue
    engine._pending, engine._cv = [], threading.Condition()
    return engine


def test_an_interactive_request_is_admitted_before_batch_requests_that_came_first():
    engine = _idle_engine()
    batch = [GenRequest("m", [1], 4, low_priority=True) for _ in range(3)]
    chat = GenRequest("m", [1], 4)
    for request in [*batch, chat]:
        engine._pending.append(request)
    assert engine.interactive_waiting()
    order = [engine._next_pending() for _ in range(4)]
    assert order[0] is chat
    assert order[1:] == batch  # batch work keeps its own order
    assert engine._next_pending() is None and not engine.interactive_waiting()
