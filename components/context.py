"""What every tab receives: the per-visitor state created once in app.py."""

from __future__ import annotations

from dataclasses import dataclass

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
