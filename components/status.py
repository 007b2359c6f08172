"""The one-line status above the tabs: which backend plays each role, what works without a key."""

from __future__ import annotations

import functools
from typing import Any

import gradio as gr

from components.context import AppContext
from components.wiring import outputs, wire
from pipeline.endpoints import SessionSettings
from pipeline.settings_view import status_line


@outputs("status_md")
def render_status(settings: SessionSettings) -> dict[str, Any]:
    return {"status_md": status_line(settings)}


def build_status_line(ctx: AppContext) -> gr.Markdown:
    """Built above gr.Tabs; follows every change of the visitor's settings, whichever tab made it."""
    c = {"settings": ctx.settings, "status_md": gr.Markdown(status_line(SessionSettings()), elem_id="distill-status")}
    # No triggers: runs on page load (environment keys set after start-up are seen) and on every change.
    wire(functools.partial(gr.on, None), render_status, c, api_name="status", queue=False)
    return c["status_md"]
