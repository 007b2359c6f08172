"""Fine-tune tab: choose data, base model and hyperparameters, see the cost, start, watch, cancel.

Wiring only: the handlers are in components/finetune_actions.py (they return dicts keyed by
component name; `_bind` maps the names to this tab's components) and the work in pipeline/finetune/.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gradio as gr
from gradio.context import Context

from components import finetune_actions as act
from components.context import AppContext
from components.errors import shown_errors
from components.finetune_view import CHECKPOINT_COLUMNS, EVENT_COLUMNS, badge_html
from pipeline.endpoints import SessionSettings
from pipeline.finetune.metrics import COLUMNS

TICK_S = 2.0  # the timer's beat; the handler itself decides when a poll is due (backoff)


def _bind(fn: Callable[..., dict[str, Any]], comps: dict[str, Any]) -> Callable[..., dict[Any, Any]]:
    """Turn a handler returning {name: value} into one returning {component: value}."""
    first = comps[_outputs(fn)[0]]

    @functools.wraps(fn)
    def handler(*args: Any) -> dict[Any, Any]:
        # Gradio reads an empty dict as one value, not as "no updates": skip explicitly.
        return {comps[name]: value for name, value in fn(*args).items()} or {first: gr.skip()}

    return shown_errors(handler)


def build_finetune_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    start_settings = SessionSettings()
    endpoints = act.fine_tuning_endpoints(start_settings)
    c: dict[str, Any] = {"settings": ctx.settings, "recent_jobs": ctx.recent_jobs}
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
                                           info="Where the job runs: OpenAI, or the embedded local backend")
            with gr.Row():
                initial = act.initial_base_models(start_settings)
                c["model_dd"] = gr.Dropdown(initial, value=initial[0], label="Base model",
                                            allow_custom_value=True, scale=4)
                c["models_btn"] = gr.Button("↻ Models", scale=1, size="sm")
            with gr.Accordion("Hyperparameters", open=False):
                c["epochs_box"] = gr.Textbox("auto", label="Epochs", info="'auto' or 1-50")
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
    c["timer"] = gr.Timer(TICK_S, active=False)
    _wire(ctx, c)
    return {k: v for k, v in c.items() if k not in ("settings", "recent_jobs")}


def _wire(ctx: AppContext, c: dict[str, Any]) -> None:
    def on(event: Any, fn: Callable[..., dict], inputs: list[str], api_name: str | None = None,
           **kw: Any) -> Any:
        outs = [c[n] for n in _outputs(fn)]
        return event(_bind(fn, c), inputs=[_input(ctx, c, n) for n in inputs], outputs=outs,
                     api_name=api_name or False, **kw)

    run_inputs = ["settings", "visitor", "recent_jobs", "source_radio", "upload_file", "split_sl",
                  "endpoint_dd", "model_dd", "epochs_box", "batch_box", "lr_box", "seed_num", "suffix_box"]
    c["source_radio"].change(lambda s: gr.File(visible=s == act.SOURCES[1]), c["source_radio"],
                             c["upload_file"], api_name=False, queue=False)
    on(c["endpoint_dd"].change, act.list_base_models, ["settings", "endpoint_dd"])
    on(c["endpoint_dd"].change, act.refresh_jobs, ["settings", "visitor", "recent_jobs", "endpoint_dd"])
    on(c["models_btn"].click, act.list_base_models, ["settings", "endpoint_dd"], "finetune_models")
    on(c["check_btn"].click, act.check_run, run_inputs[:2] + run_inputs[3:9], "finetune_preflight")
    jobs_inputs = ["settings", "visitor", "recent_jobs", "endpoint_dd"]
    for btn, fn, api in ((c["start_btn"], act.start_run, "finetune_start"),
                         (c["confirm_btn"], act.start_confirmed, "finetune_start_confirmed")):
        started = on(btn.click, fn, run_inputs, api, concurrency_limit=4)
        on(started.success, act.refresh_jobs, jobs_inputs)  # the new job joins the list
    on(c["timer"].tick, act.poll_job, ["settings", "visitor", "watch_state", "smooth_chk", "recent_jobs"],
       "finetune_poll", show_progress="hidden")
    on(c["smooth_chk"].change, act.redraw_chart, ["watch_state", "smooth_chk"])
    on(c["open_btn"].click, act.open_job, ["settings", "visitor", "recent_jobs", "endpoint_dd", "jobs_dd"],
       "finetune_open")
    on(c["jobs_btn"].click, act.refresh_jobs, ["settings", "visitor", "recent_jobs", "endpoint_dd"],
       "finetune_jobs")
    on(c["cancel_btn"].click, act.ask_cancel, ["watch_state"])
    on(c["cancel_yes_btn"].click, act.cancel_run, ["settings", "visitor", "watch_state"], "finetune_cancel")
    on(c["cancel_no_btn"].click, act.keep_running, [])
    # A job started elsewhere in this session (the Start tab's demo) appears in the list, and is
    # watched when this tab watches nothing else.
    on(ctx.recent_jobs.change, act.follow_jobs,
       ["settings", "visitor", "recent_jobs", "endpoint_dd", "watch_state", "smooth_chk"])
    if Context.root_block is not None:  # re-attach on every page load (refresh, restart)
        on(Context.root_block.load, act.reattach, ["settings", "visitor", "recent_jobs"])


def _input(ctx: AppContext, c: dict[str, Any], name: str) -> Any:
    return ctx.visitor if name == "visitor" else c[name]


#: Which components each handler may update (the keys its returned dicts can hold).
_OUTPUTS: dict[str, list[str]] = {
    "list_base_models": ["model_dd"],
    "check_run": ["preflight_md"],
    "start_run": ["watch_state", "recent_jobs", "confirm_row", "confirm_md", "timer", "status_html",
                  "preflight_md"],
    "poll_job": ["watch_state", "status_html", "progress_md", "loss_plot", "metrics_df", "events_df",
                 "checkpoints_df", "cancel_btn", "timer", "settings", "jobs_dd"],
    "redraw_chart": ["loss_plot"],
    "refresh_jobs": ["jobs_dd"],
    "ask_cancel": ["cancel_md", "cancel_row"],
    "cancel_run": ["cancel_row", "status_html", "watch_state", "timer"],
    "keep_running": ["cancel_row"],
}
_OUTPUTS["start_confirmed"] = _OUTPUTS["start_run"]
_OUTPUTS["follow_jobs"] = _OUTPUTS["poll_job"]
_OUTPUTS["open_job"] = [*_OUTPUTS["poll_job"], "recent_jobs"]
_OUTPUTS["reattach"] = [*_OUTPUTS["open_job"], "jobs_dd", "endpoint_dd", "model_dd"]


def _outputs(fn: Callable[..., Any]) -> list[str]:
    return _OUTPUTS[fn.__name__]
