"""A visitor's Stop switch for long work (an evaluation, a demo run), kept in their session state."""

from __future__ import annotations

import threading


class RunControl:
    """Holds the cancel event a running job checks; a Stop button sets it."""

    def __init__(self) -> None:
        self.cancel = threading.Event()

    def __deepcopy__(self, memo: dict) -> RunControl:  # gr.State deep-copies: each session gets a fresh one
        return RunControl()
