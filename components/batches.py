"""The batches panel, one component placed in both the Generate and the Evaluate tab (each lists its
own kind: collected results land in that tab's place, the draft or the scoreboard, and a user looks
for a batch where they sent it). Half-price bulk work through a provider's Batch API: the records
live per visitor in the workspace (pipeline.batch), so a closed browser or a restart shows the same
list. Handlers follow components/wiring.py; nothing here polls faster than the backoff allows.
"""

from __future__ import annotations

import time
from typing import Any

import gradio as gr
from gradio.context import Context

from components import batches_view as view
from components.errors import warn
from components.wiring import outputs, wire
from pipeline import batch
from pipeline.endpoints import SessionSettings, make_client
from pipeline.errors import InputError, explain

TICK_S = 5.0  # the timer's beat; `batch_watch` decides when a poll is actually due
FIRST_POLL_S, MAX_POLL_S = 10.0, 300.0  # doubles while nothing changes: a batch takes minutes to hours
MODES = ("Interactive (one request at a time)", "Batch (half price, results within 24 h)")
BUTTONS = ("batch_collect_btn", "batch_cancel_btn", "batch_retry_btn", "batch_export_btn")
LIST = ("batch_list_html", "batch_dd", "batch_other_md", "batch_timer", "batch_watch", *BUTTONS)


def checked_visitor(visitor: str | None) -> str:
    if not visitor:  # never None: that would be the command line's own records, not this visitor's
        raise InputError("Your session is still starting: wait a moment, or reload the page.")
    return visitor


def _mine(visitor: str | None, batch_kind: str) -> tuple[list[batch.BatchRecord], list[batch.BatchRecord]]:
    records = batch.list_batches(visitor) if visitor else []
    return [r for r in records if r.kind == batch_kind], [r for r in records if r.kind != batch_kind]


def _picked(visitor: str | None, batch_dd: str | None) -> batch.BatchRecord:
    if not batch_dd:
        raise InputError("Pick a batch in the list first.")
    return batch.load_batch(checked_visitor(visitor), batch_dd)  # looks in this visitor's folder only


def _client(settings: SessionSettings, record: batch.BatchRecord) -> Any:
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
            r = batch.refresh(r, _client(settings, r))
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


def submit_or_ask(settings: SessionSettings, record: batch.BatchRecord, batch_kind: str) -> dict[str, Any]:
    """Submit a built batch, unless it costs more than the visitor's confirmation threshold (the one the
    Fine-tune tab asks with): then the confirm row asks first; the request file is kept either way."""
    est = batch.estimate_cost(record)
    threshold = float(settings.confirm_above_usd)
    if est.batch_cost_usd is not None and est.batch_cost_usd > threshold:
        return {**listing(record.visitor, batch_kind, record.id), "batch_pending": record.id,
                "batch_confirm_md": view.confirm_line(record, threshold), "batch_confirm_row": gr.update(visible=True),
                "batch_msg_md": ""}
    record = batch.submit(record, _client(settings, record))
    return {**listing(record.visitor, batch_kind, record.id), "batch_pending": None,
            "batch_confirm_row": gr.update(visible=False), "batch_msg_md": view.submitted_line(record)}


SUBMIT = (*LIST, "batch_msg_md", "batch_pending", "batch_confirm_md", "batch_confirm_row")


@outputs(*SUBMIT)
def submit_confirmed(settings: SessionSettings, visitor: str | None, batch_kind: str,
                     batch_pending: str | None) -> dict[str, Any]:
    if not batch_pending:
        raise InputError("Nothing is waiting to be submitted.")
    record = batch.load_batch(checked_visitor(visitor), batch_pending)
    record = batch.submit(record, _client(settings, record))
    return {**listing(visitor, batch_kind, record.id), "batch_pending": None,
            "batch_confirm_row": gr.update(visible=False), "batch_msg_md": view.submitted_line(record)}


@outputs("batch_pending", "batch_confirm_row", "batch_msg_md")
def keep_unsubmitted(batch_pending: str | None) -> dict[str, Any]:
    return {"batch_pending": None, "batch_confirm_row": gr.update(visible=False),
            "batch_msg_md": f"Not submitted. {batch_pending or 'The batch'} keeps its request file: pick it below and "
                            "**Download request file** to run it elsewhere."}


@outputs(*LIST, "batch_msg_md", "batch_results", "dataset_rev")
def collect_batch(settings: SessionSettings, visitor: str | None, batch_kind: str, batch_dd: str | None,
                  dataset_rev: int | None) -> dict[str, Any]:
    """Results into the draft (generation) or onto the scoreboard (evaluation), exactly once."""
    record = _picked(visitor, batch_dd)
    client = None if record.state in ("built", "collected") else _client(settings, record)
    return _collected(record, batch.collect(record, client), batch_kind, dataset_rev)


def _collected(record: batch.BatchRecord, report: batch.CollectReport, batch_kind: str,
               dataset_rev: int | None) -> dict[str, Any]:
    out = {**listing(record.visitor, batch_kind, record.id), "batch_msg_md": view.collected_line(record, report)}
    if report.results is not None:
        out["batch_results"] = report.results
    if report.appended and not report.already:
        out["dataset_rev"] = (dataset_rev or 0) + 1  # the Dataset tab reloads the draft
    return out


@outputs(*LIST, "batch_msg_md")
def cancel_batch(settings: SessionSettings, visitor: str | None, batch_kind: str, batch_dd: str | None) -> dict[str, Any]:
    record = _picked(visitor, batch_dd)
    if record.finished() or record.state == "built":
        raise InputError(f"Batch {record.id} is {view.state_word(record)}: there is nothing to cancel.")
    record = batch.cancel(record, _client(settings, record))
    return {**listing(visitor, batch_kind, record.id), "batch_msg_md":
            f"Cancelling {record.id}: answers finished so far are kept; collect them once it says cancelled."}


