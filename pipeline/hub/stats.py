"""Figures the dataset card reports (token statistics, a validation summary) and the push split.

Both come from the Dataset tab's own validator (pipeline.dataset.validate_examples), so the card
says what that tab showed: tokens counted the way OpenAI's data-prep notebook counts them.
"""

from __future__ import annotations

from typing import Any

from pipeline.dataset import DEFAULT_MODEL, split_examples, validate_examples
from pipeline.errors import InputError


def split_for_push(examples: list[dict], validation_fraction: float, seed: int = 0) -> dict[str, list[dict]]:
    """{"train": ..., "validation": ...}; no validation split when the fraction gives none."""
    if not examples:
        raise InputError("The dataset is empty: generate, upload or load some examples first.")
    train, validation = split_examples(examples, validation_fraction, seed)
    return {"train": train, **({"validation": validation} if validation else {})}


def card_figures(splits: dict[str, list[dict]], model: str = DEFAULT_MODEL) -> dict[str, Any]:
    """{"token_stats": {split: {...}}, "validation": {...}} for build_card.

    The validation summary checks the whole dataset at once, exactly as the Dataset tab does: checking
    each split apart reported "too_few_examples" for a small validation split the tab never flagged.
    """
    stats: dict[str, dict] = {}
    for split, examples in splits.items():
        report = validate_examples(examples, model)
        lengths = report.token_lengths
        stats[split] = {"examples": len(examples), "total": sum(lengths),
                        "mean": sum(lengths) / len(lengths) if lengths else 0.0,
                        "min": min(lengths, default=0), "max": max(lengths, default=0),
                        "encoding": report.encoding, "approximate": report.tokens_approximate}
    whole = validate_examples([ex for examples in splits.values() for ex in examples], model)
    summary: dict[str, Any] = {"checked_for": model, "examples": sum(len(v) for v in splits.values()),
                               "errors": len(whole.errors), "warnings": len(whole.warnings)}
    if kinds := whole.counts():
        summary["problems"] = dict(kinds)
    return {"token_stats": stats, "validation": summary}
