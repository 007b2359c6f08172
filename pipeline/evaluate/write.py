"""Teacher-written benchmarks: new test questions about what a dataset teaches.

The teacher reads a sample of the training examples (spread over their groups) and writes N new
questions with expected answers, reworded rather than copied. A question that is a near-duplicate
of a training question (the dedupe rule) or of another new question is dropped, and the teacher is
asked again, a few rounds at most. Knowledge answers are scored `contains` on the key fact the
teacher names; reasoning answers `final_answer`; labels `label` (where available).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.dataset.groups import (
    example_groups,
    final_answer_text,
    near_duplicate_pairs,
    normal_text,
    user_text,
)
from pipeline.errors import InputError, ProviderError, explain
from pipeline.evaluate.make import detect_kind
from pipeline.evaluate.scoring import SCORINGS
from pipeline.generate.teacher import Teacher

SAMPLE_EXAMPLES = 24
PER_CALL = 8
MAX_ROUNDS = 4

SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["items"],
    "properties": {"items": {"type": "array", "minItems": 1, "maxItems": PER_CALL, "items": {
        "type": "object", "additionalProperties": False, "required": ["question", "answer", "key_fact"],
        "properties": {"question": {"type": "string"}, "answer": {"type": "string"},
                       "key_fact": {"type": "string"}}}}},
}

_KIND_RULES = {
    "knowledge": "Each answer is one short sentence; key_fact is the few words a correct answer must contain "
                 "(a name, number, date or short phrase copied from the answer).",
    "reasoning": "Each question is a new problem of the same kind and difficulty; the answer reasons in short "
                 "steps and ends with a line 'Final answer: X'; key_fact is X alone.",
    "labels": "Each answer is exactly one of the labels used in the examples; key_fact is that label.",
}


@dataclass
class Written:
    items: list[dict]
    asked: int
    dropped_near_duplicates: int = 0
    unparsable: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    notes: list[str] = field(default_factory=list)


def _sample(examples: Sequence[dict], seed: int) -> list[dict]:
    """One example per group first (round-robin), so the teacher sees every lesson it can."""
    groups = example_groups(examples)
    by_group: dict[int, list[dict]] = {}
    for g, ex in zip(groups, examples, strict=True):
        by_group.setdefault(g, []).append(ex)
    order = list(by_group)
    random.Random(seed).shuffle(order)
    out: list[dict] = []
    depth = 0
    while len(out) < SAMPLE_EXAMPLES and any(len(by_group[g]) > depth for g in order):
        out += [by_group[g][depth] for g in order if len(by_group[g]) > depth][: SAMPLE_EXAMPLES - len(out)]
        depth += 1
    return out


def _prompt(sample: Sequence[dict], kind: str, n: int, avoid: Sequence[str]) -> list[dict]:
    shown = "\n".join(f"Q: {user_text(ex)}\nA: {final_answer_text(ex)}" for ex in sample)
    avoid_txt = ("\n\nAlready written (do not repeat or reword these):\n" + "\n".join(f"- {q}" for q in avoid[-20:])
                 if avoid else "")
    return [
        {"role": "system", "content": "You write test questions to check whether a model learnt what a "
                                      "training set teaches. Reply with JSON only."},
        {"role": "user", "content": (
            f"Training examples:\n{shown}\n\nWrite {n} NEW test questions about what these examples teach, "
            "each with its correct answer. Do not copy or lightly reword a training question: ask it another "
            f"way or combine facts. {_KIND_RULES[kind]}{avoid_txt}\n\n"
            'Reply as {"items": [{"question": ..., "answer": ..., "key_fact": ...}]}.')},
    ]


def _parse(text: str) -> list[dict] | None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        try:
            data = json.loads(text[start: end + 1]) if start >= 0 < end else None
        except json.JSONDecodeError:
            return None
    rows = data.get("items") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        return None
    return [r for r in rows if isinstance(r, dict) and all(isinstance(r.get(k), str) and r[k].strip()
                                                         for k in ("question", "answer", "key_fact"))]


def write_benchmark(examples: Sequence[dict], n: int, client: Any, model: str, *, seed: int = 0,
                    on_progress: Callable[[str], None] | None = None) -> Written:
    """Ask the teacher (an AsyncOpenAI client) for `n` new questions, a few rounds at most;
    near-duplicates of training questions and of each other are dropped."""
    usable = [ex for ex in examples if isinstance(ex, dict) and user_text(ex) and final_answer_text(ex)]
    if not usable:
        raise InputError("The dataset has no chat examples with a question and an answer to write tests about.")
    if n < 1:
        raise InputError("Ask for at least 1 question.")
    return asyncio.run(_write(usable, n, client, model, seed, on_progress))


async def _write(usable: list[dict], n: int, client: Any, model: str, seed: int,
                 on_progress: Callable[[str], None] | None) -> Written:
    kind = detect_kind(usable)
    system = next((m.get("content") for m in usable[0].get("messages", []) if m.get("role") == "system"), None)
    train_q = [normal_text(user_text(ex)) for ex in usable]
    teacher = Teacher(client, model, temperature=0.7, concurrency=1)
    out = Written([], 0)
    kept_q: list[str] = []
    for round_no in range(MAX_ROUNDS):
        want = min(PER_CALL, n - len(out.items))
        if want <= 0:
            break
        out.asked += want
        prompt = _prompt(_sample(usable, seed + round_no), kind, want, [r["messages"][-1]["content"] for r in out.items])
        try:
            reply = await teacher.complete(prompt, schema=SCHEMA, name="benchmark", max_tokens=300 * want)
        except Exception as exc:
            raise ProviderError(f"The teacher could not write questions: {explain(exc)}") from exc
        out.input_tokens += reply.input_tokens or 0
        out.output_tokens += reply.output_tokens or 0
        rows = _parse(reply.text)
        if rows is None:
            out.unparsable += 1
            continue
        for row in rows:
            if len(out.items) >= n:
                break
            q = normal_text(row["question"])
            if near_duplicate_pairs([q], train_q + kept_q):
                out.dropped_near_duplicates += 1
                continue
            kept_q.append(q)
            out.items.append(_item(row, kind, system))
        if on_progress:
            on_progress(f"{len(out.items)}/{n} questions written, {out.dropped_near_duplicates} near-duplicates dropped")
    if len(out.items) < n:
        out.notes.append(f"The teacher wrote {len(out.items)} usable questions of {n} asked "
                         f"({out.dropped_near_duplicates} near-duplicates of training questions dropped, "
                         f"{out.unparsable} replies unparsable).")
    return out


def _item(row: dict, kind: str, system: str | None) -> dict:
    scoring = {"reasoning": "final_answer", "labels": "label" if "label" in SCORINGS else "final_answer"}.get(
        kind, "contains")
    expected = row["key_fact"].strip()
    if scoring == "contains" and normal_text(expected) not in normal_text(row["answer"]):
        scoring, expected = "judge", row["answer"].strip()  # the key fact is not in the answer: trust the answer
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": row["question"].strip()}]
    return {"messages": msgs, "expected": expected, "scoring": scoring, "reference": row["answer"].strip(),
            "source": "teacher"}
