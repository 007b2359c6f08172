"""Start tab: what the app does, and guided demo scenarios that run the whole story step by step."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from typing import Any

import gradio as gr

from components import start_view as view
from components.context import AppContext
from components.wiring import outputs, wire
from pipeline.background import Finished, iterate_in_thread
from pipeline.control import RunControl
from pipeline.demo import (
    STEP_TITLES,
    DemoRun,
    add_to_log,
    list_scenarios,
    load_scenario,
    restore_draft,
    run_step,
)
from pipeline.endpoints import RoleChoice, SessionSettings
from pipeline.errors import InputError, explain
from pipeline.finetune.records import remember

INTRO = """### Start here
Distill Studio teaches a small **student** model what a strong **teacher** knows: **Generate** examples
with the teacher, review them in **Dataset**, **Fine-tune** the student, then compare base, fine-tuned
and teacher side by side in **Chat** and on a scoreboard in **Evaluate**. Everything works without an
API key on the built-in local backend (SmolLM2-135M on this machine's CPU); add an OpenAI or other key in
**Settings** to use bigger models. A demo below runs the whole story in a few minutes."""
LOG_LINES = 8
STEPS_MAX_HEIGHT = 1100  # px; a finished person demo's five rows take ~800 at 1400 px wide


#: The step buttons, "Run all" first; a run disables them all but Stop.
BUTTONS = tuple(f"{step}_btn" for step in ("run_all", *STEP_TITLES))
#: What a redraw of the run shows (`_render`).
SHOWN = ("log_md", "steps_df", "question_md", "pane_a_md", "pane_b_md", "pane_c_md", "scoreboard_df", "totals_md",
         "run_state")


@outputs("pitch_md", "steps_df", "augment_btn", "holdout_btn")
def show_scenario(scenario_radio: str, run_state: DemoRun | None) -> dict[str, Any]:
    scenario = load_scenario(scenario_radio)
    return {"pitch_md": view.pitch_markdown(scenario), "steps_df": view.steps_frame(scenario, run_state),
            "augment_btn": gr.update(visible="augment" in scenario.steps),
            "holdout_btn": gr.update(visible="holdout" in scenario.steps)}


def _with_fine_tuned(settings: SessionSettings, run: DemoRun) -> SessionSettings:
    """A copy of the settings whose fine-tuned role is the demo's new model (the Chat tab follows it)."""
    updated = copy.copy(settings)
    updated.roles = {**settings.roles, "fine_tuned": RoleChoice(run.job_endpoint or "local", run.fine_tuned_model or "")}
    return updated


def _log(log: list[str]) -> str:
    return "\n".join(f"- {line}" for line in log[-LOG_LINES:])


def _render(run: DemoRun, log: list[str], running: str | None) -> dict[str, Any]:
    scenario = load_scenario(run.scenario)
    panes = view.panes_markdown(run)
    return {"log_md": _log(log),
            "steps_df": view.steps_frame(scenario, run, running), "question_md": view.question_markdown(run),
            "pane_a_md": panes[0], "pane_b_md": panes[1], "pane_c_md": panes[2],
            "scoreboard_df": view.scoreboard_frame(run), "totals_md": view.totals_markdown(run), "run_state": run}


def _run_one(run: DemoRun, step: str, settings: SessionSettings, control: RunControl, confirm: bool,
             say: Any) -> Any:
    return run_step(run, step, settings, say=say, cancel=control.cancel, confirm_cost=confirm)


@outputs(*SHOWN, *BUTTONS, "stop_btn", "control_state", "dataset_rev", "settings", "recent_jobs")
def run_demo(scenario_radio: str, which: str, confirm_cb: bool, run_state: DemoRun | None,
             control_state: RunControl | None, settings: SessionSettings, visitor: str, dataset_rev: int,
             recent_jobs: list) -> Iterator[dict[str, Any]]:
    """Run one step (or all of them, `which == "all"`; each button has its own `which` state),
    streaming what happens into the tab."""
    name, confirm, rev, recent = scenario_radio, confirm_cb, dataset_rev, recent_jobs
    scenario = load_scenario(name)
    run = run_state
    if run is None or run.scenario != name or run.visitor_id != visitor:
        run = DemoRun(name, visitor)
    control = control_state or RunControl()
    control.cancel.clear()
    steps = list(scenario.steps) if which == "all" else [which]
    log: list[str] = []
    changed = False  # did a step change the draft (the Dataset tab redraws once, when the run is over)
    yield {"control_state": control, **_buttons(running=True)}
    try:
        for step in steps:
            log.append(f"**{STEP_TITLES[step]}**")
            yield {"log_md": _log(log), "steps_df": view.steps_frame(scenario, run, step)}
            work = functools.partial(_run_one, run, step, settings, control, confirm)
            for item in iterate_in_thread(work, name="distill-demo-step"):
                if isinstance(item, Finished):
                    if item.error is not None:
                        log.append(f"⚠ {explain(item.error)}")
                        gr.Warning(explain(item.error))
                    break
                for line in item:
                    add_to_log(log, line)
                # Only the log changes while a step runs. Every line redrew the whole tab (both
                # tables, three panes): once a second in the fine-tune, costing the page and the
                # server CPU the training needed on a 2-core machine.
                yield {"log_md": _log(log)}
            if step not in run.results:
                break
            updates: dict[str, Any] = {}
            # The draft changed. Not redrawn now: the Dataset tab's redraw (token counts, chart, table)
            # took CPU from the next step; the tab redraws when it is opened, and when the run is over.
            changed = changed or step in ("load", "augment", "holdout")
            if step == "finetune" and run.fine_tuned_model:
                settings = _with_fine_tuned(settings, run)
                updates |= {"settings": settings,
                            "recent_jobs": remember(recent, run.job_id or "", run.job_endpoint or "")}
            yield {**_render(run, log, None), **updates}
    except Exception:
        yield {**_buttons(running=False), **_redraw_dataset(changed, rev)}  # never leave dead buttons
        raise
    yield {**_render(run, log, None), **_buttons(running=False), **_redraw_dataset(changed, rev)}


def _redraw_dataset(changed: bool, rev: int | None) -> dict[str, Any]:
    return {"dataset_rev": (rev or 0) + 1} if changed else {}


def _buttons(*, running: bool) -> dict[str, Any]:
    """While a run goes, its steps cannot be started twice (a second fine-tune job); only Stop is live."""
    steps = {name: gr.update(interactive=not running) for name in BUTTONS}
    return {**steps, "stop_btn": gr.update(interactive=running)}


@outputs("stop_btn")
def stop_demo(control_state: RunControl | None) -> dict[str, Any]:
    if control_state is not None:
        control_state.cancel.set()
    return {"stop_btn": gr.update(interactive=False)}


@outputs("dataset_rev")
def undo_load(run_state: DemoRun | None, dataset_rev: int) -> dict[str, Any]:
    if run_state is None:
        raise InputError("Nothing to undo: no demo has loaded data in this session.")
    count = restore_draft(run_state)
    gr.Info(f"Your previous table ({count} examples) is back in the Dataset tab.")
    return {"dataset_rev": (dataset_rev or 0) + 1}


def build_start_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    scenarios = list_scenarios()
    c: dict[str, Any] = {"settings": ctx.settings, "visitor": ctx.visitor, "dataset_rev": ctx.dataset_rev,
                         "recent_jobs": ctx.recent_jobs,
                         "run_state": gr.State(None), "control_state": gr.State(RunControl())}
    gr.Markdown(INTRO)
    with gr.Group():
        c["scenario_radio"] = gr.Radio([(s.title, s.name) for s in scenarios], value=scenarios[0].name,
                                       label="Demo scenario")
        c["pitch_md"] = gr.Markdown(view.pitch_markdown(scenarios[0]))
    with gr.Row():
        c["run_all_btn"] = gr.Button("▶ Run all steps", variant="primary", scale=2)
        for step in STEP_TITLES:  # a step the scenario does not have is hidden (show_scenario)
            c[f"{step}_btn"] = gr.Button(STEP_TITLES[step], size="sm",
                                         visible=step not in ("augment", "holdout") or step in scenarios[0].steps)
        c["stop_btn"] = gr.Button("■ Stop", variant="stop", interactive=False, size="sm")
    with gr.Row():
        c["confirm_cb"] = gr.Checkbox(False, label="Allow paid provider calls above the confirmation threshold",
                                      info="Only matters with an OpenAI or other paid endpoint; the local backend is free.")
        c["undo_btn"] = gr.Button("↶ Undo load (restore my previous table)", size="sm")
    c["log_md"] = gr.Markdown("*Press **Run all steps** or one step at a time. Each step is a normal action of "
                              "the app: its results appear in the other tabs too.*", elem_id="demo-log")
    # Tall enough for the five steps of a finished demo: at gradio's 500 px the last row (the scoreboard's
    # step and its time) sat below the table's own scroll edge in the person demo (seen in chromium).
    c["steps_df"] = gr.Dataframe(view.steps_frame(scenarios[0], None), label="Steps", interactive=False,
                                 wrap=True, elem_id="demo-steps", column_widths=["18%", "52%", "8%", "10%", "12%"],
                                 max_height=STEPS_MAX_HEIGHT,
                                 datatype=["str", "markdown", "str", "str", "str"])
    c["totals_md"] = gr.Markdown("")
    c["question_md"] = gr.Markdown("")
    panes = view.panes_markdown(None)
    with gr.Row(equal_height=True):
        for key, text in zip(("pane_a_md", "pane_b_md", "pane_c_md"), panes, strict=True):
            with gr.Column(variant="panel"):
                c[key] = gr.Markdown(text)
    c["scoreboard_df"] = gr.Dataframe(view.scoreboard_frame(None), label="Scoreboard (held-out questions)",
                                      interactive=False, elem_id="demo-scoreboard")

    wire(c["scenario_radio"].change, show_scenario, c, queue=False)
    for which in ("all", *STEP_TITLES):
        btn = c["run_all_btn"] if which == "all" else c[f"{which}_btn"]
        # Progress shows on the log only: on every output it dimmed the live Stop button to look disabled.
        wire(btn.click, run_demo, {**c, "which": gr.State(which)}, api_name=f"demo_{which}", concurrency_limit=None,
             show_progress="minimal", show_progress_on=c["log_md"])
    wire(c["stop_btn"].click, stop_demo, c, queue=False)
    wire(c["undo_btn"].click, undo_load, c, api_name="demo_undo")
    return c
