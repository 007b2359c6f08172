"""Run a blocking function in a worker thread and iterate over the messages it reports meanwhile.

The UI turns each message into a live update; the CLI prints them. No gradio here.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Finished:
    value: Any = None
    error: BaseException | None = None


def iterate_in_thread(fn: Callable[[Callable[[str], None]], Any], *,
                      poll_s: float = 0.25) -> Iterator[str | Finished]:
    """Call `fn(say)` in a thread; yield each `say(message)` as it happens, then one Finished."""
    messages: queue.Queue[str | Finished] = queue.Queue()

    def target() -> None:
        try:
            messages.put(Finished(fn(messages.put)))
        except BaseException as exc:  # handed to the caller, who shows it; never lost in the thread
            messages.put(Finished(error=exc))

    threading.Thread(target=target, name="distill-demo-step", daemon=True).start()
    while True:
        try:
            item = messages.get(timeout=poll_s)
        except queue.Empty:
            continue
        yield item
        if isinstance(item, Finished):
            return
