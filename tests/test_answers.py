"""One reader of final answers: the generation check and Evaluate's scoring agree on every phrasing."""

from __future__ import annotations

import pytest

from pipeline.answers import FINAL_LINE, extract_final_answer, final_answer
from pipeline.evaluate.scoring import score_final_answer
from pipeline.generate import checking
from pipeline.generate.templates import with_final_line


@pytest.mark.parametrize(("reply", "answer"), [
    ("Final answer is 42", "42"),  # the generation check used to find none here; Evaluate found 42
    ("Step 1: 6*7\nFinal answer: 42", "42"),
    ("**Final answer:** 42", "42"),
    ("Final answer: **42**", "42"),
    ("The final answer is: 42", "42"),
    ("final answer - Thursday.", "Thursday."),
    ("Final Answer = 12:35 pm", "12:35 pm"),
    ("Final answer：42", "42"),
    ("Final answer:\n\n42", "42"),  # the answer on the next line
    ("Final answer: 41\nWait, I made a slip.\nFinal answer: 42", "42"),  # the last one counts
    ("Final answer: 42\n\nI hope this helps!", "42"),
    ("Before the final answer, note the units.\nFinal answer: 12 km", "12 km"),
])
def test_a_stated_final_answer_is_read_the_same_by_the_check_and_by_scoring(reply: str, answer: str) -> None:
    assert final_answer(reply) == answer
    assert checking.extract_final_answer(reply) == answer  # the generation check
    assert extract_final_answer(reply) == answer  # scoring
    assert score_final_answer(reply, answer).correct


@pytest.mark.parametrize("reply", [
    "The answer is 42.",
    "Before the final answer, let me think.",
    "We need the final answer quickly",
    "Final answer:",
    "",
])
def test_no_stated_final_answer_is_none_for_the_check(reply: str) -> None:
    assert final_answer(reply) is None and checking.extract_final_answer(reply) is None


def test_scoring_falls_back_for_models_that_ignore_the_format() -> None:
    assert extract_final_answer("The answer is 42.") == "42."
    assert extract_final_answer("3 then 7 then 15", numeric=True) == "15"


def test_the_generation_check_agrees_only_on_the_same_answer() -> None:
    assert checking.answers_agree(final_answer("Final answer is 1,000"), final_answer("**Final answer:** 1000.0"))
    assert not checking.answers_agree(final_answer("Final answer is 12"), final_answer("Final answer: 13"))
    assert not checking.answers_agree(final_answer("Final answer is 12"), final_answer("I think 12"))


def test_templates_replace_every_final_answer_line_the_reader_reads() -> None:
    text = "Work.\nThe final answer is 41\n**Final answer:** 41\nBefore the final answer, a note."
    out = with_final_line(text, "42")
    assert final_answer(out) == "42" and "41" not in out and "a note" in out
    assert len(FINAL_LINE.findall(out)) == 1
