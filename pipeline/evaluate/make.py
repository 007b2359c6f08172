"""Benchmarks from your own data: hold out whole groups of a dataset as test questions.

The held-out examples leave the training data (pipeline.dataset.split_by_groups: no lesson on both
sides), and each becomes a benchmark item whose expected answer is taken from its own answer:
- reasoning data (answers end in "Final answer: X"): X, scored `final_answer`;
- classification-like data (short repeating labels): the label, scored `label` (or `final_answer`
  where label scoring is not available);
- knowledge data: the answer's key fact (the words the answer adds to the question, preferring a
  quoted phrase, names and numbers), scored `contains`; `judge` with the full answer when no key
  fact stands out.
The full answer is kept as "reference" so the reviewer (and the leakage check) can read it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.answers import has_final_answer
from pipeline.dataset.groups import example_groups, final_answer_text, looks_like_labels
from pipeline.dataset.ops import Split, split_by_groups
from pipeline.errors import InputError
from pipeline.evaluate.scoring import SCORINGS, extract_final_answer

MODES = ("auto", "final_answer", "contains", "judge")
_WORD = re.compile(r"[\w'’-]+|[.;:!?]")
_QUOTED = re.compile(r"[\"“]([^\"”]{3,80})[\"”]")
_STOP = frozenset(["a", "an", "the", "is", "was", "were", "be", "been", "being", "are", "am", "of", "in", "on", "at", "to", "for", "by", "with", "from", "and", "or", "but", "her", "his", "its", "their", "our", "my", "your", "she", "he", "they", "it", "we", "you", "i", "that", "this", "these", "those", "which", "who", "whom", "whose", "as", "has", "have", "had", "do", "does", "did", "not", "no", "yes", "so", "very", "also", "there", "here", "then", "than", "into", "onto", "about", "over", "after", "before"])


@dataclass(frozen=True)
class MadeBenchmark:
    items: list[dict]
    rest: list[Any]
    split: Split
    scoring: str

    @property
    def scoring_counts(self) -> dict[str, int]:
        return dict(Counter(i["scoring"] for i in self.items))


def _stem(word: str) -> str:
    w = re.sub(r"['’]s$", "", word.lower()).strip("'’-")
    for suffix in ("ing", "ed", "es", "s"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: -len(suffix)]
    return w


def key_fact(question: str, answer: str) -> str:
    """The short phrase an answer adds to its question ("" when none stands out)."""
    quoted = _QUOTED.search(answer)
    if quoted:
        return quoted.group(1).strip(" .,")
    asked = {_stem(w) for w in _WORD.findall(question)}
    tokens = list(_WORD.finditer(answer))
    spans: list[list[re.Match[str]]] = []
    run: list[re.Match[str]] = []
    for n, tok in enumerate(tokens):
        word = tok.group()
        sentence_start = n == 0 or tokens[n - 1].group() in ".;:!?"
        proper = word[:1].isupper() and not sentence_start
        nxt = tokens[n + 1].group() if n + 1 < len(tokens) else ""
        title_joint = bool(run) and run[-1].group()[:1].isupper() and nxt[:1].isupper()  # "Listening to Kettles"
        if word in ".;:!?" or (word.lower() in _STOP and not proper and not title_joint):
            if run:
                spans.append(run)
            run = []
            continue
        if _stem(word) not in asked or proper or any(c.isdigit() for c in word):
            run.append(tok)
        elif run:
            spans.append(run)
            run = []
    if run:
        spans.append(run)

    def salient(t: re.Match[str]) -> bool:  # a name or number the question did not mention
        w = t.group()
        if any(c.isdigit() for c in w):
            return True
        if not w[:1].isupper() or _stem(w) in asked:
            return False
        at = tokens.index(t)  # a capital opening the answer counts when a name goes on ("Ottoline Crumwell")
        return t.start() > 0 or (at + 1 < len(tokens) and tokens[at + 1].group()[:1].isupper())

    best: tuple[int, int, str] | None = None
    for span in spans:
        new = [t for t in span if _stem(t.group()) not in asked or any(c.isdigit() for c in t.group())]
        if not new:  # only words of the question ("Ottoline Crumwell"): not a fact
            continue
        marked = [i for i, t in enumerate(span) if salient(t)]
        if marked:  # names and numbers are the fact: "tortoise named Admiral Pumble" -> "Admiral Pumble"
            span = span[marked[0]: marked[-1] + 1]
        while span and _stem(span[-1].group()) in asked and not salient(span[-1]):
            span = span[:-1]
        while span and _stem(span[0].group()) in asked and not salient(span[0]):
            span = span[1:]
        if not span:
            continue
        text = answer[span[0].start(): span[-1].end()]
        # Names and numbers first, then longer; on a tie the later phrase (answers lead with the subject).
        rank = (1 if marked else 0, len(span), text)
        if best is None or rank[:2] >= best[:2]:
            best = rank
    return best[2] if best else ""


def detect_kind(examples: Sequence[Any]) -> str:
    """"labels", "reasoning" or "knowledge", from the assistant answers."""
    answers = [final_answer_text(ex) for ex in examples]
    if looks_like_labels(answers):
        return "labels"
    with_final = sum(1 for a in answers if has_final_answer(a))
    return "reasoning" if answers and with_final * 2 >= len(answers) else "knowledge"


def item_for(example: dict, kind: str, scoring: str) -> dict:
    """One benchmark line from one example: the conversation up to its last answer, and the expected answer."""
    msgs = list(example.get("messages") or [])
    while msgs and isinstance(msgs[-1], dict) and msgs[-1].get("role") == "assistant":
        msgs = msgs[:-1]
    answer = final_answer_text(example).strip()
    question = next((m.get("content") or "" for m in reversed(msgs) if m.get("role") == "user"), "")
    if scoring == "auto":
        scoring = {"labels": "label" if "label" in SCORINGS else "final_answer",
                   "reasoning": "final_answer"}.get(kind, "contains")
    if scoring in ("final_answer", "label"):
        expected = extract_final_answer(answer) if has_final_answer(answer) else answer
    elif scoring == "contains":
        expected = key_fact(question, answer)
        if not expected:  # nothing short to look for: a judge compares with the whole answer
            scoring, expected = "judge", answer
    else:
        expected = answer
    return {"messages": msgs, "expected": expected, "scoring": scoring, "reference": answer}


def make_benchmark(examples: Sequence[Any], holdout: int, *, scoring: str = "auto", seed: int = 0) -> MadeBenchmark:
    """Move about `holdout` examples (whole groups) out of `examples` into benchmark items."""
    if scoring not in MODES:
        raise InputError(f"Scoring must be one of {', '.join(MODES)}, not {scoring!r}.")
    usable = [ex for ex in examples if isinstance(ex, dict) and final_answer_text(ex).strip()]
    if len(usable) < 2:
        raise InputError("The dataset needs at least 2 chat examples that end in an assistant answer "
                         "to hold some out as a benchmark.")
    if holdout < 1 or holdout >= len(usable):
        raise InputError(f"Hold out between 1 and {len(usable) - 1} examples (the dataset has {len(usable)}).")
    groups = example_groups(usable)
    split = split_by_groups(usable, count=holdout, seed=seed, groups=groups)
    if not split.held_out:
        raise InputError("Every example here teaches the same thing (one group of near-duplicate questions "
                         "or one shared answer): nothing can be held out without leaking. Add varied examples, "
                         "or write a benchmark with the teacher instead.")
    kind = detect_kind(usable)
    items = [item_for(ex, kind, scoring) for ex in split.held_out]
    kinds = {i["scoring"] for i in items}
    resolved = kinds.pop() if len(kinds) == 1 else "mixed"
    return MadeBenchmark(items, split.train, split, resolved)
