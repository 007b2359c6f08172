"""Who the visitor is: a server-signed id kept in their browser (pipeline.ownership).

The browser holds only the signed token. `visitor_state` checks the signature whenever an event
receives it, so every handler gets the verified id, or None for a token the server did not sign
(typed into an API call, edited in localStorage, or from before ids were signed). Handlers
never see the raw value. A visitor signed in with Hugging Face gets their account's id instead, so
their work follows them to another browser.
"""

from __future__ import annotations

import secrets
from typing import Any

import gradio as gr

from pipeline import ownership, workspace


def visitor_state(storage_key: str) -> gr.BrowserState:
    """A BrowserState whose value reaches handlers only once the server's signature on it checks out.

    The check replaces this one instance's `preprocess` (a subclass would make gradio write a .pyi
    stub next to this file on every import)."""
    state = gr.BrowserState(None, storage_key=storage_key, secret=browser_secret())
    state.preprocess = ownership.verify_visitor  # type: ignore[method-assign]
    return state


def assign_visitor(current: str | None, profile: Any = None) -> str:
    """The token this browser keeps: the account's when signed in; else the one it has, if it is an
    anonymous one this server signed; else a new one (first visit, cleared storage, signed out)."""
    account = (profile.get("sub") or profile.get("preferred_username")) if profile else None
    if account:
        return ownership.account_visitor(str(account))
    visitor_id = ownership.verify_visitor(current)
    if visitor_id and not ownership.is_account(visitor_id):
        return current  # type: ignore[return-value]
    # A signed-out browser must not keep the account's id: the next person at it is someone else.
    return ownership.mint_visitor()


def start_session(visitor: str | None, profile: gr.OAuthProfile | None) -> tuple[str, gr.Column, gr.Markdown]:
    """On page load: the visitor token, then the tabs shown and the "starting" line hidden.

    `visitor` is the verified id (visitor_state), None when the browser's token was not ours."""
    token = ownership.token_for(visitor) if visitor else None
    # "hidden", not False: a component removed from the page while its event runs leaves its progress
    # timer counting forever (components/page_frames.py); a hidden one sees the event complete.
    return assign_visitor(token, profile), gr.Column(visible=True), gr.Markdown(visible="hidden")


def browser_secret() -> str:
    """The key gr.BrowserState scrambles localStorage with, kept in the workspace so values survive
    restarts. Gradio sends it to the page, so it hides nothing from the visitor: what must stay
    unreadable to them (remembered keys) is sealed on the server (pipeline.ownership.seal)."""
    path = workspace.home() / ".browser_state_secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()
