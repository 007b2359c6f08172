"""Turning a teacher's reply into the template's answer object, or a reason why not.

Teachers wrap JSON in code fences, add a sentence before it, stop mid-object, or answer in prose.
`parse_answer` tries the reply as JSON, then a fenced block, then the first decodable object in the
text, and checks what it found against the template's schema. A failure is a value (`ParseFailure`,
with the raw text and the reason), never an exception: the run keeps going and the failure is kept.

A template whose answer is a list (paraphrase's rewrites) is read item by item (`parse_items_answer`):
one blank or malformed item, or a reply cut off at max_tokens inside the list, no longer throws away
the whole items beside it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_TYPES = {"string": str, "array": list, "object": dict, "number": (int, float), "integer": int,
          "boolean": bool}


@dataclass(frozen=True)
class ParseFailure:
    raw: str
    reason: str


def parse_answer(raw: str | None, schema: dict[str, Any], *, finish_reason: str | None = None
                 ) -> dict[str, Any] | ParseFailure:
    text = (raw or "").strip()
    if not text:
        return ParseFailure(raw or "", "empty reply" + (f" (finish_reason={finish_reason})" if finish_reason else ""))
    obj = _find_object(text)
    if obj is None:
        cut = " — the reply was cut off at max_tokens" if finish_reason == "length" else ""
        return ParseFailure(raw or "", f"no JSON object found in the reply{cut}")
    problem = schema_problem(obj, schema)
    if problem:
        return ParseFailure(raw or "", problem)
    return obj


def parse_items_answer(raw: str | None, schema: dict[str, Any], key: str, *, finish_reason: str | None = None
                       ) -> tuple[dict[str, Any], list[str]] | ParseFailure:
    """`parse_answer` for an answer whose field `key` is a list of items: the answer with only the items
    that fit the item schema, and why each other one was dropped. A reply cut off inside the list keeps
    its whole items. A failure when no item is usable (the reason is the first dropped item's)."""
    parsed = parse_answer(raw, schema, finish_reason=finish_reason)
    if not isinstance(parsed, ParseFailure):
        return parsed, []
    text = (raw or "").strip()
    obj = _find_object(text)
    # Cut off inside the list: an object found in the text is a "{}" inside a string, not the answer.
    cut = finish_reason == "length" and not (isinstance(obj, dict) and isinstance(obj.get(key), list))
    if cut:
        obj = {key: _whole_items(text, key)}
    if not isinstance(obj, dict) or not isinstance(obj.get(key), list) or not obj[key]:
        return parsed
    item_schema = schema.get("properties", {}).get(key, {}).get("items", {})
    kept, dropped = [], []
    for i, item in enumerate(obj[key]):
        problem = schema_problem(item, item_schema, f"answer.{key}[{i}]")
        (dropped if problem else kept).append(problem or item)
    if cut:
        dropped.append(f"answer.{key} was cut off at max_tokens inside an item, which was dropped")
    if not kept:
        return ParseFailure(raw or "", dropped[0])
    answer = {**obj, key: kept}
    if problem := schema_problem(answer, schema):
        return ParseFailure(raw or "", problem)
    return answer, dropped


def _whole_items(text: str, key: str) -> list[Any]:
    """The complete values of the JSON list under `key` in a reply that stops inside that list."""
    start = re.search('"' + re.escape(key) + r'"\s*:\s*\[', text)
    if start is None:
        return []
    decoder, pos, items = json.JSONDecoder(), start.end(), []
    while True:
        pos = len(text) - len(text[pos:].lstrip())
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return items
        items.append(value)
        rest = text[pos:].lstrip()
        if not rest.startswith(","):
            return items
        pos = len(text) - len(rest) + 1


def _find_object(text: str) -> dict | None:
    candidates = [text] + [m.group(1) for m in _FENCE.finditer(text)]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    # Prose around an object: decode from each '{' until one parses as a whole object.
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def schema_problem(value: Any, schema: dict[str, Any], path: str = "answer") -> str | None:
    """The first way `value` breaks the (simple, strict-mode style) schema, or None when it fits.

    Covers what templates use: object/array/string/number/boolean, required, items, non-empty strings.
    """
    kind = schema.get("type")
    expected = _TYPES.get(kind) if isinstance(kind, str) else None
    if expected and (not isinstance(value, expected) or (kind != "boolean" and isinstance(value, bool))):
        return f"{path} should be {kind}, got {type(value).__name__}"
    if kind == "object":
        for key in schema.get("required", []):
            if key not in value:
                return f"{path} lacks the field '{key}'"
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                problem = schema_problem(value[key], sub, f"{path}.{key}")
                if problem:
                    return problem
    elif kind == "array":
        if not value:
            return f"{path} is an empty list"
        for i, item in enumerate(value):
            problem = schema_problem(item, schema.get("items", {}), f"{path}[{i}]")
            if problem:
                return problem
    elif kind == "string" and not value.strip():
        return f"{path} is empty"
    return None
