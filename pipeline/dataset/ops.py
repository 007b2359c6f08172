"""Whole-dataset operations: seeded train/validation split, exact-duplicate removal, system prompt."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

from pipeline.errors import InputError


def split_examples(examples: Sequence[Any], validation_fraction: float = 0.1,
                   seed: int = 0) -> tuple[list[Any], list[Any]]:
    """(train, validation): a seeded shuffle, so the same seed gives the same split; each side keeps the
    original order of its examples. With 2+ examples and a fraction > 0, both sides get at least one."""
    if not 0 <= validation_fraction < 1:
        raise InputError("The validation fraction must be at least 0 and below 1 (e.g. 0.1 for 10%).")
    n = len(examples)
    n_val = round(n * validation_fraction)
    if validation_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    val_idx = set(order[:n_val])
    train = [ex for i, ex in enumerate(examples) if i not in val_idx]
    val = [ex for i, ex in enumerate(examples) if i in val_idx]
    return train, val


def dedupe_examples(examples: Sequence[Any]) -> tuple[list[Any], int]:
    """(examples without exact duplicates, number removed); the first of each copy is kept, order kept.

    Exact means equal JSON (key order does not matter)."""
    seen: set[str] = set()
    out = []
    for ex in examples:
        key = json.dumps(ex, sort_keys=True, ensure_ascii=False, default=str)
        if key not in seen:
            seen.add(key)
            out.append(ex)
    return out, len(examples) - len(out)


def set_system_prompt(examples: Sequence[Any], prompt: str) -> list[Any]:
    """Give every chat example this system prompt (replacing the first system message, or inserting
    one); an empty prompt removes system messages. Non-chat values are left as they are."""
    out = []
    for ex in examples:
        msgs = ex.get("messages") if isinstance(ex, dict) else None
        if not isinstance(msgs, list):
            out.append(ex)
            continue
        msgs = list(msgs)
        at = next((i for i, m in enumerate(msgs) if isinstance(m, dict) and m.get("role") == "system"), None)
        if not prompt.strip():
            msgs = [m for m in msgs if not (isinstance(m, dict) and m.get("role") == "system")]
        elif at is None:
            msgs.insert(0, {"role": "system", "content": prompt})
        else:
            msgs[at] = {**msgs[at], "content": prompt}
        out.append({**ex, "messages": msgs})
    return out
