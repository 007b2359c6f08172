"""Which examples teach the same thing, so a split never puts one lesson on both sides.

Two examples are in one group when
- their user turns are near-duplicates: the dedupe rule (pipeline.generate.dedup uses the same
  normalisation and threshold): rapidfuzz token_sort_ratio >= 92 after lower-casing, stripping
  punctuation and spacing; or
- their final assistant answers are the same after that normalisation: paraphrase augmentation
  rewords the question and keeps the answer, so a reworded copy of a training question in the
  validation side (or a benchmark) would flatter the model.
Groups are the connected components of both relations (union-find), so A~B and B~C put A, B, C
together. Classification-like data (every answer a short label, labels repeating) is the exception
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
    questions = [normal_text(user_text(ex)) for ex in examples]
    for i, j, _ in near_duplicate_pairs(questions, questions, threshold):
        if i < j and questions[i] and questions[j]:
            uf.union(i, j)
    answers = [final_answer_text(ex) for ex in examples]
    if not looks_like_labels(answers):
        first: dict[str, int] = {}
        for i, a in enumerate(answers):
            key = normal_text(a)
            if key:
                uf.union(first.setdefault(key, i), i)
    numbers: dict[int, int] = {}
    return [numbers.setdefault(uf.find(i), len(numbers)) for i in range(n)]
