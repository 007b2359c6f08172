"""Evaluate tab: score several models on a held-out benchmark, side by side, with a drill-down."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import gradio as gr

from components.chat_panes import ROLE_TITLES, refresh_model_picker, role_pickers
from components.context import AppContext
from components.errors import shown_errors
from pipeline import drafts
from pipeline.control import RunControl
from pipeline.endpoints import SessionSettings, make_client, role
from pipeline.errors import InputError
from pipeline.evaluate import (
    Target,
    build_results,
    find_leaks,
    iter_answers,
    latest_results,
    load_benchmark,
    save_results,
)
from pipeline.evaluate.tables import accuracy_frame, drilldown_frame, scoreboard_frame

BENCH_DIR = Path(__file__).resolve().parent.parent / "data" / "benchmarks"
ROLES = ("base", "fine_tuned", "teacher")
UPLOADED = "Uploaded file"
PROGRESS_EVERY_S = 0.5


def _bench_path(choice: str | None, upload: str | None) -> Path:
    if choice == UPLOADED:
        if not upload:
            raise InputError("Upload a benchmark JSONL first, or pick a sample benchmark.")
        return Path(upload)
    if choice not in {p.name for p in BENCH_DIR.glob("*.jsonl")}:  # a name from the list, never a path
        raise InputError("Pick a benchmark from the list, or upload one.")
    return BENCH_DIR / choice


@shown_errors
def check_leakage(choice: str | None, upload: str | None, visitor: str | None) -> str:
    """Warn when benchmark questions are near-duplicates of the visitor's training examples."""
    items = load_benchmark(_bench_path(choice, upload))
    draft = drafts.load_draft(visitor) if visitor else []
    if not draft:
        return "Leakage check: your dataset is empty, nothing to compare with."
    leaks = find_leaks(items, draft)
    if not leaks:
        return f"Leakage check: none of the {len(items)} questions is a near-duplicate of your {len(draft)} examples."
    lines = [f"⚠️ **{len(leaks)} of {len(items)} benchmark questions are near-duplicates of training examples**; "
             "the fine-tuned model's score will look better than it is. Remove them from the dataset or the benchmark."]
    lines += [f"- Q{x['index'] + 1} ({x['similarity']:.0f}%): “{x['question']}” ≈ “{x['training']}”" for x in leaks[:10]]
    return "\n".join(lines)


@shown_errors
def run_evaluation(choice, upload, use0, ep0, m0, use1, ep1, m1, use2, ep2, m2, judge_ep, judge_model,
                   concurrency, max_tokens, settings: SessionSettings, visitor: str | None, control: RunControl,
                   *, out: dict):
    path = _bench_path(choice, upload)
    items = load_benchmark(path)
    picks = [(r, ep, m) for r, use, ep, m in zip(ROLES, (use0, use1, use2), (ep0, ep1, ep2), (m0, m1, m2), strict=True)
             if use and m]
    if not picks:
        raise InputError("Tick at least one model to evaluate.")
    targets = [Target(m, make_client(settings, ep), label=f"{ROLE_TITLES[r].split()[0]}: {m}") for r, ep, m in picks]
    judge = None
    if any(i.scoring == "judge" for i in items):
        judge = Target(judge_model, make_client(settings, judge_ep), label="judge")
    control.cancel.clear()
    total, answers, last = len(items) * len(targets), [], 0.0
    yield {out["status_md"]: f"Running {len(items)} questions × {len(targets)} models…"}
    for a in iter_answers(items, targets, judge=judge, concurrency=int(concurrency or 4),
                          max_tokens=int(max_tokens or 512), cancel=control.cancel):
        answers.append(a)
        if time.perf_counter() - last >= PROGRESS_EVERY_S or len(answers) == total:
            last = time.perf_counter()
            so_far = build_results(path.name, items, targets, answers, judge=judge)
            done = ", ".join(f"{r['label']} {r['correct']}/{r['answered']}" for r in so_far["results"])
            yield {out["status_md"]: f"{len(answers)}/{total} answers · correct so far: {done}",
                   out["score_df"]: scoreboard_frame(so_far)}
    results = build_results(path.name, items, targets, answers, judge=judge,
                            leaks=find_leaks(items, drafts.load_draft(visitor)) if visitor else [])
    saved = save_results(visitor or "", results)
    yield {**_show(results, out), out["status_md"]: f"Done. Results saved in your workspace ({saved.name})."}


def _show(results: dict, out: dict) -> dict:
    return {out["score_df"]: scoreboard_frame(results), out["acc_plot"]: accuracy_frame(results),
            out["drill_df"]: drilldown_frame(results)}


def follow_upload(upload: str | None) -> gr.Dropdown:
    """An upload is what the visitor wants scored: the Benchmark list says so (the run reads the list)."""
    return gr.Dropdown(value=UPLOADED) if upload else gr.Dropdown()


def after_clear(choice: str | None) -> gr.Dropdown:
    """Removing the upload leaves the list on a sample, never on an empty "Uploaded file"."""
    samples = sorted(p.name for p in BENCH_DIR.glob("*.jsonl"))
    return gr.Dropdown(value=samples[0]) if choice == UPLOADED and samples else gr.Dropdown()


def stop_evaluation(control: RunControl) -> str:
    control.cancel.set()
    return "Stopping…"


