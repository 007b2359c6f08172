"""The Dataset tab's editable table, as plain rows, and the visitor's draft extras (no gradio here).

One row per example: `#` (its 1-based line in the draft), system, user, assistant, json, problems.
A simple example (optional system, one user, one assistant, nothing else) is edited in the three text
columns and has an empty json cell. Anything else (multi-turn, tool calls, weights, extra keys) shows
its first system, first user and last assistant text for reading, and the whole example in `json`:
editing one of the text cells changes only that message, editing `json` replaces the example, so an
edit never flattens a conversation. Lines that were not valid JSON are rows keyed `raw N` with their
raw text in `json` until they parse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.dataset.hints import json_paste_hint
from pipeline.dataset.jsonl import Unparsed
from pipeline.dataset.problems import Problem
from pipeline.dataset.writers import simple_parts

HEADERS = ["#", "system", "user", "assistant", "json", "problems"]
RAW_KEY = "raw "
EMPTY_EXAMPLE = {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}]}


def _first(messages: list, role: str, last: bool = False) -> int | None:
    idx = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == role]
    return (idx[-1] if last else idx[0]) if idx else None


def _show(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else json.dumps(value, ensure_ascii=False)


def cells(ex: Any) -> list[str]:
    """[system, user, assistant, json] for one example."""
    parts = simple_parts(ex)
    if parts is not None:
        return [*parts, ""]
    msgs = ex.get("messages") if isinstance(ex, dict) else None
    shown = ["", "", ""]
    if isinstance(msgs, list):
        for k, (role, last) in enumerate((("system", False), ("user", False), ("assistant", True))):
            at = _first(msgs, role, last)
            if at is not None:
                shown[k] = _show(msgs[at].get("content"))
    return [*shown, json.dumps(ex, ensure_ascii=False)]


_LINE_PREFIX = re.compile(r"^Line \d+(, )?")


def problem_text(problems: Sequence[Problem]) -> str:
    """Problems of one row, errors first; the 'Line N' prefix is dropped (the row is the line)."""
    ordered = sorted(problems, key=lambda p: p.severity != "error")
    out = []
    for p in ordered:
        text = _LINE_PREFIX.sub("", p.message).strip()
        out.append(f"{'✖' if p.severity == 'error' else '⚠'} {text[:1].upper()}{text[1:]}")
    return "\n".join(out)


def build_rows(examples: Sequence[Any], unparsed: Sequence[Unparsed],
               example_problems: Sequence[Sequence[Problem]] | None = None) -> list[list[str]]:
    rows = []
    for i, ex in enumerate(examples):
        probs = example_problems[i] if example_problems is not None else []
        rows.append([str(i + 1), *cells(ex), problem_text(probs)])
    for j, u in enumerate(unparsed):
        rows.append([f"{RAW_KEY}{j + 1}", "", "", "", u.raw, f"✖ {u.message}"])
    return rows


def _patch(ex: Any, new: Sequence[str], old: Sequence[str]) -> Any:
    """Apply changed system/user/assistant cells to an example, touching only those messages."""
    msgs = ex.get("messages") if isinstance(ex, dict) else None
    if not isinstance(msgs, list):
        return simple_example(*new)
    msgs = list(msgs)
    for k, (role, last) in enumerate((("system", False), ("user", False), ("assistant", True))):
        if new[k] == old[k]:
            continue
        at = _first(msgs, role, last)
        if at is None:
            if new[k]:
                pos = 0 if role == "system" else len(msgs) if role == "assistant" else \
                    (1 if msgs and isinstance(msgs[0], dict) and msgs[0].get("role") == "system" else 0)
                msgs.insert(pos, {"role": role, "content": new[k]})
        elif role == "system" and not new[k].strip():
            del msgs[at]
        else:
            msgs[at] = {**msgs[at], "content": new[k]}
    return {**ex, "messages": msgs}


def simple_example(system: str, user: str, assistant: str) -> dict:
    msgs = [{"role": "system", "content": system}] if system.strip() else []
    return {"messages": msgs + [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


def _text(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and v != v) else str(v)


def apply_table(rows: Sequence[Sequence[Any]], base: Sequence[Any], base_unparsed: Sequence[Unparsed], *,
                cells_of: Callable[[Any], list[str]] = cells) -> tuple[list[Any], list[Unparsed]]:
    """The table as edited -> (examples, unparsed). `base`/`base_unparsed` are what the table was built from;
    rows missing from `rows` were deleted, rows without a key were added. Unchanged rows give back the
    very objects of `base`; `cells_of` may be a cache's (the Dataset tab's DraftCache.cells)."""
    examples: list[Any] = []
    unparsed: list[Unparsed] = []
    for row in rows:
        row = list(row)[:5]
        if len(row) < 5 or not all(type(v) is str for v in row):  # the common case, all text, skips this
            row = [_text(v) for v in row] + [""] * (5 - len(row))
        key, new = row[0], row[1:]
        idx = int(key) - 1 if key.strip().isdigit() else None
        if idx is not None and 0 <= idx < len(base):
            ex, old = base[idx], cells_of(base[idx])
            if new == old:
                examples.append(ex)
            elif new[3] != old[3] and new[3].strip():
                _parse_into(new[3], examples, unparsed, base_line=idx + 1)
            elif new[3] != old[3]:
                examples.append(simple_example(*new[:3]))
            elif new[:3] != old[:3]:
                examples.append(_patch(ex, new[:3], old[:3]))
            else:
                examples.append(ex)
        elif key.startswith(RAW_KEY) and key[len(RAW_KEY):].isdigit() and \
                0 < int(key[len(RAW_KEY):]) <= len(base_unparsed):
            u = base_unparsed[int(key[len(RAW_KEY):]) - 1]
            if any(c.strip() for c in new[:3]):
                examples.append(simple_example(*new[:3]))
            elif new[3] == u.raw:
                unparsed.append(u)
            else:
                _parse_into(new[3], examples, unparsed, base_line=u.line)
        elif any(c.strip() for c in new):
            if new[3].strip():
                _parse_into(new[3], examples, unparsed, base_line=0)
            else:
                examples.append(simple_example(*new[:3]))
    return examples, unparsed


def _parse_into(text: str, examples: list, unparsed: list, *, base_line: int) -> None:
    try:
        examples.append(json.loads(text))
    except json.JSONDecodeError as exc:
        unparsed.append(Unparsed(base_line, text, "invalid_json",
                                 f"Not valid JSON ({exc.msg} at column {exc.colno}). Fix the json cell or "
                                 "delete the row." + json_paste_hint(text)))


def parse_row_spec(spec: str, n_examples: int, n_unparsed: int) -> tuple[set[int], set[int]]:
    """'3, 5-7, raw 2' -> (example indexes, unparsed indexes), 0-based; out-of-range numbers ignored."""
    ex_idx: set[int] = set()
    raw_idx: set[int] = set()
    spec = re.sub(r"\s*-\s*", "-", re.sub(r"raw\s*", "raw:", spec.lower()))
    for part in re.split(r"[,;\s]+", spec):
        if not part:
            continue
        target, limit = (raw_idx, n_unparsed) if part.startswith("raw:") else (ex_idx, n_examples)
        m = re.fullmatch(r"(?:raw:)?(\d+)(?:-(\d+))?", part)
        if not m:
            continue
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        target.update(i - 1 for i in range(lo, hi + 1) if 1 <= i <= limit)
    return ex_idx, raw_idx
