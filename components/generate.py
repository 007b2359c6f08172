"""Generate tab: a teacher model writes training examples from a template into the visitor's draft.

Wiring only; the engine is pipeline.generate. Start first stores a fresh RunHandle in the visitor's
gr.State (queue=False, so Stop can reach it at once), then a generator handler runs the generation in
a thread and yields live counts; every finished example is appended to the draft as it arrives, and
ctx.dataset_rev is bumped (at most once a second) so the Dataset tab shows them. Parse failures are
listed apart for review.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from components import batches_panel as batches
from components import generate_batch as gb
from components import generate_run as ui
from components.context import AppContext
from components.generate_run import MAX_VARS, ROLE_DEFAULT, RunHandle
from components.generate_run import run_config as _config
from components.wiring import outputs, wire
from pipeline import drafts, endpoints
from pipeline import generate as gen
from pipeline.background import Finished
from pipeline.generate import prompts
from pipeline.generate.store import RunFiles
from pipeline.generate.templates import resolve_variables

VAR_BOXES = tuple(f"var_box_{i}" for i in range(MAX_VARS))
#: A running generation tells the Dataset tab to redraw at most this often (seconds).
REDRAW_EVERY_S = 1.0


@outputs("template_md", *VAR_BOXES, "source_file", "check_cb")
def show_template(template_dd: str) -> dict[str, Any]:
    return ui.template_form(template_dd)


@outputs("endpoint_dd")
def follow_settings(endpoint_dd: str, settings: endpoints.SessionSettings) -> dict[str, Any]:
    """The endpoints the visitor has now (Settings is the source of truth); a removed one falls back to
    the teacher role."""
    names = [ROLE_DEFAULT, *settings.endpoints()]
    return {"endpoint_dd": gr.update(choices=names, value=endpoint_dd if endpoint_dd in names else ROLE_DEFAULT)}


@outputs("endpoint_dd", "model_dd")
def list_teacher_models(endpoint_dd: str, settings: endpoints.SessionSettings) -> dict[str, Any]:
    """Model choices for the picked endpoint (settings' list_models when available); typing stays allowed."""
    choice = endpoints.role(settings, "teacher")
    name = choice.endpoint if endpoint_dd in ("", ROLE_DEFAULT, None) else endpoint_dd
    models = ui.listed_models(settings, name)
    if choice.endpoint == name and choice.model not in models:
        models.insert(0, choice.model)
    return {"endpoint_dd": gr.update(choices=[ROLE_DEFAULT, *settings.endpoints()]),
            "model_dd": gr.update(choices=models)}


@outputs("prompt_box", "estimate_md")
def preview_prompt(template_dd: str, var_box_0: str, var_box_1: str, var_box_2: str, var_box_3: str,
                   var_box_4: str, var_box_5: str, endpoint_dd: str, model_dd: str, n_num: float,
                   concurrency_sl: float, temperature_sl: float, budget_num: float | None, seed_num: float,
                   check_cb: bool, source_file: Any, visitor: str, settings: endpoints.SessionSettings,
                   batch_mode_radio: str | None = None) -> dict[str, Any]:
    """The exact messages of the first request, and the cost estimate of the whole run."""
    config = _config(template_dd, (var_box_0, var_box_1, var_box_2, var_box_3, var_box_4, var_box_5), endpoint_dd,
                     model_dd, n_num, concurrency_sl, temperature_sl, budget_num, seed_num, check_cb, source_file,
                     visitor, settings, out=Path("/nonexistent/preview.jsonl"))
    variables = resolve_variables(config.template, config.variables)
    if config.template.setup and not variables.get("student_system", "").strip():
        variables["student_system"] = "(written by the teacher when the run starts)"
    source = config.sources[0] if config.template.source and config.sources else None
    messages = prompts.build_messages(config.template, variables, seed=config.seed, index=0,
                                      earlier=(config.avoid or [])[-50:], source=source)
    est = gen.estimate_run(config)
    line = f"Estimate for {config.model}: {est.describe()}."
    if batch_mode_radio == batches.MODES[1]:
        line += "\n\n" + gb.batch_preview_line(config.model, est)
    return {"prompt_box": ui.format_prompt(messages), "estimate_md": line}


@outputs("run_state")
def prepare_run() -> dict[str, Any]:
    return {"run_state": RunHandle()}


@outputs("status_md", "progress_bar", "failures_df", "dataset_rev", "start_btn", "stop_btn", "failures_file")
def generate_examples(template_dd: str, var_box_0: str, var_box_1: str, var_box_2: str, var_box_3: str,
                      var_box_4: str, var_box_5: str, endpoint_dd: str, model_dd: str, n_num: float,
                      concurrency_sl: float, temperature_sl: float, budget_num: float | None, seed_num: float,
                      check_cb: bool, source_file: Any, visitor: str, settings: endpoints.SessionSettings,
                      run_state: RunHandle | None, dataset_rev: int | None) -> Iterator[dict[str, Any]]:
    """Run the generation; append each finished example to the draft; yield live counts. The Dataset
    tab is told (dataset_rev) at most once a second, and once more at the end."""
    handle = run_state if run_state is not None else RunHandle()
    config = _config(template_dd, (var_box_0, var_box_1, var_box_2, var_box_3, var_box_4, var_box_5), endpoint_dd,
                     model_dd, n_num, concurrency_sl, temperature_sl, budget_num, seed_num, check_cb, source_file,
                     visitor, settings)
    client = endpoints.make_client(settings, config.endpoint, async_=True)
    yield {"status_md": f"Starting: {gen.estimate_run(config).describe()}.", "start_btn": gr.update(interactive=False),
           "stop_btn": gr.update(interactive=True), "failures_df": ui.failures_frame([]), "progress_bar": ui.progress_html(0)}
    appended, status, error = 0, None, None
    rev, redraw = dataset_rev or 0, ui.Throttle(REDRAW_EVERY_S)
    try:
        for item in ui.run_in_thread(handle, config, client):
            if isinstance(item, Finished):
                status, error = item.value or status, item.error
            else:
                status = item
            if status is None:
                continue
            fresh = status.new_examples[appended:]
            if fresh:  # straight into the Dataset tab, appended after the visitor's own edits
                drafts.append_to_draft(visitor, fresh)
                appended += len(fresh)
                redraw.pending()
            update = {"status_md": ui.status_markdown(status), "failures_df": ui.failures_frame(status.new_failures),
                      "progress_bar": ui.progress_html(100 * status.written / max(1, status.requested))}
            if redraw.due():
                rev += 1
                update["dataset_rev"] = rev
            yield update
    finally:
        handle.cancel.set()  # the page went away or the handler was cancelled: stop the run too
    last = {"dataset_rev": rev + 1} if redraw.flush() else {}
    if error is not None:  # give the buttons back, then show the error
        yield {"start_btn": gr.update(interactive=True), "stop_btn": gr.update(interactive=False), **last}
        raise error
    run = (RunFiles(config.out).load_state().get("runs") or [{}])[-1]
    drafts.update_meta(visitor, generation=[{**run, "added_to_draft": appended}])
    yield {"start_btn": gr.update(interactive=True), "stop_btn": gr.update(interactive=False), **last,
           "failures_file": str(config.out.with_name(config.out.stem + ".failed.jsonl"))
           if status and status.new_failures else None}


@outputs("stop_btn")
def stop_generation(run_state: RunHandle | None) -> dict[str, Any]:
    if run_state is not None:
        run_state.cancel.set()
    return {"stop_btn": gr.update(interactive=False)}


def build_generate_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    c: dict[str, Any] = {"dataset_rev": ctx.dataset_rev, "visitor": ctx.visitor, "settings": ctx.settings}
    c["run_state"] = gr.State(None, delete_callback=lambda h: h.cancel.set() if h else None)
    with gr.Row():
        with gr.Column(scale=3):
            c["template_dd"] = gr.Dropdown(gen.list_templates(), value="reasoning", label="Template")
            c["template_md"] = gr.Markdown()
            for i in range(MAX_VARS):
                c[f"var_box_{i}"] = gr.Textbox(visible=False)
            c["source_file"] = gr.File(label="Examples to paraphrase (JSONL; empty = your draft)",
                                       file_types=[".jsonl"], visible=False)
        with gr.Column(scale=2):
            c["endpoint_dd"] = gr.Dropdown([ROLE_DEFAULT, "local", "openai"], value=ROLE_DEFAULT,
                                           label="Teacher endpoint")
            c["model_dd"] = gr.Dropdown([], value=None, allow_custom_value=True, label="Teacher model",
                                        info="Empty = the teacher role's model (Settings tab)")
            c["n_num"] = gr.Number(20, label="Examples", precision=0, minimum=1)
            c["concurrency_sl"] = gr.Slider(1, 32, value=8, step=1, label="Concurrency")
            c["temperature_sl"] = gr.Slider(0, 1.5, value=0.9, step=0.05, label="Temperature")
            c["budget_num"] = gr.Number(None, label="Budget (USD; 0 or empty = the Settings tab's cap)", minimum=0)
            c["seed_num"] = gr.Number(0, label="Seed", precision=0)
            c["check_cb"] = gr.Checkbox(label="Check answers (solve again; keep only when they agree)")
    c["batch_mode_radio"] = gr.Radio(batches.MODES, value=batches.MODES[0], show_label=False,
                                     elem_id="generate-mode")
    with gr.Row():
        c["preview_btn"] = gr.Button("Preview prompt and cost")
        c["start_btn"] = gr.Button("Start", variant="primary")
        c["stop_btn"] = gr.Button("Stop", variant="stop", interactive=False)
        c["batch_submit_btn"] = gr.Button("Submit batch", variant="primary", visible=False)
        c["batch_file_btn"] = gr.Button("Only write the request file", visible=False)
    c["estimate_md"] = gr.Markdown()
    batches.build_confirm_row(c, "generate")
    # A bar, not a slider: a Slider looked draggable, and its number box invited typing a progress.
    c["progress_bar"] = gr.HTML(ui.progress_html(0), elem_id="generate-progress")
    c["status_md"] = gr.Markdown()
    with gr.Accordion("Exact prompt of the first request", open=False):
        c["prompt_box"] = gr.Textbox(lines=14, interactive=False, show_label=False)
    with gr.Accordion("Replies kept apart for review (unparsed, duplicates, failed checks)", open=False):
        c["failures_df"] = gr.Dataframe(headers=["kind", "reason", "raw"], interactive=False, wrap=True)
        c["failures_file"] = gr.File(label="All of them (JSONL)", interactive=False)
    batches.build_batches_panel(c, "generate")

    # Triggers None: on page load and whenever the template changes.
    wire(functools.partial(gr.on, None), show_template, c, api_name="show_template")
    wire(ctx.settings.change, follow_settings, c)
    wire(c["endpoint_dd"].focus, list_teacher_models, c)
    wire(c["model_dd"].focus, list_teacher_models, c)
    wire(c["preview_btn"].click, preview_prompt, c)
    # Start first stores a fresh RunHandle (queue=False, so Stop can reach it at once), then runs.
    started = wire(c["start_btn"].click, prepare_run, c, queue=False)
    wire(started.then, generate_examples, c, api_name="generate_examples")
    wire(c["stop_btn"].click, stop_generation, c, queue=False)
    wire(c["batch_mode_radio"].change, gb.switch_mode, c, queue=False, api_visibility="private")
    for btn, send in (("batch_submit_btn", True), ("batch_file_btn", False)):
        wire(c[btn].click, gb.submit_generation_batch, {**c, "batch_send": gr.State(send)},
             api_name="generate_batch" if send else "generate_batch_file")
    batches.wire_batches_panel(c, ctx)
    return c
