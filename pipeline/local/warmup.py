"""Start the embedded backend and its model load as soon as the app's page is served.

Without this the first chat paid for everything at once: the backend's imports (torch, transformers),
the tokenizer, the model's weights and the grammar tokenizer, ~6-10 s of CPU. `start_backend_process`
starts the backend in its own process right after the page is served, so that work runs on another
core and never holds the app's GIL, which the page's first requests (config, the visitor's session)
waited behind when it ran in a thread of the app. `warm_up_in_background` adopts that server, or starts
one in-process if it did not come up.

Not before the page is served: started at launch, next to gradio's imports, it shared the app's CPU
share on a busy machine (Linux groups a session's processes) and gradio's own check that its page
answers (a HEAD with a 3 s timeout, since skipped: app.py) failed there once, ending the launch.
"""

from __future__ import annotations

import logging
import threading
import time

from pipeline import config

log = logging.getLogger(__name__)


def local_backend_is_default() -> bool:
    """With no server-side OpenAI key every role starts on the local backend (pipeline.endpoints)."""
    from pipeline.endpoints import SessionSettings, has_openai_key

    return not has_openai_key(SessionSettings())


def start_backend_process() -> bool:
    """Once the app's page is served: start the local backend's server process when the local backend is
    every role's default and DISTILL_WARM_START is on. True when started."""
    if not config.WARM_START.get() or not local_backend_is_default():
        return False
    from pipeline.local.runtime import start_process

    try:
        start_process()
    except OSError:  # no process could be started: the in-process start after the page does the work
        log.warning("starting the local backend's process failed; it starts in this process", exc_info=True)
        return False
    return True


def warm_up_in_background() -> threading.Thread | None:
    """Start the local backend in a daemon thread; None when it is not the default or
    DISTILL_WARM_START=0 (then it starts on first use, as before)."""
    if not config.WARM_START.get() or not local_backend_is_default():
        return None

    def warm() -> None:
        from pipeline.local.runtime import ensure_local_backend

        try:
            ensure_local_backend()
        except Exception:  # the first chat retries and shows the error where the visitor looks
            log.exception("starting the local backend early failed")

    thread = threading.Thread(target=warm, name="local-backend-warmup", daemon=True)
    thread.start()
    return thread


PRECISION_WAIT_S = 120  # how long the Settings line waits for the backend's model load to decide


def compute_line() -> str:
    """The Settings tab's line on what the local model computes in (pipeline/local/precision.py).

    Where the backend runs in its own process (start_backend_process) that process decides it while
    loading the model, and its /health says what it chose: deciding here as well would import torch into
    the app's process (~2 s holding its GIL) just as a visitor's page loads."""
    from pipeline.local import precision, runtime

    handle = runtime.launched_process()
    if handle is not None:
        import httpx

        health_url = handle.base_url.removesuffix("/v1") + "/health"
        deadline = time.monotonic() + PRECISION_WAIT_S
        while handle.process is not None and handle.process.poll() is None and time.monotonic() < deadline:
            try:
                chosen = httpx.get(health_url, timeout=5).json().get("precision")
            except (httpx.HTTPError, ValueError):
                chosen = None
            if chosen:
                return f"**Local model compute:** {chosen}"
            time.sleep(0.5)
    return precision.settings_line()
