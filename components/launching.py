"""After launch: check, patiently, that the page answers on its own URL, and say what to do if not."""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request

log = logging.getLogger(__name__)
PATIENCE_S = 60.0  # a busy machine can take tens of seconds to answer the first request
#: Seconds between two looks at an empty gradio queue, and between two looks for progress updates to
#: send. Gradio 6.31 looks every 1 ms and 10 ms on Linux: ~0.08 of a CPU core with no page open
#: (measured, docs/bench/demo.md), taken from the local fine-tune and chat on a 2-core machine. An event
#: now starts up to 20 ms later (a chat's first token takes ~600 ms); a progress bar moves 10 times a second.
QUEUE_IDLE_S = 0.02
PROGRESS_IDLE_S = 0.1


def calm_queue(queue: object) -> bool:
    """Make gradio's queue (`demo._queue` after `demo.queue()`) look for work less often.

    False, changing nothing, when a gradio release no longer has these attributes (a test pins them)."""
    if not (hasattr(queue, "sleep_when_free") and hasattr(queue, "progress_update_sleep_when_free")):
        log.warning("gradio's queue has no idle-poll settings: left polling at its own rate")
        return False
    queue.sleep_when_free = max(queue.sleep_when_free, QUEUE_IDLE_S)
    queue.progress_update_sleep_when_free = max(queue.progress_update_sleep_when_free, PROGRESS_IDLE_S)
    return True


def page_answers(url: str, patience_s: float = PATIENCE_S) -> bool:
    """True once `url` answers (any HTTP status counts: the server is up), False after `patience_s`."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10):
                return True
        except urllib.error.HTTPError:
            return True  # an answer, even 401 behind auth, means the server is reachable
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)


def warn_if_unreachable(url: str | None, patience_s: float = PATIENCE_S) -> bool:
    """Log a warning, without stopping the app, when its page does not answer on `url`."""
    if not url or page_answers(url, patience_s):
        return True
    log.warning("The app does not answer on %s. If a proxy is set, add localhost and 127.0.0.1 to "
                "NO_PROXY; on a remote machine, open the address it is bound to instead.", url)
    return False
