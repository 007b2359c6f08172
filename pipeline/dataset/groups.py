"""Which examples teach the same thing, so a split never puts one lesson on both sides.

Two examples are in one group when
- their user turns are near-duplicates: the dedupe rule (pipeline.generate.dedup uses the same
  normalisation and threshold): rapidfuzz token_sort_ratio >= 92 after lower-casing, stripping
  punctuation and spacing; or
- their final assistant answers are the same after that normalisation: paraphrase augmentation
  rewords the question and keeps the answer, so a reworded copy of a training question in the
  validation side (or a benchmark) would flatter the model.
A near-duplicate joins the group of the most similar earlier question that started a group (as the
dedupe rule compares with what it kept: one hop, no chains); shared answers are joined transitively
(union-find), so paraphrases of one answer are always together. Classification-like data (every answer a short label, labels repeating) is the exception
for answers: "positive" shared by half the dataset is a label, not one lesson.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rapidfuzz import fuzz, process, utils

NEAR_DUPLICATE_THRESHOLD = 92.0
#: Rows compared per rapidfuzz call: bounds memory (rows x n floats) on large datasets.
_CHUNK = 512
_SPACE = re.compile(r"\s+")


def normal_text(text: str) -> str:
    """The dedupe rule's normalisation: lower case, no punctuation, single spaces."""
    return _SPACE.sub(" ", utils.default_process(text)).strip()


def user_text(example: Any) -> str:
    msgs = example.get("messages", []) if isinstance(example, dict) else []
    return "\n".join(str(m.get("content") or "") for m in msgs
                     if isinstance(m, dict) and m.get("role") == "user")


def final_answer_text(example: Any) -> str:
    """The last assistant message's text ("" when there is none, or it is a tool call only)."""
    msgs = example.get("messages", []) if isinstance(example, dict) else []
    for m in reversed(msgs):
        if isinstance(m, dict) and m.get("role") == "assistant":
            content = m.get("content")
            return content if isinstance(content, str) else ""
    return ""


def looks_like_labels(answers: Sequence[str]) -> bool:
    """Classification-like: every answer is a short label (<= 3 words) and labels repeat (at most
    half as many distinct answers as examples)."""
    norm = [normal_text(a) for a in answers if a.strip()]
    if len(norm) < 2:
        return False
    return all(len(a.split()) <= 3 for a in norm) and len(set(norm)) <= len(norm) / 2


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def near_duplicate_pairs(left: Sequence[str], right: Sequence[str],
                         threshold: float = NEAR_DUPLICATE_THRESHOLD) -> list[tuple[int, int, float]]:
    """(i, j, similarity) for every left[i] ~ right[j] at or above the threshold (texts already normal)."""
    pairs: list[tuple[int, int, float]] = []
    if not left or not right:
        return pairs
    for start in range(0, len(left), _CHUNK):
        block = process.cdist(left[start:start + _CHUNK], right, scorer=fuzz.token_sort_ratio,
                              processor=None, score_cutoff=threshold, workers=1)
        for i, j in zip(*block.nonzero(), strict=True):
            pairs.append((start + int(i), int(j), float(block[i, j])))
    return pairs


def example_groups(examples: Sequence[Any], threshold: float = NEAR_DUPLICATE_THRESHOLD) -> list[int]:
    """A group number per example (0, 1, 2... in order of first appearance)."""
    n = len(examples)
    uf = _UnionFind(n)
    # Near-duplicate questions join the most similar earlier "leader" question, the way the dedupe rule
    # compares with the questions it kept. Not a transitive closure: on short templated questions
    # ("Riddle q1?", "Riddle q12?", "Riddle q2?") chains of 92%-similar pairs would merge the whole
    # dataset into one group and leave nothing to hold out.
    # Visited in text order, not file order, so the same examples group the same however they are
    # ordered (a split's two sides, re-read, give the same groups).
    questions = [normal_text(user_text(ex)) for ex in examples]
    leaders: list[int] = []
    leader_texts: list[str] = []
    for i in sorted(range(n), key=lambda k: (questions[k], normal_text(final_answer_text(examples[k])))):
        q = questions[i]
        if not q:
            continue
        match = process.extractOne(q, leader_texts, scorer=fuzz.token_sort_ratio, processor=None,
                                   score_cutoff=threshold) if leader_texts else None
        if match is not None:
            uf.union(leaders[match[2]], i)
        else:
            leaders.append(i)
            leader_texts.append(q)
    answers = [final_answer_text(ex) for ex in examples]
    if not looks_like_labels(answers):
        first: dict[str, int] = {}
        for i, a in enumerate(answers):
            key = normal_text(a)
            if key:
                uf.union(first.setdefault(key, i), i)
    numbers: dict[int, int] = {}
    return [numbers.setdefault(uf.find(i), len(numbers)) for i in range(n)]


def groups_each_way(train: Sequence[Any], held_out: Sequence[Any]) -> tuple[int, int, int]:
    """(groups in train, groups in held_out, groups on both sides) of an existing split, by the same rule."""
    ids = example_groups([*train, *held_out])
    left, right = set(ids[: len(train)]), set(ids[len(train):])
    return len(left), len(right), len(left & right)


def split_line(train: Sequence[Any], held_out: Sequence[Any], held_name: str = "validation") -> str:
    """One line saying how many groups (lessons) went each way, for the tabs that show a split."""
    a, b, both = groups_each_way(train, held_out)
    shared = "none on both sides" if not both else f"{both} on both sides (they leak)"
    return f"Groups of the same lesson: {a} train, {b} {held_name}, {shared}"
