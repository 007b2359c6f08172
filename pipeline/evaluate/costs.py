"""What each contestant's answers cost, and when a fine-tune pays for itself.

Prices come from the dated table (data/pricing.json). A model the table prices at zero (the local
backend's SmolLM2) really costs nothing; to weigh it against a paid teacher the same tokens are also
priced as its OpenAI equivalent (pricing.json "local_equivalent"): a fine-tuned student at the
fine-tuned usage price of a small OpenAI model, a base student at its base price, a teacher at a
GPT-4-class price.
"""

from __future__ import annotations

import math

from pipeline.models import base_of, is_fine_tuned, is_free, openai_equivalent
from pipeline.tokens import training_cost_usd, usage_cost_usd


def equivalent_model(model: str, role: str = "") -> str | None:
    """The OpenAI model whose prices stand in for a free (local) model; None for a priced model."""
    if not is_free(model):
        return None
    if role == "teacher":
        return openai_equivalent("teacher")
    student = openai_equivalent("student")
    return f"ft:{student}:equivalent" if is_fine_tuned(model) or role == "fine_tuned" else student


def equivalent_cost_usd(model: str, role: str, input_tokens: int, output_tokens: int) -> float | None:
    eq = equivalent_model(model, role)
    return usage_cost_usd(eq, input_tokens, output_tokens) if eq else None


def fine_tune_cost_usd(base_model: str, trained_tokens: int | None, recorded_usd: float | None) -> float | None:
    """A fine-tune's training cost for the break-even: what the provider charged by its trained tokens
    (the OpenAI equivalent for a free local base), else the cost estimated when it started."""
    if is_free(base_model):
        return training_cost_usd(openai_equivalent("student"), trained_tokens, 1) if trained_tokens else None
    if trained_tokens:
        priced = training_cost_usd(base_of(base_model), trained_tokens, 1)
        if priced is not None:
            return priced
    return recorded_usd


def chart_cost_per_100(row: dict) -> float | None:
    """The cost a chart compares: the OpenAI equivalent for a free model, else the real cost."""
    eq = row.get("equivalent_cost_per_100_usd")
    return eq if eq is not None else row.get("cost_per_100_usd")


def cost_gaps(results: dict) -> list[str]:
    """Why a contestant has no point on the cost panel, one line each (the panel stayed blank with no
    word of why): its model is not in the price table, or it gave no answer to price."""
    out = []
    for r in results["results"]:
        if chart_cost_per_100(r) is not None:
            continue
        known = usage_cost_usd(r.get("model") or r["label"], 0, 0) is not None
        out.append(f"{r['label']}: no answers to price, cost not shown" if known else
                   f"no prices known for {r.get('model') or r['label']}: cost not shown")
    return list(dict.fromkeys(out))  # base and few-shot share a model: say it once


def break_even(fine_tuned: dict, teacher: dict, training_cost_usd: float | None) -> dict | None:
    """After how many questions the fine-tuned model (training cost included) is cheaper than the
    teacher: {questions, training_cost_usd, per_question_fine_tuned, per_question_teacher,
    accuracy_gap} or None when a figure is missing. questions is None when it never pays back
    (it costs as much or more per question)."""
    c_f, c_t = chart_cost_per_100(fine_tuned), chart_cost_per_100(teacher)
    if c_f is None or c_t is None or training_cost_usd is None or training_cost_usd < 0:
        return None
    per_f, per_t = c_f / 100, c_t / 100
    questions = None if per_t <= per_f else math.ceil(training_cost_usd / (per_t - per_f))
    return {"questions": questions, "training_cost_usd": training_cost_usd, "per_question_fine_tuned": per_f,
            "per_question_teacher": per_t, "accuracy_gap": round(teacher["accuracy"] - fine_tuned["accuracy"], 4),
            "fine_tuned": fine_tuned["label"], "teacher": teacher["label"]}


def break_even_words(be: dict | None, gaps: list[str] | None = None) -> str:
    """The break-even in words; `gaps` (cost_gaps of the run) say why it cannot be worked out."""
    if be is None and gaps:
        return f"Break-even: not shown ({'; '.join(gaps)})."
    if be is None:
        return ("Break-even: needs a fine-tuned model, a teacher and the fine-tune's training cost "
                "(enter it to see when the fine-tune pays for itself).")
    gap = be["accuracy_gap"] * 100
    quality = (f"{gap:.0f} points less accurate than the teacher" if gap > 0.5 else
               f"{-gap:.0f} points more accurate than the teacher" if gap < -0.5 else "as accurate as the teacher")
    if be["questions"] is None:
        return (f"Break-even: never. Per question the fine-tuned model costs ${be['per_question_fine_tuned']:.6f}, "
                f"the teacher ${be['per_question_teacher']:.6f}, so the ${be['training_cost_usd']:.4f} training "
                f"is not paid back; it is {quality}.")
    return (f"Break-even: after **{be['questions']:,} questions** the fine-tuned model has paid back its "
            f"${be['training_cost_usd']:.4f} training (${be['per_question_fine_tuned']:.6f} vs "
            f"${be['per_question_teacher']:.6f} per question) and is cheaper than the teacher from then on, "
            f"while {quality}.")
