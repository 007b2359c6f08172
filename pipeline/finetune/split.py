"""The Fine-tune tab's train/validation split, which never takes training below OpenAI's minimum.

A 10-example dataset with the default 10% split used to leave 9 training examples, and OpenAI (and
the preflight) refuse fewer than 10: the smallest path a tutorial takes failed on defaults. The split
now gives validation only what training can spare (whole groups of one lesson, as split_by_groups
does, so nothing leaks across), and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.dataset.ops import split_by_groups
from pipeline.dataset.validate import MIN_EXAMPLES


def training_split(examples: Sequence[Any], fraction: float, seed: int) -> tuple[list, list, str | None]:
    """(train, validation, note): `note` says why the validation set is smaller than asked, else None."""
    split = split_by_groups(examples, fraction=fraction, seed=seed)
    spare = max(0, len(examples) - MIN_EXAMPLES)
    if len(split.held_out) <= spare:
        return split.train, split.held_out, None
    if spare:
        smaller = split_by_groups(examples, count=spare, seed=seed)
        if smaller.held_out and len(smaller.train) >= MIN_EXAMPLES:
            return smaller.train, smaller.held_out, (
                f"Validation split lowered to {len(smaller.held_out)} example(s) so that training keeps "
                f"OpenAI's minimum of {MIN_EXAMPLES}. Add examples (or lower the split) for a larger "
                "validation set.")
    note = (f"No validation split: {len(examples)} example(s) leave none to spare (training needs at least "
            f"{MIN_EXAMPLES}). Add examples to get a validation set, or set the split to 0.")
    return list(examples), [], note
