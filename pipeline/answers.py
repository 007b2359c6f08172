"""The one reader of a reply's final answer: the generation check and Evaluate's scoring both use it,
so data is checked by the same rule it is later scored by.

`final_answer(text)` is the strict reading (the last "Final answer" line, None when there is none):
the generation check needs it, since a checker that never stated an answer must not agree by accident.
`extract_final_answer(text)` adds the fallbacks scoring needs for models that do not follow the format
("the answer is X", else the last number or word).
"""

from __future__ import annotations

import re

#: "Final answer: X", "**Final answer:** X", "Final answer is X", "The final answer is: X",
#: "final answer - X", "Final Answer = X", "Final answer：X". A separator is required, so prose that
#: merely mentions a final answer ("before the final answer, check...") is not one.
_FINAL = re.compile(r"final\s+answer\s*\**\s*(?:is\b\s*\**\s*[:：]?|[:：=–—-])\s*\**\s*(.*)", re.IGNORECASE)
_ANSWER_IS = re.compile(r"\banswer\s+is\s*[:：]?\s*(.+)", re.IGNORECASE)
NUMBER = re.compile(r"[-+]?\$?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")
#: A whole line that states the final answer (templates strip the teacher's own before adding theirs).
FINAL_LINE = re.compile(r"^[^\S\n]*(?:[*_#>]+[^\S\n]*)?(?:the[^\S\n]+)?final[^\S\n]+answer[^\S\n]*\**[^\S\n]*"
                        r"(?:is\b|[:：=–—-]).*$", re.IGNORECASE | re.MULTILINE)


def _clean(answer: str) -> str:
    return answer.strip().strip("*_`").strip()


def final_answer(text: str | None) -> str | None:
    """The answer on the last "Final answer" line, or None when the reply states none.

    An empty "Final answer:" line takes the next non-empty line ("Final answer:\\n42")."""
    lines = (text or "").strip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        match = _FINAL.search(lines[i])
        if not match:
            continue
        answer = _clean(match.group(1))
        if not answer:
            answer = next((_clean(line) for line in lines[i + 1:] if _clean(line)), "")
        if answer:
            return answer
    return None


def has_final_answer(text: str | None) -> bool:
    return final_answer(text) is not None


def extract_final_answer(text: str, numeric: bool = False) -> str:
    """For scoring: the final answer, else "the answer is X", else the last number (when a number is
    expected) or the last word."""
    stated = final_answer(text)
    if stated is not None:
        return stated
    matches = list(_ANSWER_IS.finditer(text or ""))
    if matches:
        return matches[-1].group(1).strip().splitlines()[0]
    if numeric:
        numbers = NUMBER.findall(text or "")
        if numbers:
            return numbers[-1]
    words = re.findall(r"[\w:'-]+", text or "")
    return words[-1] if words else ""
