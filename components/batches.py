"""The batches panel, one component placed in both the Generate and the Evaluate tab (each lists its
own kind: collected results land in that tab's place, the draft or the scoreboard, and a user looks
for a batch where they sent it). Half-price bulk work through a provider's Batch API: the records
live per visitor in the workspace (pipeline.batch), so a closed browser or a restart shows the same
list. Handlers follow components/wiring.py; nothing here polls faster than the backoff allows.

This module is the list and its following (the table, the picker, refresh, the timer's polls); what
the buttons do to a batch (submit, collect, cancel, retry, export, import) is in batches_actions.py.
"""

from __future__ import annotations

import time
from typing import Any

import gradio as gr

from components import batches_view as view
from components.errors import warn
from components.wiring import outputs
from pipeline import batch
from pipeline.endpoints import SessionSettings, make_client
from pipeline.errors import InputError, explain

TICK_S = 5.0  # the timer's beat; `batch_watch` decides when a poll is actually due
FIRST_POLL_S, MAX_POLL_S = 10.0, 300.0  # doubles while nothing changes: a batch takes minutes to hours
#: A poll waits at most this long for the provider (the SDK's default is minutes, with retries): a
#: provider that hangs must not keep the panel's timer busy; the next poll comes after the backoff.
POLL_TIMEOUT_S = 30.0
MODES = ("Interactive (one request at a time)", "Batch (half price, results within 24 h)")
BUTTONS = ("batch_collect_btn", "batch_cancel_btn", "batch_retry_btn", "batch_export_btn")
LIST = ("batch_list_html", "batch_dd", "batch_other_md", "batch_timer", "batch_watch", "batch_controls", *BUTTONS)


def checked_visitor(visitor: str | None) -> str:
    if not visitor:  # never None: that would be the command line's own records, not this visitor's
        raise InputError("Your session is still starting: wait a moment, or reload the page.")
    return visitor


def _mine(visitor: str | None, batch_kind: str) -> tuple[list[batch.BatchRecord], list[batch.BatchRecord]]:
    records = batch.list_batches(visitor) if visitor else []
    return [r for r in records if r.kind == batch_kind], [r for r in records if r.kind != batch_kind]


def client_for(settings: SessionSettings, record: batch.BatchRecord) -> Any:
    return make_client(settings, record.endpoint)


def listing(visitor: str | None, batch_kind: str, batch_dd: str | None = None,
            watch: dict | None = None) -> dict[str, Any]:
    """The panel from the records alone (no provider call: fast on page load); the timer runs while
    a batch is moving."""
    mine, others = _mine(visitor, batch_kind)
    ids = [r.id for r in mine]
    picked = batch_dd if batch_dd in ids else (ids[0] if ids else None)
    moving = any(r.state in view.MOVING for r in mine)
    watch = watch or {"next_at": 0.0, "every": FIRST_POLL_S, "seen": None}
    return {"batch_list_html": view.table_html(mine, batch_kind),
            "batch_dd": gr.update(choices=view.choices(mine), value=picked),
            "batch_other_md": view.other_kind_line(others, batch_kind),
            "batch_timer": gr.update(active=moving), "batch_watch": watch,
            "batch_controls": gr.update(visible=bool(mine)),  # no batch yet: the empty line says it all
            **buttons(next((r for r in mine if r.id == picked), None))}


def buttons(record: batch.BatchRecord | None) -> dict[str, Any]:
    """Only the actions that can do something for the picked batch are enabled (the pipeline refuses
    the others too, with a message; this saves the click)."""
    allowed = view.actions(record)
    return {name: gr.update(interactive=name in allowed) for name in BUTTONS}


@outputs(*BUTTONS)
def pick_batch(visitor: str | None, batch_dd: str | None) -> dict[str, Any]:
    try:
        return buttons(batch.load_batch(visitor, batch_dd) if visitor and batch_dd else None)
    except InputError:  # a batch picked in another window and gone since: nothing to act on
        return buttons(None)


@outputs(*LIST)
def show_batches(visitor: str | None, batch_kind: str, batch_dd: str | None) -> dict[str, Any]:
    return listing(visitor, batch_kind, batch_dd)


def _refresh_all(settings: SessionSettings, visitor: str | None, batch_kind: str) -> tuple[list[str], list[str]]:
    """Ask the provider about every moving batch; (states seen, problems: one line each, never a traceback)."""
    seen, problems = [], []
    for r in _mine(visitor, batch_kind)[0]:
        if r.state not in view.MOVING:
            continue
        try:
            r = batch.refresh(r, client_for(settings, r).with_options(timeout=POLL_TIMEOUT_S, max_retries=1))
        except Exception as exc:  # noqa: BLE001 - an unreachable endpoint is a line in the panel, not a crash
            problems.append(f"{r.id}: {explain(exc)}")
        seen.append(f"{r.id}:{r.state}:{r.counts()}")
    return seen, problems


@outputs(*LIST, "batch_msg_md")
def refresh_batches(settings: SessionSettings, visitor: str | None, batch_kind: str,
                    batch_dd: str | None) -> dict[str, Any]:
    _, problems = _refresh_all(settings, checked_visitor(visitor), batch_kind)
    return {**listing(visitor, batch_kind, batch_dd), "batch_msg_md": "\n\n".join(problems) or
            f"Refreshed at {time.strftime('%H:%M:%S UTC', time.gmtime())}."}


@outputs(*LIST, "batch_msg_md")
def tick_batches(settings: SessionSettings, visitor: str | None, batch_kind: str, batch_dd: str | None,
                 batch_watch: dict | None) -> dict[str, Any]:
    """One timer beat: poll when due; the wait doubles while nothing changes (or the endpoint fails),
    and is short again as soon as counts move."""
    watch = batch_watch or {"next_at": 0.0, "every": FIRST_POLL_S, "seen": None}
    if not visitor or time.time() < watch.get("next_at", 0.0):
        return {}
    seen, problems = _refresh_all(settings, visitor, batch_kind)
    changed = seen != watch.get("seen") and not problems
    every = FIRST_POLL_S if changed else min(MAX_POLL_S, 2 * float(watch.get("every", FIRST_POLL_S)))
    out = listing(visitor, batch_kind, batch_dd, {"next_at": time.time() + every, "every": every, "seen": seen})
    if problems and problems != watch.get("problems"):
        out["batch_msg_md"] = "\n\n".join(problems)
    out["batch_watch"]["problems"] = problems
    return out


@outputs(*LIST)
def follow_kind(visitor: str | None, batch_kind: str, batch_dd: str | None) -> dict[str, Any]:
    """On page load (a refresh, a restart, a day away): the same list, no provider call yet.

    The timer starts even with nothing moving: this answer was read when the page opened and can
    arrive after a batch submitted in the first moment, whose own answer it then blanks. The next
    beat lists the records again (and stops the timer if nothing moves), instead of a reload."""
    try:
        return {**listing(visitor, batch_kind, batch_dd), "batch_timer": gr.update(active=True)}
    except Exception as exc:  # noqa: BLE001 - the page must load: say what went wrong and go on
        warn(exc)
        return {}
