"""The one-line status above the tabs: which backend plays each role, what works without a key."""

from __future__ import annotations

import gradio as gr

from components.context import AppContext
from pipeline.endpoints import SessionSettings
from pipeline.settings_view import status_line


def render_status(settings: SessionSettings) -> str:
    return status_line(settings)


def build_status_line(ctx: AppContext) -> gr.Markdown:
    """Built above gr.Tabs; follows every change of the visitor's settings, whichever tab made it."""
    status_md = gr.Markdown(status_line(SessionSettings()), elem_id="distill-status")
    # No triggers: runs on page load (environment keys set after start-up are seen) and on every change.
    gr.on(None, render_status, ctx.settings, status_md, api_name="status", queue=False)
    return status_md
