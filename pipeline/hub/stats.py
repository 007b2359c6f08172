"""Figures the dataset card reports: token statistics, a format summary, and the train/validation split."""

from __future__ import annotations

import random
from typing import Any

from pipeline.errors import InputError

ROLES = {"system", "user", "assistant", "tool", "developer"}


def token_stats(splits: dict[str, list[dict]], model: str = "gpt-4o-mini") -> dict[str, dict]:
    """Per split: examples, total/mean/min/max tokens, counted the way OpenAI's data-prep notebook does."""
    from pipeline.tokens import count_examples, counter_for

    counter = counter_for(model)
    out: dict[str, dict] = {}
    for split, examples in splits.items():
        lengths = count_examples([ex.get("messages") or [] for ex in examples], counter)
        out[split] = {
            "examples": len(lengths),
            "total": sum(lengths),
            "mean": (sum(lengths) / len(lengths)) if lengths else 0.0,
            "min": min(lengths, default=0),
            "max": max(lengths, default=0),
            "encoding": counter.encoding,
            "approximate": counter.approximate,
        }
    return out


def format_summary(examples: list[dict]) -> dict[str, Any]:
    """The chat-format checks of OpenAI's data-prep notebook, as counts for the card.

    (The Dataset tab has the full validator; the card only needs to say whether the data was clean.)
    """
    problems: dict[str, int] = {}

    def count(key: str) -> None:
        problems[key] = problems.get(key, 0) + 1

    for ex in examples:
        messages = ex.get("messages") if isinstance(ex, dict) else None
        if not isinstance(messages, list) or not messages:
            count("missing_messages")
            continue
        if any(not isinstance(m, dict) or m.get("role") not in ROLES for m in messages):
            count("unrecognized_role")
        if any(isinstance(m, dict) and m.get("content") is None and not m.get("tool_calls") for m in messages):
            count("missing_content")
        if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
            count("missing_assistant_message")
    return {"examples_checked": len(examples), "format_errors": sum(problems.values()),
            **{k: v for k, v in sorted(problems.items())}}


def split_examples(examples: list[dict], validation_fraction: float, seed: int = 0) -> dict[str, list[dict]]:
    """{"train": ..., "validation": ...} with a seeded shuffle; no validation split when it would be empty."""
    if not examples:
        raise InputError("The dataset is empty: generate, upload or load some examples first.")
    if not 0 <= validation_fraction < 1:
        raise InputError("The validation fraction must be at least 0 and below 1 (for example 0.1).")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = round(len(examples) * validation_fraction)
    if validation_fraction > 0 and len(examples) >= 2:
        n_val = max(1, min(n_val, len(examples) - 1))
    val_idx = set(order[:n_val])
    splits = {"train": [ex for i, ex in enumerate(examples) if i not in val_idx]}
    if val_idx:
        splits["validation"] = [ex for i, ex in enumerate(examples) if i in val_idx]
    return splits
