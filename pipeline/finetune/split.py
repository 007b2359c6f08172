"""The Fine-tune tab's train/validation split, which never takes training below OpenAI's minimum.

A 10-example dataset with the default 10% split used to leave 9 training examples, and OpenAI (and
the preflight) refuse fewer than 10: the smallest path a tutorial takes failed on defaults. The split
now gives validation only what training can spare, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.dataset import split_examples
from pipeline.dataset.validate import MIN_EXAMPLES


def training_split(examples: Sequence[Any], fraction: float, seed: int) -> tuple[list, list, str | None]:
    """(train, validation, note): `note` says why the validation set is smaller than asked, else None."""
    train, validation = split_examples(examples, fraction, seed=seed)
    spare = max(0, len(examples) - MIN_EXAMPLES)
    if len(validation) <= spare:
        return train, validation, None
    kept = validation[:spare]
    held = {id(ex) for ex in kept}
    train = [ex for ex in examples if id(ex) not in held]  # original order, as split_examples keeps it
    if spare:
        note = (f"Validation split lowered to {spare} example(s) so that training keeps OpenAI's minimum of "
                f"{MIN_EXAMPLES}. Add examples (or lower the split) for a larger validation set.")
    else:
        note = (f"No validation split: {len(examples)} example(s) leave none to spare (training needs at least "
                f"{MIN_EXAMPLES}). Add examples to get a validation set, or set the split to 0.")
    return train, kept, note
