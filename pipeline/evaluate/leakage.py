"""Leakage check: benchmark questions that teach the same thing as a training example make the
fine-tuned model look better than it is. The rule is the group-aware split's
(pipeline.dataset.groups): a near-duplicate question (the dedupe rule), or the same answer after
normalising (the item's reference answer when it has one, else its expected answer)."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.dataset.groups import (
    NEAR_DUPLICATE_THRESHOLD,
    final_answer_text,
    looks_like_labels,
    near_duplicate_pairs,
    normal_text,
    user_text,
)
from pipeline.evaluate.bench import BenchItem

DEFAULT_THRESHOLD = NEAR_DUPLICATE_THRESHOLD


def training_questions(examples: Sequence[dict]) -> list[str]:
    return [user_text(ex) for ex in examples]


def find_leaks(items: Sequence[BenchItem], examples: Sequence[dict],
               threshold: float = DEFAULT_THRESHOLD) -> list[dict]:
    """Benchmark items in the same group as a training example, most similar first:
    {index, question, training, similarity (0-100), reason}."""
    if not examples or not items:
        return []
    train_q = training_questions(examples)
    best: dict[int, dict] = {}
    pairs = near_duplicate_pairs([normal_text(i.question) for i in items], [normal_text(t) for t in train_q],
                                 threshold)
    for i, j, sim in pairs:
        if sim > best.get(i, {}).get("similarity", -1):
            best[i] = {"index": items[i].index, "question": items[i].question, "training": train_q[j],
                       "similarity": round(sim, 1), "reason": "near-duplicate question"}
    answers = [final_answer_text(ex) for ex in examples]
    if not looks_like_labels(answers):
        by_answer: dict[str, int] = {}
        for j, a in enumerate(answers):
            if normal_text(a):
                by_answer.setdefault(normal_text(a), j)
        for i, item in enumerate(items):
            j = by_answer.get(normal_text(item.reference or item.expected))
            if j is not None and i not in best:
                best[i] = {"index": item.index, "question": item.question, "training": train_q[j],
                           "similarity": 100.0, "reason": "same answer as a training example"}
    return sorted(best.values(), key=lambda d: (-d["similarity"], d["index"]))


def leaking_examples(items: Sequence[BenchItem], examples: Sequence[dict],
                     threshold: float = DEFAULT_THRESHOLD) -> set[int]:
    """Indexes of training examples in the same group as some benchmark item (never to be shown to
    a few-shot contestant)."""
    if not examples or not items:
        return set()
    out = {j for _, j, _ in near_duplicate_pairs([normal_text(i.question) for i in items],
                                                  [normal_text(t) for t in training_questions(examples)], threshold)}
    answers = [final_answer_text(ex) for ex in examples]
    if not looks_like_labels(answers):
        bench_answers = {normal_text(i.reference or i.expected) for i in items}
        out |= {j for j, a in enumerate(answers) if normal_text(a) and normal_text(a) in bench_answers}
    return out
