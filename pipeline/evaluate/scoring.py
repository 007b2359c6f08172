"""Is an answer right? Three ways: the exact final answer (reasoning), the expected fact contained
(knowledge), or an LLM judge holding the reference answer (open answers).

Answers are written by models, so the parsing forgives what does not matter ("The answer is 42.",
"**42**", "42 apples", "1,000", "Thursday." vs "thursday") and nothing that does (42 is not 420).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from pipeline.answers import NUMBER, extract_final_answer  # the one reader of final answers

#: The last three are the task formats' (pipeline.evaluate.tasks).
SCORINGS = ("final_answer", "contains", "judge", "label", "json_schema", "tool_call")

_NUMBER = NUMBER
_PURE_NUMBER = re.compile(r"^[-+]?\$?\d[\d,]*(?:\.\d+)?%?$")
#: "12 km", "3.5 hours", "40 °c": a number and a unit; compared as numbers (units are written many ways).
_NUMBER_UNIT = re.compile(r"^[-+]?\$?\d[\d,]*(?:\.\d+)?\s*%?\s*[a-z°/.]+(?: [a-z.]+)?$")
_ARTICLES = re.compile(r"^(?:the|a|an)\s+")
_ORDINAL = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b")
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"]


@dataclass(frozen=True)
class Verdict:
    correct: bool
    #: What was compared, for the drill-down: the parsed answer, or the judge's word.
    extracted: str
    note: str = ""


def normalise(text: str) -> str:
    """Lower case, plain characters, no markdown, no surrounding punctuation, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[*_`#>]", "", text)
    text = _ORDINAL.sub(r"\1", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = text.strip(" .,;:!?\"'()[]{}")
    return _ARTICLES.sub("", text)


def parse_number(text: str) -> float | None:
    match = _NUMBER.search(text)
    if not match:
        return None
    try:
        return float(match.group().replace(",", "").replace("$", ""))
    except ValueError:
        return None


def _same_number(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def score_final_answer(answer: str, expected: str) -> Verdict:
    exp = normalise(expected)
    numeric = bool(_PURE_NUMBER.match(exp) or _NUMBER_UNIT.match(exp))
    got = extract_final_answer(answer, numeric=numeric)
    norm = normalise(got)
    if numeric:
        want, have = parse_number(exp), parse_number(norm)
        ok = want is not None and have is not None and _same_number(want, have)
        return Verdict(ok, got)
    if norm == exp:
        return Verdict(True, got)
    # "No, because..." / "12:35 pm": the expected answer, then punctuation or (for numbers) a unit.
    if norm.startswith(exp):
        rest = norm[len(exp):]
        if rest[:1] in ",;.!-–—(" or (rest[:1] == " " and any(c.isdigit() for c in exp)):
            return Verdict(True, got)
    return Verdict(False, got)


def _date_variants(exp: str) -> list[str]:
    """"march 9" is also "9 march" and "9 of march"."""
    match = re.fullmatch(r"([a-z]+) (\d{1,2})", exp)
    if match and match.group(1) in _MONTHS:
        month, day = match.groups()
        return [exp, f"{day} {month}", f"{day} of {month}"]
    return [exp]


def score_contains(answer: str, expected: str) -> Verdict:
    """The expected fact appears in the answer as whole words ("1971" is not in "19710")."""
    text = normalise(answer)
    for variant in _date_variants(normalise(expected)):
        if re.search(rf"(?<![\w]){re.escape(variant)}(?![\w])", text):
            return Verdict(True, variant)
    return Verdict(False, "")


JUDGE_SYSTEM = ("You grade answers against a reference answer. Reply with exactly one word: "
                "CORRECT or INCORRECT.")


def judge_messages(messages: list[dict], expected: str, answer: str) -> list[dict]:
    """What the judge model is asked: the conversation's instructions and question, the reference
    answer, and the answer to grade."""
    system = next((m["content"] for m in messages if m.get("role") == "system"), "")
    question = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    instructions = f"Instructions the model was given:\n{system}\n\n" if system else ""
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": (
            f"{instructions}Question:\n{question}\n\nReference answer:\n{expected}\n\n"
            f"Answer to grade:\n{answer}\n\nIs the answer correct: the same facts as the reference, and "
            "following the instructions (wording and length may differ)? Reply CORRECT or INCORRECT.")},
    ]


def parse_judgement(text: str) -> Verdict:
    words = re.findall(r"[A-Za-z]+", text.upper())
    if "INCORRECT" in words or "WRONG" in words:
        return Verdict(False, "INCORRECT")
    if "CORRECT" in words:
        return Verdict(True, "CORRECT")
    return Verdict(False, text.strip()[:40], note="the judge's reply was neither CORRECT nor INCORRECT")


def score(scoring: str, answer: str, expected: str) -> Verdict:
    """Score without a judge (`judge` items are scored by runner.py, which has the judge model)."""
    if scoring == "final_answer":
        return score_final_answer(answer, expected)
    if scoring == "contains":
        return score_contains(answer, expected)
    raise ValueError(f"scoring '{scoring}' needs a judge model")
