"""After launch: check, patiently, that the page answers on its own URL, and say what to do if not."""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request

log = logging.getLogger(__name__)
PATIENCE_S = 60.0  # a busy machine can take tens of seconds to answer the first request


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
