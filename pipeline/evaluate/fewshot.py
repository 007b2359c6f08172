"""The few-shot baseline as a contestant: any model prompted with K examples from the training data.

The K examples are chosen once per run (seeded), spread over different groups of the training data,
and never from a group that a benchmark question belongs to (the leakage rule), so the baseline is
not handed the answers. They go in as earlier user/assistant turns after the system prompt: the
way the articles' few-shot prompts are written, and what every chat model understands.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pipeline.dataset.groups import example_groups, final_answer_text, user_text
from pipeline.errors import InputError
from pipeline.evaluate.bench import BenchItem
from pipeline.evaluate.leakage import leaking_examples


def few_shot_label(model: str, k: int) -> str:
    return f"{model} + {k}-shot"


def pick_shots(train: Sequence[dict], items: Sequence[BenchItem], k: int, seed: int = 0) -> list[dict]:
    """2*k messages (user, assistant, ...) from k training examples of k different groups when there
    are enough, none of them in a benchmark question's group."""
    if k < 1:
        raise InputError("--shots must be 1 or more.")
    usable = [ex for ex in train if isinstance(ex, dict) and user_text(ex) and final_answer_text(ex)]
    leaked = leaking_examples(items, usable)  # these teach what a benchmark question asks
    clean = [ex for i, ex in enumerate(usable) if i not in leaked]
    if not clean:
        raise InputError("None of the training examples can be shown as a few-shot example without leaking a "
                         "benchmark answer (each is a near-duplicate of a benchmark question or shares its answer).")
    groups = example_groups(clean)
    by_group: dict[int, list[dict]] = {}
    for g, ex in zip(groups, clean, strict=True):
        by_group.setdefault(g, []).append(ex)
    rng = random.Random(seed)
    order = list(by_group)
    rng.shuffle(order)
    chosen = [rng.choice(by_group[g]) for g in order[:k]]
    if len(chosen) < k:  # fewer groups than shots: repeat lessons rather than show fewer examples
        rest = [ex for ex in clean if ex not in chosen]
        rng.shuffle(rest)
        chosen += rest[: k - len(chosen)]
    messages: list[dict] = []
    for ex in chosen:
        messages += [{"role": "user", "content": user_text(ex)},
                     {"role": "assistant", "content": final_answer_text(ex)}]
    return messages


def with_shots(messages: list[dict], shots: Sequence[dict]) -> list[dict]:
    """The conversation with the shots after its leading system message(s)."""
    if not shots:
        return messages
    at = 0
    while at < len(messages) and messages[at].get("role") == "system":
        at += 1
    return [*messages[:at], *shots, *messages[at:]]
