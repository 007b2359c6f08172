"""What every tab receives: the per-visitor state created once in app.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gradio as gr


@dataclass
class AppContext:
    #: pipeline.endpoints.SessionSettings of this visitor (keys typed here never leave the session).
    settings: gr.State
    #: A random id kept in the visitor's browser; names their workspace folder (drafts, runs, results).
    visitor: gr.BrowserState
    #: Bumped by any tab that changes the visitor's dataset draft, so the Dataset tab reloads it.
    dataset_rev: gr.State
    #: Recent fine-tuning job ids, kept in the visitor's browser so a refresh re-attaches to them.
    recent_jobs: gr.BrowserState
    #: The visitor's settings kept in their own browser when they ask for it (off by default; keys only
    #: if they tick "remember keys"). Restored into `settings` on page load; never stored server-side.
    remembered: gr.BrowserState
    #: Handlers to run once per page load, right after the visitor id is settled (app.py chains them
    #: on its start-up event). Before, they ran on page load with the browser's stored id AND again
    #: when the id arrived: a new visitor's page went through an extra wave of events re-drawing an
    #: empty draft and empty batch lists (the browser is the cold start's critical path).
    session_handlers: list[tuple[Callable[..., Any], Mapping[str, Any], dict[str, Any]]] = field(default_factory=list)
    #: The status line above the tabs (components/status.py), for a tab whose handler learns something it
    #: shows without changing `settings` (the Chat tab's look-up of the newest fine-tuned model).
    status_md: gr.Markdown | None = None

    def after_start(self, fn: Callable[..., Any], comps: Mapping[str, Any], **kwargs: Any) -> None:
        """Run the wired handler `fn` (components.wiring) once the page's visitor id is known."""
        self.session_handlers.append((fn, comps, kwargs))
