"""Leakage check: benchmark questions that are near-duplicates of training examples make the
fine-tuned model look better than it is. rapidfuzz compares every question with every training
user message in one C call."""

from __future__ import annotations

from collections.abc import Sequence

from rapidfuzz import fuzz, process

from pipeline.evaluate.bench import BenchItem
from pipeline.evaluate.scoring import normalise

DEFAULT_THRESHOLD = 90.0


def training_questions(examples: Sequence[dict]) -> list[str]:
    out = []
    for ex in examples:
        for m in ex.get("messages", []) if isinstance(ex, dict) else []:
            if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
                out.append(m["content"])
    return out


def find_leaks(items: Sequence[BenchItem], examples: Sequence[dict],
               threshold: float = DEFAULT_THRESHOLD) -> list[dict]:
    """Benchmark questions scoring >= threshold (0-100, token-order insensitive) against a training
    question, most similar first."""
    train = training_questions(examples)
    if not train or not items:
        return []
    scores = process.cdist([normalise(i.question) for i in items], [normalise(t) for t in train],
                           scorer=fuzz.token_sort_ratio, workers=1)
    leaks = []
    for row, item in zip(scores, items, strict=True):
        best = int(row.argmax())
        if row[best] >= threshold:
            leaks.append({"index": item.index, "question": item.question, "training": train[best],
                          "similarity": round(float(row[best]), 1)})
    return sorted(leaks, key=lambda d: -d["similarity"])