@shown_errors
def show_latest_results(visitor: str | None, *, out: dict) -> dict:
    results = latest_results(visitor) if visitor else None
    if results is None:
        return {out["status_md"]: "No saved results yet: run a benchmark."}
    return {**_show(results, out), out["status_md"]: f"Latest results: {results['benchmark']}, {results['created_at']}."}


@shown_errors
def list_models_for(settings: SessionSettings, endpoint: str, model: str) -> gr.Dropdown:
    return refresh_model_picker(settings, endpoint, model)


@shown_errors
def use_role_defaults(settings: SessionSettings) -> list:
    return role_pickers(settings, (*ROLES, "judge"), look_up_newest=True)


def follow_settings(settings: SessionSettings) -> list:
    return role_pickers(settings, (*ROLES, "judge"), look_up_newest=False)


def _model_slot(settings: SessionSettings, role_name: str, label: str, include: bool | None = True) -> list:
    """Include tick (None for the judge), endpoint and model pickers, refresh button."""
    choice = role(settings, role_name)
    with gr.Row(equal_height=True):
        use = gr.Checkbox(value=include, label=label, scale=1, min_width=120) if include is not None else None
        ep = gr.Dropdown(list(settings.endpoints()), value=choice.endpoint, label="Endpoint", scale=2, min_width=100)
        model = gr.Dropdown([choice.model], value=choice.model, label="Model", allow_custom_value=True, scale=4)
        refresh = gr.Button("↻", scale=0, min_width=40, size="sm")
    return [use, ep, model, refresh]


def build_evaluate_tab(ctx: AppContext) -> dict[str, gr.components.Component]:
    control = gr.State(RunControl)
    samples = sorted(p.name for p in BENCH_DIR.glob("*.jsonl"))
    with gr.Row():
        bench_dd = gr.Dropdown(samples + [UPLOADED], value=samples[0] if samples else UPLOADED, label="Benchmark")
        upload_file = gr.File(label="…or upload a benchmark JSONL", file_types=[".jsonl"], height=80)
    leak_md = gr.Markdown()
    slots = []
    for r in ROLES:
        use, ep, model, refresh = _model_slot(ctx.settings.value, r, ROLE_TITLES[r])
        slots.append((use, ep, model))
        refresh.click(list_models_for, [ctx.settings, ep, model], model, api_visibility="private")
    gr.Markdown("**Judge** (only for questions scored by `judge`: it compares each answer with the reference)")
    _, judge_ep, judge_model, judge_refresh = _model_slot(ctx.settings.value, "judge", "Judge", include=None)
    judge_refresh.click(list_models_for, [ctx.settings, judge_ep, judge_model], judge_model, api_visibility="private")
    with gr.Row():
        concurrency_sl = gr.Slider(1, 16, value=4, step=1, label="Calls at once")
        max_tokens_nb = gr.Number(value=512, precision=0, minimum=1, label="Max tokens per answer")
    with gr.Row():
        run_btn = gr.Button("Run benchmark", variant="primary")
        stop_btn = gr.Button("Stop", variant="stop")
        latest_btn = gr.Button("Show latest results")
        defaults_btn = gr.Button("Use role defaults (newest fine-tuned model)")
    status_md = gr.Markdown()
    score_df = gr.Dataframe(label="Scoreboard", interactive=False, wrap=True, elem_id="eval-scoreboard")
    acc_plot = gr.BarPlot(x="model", y="accuracy %", label="Accuracy", y_lim=[0, 100])
    drill_df = gr.Dataframe(label="Per question", interactive=False, wrap=True, max_height=600)
    out = {"status_md": status_md, "score_df": score_df, "acc_plot": acc_plot, "drill_df": drill_df}

    bench_inputs = [bench_dd, upload_file, ctx.visitor]
    # An upload switches the list to "Uploaded file" (the run scores what the list says), clearing it
    # goes back to a sample; each then re-checks leakage for what will be scored.
    upload_file.upload(follow_upload, upload_file, bench_dd, api_visibility="private").then(
        check_leakage, bench_inputs, leak_md, api_visibility="private")
    upload_file.clear(after_clear, bench_dd, bench_dd, api_visibility="private").then(
        check_leakage, bench_inputs, leak_md, api_visibility="private")
    bench_dd.input(check_leakage, bench_inputs, leak_md, api_visibility="private")
    run_inputs = [bench_dd, upload_file, *[c for s in slots for c in s], judge_ep, judge_model, concurrency_sl,
                  max_tokens_nb, ctx.settings, ctx.visitor, control]
    run_btn.click(check_leakage, bench_inputs, leak_md, api_visibility="private").then(
        partial(run_evaluation, out=out), run_inputs, list(out.values()), api_name="evaluate_run")
    pickers = [c for s in slots for c in s[1:]] + [judge_ep, judge_model]
    defaults_btn.click(use_role_defaults, ctx.settings, pickers, api_visibility="private")
    ctx.settings.change(follow_settings, ctx.settings, pickers, api_visibility="private")
    stop_btn.click(stop_evaluation, control, status_md, queue=False, api_visibility="private")
    latest_btn.click(partial(show_latest_results, out=out), ctx.visitor, list(out.values()), api_visibility="private")
    return {"bench_dd": bench_dd, "run_btn": run_btn, **out}
