"""Table rows (CSV/TSV, Parquet, a `datasets` Dataset) -> chat examples.

A table either has a `messages` (or `json`) column holding the whole conversation, or a pair of text
columns such as question/answer, prompt/completion or instruction/output, optionally with a system
column. The pair is detected from the headers unless the caller names it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.dataset.hints import json_paste_hint
from pipeline.dataset.jsonl import Parsed, Unparsed, UnusableJSON, check_value, load_value
from pipeline.dataset.problems import problem

#: (user column, assistant column) pairs, most specific first; matched case-insensitively.
PAIRS: list[tuple[str, str]] = [
    ("question", "answer"), ("prompt", "completion"), ("instruction", "output"), ("instruction", "response"),
    ("input", "output"), ("user", "assistant"), ("query", "response"), ("prompt", "response"),
    ("input", "target"),
]
SYSTEM_COLUMNS = ("system", "system_prompt")
WHOLE_COLUMNS = ("messages", "json", "example")

Columns = Mapping[str, str] | Sequence[str] | None


def detect_columns(headers: Sequence[str], columns: Columns = None) -> dict[str, str] | None:
    """Which header plays which part: keys 'user', 'assistant', optional 'system', 'input', 'whole'."""
    lower = {h.strip().lower(): h for h in headers if isinstance(h, str)}
    if columns:
        if isinstance(columns, Mapping):
            chosen = dict(columns)
        else:
            chosen = dict(zip(("user", "assistant", "system"), columns, strict=False))
        missing = [c for c in chosen.values() if c not in headers]
        return None if missing else chosen
    found: dict[str, str] = {}
    for name in WHOLE_COLUMNS:
        if name in lower:
            found["whole"] = lower[name]
            break
    for user, assistant in PAIRS:
        if user in lower and assistant in lower:
            found["user"], found["assistant"] = lower[user], lower[assistant]
            if user == "instruction" and "input" in lower:
                found["input"] = lower["input"]  # Alpaca: instruction + optional input
            break
    for name in SYSTEM_COLUMNS:
        if name in lower:
            found["system"] = lower[name]
            break
    return found if ("whole" in found or "user" in found) else None


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value if isinstance(value, str) else str(value)


def _clean(value: Any) -> Any:
    """Arrow gives every struct field to every row (None where absent): drop those, keep 'content'."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None or k == "content"}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def rows_to_examples(rows: Sequence[Mapping[str, Any]], headers: Sequence[str], line_numbers: Sequence[int],
                     out: Parsed, *, columns: Columns = None, system_prompt: str | None = None,
                     keep_other_columns: bool = False) -> None:
    """Convert table rows into examples in `out`; rows that cannot be converted become Unparsed."""
    cols = detect_columns(headers, columns)
    if cols is None:
        wanted = "a 'messages' column, or " + ", ".join(f"{u}/{a}" for u, a in PAIRS[:4])
        msg = (f"Could not find the columns to use (found: {', '.join(map(str, headers)) or 'none'}). The table "
               f"needs {wanted}; rename the columns or choose them.")
        out.problems.append(problem("missing_columns", msg, line=1))
        out.readable = False
        return
    used = set(cols.values())
    for row, n in zip(rows, line_numbers, strict=True):
        whole = row.get(cols["whole"]) if "whole" in cols else None
        if whole is not None and not (isinstance(whole, str) and not whole.strip()):
            example = _whole_example(whole, n, out)
            if example is None:
                continue
            if keep_other_columns:
                extra = {k: _clean(v) for k, v in row.items() if k not in used and v is not None}
                example = {**example, **{k: v for k, v in extra.items() if k not in example}}
        elif "user" in cols:
            example = _pair_example(row, cols, system_prompt)
        else:
            msg = f"Line {n} has an empty '{cols['whole']}' cell. Fill it with the conversation or delete the row."
            out.unparsed.append(Unparsed(n, "", "bad_messages_cell", msg))
            out.problems.append(problem("bad_messages_cell", msg, line=n))
            continue
        try:
            check_value(example)  # a cell may hold text the trainer cannot take (NUL, lone surrogates)
        except UnusableJSON as exc:
            msg = f"Line {n} cannot be used: {exc}."
            out.unparsed.append(Unparsed(n, "", exc.code, msg))
            out.problems.append(problem(exc.code, msg, line=n))
            continue
        out.values.append(example)
        out.lines.append(n)


def _whole_example(value: Any, n: int, out: Parsed) -> dict | None:
    raw = value
    if isinstance(value, str):
        try:
            value = load_value(value)
        except UnusableJSON as exc:
            msg = f"Line {n}: the conversation cell is not usable JSON ({exc}). Fix it or delete the row."
            msg += json_paste_hint(value) if exc.code == "invalid_json" else ""
            out.unparsed.append(Unparsed(n, raw, "bad_messages_cell", msg))
            out.problems.append(problem("bad_messages_cell", msg, line=n))
            return None
    value = _clean(value)
    if isinstance(value, list):
        return {"messages": value}
    if isinstance(value, dict):
        return value
    msg = f"Line {n}: the conversation cell holds {type(value).__name__}, not a list of messages. Fix it."
    out.unparsed.append(Unparsed(n, str(raw), "bad_messages_cell", msg))
    out.problems.append(problem("bad_messages_cell", msg, line=n))
    return None


def _pair_example(row: Mapping[str, Any], cols: Mapping[str, str], system_prompt: str | None) -> dict:
    user = _text(row.get(cols["user"]))
    extra = _text(row.get(cols["input"])) if "input" in cols else ""
    if extra.strip():
        user = f"{user}\n\n{extra}"
    system = _text(row.get(cols["system"])) if "system" in cols else ""
    system = system or (system_prompt or "")
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": _text(row.get(cols["assistant"]))}]
    return {"messages": messages}
