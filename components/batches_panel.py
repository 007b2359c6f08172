"""Where the batches panel sits and how it is wired (the handlers: the list in components/batches.py,
the buttons' actions in components/batches_actions.py).

One component placed in two tabs: Generate lists generation batches, Evaluate evaluation batches.
A batch is looked for where it was sent, and its results land in that tab's place (the draft, the
scoreboard); each panel names the other kind's batches in one line, so none is lost from view.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.context import Context

from components import batches as b
from components import batches_actions as act
from components import batches_view as view
from components.wiring import wire

MODES = b.MODES


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
        with gr.Column(visible=False) as c["batch_controls"]:
            _controls(c, kind)
    c["batch_timer"] = gr.Timer(b.TICK_S, active=False)


def _controls(c: dict[str, Any], kind: str) -> None:
    c["batch_dd"] = gr.Dropdown([], label="Batch the buttons act on", elem_id=f"batch-pick-{kind}")
    with gr.Row():
        c["batch_refresh_btn"] = gr.Button("↻ Refresh", size="sm")
        c["batch_collect_btn"] = gr.Button("Collect results", size="sm", variant="primary", interactive=False)
        c["batch_cancel_btn"] = gr.Button("Cancel batch", size="sm", interactive=False)
        c["batch_retry_btn"] = gr.Button("Retry failed requests", size="sm", interactive=False)
        c["batch_export_btn"] = gr.Button("Download request file", size="sm", interactive=False)
    with gr.Row():
        c["batch_file"] = gr.File(label="Request file (JSONL)", interactive=False, height=80, visible=False)
        c["batch_import_file"] = gr.File(label="Import a results file (OpenAI, Azure or vLLM run-batch JSONL) into "
                                               "the batch picked above", file_types=[".jsonl"], type="filepath",
                                         height=120, elem_id=f"batch-import-{kind}")


def wire_batches_panel(c: dict[str, Any], visitor: Any) -> dict[str, Any]:
    """Wire the panel; returns the collect and import events (the Evaluate tab chains its scoreboard)."""
    private = {"api_visibility": "private"}
    wire(c["batch_refresh_btn"].click, b.refresh_batches, c, **private)
    wire(c["batch_dd"].input, b.pick_batch, c, queue=False, **private)
    wire(c["batch_timer"].tick, b.tick_batches, c, show_progress="hidden", **private)
    collected = wire(c["batch_collect_btn"].click, act.collect_batch, c, api_name=f"batch_collect_{c['batch_kind'].value}")
    wire(c["batch_cancel_btn"].click, act.cancel_batch, c, **private)
    wire(c["batch_retry_btn"].click, act.retry_batch, c, **private)
    wire(c["batch_export_btn"].click, act.export_batch, c, **private)
    imported = wire(c["batch_import_file"].upload, act.import_batch, c, **private)
    wire(c["batch_confirm_btn"].click, act.submit_confirmed, c, **private)
    wire(c["batch_keep_btn"].click, act.keep_unsubmitted, c, **private, queue=False)
    wire(visitor.change, b.follow_kind, c, **private)
    if Context.root_block is not None:  # in the app: a reload (or a day away) shows the same list
        wire(Context.root_block.load, b.follow_kind, c, **private)
    return {"collected": collected, "imported": imported}
