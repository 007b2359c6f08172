"""The steps of one generation request that the interactive run and a batch share: which source
example and which messages request number `index` gets, and what examples a teacher reply yields.

Both paths call these, so a batch line's body and the parse of its result are the interactive
path's own (pipeline.batch builds request files and collects results with them).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.generate import prompts
from pipeline.generate.parse import ParseFailure, parse_answer, parse_items_answer
from pipeline.generate.tasks import TaskReject
from pipeline.generate.teacher import Reply
from pipeline.generate.templates import Template, build_examples

EARLIER_SAMPLE = 50  # earlier examples a prompt's "do not repeat" sample is drawn from


@dataclass(frozen=True)
class Unusable:
    """A reply that gave no example: why, and its raw text for review."""

    reason: str
    raw: str


def source_for(template: Template, sources: list[dict] | None, index: int) -> dict | None:
    """The existing example request `index` rewrites (paraphrase), in turn; None for other templates."""
    return sources[index % len(sources)] if template.source and sources else None


def request_messages(template: Template, variables: dict[str, str], *, seed: int, index: int,
                     recent: list[dict], sources: list[dict] | None, sample_size: int) -> list[dict]:
    """The messages of request `index`: its seeded picks and a bounded sample of earlier examples."""
    rng = prompts.request_rng(seed, index)
    earlier = recent if len(recent) <= EARLIER_SAMPLE else rng.sample(recent, EARLIER_SAMPLE)
    return prompts.build_messages(template, variables, seed=seed, index=index, earlier=earlier,
                                  source=source_for(template, sources, index), sample_size=sample_size)


def examples_from_reply(template: Template, variables: dict[str, str], reply: Reply, source: dict | None
                        ) -> tuple[list[tuple[dict, str | None]], Unusable | None]:
    """(example, final answer) pairs from one reply, and why (part of) it gave none: did not parse, parsed
    but is not a usable example, or some items of a list answer were dropped (the others are used)."""
    dropped: list[str] = []
    if template.items:
        read = parse_items_answer(reply.text, template.schema, template.items, finish_reason=reply.finish_reason)
        parsed, dropped = read if isinstance(read, tuple) else (read, [])
    else:
        parsed = parse_answer(reply.text, template.schema, finish_reason=reply.finish_reason)
    if isinstance(parsed, ParseFailure):
        return [], Unusable(parsed.reason, parsed.raw)
    try:
        built = build_examples(template, variables, parsed, source)
    except TaskReject as exc:
        return [], Unusable(str(exc), reply.text)
    return built, Unusable("; ".join(dropped) + " (the other items were used)", reply.text) if dropped else None
