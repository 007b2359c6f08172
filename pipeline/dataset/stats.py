"""The data-prep report of OpenAI's chat fine-tuning notebook, as one JSON-able dict.

Messages per example, total and assistant tokens per example (min, max, mean, median, p5, p95),
examples missing a system or user message, examples over the token limit, the billing line, and, for
classification data, the label distribution. `validate --json` prints it under `stats`; the Dataset
tab shows `stats_markdown`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline import tokens
from pipeline.dataset.formats import final_answer


def distribution(values: Sequence[int | float]) -> dict[str, float | int] | None:
    """min, max, mean, median, p5, p95 (numpy's linear quantiles, as the notebook's); None when empty."""
    if not values:
        return None
    arr = np.asarray(values, dtype=float)
    out = {"min": arr.min(), "max": arr.max(), "mean": arr.mean(), "median": np.median(arr),
           "p5": np.quantile(arr, 0.05), "p95": np.quantile(arr, 0.95)}
    return {k: int(v) if float(v).is_integer() else round(float(v), 2) for k, v in out.items()}


def _messages(ex: Any) -> list[dict]:
    msgs = ex.get("messages") if isinstance(ex, dict) else None
    return [m for m in msgs if isinstance(m, dict)] if isinstance(msgs, list) else []


def assistant_tokens(examples: Sequence[Any], counter: tokens.TokenCounter) -> list[int]:
    """Tokens of the assistant messages' content per example (the notebook's num_assistant_tokens)."""
    texts, owners = [], []
    for i, ex in enumerate(examples):
        for m in _messages(ex):
            if m.get("role") == "assistant" and isinstance(m.get("content"), str):
                texts.append(m["content"])
                owners.append(i)
    out = [0] * len(examples)
    for i, n in zip(owners, counter.count_batch(texts) if texts else [], strict=True):
        out[i] += n
    return out


@dataclass(frozen=True)
class ExampleFacts:
    """What the statistics (and the label count) need from one example; the Dataset tab keeps them per
    example so a redraw does not walk every example again."""

    n_messages: int
    roles: frozenset[str]
    with_tools: bool
    final_answer: str | None
    assistant_tokens: int


def example_facts(examples: Sequence[Any], counter: tokens.TokenCounter) -> list[ExampleFacts]:
    answers = assistant_tokens(examples, counter)
    return [ExampleFacts(len(msgs := _messages(ex)), frozenset(str(m.get("role")) for m in msgs),  # any JSON role
                         bool(isinstance(ex, dict) and ex.get("tools")), final_answer(ex), n)
            for ex, n in zip(examples, answers, strict=True)]


def data_prep_stats(examples: Sequence[Any], token_lengths: Sequence[int], counter: tokens.TokenCounter, *,
                    context_limit: int, billing_tokens_per_epoch: int, n_epochs: int,
                    labels: dict[str, int] | None = None,
                    facts: Sequence[ExampleFacts] | None = None) -> dict[str, Any]:
    """The notebook's figures for these examples (token_lengths: total tokens per example, tools included;
    facts: their `example_facts`, when the caller has them already)."""
    facts = facts if facts is not None else example_facts(examples, counter)
    n_messages = [f.n_messages for f in facts]
    charged = billing_tokens_per_epoch * n_epochs
    return {
        "messages_per_example": distribution(n_messages),
        "messages_per_example_counts": {str(k): v for k, v in sorted(Counter(n_messages).items())},
        "tokens_per_example": distribution(list(token_lengths)),
        "assistant_tokens_per_example": distribution([f.assistant_tokens for f in facts]),
        "missing_system": sum("system" not in f.roles for f in facts),
        "missing_user": sum("user" not in f.roles for f in facts),
        "over_token_limit": sum(n > context_limit for n in token_lengths),
        "token_limit": context_limit,
        "with_tools": sum(f.with_tools for f in facts),
        "labels": labels,
        "billing_tokens_per_epoch": billing_tokens_per_epoch,
        "n_epochs": n_epochs,
        "charged_tokens": charged,
        "billing_line": f"~{charged:,} tokens will be charged during training, for {n_epochs} epoch(s) "
                        f"(~{billing_tokens_per_epoch:,} per epoch).",
    }


def stats_markdown(stats: dict[str, Any]) -> str:
    """The report as a small Markdown table plus the counts and the billing line."""
    rows = [("messages", stats["messages_per_example"]), ("tokens", stats["tokens_per_example"]),
            ("assistant tokens", stats["assistant_tokens_per_example"])]
    rows = [(name, d) for name, d in rows if d]
    if not rows:
        return ""
    keys = ("min", "max", "mean", "median", "p5", "p95")
    lines = ["| per example | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    lines += [f"| {name} | " + " | ".join(f"{d[k]:,}" for k in keys) + " |" for name, d in rows]
    counts = (f"Missing a system message: {stats['missing_system']} · missing a user message: "
              f"{stats['missing_user']} · over the {stats['token_limit']:,}-token limit: {stats['over_token_limit']}")
    if stats.get("with_tools"):
        counts += f" · with tools: {stats['with_tools']} (their definitions are counted in the tokens)"
    # Escaped: two "~" in one paragraph made Markdown strike the text between them (seen in chromium).
    out = "\n".join(lines) + "\n\n" + counts + "\n\n" + stats["billing_line"].replace("~", "\\~")
    if stats.get("labels"):
        out += "\n\nLabels: " + ", ".join(f"`{k}` × {v}" for k, v in stats["labels"].items())
    return out
