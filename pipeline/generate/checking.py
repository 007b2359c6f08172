"""Answer checking for verifiable templates: solve the question again and compare final answers.

The checker (the teacher again, or a second model) gets the example's prompt (system + user turns) and
must end with `Final answer: <answer>`; the example is kept only when the two final answers agree
after normalising case, spacing, punctuation, units of thousands and numbers ("1,000.0" == "1000").
"""

from __future__ import annotations

import re
import unicodedata

from pipeline.answers import final_answer as extract_final_answer  # the one reader (Evaluate's too)
from pipeline.generate.teacher import Teacher

_NUMBER = re.compile(r"^[-+]?\$?\d[\d,]*(\.\d+)?%?$")
CHECK_INSTRUCTION = ("Solve the problem step by step. End with a last line of the form "
                     "'Final answer: <answer>' where <answer> is short (a number, a word or a short phrase).")


def normalise(answer: str) -> str:
    text = unicodedata.normalize("NFKC", answer).strip().lower()
    text = re.sub(r"^(the|a|an)\s+", "", text)
    text = text.strip(" .!*`\"'")
    compact = text.replace(" ", "")
    if _NUMBER.match(compact):
        try:
            value = float(compact.replace(",", "").replace("$", "").rstrip("%"))
            return f"{value:g}" + ("%" if compact.endswith("%") else "")
        except ValueError:
            pass
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s%/.-]", "", text)).strip()


def answers_agree(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and normalise(a) == normalise(b)


def check_messages(example: dict) -> list[dict]:
    """What the checker is asked: the example's question(s), to solve again (a batch sends the same)."""
    users = [m for m in example["messages"] if m.get("role") == "user"]
    return [{"role": "system", "content": CHECK_INSTRUCTION}, *users]


async def check_example(checker: Teacher, example: dict, final_answer: str, *, max_tokens: int
                        ) -> tuple[bool, str | None, object]:
    """(agree, the checker's final answer, its Reply) for one example."""
    reply = await checker.complete(check_messages(example), max_tokens=max_tokens, temperature=0.0)
    theirs = extract_final_answer(reply.text)
    return answers_agree(final_answer, theirs), theirs, reply
