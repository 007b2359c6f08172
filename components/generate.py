"""Generate tab: a teacher model writes training examples from a template into the visitor's draft.

Wiring only; the engine is pipeline.generate. Start first stores a fresh RunHandle in the visitor's
gr.State (queue=False, so Stop can reach it at once), then a generator handler runs the generation in
a thread and yields live counts; every finished example is appended to the draft as it arrives and
ctx.dataset_rev is bumped so the Dataset tab shows it. Parse failures are listed apart for review.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from components import generate_run as ui
from components.context import AppContext
from components.errors import shown_errors
from components.generate_run import MAX_VARS, RunHandle
from components.wiring import keyed
from pipeline import drafts, endpoints
from pipeline import generate as gen
from pipeline.background import Finished
from pipeline.errors import InputError
from pipeline.generate import prompts
from pipeline.generate.store import RunFiles, read_examples

ROLE_DEFAULT = "(teacher role)"


def _config(template: str, values: tuple, endpoint: str, model: str, n: float, concurrency: float,
            temperature: float, budget: float | None, seed: float, check: bool, source_file: Any,
            visitor: str, settings: endpoints.SessionSettings, out: Path | None = None) -> gen.GenerationConfig:
    """The run config from the form (no client yet: a preview must not start the local backend)."""
    t = gen.load_template(template)
    draft = drafts.load_draft(visitor)
    sources = read_examples(Path(source_file)) if source_file else (draft if t.source else None)
    if t.source and not sources:
        raise InputError("Paraphrase rewrites existing examples: add some to the Dataset tab or upload a file.")
    choice = endpoints.role(settings, "teacher")
    name = choice.endpoint if endpoint in ("", ROLE_DEFAULT, None) else endpoint
    model = (model or "").strip() or (choice.model if name == choice.endpoint else "")
    if not model:
        raise InputError("Type the teacher model id (the endpoint has no default).")
    return gen.GenerationConfig(
        template=t, n=int(n), out=out or ui.run_path(visitor, t.name), model=model,
        variables=ui.form_variables(t, values), concurrency=int(concurrency), temperature=float(temperature),
        budget_usd=ui.run_budget(budget, settings, model), seed=int(seed or 0), check=bool(check),
        sources=sources, avoid=None if t.source else draft, endpoint=name, retry=gen.RetryPolicy(timeout=300.0))


@shown_errors
def show_template(template: str) -> dict[str, Any]:
    return ui.template_form(template)


@shown_errors
def list_teacher_models(endpoint: str, settings: endpoints.SessionSettings) -> dict[str, Any]:
    """Model choices for the picked endpoint (settings' list_models when available); typing stays allowed."""
    choice = endpoints.role(settings, "teacher")
    name = choice.endpoint if endpoint in ("", ROLE_DEFAULT, None) else endpoint
    models = ui.listed_models(settings, name)
    if choice.endpoint == name and choice.model not in models:
        models.insert(0, choice.model)
    return {"endpoint_dd": gr.update(choices=[ROLE_DEFAULT, *settings.endpoints()]),
            "model_dd": gr.update(choices=models)}


@shown_errors
def preview_prompt(template: str, *args: Any) -> dict[str, Any]:
    """The exact messages of the first request, and the cost estimate of the whole run."""
    *values, endpoint, model, n, conc, temp, budget, seed, check, source_file, visitor, settings = args
    config = _config(template, tuple(values), endpoint, model, n, conc, temp, budget, seed, check,
                        source_file, visitor, settings, out=Path("/nonexistent/preview.jsonl"))
    from pipeline.generate.templates import resolve_variables

    variables = resolve_variables(config.template, config.variables)
    if config.template.setup and not variables.get("student_system", "").strip():
        variables["student_system"] = "(written by the teacher when the run starts)"
    source = config.sources[0] if config.template.source and config.sources else None
    messages = prompts.build_messages(config.template, variables, seed=config.seed, index=0,
                                      earlier=(config.avoid or [])[-50:], source=source)
    est = gen.estimate_run(config)
    return {"prompt_box": ui.format_prompt(messages), "estimate_md": f"Estimate for {config.model}: {est.describe()}."}


def prepare_run() -> dict[str, Any]:
    return {"run_state": RunHandle()}


@shown_errors
def generate_examples(template: str, *args: Any) -> Iterator[dict[str, Any]]:
    """Run the generation; append each finished example to the draft; yield live counts."""
    *values, endpoint, model, n, conc, temp, budget, seed, check, source_file, visitor, settings, handle, rev = args
    if handle is None:
        handle = RunHandle()
    config = _config(template, tuple(values), endpoint, model, n, conc, temp, budget, seed, check, source_file,
                     visitor, settings)
    client = endpoints.make_client(settings, config.endpoint, async_=True)
    yield {"status_md": f"Starting: {gen.estimate_run(config).describe()}.", "start_btn": gr.update(interactive=False),
           "stop_btn": gr.update(interactive=True), "failures_df": ui.failures_frame([]), "progress_sl": 0}
    appended, status, error = 0, None, None
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
                rev = (rev or 0) + 1
            yield {"status_md": ui.status_markdown(status), "failures_df": ui.failures_frame(status.new_failures),
                   "progress_sl": round(100 * status.written / max(1, status.requested), 1), "dataset_rev": rev}
    finally:
        handle.cancel.set()  # the page went away or the handler was cancelled: stop the run too
    if error is not None:  # give the buttons back, then show the error
        yield {"start_btn": gr.update(interactive=True), "stop_btn": gr.update(interactive=False)}
        raise error
    run = (RunFiles(config.out).load_state().get("runs") or [{}])[-1]
    drafts.update_meta(visitor, generation=[{**run, "added_to_draft": appended}])
    yield {"start_btn": gr.update(interactive=True), "stop_btn": gr.update(interactive=False),
           "failures_file": str(config.out.with_name(config.out.stem + ".failed.jsonl"))
           if status and status.new_failures else None}


def stop_generation(handle: RunHandle | None) -> dict[str, Any]:
    if handle is not None:
        handle.cancel.set()
    return {"stop_btn": gr.update(interactive=False)}


def build_generate_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    c: dict[str, Any] = {"dataset_rev": ctx.dataset_rev}
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
    with gr.Row():
        c["preview_btn"] = gr.Button("Preview prompt and cost")
        c["start_btn"] = gr.Button("Start", variant="primary")
        c["stop_btn"] = gr.Button("Stop", variant="stop", interactive=False)
    c["estimate_md"] = gr.Markdown()
    c["progress_sl"] = gr.Slider(0, 100, value=0, step=0.1, label="Progress (% of the examples asked for)",
                                 interactive=False)
    c["status_md"] = gr.Markdown()
    with gr.Accordion("Exact prompt of the first request", open=False):
        c["prompt_box"] = gr.Textbox(lines=14, interactive=False, show_label=False)
    with gr.Accordion("Replies kept apart for review (unparsed, duplicates, failed checks)", open=False):
        c["failures_df"] = gr.Dataframe(headers=["kind", "reason", "raw"], interactive=False, wrap=True)
        c["failures_file"] = gr.File(label="All of them (JSONL)", interactive=False)

    form = [c["template_dd"], *[c[f"var_box_{i}"] for i in range(MAX_VARS)], c["endpoint_dd"], c["model_dd"],
            c["n_num"], c["concurrency_sl"], c["temperature_sl"], c["budget_num"], c["seed_num"], c["check_cb"],
            c["source_file"], ctx.visitor, ctx.settings]
    template_outputs = [c["template_md"], *[c[f"var_box_{i}"] for i in range(MAX_VARS)], c["source_file"],
                        c["check_cb"]]
    # Triggers None: on page load and whenever the template changes.
    gr.on(None, keyed(show_template, c), inputs=c["template_dd"], outputs=template_outputs,
          api_name="show_template")
    c["endpoint_dd"].focus(keyed(list_teacher_models, c), [c["endpoint_dd"], ctx.settings],
                           [c["endpoint_dd"], c["model_dd"]])
    c["model_dd"].focus(keyed(list_teacher_models, c), [c["endpoint_dd"], ctx.settings],
                        [c["endpoint_dd"], c["model_dd"]])
    c["preview_btn"].click(keyed(preview_prompt, c), form, [c["prompt_box"], c["estimate_md"]],
                           api_name="preview_prompt")
    run_outputs = [c["status_md"], c["progress_sl"], c["failures_df"], ctx.dataset_rev, c["start_btn"], c["stop_btn"],
                   c["failures_file"]]
    c["start_btn"].click(keyed(prepare_run, c), None, c["run_state"], queue=False).then(
        keyed(generate_examples, c), [*form, c["run_state"], ctx.dataset_rev], run_outputs,
        api_name="generate_examples")
    c["stop_btn"].click(keyed(stop_generation, c), c["run_state"], c["stop_btn"], queue=False,
                        api_name="stop_generation")
    return c
