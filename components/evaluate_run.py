"""Evaluate tab, the run side: contestants (base, base + few-shot, fine-tuned, teacher), the run with
Stop, the scoreboard with intervals and verdicts, the cost chart and break-even, runs kept and compared.

Handlers follow components/wiring.py: parameter names are component names, returns {name: value}.
"""

from __future__ import annotations

import time
from typing import Any

import gradio as gr

from components.chat_panes import role_pickers
from components.evaluate_bench import bench_choices, bench_path
from components.wiring import outputs
from pipeline import drafts
from pipeline.control import RunControl
from pipeline.endpoints import SessionSettings, make_client
from pipeline.errors import InputError
from pipeline.evaluate import Target, build_results, find_leaks, iter_answers, latest_results, load_benchmark
from pipeline.evaluate.chart import cost_chart
from pipeline.evaluate.costs import break_even, break_even_words, cost_gaps, fine_tune_cost_usd
from pipeline.evaluate.fewshot import pick_shots
from pipeline.evaluate.runs import list_runs, load_run, save_results, verdict_changes
from pipeline.evaluate.tables import changes_frame, drilldown_frame, scoreboard_frame
from pipeline.evaluate.task_chart import confusion_heatmap, task_markdown
from pipeline.finetune.records import recorded_jobs
from pipeline.model_lists import check_model_use

PROGRESS_EVERY_S = 0.5
SHOWN = ("score_df", "chart_plot", "drill_df")
RESULT_OUTPUTS = ("status_md", "verdict_md", "breakeven_md", "empty_md", *SHOWN, "runs_dd", "compare_dd",
                  "task_plot", "task_md")


def _training_cost(settings: SessionSettings, visitor: str | None, endpoint: str, model: str) -> float | None:
    """The recorded fine-tune of this model: its training cost (OpenAI-equivalent for a local one)."""
    job = next((j for j in recorded_jobs(visitor) if j.get("fine_tuned_model") == model), None) if visitor else None
    if job is None:
        return None
    try:
        tokens = getattr(make_client(settings, endpoint).fine_tuning.jobs.retrieve(job["job_id"]), "trained_tokens", None)
    except Exception:  # the job may be gone from the provider; the recorded estimate still counts
        tokens = None
    return fine_tune_cost_usd(job.get("base_model") or model, tokens, job.get("estimated_cost_usd"))


def _usd(text: str | None) -> float | None:
    text = (text or "").strip().lstrip("$")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"The training cost must be a number of US dollars (e.g. 0.42), not {text!r}.") from None
    if value < 0:
        raise InputError("The training cost cannot be negative.")
    return value


def _targets(settings: SessionSettings, visitor: str | None, items: list, picks: dict[str, tuple], shots_sl: float | None,
             ) -> tuple[list[Target], str]:
    targets, note = [], ""
    for role_name, title in (("base", "Base"), ("fine_tuned", "Fine-tuned"), ("teacher", "Teacher")):
        use, ep, model = picks[role_name]
        if use and model:
            check_model_use(settings, visitor, ep, model)  # the pick comes from the client: only theirs
            targets.append(Target(model, make_client(settings, ep), label=f"{title}: {model}", role=role_name))
    use_few, _, _ = picks["few_shot"]
    _, base_ep, base_model = picks["base"]
    if use_few and base_model:
        draft = drafts.load_draft(visitor) if visitor else []
        if draft:
            shots = tuple(pick_shots(draft, items, int(shots_sl or 3)))
            k = len(shots) // 2
            targets.insert(1, Target(base_model, make_client(settings, base_ep), label=f"Few-shot: {base_model} + {k}-shot",
                                     role="few_shot", shots=shots))
        else:
            note = " The few-shot contestant was left out: your dataset is empty, so there are no examples to show."
    if not targets:
        raise InputError("Tick at least one contestant to evaluate.")
    return targets, note


targets_for = _targets  # the batch mode (evaluate_batch.py) builds the same contestants


def _runs_choices(visitor: str | None, sha: str | None) -> list[tuple[str, str]]:
    return [(r["title"], r["name"]) for r in list_runs(visitor, sha)] if visitor else []


def show_results(results: dict, visitor: str | None, training_cost: float | None = None) -> dict[str, Any]:
    by_role = {r.get("role"): r for r in results["results"]}
    be = results.get("break_even")
    if be is None and "fine_tuned" in by_role and "teacher" in by_role:
        be = break_even(by_role["fine_tuned"], by_role["teacher"], training_cost)
    verdicts = results.get("verdicts") or []
    runs = _runs_choices(visitor, results.get("benchmark_sha256"))
    heatmap = confusion_heatmap(results)
    return {"score_df": gr.Dataframe(scoreboard_frame(results), visible=True),
            "chart_plot": gr.Plot(cost_chart(results, be), visible=True),
            "drill_df": gr.Dataframe(drilldown_frame(results), visible=True),
            "verdict_md": "\n".join(f"- {v}" for v in verdicts) or "Only one contestant: nothing to compare with.",
            "breakeven_md": break_even_words(be, cost_gaps(results)) if "fine_tuned" in by_role and "teacher" in by_role
            else "",
            "task_plot": gr.Plot(heatmap, visible=heatmap is not None), "task_md": task_markdown(results),
            "empty_md": gr.Markdown(visible=False),
            "runs_dd": gr.Dropdown(choices=runs, value=runs[0][1] if runs else None),
            "compare_dd": gr.Dropdown(choices=runs, value=runs[1][1] if len(runs) > 1 else None)}


