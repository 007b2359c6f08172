"""The benchmark answers of the models a fine-tune does not change, asked while the student trains.

The demo's scoreboard compares the base model (and a separate teacher, if any) with the fine-tuned
one on held-out questions. Only the fine-tuned model's answers have to wait for the job: the others'
are asked as soon as it starts, and the score step then asks only the fine-tuned model. On the local
backend the training process leaves part of the 2 cores idle (two training threads stall whenever
another process takes a slice), so the base model's answers cost the demo little while it trains;
with a provider, they come during a job that takes minutes.

Answered under a running fine-tune, their latencies are not comparable with the fine-tuned
model's; the step says so. Anything short of a complete, error-free set (stopped, failed, another
benchmark or model by the time of scoring) is asked again by the score step."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.evaluate.bench import BenchItem
from pipeline.evaluate.runner import Answer, Target, iter_answers


def answers_key(benchmark: str, targets: Sequence[Target], max_tokens: int) -> tuple:
    """What answers must match to be reused: the benchmark file, each model and label, the answer length."""
    return benchmark, tuple((t.name, t.model, t.role) for t in targets), max_tokens


@dataclass
class EarlyAnswers:
    key: tuple
    expected: int  # questions x targets
    answers: list[Answer] = field(default_factory=list)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def start(benchmark: str, items: Sequence[BenchItem], targets: Sequence[Target], *, max_tokens: int,
          concurrency: int, cancel: threading.Event) -> EarlyAnswers:
    """Ask every item of every target in a background thread; `cancel` (the demo's Stop) ends it."""
    early = EarlyAnswers(answers_key(benchmark, targets, max_tokens), len(items) * len(targets))

    def work() -> None:
        try:
            for answer in iter_answers(items, targets, concurrency=concurrency, max_tokens=max_tokens, cancel=cancel):
                early.answers.append(answer)
        except Exception as exc:  # kept for take(): the score step then asks again
            early.error = exc
        finally:
            early.done.set()

    threading.Thread(target=work, name="distill-demo-early-answers", daemon=True).start()
    return early


def take(early: EarlyAnswers | None, key: tuple, cancel: threading.Event) -> list[Answer]:
    """The early answers if they match `key` and are complete without an error (waiting for them while
    they still come), else [] (the caller asks those models itself)."""
    if early is None or early.key != key:
        return []
    while not early.done.wait(0.25):
        if cancel.is_set():
            return []
    complete = early.error is None and len(early.answers) == early.expected
    return list(early.answers) if complete and all(a.error is None for a in early.answers) else []
