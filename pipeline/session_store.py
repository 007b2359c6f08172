"""A visitor's settings kept in server memory between page loads of their session.

gr.State dies with the page: a refresh lost every endpoint, typed key and role unless the visitor had
ticked "Remember in this browser" (which writes to their browser's storage and lasts across
sessions). Here the server keeps the visitor's live settings in memory only (never on disk, like
gr.State), under the page's visitor id, until they have been idle for `ttl_s`: a refresh finds them
again; closing the browser for a day does not. Bounded: the least recently used are dropped first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

IDLE_TTL_S = 12 * 3600
MAX_VISITORS = 2000


class SessionStore:
    def __init__(self, ttl_s: float = IDLE_TTL_S, max_entries: int = MAX_VISITORS) -> None:
        self._ttl_s, self._max = ttl_s, max_entries
        self._items: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, visitor: str | None, value: Any) -> None:
        if not visitor:
            return
        with self._lock:
            self._items[visitor] = (time.monotonic(), value)
            self._items.move_to_end(visitor)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def get(self, visitor: str | None) -> Any | None:
        if not visitor:
            return None
        with self._lock:
            found = self._items.get(visitor)
            if found is None:
                return None
            if time.monotonic() - found[0] > self._ttl_s:
                del self._items[visitor]
                return None
            self._items[visitor] = (time.monotonic(), found[1])
            self._items.move_to_end(visitor)
            return found[1]


#: The app's one store: one process serves every visitor, and each entry is keyed by visitor id.
SESSIONS = SessionStore()
