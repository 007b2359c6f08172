"""Whole-dataset operations: seeded group-aware train/validation split, exact-duplicate removal, system prompt."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.dataset.groups import example_groups
from pipeline.errors import InputError


@dataclass(frozen=True)
class Split:
    """A group-aware split and what it did: how many groups (lessons) went to each side."""

    train: list[Any]
    held_out: list[Any]
    groups_train: int
    groups_held_out: int

    @property
    def groups_total(self) -> int:
        return self.groups_train + self.groups_held_out

    def describe(self, held_name: str = "validation") -> str:
        return (f"{len(self.train)} train, {len(self.held_out)} {held_name}; groups of the same lesson: "
                f"{self.groups_train} train, {self.groups_held_out} {held_name}, none on both sides")


def split_by_groups(examples: Sequence[Any], *, fraction: float | None = None, count: int | None = None,
                    seed: int = 0, groups: Sequence[int] | None = None) -> Split:
    """Hold out about `fraction` of the examples (or `count` of them), whole groups at a time
    (pipeline.dataset.groups: near-duplicate questions, same answers), so no lesson is on both sides.

    Groups are visited in a seeded order and taken while they fit; a group bigger than what is left
    is skipped for a smaller one. With 2+ groups and a target > 0, both sides get at least one group
    (with one group, nothing is held out).
    Each side keeps the original order of its examples; the same seed gives the same split."""
    n = len(examples)
    if count is None:
        if fraction is None or not 0 <= fraction < 1:
            raise InputError("The validation fraction must be at least 0 and below 1 (e.g. 0.1 for 10%).")
        target = round(n * fraction)
        if fraction > 0 and n >= 2:
            target = max(target, 1)
    else:
        if count < 0:
            raise InputError("The number of examples to hold out must be 0 or more.")
        target = count
    gids = list(groups) if groups is not None else example_groups(examples)
    members: dict[int, list[int]] = {}
    for i, g in enumerate(gids):
        members.setdefault(g, []).append(i)
    order = sorted(members)
    random.Random(seed).shuffle(order)
    held: set[int] = set()
    taken = 0
    for g in order:
        if len(held) >= target or taken >= len(order) - 1:  # always leave one group to train on
            break
        if len(held) + len(members[g]) <= target:
            held.update(members[g])
            taken += 1
    if not held and target > 0 and len(order) >= 2:  # every group is bigger than asked: the smallest
        smallest = min(order, key=lambda g: len(members[g]))
        held.update(members[smallest])
        taken = 1
    train = [ex for i, ex in enumerate(examples) if i not in held]
    out = [ex for i, ex in enumerate(examples) if i in held]
    return Split(train, out, len(order) - taken, taken)


def split_examples(examples: Sequence[Any], validation_fraction: float = 0.1,
                   seed: int = 0) -> tuple[list[Any], list[Any]]:
    """(train, validation) by split_by_groups: no group of near-duplicate questions or shared answers
    on both sides."""
    s = split_by_groups(examples, fraction=validation_fraction, seed=seed)
    return s.train, s.held_out


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
