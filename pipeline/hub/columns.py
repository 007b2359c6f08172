"""Rows of a Hub dataset -> chat examples: a `messages` column as is, other layouts through a mapping.

A mapping names the columns that become turns: {"user": "question", "assistant": "answer"} and
optionally "system" and "input" (Alpaca's extra context, appended to the user turn). Known column
pairs are found automatically; TRL's conversational prompt/completion (lists of messages) too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline.dataset.tables import detect_columns
from pipeline.errors import InputError

#: Keys OpenAI's chat fine-tuning format accepts beside `messages`; other columns are dropped.
KEPT_KEYS = ("tools", "parallel_tool_calls")


def detect_mapping(columns: Iterable[str]) -> dict[str, str]:
    """The mapping to use for these columns, or {} when none is recognized.

    Column pairs (question/answer, instruction/output + input, a system column...) are the Dataset
    tab's own list (pipeline.dataset.tables), so a file and a Hub split are read the same way.
    """
    cols = list(columns)
    for name in ("messages", "conversations"):
        if name in cols:
            return {"messages": name}
    found = detect_columns(cols) or {}
    found.pop("whole", None)  # "json"/"example" text columns are a file layout, not a Hub one
    return found if "user" in found else {}


def _clean_message(message: dict) -> dict:
    # Parquet gives every message every field any message had (as null); drop the nulls again.
    return {k: v for k, v in message.items() if v is not None}


def _as_messages(value: Any, role: str) -> list[dict]:
    """A cell as turns: text becomes one `role` turn; a list of messages (TRL conversational) stays."""
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        return [_clean_message(m) for m in value]
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    return [{"role": role, "content": value if isinstance(value, str) else str(value)}]


_SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system", "user": "user", "assistant": "assistant"}


def _sharegpt(messages: list[dict]) -> list[dict]:
    """ShareGPT's {"from", "value"} turns as {"role", "content"}."""
    if messages and "from" in messages[0] and "value" in messages[0]:
        return [{"role": _SHAREGPT_ROLES.get(str(m.get("from")), str(m.get("from"))), "content": m.get("value")}
                for m in messages]
    return messages


def to_example(row: dict, mapping: dict[str, str]) -> dict | None:
    """One row as {"messages": [...]}, or None when it has no user or no assistant turn."""
    if "messages" in mapping:
        messages = _sharegpt(_as_messages(row.get(mapping["messages"]), "user"))
    else:
        user = row.get(mapping["user"])
        extra = row.get(mapping["input"]) if mapping.get("input") else None
        if isinstance(user, str) and isinstance(extra, str) and extra.strip():
            user = f"{user}\n\n{extra}"
        messages = (_as_messages(row.get(mapping["system"]), "system") if mapping.get("system") else []) \
            + _as_messages(user, "user") + _as_messages(row.get(mapping["assistant"]), "assistant")
    roles = {m.get("role") for m in messages}
    if "assistant" not in roles or not roles & {"user", "system"}:
        return None
    example: dict[str, Any] = {"messages": messages}
    example.update({k: row[k] for k in KEPT_KEYS if row.get(k) is not None})
    return example


def to_examples(rows: Iterable[dict], columns: list[str], mapping: dict[str, str] | None = None
                ) -> tuple[list[dict], dict[str, str], int]:
    """(examples, the mapping used, rows skipped for lacking a user/assistant turn)."""
    mapping = {k: v for k, v in (mapping or {}).items() if v} or detect_mapping(columns)
    if not mapping:
        raise InputError(f"No chat columns found among {', '.join(columns)}. Choose which column is the user "
                         "turn and which the assistant turn (for example question -> answer).")
    missing = [c for c in mapping.values() if c not in columns]
    if missing:
        raise InputError(f"Column {', '.join(missing)} is not in this split; it has {', '.join(columns)}.")
    if "messages" not in mapping and not {"user", "assistant"} <= set(mapping):
        raise InputError("Map both a user column and an assistant column (or a messages column).")
    examples, skipped = [], 0
    for row in rows:
        example = to_example(row, mapping)
        if example is None:
            skipped += 1
        else:
            examples.append(example)
    return examples, mapping, skipped
