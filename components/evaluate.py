"""Evaluate tab: did the fine-tune pay off? A benchmark (a sample, an upload, or made from your own
data), base / base + few-shot / fine-tuned / teacher side by side, accuracy with 95% intervals, whether
each difference is more than luck, cost and latency against accuracy, and earlier runs compared.

Layout and wiring only; the handlers are in evaluate_bench.py and evaluate_run.py (wiring convention).
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.context import Context

from components import batches_panel as batches
from components import evaluate_batch as ebatch
from components import evaluate_bench as eb
from components import evaluate_run as er
from components.chat_panes import ROLE_TITLES, refresh_pane_models
from components.context import AppContext
from components.wiring import wire
from pipeline.control import RunControl
from pipeline.endpoints import SessionSettings, role
from pipeline.evaluate.make import MODES
from pipeline.evaluate.tables import CHANGE_COLUMNS, REVIEW_COLUMNS, SCOREBOARD_COLUMNS

# contestant, accuracy %, 95% interval, correct, errors, median latency s, tokens / 100 q, cost / 100 q
SCOREBOARD_WIDTHS = ["30%", "9%", "11%", "8%", "7%", "10%", "10%", "15%"]

UPLOADED = eb.UPLOADED
BEFORE_FIRST_RUN = (
    "**Nothing run yet.** After a run this shows, for each contestant: accuracy with its 95% interval, "
    "cost per 100 questions and median latency; in words, whether the fine-tuned model beats the base "
    "model and the few-shot baseline at 95% confidence (or how many more questions would tell); a chart "
    "of accuracy against cost and latency with the break-even point against the teacher; and every "
    "question with each contestant's answer. **Show latest results** brings back your last run.")


def _slot(c: dict[str, Any], settings: SessionSettings, name: str, label: str, include: bool | None = True) -> None:
    """Include tick (None for the judge), endpoint and model pickers, refresh button: c[name + '_use'|'_ep'|...]."""
    choice = role(settings, name)
    with gr.Row(equal_height=True):
        if include is not None:
            c[f"{name}_use"] = gr.Checkbox(value=include, label=label, scale=1, min_width=120)
        c[f"{name}_ep"] = gr.Dropdown(list(settings.endpoints()), value=choice.endpoint, label="Endpoint",
                                      scale=2, min_width=100)
        c[f"{name}_model"] = gr.Dropdown([choice.model], value=choice.model, label="Model", allow_custom_value=True,
                                         scale=4)
        c[f"{name}_refresh"] = gr.Button("↻", scale=0, min_width=40, size="sm")


def _benchmark_section(c: dict[str, Any], samples: list[str]) -> None:
    with gr.Row():
        c["bench_dd"] = gr.Dropdown(samples + [UPLOADED], value=samples[0] if samples else UPLOADED, label="Benchmark",
                                    allow_custom_value=True, scale=2,
                                    info="Samples, your own (“yours: …”, made below) or an uploaded JSONL")
        c["upload_file"] = gr.File(label="…or upload a benchmark JSONL", file_types=[".jsonl"], height=80, scale=1)
    with gr.Accordion("Make a benchmark from your dataset", open=False):
        gr.Markdown("**Hold out**: move whole groups of your dataset (rewordings of one question, examples with the "
                    "same answer) into a benchmark, so nothing the fine-tune sees is tested. **Teacher-written**: the "
                    "teacher writes new questions about what your dataset teaches; copies are dropped.")
        with gr.Row():
            c["holdout_nb"] = gr.Number(10, precision=0, minimum=1, label="Examples to hold out")
            c["scoring_dd"] = gr.Dropdown(list(MODES), value="auto", label="Scoring",
                                          info="auto: final answer, label or the answer's key fact")
            c["hold_btn"] = gr.Button("Hold out from my dataset")
        with gr.Row():
            c["write_n_nb"] = gr.Number(10, precision=0, minimum=1, label="New questions")
            c["write_btn"] = gr.Button("Teacher writes questions")
        c["make_md"] = gr.Markdown()
        c["review_df"] = gr.Dataframe(headers=REVIEW_COLUMNS, interactive=True, wrap=True, visible=False,
                                      label="Review: edit expected answers or scoring; clear an expected answer to drop it")
        c["save_review_btn"] = gr.Button("Save edits", visible=False)
    c["leak_md"] = gr.Markdown()


def _contestants(c: dict[str, Any], settings: SessionSettings) -> None:
    _slot(c, settings, "base", ROLE_TITLES["base"])
    with gr.Row(equal_height=True):
        c["few_shot_use"] = gr.Checkbox(value=True, label="Base model + few-shot examples from your dataset", scale=3)
        c["shots_sl"] = gr.Slider(1, 8, value=3, step=1, label="Examples shown (K)", scale=2)
    _slot(c, settings, "fine_tuned", ROLE_TITLES["fine_tuned"])
    _slot(c, settings, "teacher", ROLE_TITLES["teacher"])
    gr.Markdown("**Judge** (only for questions scored by `judge`: it compares each answer with the reference)")
    _slot(c, settings, "judge", "Judge", include=None)
    with gr.Row():
        c["concurrency_sl"] = gr.Slider(1, 16, value=4, step=1, label="Calls at once")
        c["max_tokens_nb"] = gr.Number(value=512, precision=0, minimum=1, label="Max tokens per answer")
        c["training_cost_tb"] = gr.Textbox("", label="Fine-tune's training cost, USD (for the break-even)",
                                           placeholder="from your fine-tuning job",
                                           info="Empty: taken from your fine-tuning job when it is recorded")


def _results_section(c: dict[str, Any]) -> None:
    c["batch_mode_radio"] = gr.Radio(batches.MODES, value=batches.MODES[0], show_label=False, elem_id="evaluate-mode")
    with gr.Row():
        c["run_btn"] = gr.Button("Run benchmark", variant="primary")
        c["stop_btn"] = gr.Button("Stop", variant="stop", interactive=False)
        c["batch_submit_btn"] = gr.Button("Submit batch", variant="primary", visible=False)
        c["batch_file_btn"] = gr.Button("Only write the request file", visible=False)
        c["latest_btn"] = gr.Button("Show latest results")
        c["defaults_btn"] = gr.Button("Use role defaults (newest fine-tuned model)")
    batches.build_confirm_row(c, "eval")
    c["status_md"] = gr.Markdown()
    batches.build_batches_panel(c, "eval")
    c["empty_md"] = gr.Markdown(BEFORE_FIRST_RUN, elem_id="eval-empty")
    c["verdict_md"] = gr.Markdown(elem_id="eval-verdicts")
    # Widths fixed: sized by content, a fine-tuned model's long id took most of the row and the figures'
    # headers broke into one letter a line ("ac / cu / ra / cy"), the cost cut off at the right edge.
    c["score_df"] = gr.Dataframe(headers=SCOREBOARD_COLUMNS, label="Scoreboard", interactive=False, wrap=True,
                                 column_widths=SCOREBOARD_WIDTHS, elem_id="eval-scoreboard", visible=False)
    c["chart_plot"] = gr.Plot(label="Accuracy against cost and latency", elem_id="eval-chart", visible=False)
    c["breakeven_md"] = gr.Markdown()
    # Label benchmarks: the confusion matrix and per-label scores; JSON answers: per-field accuracy.
    c["task_plot"] = gr.Plot(label="Confusion matrix", elem_id="eval-confusion", visible=False)
    c["task_md"] = gr.Markdown(elem_id="eval-task-scores")
    c["drill_df"] = gr.Dataframe(headers=["#", "question", "expected", "scoring"], label="Per question",
                                 interactive=False, wrap=True, max_height=600, visible=False)
    with gr.Accordion("Earlier runs on this benchmark", open=False):
        with gr.Row():
            c["runs_dd"] = gr.Dropdown([], label="Run", scale=3)
            c["compare_dd"] = gr.Dropdown([], label="Compare with", scale=3)
            c["compare_btn"] = gr.Button("Which questions changed verdict?", scale=1)
        c["compare_md"] = gr.Markdown("Runs appear here after your first run; pick two to see what changed.")
        c["changes_df"] = gr.Dataframe(headers=CHANGE_COLUMNS, interactive=False, wrap=True, visible=False)


def build_evaluate_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    settings = ctx.settings.value
    c: dict[str, Any] = {"settings": ctx.settings, "visitor": ctx.visitor, "dataset_rev": ctx.dataset_rev,
                         "control": gr.State(RunControl)}
    _benchmark_section(c, eb.samples())
    _contestants(c, settings)
    _results_section(c)
    _wire(c)
    _wire_batches(c, ctx)
    return {k: v for k, v in c.items() if k not in ("settings", "visitor", "dataset_rev")}


def _wire_batches(c: dict[str, Any], ctx: AppContext) -> None:
    wire(c["batch_mode_radio"].change, ebatch.switch_mode, c, queue=False, api_visibility="private")
    wire(c["batch_mode_radio"].change, ebatch.preview_evaluation_batch, c, api_visibility="private")
    for btn, send in (("batch_submit_btn", True), ("batch_file_btn", False)):
        checked = wire(c[btn].click, eb.pick_benchmark, c, api_visibility="private")
        wire(checked.success, ebatch.submit_evaluation_batch, {**c, "batch_send": gr.State(send)},
             api_name="evaluate_batch" if send else "evaluate_batch_file")
    events = batches.wire_batches_panel(c, ctx)
    for event in events.values():  # collected (or imported) scores go on the scoreboard below
        wire(event.success, ebatch.show_batch_results, c, api_visibility="private")


def _wire(c: dict[str, Any]) -> None:
    private = {"api_visibility": "private"}
    # An upload switches the list to "Uploaded file" (the run scores what the list says), clearing it goes
    # back to a benchmark; each then re-checks leakage for what will be scored.
    wire(wire(c["upload_file"].upload, eb.follow_upload, c, **private).then, eb.pick_benchmark, c, **private)
    wire(wire(c["upload_file"].clear, eb.after_clear, c, **private).then, eb.pick_benchmark, c, **private)
    wire(c["bench_dd"].input, eb.pick_benchmark, c, **private)
    wire(c["hold_btn"].click, eb.hold_out, c, api_name="evaluate_hold_out")
    wire(c["write_btn"].click, eb.teacher_writes, c, api_name="evaluate_teacher_writes")
    wire(c["save_review_btn"].click, eb.save_edits, c, **private)
    checked = wire(c["run_btn"].click, eb.pick_benchmark, c, **private)
    ran = wire(checked.success, er.run_evaluation, c, api_name="evaluate_run")
    wire(ran.then, er.run_ended, c, **private)  # finished, stopped or failed: Stop goes quiet again
    for slot in ("base", "fine_tuned", "teacher", "judge"):  # one handler; `endpoint`/`model` = this slot's
        wire(c[f"{slot}_refresh"].click, refresh_pane_models, {**c, "endpoint": c[f"{slot}_ep"], "model": c[f"{slot}_model"]},
             **private)
    wire(c["defaults_btn"].click, er.use_role_defaults, c, **private)
    wire(c["settings"].change, er.follow_settings, c, **private)
    wire(c["stop_btn"].click, er.stop_evaluation, c, queue=False, **private)
    wire(c["latest_btn"].click, er.show_latest, c, **private)
    wire(c["compare_btn"].click, er.compare_runs, c, **private)
    if Context.root_block is not None:  # in the app: a reload lists the benchmarks made in earlier visits
        wire(Context.root_block.load, eb.list_benchmarks, c, **private)
