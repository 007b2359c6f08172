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

from components import batches_view as view
from components.errors import warn
from components.wiring import outputs
from pipeline import batch
from pipeline.endpoints import SessionSettings, make_client
from pipeline.errors import InputError, ProviderError, explain

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
            r = batch.refresh(r, _client(settings, r).with_options(timeout=POLL_TIMEOUT_S, max_retries=1))
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


def submit_or_ask(settings: SessionSettings, record: batch.BatchRecord, batch_kind: str,
                  send: bool = True) -> dict[str, Any]:
    """Submit a built batch, unless it costs more than the visitor's confirmation threshold (the one the
    Fine-tune tab asks with): then the confirm row asks first. The request file is kept either way;
    `send=False` only offers it (to run elsewhere, e.g. `vllm run-batch`)."""
    if not send:
        return {**listing(record.visitor, batch_kind, record.id), "batch_confirm_row": gr.update(visible=False),
                "batch_file": gr.update(value=str(batch.request_file(record)), visible=True),
                "batch_msg_md": view.file_only_line(record)}
    est = batch.estimate_cost(record)
    threshold = float(settings.confirm_above_usd)
    if est.batch_cost_usd is not None and est.batch_cost_usd > threshold:
        return {**listing(record.visitor, batch_kind, record.id), "batch_pending": record.id,
                "batch_confirm_md": view.confirm_line(record, threshold), "batch_confirm_row": gr.update(visible=True),
                "batch_msg_md": ""}
    return _send(settings, record, batch_kind)


def _send(settings: SessionSettings, record: batch.BatchRecord, batch_kind: str) -> dict[str, Any]:
    try:
        record = batch.submit(record, _client(settings, record))
        said = view.submitted_line(record)
    except ProviderError as exc:  # e.g. a compatible server without /v1/batches: one line, file kept
        said = view.not_sent_line(record, exc)
    return {**listing(record.visitor, batch_kind, record.id), "batch_pending": None,
            "batch_confirm_row": gr.update(visible=False), "batch_msg_md": said}


SUBMIT = (*LIST, "batch_msg_md", "batch_pending", "batch_confirm_md", "batch_confirm_row", "batch_file")


@outputs(*SUBMIT)
def submit_confirmed(settings: SessionSettings, visitor: str | None, batch_kind: str,
                     batch_pending: str | None) -> dict[str, Any]:
    if not batch_pending:
        raise InputError("Nothing is waiting to be submitted.")
    return _send(settings, batch.load_batch(checked_visitor(visitor), batch_pending), batch_kind)


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
def import_batch(settings: SessionSettings, visitor: str | None, batch_kind: str, batch_dd: str | None,
                 batch_import_file: str | None, dataset_rev: int | None) -> dict[str, Any]:
    """A results file from elsewhere (OpenAI, Azure, vLLM run-batch), then collected at once (answer
    checks, when the batch asked for them, go to the batch's endpoint as a second batch)."""
    if not batch_import_file:
        return {}
    record = batch.import_results(_picked(visitor, batch_dd), batch_import_file)
    client = _client(settings, record) if record.plan.get("check") else None
    return {**_collected(record, batch.collect(record, client), batch_kind, dataset_rev), "batch_import_file": None}


@outputs(*LIST)
def follow_kind(visitor: str | None, batch_kind: str, batch_dd: str | None) -> dict[str, Any]:
    """On page load (a refresh, a restart, a day away): the same list, no provider call yet."""
    try:
        return listing(visitor, batch_kind, batch_dd)
    except Exception as exc:  # noqa: BLE001 - the page must load: say what went wrong and go on
        warn(exc)
        return {}
