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
    # No progress timer: the line is redrawn on every settings change, and a "1.2s" counter in it is noise.
    wire(functools.partial(gr.on, None), render_status, c, api_name="status", queue=False, show_progress="hidden")
    ctx.status_md = c["status_md"]
    return c["status_md"]


def redraw_status_after(event: Any, ctx: AppContext) -> None:
    """Draw the status line again once `event` (a wired dependency) is done: for a handler that fills the
    session's look-up cache in place, which changes no state and so triggers nothing."""
    if ctx.status_md is not None:
        wire(event.then, render_status, {"settings": ctx.settings, "status_md": ctx.status_md}, queue=False,
             show_progress="hidden", api_visibility="private")
