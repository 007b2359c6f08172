"""Fine-tune tab: choose data, base model and hyperparameters, see the cost, start, watch, cancel.

Wiring only (components/wiring.py): the handlers are in components/finetune_actions.py, the work in
pipeline/finetune/.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.context import Context

from components import finetune_actions as act
from components.context import AppContext
from components.finetune_view import CHECKPOINT_COLUMNS, EVENT_COLUMNS, badge_html
from components.wiring import outputs, wire
from pipeline.endpoints import SessionSettings
from pipeline.finetune.metrics import COLUMNS

TICK_S = 2.0  # the timer's beat; the handler itself decides when a poll is due (backoff)


def build_finetune_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    start_settings = SessionSettings()
    endpoints = act.fine_tuning_endpoints(start_settings)
    c: dict[str, Any] = {"settings": ctx.settings, "recent_jobs": ctx.recent_jobs, "visitor": ctx.visitor}
    with gr.Row():
        with gr.Column(scale=2):
            gr.Markdown("### 1. Data and model")
            c["source_radio"] = gr.Radio(list(act.SOURCES), value=act.SOURCES[0], label="Training data")
            c["upload_file"] = gr.File(label="Training file (JSONL, CSV, Parquet)", visible=False,
                                       file_types=[".jsonl", ".json", ".csv", ".tsv", ".parquet"], type="filepath",
                                       elem_id="ft-upload")
            c["split_sl"] = gr.Slider(0, 0.5, value=0.1, step=0.05, label="Validation split",
                                      info="Share of examples held out to measure validation loss (0 = none)")
            c["endpoint_dd"] = gr.Dropdown(endpoints, value=act.default_endpoint(start_settings), label="Endpoint",
                                           elem_id="ft-endpoint",
                                           info="Where the job runs: your endpoints that can fine-tune (Settings)")
            with gr.Row():
                initial = act.initial_base_models(start_settings)
                c["model_dd"] = gr.Dropdown(initial, value=initial[0], label="Base model", elem_id="ft-model",
                                            allow_custom_value=True, scale=4,
                                            info="Starts as the base student role's model (Settings > Roles)")
                c["models_btn"] = gr.Button("↻ Models", scale=1, size="sm")
            with gr.Accordion("Hyperparameters", open=False):
                c["epochs_box"] = gr.Textbox("auto", label="Epochs", info="'auto' or 1-50", elem_id="ft-epochs")
                c["batch_box"] = gr.Textbox("auto", label="Batch size", info="'auto' or 1-256")
                c["lr_box"] = gr.Textbox("auto", label="Learning rate multiplier", info="'auto' or > 0")
                c["seed_num"] = gr.Number(None, label="Seed (optional)", precision=0)
            c["suffix_box"] = gr.Textbox("", label="Suffix", max_length=64,
                                         info="Added to the fine-tuned model's name, e.g. 'riddles'")
            c["check_btn"] = gr.Button("Check data and cost")
            c["preflight_md"] = gr.Markdown()
            with gr.Row(visible=False) as c["confirm_row"]:
                c["confirm_md"] = gr.Markdown()
                c["confirm_btn"] = gr.Button("Start anyway", variant="stop")
            c["start_btn"] = gr.Button("Start fine-tuning", variant="primary")
        with gr.Column(scale=3):
            gr.Markdown("### 2. Watch the job")
            with gr.Row():
                c["jobs_dd"] = gr.Dropdown([], label="Your jobs on this endpoint", scale=4)
                c["open_btn"] = gr.Button("Open", scale=1, size="sm")
                c["jobs_btn"] = gr.Button("↻ Jobs", scale=1, size="sm")
            c["status_html"] = gr.HTML(badge_html(None))
            c["progress_md"] = gr.Markdown("No job yet. Start one, or open an earlier job from the list.")
            c["smooth_chk"] = gr.Checkbox(False, label="Smooth the curves")
            c["loss_plot"] = gr.LinePlot(x="step", y="loss", color="series", label="Loss", elem_id="ft-loss",
                                         x_title="step", y_title="loss")
            with gr.Accordion("Events", open=True):
                c["events_df"] = gr.Dataframe(headers=EVENT_COLUMNS, interactive=False, max_height=260)
            with gr.Accordion("Metrics per step", open=False):
                c["metrics_df"] = gr.Dataframe(headers=list(COLUMNS), interactive=False, max_height=260)
            with gr.Accordion("Checkpoints", open=False):
                c["checkpoints_df"] = gr.Dataframe(headers=CHECKPOINT_COLUMNS, interactive=False)
            c["cancel_btn"] = gr.Button("Cancel job", variant="stop", interactive=False)
            with gr.Row(visible=False) as c["cancel_row"]:
                c["cancel_md"] = gr.Markdown()
                c["cancel_yes_btn"] = gr.Button("Yes, cancel it", variant="stop")
                c["cancel_no_btn"] = gr.Button("Keep training")
    c["watch_state"] = gr.State(None)
    c["base_seen"] = gr.State(None)  # the base role the pickers last followed
    c["timer"] = gr.Timer(TICK_S, active=False)
    _wire(ctx, c)
    return {k: v for k, v in c.items() if k not in ("settings", "recent_jobs", "visitor")}


@outputs("upload_file")
def show_upload(source_radio: str) -> dict[str, Any]:
    return {"upload_file": gr.File(visible=source_radio == act.SOURCES[1])}


def _wire(ctx: AppContext, c: dict[str, Any]) -> None:
    wire(c["source_radio"].change, show_upload, c, api_name=False, queue=False)
    # Settings are the single source of truth: the endpoint list and the base role's pick follow them.
    wire(ctx.settings.change, act.follow_settings, c, api_name=False)
    wire(c["endpoint_dd"].change, act.list_base_models, c, api_name=False)
    wire(c["endpoint_dd"].change, act.refresh_jobs, c, api_name=False)
    wire(c["models_btn"].click, act.list_base_models, c, api_name="finetune_models")
    wire(c["check_btn"].click, act.check_run, c, api_name="finetune_preflight")
    for btn, confirmed, api in ((c["start_btn"], False, "finetune_start"),
                                (c["confirm_btn"], True, "finetune_start_confirmed")):
        # One handler for both buttons: the confirm button says the visitor accepted the cost.
        started = wire(btn.click, act.start_run, {**c, "confirmed": gr.State(confirmed)}, api_name=api,
                       concurrency_limit=4)
        wire(started.success, act.refresh_jobs, c, api_name=False)  # the new job joins the list
    wire(c["timer"].tick, act.poll_job, c, api_name="finetune_poll", show_progress="hidden")
    wire(c["smooth_chk"].change, act.redraw_chart, c, api_name=False)
    wire(c["open_btn"].click, act.open_job, c, api_name="finetune_open")
    wire(c["jobs_btn"].click, act.refresh_jobs, c, api_name="finetune_jobs")
    wire(c["cancel_btn"].click, act.ask_cancel, c, api_name=False)
    wire(c["cancel_yes_btn"].click, act.cancel_run, c, api_name="finetune_cancel")
    wire(c["cancel_no_btn"].click, act.keep_running, c, api_name=False)
    # A job started elsewhere in this session (the Start tab's demo) appears in the list, and is
    # watched when this tab watches nothing else.
    wire(ctx.recent_jobs.change, act.follow_jobs, c, api_name=False)
    if Context.root_block is not None:  # re-attach on every page load (refresh, restart)
        wire(Context.root_block.load, act.reattach, c, api_name=False)