@outputs(*SUBMIT)
def retry_batch(settings: SessionSettings, visitor: str | None, batch_kind: str, batch_dd: str | None) -> dict[str, Any]:
    """The failed requests of a collected batch, as a new smaller batch (asks first above the threshold)."""
    retry = batch.retry_failed(_picked(visitor, batch_dd))
    return submit_or_ask(settings, retry, batch_kind)


@outputs("batch_file", "batch_msg_md")
def export_batch(visitor: str | None, batch_dd: str | None) -> dict[str, Any]:
    record = _picked(visitor, batch_dd)
    return {"batch_file": gr.update(value=str(batch.request_file(record)), visible=True),
            "batch_msg_md": f"Request file of {record.id} ({record.requests:,} requests, OpenAI's batch format: "
                            "OpenAI, Azure OpenAI and `vllm run-batch` read it). Import the results file here later."}


@outputs(*LIST, "batch_msg_md", "batch_results", "dataset_rev", "batch_import_file")
def import_batch(visitor: str | None, batch_kind: str, batch_dd: str | None, batch_import_file: str | None,
                 dataset_rev: int | None) -> dict[str, Any]:
    """A results file from elsewhere (OpenAI, Azure, vLLM run-batch), then collected at once."""
    if not batch_import_file:
        return {}
    record = batch.import_results(_picked(visitor, batch_dd), batch_import_file)
    return {**_collected(record, batch.collect(record), batch_kind, dataset_rev), "batch_import_file": None}


@outputs(*LIST)
def follow_kind(visitor: str | None, batch_kind: str, batch_dd: str | None) -> dict[str, Any]:
    """On page load (a refresh, a restart, a day away): the same list, no provider call yet."""
    try:
        return listing(visitor, batch_kind, batch_dd)
    except Exception as exc:  # noqa: BLE001 - the page must load: say what went wrong and go on
        warn(exc)
        return {}


def build_confirm_row(c: dict[str, Any], kind: str) -> None:
    """Under the tab's run buttons: the question asked above the threshold, and what a submit said."""
    c["batch_kind"] = gr.State(kind)
    c["batch_pending"], c["batch_results"], c["batch_watch"] = gr.State(None), gr.State(None), gr.State(None)
    with gr.Row(visible=False, equal_height=True) as c["batch_confirm_row"]:
        c["batch_confirm_md"] = gr.Markdown()
        c["batch_confirm_btn"] = gr.Button("Submit anyway", variant="stop", scale=0, min_width=140)
        c["batch_keep_btn"] = gr.Button("Don't submit", scale=0, min_width=140)
    c["batch_msg_md"] = gr.Markdown(elem_id=f"batch-msg-{kind}")


def build_batches_panel(c: dict[str, Any], kind: str) -> None:
    """The list of the visitor's batches of this kind, and its actions."""
    title = "Your generation batches" if kind == "generate" else "Your evaluation batches"
    with gr.Accordion(title, open=True, elem_id=f"batch-panel-{kind}"):
        c["batch_list_html"] = gr.HTML(view.table_html([], kind), elem_id=f"batch-list-{kind}")
        c["batch_other_md"] = gr.Markdown()
        c["batch_dd"] = gr.Dropdown([], label="Batch the buttons act on", elem_id=f"batch-pick-{kind}")
        with gr.Row():
            c["batch_refresh_btn"] = gr.Button("↻ Refresh", size="sm")
            c["batch_collect_btn"] = gr.Button("Collect results", size="sm", variant="primary", interactive=False)
            c["batch_cancel_btn"] = gr.Button("Cancel batch", size="sm", interactive=False)
            c["batch_retry_btn"] = gr.Button("Retry failed requests", size="sm", interactive=False)
            c["batch_export_btn"] = gr.Button("Download request file", size="sm", interactive=False)
        with gr.Row():
            c["batch_file"] = gr.File(label="Request file (JSONL)", interactive=False, height=80, visible=False)
            c["batch_import_file"] = gr.File(label="Import a results file (OpenAI, Azure or vLLM run-batch JSONL) "
                                                   "into the batch picked above", file_types=[".jsonl"], type="filepath",
                                             height=80, elem_id=f"batch-import-{kind}")
    c["batch_timer"] = gr.Timer(TICK_S, active=False)


def wire_batches_panel(c: dict[str, Any], visitor: Any) -> dict[str, Any]:
    """Wire the panel; returns the collect and import events (the Evaluate tab chains its scoreboard)."""
    private = {"api_visibility": "private"}
    wire(c["batch_refresh_btn"].click, refresh_batches, c, **private)
    wire(c["batch_dd"].input, pick_batch, c, queue=False, **private)
    wire(c["batch_timer"].tick, tick_batches, c, show_progress="hidden", **private)
    collected = wire(c["batch_collect_btn"].click, collect_batch, c, api_name=f"batch_collect_{c['batch_kind'].value}")
    wire(c["batch_cancel_btn"].click, cancel_batch, c, **private)
    wire(c["batch_retry_btn"].click, retry_batch, c, **private)
    wire(c["batch_export_btn"].click, export_batch, c, **private)
    imported = wire(c["batch_import_file"].upload, import_batch, c, **private)
    wire(c["batch_confirm_btn"].click, submit_confirmed, c, **private)
    wire(c["batch_keep_btn"].click, keep_unsubmitted, c, **private, queue=False)
    wire(visitor.change, follow_kind, c, **private)
    if Context.root_block is not None:  # in the app: a reload (or a day away) shows the same list
        wire(Context.root_block.load, follow_kind, c, **private)
    return {"collected": collected, "imported": imported}
