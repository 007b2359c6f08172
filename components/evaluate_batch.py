"""The Evaluate tab's batch mode: every ticked contestant answers every question through one Batch API
submission at half price (pipeline.batch.build_evaluation); collected answers are scored by the same
code as an interactive run and land on the scoreboard below."""

from __future__ import annotations

from typing import Any

import gradio as gr

from components import batches as panel
from components import batches_actions as actions
from components import batches_view as view
from components.evaluate_bench import bench_path
from components.evaluate_run import RESULT_OUTPUTS, show_results, targets_for
from components.wiring import outputs
from pipeline import batch
from pipeline.endpoints import SessionSettings
from pipeline.errors import InputError
from pipeline.evaluate import load_benchmark


@outputs("run_btn", "stop_btn", "batch_submit_btn", "batch_file_btn")
def switch_mode(batch_mode_radio: str) -> dict[str, Any]:
    batch_mode = batch_mode_radio == panel.MODES[1]
    return {"run_btn": gr.update(visible=not batch_mode), "stop_btn": gr.update(visible=not batch_mode),
            "batch_submit_btn": gr.update(visible=batch_mode), "batch_file_btn": gr.update(visible=batch_mode)}


def _request(bench_dd: str | None, upload_file: str | None, picks: dict[str, tuple], shots_sl: float | None,
             settings: SessionSettings, visitor: str) -> tuple[str, list, list, str, str]:
    """(benchmark name, items, contestants, their one endpoint, a note) from the form."""
    path = bench_path(bench_dd, upload_file, visitor)
    items = load_benchmark(path)
    used = sorted({ep for use, ep, model in picks.values() if use and model})
    if len(used) > 1:
        raise InputError(f"A batch goes to one endpoint, and the ticked contestants use {', '.join(used)}: untick the "
                         "others, or run the benchmark one request at a time.")
    targets, note = targets_for(settings, visitor, items, picks, shots_sl)
    return path.name, items, targets, used[0], note


def _picks(base_use: bool, base_ep: str, base_model: str, few_shot_use: bool, fine_tuned_use: bool, fine_tuned_ep: str,
           fine_tuned_model: str, teacher_use: bool, teacher_ep: str, teacher_model: str) -> dict[str, tuple]:
    return {"base": (base_use, base_ep, base_model), "few_shot": (few_shot_use, base_ep, base_model),
            "fine_tuned": (fine_tuned_use, fine_tuned_ep, fine_tuned_model),
            "teacher": (teacher_use, teacher_ep, teacher_model)}


def _judge(items: list, judge_ep: str, judge_model: str, endpoint: str) -> str | None:
    """The batch's judge: only for judge-scored questions, and on the contestants' endpoint (its
    requests go out as a second part of the same record)."""
    judge = judge_model if any(i.scoring == "judge" for i in items) and judge_model else None
    if judge and judge_ep != endpoint:
        raise InputError(f"In batch mode the judge goes to the contestants' endpoint ({endpoint}): pick a judge "
                         f"there, or run the benchmark one request at a time.")
    return judge


def _judge_words(items: list, targets: list, judge: str | None) -> str:
    judged = sum(i.scoring == "judge" for i in items)
    if not judged:
        return ""
    if not judge:
        return " (judge-scored questions need a judge model: pick one before submitting)"
    return f", then {judged * len(targets)} answers to the judge ({judge}) as a second batch"


@outputs("batch_msg_md")
def preview_evaluation_batch(batch_mode_radio: str, bench_dd: str | None, upload_file: str | None, base_use: bool,
                             base_ep: str, base_model: str, few_shot_use: bool, shots_sl: float | None,
                             fine_tuned_use: bool, fine_tuned_ep: str, fine_tuned_model: str, teacher_use: bool,
                             teacher_ep: str, teacher_model: str, judge_ep: str, judge_model: str,
                             max_tokens_nb: float | None, settings: SessionSettings,
                             visitor: str | None) -> dict[str, Any]:
    """On choosing Batch: the request count and the cost at batch prices (the judge's second phase
    included), before anything is written."""
    if batch_mode_radio != panel.MODES[1]:
        return {"batch_msg_md": ""}
    picks = _picks(base_use, base_ep, base_model, few_shot_use, fine_tuned_use, fine_tuned_ep, fine_tuned_model,
                   teacher_use, teacher_ep, teacher_model)
    name, items, targets, endpoint, note = _request(bench_dd, upload_file, picks, shots_sl, settings,
                                                    panel.checked_visitor(visitor))
    judge = _judge(items, judge_ep, judge_model, endpoint)
    est = batch.estimate_evaluation(items, targets, max_tokens=int(max_tokens_nb or 512), judge=judge)
    return {"batch_msg_md": f"As a batch: {len(items)} questions × {len(targets)} contestants of {name}"
                            f"{_judge_words(items, targets, judge)}: {view.estimate_words(est)}; "
                            f"results within 24 h.{note}"}


@outputs(*actions.SUBMIT)
def submit_evaluation_batch(bench_dd: str | None, upload_file: str | None, base_use: bool, base_ep: str,
                            base_model: str, few_shot_use: bool, shots_sl: float | None, fine_tuned_use: bool,
                            fine_tuned_ep: str, fine_tuned_model: str, teacher_use: bool, teacher_ep: str,
                            teacher_model: str, judge_ep: str, judge_model: str, max_tokens_nb: float | None,
                            settings: SessionSettings, visitor: str | None, batch_kind: str,
                            batch_send: bool = True) -> dict[str, Any]:
    """Write the request file (one line per question and contestant) and submit it, asking first above
    the confirmation threshold; or only offer the file (`batch_send` False). One batch goes to one
    endpoint, so the contestants must share it."""
    visitor = panel.checked_visitor(visitor)
    picks = _picks(base_use, base_ep, base_model, few_shot_use, fine_tuned_use, fine_tuned_ep, fine_tuned_model,
                   teacher_use, teacher_ep, teacher_model)
    name, items, targets, endpoint, note = _request(bench_dd, upload_file, picks, shots_sl, settings, visitor)
    max_tokens = int(max_tokens_nb or 512)
    judge = _judge(items, judge_ep, judge_model, endpoint)
    record = batch.build_evaluation(name, items, targets, visitor=visitor, endpoint=endpoint, max_tokens=max_tokens,
                                    settings={"max_tokens": max_tokens, "shots": int(shots_sl or 3) if few_shot_use else 0},
                                    judge=judge)
    out = actions.submit_or_ask(settings, record, batch_kind, send=batch_send)
    if note:
        out["batch_msg_md"] = f"{out.get('batch_msg_md', '')}{note}"
    return out


@outputs(*RESULT_OUTPUTS)
def show_batch_results(batch_results: dict | None, visitor: str | None) -> dict[str, Any]:
    """After a collect: the batch's scores on the scoreboard, as an interactive run's."""
    if not batch_results:
        return {}
    return {**show_results(batch_results, visitor),
            "status_md": f"Batch results: {batch_results.get('benchmark', '')}, {batch_results.get('created_at', '')}."}
