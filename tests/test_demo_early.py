"""The base model's benchmark answers, asked while the fine-tune runs (pipeline/demo/early.py)."""

from __future__ import annotations

import threading

from pipeline.demo import early
from pipeline.evaluate.runner import Answer, Target


def _answer(item: int, error: str | None = None) -> Answer:
    return Answer(item, "base", "Paris", True, "correct", 0.1, 5, 2, error=error)


def _finished(answers: list[Answer], expected: int = 2, error: BaseException | None = None) -> early.EarlyAnswers:
    made = early.EarlyAnswers(KEY, expected, answers, error)
    made.done.set()
    return made


KEY = early.answers_key("bench.jsonl", [Target("m", None, "base", role="base")], 64)


def test_complete_answers_for_the_same_benchmark_and_models_are_taken():
    taken = early.take(_finished([_answer(0), _answer(1)]), KEY, threading.Event())
    assert [a.item for a in taken] == [0, 1]


def test_anything_short_of_a_complete_matching_set_is_asked_again():
    never = threading.Event()
    assert early.take(None, KEY, never) == []
    assert early.take(_finished([_answer(0)]), KEY, never) == []  # one missing
    assert early.take(_finished([_answer(0), _answer(1, error="timeout")]), KEY, never) == []
    assert early.take(_finished([_answer(0), _answer(1)], error=RuntimeError("stopped")), KEY, never) == []
    other = early.answers_key("bench.jsonl", [Target("m", None, "base", role="base")], 128)  # longer answers
    assert early.take(_finished([_answer(0), _answer(1)]), other, never) == []


def test_the_score_step_waits_for_answers_still_coming_and_stop_ends_the_wait():
    coming = early.EarlyAnswers(KEY, 2, [_answer(0)])
    threading.Timer(0.3, lambda: (coming.answers.append(_answer(1)), coming.done.set())).start()
    assert len(early.take(coming, KEY, threading.Event())) == 2
    stopped = threading.Event()
    stopped.set()
    assert early.take(early.EarlyAnswers(KEY, 2), KEY, stopped) == []  # never finishes: Stop ends the wait
