"""Start the embedded backend and its model load as soon as the app's page is up.

Without this the first chat paid for everything at once: the backend's imports (torch, transformers),
the tokenizer, the model's weights and the grammar tokenizer, ~10 s on a quiet 2-core machine and far
more on a busy one. Started right after the page is served, that work overlaps the visitor's first
look at the app. Not before the page: imports hold the GIL, so loading torch next to gradio's own
imports would only delay the first page.
"""

from __future__ import annotations

import logging
import threading

from pipeline import config

log = logging.getLogger(__name__)


def local_backend_is_default() -> bool:
    """With no server-side OpenAI key every role starts on the local backend (pipeline.endpoints)."""
    from pipeline.endpoints import SessionSettings, has_openai_key

    return not has_openai_key(SessionSettings())


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
