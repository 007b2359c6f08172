"""Who the visitor is: a random id kept in their browser, naming their workspace folder."""

from __future__ import annotations

import secrets

import gradio as gr

from pipeline import workspace
from pipeline.errors import InputError


def assign_visitor(current: str | None) -> str:
    """Keep the browser's id if it is valid, else mint one (first visit, or storage was cleared)."""
    try:
        workspace.visitor_dir(current or "")
        return current or ""
    except InputError:
        return secrets.token_urlsafe(16)


def start_session(current: str | None) -> tuple[str, gr.Column, gr.Markdown]:
    """On page load: the visitor id, then the tabs shown and the "starting" line hidden."""
    return assign_visitor(current), gr.Column(visible=True), gr.Markdown(visible=False)


def browser_secret() -> str:
    """The key gr.BrowserState encrypts with, kept in the workspace so it survives app restarts.

    Gradio picks a random one per start otherwise, and every visitor's stored id would be lost on
    restart. It protects only the visitor id and job ids, never API keys (those are not stored).
    """
    path = workspace.home() / ".browser_state_secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()
