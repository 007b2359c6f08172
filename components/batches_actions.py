"""What the batches panel's buttons do to a batch: submit a built one (asking first above the
confirmation threshold), collect its results exactly once, cancel it, retry its failed requests,
export its request file, import a results file from elsewhere. Every handler answers with the
refreshed list (components/batches.py) beside its own message; handlers follow components/wiring.py.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from components import batches_view as view
from components.batches import LIST, checked_visitor, client_for, listing
from components.wiring import outputs
from pipeline import batch
from pipeline.endpoints import SessionSettings
from pipeline.errors import InputError, ProviderError


def _picked(visitor: str | None, batch_dd: str | None) -> batch.BatchRecord:
    if not batch_dd:
        raise InputError("Pick a batch in the list first.")
    return batch.load_batch(checked_visitor(visitor), batch_dd)  # looks in this visitor's folder only



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
        record = batch.submit(record, client_for(settings, record))
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
    client = None if record.state in ("built", "collected") else client_for(settings, record)
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
    record = batch.cancel(record, client_for(settings, record))
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
    checks or the judge, when the batch needs them, go to the batch's endpoint as a second batch)."""
    if not batch_import_file:
        return {}
    record = batch.import_results(_picked(visitor, batch_dd), batch_import_file)
    client = client_for(settings, record) if batch.needs_endpoint(record) else None
    return {**_collected(record, batch.collect(record, client), batch_kind, dataset_rev), "batch_import_file": None}
