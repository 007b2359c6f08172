"""Run a blocking function in a worker thread and iterate over what it reports meanwhile.

The UI turns each batch of reports into one live update (the Generate tab keeps the newest progress
snapshot, the Start tab's demo logs every message). No gradio here.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass
class Finished:
    """The function's return value, or the exception it raised (never lost in the thread)."""

    value: Any = None
    error: BaseException | None = None


@dataclass
class _Report(Generic[T]):
    item: T


def iterate_in_thread(fn: Callable[[Callable[[T], None]], Any], *, poll_s: float = 0.25,
                      name: str = "distill-worker") -> Iterator[list[T] | Finished]:
    """Call `fn(report)` in a thread. Yield the reports made since the last yield as one non-empty list
    (so a slow consumer gets one update with everything new, not a backlog), then one Finished."""
    inbox: queue.Queue[_Report[T] | Finished] = queue.Queue()

    def target() -> None:
        try:
            inbox.put(Finished(fn(lambda item: inbox.put(_Report(item)))))
        except BaseException as exc:  # handed to the caller, who shows it
            inbox.put(Finished(error=exc))

    threading.Thread(target=target, name=name, daemon=True).start()
    while True:
        try:
            first = inbox.get(timeout=poll_s)
        except queue.Empty:
            continue
        batch: list[T] = []
        item: _Report[T] | Finished | None = first
        while item is not None:
            if isinstance(item, Finished):
                if batch:
                    yield batch
                yield item
                return
            batch.append(item.item)
            try:
                item = inbox.get_nowait()
            except queue.Empty:
                item = None
        yield batch