@outputs(*RESULT_OUTPUTS, "stop_btn", "run_btn", "training_cost_tb")
def run_evaluation(bench_dd: str | None, upload_file: str | None, base_use: bool, base_ep: str, base_model: str,
                   few_shot_use: bool, shots_sl: float | None, fine_tuned_use: bool, fine_tuned_ep: str,
                   fine_tuned_model: str, teacher_use: bool, teacher_ep: str, teacher_model: str, judge_ep: str,
                   judge_model: str, concurrency_sl: float | None, max_tokens_nb: float | None,
                   training_cost_tb: str | None, settings: SessionSettings, visitor: str | None, control: RunControl):
    path = bench_path(bench_dd, upload_file, visitor)
    items = load_benchmark(path)
    picks = {"base": (base_use, base_ep, base_model), "few_shot": (few_shot_use, base_ep, base_model),
             "fine_tuned": (fine_tuned_use, fine_tuned_ep, fine_tuned_model),
             "teacher": (teacher_use, teacher_ep, teacher_model)}
    targets, note = _targets(settings, visitor, items, picks, shots_sl)
    judge = Target(judge_model, make_client(settings, judge_ep), label="judge") \
        if any(i.scoring == "judge" for i in items) else None
    cost = _usd(training_cost_tb)
    if cost is None and fine_tuned_use and fine_tuned_model:
        cost = _training_cost(settings, visitor, fine_tuned_ep, fine_tuned_model)
    control.cancel.clear()
    total, answers, last = len(items) * len(targets), [], 0.0
    yield {"status_md": f"Running {len(items)} questions × {len(targets)} contestants…{note}",
           "stop_btn": gr.Button(interactive=True), "run_btn": gr.Button(interactive=False)}
    settings_kept = {"concurrency": int(concurrency_sl or 4), "max_tokens": int(max_tokens_nb or 512),
                     "shots": int(shots_sl or 3) if few_shot_use else 0}
    for a in iter_answers(items, targets, judge=judge, concurrency=settings_kept["concurrency"],
                          max_tokens=settings_kept["max_tokens"], cancel=control.cancel):
        answers.append(a)
        if time.perf_counter() - last >= PROGRESS_EVERY_S or len(answers) == total:
            last = time.perf_counter()
            so_far = build_results(path.name, items, targets, answers, judge=judge)
            done = ", ".join(f"{r['label']} {r['correct']}/{r['answered']}" for r in so_far["results"])
            yield {"status_md": f"{len(answers)}/{total} answers · correct so far: {done}",
                   "score_df": gr.Dataframe(scoreboard_frame(so_far, live=True), visible=True), "empty_md": gr.Markdown(visible=False)}
    results = build_results(path.name, items, targets, answers, judge=judge, settings=settings_kept,
                            leaks=find_leaks(items, drafts.load_draft(visitor)) if visitor else [])
    by_role = {r["role"]: r for r in results["results"]}
    if "fine_tuned" in by_role and "teacher" in by_role:
        results["break_even"] = break_even(by_role["fine_tuned"], by_role["teacher"], cost)
    saved = save_results(visitor or "", results)
    yield {**show_results(results, visitor), "status_md": f"Done. Results saved in your workspace ({saved.name}).{note}",
           "training_cost_tb": "" if cost is None else f"{cost:.6g}"}


@outputs("stop_btn", "run_btn")
def run_ended() -> dict[str, Any]:
    """After a run (finished, stopped or failed): Stop goes quiet again, Run comes back."""
    return {"stop_btn": gr.Button(interactive=False), "run_btn": gr.Button(interactive=True)}


@outputs("status_md")
def stop_evaluation(control: RunControl) -> dict[str, Any]:
    control.cancel.set()
    return {"status_md": "Stopping…"}


@outputs(*RESULT_OUTPUTS, "bench_dd")
def show_latest(visitor: str | None, bench_dd: str | None) -> dict[str, Any]:
    results = latest_results(visitor) if visitor else None
    choices = {"bench_dd": gr.Dropdown(choices=bench_choices(visitor), value=bench_dd)}
    if results is None:
        return {"status_md": "No saved results yet: run a benchmark.", **choices}
    return {**show_results(results, visitor), **choices,
            "status_md": f"Latest results: {results['benchmark']}, {results['created_at']}."}


@outputs("changes_df", "compare_md")
def compare_runs(visitor: str | None, runs_dd: str | None, compare_dd: str | None) -> dict[str, Any]:
    if not (visitor and runs_dd and compare_dd) or runs_dd == compare_dd:
        raise InputError("Pick two different runs of the same benchmark to compare.")
    new, old = load_run(visitor, runs_dd), load_run(visitor, compare_dd)
    if new["created_at"] < old["created_at"]:
        new, old = old, new
    changes = verdict_changes(old, new)
    summary = (f"{len(changes)} verdicts changed from {old['created_at']} to {new['created_at']} "
               "(same benchmark, contestants with the same label)." if changes else
               "No question changed verdict between these two runs (for contestants with the same label).")
    return {"changes_df": gr.Dataframe(changes_frame(changes), visible=bool(changes)), "compare_md": summary}


PICKERS = ("base_ep", "base_model", "fine_tuned_ep", "fine_tuned_model", "teacher_ep", "teacher_model",
           "judge_ep", "judge_model")


@outputs(*PICKERS)
def use_role_defaults(settings: SessionSettings) -> dict[str, Any]:
    return dict(zip(PICKERS, role_pickers(settings, ("base", "fine_tuned", "teacher", "judge"), look_up_newest=True),
                    strict=True))


@outputs(*PICKERS)
def follow_settings(settings: SessionSettings) -> dict[str, Any]:
    return dict(zip(PICKERS, role_pickers(settings, ("base", "fine_tuned", "teacher", "judge"), look_up_newest=False),
                    strict=True))
